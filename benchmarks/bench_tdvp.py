"""TDVP against TeNPy (no charges): Néel quench of the S = 1/2 Heisenberg chain, open.

Usage: ``python benchmarks/bench_tdvp.py [--L 40] [--t 2] [--dt 0.05] [--bond 64]
[--blas-threads 1|0|both] [--quick]``. Both codes start from the Néel state and take the
same steps ``dt`` to time ``t`` at the same maximal bond (truncation only by the bond:
cutoffs 1e-12 / svd_min 1e-12), two-site first; the one-site rows continue for another
``t`` from tnkit's two-site state in both codes (converted by ``tnkit.interop.to_tenpy``),
so the one-site integrators start from the same state (a product state cannot grow its
bond by one-site steps). The table gives seconds, the speed-up of tnkit (TeNPy time /
tnkit time), the largest |Δ⟨Sz_i⟩| between the codes at the final time, and each code's
energy drift; a last line times one local exponential against the dgemm floor of its
matvecs.
``--blas-threads 1`` limits every code to one BLAS thread, ``0`` leaves the threads as
found, ``both`` runs the two in turn. Everything runs in one process.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time

import numpy as np
import threadpoolctl

import tnkit as tn

SZ = np.diag([0.5, -0.5])


def neel(L: int) -> tn.MPS:
    return tn.MPS([np.eye(2)[k % 2].reshape(1, 2, 1) for k in range(L)])


def tnkit_sz(state: tn.MPS) -> np.ndarray:
    return np.array(
        [
            complex(tn.local_expectation(state, SZ, i, normalize=True)).real
            for i in range(len(state))
        ]
    )


def run_tnkit(L: int, t: float, dt: float, chi: int) -> dict:
    H = tn.models.heisenberg(L)
    start = time.perf_counter()
    two = tn.tdvp(H, neel(L), t, dt=dt, max_bond=chi, rtol=None)
    middle = time.perf_counter()
    # the switch to one-site happens by itself once the bond saturates; force it here so
    # the rows compare the same integrators
    one = tn.tdvp(H, two.state, t, dt=dt, method="one-site", observables=["energy"])
    end = time.perf_counter()
    energies = one.values["energy"]
    return {
        "two-site": (middle - start, tnkit_sz(two.state)),
        "one-site": (end - middle, tnkit_sz(one.state)),
        "drift": float(np.max(np.abs(energies - energies[0]))),
        "matvecs": sum(r.matvecs for r in two.steps) / max(1, len(two.steps)),
        "switched": sum(r.method == "one-site" for r in two.steps),
        "two-site state": two.state,
    }


def run_tenpy(L: int, t: float, dt: float, chi: int, one_site_from: tn.MPS | None = None) -> dict:
    from tenpy.algorithms.tdvp import SingleSiteTDVPEngine, TwoSiteTDVPEngine
    from tenpy.models.spins import SpinChain
    from tenpy.networks.mps import MPS

    logging.getLogger("tenpy").setLevel(logging.WARNING)
    model = SpinChain(
        {"L": L, "S": 0.5, "Jx": 1.0, "Jy": 1.0, "Jz": 1.0, "bc_MPS": "finite", "conserve": None}
    )
    psi = MPS.from_product_state(model.lat.mps_sites(), ["up", "down"] * (L // 2), bc="finite")
    steps = round(t / dt)
    options = {
        "trunc_params": {"chi_max": chi, "svd_min": 1e-12},
        "dt": dt,
        "N_steps": steps,
    }
    start = time.perf_counter()
    TwoSiteTDVPEngine(psi, model, options).run()
    middle = time.perf_counter()
    sz_two = np.real(psi.expectation_value("Sz"))
    if one_site_from is not None:  # the one-site row continues from tnkit's two-site state
        from tnkit.interop import to_tenpy

        # TeNPy's SpinSite(S=0.5) orders its basis (down, up); tnkit's spin-half (up, down)
        flipped = tn.MPS([np.ascontiguousarray(c[:, ::-1, :]) for c in one_site_from.cores])
        psi = to_tenpy(flipped, model.lat.mps_sites())
        middle = time.perf_counter()
    energy_before = float(np.real(model.H_MPO.expectation_value(psi)))
    SingleSiteTDVPEngine(psi, model, options).run()
    end = time.perf_counter()
    energy_after = float(np.real(model.H_MPO.expectation_value(psi)))
    return {
        "two-site": (middle - start, sz_two),
        "one-site": (end - middle, np.real(psi.expectation_value("Sz"))),
        "drift": abs(energy_after - energy_before),
    }


def run_quimb_tebd(L: int, t: float, dt: float, chi: int, order: int) -> tuple:
    """quimb's TEBD (nearest-neighbour Trotter gates, ``order`` 2 or 4) on the same quench,
    cutoff 1e-12 (quimb's default mode: the discarded squared weight, relative): seconds,
    ⟨Sz_i(t)⟩ and the final largest bond. quimb's spin-half basis is (up, down), as
    tnkit's."""
    import quimb as qu
    import quimb.tensor as qtn

    state = qtn.MPS_computational_state("01" * (L // 2))
    tebd = qtn.TEBD(
        state,
        qtn.ham_1d_heis(L, cyclic=False),
        dt=dt,
        split_opts={"max_bond": chi, "cutoff": 1e-12},
    )
    tebd.progbar = False
    start = time.perf_counter()
    tebd.update_to(t, order=order, progbar=False)
    seconds = time.perf_counter() - start
    sz = qu.spin_operator("z").real
    final = tebd.pt
    final = final / (final.H @ final) ** 0.5
    values = np.array([float(np.real(final.local_expectation(sz, i))) for i in range(L)])
    return seconds, values, final.max_bond()


def local_step(state: tn.MPS, dt: float, repeats: int = 10) -> tuple[float, float, int]:
    """One local exponential of the second-order sweep (a half step dt/2 of the two sites in
    the middle of ``state``, under the Heisenberg chain): its time, the time of the dgemms
    doing the multiply-adds of its matvecs (each as one square complex dgemm of the same
    count: χ·w × χ × d²χ, χ·d² × w·χ × χ and χ² × w·d² × d²·w), and its matvecs."""
    from tnkit.algorithms import environments as env
    from tnkit.algorithms.krylov import expm_krylov

    L = len(state)
    middle = L // 2 - 1
    ops = [np.asarray(op, dtype=complex) for op in tn.models.heisenberg(L).cores]
    cores = [np.asarray(c, dtype=complex) for c in state.canonicalize(middle).cores]
    left, right = env.edge(cores[0]), env.edge(cores[0])
    for k in range(middle):
        left = env.grow_left(left, cores[k], ops[k])
    for k in range(L - 1, middle + 1, -1):
        right = env.grow_right(right, cores[k], ops[k])
    theta = np.einsum("asb,btc->astc", cores[middle], cores[middle + 1])
    matvec = env.two_site_matvec(left, ops[middle], ops[middle + 1], right)
    chi_l, d, _, chi_r = theta.shape
    w = ops[middle].shape[3]
    macs = chi_l * w * chi_l * d * d * chi_r + chi_l * d * d * w * chi_r * chi_r
    macs += chi_l * chi_r * (w * d * d) ** 2
    side = round(macs ** (1 / 3))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((side, side)) + 1j * rng.standard_normal((side, side))
    step = expm_krylov(matvec, theta, -0.5j * dt)
    times = []
    for run in (lambda: expm_krylov(matvec, theta, -0.5j * dt), lambda: a @ a):
        run()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        times.append(best)
    return times[0], times[1] * step.matvecs, step.matvecs


def table(L: int, t: float, dt: float, chi: int, threads: str) -> None:
    ours = run_tnkit(L, t, dt, chi)
    try:
        peer = run_tenpy(L, t, dt, chi, one_site_from=ours["two-site state"])
    except ImportError:
        peer = None
    print(
        f"\nBLAS threads: {threads}; tnkit Krylov matvecs per two-site step: {ours['matvecs']:.0f}"
        f"; tnkit's two-site run switched to one-site steps (bonds saturated) for the last "
        f"{ours['switched']} steps"
    )
    print(
        "| method | tnkit s | TeNPy s | speed-up of tnkit | max abs dSz_i "
        "| energy drift tnkit / TeNPy |"
    )
    print("|---|---|---|---|---|---|")
    for method in ("two-site", "one-site"):
        seconds, sz = ours[method]
        if peer is None:
            print(f"| {method} | {seconds:.2f} | n/a | | | |")
            continue
        other, sz_peer = peer[method]
        drift = f"{ours['drift']:.1e} / {peer['drift']:.1e}" if method == "one-site" else ""
        print(
            f"| {method} | {seconds:.2f} | {other:.2f} | {other / seconds:.2f}× | "
            f"{np.max(np.abs(sz - sz_peer)):.1e} | {drift} |"
        )
    tdvp_seconds, sz_tdvp = ours["two-site"]
    # TEBD's cutoff drops a relative weight of 1e-12 per gate: tnkit's rtol = 1e-6 is the same
    # rule, so this pair runs at equal truncation; the errors are against the bond-χ run above
    start = time.perf_counter()
    cut = tn.tdvp(tn.models.heisenberg(L), neel(L), t, dt=dt, max_bond=chi, rtol=1e-6)
    cut_seconds = time.perf_counter() - start
    reference = ours["two-site"][1]
    print(
        "\n| cut 1e-12 of the weight | seconds | largest bond | speed-up of tnkit two-site "
        "| max abs dSz_i to the bond-χ tnkit run |"
    )
    print("|---|---|---|---|---|")
    error = np.max(np.abs(tnkit_sz(cut.state) - reference))
    print(
        f"| tnkit two-site, rtol 1e-6 | {cut_seconds:.2f} | {max(cut.state.bond_dims)} | | "
        f"{error:.1e} |"
    )
    for order in (2, 4):
        try:
            seconds, sz, bond = run_quimb_tebd(L, t, dt, chi, order)
        except ImportError:
            break
        print(
            f"| quimb TEBD, order {order} | {seconds:.2f} | {bond} | "
            f"{seconds / cut_seconds:.2f}× | {np.max(np.abs(sz - reference)):.1e} |"
        )
    seconds, floor, matvecs = local_step(ours["two-site state"], dt)
    print(
        f"\nLocal exponential at the middle bond of the final two-site state: {matvecs} "
        f"matvecs, {seconds * 1e3:.2f} ms against {floor * 1e3:.2f} ms of dgemm for their "
        f"multiply-adds: {seconds / floor:.2f}× the floor"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--L", type=int, default=40)
    parser.add_argument("--t", type=float, default=2.0)
    parser.add_argument("--dt", type=float, default=0.05)
    parser.add_argument("--bond", type=int, default=64)
    parser.add_argument("--blas-threads", default="1", choices=["1", "0", "both"])
    parser.add_argument("--quick", action="store_true", help="L=20, t=1, bond 32")
    args = parser.parse_args(argv)
    L, t, dt, chi = args.L, args.t, args.dt, args.bond
    if args.quick:
        L, t, chi = 20, 1.0, 32
    print(f"Néel quench, S=1/2 Heisenberg, open, L={L}, dt={dt}, t={t} (+{t} one-site), bond {chi}")
    for threads in ["1", "0"] if args.blas_threads == "both" else [args.blas_threads]:
        limit = threadpoolctl.threadpool_limits(1) if threads == "1" else contextlib.nullcontext()
        with limit:
            table(L, t, dt, chi, "1" if threads == "1" else "as found")


if __name__ == "__main__":
    main()
