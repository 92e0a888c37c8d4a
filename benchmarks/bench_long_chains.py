"""Long chains with small bonds: tnkit's Numba kernels against its array-API twins, a bare NumPy
loop and quimb; also the bond size where the kernels stop winning (``KERNEL_MAX_BOND``).

Standalone: ``python benchmarks/bench_long_chains.py [--quick] [--crossover]``; ``rows(mode)``
is what ``benchmarks/run.py`` calls. Full size: L = 2000, χ = 4 (sampling also at L = 500, where
quimb still runs); ``--quick``: L = 500 (sampling at L = 200), 5 repeats. Every time is the best
of N after a warm-up call, so Numba compilation is excluded; the standalone script reports it
once, on its own line (cold compile in a subprocess with an empty cache, and the first call).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import peers
from harness import GroupResult, Row, interleaved_best, ratio

import tnkit as tn
from tnkit import _kernels

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"length": 40, "sample_length": 40, "wide": (8, 16), "samples": 20, "repeats": 1},
    "quick": {"length": 500, "sample_length": 200, "wide": (32, 128), "samples": 500, "repeats": 5},
    "full": {
        "length": 2000,
        "sample_length": 500,
        "wide": (64, 256),
        "samples": 1000,
        "repeats": 20,
    },
}


def race(impls: dict[str, tuple[Callable[[], object], int]]) -> dict[str, float]:
    """Best time of each implementation, given as ``name: (function, repeats)``, after one
    warm-up call each (compilation, caches, packed cores), interleaved."""
    functions = {name: fn for name, (fn, _) in impls.items()}
    counts = {name: n for name, (_, n) in impls.items()}
    return interleaved_best(functions, counts, warm_up=True)[0]


def qtn() -> Any:
    """quimb.tensor, or None when it is not installed (its rows are then skipped)."""
    return peers.load("quimb")


# ---------------------------------------------------------------------- inputs


def unit_mps(length: int, bond: int, seed: int, dtype: str = "float64") -> tn.MPS:
    """A random left-canonical MPS of norm 1: overlaps stay O(1) over thousands of sites, so
    no path runs into subnormal numbers."""
    m = tn.MPS.random([2] * length, bond, seed=seed, dtype=dtype).canonicalize(length - 1)
    cores = list(m.cores)
    cores[-1] = cores[-1] / np.linalg.norm(cores[-1])
    return tn.MPS(cores)


def perturbed(m: tn.MPS, size: float, seed: int) -> tn.MPS:
    """``m`` with every core changed by relative noise of ``size`` (⟨m, result⟩ stays O(1))."""
    rng = np.random.default_rng(seed)
    cores = []
    for c in m.cores:
        noise = rng.standard_normal(c.shape).astype(c.dtype)
        cores.append(c + size * noise * np.linalg.norm(c) / math.sqrt(c.size))
    return tn.MPS(cores)


def near_identity_mpo(length: int, bond: int, seed: int, dtype: str = "float64") -> tn.MPO:
    """An MPO of bond ``bond``: the identity plus a small random part (⟨m|o|m⟩ = O(1))."""
    rng = np.random.default_rng(seed)
    cores = []
    for k in range(length):
        left = 1 if k == 0 else bond
        right = 1 if k == length - 1 else bond
        core = 0.05 / bond * rng.standard_normal((left, 2, 2, right))
        core[0, :, :, 0] += np.eye(2)
        cores.append(core.astype(dtype))
    return tn.MPO(cores)


def bare_overlap(a: list, b: list) -> complex:
    """The NumPy transfer-matrix loop: two matrix products per site, nothing else."""
    env = np.ones((1, 1), dtype=a[0].dtype)
    for x, y in zip(a, b, strict=True):
        left, phys, right = y.shape
        half = (env @ y.reshape(left, phys * right)).reshape(-1, right)
        env = x.reshape(-1, x.shape[2]).conj().T @ half
    return env[0, 0]


def fresh_pack(t: tn.MPS) -> tn.MPS:
    """Drop ``t``'s packed cores, so the next kernel call packs again (per-call packing)."""
    object.__setattr__(t, "_packed", None)
    return t


def forced_twin(fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        with _kernels.disabled():
            return fn()

    return run


# ---------------------------------------------------------------------- report


def _few(repeats: int) -> int:
    """Repeats for the slow paths (array-API twins, quimb): a quarter, at least 3 (or 1)."""
    return 1 if repeats == 1 else max(3, repeats // 4)


def _library(impl: str) -> str:
    return "numpy" if impl == "numpy loop" else impl.split()[0]


class Table:
    """Rows of the long-chain workloads, with speed-ups against quimb and the array-API twin
    and the ratio to the bare NumPy loop; ``notes`` collects what could not be measured."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.notes: list[str] = []

    def add_case(self, case: str, times: dict[str, float]) -> None:
        quimb = next((t for name, t in times.items() if name.startswith("quimb")), None)
        twin = times.get("tnkit array-API path")
        loop = times.get("numpy loop")
        for name, seconds in times.items():
            ratios = {}
            if name.startswith("tnkit"):
                ratios["vs quimb"] = ratio(quimb, seconds)
                if name != "tnkit array-API path":
                    ratios["vs array-API twin"] = ratio(twin, seconds)
                ratios["/ numpy loop (floor)"] = ratio(seconds, loop)
            self.rows.append(Row("long_chains", case, _library(name), name, seconds, ratios=ratios))
            print(f"  {case:<34} {name:<28} {seconds * 1e3:10.3f} ms", file=sys.stderr, flush=True)

    def markdown(self) -> str:
        lines = [
            "| case | implementation | time | quimb/this | this/numpy loop |",
            "|---|---|---:|---:|---:|",
        ]
        for row in self.rows:
            vs_quimb, vs_loop = row.ratios.get("vs quimb"), row.ratios.get("/ numpy loop (floor)")
            lines.append(
                f"| {row.case} | {row.method} | {row.time_s * 1e3:.3f} ms | "
                + (f"{vs_quimb:.1f}×" if vs_quimb else "")
                + " | "
                + (f"{vs_loop:.2f}" if vs_loop else "")
                + " |"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------- workloads


def overlap_long(table: Table, repeats: int, length: int, bond: int, dtype: str) -> None:
    a = unit_mps(length, bond, seed=0, dtype=dtype)
    b = perturbed(a, 0.02, seed=1)
    few = _few(repeats)
    impls = {
        "tnkit (cores packed once)": (lambda: tn.inner(a, b), repeats),
        "tnkit (packed every call)": (lambda: tn.inner(fresh_pack(a), fresh_pack(b)), repeats),
        "tnkit array-API path": (forced_twin(lambda: tn.inner(a, b)), few),
        "numpy loop": (lambda: bare_overlap(a.cores, b.cores), repeats),
    }
    if qtn() is not None:
        qa, qb = peers.quimb_mps(a.cores), peers.quimb_mps(b.cores)
        assert np.isclose(complex(qa.H @ qb), complex(tn.inner(a, b)), rtol=1e-4)
        impls["quimb a.H @ b"] = (lambda: qa.H @ qb, few)
    table.add_case(f"overlap L={length} χ={bond} d=2 {dtype}", race(impls))


def overlap_wide(table: Table, repeats: int, length: int, bond: int) -> None:
    a = tn.MPS.random([2] * length, bond, seed=0)
    b = tn.MPS.random([2] * length, bond, seed=1)
    impls = {
        "tnkit": (lambda: tn.inner(a, b), repeats),
        "numpy loop": (lambda: bare_overlap(a.cores, b.cores), repeats),
    }
    table.add_case(f"overlap L={length} χ={bond} d=2", race(impls))


def expectation_long(table: Table, repeats: int, length: int, bond: int, mpo_bond: int) -> None:
    m = unit_mps(length, bond, seed=0)
    o = near_identity_mpo(length, mpo_bond, seed=2)
    impls = {
        "tnkit": (lambda: tn.expectation(m, o), repeats),
        "tnkit array-API path": (forced_twin(lambda: tn.expectation(m, o)), _few(repeats)),
    }
    if qtn() is not None:
        qm, qo = peers.quimb_mps(m.cores), peers.quimb_mpo(o.cores)
        value = qtn().expec_TN_1D(qm.H, qo, qm)
        assert np.isclose(complex(value), complex(tn.expectation(m, o)), rtol=1e-6)
        impls["quimb expec_TN_1D"] = (lambda: qtn().expec_TN_1D(qm.H, qo, qm), min(2, repeats))
    table.add_case(f"expectation L={length} χ={bond} MPO bond {mpo_bond}", race(impls))


def norms_long(table: Table, repeats: int, length: int, bond: int) -> None:
    m = tn.MPS.random([2] * length, bond, seed=0)  # centre None: norm needs a sweep
    for name, fn in (("norm", m.norm), ("log_norm", m.log_norm)):
        impls = {
            "tnkit (QR kernel)": (fn, repeats),
            "tnkit array-API path": (forced_twin(fn), _few(repeats)),
        }
        if qtn() is not None and name == "norm":
            impls["quimb .norm()"] = (peers.quimb_mps(m.cores).norm, _few(repeats))
        table.add_case(f"{name} L={length} χ={bond} (no centre)", race(impls))


def canonicalize_long(table: Table, repeats: int, length: int, bond: int) -> None:
    m = tn.MPS.random([2] * length, bond, seed=0)  # centre None: both sweeps run
    impls = {
        "tnkit (QR kernel)": (lambda: m.canonicalize(0), repeats),
        "tnkit array-API path": (forced_twin(lambda: m.canonicalize(0)), _few(repeats)),
    }
    if qtn() is not None:
        qm = peers.quimb_mps(m.cores)
        impls["quimb right_canonize()"] = (
            qm.right_canonize,
            _few(repeats),
        )  # in place, a full QR sweep
    table.add_case(f"canonicalize(0) L={length} χ={bond} (no centre)", race(impls))


def sample_long(table: Table, repeats: int, length: int, bond: int, n: int) -> None:
    m = unit_mps(length, bond, seed=0).canonicalize(0)  # norm 1: quimb's marginals stay finite
    impls = {
        "tnkit (sampling kernel)": (lambda: m.sample(n, seed=1), repeats),
        "tnkit array-API path": (forced_twin(lambda: m.sample(n, seed=1)), _few(repeats)),
    }
    times = race(impls)
    if qtn() is not None:  # one sample at a time: time a few and scale to n (stated in the row)
        qm, few = peers.quimb_mps(m.cores), 10
        start = time.perf_counter()
        try:
            with np.errstate(invalid="ignore"):
                for _ in qm.sample(few, seed=1):
                    pass
            times[f"quimb .sample ({few}, ×{n // few})"] = (time.perf_counter() - start) * n / few
        except ValueError as error:  # its projected state is never renormalised: it underflows
            table.notes.append(
                f"quimb .sample at L={length} fails: {error} (the projected state is "
                "not renormalised, so |ψ|² underflows after ~1000 sites at d=2)"
            )
    table.add_case(f"sample {n} L={length} χ={bond} (centre 0)", times)


def crossover(bonds: list[int], length: int, repeats: int) -> str:
    """Kernel time over the array-API twin per bond: where ``KERNEL_MAX_BOND`` comes from.
    Inputs are norm-1 states and a near-identity MPO, so no path meets subnormal numbers."""
    lines = [
        f"| χ (L={length}, d=2) | overlap | expectation (MPO bond 5) | norm | canonicalize(0) "
        "| sample 200 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for bond in bonds:
        ratios = [kernel / twin for kernel, twin in _crossover_times(bond, length, repeats)]
        lines.append(f"| {bond} | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
        print("  crossover", lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def _crossover_times(bond: int, length: int, repeats: int) -> list[tuple[float, float]]:
    """(kernel, twin) times of overlap, expectation (MPO bond 5), norm, canonicalisation and
    sampling at one bond."""
    a = unit_mps(length, bond, seed=0)
    b = perturbed(a, 0.02, seed=1)
    o = near_identity_mpo(length, 5, seed=2)
    c = tn.MPS.random([2] * length, bond, seed=3)  # no centre: the norm sweeps
    pa, pb, po, pc = (_kernels.Packed(t.cores) for t in (a, b, o, c))
    right = b.canonicalize(0)
    uniforms = np.random.default_rng(1).random((length, 200))
    pr = _kernels.Packed(right.cores)
    pairs = (
        (lambda: _kernels.overlap(pa, pb), lambda: tn.inner(a, b)),
        (lambda: _kernels.expectation(pa, po), lambda: tn.expectation(a, o)),
        (lambda: _kernels.qr_norm(pc), c.norm),
        (lambda: _kernels.move_centre(pc, None, 0), lambda: c.canonicalize(0)),
        (lambda: _kernels.sample(pr, uniforms), lambda: right.sample(200, seed=1)),
    )
    times = []
    for kernel, twin in pairs:
        best = race({"kernel": (kernel, repeats), "twin": (forced_twin(twin), repeats)})
        times.append((best["kernel"], best["twin"]))
    return times


# ---------------------------------------------------------------------- compile time

_COLD = """
import time, tnkit as tn
a = tn.MPS.random([2] * 50, 4, seed=0)
o = tn.MPO.random([2] * 50, [2] * 50, 3, seed=1)
for name, fn in (("overlap", lambda: tn.inner(a, a)), ("expectation", lambda: tn.expectation(a, o)),
                 ("norm", a.norm)):
    start = time.perf_counter(); fn(); print(name, time.perf_counter() - start)
"""


def compile_times(cold: bool) -> str:
    """First-call time per kernel (float64): cold (empty cache) and here (the on-disk cache)."""
    parts = []
    if cold:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            out = subprocess.run(
                [sys.executable, "-c", _COLD], env=env, capture_output=True, text=True, check=True
            ).stdout
        parts.append("cold compile " + ", ".join(_fmt(line) for line in out.split("\n") if line))
    out = subprocess.run(
        [sys.executable, "-c", _COLD], capture_output=True, text=True, check=True
    ).stdout
    parts.append(
        "first call with the cache " + ", ".join(_fmt(line) for line in out.split("\n") if line)
    )
    return "Numba, float64 (excluded from the table): " + "; ".join(parts)


def _fmt(line: str) -> str:
    name, seconds = line.split()
    return f"{name} {float(seconds):.2f} s"


def measure(table: Table, size: dict[str, Any], repeats: int) -> None:
    """Every long-chain workload at one size, into ``table``."""
    length, few, samples = size["length"], _few(repeats), size["samples"]
    if repeats == 1:
        few = 1
    overlap_long(table, repeats, length, 4, "float64")
    overlap_long(table, repeats, length, 4, "complex128")
    overlap_wide(table, few, *size["wide"])
    expectation_long(table, repeats, length, 4, 3)
    norms_long(table, repeats, length, 4)
    canonicalize_long(table, repeats, length, 4)
    sample_long(table, few, length, 4, samples)
    if size["sample_length"] != length:
        sample_long(table, few, size["sample_length"], 4, samples)  # quimb still runs here
    if qtn() is None:
        table.notes.append("quimb is not installed: its rows are skipped")


def rows(mode: str, repeats: int | None = None, budget: float | None = None) -> GroupResult:
    """The long-chain workloads at the ``mode`` size (``budget`` is not used: few repeats)."""
    size = SIZES[mode]
    repeats = repeats or size["repeats"]
    table = Table()
    measure(table, size, repeats)
    description = (
        "long chains, small bonds (d = 2, χ = 4): tnkit's Numba kernels against their array-API "
        "twins, a bare NumPy transfer-matrix loop and quimb; speed-up = other time / this time; "
        "floor = this time / NumPy-loop time"
    )
    config = {"repeats": repeats, **size}
    return GroupResult("long_chains", description, table.rows, table.notes, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, no cold compile")
    parser.add_argument("--crossover", action="store_true", help="only the crossover table")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    if not args.crossover:
        print(compile_times(cold=not args.quick))
        table = Table()
        measure(table, SIZES[mode], SIZES[mode]["repeats"])
        print()
        print(table.markdown())
        for note in table.notes:
            print(f"\nNote: {note}")
    if args.crossover or not args.quick:
        bonds = [4, 8, 16, 24, 32, 48, 64, 96, 128, 192]
        print()
        print(f"Kernel time / array-API time (KERNEL_MAX_BOND = {_kernels.KERNEL_MAX_BOND}):")
        print(crossover(bonds, 256 if not args.quick else 64, 5))


if __name__ == "__main__":
    main()
