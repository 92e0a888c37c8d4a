"""Energy error against wall time: tnkit's two-site and one-site DMRG, quimb's DMRG2 and
TeNPy's two-site engine (no charges) on the S = 1/2 Heisenberg chain (issue 17's plot).

Usage: ``python benchmarks/plot_dmrg_convergence.py [--L 100] [--bond 64] [--sweeps 8]
[--out docs/img/dmrg_convergence.png]``. One BLAS thread for every code, all in one
process, each from its own start (tnkit: a random state of bond 8, seed 0; quimb: its
random start; TeNPy: the Néel state). The error of each sweep's energy is taken against
the lowest energy any of them reached (floored at 1e-13 for the log scale); the seconds
are wall seconds since each run started, at the end of each full sweep. A peer that is not
installed is left out.
"""

from __future__ import annotations

import argparse
import time

from bench_dmrg import tenpy_heisenberg
from harness import blas_limit, tenpy_dmrg_options

import tnkit as tn


def trace_tnkit(L: int, chi: int, sweeps: int, method: str) -> list[tuple[float, float]]:
    trace: list[tuple[float, float]] = []
    start = time.perf_counter()
    tn.dmrg(
        tn.models.heisenberg(L),
        max_bond=chi,
        sweeps=sweeps,
        tol=0.0,
        seed=0,
        method=method,
        callback=lambda r: trace.append((time.perf_counter() - start, r.energy)),
    )
    return trace


def trace_quimb(L: int, chi: int, sweeps: int) -> list[tuple[float, float]]:
    import quimb.tensor as qtn

    trace = []
    start = time.perf_counter()
    solver = qtn.DMRG2(qtn.MPO_ham_heis(L, cyclic=False), bond_dims=[chi], cutoffs=1e-12)
    for _ in range(sweeps):  # quimb's sweep is one direction: two make a full sweep
        solver.solve(max_sweeps=2, tol=1e-16, verbosity=0)
        trace.append((time.perf_counter() - start, float(solver.energy)))
    return trace


def trace_tenpy(L: int, chi: int, sweeps: int) -> list[tuple[float, float]]:
    from tenpy.algorithms import dmrg

    model, psi = tenpy_heisenberg(L)
    engine = dmrg.TwoSiteDMRGEngine(psi, model, tenpy_dmrg_options(chi, sweeps))
    engine.run()
    stats = engine.sweep_stats  # "time": seconds since the engine started, per sweep
    return [(float(t), float(e)) for t, e in zip(stats["time"], stats["E"], strict=True)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--L", type=int, default=100)
    parser.add_argument("--bond", type=int, default=64)
    parser.add_argument("--sweeps", type=int, default=8)
    parser.add_argument("--out", default="docs/img/dmrg_convergence.png")
    args = parser.parse_args(argv)
    runs = {
        "tnkit two-site": lambda: trace_tnkit(args.L, args.bond, args.sweeps, "two-site"),
        "tnkit one-site": lambda: trace_tnkit(args.L, args.bond, args.sweeps, "one-site"),
        "quimb DMRG2": lambda: trace_quimb(args.L, args.bond, args.sweeps),
        "TeNPy two-site": lambda: trace_tenpy(args.L, args.bond, args.sweeps),
    }
    traces = {}
    with blas_limit(1):
        for name, run in runs.items():
            try:
                traces[name] = run()
            except ImportError:
                continue
            seconds, energy = traces[name][-1]
            print(f"{name}: {len(traces[name])} sweeps, {seconds:.1f} s, E = {energy:.10f}")
    best = min(e for trace in traces.values() for _, e in trace)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, trace in traces.items():
        x = [t for t, _ in trace]
        y = [max((e - best) / abs(best), 1e-13) for _, e in trace]
        ax.semilogy(x, y, marker="o", label=name)
    ax.set_xlabel("wall seconds (one BLAS thread)")
    ax.set_ylabel("relative energy error per full sweep")
    ax.set_title(f"S = 1/2 Heisenberg, L = {args.L}, bond {args.bond}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot: {args.out} (errors against E = {best:.10f})")


if __name__ == "__main__":
    main()
