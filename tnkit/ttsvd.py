"""The TT-SVD sweep: a dense in-memory tensor to cores and a TruncationReport.

One left-to-right sweep of truncated splits; the error budget is shared across bonds and
every bond's cut is measured, so the report bounds the error rigorously. Cores only: the MPS
and MPO classes wrap them (``tnkit.decompose`` dispatches, ``tnkit._outofcore`` does dask).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import array_api_compat as aac
import numpy as np

from . import _backend as backend
from ._checks import check_array, check_dims
from ._progress import logger, steps
from ._scaling import exponent_for, ldexp, times_pow2
from .linalg import METHODS, truncated_split
from .truncation import Budget, Truncation, TruncationReport

_FLOAT_MAX = float(np.finfo(np.float64).max)


class Decomposition(NamedTuple):
    """Cores of a decomposition, their orthogonality centre, what was cut, and the exact scale
    (the tensor is ``2**exponent`` times the cores' train)."""

    cores: tuple
    centre: int
    report: TruncationReport
    exponent: int = 0


def decompose_array(x: Any, dims: Any, *, progress: bool = False, **request: Any) -> Decomposition:
    """TT-SVD of an in-memory array: left-canonical cores. ``request``: the ``max_bond``,
    ``rtol``, ``atol`` and ``method`` of [tt_svd][tnkit.tt_svd].

    Example:
        >>> import numpy as np
        >>> d = decompose_array(np.ones((2, 2, 2)), None, max_bond=1)
        >>> [c.shape for c in d.cores], d.centre
        ([(1, 2, 1), (1, 2, 1), (1, 2, 1)], 2)
    """
    xp = check_array(x, "x")
    dims, truncation = check_request(x, dims, **request)
    method = request.get("method", "auto")
    # Entries far from 1 would over- or underflow the squares behind norms, Gram matrices and
    # discarded weights: decompose x·2^-k instead and give the last core 2^k back (both exact).
    exponent = exponent_for(_largest(xp, x), x.dtype) if backend.has_values(x) else 0
    if exponent:
        x = times_pow2(x, -exponent)
        truncation = scaled_truncation(truncation, exponent)
    norm = backend.frob_sq(x) ** 0.5
    sweep = TTSVDSweep(dims, truncation, norm, method)
    sweep.run(xp.reshape(x, (dims[0], -1)), rank=1, start=0, progress=progress)
    return sweep.result(exponent, x.dtype)


def _largest(xp: Any, x: Any) -> float:
    if backend.is_numpy(xp) and not backend.is_complex(x.dtype):  # two passes, no |x| copy
        return max(float(np.max(x)), -float(np.min(x)))
    return float(backend.to_numpy(xp.max(xp.abs(x))))


def check_request(
    x: Any, dims: Any, max_bond=None, rtol=None, atol=None, method: str = "auto"
) -> tuple[tuple[int, ...], Truncation]:
    """Validated ``dims`` (default ``x.shape``) and truncation rule of a TT-SVD request."""
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


def scaled_truncation(truncation: Truncation, exponent: int) -> Truncation:
    """The rule for x·2^-exponent: ``atol`` scales with x, ``rtol`` and ``max_bond`` do not."""
    if truncation.atol is None:
        return truncation
    atol = min(ldexp(truncation.atol, -exponent), _FLOAT_MAX)
    return dataclasses.replace(truncation, atol=atol)


class TTSVDSweep:
    """The left-to-right TT-SVD sweep of one tensor, as far as it has gone.

    ``run`` splits bonds ``start, start+1, …`` of an in-memory remainder; the out-of-core
    path (``tnkit._outofcore``) does the leading bonds itself with ``split`` and hands the rest to
    ``run``. ``result`` assembles the cores and the report.
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

    def result(self, exponent: int, dtype: Any) -> Decomposition:
        """The cores and report (``exponent``: the input was decomposed times 2^-exponent).

        The scale goes back into the last core where it holds it (bit for bit the unscaled
        decomposition), else it stays the decomposition's exact scale exponent."""
        cores, dims = self.cores, self.dims
        kept = 0
        if exponent:
            last = times_pow2(cores[-1], exponent)
            xp = aac.array_namespace(last)
            if not backend.has_values(last) or bool(xp.all(xp.isfinite(last))):
                cores[-1] = last
            else:  # the norm overflows the dtype: the cores cannot hold it
                kept = exponent
        report = TruncationReport.from_discarded(
            self.discarded,
            norm=self.norm,
            bond_dims_before=full_rank_bonds(dims),
            bond_dims_after=tuple(c.shape[-1] for c in cores[:-1]),
            params_before=math.prod(dims),
            params_after=sum(math.prod(c.shape) for c in cores),
            method="tt_svd/" + ("+".join(sorted(self.methods)) or "none"),
            tolerance_met=self.budget.met(self.discarded),
        )
        # the report was made in scaled units; its relative bound is unchanged
        return Decomposition(tuple(cores), len(dims) - 1, report.scaled(exponent), kept)


def full_rank_bonds(dims: tuple[int, ...]) -> tuple[int, ...]:
    """The bonds of an exact TT of a dense tensor of shape ``dims``: min(left, right) sizes."""
    return tuple(
        min(math.prod(dims[: k + 1]), math.prod(dims[k + 1 :])) for k in range(len(dims) - 1)
    )
