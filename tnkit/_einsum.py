"""Multi-tensor contractions on any array-API library: opt_einsum plans, tensordot executes.

opt_einsum chooses the pairwise order (cached per subscripts and shapes); each pair is
contracted with ``xp.tensordot`` and a final ``permute_dims``, which every array-API library
has. Only plain contractions: every index appears in at most two operands.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import array_api_compat as aac
import numpy as np
import opt_einsum


def contract(subscripts: str, *operands: Any) -> Any:
    """``einsum(subscripts, *operands)`` in the order opt_einsum finds cheapest.

    Example:
        >>> import numpy as np
        >>> a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 5))
        >>> contract("ij,jk,kl->il", a, b, c).shape
        (2, 5)
    """
    inputs, output = subscripts.replace(" ", "").split("->")
    terms = inputs.split(",")
    path = _plan(subscripts, tuple(tuple(int(s) for s in op.shape) for op in operands))
    xp = aac.array_namespace(*operands)
    live = list(zip(operands, terms, strict=True))
    for positions in path:
        picked = [live[p] for p in sorted(positions, reverse=True)]
        for p in sorted(positions, reverse=True):
            del live[p]
        needed = output + "".join(term for _, term in live)
        live.append(_pair(xp, picked, needed) if len(picked) == 2 else picked[0])
    ((result, indices),) = live
    if indices != output:
        result = xp.permute_dims(result, tuple(indices.index(c) for c in output))
    return result


@functools.lru_cache(maxsize=1024)
def _plan(subscripts: str, shapes: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    if len(shapes) == 1:
        return ((0,),)
    path, _ = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize="auto")
    return tuple(tuple(step) for step in path)


def _pair(xp: Any, picked: list, needed: str) -> tuple[Any, str]:
    (a, ia), (b, ib) = picked
    summed = [c for c in ia if c in ib and c not in needed]
    kept = [c for c in ia if c in ib and c in needed]
    if kept:
        raise ValueError(f"contract: batch index {kept} is not supported (indices {ia}, {ib})")
    indices = "".join(c for c in ia if c not in summed) + "".join(c for c in ib if c not in summed)
    if summed and isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return _matmul_pair(a, ia, b, ib, summed), indices
    axes = ([ia.index(c) for c in summed], [ib.index(c) for c in summed])
    return xp.tensordot(a, b, axes=axes), indices


def _matmul_pair(a: np.ndarray, ia: str, b: np.ndarray, ib: str, summed: list) -> np.ndarray:
    """``tensordot`` of NumPy arrays as one matrix product of views where it can be: an
    operand whose summed axes form a block at its start or end (in the order chosen) is
    viewed as a matrix, transposed or not, and BLAS reads it in place; only the others are
    copied into shape (tensordot copies every operand whose axes need moving)."""
    best = min(
        (sorted(summed, key=ia.index), sorted(summed, key=ib.index)),
        key=lambda order: _copied(a, ia, order) + _copied(b, ib, order),
    )
    left = _as_matrix(a, ia, best, summed_last=True)
    right = _as_matrix(b, ib, best, summed_last=False)
    kept = [a.shape[ia.index(c)] for c in ia if c not in summed]
    kept += [b.shape[ib.index(c)] for c in ib if c not in summed]
    return (left @ right).reshape(kept)


def _block_at(x: np.ndarray, indices: str, order: list) -> str | None:
    """``"start"``/``"end"`` when ``order`` is a block of ``indices`` there and ``x`` is
    C-ordered (so a matrix view exists), else None."""
    if not x.flags.c_contiguous:
        return None
    joined = "".join(order)
    if indices.startswith(joined):
        return "start"
    if indices.endswith(joined):
        return "end"
    return None


def _copied(x: np.ndarray, indices: str, order: list) -> int:
    return 0 if _block_at(x, indices, order) else x.size


def _as_matrix(x: np.ndarray, indices: str, order: list, *, summed_last: bool) -> np.ndarray:
    """``x`` as a (kept × summed) matrix (``summed_last``) or (summed × kept), a view when the
    summed axes are a block at either end."""
    size = math.prod(x.shape[indices.index(c)] for c in order)
    rest = math.prod(x.shape[i] for i, c in enumerate(indices) if c not in order)
    where = _block_at(x, indices, order)
    if where == "start":
        matrix = x.reshape(size, rest)
        return matrix.T if summed_last else matrix
    if where == "end":
        matrix = x.reshape(rest, size)
        return matrix if summed_last else matrix.T
    kept_axes = [indices.index(c) for c in indices if c not in order]
    summed_axes = [indices.index(c) for c in order]
    moved = x.transpose(kept_axes + summed_axes if summed_last else summed_axes + kept_axes)
    shape = (rest, size) if summed_last else (size, rest)
    return np.ascontiguousarray(moved).reshape(shape)
