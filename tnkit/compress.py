"""Compression of a train by a canonical sweep with truncated factorisations at every bond.

Pure functions on 3-leg cores; the error of each bond is measured and summed (the pieces are
orthogonal in canonical form), so the bound is rigorous. No contraction of two trains here.
"""

from __future__ import annotations

from . import _backend as B
from .canonical import _absorb_right, _reshape, move_centre
from .linalg import truncated_split
from .truncation import Budget, Truncation

COMPRESS_METHODS = ("svd",)


def compress_cores(
    cores: tuple, centre: int | None, truncation: Truncation, *, svd_method: str = "auto"
) -> tuple[tuple, float, list[float], bool, str]:
    """Truncate every bond in one right-to-left sweep from the left-canonical form.

    Returns ``(cores, norm, discarded, tolerance_met, methods)`` with the result
    right-canonical (centre 0) and ``discarded[k]`` the squared weight cut at bond k.
    """
    last = len(cores) - 1
    with B.blas_threads(B.sweep_threads(cores)):
        return _truncating_sweep(move_centre(cores, centre, last), truncation, svd_method)


def _truncating_sweep(cores: tuple, truncation: Truncation, svd_method: str):
    last = len(cores) - 1
    cores = list(cores)
    norm = B.frob_sq(cores[last]) ** 0.5
    budget = Budget(truncation.total_budget(norm), last)
    discarded = [0.0] * last
    methods = set()
    for k in range(last, 0, -1):
        dl, p, dr = cores[k].shape
        split = truncated_split(
            _reshape(cores[k], (dl, p * dr)),
            max_bond=truncation.max_bond,
            budget=budget.allowance(),
            method=svd_method,
            isometry="right",
        )
        cores[k] = _reshape(split.right, (split.rank, p, dr))
        cores[k - 1] = _absorb_right(cores[k - 1], split.left)
        discarded[k - 1] = split.discarded
        budget.spend(split.discarded)
        methods.add(split.method)
    return tuple(cores), norm, discarded, budget.met(discarded), "+".join(sorted(methods))
