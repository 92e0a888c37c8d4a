"""TT-SVD of dask arrays: the leading bonds out of core, through dask's tall-skinny QR.

A dask array larger than memory is never materialised. Its leading modes ``dims[:s]`` are
kept whole in every block, the trailing index ``T`` is cut into blocks; each leading bond's
unfolding ``A`` (``rank·d × rest``) is then a set of independent row blocks of the tall,
skinny ``Aᵀ``. One pass of dask's TSQR gives ``R`` (``Aᵀ = Q R``), whose truncated SVD is
that of ``A`` (``Q`` is an isometry, so the measured discarded weight is ``A``'s too); the
next remainder ``Uᴴ A`` stays lazy and block-local. Once the remainder fits one block of the
array's chunk size (``dask.config["array.chunk-size"]``) it is computed and the sweep goes
on in memory. Passes over the data: one for the scale and finiteness check, one per
out-of-core bond, one to compute the remainder.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._progress import logger, steps
from .decompose import Sweep, _check_request, _scaled, _times_pow2, exponent_for
from .mps import MPS

__all__ = ["tt_svd_dask"]

# Dask schedules a graph of this many blocks per pass comfortably.
_MAX_BLOCKS = 4096


def tt_svd_dask(
    x: Any,
    dims: Any,
    *,
    max_bond: int | None,
    rtol: float | None,
    atol: float | None,
    method: str,
    progress: bool,
) -> MPS:
    """``tt_svd`` of a dask array (see [tt_svd][tnkit.tt_svd]); NumPy cores.

    Example:
        >>> import dask.array as da, numpy as np, tnkit as tn
        >>> x = da.from_array(np.random.default_rng(0).standard_normal((4, 4, 4)), chunks=2)
        >>> tn.tt_svd(x, max_bond=2).bond_dims
        (2, 2)
    """
    import dask
    import dask.array as da

    _check_dask_array(x)
    dims, truncation = _check_request(x, dims, max_bond, rtol, atol, method)
    chunk_bytes = dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
    itemsize = np.dtype(x.dtype).itemsize
    if len(dims) == 1 or x.size * itemsize <= chunk_bytes:  # fits one block: in memory
        from .decompose import tt_svd

        request = {"max_bond": max_bond, "rtol": rtol, "atol": atol, "method": method}
        return tt_svd(np.asarray(x.compute()), dims, progress=progress, **request)
    largest, finite = dask.compute(da.max(da.abs(x)), da.all(da.isfinite(x)))
    if not finite:
        raise ValueError("x: contains NaN or Inf")
    exponent = exponent_for(float(largest), x.dtype)
    if exponent:
        x = _times_pow2(x, -exponent)
        truncation = _scaled(truncation, exponent)
    leading, block = _layout(dims, itemsize, chunk_bytes)
    trailing = x.size // math.prod(dims[:leading])  # T: the index cut into blocks
    rows = _leading_blocks(x, dims, leading, block)
    sweep: Sweep | None = None
    rank, width = 1, math.prod(dims[1:leading])  # width: whole modes left in a block
    for k in steps(range(leading), progress=progress, desc="tt_svd out of core"):
        r = np.asarray(da.linalg.qr(rows)[1].compute())
        if sweep is None:  # ‖x‖ = ‖R‖ of the first unfolding
            sweep = Sweep(dims, truncation, float(np.linalg.norm(r)), method)
        split = sweep.split(r.T, rank)  # Aᵀ = QR, so A = Rᵀ Qᵀ has R's singular values
        rank = split.rank
        rows = rows @ np.conj(split.left)  # (Uᴴ A)ᵀ, the next remainder, still lazy
        if k + 1 == leading or rank * width * trailing * itemsize <= chunk_bytes:
            break
        d = dims[k + 1]
        chunks = (tuple(c // d for c in rows.chunks[0]), (rank * d,))
        rows = rows.map_blocks(_regroup, d, chunks=chunks, dtype=rows.dtype)
        width //= d
    if rank * width * trailing * itemsize > chunk_bytes:
        logger.warning(
            "tt_svd: the remainder after %d out-of-core bonds has %d entries, more than one "
            "block of dask's array.chunk-size; computing it in memory",
            len(sweep.cores),
            rank * width * trailing,
        )
    rest = _gather(np.asarray(rows.compute()), rank, width, block)
    sweep.run(rest, rank=rank, start=len(sweep.cores), progress=progress)
    return sweep.result(exponent, x.dtype)


def _check_dask_array(x: Any) -> None:
    kind = np.dtype(x.dtype).kind
    if kind not in "fc":
        raise TypeError(f"x: expected a floating or complex dask array, got dtype {x.dtype}")
    if math.isnan(x.size):
        raise ValueError("x: a dask array of unknown shape; call x.compute_chunk_sizes() first")
    if x.ndim == 0 or x.size == 0:
        raise ValueError(f"x: empty or scalar dask array of shape {tuple(x.shape)}")


def _layout(dims: tuple[int, ...], itemsize: int, chunk_bytes: int) -> tuple[int, int]:
    """``(s, t)``: modes ``dims[:s]`` whole in every block, ``t`` entries of the trailing
    index per block (a product of trailing dims, so it divides it; at most ``_MAX_BLOCKS``
    blocks). ``s`` is the largest whose blocks fit ``chunk_bytes`` (else 1)."""
    for s in range(len(dims) - 1, 0, -1):
        block = _block_size(dims[s:])
        if math.prod(dims[:s]) * block * itemsize <= chunk_bytes:
            return s, block
    logger.warning("tt_svd: dims[0] = %d alone exceeds dask's array.chunk-size", dims[0])
    return 1, _block_size(dims[1:])


def _block_size(trailing: tuple[int, ...]) -> int:
    """Smallest product of a suffix of ``trailing`` that cuts its product into at most
    ``_MAX_BLOCKS`` blocks."""
    total = math.prod(trailing)
    for j in range(len(trailing), -1, -1):
        block = math.prod(trailing[j:])
        if total // block <= _MAX_BLOCKS:
            return block
    return total  # pragma: no cover - j = 0 gives total // total = 1


def _leading_blocks(x: Any, dims: tuple[int, ...], leading: int, block: int) -> Any:
    """The first unfolding, transposed (``Aᵀ``: ``J·T × dims[0]``), as row blocks: block
    ``c`` holds rows ``(j, t)`` for the ``c``-th run of ``block`` trailing entries ``t``
    (``j`` runs over ``dims[1:leading]``, major)."""
    import dask
    import dask.array as da

    x = x.reshape(dims) if tuple(x.shape) != dims else x
    whole_from = len(dims) - next(
        j for j in range(len(dims) - leading + 1) if math.prod(dims[len(dims) - j :]) == block
    )
    chunks = tuple(-1 if a < leading or a >= whole_from else 1 for a in range(len(dims)))
    pieces = x.rechunk(chunks).to_delayed().ravel()
    width = math.prod(dims[1:leading])
    shape = (width * block, dims[0])
    arrange = dask.delayed(_first_rows, pure=True)
    columns = [
        da.from_delayed(arrange(p, dims[0], width), shape=shape, dtype=x.dtype) for p in pieces
    ]
    return da.concatenate(columns, axis=0)


def _first_rows(piece: np.ndarray, first: int, width: int) -> np.ndarray:
    """One block of ``x`` (whole leading modes) as rows ``(j, t)`` × columns ``dims[0]``."""
    return np.ascontiguousarray(piece.reshape(first, width, -1).transpose(1, 2, 0)).reshape(
        -1, first
    )


def _regroup(rows: np.ndarray, d: int) -> np.ndarray:
    """Rows ``(i, j', t)`` × ``rank`` → rows ``(j', t)`` × ``(rank, i)``: the next bond's
    unfolding, transposed (``i`` is the next mode, the major part of ``j``)."""
    rank = rows.shape[1]
    moved = rows.reshape(d, -1, rank).transpose(1, 2, 0)
    return np.ascontiguousarray(moved).reshape(-1, rank * d)


def _gather(rows: np.ndarray, rank: int, width: int, block: int) -> np.ndarray:
    """The computed row blocks ``(c, j, t)`` × ``rank`` as the remainder ``rank × (j, c, t)``
    in C order, for the in-memory sweep."""
    n_blocks = rows.shape[0] // (width * block)
    moved = rows.reshape(n_blocks, width, block, rank).transpose(3, 1, 0, 2)
    return np.ascontiguousarray(moved).reshape(rank, -1)
