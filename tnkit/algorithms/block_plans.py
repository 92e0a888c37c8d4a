"""Block-sparse effective operators compiled once per local problem: a chain of block
contractions turned into index arrays and matrix products on flat NumPy vectors.

A Krylov solve applies the same effective operator ten to forty times; only the vector
changes. symmray re-derives how blocks pair up, fuses them and splits them on every call
(measured: 73 % of a Hubbard DMRG sweep at bond 128 in that bookkeeping, in Python). Here it
is done once: each contraction becomes, per charge flowing through the contracted legs, one
matrix product whose operands are gathered from flat buffers by precomputed indices (the
fixed operand once, at compile time; the running one by one ``take`` per call). Blocks a
product never meets are zeros in those matrices (a sentinel entry at the end of each
buffer), as in symmray's and TeNPy's fused products.

Compiling is itself vectorised: a block is a row of small integer arrays (its charges per
leg, its shape, where its first entry lies and the stride of each leg), so pairing blocks
is a few ``np.unique`` calls over blocks, and the index arrays are filled by arithmetic over
the entries of all blocks of one shape at once: one Python round per distinct block shape
(tens), none per block or entry. It must not change any
number: tests compare every compiled operator with the symmray contraction it replaces.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ChainStep", "CompiledChain", "Placed", "compile_chain", "placed_array", "placed_layout"]


@dataclass(frozen=True)
class Placed:
    """Blocks of a tensor whose entries lie in a flat buffer, one row per block: the
    charge of each leg (``charges``: blocks × legs × components), the block's ``shape``,
    the buffer position of its first entry (``base``) and each leg's ``strides`` in the
    buffer. ``duals`` says which legs are dual; the buffer holds ``size`` entries and then
    a zero."""

    charges: np.ndarray
    shape: np.ndarray
    base: np.ndarray
    strides: np.ndarray
    duals: tuple
    size: int


def placed_array(array: Any) -> tuple[Placed, np.ndarray]:
    """A symmray array as a flat buffer (its blocks end to end, then the zero) and where
    each block sits in it."""
    sectors = list(array.blocks)
    values = [array.blocks[s] for s in sectors]
    shape = _shapes([v.shape for v in values], array.ndim)
    sizes = shape.prod(axis=1)
    base = _starts(sizes)
    buffer = np.concatenate([*(v.reshape(-1) for v in values), np.zeros(1, dtype=array.dtype)])
    duals = tuple(index.dual for index in array.indices)
    placed = Placed(
        _charges(sectors, array.ndim), shape, base, _c_strides(shape), duals, int(sizes.sum())
    )
    return placed, buffer


def placed_layout(where: Any) -> Placed:
    """The blocks of vectors in a [Layout][tnkit.algorithms.block_vectors.Layout]."""
    ndim = len(where.indices)
    shape = _shapes(where.shapes, ndim)
    duals = tuple(index.dual for index in where.indices)
    base = np.array(where.offsets, dtype=np.intp).reshape(-1)
    return Placed(_charges(where.sectors, ndim), shape, base, _c_strides(shape), duals, where.size)


def _charges(sectors: Sequence[tuple], ndim: int) -> np.ndarray:
    """Sector keys (ints, or tuples of ints for several charges) as blocks × legs × components."""
    rows = [[k if isinstance(k, tuple) else (k,) for k in sector] for sector in sectors]
    if not rows:
        return np.zeros((0, ndim, 1), dtype=np.int64)
    return np.array(rows, dtype=np.int64).reshape(len(rows), ndim, -1)


def _shapes(shapes: Sequence[tuple], ndim: int) -> np.ndarray:
    return np.array(shapes, dtype=np.intp).reshape(len(shapes), ndim)


def _c_strides(shape: np.ndarray) -> np.ndarray:
    """Row-major strides of each block's entries (blocks × legs)."""
    reversed_products = np.cumprod(shape[:, ::-1], axis=1)[:, ::-1]
    return np.concatenate([reversed_products[:, 1:], np.ones((len(shape), 1), np.intp)], axis=1)


@dataclass(frozen=True)
class ChainStep:
    """One compiled contraction of the running tensor with a fixed one: ``gather`` takes
    the running operand's matrices from its buffer; ``fixed`` holds the fixed operand's,
    gathered once; ``products`` lists per charge (rows, inner, cols, start of the running
    matrix, of the fixed one, of the result); ``running_first`` says which side the running
    operand multiplies from; ``size`` is the length of the result buffer."""

    gather: np.ndarray
    fixed: np.ndarray
    products: tuple
    running_first: bool
    size: int


@dataclass
class CompiledChain:
    """A compiled chain of contractions: a flat vector in one layout to the flat vector
    of the result in another. The intermediates live in buffers kept between calls (one
    set per dtype, with the views of every product made once); the returned vector is
    always new."""

    steps: tuple
    result: np.ndarray
    pad_input: bool

    def __post_init__(self) -> None:
        self._prepared: dict = {}

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        buffer = vector
        if self.pad_input:
            buffer = np.concatenate([vector, np.zeros(1, dtype=vector.dtype)])
        for step, (running, out, products) in zip(
            self.steps, self._prepare(buffer.dtype), strict=True
        ):
            np.take(buffer, step.gather, out=running, mode="clip")
            for left, right, target in products:
                np.matmul(left, right, out=target)
            buffer = out
        return np.take(buffer, self.result)

    def _prepare(self, dtype: np.dtype) -> list:
        """Per step for vectors of ``dtype``: the running operand's buffer, the result's
        (its last entry the zero the next gather may read) and the (left, right, result)
        views of each product; made once per dtype."""
        found = self._prepared.get(dtype)
        if found is not None:
            return found
        key, prepared = dtype, []
        for step in self.steps:
            product_dtype = np.result_type(dtype, step.fixed.dtype)
            fixed = step.fixed.astype(product_dtype, copy=False)
            running = np.empty(step.gather.size, dtype=dtype)
            out = np.zeros(step.size + 1, dtype=product_dtype)
            products = []
            for rows, inner, cols, run_at, fixed_at, out_at in step.products:
                own_shape = (rows, inner) if step.running_first else (inner, cols)
                other_shape = (inner, cols) if step.running_first else (rows, inner)
                own = running[run_at : run_at + math.prod(own_shape)].reshape(own_shape)
                other = fixed[fixed_at : fixed_at + math.prod(other_shape)].reshape(other_shape)
                target = out[out_at : out_at + rows * cols].reshape(rows, cols)
                products.append(
                    (own, other, target) if step.running_first else (other, own, target)
                )
            prepared.append((running, out, tuple(products)))
            dtype = product_dtype
        self._prepared[key] = prepared
        return prepared


def compile_chain(
    start: Placed, steps: Sequence[tuple], target: Placed, moduli: tuple
) -> CompiledChain:
    """Compile ``x -> tensordot(… tensordot(x, F₁) …, F_n)`` from vectors placed as
    ``start`` to vectors placed as ``target`` (same legs as the last result, in order).
    Each step is ``(fixed, running_axes, fixed_axes, running_first)``: the fixed symmray
    array, the axes contracted on either side, and whether the running tensor is the
    first operand of the tensordot (its free legs first in the result). ``moduli``: per
    charge component, 0 for U(1) or n for Z_n."""
    running = start
    compiled = []
    for fixed_array, running_axes, fixed_axes, running_first in steps:
        fixed, values = placed_array(fixed_array)
        if running_first:
            plan = _contraction(running, fixed, running_axes, fixed_axes, moduli)
            gather, fixed_index = plan.a_index, plan.b_index
            products = tuple((r, k, c, a, b, o) for r, k, c, a, b, o in plan.products)
        else:
            plan = _contraction(fixed, running, fixed_axes, running_axes, moduli)
            gather, fixed_index = plan.b_index, plan.a_index
            products = tuple((r, k, c, b, a, o) for r, k, c, a, b, o in plan.products)
        compiled.append(
            ChainStep(gather, values[fixed_index], products, running_first, plan.result.size)
        )
        running = plan.result
    pad = bool(compiled) and bool(np.any(compiled[0].gather == start.size))
    return CompiledChain(tuple(compiled), _result_index(running, target), pad)


@dataclass(frozen=True)
class _Plan:
    a_index: np.ndarray
    b_index: np.ndarray
    products: tuple
    result: Placed


def _contraction(
    a: Placed, b: Placed, axes_a: Sequence[int], axes_b: Sequence[int], moduli: tuple
) -> _Plan:
    """``tensordot(a, b, (axes_a, axes_b))`` as one matrix product per charge flowing
    through the contracted legs: rows are a's free sectors, the inner dimension the
    contracted sectors both sides have, columns b's free sectors (entries of missing
    blocks: the zero at the end of each buffer)."""
    free_a = [i for i in range(len(a.duals)) if i not in axes_a]
    free_b = [i for i in range(len(b.duals)) if i not in axes_b]
    duals = tuple(a.duals[i] for i in free_a) + tuple(b.duals[i] for i in free_b)
    if len(a.base) == 0 or len(b.base) == 0:  # a side without blocks: the product is zero
        return _Plan(_EMPTY, _EMPTY, (), _nothing(duals))
    signs = np.array([-1 if a.duals[i] else 1 for i in axes_a], dtype=np.int64)
    inner_a, inner_b = _key(a.charges, axes_a), _key(b.charges, axes_b)
    # the contracted sectors both sides have, and the charge group each belongs to
    shared, _, inverse = _unique_rows(np.concatenate([inner_a, inner_b]))
    in_a = np.zeros(len(shared), bool)
    in_a[inverse[: len(inner_a)]] = True
    in_b = np.zeros(len(shared), bool)
    in_b[inverse[len(inner_a) :]] = True
    kept = in_a & in_b
    if not kept.any():
        return _Plan(_EMPTY, _EMPTY, (), _nothing(duals))
    keep_a, keep_b = kept[inverse[: len(inner_a)]], kept[inverse[len(inner_a) :]]
    flows = _flow(shared[kept].reshape(int(kept.sum()), len(axes_a), -1), signs, moduli)
    groups, _, group_of_shared = _unique_rows(flows)
    inner_id = np.full(len(shared), -1)
    inner_id[kept] = np.arange(int(kept.sum()))
    ngroups = len(groups)
    a_blocks, b_blocks = np.flatnonzero(keep_a), np.flatnonzero(keep_b)
    a_inner = inner_id[inverse[: len(inner_a)][a_blocks]]
    b_inner = inner_id[inverse[len(inner_a) :][b_blocks]]
    ga, gb = group_of_shared[a_inner], group_of_shared[b_inner]
    # inner sectors: offsets within their group (all of them have blocks on both sides)
    inner_size = np.ones(len(group_of_shared), np.intp)
    inner_size[a_inner] = a.shape[a_blocks][:, axes_a].prod(axis=1)
    inner_at, ninner = _offsets_in_groups(group_of_shared, inner_size, ngroups)
    # rows: a's free sectors per group; columns: b's
    row_of, row_at, nrows, row_blocks = _members(a, a_blocks, ga, free_a, ngroups)
    col_of, col_at, ncols, col_blocks = _members(b, b_blocks, gb, free_b, ngroups)
    live = (nrows > 0) & (ncols > 0) & (ninner > 0)
    a_size, b_size, out_size = nrows * ninner * live, ninner * ncols * live, nrows * ncols * live
    a_at, b_at, out_at = _starts(a_size), _starts(b_size), _starts(out_size)
    # a's gather: block entry (free…, contracted…) -> matrix [row, inner] of its group
    a_index = _gather(
        a,
        a_blocks,
        [*free_a, *axes_a],
        int(a_size.sum()),
        a_at[ga] + row_at[row_of] * ninner[ga] + inner_at[a_inner],
        [
            _c_strides(a.shape[a_blocks][:, free_a]) * ninner[ga][:, None],
            _c_strides(a.shape[a_blocks][:, axes_a]),
        ],
    )
    # b's gather: block entry (contracted…, free…) -> matrix [inner, column] of its group
    b_index = _gather(
        b,
        b_blocks,
        [*axes_b, *free_b],
        int(b_size.sum()),
        b_at[gb] + inner_at[b_inner] * ncols[gb] + col_at[col_of],
        [
            _c_strides(b.shape[b_blocks][:, axes_b]) * ncols[gb][:, None],
            _c_strides(b.shape[b_blocks][:, free_b]),
        ],
    )
    result = _outer(a, b, free_a, free_b, row_blocks, col_blocks, (row_at, col_at, ncols, out_at))
    products = tuple(
        (int(nrows[g]), int(ninner[g]), int(ncols[g]), int(a_at[g]), int(b_at[g]), int(out_at[g]))
        for g in np.flatnonzero(live)
    )
    result = Placed(*result, duals, int(out_size.sum()))
    return _Plan(a_index, b_index, products, result)


def _gather(
    x: Placed, chosen: np.ndarray, legs: list, size: int, base: np.ndarray, strides: list
) -> np.ndarray:
    """The ``size`` indices into x's buffer that gather a matrix operand: the entry of
    block ``chosen[k]`` at multi-index i over ``legs`` goes to ``base[k] + Σ i·strides``
    (``strides``: column blocks, one per leg group, joined); entries no block fills read
    the zero at the end of x's buffer."""
    index = np.full(size, x.size, dtype=np.intp)
    _scatter(
        index,
        x.shape[chosen][:, legs],
        base,
        np.concatenate(strides, axis=1),
        x.base[chosen],
        x.strides[chosen][:, legs],
    )
    return index


def _key(charges: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """The charges of legs ``axes`` of each block as one row (blocks × (legs·components))."""
    axes = list(axes)
    return charges[:, axes, :].reshape(len(charges), len(axes) * charges.shape[2])


_EMPTY = np.zeros(0, dtype=np.intp)


def _nothing(duals: tuple) -> Placed:
    """A tensor with no blocks on legs of these ``duals``."""
    legs = len(duals)
    return Placed(
        np.zeros((0, legs, 1), np.int64),
        np.zeros((0, legs), np.intp),
        _EMPTY,
        np.zeros((0, legs), np.intp),
        duals,
        0,
    )


def _flow(charges: np.ndarray, signs: np.ndarray, moduli: tuple) -> np.ndarray:
    """The charge that legs carry together (blocks × legs × components, ``signs``: +1 for
    incoming legs, −1 for dual ones), reduced modulo n for Z_n components."""
    total = np.einsum("blq,l->bq", charges, signs)
    for c, m in enumerate(moduli):
        if m:
            total[:, c] %= m
    return total


def _offsets_in_groups(group: np.ndarray, size: np.ndarray, ngroups: int) -> tuple:
    """Where each member starts within its group when each group's members are laid end
    to end in order, and each group's total."""
    order = np.argsort(group, kind="stable")
    ends = np.cumsum(size[order])
    totals = np.bincount(group, weights=size, minlength=ngroups).astype(np.intp)
    group_starts = _starts(totals)
    at = np.empty(len(group), np.intp)
    at[order] = ends - size[order] - group_starts[group[order]]
    return at, totals


def _members(x: Placed, chosen: np.ndarray, group: np.ndarray, free: list, ngroups: int) -> tuple:
    """The free sectors of x's ``chosen`` blocks per group: which member each block is,
    where each member starts in its group, each group's total size, and one block per
    member (its charges and shape describe the member)."""
    keys = np.concatenate([group[:, None], _key(x.charges[chosen], free)], axis=1)
    members, first, member_of = _unique_rows(keys)
    size = x.shape[chosen[first]][:, free].prod(axis=1).astype(np.intp)
    at, totals = _offsets_in_groups(members[:, 0], size, ngroups)
    return member_of, at, totals, (chosen[first], members[:, 0])


def _starts(sizes: np.ndarray) -> np.ndarray:
    """Where each of ``sizes`` starts when they are laid end to end."""
    sizes = np.asarray(sizes, dtype=np.intp)
    return np.cumsum(sizes) - sizes


def _outer(
    a: Placed, b: Placed, free_a: list, free_b: list, rows: tuple, cols: tuple, where: tuple
) -> tuple:
    """The result blocks of the grouped products: every (row, column) pair of a group,
    laid out row-major in its group's matrix. Returns charges, shape, base and strides."""
    row_at, col_at, ncols, out_at = where
    (row_block, row_group), (col_block, col_group) = rows, cols
    order_r, order_c = np.argsort(row_group, kind="stable"), np.argsort(col_group, kind="stable")
    count_r = np.bincount(row_group, minlength=len(ncols))
    count_c = np.bincount(col_group, minlength=len(ncols))
    # every (row, column) pair that shares a group, rows major
    pairs = count_r * count_c
    group = np.repeat(np.arange(len(ncols)), pairs)
    within = np.arange(int(pairs.sum())) - np.repeat(_starts(pairs), pairs)
    r = order_r[_starts(count_r)[group] + within // np.maximum(count_c[group], 1)]
    c = order_c[_starts(count_c)[group] + within % np.maximum(count_c[group], 1)]
    a_rows, b_cols = row_block[r], col_block[c]
    charges = np.concatenate([a.charges[a_rows][:, free_a], b.charges[b_cols][:, free_b]], axis=1)
    row_shape, col_shape = a.shape[a_rows][:, free_a], b.shape[b_cols][:, free_b]
    shape = np.concatenate([row_shape, col_shape], axis=1)
    base = out_at[group] + row_at[r] * ncols[group] + col_at[c]
    strides = np.concatenate(
        [_c_strides(row_shape) * ncols[group][:, None], _c_strides(col_shape)], axis=1
    )
    return charges, shape, base, strides


def _scatter(index, shape, index_base, index_strides, source_base, source_strides) -> None:
    """``index[index_base + Σ i·index_strides] = source_base + Σ i·source_strides`` for
    every entry i (a multi-index) of every block (rows of the arguments). Blocks of one
    shape go together: one matrix product gives both grids (places and sources) of all
    of them. Blocks are sorted by shape once, so each of the (tens of) rounds works on
    slices."""
    if len(shape) == 0:
        return
    shapes, _, which = _unique_rows(shape)
    order = np.argsort(which, kind="stable")
    ends = np.cumsum(np.bincount(which, minlength=len(shapes)))
    legs = shape.shape[1]
    strides = np.stack([index_strides[order], source_strides[order]], axis=1).astype(np.float64)
    bases = np.stack([index_base[order], source_base[order]], axis=1)[:, :, None]
    start = 0
    for dims, end in zip(shapes.tolist(), ends.tolist(), strict=True):
        if math.prod(dims) > 0:
            entries = _multi_indices(tuple(dims))
            grid = strides[start:end].reshape(-1, legs) @ entries  # (blocks·2, entries)
            grid = grid.astype(np.intp).reshape(end - start, 2, -1) + bases[start:end]
            index[grid[:, 0]] = grid[:, 1]
        start = end


@functools.lru_cache(maxsize=4096)
def _multi_indices(dims: tuple) -> np.ndarray:
    """Every multi-index of ``dims`` in C order, as the columns of a float64 matrix (legs ×
    entries; read-only, shared: the same few shapes recur in every compile)."""
    entries = np.indices(dims, dtype=np.float64).reshape(len(dims), -1)
    entries.flags.writeable = False
    return entries


def _unique_rows(rows: np.ndarray) -> tuple:
    """``np.unique(rows, axis=0, return_index=True, return_inverse=True)`` for integer
    rows, through one integer key per row (the rows' offsets in mixed radix, first column
    most significant: the same order) instead of a sort of row records."""
    rows = np.asarray(rows)
    if rows.shape[1] == 0 or len(rows) == 0:
        first = np.zeros(min(len(rows), 1), np.intp)
        return rows[first], first, np.zeros(len(rows), np.intp)
    low = rows.min(axis=0)
    span = rows.max(axis=0) - low + 1
    if np.sum(np.log2(span.astype(float))) >= 62:  # no room in one int64: sort the rows
        found, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        return found, first, inverse.reshape(-1)
    radix = np.concatenate([np.cumprod(span[::-1])[::-1][1:], [1]])
    keys = (rows - low) @ radix
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first], first, inverse.reshape(-1)


def _result_index(result: Placed, target: Placed) -> np.ndarray:
    """Where each entry of the target layout lies in the result buffer (blocks the chain
    never produces: the zero at its end)."""
    index = np.full(target.size, result.size, dtype=np.intp)
    if len(result.base) == 0 or len(target.base) == 0:
        return index
    both = np.concatenate(
        [
            _key(result.charges, range(result.charges.shape[1])),
            _key(target.charges, range(target.charges.shape[1])),
        ]
    )
    _, _, inverse = _unique_rows(both)
    found = {int(k): i for i, k in enumerate(inverse[: len(result.base)])}
    pairs = [
        (found[int(k)], t) for t, k in enumerate(inverse[len(result.base) :]) if int(k) in found
    ]
    if pairs:
        r, t = (np.array(p) for p in zip(*pairs, strict=True))
        _scatter(
            index,
            target.shape[t],
            target.base[t],
            target.strides[t],
            result.base[r],
            result.strides[r],
        )
    return index
