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


# ---------------------------------------------------------------------- grouped workloads

MODES = ("smoke", "quick", "full")


@dataclass
class Row:
    """One implementation's result in a workload group (long chains, apply, MPO compression,
    torch layers): ``ratios`` are the group's own speed-ups (> 1: tnkit is faster), ``extra``
    any further structured data (bond profiles, parameter counts)."""

    group: str
    case: str
    library: str
    method: str
    time_s: float | None
    rel_error: float | None = None
    bound: float | None = None
    ratios: dict[str, float | None] = field(default_factory=dict)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GroupResult:
    """What a workload group's ``rows(mode, ...)`` returns: rows, a description, notes."""

    name: str
    description: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing (or zero below)."""
    if numerator is None or not denominator or not math.isfinite(numerator):
        return None
    return numerator / denominator


def interleaved_best(
    jobs: dict[Any, Callable[[], Any]],
    repeats: int | dict[Any, int],
    budget_s: float = math.inf,
    *,
    warm_up: bool = False,
    log: Callable[[Any, float], None] | None = None,
) -> tuple[dict[Any, float], dict[Any, Any]]:
    """Best wall time of every job, in rounds that run each job once in turn (so that load from
    other processes hits them alike): ``repeats`` rounds (per job if a dict), a job dropping
    out once it has spent ``budget_s`` seconds. ``warm_up``: one untimed call each first.
    Returns the best times and each job's last output."""
    counts = repeats if isinstance(repeats, dict) else dict.fromkeys(jobs, repeats)
    if warm_up:
        for job in jobs.values():
            job()
    best = dict.fromkeys(jobs, math.inf)
    spent = dict.fromkeys(jobs, 0.0)
    outputs: dict[Any, Any] = {}
    for round_ in range(max(counts.values(), default=0)):
        for key, job in jobs.items():
            if round_ >= counts[key] or spent[key] > budget_s:
                continue
            start = time.perf_counter()
            outputs[key] = job()
            elapsed = time.perf_counter() - start
            spent[key] += elapsed
            best[key] = min(best[key], elapsed)
            if log is not None:
                log(key, elapsed)
    return best, outputs


# ---------------------------------------------------------------------- standalone scripts


@contextlib.contextmanager
def blas_limit(threads: int | None):
    """Cap every library's BLAS threads inside the block (None: leave them as found).

    SciPy's LAPACK and quimb (with its Numba and BLAS) are imported first: threadpoolctl only
    limits the libraries already loaded."""
    if threads is None:
        yield
        return
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    peers.load("quimb")
    with threadpool_limits(limits=threads):
        yield


def parse_script_args(doc: str, *, quick: str, repeats: int, budget: float) -> Any:
    """The options the standalone benchmark scripts share; adds ``mode`` ("quick" or "full"),
    ``threads`` (the BLAS cap, None to leave as found) and ``threads_label``."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
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
    args = parser.parse_args()
    args.mode = "quick" if args.quick else "full"
    args.threads = None if args.blas_threads == 0 else args.blas_threads
    args.threads_label = "as found" if args.threads is None else str(args.threads)
    return args


def script_header(*distributions: str) -> str:
    """One line of versions and machine that standalone scripts print above their table."""
    import importlib.metadata
    import platform

    versions = []
    for name in ("tnkit", "numpy", *distributions):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    machine = platform.processor() or platform.machine() or "cpu"
    return ", ".join(versions) + f", python {platform.python_version()}, {machine}"


def tenpy_dmrg_options(chi: int, sweeps: int) -> dict:
    """TeNPy DMRG options for a run of exactly ``sweeps`` full sweeps at bond ``chi``,
    truncated only by the bond (``svd_min`` 1e-12), without mixer: the settings every
    DMRG benchmark gives TeNPy."""
    return {
        "trunc_params": {"chi_max": chi, "svd_min": 1e-12},
        "mixer": None,
        "min_sweeps": sweeps,
        "max_sweeps": sweeps,
        "max_E_err": 1e-16,
    }
