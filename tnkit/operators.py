"""OpSum: sums of operator strings turned into MPOs through a finite-state automaton.

Local operator tables, Jordan–Wigner images and the bipartite-graph construction of Ren, Li,
Jiang & Shuai (J. Chem. Phys. 153, 084118, 2020); nothing here contracts or truncates trains.
"""

from __future__ import annotations

import cmath
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _backend as backend
from ._checks import MAX_SITES, check_int, is_int
from .mpo import MPO

__all__ = ["OpSum", "SITE_TYPES", "automaton", "local_operators", "min_vertex_cover"]

SITE_TYPES = ("spin-half", "spin-one", "fermion", "electron")

# Two local matrices are the same operator when, scaled so that their first significant
# entry is 1, they agree to this many decimals (exact products agree to ~1e-16).
_KEY_DECIMALS = 12


# ---------------------------------------------------------------------- local operator tables


def _spin_table(plus: np.ndarray) -> dict[str, np.ndarray]:
    minus = plus.T.copy()
    d = plus.shape[0]
    spin = (d - 1) / 2
    return {
        "Id": np.eye(d),
        "Sx": (plus + minus) / 2,
        "Sy": (plus - minus) / 2j,
        "Sz": np.diag(spin - np.arange(d)),
        "S+": plus,
        "S-": minus,
    }


def _electron_table() -> dict[str, np.ndarray]:
    # basis |0>, |up>, |dn>, |up dn> = c†_up c†_dn |0>: c_dn passes the up-parity of its site
    cdag_up = np.zeros((4, 4))
    cdag_up[1, 0] = cdag_up[3, 2] = 1.0
    cdag_dn = np.zeros((4, 4))
    cdag_dn[2, 0], cdag_dn[3, 1] = 1.0, -1.0
    n_up, n_dn = np.diag([0.0, 1, 0, 1]), np.diag([0.0, 0, 1, 1])
    return {
        "Id": np.eye(4),
        "Cdagup": cdag_up,
        "Cup": cdag_up.T.copy(),
        "Cdagdn": cdag_dn,
        "Cdn": cdag_dn.T.copy(),
        "Nup": n_up,
        "Ndn": n_dn,
        "N": n_up + n_dn,
        "NupNdn": n_up @ n_dn,
        "F": np.diag([1.0, -1, -1, 1]),
        "Sz": (n_up - n_dn) / 2,
        "S+": cdag_up @ cdag_dn.T,
        "S-": cdag_dn @ cdag_up.T,
    }


_TABLES: dict[str, dict[str, np.ndarray]] = {
    "spin-half": _spin_table(np.array([[0.0, 1.0], [0.0, 0.0]])),
    "spin-one": _spin_table(np.sqrt(2.0) * np.eye(3, k=1)),
    "fermion": {
        "Id": np.eye(2),
        "Cdag": np.array([[0.0, 0.0], [1.0, 0.0]]),
        "C": np.array([[0.0, 1.0], [0.0, 0.0]]),
        "N": np.diag([0.0, 1.0]),
        "F": np.diag([1.0, -1.0]),
    },
    "electron": _electron_table(),
}
_ODD = {
    "fermion": frozenset({"Cdag", "C"}),
    "electron": frozenset({"Cdagup", "Cup", "Cdagdn", "Cdn"}),
}
for _table in _TABLES.values():
    for _matrix in _table.values():
        _matrix.flags.writeable = False


def local_operators(site: str) -> dict[str, np.ndarray]:
    """The named local matrices of a site type (fresh, writable copies).

    Example:
        >>> from tnkit.operators import local_operators
        >>> ops = local_operators("spin-half")
        >>> sorted(ops), ops["Sz"].diagonal().tolist()
        (['Id', 'S+', 'S-', 'Sx', 'Sy', 'Sz'], [0.5, -0.5])
    """
    if site not in _TABLES:
        raise ValueError(f"site: expected one of {SITE_TYPES} or a list of dims, got {site!r}")
    return {name: matrix.copy() for name, matrix in _TABLES[site].items()}


# ---------------------------------------------------------------------- validation


class Factor(NamedTuple):
    """One factor of a term: its site, local matrix, and whether it is fermion-odd."""

    site: int
    matrix: np.ndarray
    odd: bool


def check_site_type(site: Any, L: int) -> tuple[str | None, tuple[int, ...]]:
    """(site type or None for plain dims, the L local dims); ValueError/TypeError on ``site``."""
    if isinstance(site, str):
        if site not in _TABLES:
            raise ValueError(f"site: expected one of {SITE_TYPES} or a list of dims, got {site!r}")
        return site, (_TABLES[site]["Id"].shape[0],) * L
    try:
        dims = tuple(site)
    except TypeError:
        dims = (None,)
    if not all(is_int(d) for d in dims):
        raise TypeError(f"site: expected one of {SITE_TYPES} or a list of ints, got {site!r}")
    if len(dims) != L or min(dims, default=1) < 1:
        raise ValueError(f"site: need {L} positive local dims (one per site), got {list(dims)}")
    return None, tuple(int(d) for d in dims)


def check_coef(value: Any, name: str) -> complex | float:
    """A finite real or complex number (not a bool), else TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    number = complex(value)
    if not cmath.isfinite(number):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return number.real if number.imag == 0 else number


def resolve_op(op: Any, site: int, site_type: str | None, dims: Sequence[int]) -> Factor:
    """The factor for operator ``op`` (a name or a (d, d) array) on ``site``."""
    site = _check_position(site, len(dims))
    d = dims[site]
    if isinstance(op, str):
        table = _TABLES[site_type] if site_type is not None else {"Id": np.eye(d)}
        if op not in table:
            kind = site_type or "list-of-dims"
            raise ValueError(
                f"op: unknown operator {op!r} for site type {kind!r}; valid names: "
                f"{', '.join(table)}" + ("" if site_type else " (or a (d, d) array)")
            )
        return Factor(site, table[op], op in _ODD.get(site_type, ()))
    matrix = np.array(op)  # a copy: later changes to the caller's array do not leak in
    if matrix.dtype.kind not in "iufc":
        raise TypeError(f"op: expected a name or a numeric (d, d) array, got {op!r}")
    if matrix.shape != (d, d):
        raise ValueError(f"op: array of shape {matrix.shape} on site {site}, needs ({d}, {d})")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"op: array on site {site} contains NaN or Inf")
    matrix.flags.writeable = False
    return Factor(site, matrix, False)


def _check_position(site: Any, L: int) -> int:
    if not is_int(site):
        raise TypeError(f"site: expected an int position, got {site!r}")
    if not 0 <= site < L:
        raise ValueError(f"site: {site} is out of range for L={L} (0 <= site < {L})")
    return int(site)


# ---------------------------------------------------------------------- the builder


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
        parity = _TABLES[self._site]["F"] if self._site in _ODD else None
        parities = [parity] * self._L
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


def jordan_wigner_pieces(
    factors: Sequence[Factor], parities: Sequence[np.ndarray | None]
) -> list[tuple[int, np.ndarray]]:
    """Per site, the ordered product of the factors' Jordan–Wigner pieces on it.

    A fermion-odd factor on site i acts as F on every site < i, so the product of the
    images in written order has, on site k, the written-order product of op / F / I pieces.
    """
    odd_sites = [f.site for f in factors if f.odd]
    occupied = {f.site for f in factors}
    products = []
    # Between factors the pieces are F^(number of odd factors further right): F² = 1, so only
    # sites with an odd count carry an F (none at all for an even string left of its factors).
    for k in range(max(odd_sites, default=0)):
        if k not in occupied and sum(site > k for site in odd_sites) % 2:
            products.append((k, parities[k]))
    for k in sorted(occupied):
        used = [
            f.matrix if f.site == k else parities[k]
            for f in factors
            if f.site == k or (f.odd and k < f.site)
        ]
        product = used[0]
        for piece in used[1:]:
            product = product @ piece
        products.append((k, product))
    return sorted(products, key=lambda item: item[0])


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


# ---------------------------------------------------------------------- the automaton


class Plan(NamedTuple):
    """What the automaton puts where: per site, ``(in channel, matrix id, out channel,
    weight)`` entries; ``bond_dims[k]`` channels cross the cut after site k."""

    entries: tuple[tuple[tuple[int, int, int, complex | float], ...], ...]
    bond_dims: tuple[int, ...]


def automaton(strings: dict[tuple[tuple[int, int], ...], Any], L: int) -> Plan:
    """Channels of the MPO of ``Σ coef · string`` by Ren et al.'s bipartite-graph sweep.

    At the cut after site k every remaining term is (channel c of the previous cut, matrix m
    on site k, rest of the string): the distinct (c, m) pairs and the distinct rests are the
    two sides of a bipartite graph whose edges carry the coefficients. A minimum vertex
    cover (König, from a Hopcroft–Karp matching) gives the new channels: a covered left
    vertex becomes a channel of weight 1 and its edges keep their coefficients as terms of
    the next cut; a covered right vertex becomes the complementary operator Σ coef·(c, m)
    over its not yet covered edges, one term of coefficient 1. The next cut's left vertices
    are built from these channels, which is what keeps consecutive cuts consistent.

    Example:
        >>> from tnkit.operators import automaton
        >>> strings = {((0, 1), (1, 1)): 1.0, ((1, 1), (2, 1)): 1.0}   # Z0 Z1 + Z1 Z2
        >>> automaton(strings, 3).bond_dims
        (2, 2)
    """
    if not strings:  # the zero operator
        return Plan(((),) * L, (1,) * (L - 1))
    rows = [(0, string, coef) for string, coef in strings.items()]
    entries, bond_dims = [], []
    for k in range(L - 1):
        rows, site_entries, n_channels = _cut(rows, k)
        entries.append(tuple(site_entries))
        bond_dims.append(n_channels)
    last = tuple((c, string[0][1] if string else 0, 0, coef) for c, string, coef in rows)
    return Plan((*entries, last), tuple(bond_dims))


def _cut(rows: list, k: int) -> tuple[list, list, int]:
    """One cut of the sweep: (the next cut's rows, this site's entries, number of channels)."""
    lefts: dict[tuple[int, int], int] = {}
    rights: dict[tuple, int] = {}
    weights: dict[tuple[int, int], Any] = {}
    for channel, string, coef in rows:
        here = bool(string) and string[0][0] == k
        left = (channel, string[0][1] if here else 0)
        rest = string[1:] if here else string
        edge = (lefts.setdefault(left, len(lefts)), rights.setdefault(rest, len(rights)))
        weights[edge] = weights.get(edge, 0.0) + coef
    left_keys, right_keys = list(lefts), list(rights)
    adjacency: list[list[int]] = [[] for _ in left_keys]
    for u, v in weights:
        adjacency[u].append(v)
    cover_left, cover_right = min_vertex_cover(adjacency, len(right_keys))
    next_rows, entries = [], []
    for channel, u in enumerate(cover_left):
        entries.append((*left_keys[u], channel, 1.0))
        next_rows.extend((channel, right_keys[v], weights[u, v]) for v in adjacency[u])
    uncovered: dict[int, list[int]] = {v: [] for v in cover_right}
    covered = set(cover_left)
    for u, v in weights:
        if u not in covered:
            uncovered[v].append(u)
    for channel, v in enumerate(cover_right, start=len(cover_left)):
        entries.extend((*left_keys[u], channel, weights[u, v]) for u in uncovered[v])
        next_rows.append((channel, right_keys[v], 1.0))
    return next_rows, entries, len(cover_left) + len(cover_right)


def min_vertex_cover(adjacency: Sequence[Sequence[int]], n_right: int) -> tuple[list, list]:
    """A minimum vertex cover (left vertices, right vertices) of a bipartite graph.

    König's theorem on a Hopcroft–Karp maximum matching: with Z the vertices reachable from
    unmatched left vertices by alternating paths, the cover is (left − Z) ∪ (right ∩ Z).

    Example:
        >>> from tnkit.operators import min_vertex_cover
        >>> min_vertex_cover([[0, 1, 2], [0], [0]], 3)   # a star and a shared neighbour
        ([0], [0])
    """
    match_left, match_right = _max_matching(adjacency, n_right)
    seen_left = [m < 0 for m in match_left]
    seen_right = [False] * n_right
    stack = [u for u, m in enumerate(match_left) if m < 0]
    while stack:
        u = stack.pop()
        for v in adjacency[u]:
            if not seen_right[v]:
                seen_right[v] = True
                w = match_right[v]
                if w >= 0 and not seen_left[w]:
                    seen_left[w] = True
                    stack.append(w)
    left = [u for u, seen in enumerate(seen_left) if not seen]
    return left, [v for v, seen in enumerate(seen_right) if seen]


def _max_matching(adjacency: Sequence[Sequence[int]], n_right: int) -> tuple[list, list]:
    """Hopcroft–Karp: BFS layers from the free left vertices, then layered augmenting paths
    found by an iterative DFS (no recursion limit on long chains)."""
    n_left = len(adjacency)
    match_left, match_right = [-1] * n_left, [-1] * n_right
    while True:
        layer = [-1] * n_left
        queue = [u for u in range(n_left) if match_left[u] < 0]
        for u in queue:
            layer[u] = 0
        found = False
        for u in queue:  # the queue grows while it is read
            for v in adjacency[u]:
                w = match_right[v]
                if w < 0:
                    found = True
                elif layer[w] < 0:
                    layer[w] = layer[u] + 1
                    queue.append(w)
        if not found or not _augment_all(adjacency, layer, match_left, match_right):
            return match_left, match_right


def _augment_all(adjacency, layer: list, match_left: list, match_right: list) -> bool:
    """Augment along vertex-disjoint shortest paths of one phase; True if any was found."""
    position = [0] * len(adjacency)
    augmented = False
    for root in range(len(adjacency)):
        if match_left[root] >= 0:
            continue
        path = [root]
        while path:
            u = path[-1]
            if position[u] == len(adjacency[u]):
                layer[u] = -1  # a dead end for the rest of the phase
                path.pop()
                continue
            v = adjacency[u][position[u]]
            position[u] += 1
            w = match_right[v]
            if w < 0:
                for x in path:  # each left vertex on the path takes the edge it last tried
                    y = adjacency[x][position[x] - 1]
                    match_left[x], match_right[y] = y, x
                augmented = True
                break
            if layer[w] == layer[u] + 1:
                path.append(w)
    return augmented


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
