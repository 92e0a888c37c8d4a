"""Dense → train: TT-SVD of tensors, MPO of matrices, and balanced factorisations of sizes.

One left-to-right sweep of truncated splits; the error budget is shared across bonds and
every bond's cut is measured, so ``report`` bounds the error rigorously.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import array_api_compat as aac
import numpy as np

from . import _backend as backend
from ._checks import check_array, check_dim_pair, check_dims
from ._factorize import factorize_dims
from ._progress import logger, steps
from .linalg import METHODS, truncated_split
from .mpo import MPO
from .mps import MPS
from .truncation import Budget, Truncation, make_report

__all__ = ["tt_svd", "from_matrix"]


def tt_svd(
    x: Any,
    dims: Any = None,
    *,
    max_bond: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    method: str = "auto",
    progress: bool = False,
) -> MPS:
    """Decompose a dense tensor into an MPS (left-canonical, centre ``len - 1``).

    ``dims`` reshapes ``x`` first (default ``x.shape``); ``rtol``/``atol``/``max_bond``
    follow the truncation rules of the library (DESIGN §1). ``method`` picks the factorisation
    of each unfolding: ``"exact"`` (LAPACK SVD), ``"qr"`` (QR first, for very wide or tall
    unfoldings), ``"gram"`` (eigh of the Gram matrix: one pass over the data, but it cannot
    resolve singular values below ~sqrt(100·m·ε) of the largest — about 1e-6 in double — so
    it checks itself and hands over to QR + SVD whenever that could change the result),
    ``"randomized"`` (range finder with oversampling and two power iterations; for
    ``max_bond`` far below the unfolding size) or ``"auto"`` (per unfolding: randomized when
    the cap is far below the size, Gram for wide unfoldings and for loose or cap-only
    requests, else QR-first or plain SVD). Whatever runs, the discarded weight in ``report``
    is measured from exact norms of the residuals. ``progress=True`` shows a tqdm bar over
    the bonds; every bond is logged at DEBUG level on the ``tnkit`` logger.

    ``x`` may also be a dask array larger than memory: it is never materialised, the leading
    bonds are split out of core through dask's tall-skinny QR (see the Dask page of the
    docs), and the result is the same in-memory MPS.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> x = np.random.default_rng(0).standard_normal((4, 4, 4))
        >>> m = tn.tt_svd(x)
        >>> m.bond_dims, bool(np.allclose(m.to_dense(), x))
        ((4, 4), True)
        >>> tn.tt_svd(x, max_bond=2).report.bond_dims_after
        (2, 2)
    """
    if aac.is_dask_array(x):
        from ._outofcore import tt_svd_dask

        return tt_svd_dask(
            x, dims, max_bond=max_bond, rtol=rtol, atol=atol, method=method, progress=progress
        )
    xp = check_array(x, "x")
    dims, truncation = _check_request(x, dims, max_bond, rtol, atol, method)
    # Entries far from 1 would over- or underflow the squares behind norms, Gram matrices and
    # discarded weights: decompose x·2^-k instead and give the last core 2^k back (both exact).
    exponent = _scale_exponent(xp, x)
    if exponent:
        x = _times_pow2(x, -exponent)
        truncation = _scaled(truncation, exponent)
    norm = backend.frob_sq(x) ** 0.5
    sweep = Sweep(dims, truncation, norm, method)
    sweep.run(xp.reshape(x, (dims[0], -1)), rank=1, start=0, progress=progress)
    return sweep.result(exponent, x.dtype)


def _check_request(x, dims, max_bond, rtol, atol, method) -> tuple[tuple[int, ...], Truncation]:
    """Validated ``dims`` (default ``x.shape``) and truncation rule of a tt_svd call."""
    if x.ndim == 0:
        raise ValueError("x: need at least one dimension, got a scalar")
    dims = tuple(int(s) for s in x.shape) if dims is None else check_dims(dims, "dims")
    if math.prod(dims) != math.prod(x.shape):
        raise ValueError(
            f"dims: product {math.prod(dims)} of {dims} does not match x.size "
            f"{math.prod(x.shape)} (x.shape {tuple(x.shape)})"
        )
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    return dims, Truncation(max_bond=max_bond, rtol=rtol, atol=atol)


def _scaled(truncation: Truncation, exponent: int) -> Truncation:
    """The rule for x·2^-exponent: ``atol`` scales with x, ``rtol`` and ``max_bond`` do not."""
    if truncation.atol is None:
        return truncation
    atol = min(_ldexp(truncation.atol, -exponent), _FLOAT_MAX)
    return dataclasses.replace(truncation, atol=atol)


class Sweep:
    """The left-to-right TT-SVD sweep of one tensor, as far as it has gone.

    ``run`` splits bonds ``start, start+1, …`` of an in-memory remainder; the out-of-core
    path (``_outofcore``) does the leading bonds itself with ``split`` and hands the rest to
    ``run``. ``result`` assembles the MPS and its report.
    """

    def __init__(self, dims, truncation: Truncation, norm: float, method: str) -> None:
        self.dims, self.truncation, self.norm, self.method = dims, truncation, norm, method
        self.budget = Budget(truncation.total_budget(norm), len(dims) - 1)
        self.cores: list = []
        self.discarded: list[float] = []
        self.methods: set[str] = set()

    def split(self, unfolding: Any, rank: int) -> Any:
        """Truncated split of bond ``len(cores)``'s unfolding (``rank·d × rest``): the new
        core is stored and the split returned (its ``right`` is the next remainder)."""
        k = len(self.cores)
        split = truncated_split(
            unfolding,
            max_bond=self.truncation.max_bond,
            budget=self.budget.allowance(),
            method=self.method,
        )
        xp = aac.array_namespace(split.left)
        self.cores.append(xp.reshape(split.left, (rank, self.dims[k], split.rank)))
        self.discarded.append(split.discarded)
        self.budget.spend(split.discarded)
        self.methods.add(split.method)
        logger.debug(
            "tt_svd bond %d: rank %d, %s, discarded %.3e",
            k,
            split.rank,
            split.method,
            split.discarded,
        )
        return split

    def run(self, rest: Any, *, rank: int, start: int, progress: bool) -> None:
        """Split the remaining bonds of ``rest`` (``rank × dims[start:]``), then the last core."""
        xp = aac.array_namespace(rest)
        for k in steps(range(start, len(self.dims) - 1), progress=progress, desc="tt_svd"):
            split = self.split(xp.reshape(rest, (rank * self.dims[k], -1)), rank)
            rank, rest = split.rank, split.right
        self.cores.append(xp.reshape(rest, (rank, self.dims[-1], 1)))

    def result(self, exponent: int, dtype: Any) -> MPS:
        """The MPS (``exponent``: the input was decomposed times 2^-exponent)."""
        cores, dims = self.cores, self.dims
        if exponent:
            cores[-1] = _times_pow2(cores[-1], exponent)
            xp = aac.array_namespace(cores[-1])
            if not backend.is_tracer(cores[-1]) and not bool(xp.all(xp.isfinite(cores[-1]))):
                raise ValueError(
                    f"x: its norm overflows {backend.dtype_name(dtype)}, so the canonical cores "
                    "cannot hold it; scale x down first"
                )
        report = make_report(
            discarded=self.discarded,
            norm=self.norm,
            bond_dims_before=_full_rank_bonds(dims),
            bond_dims_after=tuple(c.shape[-1] for c in cores[:-1]),
            params_before=math.prod(dims),
            params_after=sum(math.prod(c.shape) for c in cores),
            method="tt_svd/" + ("+".join(sorted(self.methods)) or "none"),
            tolerance_met=self.budget.met(self.discarded),
        )
        if exponent:  # the report was made in scaled units; its relative bound is unchanged
            report = dataclasses.replace(
                report,
                discarded=tuple(_ldexp(d, 2 * exponent) for d in report.discarded),
                abs_error_bound=_ldexp(report.abs_error_bound, exponent),
                norm=_ldexp(report.norm, exponent),
            )
        return MPS._trusted(tuple(cores), len(dims) - 1, report)


_FLOAT_MAX = float(np.finfo(np.float64).max)


def _scale_exponent(xp: Any, x: Any) -> int:
    """k with max|x| = m·2^k (0.5 <= m < 1) when that is far from 1 for the dtype, else 0
    (inputs of ordinary size are decomposed bit for bit as they are)."""
    if backend.is_tracer(x):
        return 0
    return exponent_for(float(backend.to_numpy(xp.max(xp.abs(x)))), x.dtype)


def exponent_for(largest: float, dtype: Any) -> int:
    """The rescaling exponent (see ``_scale_exponent``) for an array whose max |entry| is
    ``largest``."""
    if largest == 0.0:
        return 0
    exponent = math.frexp(largest)[1]
    limit = np.finfo(np.dtype(backend.dtype_name(dtype))).maxexp // 4
    return exponent if abs(exponent) > limit else 0


def _times_pow2(a: Any, exponent: int) -> Any:
    """``a·2^exponent``, exact, in steps whose factor every dtype holds (2.0**1024 is not a
    float, and a weak Python scalar is cast to the array's dtype: float32 tops out at 2^127)."""
    while exponent:
        step = max(-64, min(64, exponent))
        a = a * 2.0**step
        exponent -= step
    return a


def _ldexp(value: float, exponent: int) -> float:
    """``math.ldexp`` that gives inf instead of raising on overflow."""
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.copysign(math.inf, value)


def _full_rank_bonds(dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(
        min(math.prod(dims[: k + 1]), math.prod(dims[k + 1 :])) for k in range(len(dims) - 1)
    )


def from_matrix(
    W: Any,
    out_dims: Any,
    in_dims: Any,
    *,
    max_bond: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    method: str = "auto",
    progress: bool = False,
    pad: bool | None = None,
) -> MPO:
    """MPO of a matrix ``W (out, in)``: core k holds ``(out_dims[k], in_dims[k])``.

    ``out_dims``/``in_dims`` are sequences of ints whose products equal ``W.shape``, or ints
    (a number of cores: dims from ``factorize_dims(n, k, pad=True)``). With ``pad=True``
    (the default when a dims argument is an int) products may exceed ``W.shape`` and ``W`` is
    zero-padded; ``to_matrix()`` then returns the unpadded matrix and
    ``to_matrix(padded=True)`` the full one. The report counts ``params_before`` as
    ``W.size``. Truncation, ``method`` and ``progress`` as in [tt_svd][tnkit.tt_svd].

    Example:
        >>> import numpy as np, tnkit as tn
        >>> W = np.random.default_rng(0).standard_normal((64, 64))
        >>> o = tn.MPO.from_matrix(W, (4, 4, 4), (4, 4, 4), rtol=0.5)
        >>> o.report.rel_error_bound <= 0.5
        True
    """
    xp = check_array(W, "W", ndim=2)
    rows, cols = (int(s) for s in W.shape)
    if pad is None:
        pad = _is_int(out_dims) or _is_int(in_dims)
    outs = factorize_dims(rows, out_dims, pad=True) if _is_int(out_dims) else out_dims
    ins = factorize_dims(cols, in_dims, pad=True) if _is_int(in_dims) else in_dims
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
    mps = tt_svd(
        interleaved,
        tuple(o * i for o, i in zip(outs, ins, strict=True)),
        max_bond=max_bond,
        rtol=rtol,
        atol=atol,
        method=method,
        progress=progress,
    )
    pairs = zip(mps.cores, outs, ins, strict=True)
    cores = tuple(xp.reshape(c, (c.shape[0], o, i, c.shape[-1])) for c, o, i in pairs)
    report = _replace(mps.report, params_before=rows * cols)
    matrix_shape = (rows, cols) if padded_shape != (rows, cols) else None
    return MPO._trusted(cores, mps.centre, report, _matrix_shape=matrix_shape)


def _is_int(value: Any) -> bool:
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


def _replace(report, **changes):
    changed = dataclasses.replace(report, **changes)
    ratio = changed.params_before / changed.params_after
    return dataclasses.replace(changed, compression_ratio=ratio)
