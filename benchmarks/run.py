"""Benchmark entry point: tnkit against quimb, TensorLy, TeNPy and a bare LAPACK floor, one process.

Usage: python benchmarks/run.py [--quick] [--only NAME ...] [--out DIR] [--repeats N] [--budget S]
Prints a markdown table of ratios and writes OUT/results.{json,md,png} (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
from harness import CaseResult, TimingPolicy, measure_case  # noqa: E402
from workloads import WORKLOADS, Workload  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [w.name for w in WORKLOADS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=", ".join(names))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="stop repeating once one library has spent S seconds (default 20; 5 with --quick)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="cap BLAS/OpenMP threads (threadpoolctl) for the whole run; default: leave as is",
    )
    return parser.parse_args(argv)


def run_workload(workload: Workload, mode: str, policy: TimingPolicy) -> list[CaseResult]:
    """Build the workload at ``mode`` size (plus its tiny warm-up twin) and measure every case."""
    print(f"{workload.name} ({mode})", file=sys.stderr, flush=True)
    cases = workload.build(workload.sizes[mode])
    tiny_cases = workload.build(workload.sizes["tiny"])
    return [measure_case(case, policy, tiny) for case, tiny in zip(cases, tiny_cases, strict=True)]


def blas_limit(threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """threadpoolctl limit on every BLAS/OpenMP pool, or nothing when ``threads`` is None."""
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with blas_limit(args.blas_threads):
        return run(args)


def run(args: argparse.Namespace) -> int:
    """Measure the selected workloads and write the results."""
    mode = "quick" if args.quick else "full"
    budget = args.budget if args.budget is not None else (5.0 if args.quick else 20.0)
    policy = TimingPolicy(repeats=args.repeats, budget_s=budget)
    selected = [w for w in WORKLOADS if not args.only or w.name in args.only]
    machine = report.machine_info()
    start = time.perf_counter()
    records = [record for w in selected for record in run_workload(w, mode, policy)]
    config = {
        "quick": args.quick,
        "repeats": policy.repeats,
        "budget_s": policy.budget_s,
        "workloads": [w.name for w in selected],
        "blas_threads": args.blas_threads,
        "wall_s": round(time.perf_counter() - start, 1),
        "load_average_at_end": report.load_average(),
    }
    print(report.write(records, machine, config, args.out))
    print(f"\nwrote {args.out}/results.{{md,json,png}} in {config['wall_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
