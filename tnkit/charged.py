"""The conserved charges a train's sites declare (the labels of its local bases), shared by
MPS and MPO: read them, attach them, drop them, and Schmidt values resolved by charge.

Charges are metadata of the physical legs, kept by every operation that keeps those legs
(canonical forms, compression, scalar multiples, conjugation) and dropped by the others.
A NumPy train whose cores conserve its charges holds only their charge blocks
(``held_blocks.HeldBlocks``); an operation without a block path builds the dense cores
when it reads them (see the symmetries page of the docs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _backend as backend
from . import arithmetic
from ._checks import check_bond
from .charge_sweeps import canonicalize_by_charge, compress_by_charge, conserving
from .held_blocks import HeldBlocks
from .sectors import channel_charges, resolve_charges, schmidt_by_charge, site_flows
from .symmetry import Charges, conserved_charges
from .tensortrain import TensorTrain
from .truncation import Truncation

__all__ = ["Charged"]

# From this bond on, canonical sweeps run by charge block (one QR per charge): faster than
# the dense sweep there, while on small bonds the per-block overhead costs more.
_BLOCK_SWEEP_MIN_BOND = 64
_TINY = 1e-300  # a floor for norms that divide


class Charged:
    """Mixin of [MPS][tnkit.MPS] and [MPO][tnkit.MPO]: the ``charges`` slot and its methods."""

    __slots__ = ()

    @property
    def charges(self) -> tuple[Charges, ...] | None:
        """Per site the conserved charges of its basis, or None for a plain train.

        Example:
            >>> import tnkit as tn
            >>> tn.MPS.product_state(["up", "dn"], conserve="Sz").charges[0].names
            ('2Sz',)
        """
        return self._charges

    def to_plain(self):
        """The same train without charges (the cores are shared, nothing is copied).

        Example:
            >>> import tnkit as tn
            >>> tn.models.heisenberg(4, conserve="Sz").to_plain().charges is None
            True
        """
        return self._charges_set(None)

    def with_charges(self, conserve: Any, *, site: Any = "spin-half"):
        """The same train with its sites declaring ``conserve`` (as in [OpSum][tnkit.OpSum]:
        names for a ``site`` type, or ``Charges`` with ``site=None``). Only the labels are
        attached: whether the train conserves them is checked where it matters (the
        block-sparse engines and ``by_charge`` refuse a state in no single sector).

        Example:
            >>> import tnkit as tn
            >>> m = tn.MPS.product_state(["up", "up"]).with_charges("Sz")
            >>> m.singular_values(0, by_charge=True)
            {1: array([1.])}
        """
        dims = self._site_dims()
        if site is not None and not isinstance(site, str):
            raise TypeError(f"site: expected a site type name or None, got {site!r}")
        charges = conserved_charges(conserve, site, dims)
        if charges is not None:
            found = tuple(q.dim for q in charges)
            if found != dims:
                raise ValueError(f"site: {site!r} has local dims {found}, the train {dims}")
            charges = tuple(charges)
        return self._charges_set(charges)

    def __add__(self, other: Any):
        """The direct sum (see TensorTrain); it keeps the charges only where both declare
        the same ones."""
        result = super().__add__(other)
        if isinstance(other, Charged) and other._charges != self._charges:
            return result._charges_set(None)
        return result

    def __mul__(self, factor: Any):
        if self._held is None:
            return super().__mul__(factor)
        # held blocks: the factor scales the values of one core, as it scales the core
        site = 0 if self._centre is None else self._centre
        values, shift = arithmetic.scaled(self._held.values, site, factor)
        held = self._held.with_values(values)
        return self._with_cores(held, self._centre, None, self._exponent + shift)

    __mul__.__doc__ = TensorTrain.__mul__.__doc__
    __rmul__ = __mul__

    def conj(self):
        if self._held is None:
            return super().conj()
        held = self._held.with_values(arithmetic.conjugated(self._held.values))
        return self._with_cores(held, self._centre, None)

    conj.__doc__ = TensorTrain.conj.__doc__

    def _projected(self, sector: Any, truncation: Truncation):
        """This train, whose cores mix its charges (a dense factorisation rotated degenerate
        vectors of different charges together, maybe leaking weight out of ``sector``),
        projected onto ``sector`` by charge block as the state of its fused legs
        (``resolve_charges`` of its right-canonical form, whose rounding drops go into the
        bound) and, where that made a bond larger than this train's largest, cut back to it
        by charge block (the bound adds that cut). The projection never moves it away from a
        target that lies in the sector. Same dtype and scale; None when nothing of it lies
        in the sector."""
        group = self._charges[0]
        charges = [Charges(f, group.moduli, group.names) for f in self._fused_flows()]
        gauged = TensorTrain.canonicalize(self, 0)  # dense: the cores mix charges
        cores = [backend.to_numpy(c) for c in gauged._fused()]
        try:
            resolved = resolve_charges(cores, charges, sector=sector)
        except ValueError:  # the zero train, or nothing in the sector
            return None
        new = tuple(c.astype(self.dtype, copy=False) for c in resolved.cores)
        projected = gauged._with_cores(gauged._unfused(new), len(new) - 1, None)
        cap = max(self.bond_dims, default=1)
        final = projected
        if max(projected.bond_dims, default=1) > cap:
            final = projected.compress(max_bond=cap)  # by charge block
        report = self._report
        if report is not None:
            rounding = resolved.dropped / max(float(np.linalg.norm(cores[0])), _TINY)
            if backend.eps(self.dtype) > backend.eps(np.float64):  # cast back from float64
                rounding += 2 * len(new) * backend.eps(self.dtype)
            second = final.report if final is not projected else None
            report = report.followed_by(second, truncation, rounding=rounding)
            report = report.counting_output(final)
        final = final._with_cores(final._stored(), final.centre, report)
        return final if self._centre in (None, final.centre) else final.canonicalize(self._centre)

    def canonicalize(self, centre: int):
        centre = self._check_site(centre, "centre")
        if not self._by_charge() or self._centre == centre:
            return super().canonicalize(centre)
        if max(self.bond_dims, default=1) >= _BLOCK_SWEEP_MIN_BOND:
            by_charge = self._canonical_by_charge(centre)
            if by_charge is not None:
                return by_charge
        dense = super().canonicalize(centre)  # its rounding outside the blocks zeroed
        if self._conserves(dense):
            return dense
        return self._canonical_by_charge(centre) or dense  # null channels the QR mixed

    canonicalize.__doc__ = (
        f"{TensorTrain.canonicalize.__doc__}\n"
        "        A NumPy train with charges and bonds of at least 64 is swept by one QR per\n"
        "        charge block; smaller ones by the dense sweep, whose rounding outside the\n"
        "        blocks is then zeroed (by charge block where that is not enough). The\n"
        "        result conserves its charges exactly.\n"
    )

    def _canonical_by_charge(self, centre: int):
        """This train canonical about ``centre`` by one QR per charge block (rescaled by
        powers of two where the plain sweep leaves the float range), or None (the cores are
        not block-sparse in their charges)."""
        args = (self._fused(), self._fused_flows(), self._charges[0], self._centre, centre)
        bonds = self._held_bonds()
        with backend.quiet():
            moved = canonicalize_by_charge(*args, bonds=bonds)
            if moved is not None and self._lost(moved[0][centre]):
                moved = canonicalize_by_charge(*args, rescale=True, bonds=bonds)
        if moved is None:
            return None
        cores, _, shift = moved
        exponent = self._exponent + shift
        return self._with_cores(self._unfused(tuple(cores)), centre, self._report, exponent)

    def _held_bonds(self) -> tuple | None:
        """The channel charges of the blocks this train holds under its own charges."""
        held = self._held
        if held is None or self._charges is None or held.group != self._charges[0]:
            return None
        return held.bonds

    def _conserves(self, train) -> bool:
        """Whether every entry of ``train``'s cores outside its charge blocks is zero."""
        if train._held is not None:
            return True
        cores = [np.asarray(c) for c in train._fused()]
        return channel_charges(cores, train._fused_flows(), train._charges[0]) is not None

    def _by_charge(self) -> bool:
        """Whether sweeps may run by charge block (a NumPy train with charges)."""
        return self._charges is not None and backend.is_numpy(self.xp)

    def _fused_flows(self) -> list:
        """The charge each fused physical index adds, per site (``sectors.site_flows``)."""
        flows = site_flows(self._charges, operator=self._n_phys_legs == 2)
        return [f.reshape(-1, f.shape[-1]) for f in flows]

    def _compressed(self, truncation: Any, method: str, options: dict) -> Any:
        """The ``svd`` and ``rescaled`` compressions of a charged NumPy train by one SVD per
        charge block (``charge_sweeps``), so that the result conserves its charges exactly
        even where singular values of different charges are degenerate (the svd sweep hands
        over to the rescaled one where a norm leaves the float range, as the dense one
        does); the dense sweeps otherwise."""
        by_charge = options.get("svd_method") == "auto" and self._by_charge()
        if method in ("svd", "rescaled") and by_charge:
            args = (self._fused(), self._fused_flows(), self._charges[0], self._centre)
            bonds = self._held_bonds()  # None: the cores may mix charges (checked once)
            with backend.quiet():
                result = None
                if method == "svd":
                    result = compress_by_charge(*args, truncation, bonds=bonds)
                retry = result is not None or bonds is not None  # not a train of mixed charges
                if retry and (result is None or self._lost(result.cores[0])):
                    result = compress_by_charge(*args, truncation, rescale=True, bonds=bonds)
            if result is not None and not self._lost(result.cores[0]):
                return result
        return super()._compressed(truncation, method, options)

    def _swept(self, result, truncation: Truncation | None = None):
        """``result`` (made from this train by a dense sweep: canonicalize, compress) with the
        rounding its QR or SVD left outside the charge blocks (~1e-20) set to zero, so that
        it conserves its charges exactly and is written to files as blocks. Where it needs
        more than rounding to (Parker's or the exact methods' factorisations rotated
        degenerate vectors of different charges together) and this train conserves, a
        compression's result (with its ``truncation``) is projected back onto this train's
        sector (``_projected``). Unchanged without charges, off NumPy, or when it already
        conserves exactly."""
        if not result._by_charge() or result is self or result._held is not None:
            return result  # nothing to tidy, or it holds its blocks: it conserves exactly
        fused = [np.asarray(c) for c in result._fused()]
        kept = conserving(fused, result._fused_flows(), result._charges[0])
        if kept is not None:
            if all(k is f for k, f in zip(kept, fused, strict=True)):
                return result  # already exact (and its Numba pack kept)
            return result._with_cores(result._unfused(tuple(kept)), result._centre, result._report)
        if truncation is None or self._held_bonds() is None:
            return result
        return result._projected(self._held_bonds()[-1][0], truncation) or result

    def _charges_set(self, charges: tuple | None):
        shared = self._held is not None and charges in (None, self._charges)
        stored = self._held if shared else self._arrays()  # shared, not copied
        new = TensorTrain._with_cores(self, stored, self._centre, self._report)
        object.__setattr__(new, "_charges", charges)
        object.__setattr__(new, "_packed", self._packed)
        return new._holding_blocks()

    def _with_cores(self, cores: Any, centre: int | None, report: Any, exponent: int | None = None):
        new = super()._with_cores(cores, centre, report, exponent)
        return new._holding_blocks()

    @classmethod
    def _trusted(cls, cores: Any, centre: Any = None, report=None, exponent=0, **meta):
        return super()._trusted(cores, centre, report, exponent, **meta)._holding_blocks()

    def _stored(self) -> Any:
        """The cores as stored: the held blocks, or the arrays (to build a train that
        shares them, without building dense cores)."""
        return self._held if self._held is not None else self._cores

    def _holding_blocks(self):
        """This new train with its dense cores replaced by their charge blocks, where it is a
        NumPy train whose cores conserve its charges (as it is otherwise)."""
        if self._cores is None or not self._by_charge():
            return self
        held = self._charge_blocks()
        if held is not None:
            object.__setattr__(self, "_held", held)  # before anyone else sees it
            object.__setattr__(self, "_cores", None)
        return self

    def _charge_blocks(self) -> HeldBlocks | None:
        """The charge blocks of this train's cores (those it holds, or packed now on the
        host), or None without charges or where the cores do not conserve them."""
        if self._charges is None:
            return None
        if self._held is not None:
            return self._held
        flows = site_flows(self._charges, operator=self._n_phys_legs == 2)
        cores = [backend.to_numpy(c) for c in self.cores]
        return HeldBlocks.pack(cores, flows, self._charges[0])

    def _site_dims(self) -> tuple[int, ...]:
        dims = tuple(shape[1] for shape in self._shapes)
        if self._n_phys_legs == 2 and dims != tuple(shape[2] for shape in self._shapes):
            raise ValueError("charges: an MPO with charges needs equal out and in dims")
        return dims

    def singular_values(self, bond: int, *, by_charge: bool = False) -> Any:
        """Schmidt values across ``bond`` (cut after site ``bond``), descending, as a NumPy
        float64 array (``inf``/0 where the scale leaves float64); see
        [singular_values][tnkit.measure.singular_values]. With ``by_charge=True`` (an MPS
        with charges, in one sector): a dict from the charge of the left part (an int, or
        a tuple for several components) to its Schmidt values; together they are the
        ordinary ones.

        Example:
            >>> import numpy as np, tnkit as tn
            >>> h = tn.models.heisenberg(6, conserve="Sz")
            >>> neel = tn.MPS.product_state(["up", "dn"] * 3, conserve="Sz")
            >>> psi = tn.dmrg(h, max_bond=8, init=neel).state
            >>> parts = psi.singular_values(2, by_charge=True)   # 2·Sz of sites 0..2
            >>> sorted(parts), round(float(sum(v @ v for v in parts.values())), 12)
            ([-3, -1, 1, 3], 1.0)
        """
        if not by_charge:
            return super().singular_values(bond)
        if self._charges is None:
            raise ValueError(
                "by_charge: this train declares no charges; build it with conserve= or "
                "attach them with with_charges()"
            )
        if self._n_phys_legs != 1:
            raise ValueError("by_charge: Schmidt values by charge are defined for an MPS")
        bond = check_bond(bond, len(self))
        cores = [backend.to_numpy(c) for c in self.canonicalize(0).cores]  # minimal bonds
        values = schmidt_by_charge(cores, self._charges, bond)
        exponent = self.canonicalize(0).scale_exponent
        if not exponent:
            return values
        with np.errstate(over="ignore", under="ignore"):
            return {k: np.ldexp(v, exponent) for k, v in values.items()}
