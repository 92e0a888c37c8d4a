"""Scans: one DMRG per Hamiltonian of a family (a phase diagram), serially or through an
executor (a process pool or a Dask ``Client``), results in the family's order.

The same job runner as ``compress_model``; every job is an independent ``dmrg`` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._executor import Jobs
from .._progress import steps
from ..mpo import MPO
from .dmrg import DMRGResult, dmrg

__all__ = ["scan"]


def scan(
    hamiltonians: Sequence[MPO],
    *,
    executor: Any = None,
    progress: bool = False,
    **options: Any,
) -> list[DMRGResult]:
    """``dmrg(H, **options)`` for every ``H`` of ``hamiltonians``, in their order.

    ``executor``: None (serial), or anything with ``.submit`` — a
    ``concurrent.futures.ProcessPoolExecutor`` or a ``distributed.Client``; the jobs are
    independent, so the results are those of a serial run. A failing job raises as a serial
    run would (the first failure in order). ``progress`` shows a bar over the jobs.

    Example:
        >>> import tnkit as tn
        >>> from tnkit.algorithms import scan
        >>> family = [tn.models.ising(8, J=1.0, g=g) for g in (0.5, 1.0, 1.5)]
        >>> energies = tuple(round(r.energy, 6) for r in scan(family, max_bond=16, seed=0))
        >>> energies
        (-7.640593, -9.837951, -13.191405)
    """
    family = list(hamiltonians)
    for k, H in enumerate(family):
        if not isinstance(H, MPO):
            raise TypeError(f"hamiltonians: item {k} is a {type(H).__name__}, not an MPO")
    runner = Jobs(solve, [(H, options) for H in family], executor)
    for _ in steps(runner, progress=progress, desc="dmrg scan"):
        pass
    return runner.results


def solve(H: MPO, options: dict) -> DMRGResult:
    """One job of a scan (a module-level function, so process pools can pickle it)."""
    return dmrg(H, **options)
