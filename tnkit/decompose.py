"""Dense → cores: TT-SVD of tensors (in memory or dask), and of matrices in MPO-Net order.

The dispatch behind ``tt_svd``, ``from_matrix`` and ``MPO.from_matrix``: it returns cores and
a report, never an MPS or MPO (the classes wrap the result), and holds no sweep of its own.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat as aac

from . import _backend as backend
from ._checks import check_array, check_dim_pair
from ._factorize import factorize_dims
from ._outofcore import tt_svd_dask
from .ttsvd import Decomposition, decompose_array


def decompose_tensor(
    x: Any, dims: Any = None, *, progress: bool = False, **request: Any
) -> Decomposition:
    """TT-SVD of ``x`` (a dask array out of core, anything else in memory) as a
    ``Decomposition``; ``request``: the ``max_bond``, ``rtol``, ``atol`` and ``method`` of
    [tt_svd][tnkit.tt_svd].

    Example:
        >>> import numpy as np
        >>> decompose_tensor(np.ones((2, 2)), max_bond=1).report.bond_dims_after
        (1,)
    """
    if aac.is_dask_array(x):
        return tt_svd_dask(x, dims, progress=progress, **request)
    return decompose_array(x, dims, progress=progress, **request)


def decompose_matrix(
    W: Any, out_dims: Any, in_dims: Any, *, pad: bool | None = None, **request: Any
) -> tuple[Decomposition, tuple[int, int] | None]:
    """MPO cores ``(Dl, o, i, Dr)`` of ``W (out, in)`` and the unpadded matrix shape (None
    when nothing was padded); ``request``: the truncation keywords and ``progress`` of
    [from_matrix][tnkit.mpo.from_matrix].

    Example:
        >>> import numpy as np
        >>> d, shape = decompose_matrix(np.eye(5), 2, 2)   # 5 is prime: padded to 2·3 = 6
        >>> [c.shape[1:3] for c in d.cores], shape
        ([(2, 2), (3, 3)], (5, 5))
    """
    xp = check_array(W, "W", ndim=2)
    rows, cols = (int(s) for s in W.shape)
    if pad is None:
        pad = is_count(out_dims) or is_count(in_dims)
    outs = factorize_dims(rows, out_dims, pad=True) if is_count(out_dims) else out_dims
    ins = factorize_dims(cols, in_dims, pad=True) if is_count(in_dims) else in_dims
    outs, ins = check_dim_pair(outs, ins)
    padded_shape = (math.prod(outs), math.prod(ins))
    for name, dims, size, have in (
        ("out_dims", outs, rows, padded_shape[0]),
        ("in_dims", ins, cols, padded_shape[1]),
    ):
        if have < size or (have > size and not pad):
            raise ValueError(
                f"{name}: product {have} of {dims} does not match W.shape {(rows, cols)}"
                + ("" if have < size else "; pass pad=True to zero-pad")
            )
    if padded_shape != (rows, cols):
        W = _zero_pad(xp, W, padded_shape)
    n = len(outs)
    order = [p for k in range(n) for p in (k, n + k)]
    interleaved = xp.permute_dims(xp.reshape(W, (*outs, *ins)), order)
    vector = decompose_tensor(
        interleaved, tuple(o * i for o, i in zip(outs, ins, strict=True)), **request
    )
    pairs = zip(vector.cores, outs, ins, strict=True)
    cores = tuple(xp.reshape(c, (c.shape[0], o, i, c.shape[-1])) for c, o, i in pairs)
    report = vector.report.counting_input(rows * cols)
    matrix_shape = (rows, cols) if padded_shape != (rows, cols) else None
    return Decomposition(cores, vector.centre, report, vector.exponent), matrix_shape


def is_count(value: Any) -> bool:
    """Whether a dims argument is a number of cores (a plain int) rather than dims."""
    return isinstance(value, int) and not isinstance(value, bool)


def _zero_pad(xp: Any, W: Any, shape: tuple[int, int]) -> Any:
    rows, cols = W.shape
    if shape[1] > cols:
        W = xp.concat(
            [W, xp.zeros((rows, shape[1] - cols), dtype=W.dtype, device=backend.device(W))], axis=1
        )
    if shape[0] > rows:
        W = xp.concat(
            [W, xp.zeros((shape[0] - rows, shape[1]), dtype=W.dtype, device=backend.device(W))],
            axis=0,
        )
    return W
