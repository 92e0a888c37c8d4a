"""The TeNPy converters of [tnkit.interop][tnkit.interop]: finite MPS in TeNPy's canonical
form, plain or, for trains that declare charges, on charge-conserving sites with
``np_conserved`` arrays whose every bond channel carries one charge.

TeNPy (``physics-tenpy``) is an optional dependency, imported inside the functions only.
The table of site types and the conventions are in docs/interop.md ("Charged trains and
TeNPy").
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np

from . import _backend as backend
from .mps import MPS
from .sectors import resolve_charges
from .symmetry import Charges, site_charges

__all__ = ["from_tenpy", "to_tenpy"]

# tnkit's (site type, conserve) -> TeNPy's site class and its arguments. to_tenpy takes the
# first entry whose Charges equal a site's: spin-half and fermion "parity" are the same
# Charges, so they become SpinHalfSite (pass FermionSite sites to get those).
_NAMED_SITES: tuple[tuple[str, Any, str, dict[str, Any]], ...] = (
    ("spin-half", "Sz", "SpinHalfSite", {"conserve": "Sz"}),
    ("spin-half", "parity", "SpinHalfSite", {"conserve": "parity"}),
    ("spin-one", "Sz", "SpinSite", {"S": 1, "conserve": "Sz"}),
    ("fermion", "N", "FermionSite", {"conserve": "N"}),
    ("fermion", "parity", "FermionSite", {"conserve": "parity"}),
    ("electron", ("N", "Sz"), "SpinHalfFermionSite", {"cons_N": "N", "cons_Sz": "Sz"}),
    ("electron", "N", "SpinHalfFermionSite", {"cons_N": "N", "cons_Sz": None}),
    ("electron", "Sz", "SpinHalfFermionSite", {"cons_N": None, "cons_Sz": "Sz"}),
    ("electron", "parity", "SpinHalfFermionSite", {"cons_N": "parity", "cons_Sz": None}),
    ("electron", ("parity", "Sz"), "SpinHalfFermionSite", {"cons_N": "parity", "cons_Sz": "Sz"}),
)
_NAMED_CHARGES = tuple(site_charges(site, conserve) for site, conserve, _, _ in _NAMED_SITES)
# TeNPy's original (unsorted) basis index of tnkit's basis state k, where the orders differ:
# TeNPy's SpinSite counts Sz up (-1, 0, +1), tnkit's spin-one down (+1, 0, -1). The other
# site types have tnkit's order and operators (SpinHalfFermionSite's |full> is
# c†↑c†↓|empty>, as tnkit's |updn>).
_TENPY_BASIS = {"spin-one": (2, 1, 0)}


def _require_tenpy(caller: str) -> None:
    try:
        importlib.import_module("tenpy")
        importlib.import_module("tenpy.networks.mps")
    except ImportError as exc:
        raise ImportError(
            f"tnkit.interop.{caller} needs physics-tenpy: install tnkit[interop] "
            "or pip install physics-tenpy"
        ) from exc


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__name__}"


class _Named:
    """TeNPy's sites of the table, each built once per conversion, and which entry a given
    site is (same class, same charges, same basis order)."""

    def __init__(self) -> None:
        self._built: dict[int, Any] = {}

    def site(self, index: int) -> Any:
        if index not in self._built:
            from tenpy.networks import site as tenpy_site  # optional dependency

            _, _, cls, kwargs = _NAMED_SITES[index]
            self._built[index] = getattr(tenpy_site, cls)(**kwargs)
        return self._built[index]

    def for_charges(self, q: Charges) -> int | None:
        """The first entry whose tnkit Charges are ``q``."""
        return next((i for i, named in enumerate(_NAMED_CHARGES) if named == q), None)

    def of_site(self, site: Any) -> int | None:
        """The entry that TeNPy ``site`` is, None for any other site."""
        for index, (_, _, cls, _) in enumerate(_NAMED_SITES):
            if type(site).__name__ != cls or type(site).__module__ != "tenpy.networks.site":
                continue
            ref = self.site(index)
            if (
                site.dim == ref.dim
                and site.leg.chinfo == ref.leg.chinfo
                and site.leg.qconj == ref.leg.qconj
                and np.array_equal(site.leg.to_qflat(), ref.leg.to_qflat())
                and np.array_equal(site.perm, ref.perm)
            ):
                return index
        return None


def _to_site_basis(named: int | None, dim: int) -> np.ndarray:
    """TeNPy's original basis index of each tnkit basis state (identity off the table)."""
    if named is None:
        return np.arange(dim)
    return np.asarray(_TENPY_BASIS.get(_NAMED_SITES[named][0], range(dim)))


def _site_values(site: Any, to_site: np.ndarray) -> np.ndarray:
    """TeNPy's charges of ``site``'s basis states in tnkit's order (``to_site``), an int64
    array ``(d, n)`` (a leg of qconj −1 counts its charges negated)."""
    stored = np.asarray(site.leg.to_qflat(), dtype=np.int64) * int(site.leg.qconj)
    original = np.empty_like(stored)
    original[np.asarray(site.perm)] = stored  # the stored state j is original perm[j]
    return original[to_site]


def _charges_of(chinfo: Any, values: np.ndarray) -> Charges:
    """tnkit Charges with TeNPy's ChargeInfo (mod 1 is U(1); names kept when tnkit can)."""
    names = [str(name) for name in chinfo.names]
    ok = all(names) and len(set(names)) == len(names)
    moduli = [0 if int(mod) == 1 else int(mod) for mod in chinfo.mod]
    return Charges(values, moduli=moduli, names=names if ok else None)


def _generic_sites(charges: tuple[Charges, ...]) -> list[Any]:
    """One TeNPy ``Site`` per distinct Charges, all on one ChargeInfo (U(1) is mod 1)."""
    from tenpy.linalg import np_conserved as npc  # optional dependency
    from tenpy.networks.site import Site  # optional dependency

    first = charges[0]
    chinfo = npc.ChargeInfo([m if m else 1 for m in first.moduli], list(first.names))
    made: dict[Charges, Any] = {}
    for q in charges:
        if q not in made:
            made[q] = Site(npc.LegCharge.from_qflat(chinfo, q.values, qconj=1))
    return [made[q] for q in charges]


def to_tenpy(m: MPS, sites: Any = None) -> Any:
    """A finite TeNPy ``MPS`` in its canonical ``'B'`` form, equal to ``m``.

    TeNPy keeps normalised right-isometries ``B`` (legs ``vL, p, vR``), Schmidt values ``S``
    and the overall scale in ``psi.norm``; the conversion calls TeNPy's own
    ``canonical_form_finite`` and sets ``psi.norm = m.norm()``, so the state is equal up to
    rounding, not bit for bit. Cores on another library are copied to NumPy; TeNPy needs
    NumPy.

    ``sites``: TeNPy ``Site`` objects, one per site with ``site.dim == phys_dims[k]``. The
    default is sites without charges for a plain train and, for a train with ``charges``,
    TeNPy's site of each site's charges (``SpinHalfSite(conserve="Sz")`` for spin-half
    ``"Sz"``, …: the table in docs/interop.md), or for other Charges a generic ``Site``
    whose ``ChargeInfo`` has their names and moduli (U(1) as mod 1). Sites without charges
    get the cores as they are, in each site's original basis, permuted by ``site.perm`` as
    ``MPS.from_Bflat`` does. On sites with charges the state is first put in charge-resolved
    form ([resolve_charges][tnkit.sectors.resolve_charges]) under the sites' own charges, so
    every bond channel has one charge, and the ``B`` become ``np_conserved`` arrays
    (``vL`` qconj +1, ``vR`` −1; total charge on the last ``vR``), in double precision.
    Basis orders follow the table: the sites' original basis, except that TeNPy's
    ``SpinSite(S=1)`` counts Sz up and tnkit's spin-one down, which is reversed when the
    train declares spin-one charges. ValueError when the state is in no single sector of
    the sites' charges.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.interop import to_tenpy
        >>> m = 3.0 * tn.MPS.random([2] * 4, 3, seed=0)
        >>> psi = to_tenpy(m)
        >>> psi.form[0], bool(np.isclose(psi.norm, m.norm()))
        ((0.0, 1.0), True)
        >>> s = tn.MPS.random([2] * 6, 4, conserve="Sz", sector=(2,), seed=0)
        >>> psi = to_tenpy(s)                        # on SpinHalfSite(conserve="Sz")
        >>> psi.chinfo.names, round(float(sum(psi.expectation_value("Sz"))), 12)
        (['2*Sz'], 1.0)
    """
    if not isinstance(m, MPS):
        raise TypeError(f"m: to_tenpy expects a tnkit MPS, got {_type_name(m)}")
    _require_tenpy("to_tenpy")
    from tenpy.linalg import np_conserved as npc  # optional dependency
    from tenpy.networks.mps import MPS as TenpyMPS  # optional dependency
    from tenpy.networks.site import Site  # optional dependency

    dims = m.phys_dims
    named = _Named()
    charges = m.charges
    if sites is None and charges is not None:
        entries = [named.for_charges(q) for q in charges]
        chinfos = [named.site(e).leg.chinfo for e in entries if e is not None]
        if None in entries or any(c != chinfos[0] for c in chinfos):
            entries, sites = [None] * len(dims), _generic_sites(charges)
        else:
            sites = [named.site(e) for e in entries]
    elif sites is None:
        entries, sites = [None] * len(dims), [Site(npc.LegCharge.from_trivial(d)) for d in dims]
    else:
        sites = list(sites)
        entries = [None] * len(sites)
    if len(sites) != len(dims):
        raise ValueError(f"sites: need {len(dims)} sites, got {len(sites)}")
    for k, (site, d) in enumerate(zip(sites, dims, strict=True)):
        if not isinstance(site, Site):
            raise TypeError(f"sites[{k}]: expected a tenpy Site, got {_type_name(site)}")
        if site.dim != d:
            raise ValueError(f"sites[{k}]: dimension {site.dim} does not match phys_dims {d}")
        if charges is not None and entries[k] is None:  # given sites: tnkit's basis if named
            entry = named.of_site(site)
            if entry is not None and _NAMED_CHARGES[entry] == charges[k]:
                entries[k] = entry
    norm = float(m.norm())
    if norm == 0.0:
        raise ValueError("m: the zero state has no TeNPy canonical form")
    if sites[0].leg.chinfo.qnumber:
        to_site = [_to_site_basis(e, d) for e, d in zip(entries, dims, strict=True)]
        return _charged_tenpy(m, sites, to_site, norm)
    dtype = np.dtype(backend.dtype_name(m.dtype))
    bflat = [np.transpose(backend.to_numpy(c), (1, 0, 2)) for c in m._folded_cores()]
    # Unit cores: the scale lives in psi.norm, and TeNPy's canonical form then stays inside
    # the dtype's range (a float32 train of norm 1e-90 divided by zero there).
    bflat = [b / np.max(np.abs(b)) for b in bflat]  # first by max: b² may underflow
    bflat = [b / np.linalg.norm(b) for b in bflat]
    options = {"dtype": dtype}
    if "unit_cell_width" in inspect.signature(TenpyMPS.from_Bflat).parameters:
        options["unit_cell_width"] = len(sites)  # a chain; newer TeNPy warns without it
    if len(bflat) == 1:  # TeNPy's canonical_form_finite needs two sites
        psi = TenpyMPS.from_Bflat(sites, bflat, form="B", **options)
    else:
        psi = TenpyMPS.from_Bflat(sites, bflat, form=None, **options)
        if any(form is None for form in psi.form):  # from_Bflat skips it when every bond is 1
            psi.canonical_form_finite(renormalize=True)
    psi.norm = norm
    return psi


def _charged_tenpy(m: MPS, sites: list, to_site: list[np.ndarray], norm: float) -> Any:
    """``m`` on charged TeNPy ``sites`` (tnkit's basis state i is the site's original state
    ``to_site[k][i]``): charge-resolved cores under the sites' charges, as np_conserved B."""
    from tenpy.linalg import np_conserved as npc  # optional dependency
    from tenpy.networks.mps import MPS as TenpyMPS  # optional dependency

    chinfo = sites[0].leg.chinfo
    for k, site in enumerate(sites):
        if site.leg.chinfo != chinfo:
            raise ValueError(f"sites[{k}]: its ChargeInfo differs from site 0's")
    tenpy_charges = [
        _charges_of(chinfo, _site_values(s, t)) for s, t in zip(sites, to_site, strict=True)
    ]
    cores = [np.asarray(backend.to_numpy(c)) for c in m.canonicalize(0).cores]
    cores = [c / np.max(np.abs(c)) for c in cores]  # the scale lives in psi.norm
    try:
        resolved = resolve_charges(cores, tenpy_charges)
    except ValueError as exc:
        reason = str(exc).removeprefix("psi: ")
        raise ValueError(
            f"m: not in one sector of the TeNPy sites' charges {chinfo.names}: {reason}"
        ) from exc
    legs = [npc.LegCharge.from_qflat(chinfo, b, qconj=1).bunch()[1] for b in resolved.bonds]
    blocks = []
    for k, (site, core) in enumerate(zip(sites, resolved.cores, strict=True)):
        # stored (sorted) state j of the site is its original state perm[j]: tnkit's state
        tnkit_of = np.argsort(to_site[k])[np.asarray(site.perm)]
        core = np.ascontiguousarray(core[:, tnkit_of, :])
        if len(sites) == 1:
            core = core / np.linalg.norm(core)
        blocks.append(
            npc.Array.from_ndarray(
                core, [legs[k], site.leg, legs[k + 1].conj()], labels=["vL", "p", "vR"]
            )
        )
    svs = [np.ones(len(b)) / np.sqrt(len(b)) for b in resolved.bonds]
    options = {}
    if "unit_cell_width" in inspect.signature(TenpyMPS).parameters:
        options["unit_cell_width"] = len(sites)
    if len(sites) == 1:  # a normalised single core is its own B form
        psi = TenpyMPS(sites, blocks, svs, bc="finite", form="B", **options)
    else:
        psi = TenpyMPS(sites, blocks, svs, bc="finite", form=None, **options)
        psi.canonical_form_finite(renormalize=True)
    psi.norm = norm
    return psi


def from_tenpy(psi: Any, *, permute: bool = True) -> MPS:
    """An MPS equal to a finite TeNPy ``MPS`` (its ``norm`` included).

    In canonical form the cores are ``S_0·B_0·norm, B_1, …`` (``get_B(i, 'B')``, legs
    reordered to ``(vL, p, vR)``); sites with form None are taken as stored. With
    ``permute`` each physical leg is put back in its site's original basis (undoing
    ``site.perm`` of charge-conserving sites), the inverse of ``from_Bflat(permute=True)``.
    NumPy cores of ``psi.dtype``.

    Charges: when the TeNPy MPS conserves charges (``psi.chinfo.qnumber > 0``) the MPS
    declares them (``charges``). TeNPy's sites of the table in docs/interop.md
    (``SpinHalfSite``, ``SpinSite(S=1)``, ``FermionSite``, ``SpinHalfFermionSite``, as TeNPy
    builds them) give exactly tnkit's named charges, so ``H.charges == m.charges`` for a
    tnkit model with the same ``conserve``, and tnkit's basis order (``SpinSite(S=1)`` is
    reversed to +1, 0, −1; spin-half ``"parity"`` counts ↓ where TeNPy counts ↑). Any other
    site, or a chain with one such site, keeps TeNPy's own charges: Charges read from the
    legs with the ChargeInfo's names (default names where they are empty or repeated) and
    moduli (TeNPy's mod 1 is U(1)), in the site's original basis. Without ``permute`` the
    legs stay in TeNPy's sorted order and the charges are given in that order. A TeNPy MPS
    without charges gives a plain MPS in the sites' original basis (``SpinSite``'s included).

    Example:
        >>> import numpy as np
        >>> from tenpy.networks.mps import MPS
        >>> from tenpy.networks.site import SpinHalfSite
        >>> from tnkit.interop import from_tenpy
        >>> psi = MPS.from_product_state([SpinHalfSite(conserve="Sz")] * 3, ["up", "down", "up"])
        >>> m = from_tenpy(psi)
        >>> int(np.argmax(np.abs(m.to_dense().ravel())))   # |↑↓↑⟩ = 0b010
        2
        >>> m.charges[0].names, m.charges[0].values[:, 0].tolist()
        (('2Sz',), [1, -1])
    """
    _require_tenpy("from_tenpy")
    from tenpy.networks.mps import MPS as TenpyMPS  # optional dependency

    if not isinstance(psi, TenpyMPS):
        raise TypeError(f"psi: expected a tenpy MPS, got {_type_name(psi)}")
    if psi.bc != "finite":
        raise ValueError(f"psi: only finite TeNPy MPS convert, got bc={psi.bc!r}")
    if list(psi._p_label) != ["p"]:
        raise ValueError(f"psi: expected one physical leg 'p' per site, got {psi._p_label}")
    sites = list(psi.sites)
    charged = psi.chinfo.qnumber > 0
    named = _Named()
    entries = [named.of_site(site) if charged else None for site in sites]
    groups = {(_NAMED_CHARGES[e].names, _NAMED_CHARGES[e].moduli) for e in entries if e is not None}
    if None in entries or len(groups) > 1:  # one site off the table: TeNPy's charges for all
        entries = [None] * len(sites)
    dtype = np.dtype(psi.dtype)
    raw = any(form is None for form in psi.form)
    cores, charges = [], []
    for i, (site, entry) in enumerate(zip(sites, entries, strict=True)):
        form = None if raw else ("Th" if i == 0 else "B")
        tensor = psi.get_B(i, form).transpose(["vL", "p", "vR"]).to_ndarray()
        to_site = _to_site_basis(entry, site.dim)
        # tnkit's index of stored state j (its original state perm[j]); without permute: j
        order = np.argsort(to_site)[np.asarray(site.perm)] if permute else np.arange(site.dim)
        if not np.array_equal(order, np.arange(order.size)):
            tensor = tensor[:, np.argsort(order), :]
        cores.append(np.ascontiguousarray(tensor, dtype=dtype))
        if charged:
            if entry is not None:
                q = _NAMED_CHARGES[entry]
            else:
                q = _charges_of(psi.chinfo, _site_values(site, to_site))
            if not permute:  # the charges of the stored states
                stored = np.argsort(to_site)[np.asarray(site.perm)]
                q = Charges(q.values[stored], moduli=q.moduli, names=q.names)
            charges.append(q)
    if psi.norm != 1:
        cores[0] = (cores[0] * psi.norm).astype(dtype, copy=False)
    result = MPS(cores)
    return result.with_charges(tuple(charges), site=None) if charged else result
