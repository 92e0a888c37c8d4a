"""Sweeps of trains that conserve Abelian charges, by charge block: canonical forms by one
QR per charge, and the truncating sweep of the ``svd`` compression by one SVD per charge
with the singular values of every charge ranked together, so that a bond keeps or drops
whole charge-definite vectors. A dense SVD instead rotates (nearly) degenerate singular
vectors of different charges together, and a cut between them leaves the sector.

Host NumPy on fused cores ``(Dl, p, Dr)``; the flows are ``tnkit.sectors.site_flows`` with
the physical legs fused the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import _backend as backend
from ._scaling import exponent_for, largest_entry, ldexp, pull_power_of_two
from .canonical import absorb_left, absorb_right
from .compress import restore_scale
from .sectors import channel_charges, charge_labels, snap_to_charges
from .symmetry import Charges
from .truncation import Budget, Compressed, Truncation, choose_rank

__all__ = [
    "ChargedSplit",
    "canonicalize_by_charge",
    "compress_by_charge",
    "conserving",
    "qr_by_charges",
    "split_by_charges",
]

# What a QR sweep leaves outside the charge blocks is rounding up to this many ε of a core's
# largest entry (the accuracy a canonical form is held to).
SNAP_TOLERANCE = 1e3


def conserving(
    cores: Sequence[np.ndarray], flows: Sequence[np.ndarray], group: Charges
) -> list[np.ndarray] | None:
    """``cores`` (NumPy, from a dense sweep) that conserve ``group`` exactly: as they are if
    they do, with the rounding outside the charge blocks zeroed if that is all that stands
    in the way (``SNAP_TOLERANCE``), None otherwise.

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> up = np.array([1.0, 1e-20]).reshape(1, 2, 1)
        >>> conserving([up], [q.values], q)[0].ravel().tolist()
        [1.0, 0.0]
    """
    cores = [np.asarray(c) for c in cores]
    if channel_charges(cores, flows, group) is not None:
        return cores
    return snap_to_charges(cores, flows, group, SNAP_TOLERANCE * backend.eps(cores[0].dtype))


@dataclass(frozen=True)
class ChargedSplit:
    """``matrix ≈ left @ right`` with ``right``'s rows orthonormal and each of one charge
    (``charges``, one row per kept vector), ``left = U·S``; ``discarded`` the squared weight
    of the singular values cut."""

    left: np.ndarray
    right: np.ndarray
    charges: np.ndarray
    discarded: float


def split_by_charges(
    matrix: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    max_bond: int | None,
    budget: float | None,
) -> ChargedSplit:
    """Truncated SVD of a ``matrix`` that is zero outside the blocks where the charge of a
    row (``rows``) equals that of a column (``cols``): one SVD per charge, the rank chosen
    over all singular values together by the rule of ``truncated_split``.

    Example:
        >>> m = np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
        >>> s = split_by_charges(m, np.array([[0], [1]]), np.array([[0], [1], [1]]),
        ...                      max_bond=1, budget=None)
        >>> s.charges.ravel().tolist(), round(s.discarded, 12)
        ([0], 5.0)
    """
    parts = []
    for charge, r, c in _shared_groups(rows, cols):
        u, s, vh = np.linalg.svd(matrix[np.ix_(r, c)], full_matrices=False)
        parts.append((charge, r, c, u, s, vh))
    values = np.concatenate([p[4] for p in parts]) if parts else np.zeros(1)
    order = np.argsort(-values, kind="stable")
    rank = choose_rank(
        values[order],
        shape=matrix.shape,
        eps=backend.eps(matrix.dtype),
        max_bond=max_bond,
        budget=budget,
    )
    kept = np.zeros(values.size, dtype=bool)
    kept[order[:rank]] = True
    left = np.zeros((matrix.shape[0], rank), dtype=matrix.dtype)
    right = np.zeros((rank, matrix.shape[1]), dtype=matrix.dtype)
    charges = np.zeros((rank, rows.shape[1]), dtype=np.int64)
    column, start = 0, 0
    for charge, r, c, u, s, vh in parts:
        mine = np.flatnonzero(kept[start : start + s.size])
        start += s.size
        if mine.size == 0:
            continue
        span = slice(column, column + mine.size)
        left[r, span] = u[:, mine] * s[mine]
        right[span, c] = vh[mine]
        charges[span] = charge
        column += mine.size
    if not parts:  # a structurally zero matrix: one unit vector of the first column's charge
        right[0, 0], charges[0] = 1, cols[0]
        return ChargedSplit(left, right, charges, 0.0)
    return ChargedSplit(left, right, charges, float(np.sum(values[~kept] ** 2)))


def qr_by_charges(
    matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(q, r, charges)`` with ``matrix = q @ r``, ``q``'s columns orthonormal and each of
    one charge (``charges``), for a ``matrix`` zero outside the blocks where a row's charge
    (``rows``) equals a column's (``cols``): one thin QR per charge, nothing cut.

    Example:
        >>> m = np.array([[3.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
        >>> q, r, charges = qr_by_charges(m, np.array([[0], [1], [1]]), np.array([[0], [1]]))
        >>> bool(np.allclose(q @ r, m)), charges.ravel().tolist()
        (True, [0, 1])
    """
    blocks = [
        (charge, i, j, *np.linalg.qr(matrix[np.ix_(i, j)]))
        for charge, i, j in _shared_groups(rows, cols)
    ]
    if not blocks:  # a structurally zero matrix: one unit vector of the first row's charge
        q = np.zeros((matrix.shape[0], 1), dtype=matrix.dtype)
        q[0, 0] = 1
        return q, np.zeros((1, matrix.shape[1]), dtype=matrix.dtype), rows[:1].copy()
    width = sum(block[3].shape[1] for block in blocks)
    q = np.zeros((matrix.shape[0], width), dtype=matrix.dtype)
    r = np.zeros((width, matrix.shape[1]), dtype=matrix.dtype)
    charges = np.zeros((width, rows.shape[1]), dtype=np.int64)
    start = 0
    for charge, i, j, q_block, r_block in blocks:
        span = slice(start, start + q_block.shape[1])
        q[i, span], r[span, j], charges[span] = q_block, r_block, charge
        start = span.stop
    return q, r, charges


def _shared_groups(rows: np.ndarray, cols: np.ndarray) -> list[tuple]:
    """``(charge, row indices, column indices)`` for every charge that rows and columns
    both carry (one sort for all: the rows' and columns' charges labelled together)."""
    found, labels = charge_labels(np.concatenate([rows, cols]))
    row_labels, col_labels = labels[: len(rows)], labels[len(rows) :]
    row_order = np.argsort(row_labels, kind="stable")
    col_order = np.argsort(col_labels, kind="stable")
    bins = np.arange(len(found) + 1)
    row_edges = np.searchsorted(row_labels[row_order], bins)
    col_edges = np.searchsorted(col_labels[col_order], bins)
    groups = []
    for g in range(len(found)):
        r = row_order[row_edges[g] : row_edges[g + 1]]
        c = col_order[col_edges[g] : col_edges[g + 1]]
        if r.size and c.size:
            groups.append((found[g], r, c))
    return groups


def canonicalize_by_charge(
    cores: tuple,
    flows: Sequence[np.ndarray],
    group: Charges,
    centre: int | None,
    target: int,
    *,
    rescale: bool = False,
    bonds: Sequence[np.ndarray] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], int] | None:
    """``(cores, bonds, exponent)``: fused NumPy ``cores`` that conserve ``group`` moved to
    the mixed-canonical form about ``target`` by one QR per charge block (only the sites
    between ``centre`` and ``target`` when ``centre`` is known), with the bonds' channel
    charges. With ``rescale`` every swept core gives a power of two to ``exponent`` first
    (the result is ``2**exponent`` times the new cores), so that no norm leaves the dtype's
    range; 0 otherwise. ``bonds``: the channel charges of cores known to be block-sparse in
    them (held blocks), else read off the cores. None when the cores are not block-sparse in
    their charges, even after zeroing rounding.
    """
    if bonds is None:
        cores = conserving(cores, flows, group)  # a dense sweep's rounding zeroed
        if cores is None:
            return None
        bonds = channel_charges(cores, flows, group)
    else:
        cores, bonds = [np.asarray(c) for c in cores], list(bonds)
    last, exponent = len(cores) - 1, 0
    left = range(0 if centre is None else min(centre, target), target)
    right = range(last if centre is None else max(centre, target), target, -1)
    with backend.blas_threads(backend.sweep_threads(tuple(cores))):
        for k in left:
            if rescale:
                cores[k], shift = pull_power_of_two(cores[k])
                exponent += shift
            dl, p, dr = cores[k].shape
            rows = group.reduce(bonds[k][:, None, :] + flows[k][None, :, :]).reshape(dl * p, -1)
            q, r, bonds[k + 1] = qr_by_charges(cores[k].reshape(dl * p, dr), rows, bonds[k + 1])
            cores[k] = q.reshape(dl, p, -1)
            cores[k + 1] = absorb_left(r, cores[k + 1])
        for k in right:
            if rescale:
                cores[k], shift = pull_power_of_two(cores[k])
                exponent += shift
            dl, p, dr = cores[k].shape
            cols = group.reduce(bonds[k + 1][None, :, :] - flows[k][:, None, :]).reshape(p * dr, -1)
            q, r, bonds[k] = qr_by_charges(cores[k].reshape(dl, p * dr).conj().T, cols, bonds[k])
            cores[k] = q.conj().T.reshape(-1, p, dr)
            cores[k - 1] = absorb_right(cores[k - 1], r.conj().T)
    return cores, bonds, exponent


def compress_by_charge(
    cores: tuple,
    flows: Sequence[np.ndarray],
    group: Charges,
    centre: int | None,
    truncation: Truncation,
    *,
    rescale: bool = False,
    bonds: Sequence[np.ndarray] | None = None,
) -> Compressed | None:
    """The ``svd`` method's compression of fused NumPy ``cores`` that conserve ``group``
    (flows fused like the cores): to the left-canonical form by one QR per charge block
    (``canonicalize_by_charge``), then right to left one SVD per charge block, truncating
    every bond. None when the cores are not block-sparse in their charges (the caller takes
    the dense sweep), or when a norm left the dtype's range without ``rescale``. With
    ``rescale`` (the ``rescaled`` method) the swept cores give powers of two to the scale
    first, and core 0 takes it back where it can hold it (else the result's ``exponent``).
    The result is right-canonical (centre 0) and conserves exactly. ``bonds`` as for
    ``canonicalize_by_charge``.
    """
    last = len(cores) - 1
    moved = canonicalize_by_charge(cores, flows, group, centre, last, rescale=rescale, bonds=bonds)
    if moved is None:
        return None
    cores, bonds, exponent = moved
    if rescale:
        cores[last], shift = pull_power_of_two(cores[last])
        exponent += shift
    if truncation.atol is not None and exponent:
        truncation = dataclasses.replace(truncation, atol=ldexp(truncation.atol, -exponent))
    with backend.blas_threads(backend.sweep_threads(tuple(cores))):
        if exponent_for(largest_entry(cores[last]), cores[last].dtype):
            return None  # squared weights would under- or overflow: the rescaled sweep
        norm = float(np.linalg.norm(cores[last]))
        if not math.isfinite(norm):
            return None
        budget = Budget(truncation.total_budget(norm), last)
        discarded = [0.0] * last
        for k in range(last, 0, -1):
            dl, p, dr = cores[k].shape
            cols = group.reduce(bonds[k + 1][None, :, :] - flows[k][:, None, :])
            split = split_by_charges(
                cores[k].reshape(dl, p * dr),
                bonds[k],
                cols.reshape(p * dr, -1),
                max_bond=truncation.max_bond,
                budget=budget.allowance(),
            )
            cores[k] = split.right.reshape(-1, p, dr)
            cores[k - 1] = absorb_right(cores[k - 1], split.left)
            bonds[k] = split.charges
            discarded[k - 1] = split.discarded
            budget.spend(split.discarded)
    total = math.sqrt(max(sum(discarded), 0.0))
    rel = total / norm if norm > 0 else 0.0
    met = budget.met(discarded)  # in the units of the budget
    if not rescale:
        return Compressed(tuple(cores), 0, norm, discarded, rel, met, "svd/charges")
    new, kept = restore_scale(tuple(cores), exponent)
    discarded = [ldexp(d, 2 * exponent) for d in discarded]
    return Compressed(new, 0, ldexp(norm, exponent), discarded, rel, met, "rescaled/charges", kept)
