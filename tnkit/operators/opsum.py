"""OpSum: sums of operator strings turned into MPOs through a finite-state automaton.

Terms, their Jordan–Wigner images and the bipartite-graph construction of Ren, Li, Jiang &
Shuai (J. Chem. Phys. 153, 084118, 2020); nothing here contracts or truncates trains.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .. import _backend as backend
from .._checks import MAX_SITES, check_int
from ..mpo import MPO
from ..sites import Factor, check_coef, check_site_type, jordan_wigner_pieces, parity, resolve_op
from .automaton import Plan, automaton

__all__ = ["OpSum"]

# Two local matrices are the same operator when, scaled so that their first significant
# entry is 1, they agree to this many decimals (exact products agree to ~1e-16).
_KEY_DECIMALS = 12


class OpSum:
    """A sum of operator strings on ``L`` sites, built term by term, turned into an MPO.

    ``site`` is ``"spin-half"``, ``"spin-one"``, ``"fermion"`` (spinless), ``"electron"``
    (spinful) or a list of ``L`` local dims (operators then given as arrays). OpSum is a
    mutable builder, like a list: [add][tnkit.OpSum.add] appends a term and returns the same
    OpSum; ``+`` and ``*`` return new ones. Fermionic operators carry their Jordan–Wigner
    strings; see the operators page of the docs for the names and conventions.

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

    __slots__ = ("_L", "_site", "_dims", "_terms")

    def __init__(self, L: int, site: str | Sequence[int] = "spin-half") -> None:
        self._L = check_int(L, "L", minimum=1, maximum=MAX_SITES)
        self._site, self._dims = check_site_type(site, self._L)
        self._terms: list[tuple[complex | float, tuple[Factor, ...], tuple]] = []

    @property
    def L(self) -> int:
        """Number of sites."""
        return self._L

    @property
    def site(self) -> str | tuple[int, ...]:
        """The site type, or the local dims when built from a list of dims."""
        return self._site if self._site is not None else self._dims

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
        return f"OpSum(L={self._L}, site={self.site!r}, terms={len(self)})"

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
        number = check_coef(coef, "coef")
        if len(factors) < 2 or len(factors) % 2:
            raise ValueError(
                f"factors: expected op, site pairs (at least one), got {len(factors)} arguments"
            )
        pairs = tuple(zip(factors[::2], factors[1::2], strict=True))
        resolved = tuple(resolve_op(op, site, self._site, self._dims) for op, site in pairs)
        given = tuple(
            (op if isinstance(op, str) else f.matrix, f.site)
            for (op, _), f in zip(pairs, resolved, strict=True)
        )
        self._terms.append((number, resolved, given))
        return self

    def _same_space(self, other: Any, name: str) -> None:
        if not isinstance(other, OpSum):
            raise TypeError(f"{name}: expected an OpSum, got {type(other).__name__}")
        if (other._L, other._site, other._dims) != (self._L, self._site, self._dims):
            raise ValueError(f"{name}: {other!r} does not act on the same sites as {self!r}")

    def _copy(self, scale: complex | float = 1.0) -> OpSum:
        new = OpSum.__new__(OpSum)
        new._L, new._site, new._dims = self._L, self._site, self._dims
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
        """The MPO of the sum, with the bond dimensions of the bipartite-graph construction.

        ``dtype`` None gives float64 when every core entry comes out real (imaginary factors
        that cancel, such as ``Sy·Sy``, included), else complex128. An empty sum (or one whose
        terms cancel) gives the zero operator with bond dimension 1.

        Example:
            >>> import tnkit as tn
            >>> ops = tn.OpSum(6)
            >>> for i in range(5):
            ...     _ = ops.add(0.5, "S+", i, "S-", i + 1).add(0.5, "S-", i, "S+", i + 1)
            ...     _ = ops.add(1.0, "Sz", i, "Sz", i + 1)
            >>> ops.to_mpo().bond_dims
            (4, 5, 5, 5, 4)
        """
        strings, table = self._strings()
        return _build(automaton(strings, self._L), table, dtype)

    def _strings(self) -> tuple[dict, _MatrixTable]:
        """The merged operator strings ``{((site, matrix id), ...): coef}`` and their matrices."""
        table = _MatrixTable(self._dims)
        parities = [parity(self._site)] * self._L
        strings = _merge_strings(
            (coef, jordan_wigner_pieces(factors, parities), table)
            for coef, factors, _ in self._terms
        )
        return strings, table


# ---------------------------------------------------------------------- operator strings


class _MatrixTable:
    """Distinct local matrices per site, up to a scalar; id 0 is the identity."""

    def __init__(self, dims: Sequence[int]) -> None:
        self.matrices = [[np.eye(d)] for d in dims]
        self._ids = [{_key(np.eye(d)): 0} for d in dims]

    def scaled_id(self, site: int, matrix: np.ndarray) -> tuple[complex | float, int]:
        """(scale, id) with ``matrix == scale · matrices[site][id]``; scale 0 for a zero matrix."""
        flat = matrix.ravel()
        size = np.abs(flat)
        if size.max() == 0:
            return 0.0, 0
        scale = flat[int(np.argmax(size > 1e-12 * size.max()))]
        scale = scale.real if scale.imag == 0 else complex(scale)
        normalized = matrix / scale
        if np.iscomplexobj(normalized) and not normalized.imag.any():
            normalized = normalized.real
        ids = self._ids[site]
        key = _key(normalized)
        if key not in ids:
            ids[key] = len(self.matrices[site])
            self.matrices[site].append(normalized)
        return scale, ids[key]


def _key(matrix: np.ndarray) -> bytes:
    return (np.round(matrix.astype(np.complex128), _KEY_DECIMALS) + 0.0).tobytes()


def _merge_strings(
    terms: Iterable[tuple[complex | float, list[tuple[int, np.ndarray]], _MatrixTable]],
) -> dict[tuple[tuple[int, int], ...], complex | float]:
    """{operator string: summed coefficient}; strings are ((site, matrix id), ...) without
    identities; zero terms and terms that cancel are dropped."""
    strings: dict[tuple[tuple[int, int], ...], complex | float] = {}
    for coef, products, table in terms:
        string = []
        for site, matrix in products:
            scale, matrix_id = table.scaled_id(site, matrix)
            coef = coef * scale
            if matrix_id:
                string.append((site, matrix_id))
        if coef != 0:
            strings[tuple(string)] = strings.get(tuple(string), 0.0) + coef
    return {string: coef for string, coef in strings.items() if coef != 0}


# ---------------------------------------------------------------------- cores


def _build(plan: Plan, table: _MatrixTable, dtype: Any) -> MPO:
    """Dense cores ``(Dl, d, d, Dr)`` of an automaton plan, in the requested dtype."""
    is_complex = any(isinstance(e[3], complex) for site in plan.entries for e in site) or any(
        np.iscomplexobj(m) for site in table.matrices for m in site
    )
    work = np.complex128 if is_complex else np.float64
    bonds = (1, *plan.bond_dims, 1)
    cores = []
    for k, site_entries in enumerate(plan.entries):
        d = table.matrices[k][0].shape[0]
        core = np.zeros((bonds[k], d, d, bonds[k + 1]), dtype=work)
        for channel_in, matrix_id, channel_out, weight in site_entries:
            core[channel_in, :, :, channel_out] += weight * table.matrices[k][matrix_id]
        cores.append(core)
    if is_complex and not any(core.imag.any() for core in cores):
        cores = [core.real.copy() for core in cores]
    return MPO([_cast(core, dtype) for core in cores])


def _cast(core: np.ndarray, dtype: Any) -> np.ndarray:
    if dtype is None:
        return core
    target = backend.resolve_dtype(np, dtype)
    if np.iscomplexobj(core) and not np.issubdtype(target, np.complexfloating):
        raise ValueError(f"dtype: the operator has complex entries, cannot be {dtype!r}")
    return core.astype(target)
