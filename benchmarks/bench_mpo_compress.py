"""Benchmark of MPO compression against quimb: H^n of the Heisenberg chain, built by repeated
multiplication with H and compression after each product.

Usage: ``python benchmarks/bench_mpo_compress.py [--quick] [--repeats N] [--blas-threads N]``.
Full size: L = 100, n = 1..4 (``--quick``: L = 40, n = 1..3). For every tnkit compression
method (``svd``, ``rescaled``, ``deparallelise``, ``delinearise`` and the relaxed
``delinearise`` with ``tol=1e-11``) and for quimb's ``MPO_ham_heis`` with ``H.apply(P)`` (the
exact MPO-MPO product) and ``P.compress(cutoff=…, cutoff_mode=…)`` at several tight cutoffs,
the whole build H → H² → … → H^n is timed (best of the repeats, interleaved, after a warm-up
on a small twin so that Numba compilation stays out). The table gives the centre bond after
each n (exact: 5, 9, 16, 32), the largest bond of H^n and the error of H^n, measured
independently of either library's bookkeeping: H^n and n successive exact applications of H
(each followed by tnkit's exact ``compress()``) act on a fixed random MPS, and the relative
distance of the two results is taken with ``tn.distance`` (no cancellation). The speed-up is
quimb time / tnkit time (> 1: tnkit is faster) against the fastest quimb variant whose bonds
equal the exact ones at every n (or the fastest quimb variant if none does; the table says
which).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import harness
import numpy as np
import peers
from harness import GroupResult, Row, interleaved_best, ratio

import tnkit as tn

SIZES = {"smoke": (10, 2), "quick": (40, 3), "full": (100, 4)}  # (L, n_max)
EXACT_CENTRE = (5, 9, 16, 32)  # centre bond of H^n at n = 1, 2, 3, 4
LARGE_ERROR = 1e-10  # a note is printed above this relative error
TNKIT_METHODS: dict[str, dict[str, Any]] = {
    "svd": {"method": "svd"},
    "rescaled": {"method": "rescaled"},
    "deparallelise": {"method": "deparallelise"},
    "delinearise": {"method": "delinearise"},
    "delinearise tol=1e-11": {"method": "delinearise", "tol": 1e-11},
}
QUIMB_VARIANTS: dict[str, dict[str, Any]] = {
    "default (cutoff 1e-10, rsum2)": {},
    "cutoff 1e-16, rel": {"cutoff": 1e-16, "cutoff_mode": "rel"},
    "cutoff 1e-14, rel": {"cutoff": 1e-14, "cutoff_mode": "rel"},
    "cutoff 1e-16, rsum2": {"cutoff": 1e-16, "cutoff_mode": "rsum2"},
    "cutoff 1e-14, rsum2": {"cutoff": 1e-14, "cutoff_mode": "rsum2"},
}


# ----------------------------------------------------------------------------- quimb


def to_tnkit_mpo(q: Any) -> tn.MPO:
    """tnkit MPO (cores ``(Dl, d_out, d_in, Dr)``, boundary bonds 1) of a quimb MPO: every
    tensor is transposed by its index names (left bond, upper = out = row of ``to_dense``,
    lower = in, right bond), whatever order quimb keeps them in."""
    cores = []
    for i in range(q.L):
        t = q[q.site_tag(i)]
        left = [q.bond(i - 1, i)] if i > 0 else []
        right = [q.bond(i, i + 1)] if i < q.L - 1 else []
        a = np.asarray(t.transpose(*left, q.upper_ind(i), q.lower_ind(i), *right).data)
        if i == 0:
            a = a[None]
        if i == q.L - 1:
            a = a[..., None]
        cores.append(a)
    return tn.MPO(cores)


def check_quimb(qtn: Any) -> None:
    """On L = 6, densely: MPO_ham_heis equals tn.models.heisenberg, the converter keeps a
    non-symmetric MPO, and ``A.apply(B)`` is the product A·B (not Bᵀ·A or the like)."""
    ours = tn.models.heisenberg(6).to_matrix()
    theirs = np.asarray(qtn.MPO_ham_heis(6, j=1.0, bz=0.0, cyclic=False).to_dense())
    if not np.allclose(ours, theirs, atol=1e-14):
        raise SystemExit("tn.models.heisenberg differs from quimb's MPO_ham_heis")
    a, b = qtn.MPO_rand(6, 3, seed=1), qtn.MPO_rand(6, 2, seed=2)
    dense_a, dense_b = np.asarray(a.to_dense()), np.asarray(b.to_dense())
    if not np.allclose(to_tnkit_mpo(a).to_matrix(), dense_a, atol=1e-13):
        raise SystemExit("to_tnkit_mpo does not reproduce quimb's dense matrix")
    if not np.allclose(to_tnkit_mpo(a.apply(b)).to_matrix(), dense_a @ dense_b, atol=1e-12):
        raise SystemExit("quimb's A.apply(B) is not the product A·B")


# ----------------------------------------------------------------------------- builds


@dataclass
class Build:
    """The result of one H^n build: the operator and the bond profile after each n."""

    operator: Any
    bonds: list[tuple[int, ...]] = field(default_factory=list)
    report: Any = None


def tnkit_build(h: tn.MPO, n_max: int, opts: dict[str, Any]) -> Build:
    p, bonds = None, []
    for _ in range(n_max):
        p = (h if p is None else h @ p).compress(**opts)
        bonds.append(tuple(p.bond_dims))
    return Build(p, bonds, p.report)


def quimb_build(q: Any, n_max: int, opts: dict[str, Any]) -> Build:
    p, bonds = None, []
    for _ in range(n_max):
        p = q.copy() if p is None else q.apply(p)  # apply: the exact product, sites contracted
        p.compress(**opts)  # in place: canonical sweep, then a truncating SVD sweep
        bonds.append(tuple(p.bond_sizes()))
    return Build(p, bonds)


def build_jobs(L: int, n_max: int, qtn: Any) -> dict[tuple[str, str], Callable[[], Build]]:
    h = tn.models.heisenberg(L)
    jobs: dict[tuple[str, str], Callable[[], Build]] = {}
    for name, opts in TNKIT_METHODS.items():
        jobs["tnkit", name] = lambda o=opts: tnkit_build(h, n_max, o)
    if qtn is not None:
        q = qtn.MPO_ham_heis(L, j=1.0, bz=0.0, cyclic=False)
        for name, opts in QUIMB_VARIANTS.items():
            jobs["quimb", name] = lambda o=opts: quimb_build(q, n_max, o)
    return jobs


# ----------------------------------------------------------------------------- run


@dataclass
class Result:
    library: str
    method: str
    time_s: float = math.inf
    bonds: list[tuple[int, ...]] = field(default_factory=list)
    rel_error: float = math.nan
    bound: float | None = None

    def centre(self, L: int) -> list[int]:
        return [b[L // 2 - 1] for b in self.bonds]


def reference(L: int, n_max: int) -> tuple[tn.MPS, tn.MPS, float]:
    """The probe state t and H^n·t by n exact applications (each compressed exactly)."""
    h, t = tn.models.heisenberg(L), tn.MPS.random([2] * L, 4, seed=0)
    y = t
    for _ in range(n_max):
        y = (h @ y).compress()
    return t, y, y.norm()


def run(L: int, n_max: int, repeats: int, budget: float) -> list[Result]:
    qtn = peers.load("quimb")
    if qtn is not None:
        check_quimb(qtn)
    # warm-up on a small twin: imports, Numba compilation (quimb's per cutoff mode), caches
    for job in build_jobs(8, n_max, qtn).values():
        job()
    jobs = build_jobs(L, n_max, qtn)

    def log(key: tuple[str, str], elapsed: float) -> None:
        print(f"  {key[0]:<6} {key[1]:<30} {elapsed:8.3f} s", file=sys.stderr, flush=True)

    best, builds = interleaved_best(jobs, repeats, budget, log=log)
    results = {key: Result(*key, time_s=best[key]) for key in jobs}
    t, y_ref, ref_norm = reference(L, n_max)
    for key, build in builds.items():
        op = build.operator if key[0] == "tnkit" else to_tnkit_mpo(build.operator)
        result = results[key]
        result.bonds = build.bonds
        result.rel_error = tn.distance(op @ t, y_ref) / ref_norm
        if build.report is not None:
            result.bound = build.report.rel_error_bound
    return list(results.values())


def fastest_peer(results: list[Result]) -> tuple[Result | None, bool]:
    """The fastest quimb variant at the exact bonds (True), else the fastest one (False)."""
    exact = next(r for r in results if r.method == "svd").bonds  # only numerical zeros dropped
    peer_results = [r for r in results if r.library == "quimb"]
    at_exact = [p for p in peer_results if p.bonds == exact]
    best = min(at_exact or peer_results, key=lambda p: p.time_s) if peer_results else None
    return best, bool(at_exact)


def rows(mode: str, repeats: int | None = None, budget: float | None = None) -> GroupResult:
    """Every tnkit method and quimb variant at the ``mode`` size, as rows with speed-ups."""
    L, n_max = SIZES[mode]
    repeats = repeats or (1 if mode == "smoke" else 5 if mode == "full" else 3)
    results = run(L, n_max, repeats, 60.0 if budget is None else budget)
    best, at_exact = fastest_peer(results)
    key = "vs fastest quimb at exact bonds" if at_exact else "vs fastest quimb"
    out = []
    for r in results:
        ratios = {key: ratio(best.time_s, r.time_s)} if best and r.library == "tnkit" else {}
        extra = {"centre_bonds": r.centre(L), "bonds": [list(b) for b in r.bonds]}
        note = f"centre bonds {', '.join(map(str, r.centre(L)))}; max {max(r.bonds[-1])}"
        out.append(
            Row(
                "mpo_compress",
                f"H^n L={L} n≤{n_max}",
                r.library,
                r.method,
                r.time_s,
                r.rel_error,
                r.bound,
                ratios,
                note,
                extra,
            )
        )
    notes = notes_for(results, L, n_max)
    if best is None:
        notes.append("quimb is not installed: its rows are skipped")
    else:
        notes.append(f"speed-ups against quimb {best.method}")
    description = (
        "H^n of the Heisenberg MPO built by products and a compression after each, per tnkit "
        "method vs quimb's apply + compress; error ‖H^n·t − (H·)^n t‖ / ‖(H·)^n t‖ for a "
        "random MPS t; speed-up = quimb time / tnkit time"
    )
    config = {"L": L, "n_max": n_max, "repeats": repeats}
    return GroupResult("mpo_compress", description, out, notes, config)


# ----------------------------------------------------------------------------- report


def table(results: list[Result], L: int, n_max: int, threads: str) -> tuple[str, list[str]]:
    ours = [r for r in results if r.library == "tnkit"]
    peer_results = [r for r in results if r.library == "quimb"]
    best, at_exact = fastest_peer(results)
    versus = (
        f"the fastest quimb variant at the exact bonds ({best.method})"
        if at_exact and best
        else f"the fastest quimb variant, none at the exact bonds ({best.method})"
        if best
        else "no quimb"
    )
    ns = ", ".join(str(n) for n in range(1, n_max + 1))
    lines = [
        f"H^n of the Heisenberg MPO, L = {L}, n = 1..{n_max}, compressed after every product; "
        f"BLAS threads: {threads}; best of the repeats; error: ‖H^n·t − (H·)^n t‖ / ‖(H·)^n t‖ "
        f"for a random MPS t (bond 4, seed 0); speed-up = quimb time / tnkit time against "
        f"{versus}.",
        "",
        f"| library | method | total time (s) | centre bond, n = {ns} | max bond | rel. error "
        "| reported bound (last step) | speed-up |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in ours + peer_results:
        bound = f"{r.bound:.1e}" if r.bound is not None else ""
        ratio = f"{best.time_s / r.time_s:.2f}×" if best and r.library == "tnkit" else ""
        lines.append(
            f"| {r.library} | {r.method} | {r.time_s:.3f} | "
            f"{', '.join(map(str, r.centre(L)))} | {max(r.bonds[-1])} | {r.rel_error:.1e} | "
            f"{bound} | {ratio} |"
        )
    return "\n".join(lines), notes_for(results, L, n_max)


def notes_for(results: list[Result], L: int, n_max: int) -> list[str]:
    """Bond profiles that differ from the exact one, large errors, errors above the bound."""
    exact = next(r for r in results if r.method == "svd").bonds
    out = []
    expected = list(EXACT_CENTRE[:n_max])
    svd = next(r for r in results if r.method == "svd")
    if svd.centre(L) != expected:
        out.append(f"tnkit svd centre bonds {svd.centre(L)} differ from the expected {expected}")
    for r in results:
        name = f"{r.library} {r.method}"
        over = [n + 1 for n, (b, e) in enumerate(zip(r.bonds, exact, strict=True)) if b > e]
        under = [n + 1 for n, (b, e) in enumerate(zip(r.bonds, exact, strict=True)) if b < e]
        differs = [n + 1 for n, (b, e) in enumerate(zip(r.bonds, exact, strict=True)) if b != e]
        if over:
            out.append(
                f"{name}: bonds above the exact ones at n = {over} (H^{n_max}: max "
                f"{max(r.bonds[-1])} vs {max(exact[-1])}, "
                f"{sum(r.bonds[-1])} vs {sum(exact[-1])} summed over the bonds)"
            )
        if under:
            out.append(f"{name}: bonds below the exact ones at n = {under} (truncated)")
        if differs and not over and not under:
            out.append(f"{name}: bond profile differs from the exact one at n = {differs}")
        if not r.rel_error <= LARGE_ERROR:
            out.append(f"{name}: large error {r.rel_error:.1e}")
        if r.bound is not None and r.rel_error > 10 * max(r.bound, 1e-14) * n_max:
            out.append(
                f"{name}: error {r.rel_error:.1e} well above the reported bound {r.bound:.1e} "
                "(the bound covers the last compression only)"
            )
    return out


def main() -> None:
    args = harness.parse_script_args(__doc__, quick="L = 40, n up to 3", repeats=5, budget=60.0)
    L, n_max = SIZES[args.mode]
    with harness.blas_limit(args.threads):
        results = run(L, n_max, args.repeats, args.budget)
    print(harness.script_header("quimb"))
    text, note_lines = table(results, L, n_max, args.threads_label)
    print(text)
    for line in note_lines:
        print(f"\nNote: {line}")


if __name__ == "__main__":
    main()
