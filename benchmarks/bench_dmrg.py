"""Two-site DMRG against quimb and TeNPy (no charges): S = 1/2 Heisenberg, open chain.

Usage: ``python benchmarks/bench_dmrg.py [--L 100] [--bonds 64,128] [--sweeps 6]
[--blas-threads 1|0] [--quick]``. Every code runs the same number of full sweeps (left to
right and back; quimb counts each direction as a sweep, so it gets twice the number) at the
same maximal bond, from its own random or Néel start, with truncation only by the bond
(cutoffs 1e-12 / svd_min 1e-12). The table gives seconds, the final energy and its
difference to tnkit's, and the speed-up of tnkit (peer time / tnkit time) against each peer
and against the faster of them. ``--blas-threads 1`` (the default) limits every code to one
BLAS thread; ``0`` leaves the threads as found. A peer that is not installed is left out.
"""

from __future__ import annotations

import argparse
import math
import time

from harness import blas_limit, tenpy_dmrg_options

import tnkit as tn


def run_tnkit(L: int, chi: int, sweeps: int) -> tuple[float, float]:
    h = tn.models.heisenberg(L)
    start = time.perf_counter()
    result = tn.dmrg(h, max_bond=chi, sweeps=sweeps, tol=0.0, seed=0)
    return time.perf_counter() - start, result.energy


def run_quimb(L: int, chi: int, sweeps: int) -> tuple[float, float]:
    import quimb.tensor as qtn

    h = qtn.MPO_ham_heis(L, cyclic=False)
    start = time.perf_counter()
    solver = qtn.DMRG2(h, bond_dims=[chi], cutoffs=1e-12)
    solver.solve(max_sweeps=2 * sweeps, tol=1e-16, verbosity=0)
    return time.perf_counter() - start, float(solver.energy)


def tenpy_heisenberg(L: int) -> tuple:
    """TeNPy's S = 1/2 Heisenberg chain (open, no charges) and its Néel start."""
    import logging

    from tenpy.models.spins import SpinChain
    from tenpy.networks.mps import MPS

    logging.getLogger("tenpy").setLevel(logging.WARNING)
    model = SpinChain(
        {"L": L, "S": 0.5, "Jx": 1.0, "Jy": 1.0, "Jz": 1.0, "bc_MPS": "finite", "conserve": None}
    )
    psi = MPS.from_product_state(model.lat.mps_sites(), ["up", "down"] * (L // 2), bc="finite")
    return model, psi


def run_tenpy(L: int, chi: int, sweeps: int) -> tuple[float, float]:
    from tenpy.algorithms import dmrg

    model, psi = tenpy_heisenberg(L)
    start = time.perf_counter()
    info = dmrg.run(psi, model, tenpy_dmrg_options(chi, sweeps))
    return time.perf_counter() - start, float(info["E"])


def matvec_floor(chi: int, repeats: int = 20) -> tuple[float, float, int]:
    """The two-site effective-Hamiltonian matvec of the Heisenberg MPO (w = 5, d = 2) at bond
    ``chi``: its time, the time of one dgemm doing the same number of multiply-adds, and that
    number (three products: χ·w × χ × d²χ, χ² × w·d² × d²·w, χ·d² × w·χ × χ)."""
    import numpy as np

    from tnkit.algorithms import environments as env

    rng = np.random.default_rng(0)
    ops = tn.models.heisenberg(8).cores
    w, d = ops[3].shape[0], ops[3].shape[1]
    left = rng.standard_normal((chi, w, chi))
    right = rng.standard_normal((chi, w, chi))
    theta = rng.standard_normal((chi, d, d, chi))
    matvec = env.two_site_matvec(left, ops[3], ops[4], right)
    macs = 2 * chi * w * chi * d * d * chi + chi * chi * (w * d * d) ** 2
    side = round(macs ** (1 / 3))
    a, b = rng.standard_normal((side, side)), rng.standard_normal((side, side))
    times = []
    for run in (lambda: matvec(theta), lambda: a @ b):
        run()
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        times.append(best)
    return times[0], times[1], macs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--L", type=int, default=100)
    parser.add_argument("--bonds", default="64")
    parser.add_argument("--sweeps", type=int, default=6)
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="L=40, bond 32, 4 sweeps")
    args = parser.parse_args(argv)
    L, bonds, sweeps = args.L, [int(b) for b in args.bonds.split(",")], args.sweeps
    if args.quick:
        L, bonds, sweeps = 40, [32], 4
    limit = blas_limit(args.blas_threads or None)
    threads = args.blas_threads or "as found"
    print(f"S=1/2 Heisenberg, open, L={L}, {sweeps} full sweeps, BLAS threads: {threads}\n")
    print("| bond | code | seconds | energy | ΔE vs tnkit | speed-up of tnkit |")
    print("|---|---|---|---|---|---|")
    with limit:
        for chi in bonds:
            results = {"tnkit": run_tnkit(L, chi, sweeps)}
            for name, runner in (("quimb DMRG2", run_quimb), ("TeNPy two-site", run_tenpy)):
                try:
                    results[name] = runner(L, chi, sweeps)
                except ImportError:
                    continue
            ours, energy = results["tnkit"]
            peers = [t for name, (t, _) in results.items() if name != "tnkit"]
            for name, (seconds, e) in results.items():
                speed = "" if name == "tnkit" else f"{seconds / ours:.2f}×"
                print(
                    f"| {chi} | {name} | {seconds:.2f} | {e:.12f} | {e - energy:+.1e} | {speed} |"
                )
            if peers:
                print(f"| {chi} | faster peer | {min(peers):.2f} | | | {min(peers) / ours:.2f}× |")
        print("\n| bond | matvec | dgemm of the same multiply-adds | ratio |")
        print("|---|---|---|---|")
        for chi in bonds:
            ours, floor, macs = matvec_floor(chi)
            print(
                f"| {chi} | {ours * 1e3:.2f} ms | {floor * 1e3:.2f} ms ({macs:.2e} MACs) | "
                f"{ours / floor:.2f} |"
            )


if __name__ == "__main__":
    main()
