"""Exact rank reduction of an automaton MPO to its minimal bonds (operator Schmidt ranks),
keeping the identity channels of the regular form wherever the minimal rank allows.

NumPy host cores ``(Dl, d, d, Dr)`` in, the same operator with minimal bonds out; nothing
is truncated beyond numerical zero, nothing is contracted with a state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["minimal_cores", "minimal_cores_in_sectors", "span_basis"]

# A column is a linear combination of others when its residual is at most this many ε times
# max(rows, columns) times its own norm (and zero at this level of the largest column): the
# SVD's numerical zero of DESIGN §1, 10·max(m, n)·ε, per column.
_ZERO_FACTOR = 10.0
# One column and one row pass reach the ranks in exact arithmetic; a further round only
# confirms them (or removes a dependence that rounding hid).
_MAX_ROUNDS = 4
# Coefficients whose contribution is below this many ε of the column are rounding, set to 0.
_EPS_FACTOR = 4.0


def minimal_cores(cores: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The MPO of ``cores`` with every bond equal to the operator Schmidt rank of its cut.

    A left-to-right pass removes every channel whose left operator is a linear combination
    of the others and pushes its coefficients into the next core (after it, the left
    operators of every bond are linearly independent); a right-to-left pass does the same
    for the right operators, which keeps the left ones independent. With both sets
    independent a bond is the rank of the operator across its cut (Hubig, McCulloch &
    Schollwöck, PRB 95, 035129, "delinearisation"). Before each pass the identity channels
    (start: left operator 1; done: right operator 1) are found and put first in the basis:
    the start column and the done row stay exactly the identity unless the minimal rank
    itself needs them merged, so the result stays in the regular form that Parker
    compression (``tnkit.parker``) takes.

    Example:
        >>> import numpy as np
        >>> eye, z = np.eye(2), np.diag([1.0, -1.0])
        >>> first = np.stack([eye, z, z], axis=-1)[None]          # Z0 Z1 written twice
        >>> last = np.stack([0 * eye, 0.5 * z, 0.5 * z])[..., None]
        >>> [c.shape[-1] for c in minimal_cores([first, last])[:-1]]
        [1]
    """
    return _reduce(cores, None)[0]


def minimal_cores_in_sectors(
    cores: Sequence[np.ndarray], sectors: Sequence[np.ndarray]
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """[minimal_cores][tnkit.operators.reduce.minimal_cores] for cores whose channels carry
    conserved charges: ``sectors[k]`` labels each channel of inner bond k (equal labels,
    equal charge). Returns the reduced cores and the labels of the channels kept.

    Operators of different charges are linearly independent, so a channel is only ever a
    combination of channels of its own sector: coefficients across sectors are rounding,
    and are set to exactly 0. Every nonzero block of the result stays in its sector, which
    is what a block-sparse core needs. Bonds and operator are those of ``minimal_cores``.

    Example:
        >>> import numpy as np
        >>> eye, z = np.eye(2), np.diag([1.0, -1.0])
        >>> first = np.stack([eye, z, z], axis=-1)[None]          # Z0 Z1 written twice
        >>> last = np.stack([0 * eye, 0.5 * z, 0.5 * z])[..., None]
        >>> cores, sectors = minimal_cores_in_sectors([first, last], [np.array([0, 0, 0])])
        >>> cores[0].shape[-1], sectors[0].tolist()
        (1, [0])
    """
    return _reduce(cores, [np.asarray(labels) for labels in sectors])


def _reduce(cores: Sequence[np.ndarray], sectors: list | None) -> tuple[tuple, tuple]:
    host = [np.asarray(core) for core in cores]
    if len(host) == 1:
        return (host[0],), ()
    for _ in range(_MAX_ROUNDS):
        bonds = [core.shape[-1] for core in host[:-1]]
        host = _pass(host, sectors, rightward=True)
        host = _pass(host, sectors, rightward=False)
        if [core.shape[-1] for core in host[:-1]] == bonds:
            break
    return tuple(host), tuple(sectors or ())


def _pass(host: list, sectors: list | None, *, rightward: bool) -> list:
    """One sweep of ``span_basis`` over the bonds, the identity channels first; with
    ``sectors``, coefficients across sectors dropped and the kept labels updated in place."""
    start, done = _identity_channels(host)
    last = len(host) - 1
    for k in range(last) if rightward else range(last - 1, -1, -1):
        if rightward:  # columns: the left operators of bond k; coefficients into site k+1
            basis = span_basis(host[k].reshape(-1, host[k].shape[-1]), [start[k], done[k]])
        else:  # rows of site k+1: the right operators of bond k; coefficients into site k
            after = host[k + 1]
            basis = span_basis(after.reshape(after.shape[0], -1).T, [done[k], start[k]])
        if basis is None:
            continue
        keep, coeffs = basis
        if sectors is not None:
            labels = sectors[k]
            coeffs = np.where(labels[keep][:, None] == labels[None, :], coeffs, 0)
            sectors[k] = labels[keep]
        if rightward:
            host[k] = host[k][..., keep]
            host[k + 1] = _combine(coeffs, keep, host[k + 1])
        else:
            host[k + 1] = host[k + 1][keep]
            host[k] = np.moveaxis(_combine(coeffs, keep, np.moveaxis(host[k], 3, 0)), 0, 3)
    return host


def _combine(coeffs: np.ndarray, keep: list[int], channels: np.ndarray) -> np.ndarray:
    """``coeffs @ channels`` over the first axis, where ``coeffs`` is the identity on
    ``keep``: only the removed channels are multiplied (the kept ones carry over exactly)."""
    removed = np.setdiff1d(np.arange(coeffs.shape[1]), keep)
    result = channels[keep].astype(np.result_type(coeffs, channels))
    if removed.size:
        pushed = coeffs[:, removed] @ channels[removed].reshape(removed.size, -1)
        result += pushed.reshape(result.shape)
    return result


def _identity_channels(host: list) -> tuple[list, list]:
    """(start channel, done channel) per bond, None where a bond has none: the start channel
    continues the start channel of the bond before with a multiple of the identity and
    nothing else feeds it; the done channel, read from the right, the same way round."""
    n = len(host)
    start: list = [None] * (n - 1)
    row: int | None = 0
    for k in range(n - 1):
        row = start[k] = _continuation(host[k], row) if row is not None else None
    done: list = [None] * (n - 1)
    column: int | None = 0
    for k in range(n - 1, 0, -1):
        flipped = np.moveaxis(host[k], (0, 3), (3, 0))
        column = done[k - 1] = _continuation(flipped, column) if column is not None else None
    return start, done


def _continuation(core: np.ndarray, row: int) -> int | None:
    """The first column whose only block is ``c·1`` (c ≠ 0) in ``row``, or None."""
    tiny = _ZERO_FACTOR * float(np.finfo(core.dtype).eps) * float(np.abs(core).max(initial=0))
    block = core[row]  # (d, d, Dr)
    scale = block[0, 0]
    eye = np.eye(block.shape[0])[..., None]
    multiple = np.all(np.abs(block - scale * eye) <= tiny, axis=(0, 1)) & (np.abs(scale) > tiny)
    others = np.abs(np.delete(core, row, axis=0)) <= tiny
    found = np.flatnonzero(multiple & np.all(others, axis=(0, 1, 2)))
    return int(found[0]) if found.size else None


def span_basis(
    m: np.ndarray, first: Sequence[int | None] = (), tol: float | None = None
) -> tuple[list[int], np.ndarray] | None:
    """``(keep, coeffs)`` with ``m == m[:, keep] @ coeffs`` and ``m[:, keep]`` a basis of the
    column space, or None when the columns are already independent.

    The columns in ``first`` (None entries skipped) enter the basis before the others.
    Columns alone in some row are independent of all others and kept at once; the rest are
    chosen by Gram–Schmidt with column pivoting on the unit-normalised columns. A column is
    dependent when its residual is at most ``tol`` times its norm and zero when its norm is
    at most ``tol`` times the largest; the default ``tol`` is 10·max(rows, columns)·ε.
    ``coeffs`` is exactly the identity on ``keep`` (columns in order), so kept channels
    carry over unchanged.

    Example:
        >>> import numpy as np
        >>> m = np.array([[1.0, 2.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
        >>> keep, coeffs = span_basis(m, [3])
        >>> keep, bool(np.allclose(m[:, keep] @ coeffs, m))
        ([0, 3], True)
    """
    rows, n = m.shape
    if tol is None:
        tol = _ZERO_FACTOR * max(rows, n) * float(np.finfo(m.dtype).eps)
    norms = np.linalg.norm(m, axis=0)
    live = norms > tol * float(norms.max(initial=0.0))
    if not live.any():  # the zero operator: one channel stays
        return ([0], np.zeros((1, n), dtype=m.dtype)) if n > 1 else None
    alone = _peel(m, live, norms, tol)
    tangled = np.flatnonzero(live & ~alone)
    keep = [int(j) for j in np.flatnonzero(alone)]
    if tangled.size:
        support = np.flatnonzero(np.any(m[:, tangled] != 0, axis=1))
        sub = m[np.ix_(support, tangled)]
        position = {int(j): a for a, j in enumerate(tangled)}
        first = [position[j] for j in first if j is not None and j in position]
        keep += [int(tangled[a]) for a in _independent(sub, norms[tangled], first, tol)]
    if len(keep) == n:
        return None
    keep.sort()
    coeffs = np.zeros((len(keep), n), dtype=m.dtype)
    coeffs[np.arange(len(keep)), keep] = 1
    kept = set(keep)
    dependent = [int(j) for j in tangled if j not in kept]
    if dependent:  # a peeled column never enters a dependence: solve on the tangled rows
        basis = [a for a, j in enumerate(keep) if j in position]
        columns = [keep[a] for a in basis]
        scale = norms[columns]
        solved = np.linalg.lstsq(
            sub[:, [position[j] for j in columns]] / scale,
            sub[:, [position[j] for j in dependent]],
            rcond=None,
        )[0]
        solved = solved / scale[:, None]
        # rounding-level coefficients would fill exact zeros of the next core with noise
        solved[
            np.abs(solved) * scale[:, None]
            <= _EPS_FACTOR * np.finfo(m.dtype).eps * norms[dependent]
        ] = 0
        coeffs[np.ix_(basis, dependent)] = solved
    return keep, coeffs


def _peel(m: np.ndarray, live: np.ndarray, norms: np.ndarray, tol: float) -> np.ndarray:
    """Columns that are alone in some row (every other live column exactly zero there, and
    the entry above ``tol`` of the column's norm), found again after each removal: no
    linear dependence can involve them (the entry in that row could not cancel), so only
    the others need a QR. The automaton's prefix and suffix channels are all of this kind."""
    nonzero = m != 0
    active = live.copy()
    alone = np.zeros_like(live)
    while True:
        count = nonzero[:, active].sum(axis=1)
        rows = np.flatnonzero(count == 1)
        if not rows.size:
            return alone
        owner = np.argmax(nonzero[np.ix_(rows, active)], axis=1)
        owner = np.flatnonzero(active)[owner]
        large = np.abs(m[rows, owner]) > tol * norms[owner]
        found = np.unique(owner[large])
        if not found.size:
            return alone
        alone[found] = True
        active[found] = False


def _independent(sub: np.ndarray, norms: np.ndarray, first: list, tol: float) -> list[int]:
    """Indices of a basis of the columns of ``sub``: ``first`` before the others.

    Gram–Schmidt with column pivoting on the unit-normalised columns, which stops at the
    rank: each step takes the column with the largest residual (a ``first`` column while
    any is left), orthogonalises it once more against the basis, and removes it from all
    others. The cost is rows·columns·rank, small where the rank is small (a QR with
    pivoting would pay for all columns).
    """
    residual = sub / norms
    basis = np.zeros((sub.shape[0], 0), dtype=sub.dtype)
    waiting = list(dict.fromkeys(first))
    open_ = np.ones(sub.shape[1], dtype=bool)
    keep: list[int] = []
    while open_.any():
        sizes = np.where(open_, np.linalg.norm(residual, axis=0), -1.0)
        forced = bool(waiting)
        pick = waiting.pop(0) if forced else int(np.argmax(sizes))
        open_[pick] = False
        if sizes[pick] <= tol:
            if forced:
                continue
            break  # the largest residual left is zero: the rest depend on the basis
        vector = _residual(basis, residual[:, pick])
        size = float(np.linalg.norm(vector))
        if size <= tol:
            continue
        vector /= size
        keep.append(pick)
        basis = np.column_stack([basis, vector])
        residual -= np.outer(vector, vector.conj() @ residual)
    return keep


def _residual(orthonormal: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x`` minus its projection on the orthonormal columns, twice (Gram–Schmidt twice is
    enough)."""
    for _ in range(2):
        x = x - orthonormal @ (orthonormal.conj().T @ x)
    return x
