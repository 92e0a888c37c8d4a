"""Local site types: named operator matrices (spin-half, spin-one, fermion, electron),
their parity, and factors of operator strings with their Jordan–Wigner images.

NumPy host tables and validation only: nothing here builds an MPO or touches a train.
"""

from __future__ import annotations

import cmath
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ._checks import is_int
from .symmetry import SITE_BASES, site_charges

__all__ = [
    "SITE_TYPES",
    "Factor",
    "jordan_wigner_layout",
    "jordan_wigner_pieces",
    "local_charges",
    "local_operators",
    "parity",
    "resolve_op",
]

SITE_TYPES = tuple(SITE_BASES)


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
        >>> from tnkit.sites import local_operators
        >>> ops = local_operators("spin-half")
        >>> sorted(ops), ops["Sz"].diagonal().tolist()
        (['Id', 'S+', 'S-', 'Sx', 'Sy', 'Sz'], [0.5, -0.5])
    """
    if site not in _TABLES:
        raise ValueError(f"site: expected one of {SITE_TYPES} or a list of dims, got {site!r}")
    return {name: matrix.copy() for name, matrix in _TABLES[site].items()}


def local_charges(site: str, conserve: Any) -> dict[str, tuple[int, ...] | None]:
    """The charge of every named operator of a site type under ``conserve`` (see
    [site_charges][tnkit.symmetry.site_charges]), computed from the matrices: the change
    ``Q(out) − Q(in)`` that all its nonzero entries share, or None for an operator that
    mixes charges (``Sx``, ``Sy`` under ``"Sz"``), which a conserving OpSum refuses.

    Example:
        >>> from tnkit.sites import local_charges
        >>> charges = local_charges("spin-half", "Sz")       # units of 2·Sz
        >>> charges["S+"], charges["Sz"], charges["Sx"]
        ((2,), (0,), None)
        >>> local_charges("electron", ("N", "Sz"))["Cdagdn"]
        (1, -1)
    """
    if site not in _TABLES:
        raise ValueError(f"site: expected one of {SITE_TYPES}, got {site!r}")
    charges = site_charges(site, conserve)
    return {name: _charge_or_none(charges, matrix) for name, matrix in _TABLES[site].items()}


def _charge_or_none(charges: Any, matrix: np.ndarray) -> tuple[int, ...] | None:
    try:
        return charges.of(matrix)
    except ValueError:
        return None


def parity(site: str | None) -> np.ndarray | None:
    """The fermion parity F of a site type with fermion-odd operators, else None.

    Example:
        >>> parity("fermion").diagonal().tolist(), parity("spin-half")
        ([1.0, -1.0], None)
    """
    return _TABLES[site]["F"] if site in _ODD else None


def dimension(site: str) -> int:
    """The local dimension of a site type."""
    return _TABLES[site]["Id"].shape[0]


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


def jordan_wigner_layout(factors: Sequence[Factor]) -> list[tuple[int, tuple[int, ...]]]:
    """Per site that carries a piece, in site order: the pieces there in written order, each
    the index of a factor or −1 for the parity F of a fermion-odd factor further right.

    A fermion-odd factor on site i acts as F on every site < i, so the product of the
    images in written order has, on site k, the written-order product of op / F / I pieces.

    Example:
        >>> from tnkit.sites import Factor, jordan_wigner_layout
        >>> import numpy as np
        >>> c = np.eye(2)
        >>> jordan_wigner_layout([Factor(3, c, True), Factor(1, c, True)])   # c_3 c_1
        [(1, (-1, 1)), (2, (-1,)), (3, (0,))]
    """
    odd_sites = sorted(f.site for f in factors if f.odd)
    by_site: dict[int, list[int]] = {}
    if not odd_sites:
        for index, f in enumerate(factors):
            by_site.setdefault(f.site, []).append(index)
        return sorted((k, tuple(pieces)) for k, pieces in by_site.items())
    for k in {f.site for f in factors}:
        by_site[k] = [
            i if f.site == k else -1
            for i, f in enumerate(factors)
            if f.site == k or (f.odd and k < f.site)
        ]
    # Between factors the pieces are F^(number of odd factors further right): F² = 1, so only
    # sites with an odd count carry an F; on [o_i, o_{i+1}) that count is len(odd) − i.
    bounds = [0, *odd_sites]
    for i in range(len(odd_sites)):
        if (len(odd_sites) - i) % 2:
            for k in range(bounds[i], bounds[i + 1]):
                by_site.setdefault(k, [-1])
    return sorted((k, tuple(pieces)) for k, pieces in by_site.items())


def jordan_wigner_pieces(
    factors: Sequence[Factor], parities: Sequence[np.ndarray | None]
) -> list[tuple[int, np.ndarray]]:
    """Per site, the ordered product of the factors' Jordan–Wigner pieces on it (the
    matrices of [jordan_wigner_layout][tnkit.sites.jordan_wigner_layout])."""
    products = []
    for k, pieces in jordan_wigner_layout(factors):
        used = [factors[i].matrix if i >= 0 else parities[k] for i in pieces]
        product = used[0]
        for piece in used[1:]:
            product = product @ piece
        products.append((k, product))
    return products
