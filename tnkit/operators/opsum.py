"""OpSum: sums of operator strings turned into MPOs through a finite-state automaton.

Terms, their Jordan–Wigner images, the bipartite-graph construction of Ren, Li, Jiang & Shuai
(J. Chem. Phys. 153, 084118, 2020) and an exact rank reduction; nothing here truncates trains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _backend as backend
from .._checks import MAX_SITES, check_int
from ..mpo import MPO
from ..sites import Factor, check_coef, check_site_type, parity, resolve_op
from ..symmetry import Charges, conserved_charges
from .automaton import Plan, Strings, automaton
from .reduce import minimal_cores, minimal_cores_in_sectors
from .terms import MatrixTable, encode_terms

__all__ = ["OpSum"]


class OpSum:
    """A sum of operator strings on ``L`` sites, built term by term, turned into an MPO.

    ``site`` is ``"spin-half"``, ``"spin-one"``, ``"fermion"`` (spinless), ``"electron"``
    (spinful) or a list of ``L`` local dims (operators then given as arrays). OpSum is a
    mutable builder, like a list: [add][tnkit.OpSum.add] appends a term and returns the same
    OpSum; ``+`` and ``*`` return new ones. Fermionic operators carry their Jordan–Wigner
    strings; see the operators page of the docs for the names and conventions.

    ``conserve`` declares Abelian charges the sum must conserve (the symmetries page of the
    docs): a name or tuple of names of the site type (``"Sz"``, ``"N"``, ``"parity"``,
    ``("N", "Sz")``) or a [Charges][tnkit.symmetry.Charges] (one per site, or one for all,
    for sites given as dims). Then every factor must have a charge (``Sx`` under ``"Sz"``
    is refused: use ``S+``/``S-``) and every term total charge 0, else ``add`` raises a
    ValueError naming the term; the MPO's channels then each carry one charge
    ([bond_charges][tnkit.operators.charges.bond_charges]).

    Example:
        >>> import tnkit as tn
        >>> ops = tn.OpSum(4, site="spin-half")
        >>> for i in range(3):
        ...     _ = ops.add(1.0, "Sz", i, "Sz", i + 1).add(-0.5, "Sx", i)
        >>> ops.add(-0.5, "Sx", 3)
        OpSum(L=4, site='spin-half', terms=7)
        >>> ops.to_mpo().bond_dims
        (3, 3, 3)
    """

    __slots__ = ("_L", "_site", "_dims", "_terms", "_resolved", "_conserve", "_charges")

    def __init__(
        self, L: int, site: str | Sequence[int] = "spin-half", conserve: Any = None
    ) -> None:
        self._L = check_int(L, "L", minimum=1, maximum=MAX_SITES)
        self._site, self._dims = check_site_type(site, self._L)
        self._charges = conserved_charges(conserve, self._site, self._dims)
        self._conserve = conserve
        self._terms: list[tuple[complex | float, tuple[Factor, ...], tuple]] = []
        # (name, site) or (array bytes, dtype, shape, site) -> (Factor, given): factors met
        # before are neither checked nor copied again, and equal arrays share one copy
        self._resolved: dict[tuple, tuple[Factor, tuple]] = {}

    @property
    def L(self) -> int:
        """Number of sites."""
        return self._L

    @property
    def site(self) -> str | tuple[int, ...]:
        """The site type, or the local dims when built from a list of dims."""
        return self._site if self._site is not None else self._dims

    @property
    def charges(self) -> tuple[Charges, ...] | None:
        """Per site the conserved charges, or None when the sum declares none."""
        return self._charges

    @property
    def local_dims(self) -> tuple[int, ...]:
        """Local dimension of every site."""
        return self._dims

    @property
    def terms(self) -> tuple[tuple[Any, tuple[tuple[Any, int], ...]], ...]:
        """The terms as added: ``(coef, ((op, site), ...))`` with ``op`` a name or an array."""
        return tuple((coef, given) for coef, _, given in self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    def __repr__(self) -> str:
        kept = "" if self._charges is None else f", conserve={self._conserve!r}"
        return f"OpSum(L={self._L}, site={self.site!r}{kept}, terms={len(self)})"

    def add(self, coef: Any, *factors: Any) -> OpSum:
        """Append ``coef · op_1(site_1) · op_2(site_2) ···`` (factors multiply as written).

        ``factors`` alternate an operator (a name, or a ``(d, d)`` array, bosonic on fermionic
        sites) and its site. Same-site factors multiply too: ``add(1, "S+", 3, "S-", 3)`` is
        S+S- on site 3. Returns this OpSum, so calls chain.

        Example:
            >>> import numpy as np, tnkit as tn
            >>> ops = tn.OpSum(2).add(1.0, "S+", 0, "S-", 0)
            >>> np.diag(ops.to_mpo().to_matrix()).tolist()
            [1.0, 1.0, 0.0, 0.0]
        """
        number = coef if type(coef) is float and math.isfinite(coef) else check_coef(coef, "coef")
        if len(factors) < 2 or len(factors) % 2:
            raise ValueError(
                f"factors: expected op, site pairs (at least one), got {len(factors)} arguments"
            )
        pairs = [self._factor(factors[i], factors[i + 1]) for i in range(0, len(factors), 2)]
        resolved = tuple(pair[0] for pair in pairs)
        given = tuple(pair[1] for pair in pairs)
        if self._charges is not None:
            self._check_charge(number, given, [pair[2] for pair in pairs])
        self._terms.append((number, resolved, given))
        return self

    def _check_charge(self, coef: Any, given: tuple, charges: list) -> None:
        """ValueError naming the term when its total charge is not 0 (a zero factor makes
        the term zero, which conserves everything)."""
        if any(charge is None for charge in charges):
            return
        moduli = self._charges[0].moduli
        summed = (sum(c) for c in zip(*charges, strict=True))
        total = tuple(q % m if m else q for q, m in zip(summed, moduli, strict=True))
        if any(total):
            names = " ".join(f"{op if isinstance(op, str) else 'array'}({k})" for op, k in given)
            raise ValueError(
                f"factors: the term {coef!r} {names} changes {self._charges[0].names} by "
                f"{total}: it breaks conserve={self._conserve!r}"
            )

    def _factor(self, op: Any, site: Any) -> tuple[Factor, tuple, tuple[int, ...] | None]:
        """(the factor, its entry in ``terms``, its charge or None) of ``op`` on ``site``,
        checked once."""
        if type(site) is not int:  # floats and bools go the checking way (and fail there)
            key = None
        elif type(op) is str:
            key = (op, site)
        else:
            array = np.asarray(op)
            key = (array.tobytes(), array.dtype.str, array.shape, site)
        found = self._resolved.get(key) if key is not None else None
        if found is None:
            factor = resolve_op(op, site, self._site, self._dims)
            charge = None
            if self._charges is not None:
                label = repr(op) if isinstance(op, str) else "(an array)"
                charge = self._charges[factor.site].of(factor.matrix, f"op {label} on site {site}")
            found = (factor, (op if isinstance(op, str) else factor.matrix, factor.site), charge)
            if key is not None:
                self._resolved[key] = found
        return found

    def _same_space(self, other: Any, name: str) -> None:
        if not isinstance(other, OpSum):
            raise TypeError(f"{name}: expected an OpSum, got {type(other).__name__}")
        mine, theirs = (self._L, self._site, self._dims), (other._L, other._site, other._dims)
        if mine != theirs or other._charges != self._charges:
            raise ValueError(f"{name}: {other!r} does not act on the same sites as {self!r}")

    def _copy(self, scale: complex | float = 1.0) -> OpSum:
        new = OpSum.__new__(OpSum)
        new._L, new._site, new._dims = self._L, self._site, self._dims
        new._conserve, new._charges = self._conserve, self._charges
        new._resolved = dict(self._resolved)
        new._terms = [(scale * coef, resolved, given) for coef, resolved, given in self._terms]
        return new

    def __add__(self, other: OpSum) -> OpSum:
        self._same_space(other, "other")
        new = self._copy()
        new._terms.extend(other._terms)
        return new

    def __mul__(self, scale: Any) -> OpSum:
        return self._copy(check_coef(scale, "scale"))

    __rmul__ = __mul__

    def to_mpo(self, dtype: Any = None) -> MPO:
        """The MPO of the sum, exact and with minimal bond dimensions.

        ``bond_dims[k]`` is the operator Schmidt rank of the sum across the cut after site k
        (numerically: 10·max(m, n)·ε of a column's norm counts as zero): the automaton of
        Ren et al. (``tnkit.operators.automaton``) followed by an exact rank reduction of
        its channels (``tnkit.operators.reduce.minimal_cores``), which also sees linear
        relations between local matrices (``S+S- = 1/2 + Sz``) and structured coefficients
        (``Σ_{i<j} Z_i Z_j`` has bond 3). ``dtype`` None gives float64 when every core entry
        comes out real (imaginary factors that cancel, such as ``Sy·Sy``, included), else
        complex128. An empty sum (or one whose terms cancel) gives the zero operator with
        bond dimension 1.

        Example:
            >>> import tnkit as tn
            >>> ops = tn.OpSum(6)
            >>> for i in range(5):
            ...     _ = ops.add(0.5, "S+", i, "S-", i + 1).add(0.5, "S-", i, "S+", i + 1)
            ...     _ = ops.add(1.0, "Sz", i, "Sz", i + 1)
            >>> ops.to_mpo().bond_dims
            (4, 5, 5, 5, 4)
            >>> zz = tn.OpSum(8)
            >>> for i in range(8):
            ...     for j in range(i + 1, 8):
            ...         _ = zz.add(1.0, "Sz", i, "Sz", j)
            >>> zz.to_mpo().bond_dims
            (2, 3, 3, 3, 3, 3, 2)
        """
        strings, table = self._encoded()
        return _build(automaton(strings, self._L), table, dtype, self._charges)

    def _strings(self) -> tuple[dict, MatrixTable]:
        """The merged operator strings ``{((site, matrix id), ...): coef}`` without
        identities, and their matrices (zero terms and terms that cancel dropped)."""
        strings, table = self._encoded()
        return strings.as_dict(), table

    def _encoded(self) -> tuple[Strings, MatrixTable]:
        terms = [(coef, factors) for coef, factors, _ in self._terms]
        return encode_terms(terms, self._dims, parity(self._site))


# ---------------------------------------------------------------------- cores


def _build(
    plan: Plan, table: MatrixTable, dtype: Any, charges: tuple[Charges, ...] | None = None
) -> MPO:
    """The cores ``(Dl, d, d, Dr)`` of an automaton plan, reduced to minimal bonds (within
    each charge sector when ``charges`` are given), in the requested dtype."""
    is_complex = any(np.iscomplexobj(site[3]) for site in plan.entries) or any(
        np.iscomplexobj(m) for site in table.matrices for m in site
    )
    work = np.complex128 if is_complex else np.float64
    bonds = (1, *plan.bond_dims, 1)
    cores = []
    for k, (channel_in, matrix_id, channel_out, weight) in enumerate(plan.entries):
        matrices = table.matrices[k]
        d = matrices[0].shape[0]
        core = np.zeros((bonds[k], d, d, bonds[k + 1]), dtype=work)
        for used in np.unique(matrix_id):
            chosen = matrix_id == used
            coefficients = np.zeros((bonds[k], bonds[k + 1]), dtype=work)
            np.add.at(coefficients, (channel_in[chosen], channel_out[chosen]), weight[chosen])
            core += coefficients[:, None, None, :] * matrices[used][None, :, :, None]
        cores.append(core)
    if charges is None:
        cores = minimal_cores(cores)
    else:
        cores, _ = minimal_cores_in_sectors(cores, _channel_sectors(plan, table, charges))
    if is_complex and not any(core.imag.any() for core in cores):
        cores = [core.real.copy() for core in cores]
    built = MPO([_cast(core, dtype) for core in cores])
    return built if charges is None else built.with_charges(tuple(charges), site=None)


def _channel_sectors(
    plan: Plan, table: MatrixTable, charges: tuple[Charges, ...]
) -> list[np.ndarray]:
    """Per inner bond, a sector label per automaton channel: the charge of the operator
    string left of the cut, carried along the plan (channel out = channel in + charge of
    the matrix placed), charges numbered by one ``np.unique`` over all bonds."""
    left = np.array([charges[0].zero], dtype=np.int64)
    per_bond = []
    for k, (channel_in, matrix_id, channel_out, _) in enumerate(plan.entries[:-1]):
        placed = np.array(
            [charges[k].of(m) or charges[k].zero for m in table.matrices[k]], dtype=np.int64
        )
        arriving = charges[k].reduce(left[channel_in] + placed[matrix_id])
        right = np.zeros((plan.bond_dims[k], len(charges[k].zero)), dtype=np.int64)
        right[channel_out] = arriving
        if not np.array_equal(right[channel_out], arriving):  # a term check let one through
            raise RuntimeError(f"OpSum: channels of bond {k} mix charges")
        per_bond.append(right)
        left = right
    if not per_bond:
        return []
    _, labels = np.unique(np.concatenate(per_bond), axis=0, return_inverse=True)
    return np.split(labels.reshape(-1), np.cumsum(plan.bond_dims)[:-1])


def _cast(core: np.ndarray, dtype: Any) -> np.ndarray:
    if dtype is None:
        return core
    target = backend.resolve_dtype(np, dtype)
    if np.iscomplexobj(core) and not np.issubdtype(target, np.complexfloating):
        raise ValueError(f"dtype: the operator has complex entries, cannot be {dtype!r}")
    return core.astype(target)
