"""Timing and recording shared by all workloads: warm up, best-of-N, measure the error, never crash.

A workload builds ``Case`` objects (one input, several ``Impl``s); ``measure_case`` times each
implementation and measures its error with the case's own harness-side error function.
"""

from __future__ import annotations

import contextlib
import gc
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peers

BOUND_SLACK_REL = 1e-6
BOUND_SLACK_ABS = 1e-12


def _no_bound(result: Any) -> float | None:
    return None


@dataclass(frozen=True)
class Impl:
    """One library's way to do a case: ``run`` is timed, ``prepare`` and ``extract`` are not."""

    library: str
    prepare: Callable[[], Any]
    run: Callable[[Any], Any]
    extract: Callable[[Any], Any]
    bound: Callable[[Any], float | None] = _no_bound
    note: str = ""


@dataclass(frozen=True)
class Case:
    """One input of one workload, with the implementations to compare on it."""

    workload: str
    name: str
    params: dict[str, Any]
    impls: list[Impl]
    error: Callable[[Any], float]
    error_note: str = ""


@dataclass
class Measurement:
    """What one implementation achieved on one case."""

    library: str
    status: str
    time_s: float | None = None
    repeats: int = 0
    rel_error: float | None = None
    bound: float | None = None
    bound_violated: bool | None = None
    note: str = ""


@dataclass
class CaseResult:
    """A case and the measurements of all its implementations, keyed by library."""

    workload: str
    name: str
    params: dict[str, Any]
    error_note: str
    measurements: dict[str, Measurement] = field(default_factory=dict)


@dataclass(frozen=True)
class TimingPolicy:
    """Best of ``repeats`` runs, stopping early once ``budget_s`` seconds have been spent."""

    repeats: int = 3
    budget_s: float = 20.0


def best_of(impl: Impl, policy: TimingPolicy) -> tuple[float, int, Any]:
    """Best wall time of up to ``policy.repeats`` runs: (seconds, runs done, last result)."""
    best, spent, runs, result = math.inf, 0.0, 0, None
    while runs < policy.repeats and (runs == 0 or spent < policy.budget_s):
        args = impl.prepare()
        result = None
        gc.collect()
        start = time.perf_counter()
        result = impl.run(args)
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best, runs, result


def _failure(library: str, exc: BaseException) -> Measurement:
    """tnkit functions that do not exist yet are "n/a"; anything else is an error, kept visible."""
    missing = library == "tnkit" and isinstance(exc, (AttributeError, NotImplementedError))
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
    if not missing:
        traceback.print_exception(exc, file=sys.stderr)
    return Measurement(library, "n/a" if missing else "error", note=message)


def _bound_violated(rel_error: float, bound: float | None) -> bool | None:
    if bound is None:
        return None
    return rel_error > bound * (1 + BOUND_SLACK_REL) + BOUND_SLACK_ABS


def warm_up(impl: Impl) -> None:
    """One untimed call (JIT compilation, plan caches); failures surface in the timed run."""
    with contextlib.suppress(Exception):
        impl.run(impl.prepare())


def measure(impl: Impl, case: Case, policy: TimingPolicy, warm: Impl | None = None) -> Measurement:
    """Warm up, time, and measure the error of one implementation on one case."""
    if impl.library in peers.MODULES and peers.load(impl.library) is None:
        return Measurement(impl.library, "n/a", note="not installed")
    try:
        if warm is not None:
            warm_up(warm)
        if impl.library == "tnkit":
            impl.run(impl.prepare())
        seconds, runs, result = best_of(impl, policy)
        extracted = impl.extract(result)
        bound = impl.bound(result)
        rel_error = case.error(extracted)
    except Exception as exc:  # noqa: BLE001 - one failing library must not stop the suite
        return _failure(impl.library, exc)
    return Measurement(
        impl.library,
        "ok",
        time_s=seconds,
        repeats=runs,
        rel_error=rel_error,
        bound=bound,
        bound_violated=_bound_violated(rel_error, bound),
        note=impl.note,
    )


def measure_case(case: Case, policy: TimingPolicy, tiny: Case | None = None) -> CaseResult:
    """Measure every implementation of ``case``; ``tiny`` (same impls, small input) warms up."""
    record = CaseResult(case.workload, case.name, case.params, case.error_note)
    warm_impls = {impl.library: impl for impl in tiny.impls} if tiny else {}
    for impl in case.impls:
        measurement = measure(impl, case, policy, warm_impls.get(impl.library))
        record.measurements[impl.library] = measurement
        print(f"  [{case.name}] {_describe(measurement)}", file=sys.stderr, flush=True)
    return record


def _describe(m: Measurement) -> str:
    if m.status != "ok":
        return f"{m.library}: {m.status} {m.note}"
    bound = "" if m.bound is None else f", bound {m.bound:.3e}"
    flag = "  ** ERROR ABOVE BOUND **" if m.bound_violated else ""
    return (
        f"{m.library}: {m.time_s:.4g} s (best of {m.repeats}), error {m.rel_error:.3e}{bound}{flag}"
    )


# ---------------------------------------------------------------------- standalone scripts


@contextlib.contextmanager
def blas_limit(threads: int | None):
    """Cap every library's BLAS threads inside the block (None: leave them as found)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


def add_script_arguments(parser: Any, *, quick: str, repeats: int, budget: float) -> None:
    """The options the standalone benchmark scripts share."""
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--repeats", type=int, default=repeats, help="best of this many runs")
    parser.add_argument("--budget", type=float, default=budget, help="seconds per method")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="cap BLAS threads for every library (0: leave as found); default 1, since "
        "multi-threaded LAPACK on a loaded 2-core machine is slower by orders of magnitude",
    )
