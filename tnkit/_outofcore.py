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
from ._scaling import exponent_for, times_pow2
from .ttsvd import Decomposition, TTSVDSweep, check_request, decompose_array, scaled_truncation

__all__ = ["tt_svd_dask"]

# Dask schedules a graph of this many blocks per pass comfortably.
_MAX_BLOCKS = 4096


def tt_svd_dask(x: Any, dims: Any, *, progress: bool = False, **request: Any) -> Decomposition:
    """TT-SVD of a dask array: NumPy cores and their report. ``request``: the ``max_bond``,
    ``rtol``, ``atol`` and ``method`` of [tt_svd][tnkit.tt_svd].

    Example:
        >>> import dask.array as da, numpy as np, tnkit as tn
        >>> x = da.from_array(np.random.default_rng(0).standard_normal((4, 4, 4)), chunks=2)
        >>> tn.tt_svd(x, max_bond=2).bond_dims
        (2, 2)
    """
    import dask
    import dask.array as da

    _check_dask_array(x)
    dims, truncation = check_request(x, dims, **request)
    method = request.get("method", "auto")
    chunk_bytes = dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
    itemsize = np.dtype(x.dtype).itemsize
    if len(dims) == 1 or x.size * itemsize <= chunk_bytes:  # fits one block: in memory
        return decompose_array(np.asarray(x.compute()), dims, progress=progress, **request)
    largest, finite = dask.compute(da.max(da.abs(x)), da.all(da.isfinite(x)))
    if not finite:
        raise ValueError("x: contains NaN or Inf")
    exponent = exponent_for(float(largest), x.dtype)
    if exponent:
        x = times_pow2(x, -exponent)
        truncation = scaled_truncation(truncation, exponent)
    leading, block = _layout(dims, itemsize, chunk_bytes)
    pieces = _pieces(x, dims, leading, block)
    trailing = x.size // math.prod(dims[:leading])  # T: the index cut into blocks
    sweep: TTSVDSweep | None = None
    left = np.ones((1, 1), dtype=x.dtype)  # the cores so far, as a (d0·…·dk-1) × rank matrix
    for k in steps(range(leading), progress=progress, desc="tt_svd out of core"):
        width = math.prod(dims[k + 1 : leading])  # whole modes after k in a block
        r = _r_factor(_unfolding_rows(pieces, left, dims[k], width, block))
        if sweep is None:  # ‖x‖ = ‖R‖ of the first unfolding
            sweep = TTSVDSweep(dims, truncation, float(np.linalg.norm(r)), method)
        rank = left.shape[1]
        split = sweep.split(r.T, rank)  # Aᵀ = QR, so A = Rᵀ Qᵀ has R's singular values
        left = (left @ np.reshape(split.left, (rank, -1))).reshape(-1, split.rank)
        if split.rank * width * trailing * itemsize <= chunk_bytes:
            break
    else:
        logger.warning(
            "tt_svd: the remainder after %d out-of-core bonds has %d entries, more than one "
            "block of dask's array.chunk-size; computing it in memory",
            leading,
            left.shape[1] * trailing,
        )
    rest = _remainder(pieces, left, width)
    sweep.run(rest, rank=left.shape[1], start=len(sweep.cores), progress=progress)
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


def _pieces(x: Any, dims: tuple[int, ...], leading: int, block: int) -> list:
    """The blocks of ``x`` (delayed, in C order of the trailing index ``T``): block ``c``
    holds all of ``dims[:leading]`` and the ``c``-th run of ``block`` entries of ``T``."""
    x = x.reshape(dims) if tuple(x.shape) != dims else x
    whole_from = len(dims) - next(
        j for j in range(len(dims) - leading + 1) if math.prod(dims[len(dims) - j :]) == block
    )
    chunks = tuple(-1 if a < leading or a >= whole_from else 1 for a in range(len(dims)))
    return list(x.rechunk(chunks).to_delayed().ravel())


def _unfolding_rows(pieces: list, left: np.ndarray, d: int, width: int, block: int) -> Any:
    """Bond k's unfolding ``A = Lᴴ x`` (``rank·d × rest``), transposed, as a tall dask
    array with one row block per piece: rows ``(j, t)``, columns ``(rank, i)``."""
    import dask
    import dask.array as da

    rank, dtype = left.shape[1], left.dtype
    rows = dask.delayed(_block_rows, pure=True)
    shape = (width * block, rank * d)
    blocks = [da.from_delayed(rows(p, left, d, width), shape, dtype=dtype) for p in pieces]
    return da.concatenate(blocks, axis=0)


def _block_rows(piece: np.ndarray, left: np.ndarray, d: int, width: int) -> np.ndarray:
    """One piece's rows of the transposed unfolding: ``(Lᴴ piece)`` as ``(j, t) × (rank, i)``."""
    projected = _project(piece, left).reshape(left.shape[1], d, width, -1)
    return np.ascontiguousarray(projected.transpose(2, 3, 0, 1)).reshape(-1, projected.shape[0] * d)


def _project(piece: np.ndarray, left: np.ndarray) -> np.ndarray:
    """``Lᴴ`` times the piece with its leading modes as rows: ``rank × rest`` (one GEMM)."""
    return np.conj(left).T @ piece.reshape(left.shape[0], -1)


def _remainder(pieces: list, left: np.ndarray, width: int) -> np.ndarray:
    """``Lᴴ x`` in memory, as ``rank × (j, T)`` in C order (the in-memory sweep's input)."""
    import dask

    parts = dask.compute(*(dask.delayed(_project, pure=True)(p, left) for p in pieces))
    rank = left.shape[1]
    stacked = np.stack([part.reshape(rank, width, -1) for part in parts], axis=2)
    return stacked.reshape(rank, -1)


def _r_factor(rows: Any) -> np.ndarray:
    """``R`` of the tall, skinny dask array ``rows = Q R``: an R-only QR of every block (no
    ``Q`` is formed), then dask's TSQR of the stacked small factors."""
    import dask.array as da

    n = rows.shape[1]
    stacked = rows.map_blocks(_block_r, chunks=((n,) * rows.numblocks[0], (n,)), dtype=rows.dtype)
    group = n * max(1, 2**16 // (n * n))  # stacked factors of about 512 KiB per block
    return np.asarray(da.linalg.qr(stacked.rechunk({0: group}))[1].compute())


def _block_r(block: np.ndarray) -> np.ndarray:
    """``R`` (``n × n``, zero rows added for a short block) of one block's QR."""
    n = block.shape[1]
    r = np.linalg.qr(block, mode="r")
    if r.shape[0] < n:
        r = np.concatenate([r, np.zeros((n - r.shape[0], n), dtype=r.dtype)])
    return r
