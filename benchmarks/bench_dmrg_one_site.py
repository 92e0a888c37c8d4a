"""One-site DMRG with subspace expansion against tnkit's own two-site DMRG (issue 17).

Usage: ``python benchmarks/bench_dmrg_one_site.py [--cases heis:100:64,s1:40:64,...]
[--sweeps 30] [--blas-threads 1|0] [--quick]``. A case is ``model:L:bond`` with model
``heis`` (S = 1/2 Heisenberg), ``s1`` (spin-1 Heisenberg, Sz Sz + ½(S+S- + S-S+), built
through OpSum) or ``hub`` (Hubbard, t = 1, U = 4, μ = 0). Both methods start from the same
random state (seed 0) and run with the default ``tol`` (1e-10) until they stop or reach
``--sweeps``. The table gives each run's sweeps, seconds, final energy ⟨H⟩, its distance to
the lower of the two, the seconds (and the process's CPU seconds: on a loaded box they
are the steadier measure), the seconds one-site took to reach the two-site energy (within
1e-9·|E|; the energy of the first sweep that did), and the ratio of one-site to two-site
time, both for the whole runs and to that energy (wall, then CPU). ``--blas-threads 1``
(the default) runs on one BLAS thread; ``0`` leaves the threads as found.
"""

from __future__ import annotations

import argparse
import math
import os
import time

from harness import blas_limit

import tnkit as tn

DEFAULT_CASES = "heis:100:64,heis:100:128,s1:40:64,s1:100:100,hub:30:64,hub:20:128"
QUICK_CASES = "heis:40:32,s1:20:32,hub:12:32"
NAMES = {"heis": "S=1/2 Heisenberg", "s1": "spin-1 Heisenberg", "hub": "Hubbard U=4"}


def spin_one_heisenberg(L: int) -> tn.MPO:
    ops = tn.OpSum(L, site="spin-one")
    for i in range(L - 1):
        ops.add(1.0, "Sz", i, "Sz", i + 1)
        ops.add(0.5, "S+", i, "S-", i + 1).add(0.5, "S-", i, "S+", i + 1)
    return ops.to_mpo()


def hamiltonian(model: str, L: int) -> tn.MPO:
    if model == "heis":
        return tn.models.heisenberg(L)
    if model == "s1":
        return spin_one_heisenberg(L)
    if model == "hub":
        return tn.models.hubbard(L, U=4.0)
    raise ValueError(f"model: expected heis, s1 or hub, got {model!r}")


def run(H: tn.MPO, chi: int, method: str, sweeps: int) -> dict:
    """One DMRG run: total seconds, sweeps, final energy, and (elapsed, energy) per sweep."""
    trace: list[tuple[float, float, float]] = []
    start, cpu = time.perf_counter(), time.process_time()
    result = tn.dmrg(
        H,
        max_bond=chi,
        sweeps=sweeps,
        method=method,
        seed=0,
        callback=lambda r: trace.append(
            (time.perf_counter() - start, time.process_time() - cpu, r.energy)
        ),
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu": cpu,
        "sweeps": len(result.sweeps),
        "energy": result.energy,
        "trace": trace,
    }


def reached(trace: list[tuple[float, float, float]], target: float) -> tuple[float, float]:
    """Seconds (and CPU seconds) to the first sweep whose energy is within 1e-9·|target|
    of ``target``."""
    for elapsed, cpu, energy in trace:
        if energy <= target + 1e-9 * abs(target):
            return elapsed, cpu
    return math.nan, math.nan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--sweeps", type=int, default=30)
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help=f"the cases {QUICK_CASES}")
    args = parser.parse_args(argv)
    cases = [c.split(":") for c in (QUICK_CASES if args.quick else args.cases).split(",")]
    limit = blas_limit(args.blas_threads or None)
    threads = args.blas_threads or "as found"
    print(f"BLAS threads: {threads}; load average {os.getloadavg()[0]:.1f} at the start\n")
    print(
        "| model | L | bond | method | sweeps | seconds (CPU) | energy | ΔE to the best "
        "| s to two-site E (CPU) | one-site/two-site: all, to E (CPU: all, to E) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with limit:
        for model, L, chi in cases:
            H, L, chi = hamiltonian(model, int(L)), int(L), int(chi)
            two = run(H, chi, "two-site", args.sweeps)
            one = run(H, chi, "one-site", args.sweeps)
            best = min(two["energy"], one["energy"])
            wall, cpu = reached(one["trace"], two["energy"])
            for method, r in (("two-site", two), ("one-site", one)):
                extra = (
                    f"{wall:.2f} ({cpu:.2f}) | {one['seconds'] / two['seconds']:.2f}, "
                    f"{wall / two['seconds']:.2f} ({one['cpu'] / two['cpu']:.2f}, "
                    f"{cpu / two['cpu']:.2f})"
                    if method == "one-site"
                    else " | "
                )
                print(
                    f"| {NAMES[model]} | {L} | {chi} | {method} | {r['sweeps']} "
                    f"| {r['seconds']:.2f} ({r['cpu']:.2f}) | {r['energy']:.10f} "
                    f"| {r['energy'] - best:.1e} "
                    f"| {extra} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
