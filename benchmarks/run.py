"""Benchmark entry point: every workload, tnkit against its peers and the LAPACK floor, one process.

Usage: python benchmarks/run.py [--quick | --smoke] [--only NAME[,NAME] ...] [--out DIR]
                                [--repeats N] [--budget S] [--blas-threads N]

Groups (``--only`` takes group names and, for the core group, single workload names):

- ``core``: tt_svd, from_matrix, canonicalize, compress, overlap (``workloads.py``) against
  quimb, TensorLy, TeNPy and the bare NumPy/LAPACK floor (``tt_numpy.py``);
- ``long_chains``: overlap, expectation, norm, canonicalise and sampling of long chains with the
  Numba kernels, against their array-API twins, a NumPy loop and quimb (``bench_long_chains.py``);
- ``apply``: MPO application (exact, zipup, density, fit) against quimb (``bench_apply.py``);
- ``mpo_compress``: H^n per compression method against quimb (``bench_mpo_compress.py``);
- ``torch_linear``: MPOLinear against nn.Linear and tltorch (``bench_torch_linear.py``).

Prints the markdown and writes OUT/results.{json,md,png} (default benchmarks/results). A peer
that is not installed leaves its rows out with a note; a group that fails is reported (and the
exit status is 1) without stopping the others.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
from harness import MODES, CaseResult, GroupResult, TimingPolicy, measure_case  # noqa: E402
from workloads import WORKLOADS, Workload  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
CORE = [w.name for w in WORKLOADS]
GROUPS = {  # group name -> module with ``rows(mode, repeats, budget) -> GroupResult``
    "long_chains": "bench_long_chains",
    "apply": "bench_apply",
    "mpo_compress": "bench_mpo_compress",
    "torch_linear": "bench_torch_linear",
}
NAMES = ["core", *CORE, *GROUPS]


def _names(value: str) -> list[str]:
    names = [name for name in value.split(",") if name]
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(NAMES)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    size.add_argument(
        "--smoke", action="store_true", help="the smallest sizes, one run each (a test)"
    )
    parser.add_argument(
        "--only",
        type=_names,
        nargs="+",
        metavar="NAME[,NAME]",
        help="groups or core workloads: " + ", ".join(NAMES),
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="best of N runs (default: 3 for core, each group its own; 1 with --smoke)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="stop repeating once one implementation has spent S seconds "
        "(core: 20, 5 with --quick; groups: their own)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="cap BLAS/OpenMP threads (threadpoolctl) for the whole run; 0: leave as found; "
        "default: as found for full runs, 1 for --quick/--smoke (threaded OpenBLAS thrashes "
        "on small, busy machines and the quick sizes are small)",
    )
    args = parser.parse_args(argv)
    if args.blas_threads is None and (args.quick or args.smoke):
        args.blas_threads = 1
    elif args.blas_threads == 0:
        args.blas_threads = None
    if args.only:
        args.only = sorted({n for names in args.only for n in names}, key=NAMES.index)
    args.mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    return args


def selected(only: list[str] | None) -> tuple[list[Workload], list[str]]:
    """The core workloads and the groups that ``--only`` names (all of them without it)."""
    if not only:
        return list(WORKLOADS), list(GROUPS)
    core = [w for w in WORKLOADS if "core" in only or w.name in only]
    return core, [g for g in GROUPS if g in only]


def run_workload(workload: Workload, mode: str, policy: TimingPolicy) -> list[CaseResult]:
    """Build the workload at ``mode`` size (plus its tiny warm-up twin) and measure every case."""
    print(f"{workload.name} ({mode})", file=sys.stderr, flush=True)
    cases = workload.build(workload.sizes["tiny" if mode == "smoke" else mode])
    tiny_cases = workload.build(workload.sizes["tiny"])
    return [measure_case(case, policy, tiny) for case, tiny in zip(cases, tiny_cases, strict=True)]


def run_group(name: str, mode: str, repeats: int | None, budget: float | None) -> GroupResult:
    """Import the group's module and call its ``rows``; a missing import (torch, say) or a
    failure becomes a group without rows and with a note saying why."""
    print(f"{name} ({mode})", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        module = importlib.import_module(GROUPS[name])
    except ImportError as exc:
        return GroupResult(name, "", notes=[f"skipped: {exc}"], config={"skipped": True})
    try:
        group = module.rows(mode, repeats, budget)
    except Exception as exc:  # noqa: BLE001 - one failing group must not stop the suite
        traceback.print_exception(exc, file=sys.stderr)
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return GroupResult(name, "", notes=[f"error: {message}"], config={"error": message})
    group.config["wall_s"] = round(time.perf_counter() - start, 1)
    return group


def blas_limit(threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """threadpoolctl limit on every BLAS/OpenMP pool, or nothing when ``threads`` is None."""
    if threads is None:
        return contextlib.nullcontext()
    from harness import blas_limit as limit

    return limit(threads)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import scipy.linalg  # noqa: F401 - loaded before any BLAS limit and the machine record

    with blas_limit(args.blas_threads):
        return run(args)


def run(args: argparse.Namespace) -> int:
    """Measure the selected workloads and groups, write the results; 1 if a group failed."""
    assert args.mode in MODES
    mode = args.mode
    budget = args.budget if args.budget is not None else {"full": 20.0}.get(mode, 5.0)
    repeats = args.repeats or (1 if mode == "smoke" else 3)
    policy = TimingPolicy(repeats=repeats, budget_s=budget)
    core, group_names = selected(args.only)
    machine = report.machine_info()
    start = time.perf_counter()
    records = [record for w in core for record in run_workload(w, mode, policy)]
    group_repeats = 1 if mode == "smoke" else args.repeats
    groups = [run_group(name, mode, group_repeats, args.budget) for name in group_names]
    machine["blas"] = report.blas_info()  # now that every group's libraries are loaded
    config = {
        "mode": mode,
        "quick": mode != "full",
        "repeats": policy.repeats,
        "budget_s": policy.budget_s,
        "workloads": [w.name for w in core],
        "groups": group_names,
        "blas_threads": args.blas_threads,
        "wall_s": round(time.perf_counter() - start, 1),
        "load_average_at_end": report.load_average(),
    }
    print(report.write(report.Suite(records, groups, machine, config), args.out))
    print(f"\nwrote {args.out}/results.{{md,json,png}} in {config['wall_s']} s", file=sys.stderr)
    return 1 if any("error" in g.config for g in groups) else 0


if __name__ == "__main__":
    sys.exit(main())
