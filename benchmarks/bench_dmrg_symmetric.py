"""Two-site DMRG in a charge sector: tnkit's block-sparse engine against tnkit's plain
(dense) DMRG and against TeNPy with the same charges.

Usage: ``python benchmarks/bench_dmrg_symmetric.py [--model heisenberg|hubbard|spin-one] [--L 100]
[--bonds 128,256] [--sweeps 6] [--blas-threads 1|0] [--one-site] [--quick]``.

- ``heisenberg``: S = 1/2 Heisenberg chain, Sz = 0 (tnkit ``conserve="Sz"``, TeNPy
  ``conserve="Sz"``), Néel start.
- ``hubbard``: Fermi–Hubbard chain, U/t = 8, half filling, Sz = 0 (tnkit
  ``conserve=("N", "Sz")``, TeNPy ``cons_N="N", cons_Sz="Sz"``), start ↑↓↑↓….
- ``spin-one``: S = 1 Heisenberg chain, Sz = 0 (``conserve="Sz"`` in both), start
  +1, −1, +1, ….

Every code runs the same number of full sweeps (left to right and back) at the same bond,
truncating only by the bond (TeNPy: ``svd_min`` 1e-12, no mixer), from the same product
state. The table gives seconds, the energy, its difference to the block engine's, and the
speed-up of the block engine (other time / its time). ``--blas-threads 1`` (default) limits
every code to one BLAS thread; ``0`` leaves the threads as found. ``--one-site`` adds
one-site DMRG with subspace expansion on the blocks, for the same number of sweeps.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from harness import blas_limit, tenpy_dmrg_options

import tnkit as tn


def spin_one_heisenberg(L: int) -> tn.MPO:
    ops = tn.OpSum(L, site="spin-one", conserve="Sz")
    for i in range(L - 1):
        ops.add(1.0, "Sz", i, "Sz", i + 1)
        ops.add(0.5, "S+", i, "S-", i + 1).add(0.5, "S-", i, "S+", i + 1)
    return ops.to_mpo()


MODELS = {
    "heisenberg": {
        "tnkit": lambda L: tn.models.heisenberg(L, conserve="Sz"),
        "site": "spin-half",
        "start": lambda L: ["up", "dn"] * (L // 2),
        "tenpy_start": lambda L: ["up", "down"] * (L // 2),
    },
    "hubbard": {
        "tnkit": lambda L: tn.models.hubbard(L, t=1.0, U=8.0, conserve=("N", "Sz")),
        "site": "electron",
        "start": lambda L: ["up", "dn"] * (L // 2),
        "tenpy_start": lambda L: ["up", "down"] * (L // 2),
    },
    "spin-one": {
        "tnkit": spin_one_heisenberg,
        "site": "spin-one",
        "start": lambda L: ["+1", "-1"] * (L // 2),
        "tenpy_start": lambda L: ["up", "down"] * (L // 2),
    },
}


def run_tnkit(
    model: str, L: int, chi: int, sweeps: int, plain: bool, method: str = "two-site"
) -> tuple[float, float]:
    spec = MODELS[model]
    H = spec["tnkit"](L)
    psi = tn.MPS.product_state(spec["start"](L), site=spec["site"])
    psi = psi.with_charges(H.charges, site=None)
    if plain:
        H, psi = H.to_plain(), psi.to_plain()
    start = time.perf_counter()
    result = tn.dmrg(H, max_bond=chi, sweeps=sweeps, tol=0.0, init=psi, method=method)
    return time.perf_counter() - start, result.energy


def run_tenpy(model: str, L: int, chi: int, sweeps: int) -> tuple[float, float]:
    import logging

    from tenpy.algorithms import dmrg
    from tenpy.networks.mps import MPS

    logging.getLogger("tenpy").setLevel(logging.WARNING)
    if model in ("heisenberg", "spin-one"):
        from tenpy.models.spins import SpinChain

        spin = 0.5 if model == "heisenberg" else 1.0
        params = {"L": L, "S": spin, "Jx": 1.0, "Jy": 1.0, "Jz": 1.0, "conserve": "Sz"}
        lattice_model = SpinChain({**params, "bc_MPS": "finite"})
    else:
        from tenpy.models.hubbard import FermiHubbardChain

        params = {"L": L, "t": 1.0, "U": 8.0, "cons_N": "N", "cons_Sz": "Sz"}
        lattice_model = FermiHubbardChain({**params, "bc_MPS": "finite"})
    psi = MPS.from_product_state(
        lattice_model.lat.mps_sites(), MODELS[model]["tenpy_start"](L), bc="finite"
    )
    start = time.perf_counter()
    info = dmrg.run(psi, lattice_model, tenpy_dmrg_options(chi, sweeps))
    return time.perf_counter() - start, float(info["E"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="heisenberg")
    parser.add_argument("--L", type=int, default=100)
    parser.add_argument("--bonds", default="128")
    parser.add_argument("--sweeps", type=int, default=6)
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--skip-plain", action="store_true", help="leave tnkit's dense run out")
    parser.add_argument(
        "--one-site", action="store_true", help="also one-site DMRG on the blocks (same sweeps)"
    )
    parser.add_argument("--quick", action="store_true", help="L=20, bond 16, 2 sweeps")
    args = parser.parse_args(argv)
    L, bonds, sweeps = args.L, [int(b) for b in args.bonds.split(",")], args.sweeps
    if args.quick:
        L, bonds, sweeps = 20, [16], 2
    limit = blas_limit(args.blas_threads or None)
    threads = args.blas_threads or "as found"
    print(f"{args.model}, L={L}, {sweeps} full sweeps, BLAS threads: {threads}\n")
    print("| bond | code | seconds | energy | ΔE vs blocks | speed-up of blocks |")
    print("|---|---|---|---|---|---|")
    with limit:
        for chi in bonds:
            results = {"tnkit blocks": run_tnkit(args.model, L, chi, sweeps, plain=False)}
            if args.one_site:
                results["tnkit blocks, one-site"] = run_tnkit(
                    args.model, L, chi, sweeps, plain=False, method="one-site"
                )
            if not args.skip_plain:
                results["tnkit dense"] = run_tnkit(args.model, L, chi, sweeps, plain=True)
            with contextlib.suppress(ImportError):
                results["TeNPy (same charges)"] = run_tenpy(args.model, L, chi, sweeps)
            ours, energy = results["tnkit blocks"]
            for name, (seconds, e) in results.items():
                speed = "" if name == "tnkit blocks" else f"{seconds / ours:.2f}×"
                print(
                    f"| {chi} | {name} | {seconds:.2f} | {e:.12f} | {e - energy:+.1e} | {speed} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
