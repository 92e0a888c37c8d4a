"""Ground states in charge sectors (issue 19's acceptance runs), on tnkit's block engine.

Usage:

- ``python benchmarks/sector_runs.py spin-gap [--lengths 32,64,128] [--bond 128]
  [--plot docs/img/spin_gap.png]``: the spin gap Δ(L) = E₀(2Sz = 2) − E₀(2Sz = 0) of the
  open S = 1/2 Heisenberg chain, one DMRG call per sector, with a fit of Δ against 1/L
  (linear through the two largest L, and quadratic through all) and, with ``--plot``, the
  picture of the docs.
- ``python benchmarks/sector_runs.py hubbard [--L 100] [--bonds 256,512] [--U 8]``: the
  Fermi–Hubbard chain at half filling, N = L and Sz = 0, solved in its sector with a bond
  schedule; the energy per site and its two-site variance at the end of each bond stage.

One BLAS thread unless ``--blas-threads 0``. Seconds are wall time of each DMRG call.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from harness import blas_limit

import tnkit as tn


def ground_energy(H: tn.MPO, sector: tuple, site: str, conserve, schedule) -> tuple:
    """DMRG from a random state of bond 16 in ``sector`` (a product state with its charge
    in one place, e.g. a domain wall, takes many sweeps to spread it)."""
    d = H.out_dims[0]
    start = tn.MPS.random([d] * len(H), 16, site=site, conserve=conserve, sector=sector, seed=0)
    began = time.perf_counter()
    result = tn.dmrg(H, max_bond=schedule, sweeps=len(schedule) + 4, tol=1e-10, init=start)
    return result, time.perf_counter() - began


def spin_gap(lengths: list[int], bond: int, plot: str | None) -> None:
    schedule = [16, 32, 64, bond]
    print(f"S=1/2 Heisenberg, open; bond schedule {schedule}\n")
    print("| L | E₀(2Sz=0) | E₀(2Sz=2) | Δ | two-site variances | seconds |")
    print("|---|---|---|---|---|---|")
    gaps = []
    for L in lengths:
        H = tn.models.heisenberg(L, conserve="Sz")
        zero, t0 = ground_energy(H, (0,), "spin-half", "Sz", schedule)
        one, t1 = ground_energy(H, (2,), "spin-half", "Sz", schedule)
        gap = one.energy - zero.energy
        gaps.append(gap)
        print(
            f"| {L} | {zero.energy:.10f} | {one.energy:.10f} | {gap:.6f} | "
            f"{zero.two_site_variance:.1e}, {one.two_site_variance:.1e} | {t0 + t1:.1f} |",
            flush=True,
        )
    x = 1.0 / np.array(lengths, dtype=float)
    gaps = np.array(gaps)
    linear = np.polyfit(x[-2:], gaps[-2:], 1) if len(x) >= 2 else None
    quadratic = np.polyfit(x, gaps, 2) if len(x) >= 3 else None
    if linear is not None:
        print(f"\nlinear in 1/L through the two largest L: Δ(∞) = {linear[1]:+.4f}")
    if quadratic is not None:
        print(f"quadratic in 1/L through all: Δ(∞) = {quadratic[2]:+.4f}")
    if plot:
        _plot(x, gaps, linear, quadratic, plot)


def _plot(x, gaps, linear, quadratic, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0.0, x.max() * 1.1, 100)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(x, gaps, "o", color="C0", label="DMRG, one call per sector")
    if quadratic is not None:
        ax.plot(grid, np.polyval(quadratic, grid), "-", color="C1", label="quadratic fit in 1/L")
    if linear is not None:
        ax.plot(grid, np.polyval(linear, grid), "--", color="C2", label="linear, two largest L")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_xlabel("1/L")
    ax.set_ylabel("Δ = E₀(Sz=1) − E₀(Sz=0)")
    ax.set_title("Spin gap of the open S=1/2 Heisenberg chain")
    ax.set_xlim(0, grid.max())
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def hubbard(L: int, bonds: list[int], U: float) -> None:
    H = tn.models.hubbard(L, t=1.0, U=U, conserve=("N", "Sz"))
    schedule = [32, 64, 128] + [b for b in bonds for _ in range(3)]
    print(f"Hubbard chain, L={L}, U/t={U}, N={L}, Sz=0; bond schedule {schedule}\n")
    start = tn.MPS.product_state(["up", "dn"] * (L // 2), site="electron", conserve=("N", "Sz"))
    print("| bond | E/L at the stage end | two-site variance | seconds (stage) |")
    print("|---|---|---|---|")
    stage = {"seconds": 0.0}

    def report(record) -> None:  # each stage as it ends
        stage["seconds"] += record.seconds
        if record.two_site_variance is not None:
            print(
                f"| {record.max_bond} | {record.state_energy / L:.10f} | "
                f"{record.two_site_variance:.2e} | {stage['seconds']:.1f} |",
                flush=True,
            )
            stage["seconds"] = 0.0

    began = time.perf_counter()
    result = tn.dmrg(
        H, max_bond=schedule, sweeps=len(schedule), tol=0.0, init=start, callback=report
    )
    total = time.perf_counter() - began
    if result.extrapolation is not None:
        e = result.extrapolation
        print(f"\nextrapolated in the variance: E/L = {e.energy / L:.10f} ± {e.error / L:.1e}")
    print(f"total {total:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", choices=["spin-gap", "hubbard"])
    parser.add_argument("--lengths", default="32,64,128")
    parser.add_argument("--bond", type=int, default=128)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--L", type=int, default=100)
    parser.add_argument("--bonds", default="256,512")
    parser.add_argument("--U", type=float, default=8.0)
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    limit = blas_limit(args.blas_threads or None)
    with limit:
        if args.run == "spin-gap":
            spin_gap([int(n) for n in args.lengths.split(",")], args.bond, args.plot)
        else:
            hubbard(args.L, [int(b) for b in args.bonds.split(",")], args.U)


if __name__ == "__main__":
    main()
