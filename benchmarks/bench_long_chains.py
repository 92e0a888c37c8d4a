"""Long chains with small bonds: tnkit's Numba kernels against its array-API twins, a bare NumPy
loop and quimb; also the bond size where the kernels stop winning (``KERNEL_MAX_BOND``).

Standalone: ``python benchmarks/bench_long_chains.py [--quick] [--crossover]``. Every time is
the best of N after a warm-up call, so Numba compilation is excluded; it is reported once, on
its own line (cold compile in a subprocess with an empty cache, and the first call here).
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

import numpy as np

import tnkit as tn
from tnkit import _kernels

try:
    import quimb.tensor as qtn
except ImportError:  # quimb is optional: its rows are skipped
    qtn = None


def race(impls: dict[str, tuple[Callable[[], object], int]]) -> dict[str, float]:
    """Best time of each implementation, given as ``name: (function, repeats)``. After one
    warm-up call each (compilation, caches, packed cores), rounds run every implementation
    once in turn, so load from other processes hits them alike."""
    best = {}
    for name, (fn, _) in impls.items():
        fn()
        best[name] = math.inf
    for round_ in range(max(n for _, n in impls.values())):
        for name, (fn, n) in impls.items():
            if round_ < n:
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


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


def quimb_mps(m: tn.MPS):
    cores = [np.asarray(c) for c in m.cores]
    return qtn.MatrixProductState([cores[0][0], *cores[1:-1], cores[-1][..., 0]], shape="lpr")


def quimb_mpo(o: tn.MPO):
    cores = [np.asarray(c) for c in o.cores]
    return qtn.MatrixProductOperator([cores[0][0], *cores[1:-1], cores[-1][..., 0]], shape="ludr")


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


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, str, str]] = []

    def add(self, case: str, impl: str, seconds: float, quimb: float | None, loop: float | None):
        vs_quimb = f"{quimb / seconds:.1f}×" if quimb else ""
        vs_loop = f"{seconds / loop:.2f}" if loop else ""
        self.rows.append((case, impl, seconds, vs_quimb, vs_loop))
        print(f"  {case:<34} {impl:<28} {seconds * 1e3:10.3f} ms", file=sys.stderr, flush=True)

    def add_case(self, case: str, times: dict[str, float]) -> None:
        quimb = next((t for name, t in times.items() if name.startswith("quimb")), None)
        loop = times.get("numpy loop")
        for name, seconds in times.items():
            self.add(case, name, seconds, quimb, loop)

    def markdown(self) -> str:
        lines = [
            "| case | implementation | time | quimb/this | this/numpy loop |",
            "|---|---|---:|---:|---:|",
        ]
        for case, impl, seconds, vs_quimb, vs_loop in self.rows:
            lines.append(f"| {case} | {impl} | {seconds * 1e3:.3f} ms | {vs_quimb} | {vs_loop} |")
        return "\n".join(lines)


# ---------------------------------------------------------------------- workloads


def overlap_long(table: Table, repeats: int, length: int, bond: int, dtype: str) -> None:
    a = unit_mps(length, bond, seed=0, dtype=dtype)
    b = perturbed(a, 0.02, seed=1)
    few = max(3, repeats // 4)
    impls = {
        "tnkit (cores packed once)": (lambda: tn.inner(a, b), repeats),
        "tnkit (packed every call)": (lambda: tn.inner(fresh_pack(a), fresh_pack(b)), repeats),
        "tnkit array-API path": (forced_twin(lambda: tn.inner(a, b)), few),
        "numpy loop": (lambda: bare_overlap(a.cores, b.cores), repeats),
    }
    if qtn is not None:
        qa, qb = quimb_mps(a), quimb_mps(b)
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
        "tnkit array-API path": (forced_twin(lambda: tn.expectation(m, o)), max(3, repeats // 4)),
    }
    if qtn is not None:
        qm, qo = quimb_mps(m), quimb_mpo(o)
        value = qtn.expec_TN_1D(qm.H, qo, qm)
        assert np.isclose(complex(value), complex(tn.expectation(m, o)), rtol=1e-6)
        impls["quimb expec_TN_1D"] = (lambda: qtn.expec_TN_1D(qm.H, qo, qm), 2)
    table.add_case(f"expectation L={length} χ={bond} MPO bond {mpo_bond}", race(impls))


def norms_long(table: Table, repeats: int, length: int, bond: int) -> None:
    m = tn.MPS.random([2] * length, bond, seed=0)  # centre None: norm needs a sweep
    for name, fn in (("norm", m.norm), ("log_norm", m.log_norm)):
        impls = {
            "tnkit (QR kernel)": (fn, repeats),
            "tnkit array-API path": (forced_twin(fn), 3),
        }
        if qtn is not None and name == "norm":
            impls["quimb .norm()"] = (quimb_mps(m).norm, 3)
        table.add_case(f"{name} L={length} χ={bond} (no centre)", race(impls))


NOTES: list[str] = []


def canonicalize_long(table: Table, repeats: int, length: int, bond: int) -> None:
    m = tn.MPS.random([2] * length, bond, seed=0)  # centre None: both sweeps run
    impls = {
        "tnkit (QR kernel)": (lambda: m.canonicalize(0), repeats),
        "tnkit array-API path": (forced_twin(lambda: m.canonicalize(0)), max(3, repeats // 4)),
    }
    if qtn is not None:
        qm = quimb_mps(m)
        impls["quimb right_canonize()"] = (qm.right_canonize, 3)  # in place, a full QR sweep
    table.add_case(f"canonicalize(0) L={length} χ={bond} (no centre)", race(impls))


def sample_long(table: Table, repeats: int, length: int, bond: int, n: int) -> None:
    m = unit_mps(length, bond, seed=0).canonicalize(0)  # norm 1: quimb's marginals stay finite
    impls = {
        "tnkit (sampling kernel)": (lambda: m.sample(n, seed=1), repeats),
        "tnkit array-API path": (forced_twin(lambda: m.sample(n, seed=1)), 3),
    }
    times = race(impls)
    if qtn is not None:  # one sample at a time: time a few and scale to n (stated in the row)
        qm, few = quimb_mps(m), 10
        start = time.perf_counter()
        try:
            with np.errstate(invalid="ignore"):
                for _ in qm.sample(few, seed=1):
                    pass
            times[f"quimb .sample ({few}, ×{n // few})"] = (time.perf_counter() - start) * n / few
        except ValueError as error:  # its projected state is never renormalised: it underflows
            NOTES.append(
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no cold compile")
    parser.add_argument("--crossover", action="store_true", help="only the crossover table")
    args = parser.parse_args()
    repeats = 5 if args.quick else 20
    if not args.crossover:
        print(compile_times(cold=not args.quick))
        table = Table()
        overlap_long(table, repeats, 2000, 4, "float64")
        overlap_long(table, repeats, 2000, 4, "complex128")
        overlap_wide(table, max(3, repeats // 4), 64, 256)
        expectation_long(table, repeats, 2000, 4, 3)
        norms_long(table, repeats, 2000, 4)
        canonicalize_long(table, repeats, 2000, 4)
        sample_long(table, max(3, repeats // 4), 2000, 4, 1000)
        sample_long(table, max(3, repeats // 4), 500, 4, 1000)  # quimb still runs here
        print()
        print(table.markdown())
        for note in NOTES:
            print(f"\nNote: {note}")
    if args.crossover or not args.quick:
        bonds = [4, 8, 16, 24, 32, 48, 64, 96, 128, 192]
        print()
        print(f"Kernel time / array-API time (KERNEL_MAX_BOND = {_kernels.KERNEL_MAX_BOND}):")
        print(crossover(bonds, 256 if not args.quick else 64, 5))


if __name__ == "__main__":
    main()
