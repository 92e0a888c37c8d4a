"""Benchmark of OpSum.to_mpo: build time and bonds of structured sums (issue 16, item 6).

Usage: ``python benchmarks/bench_opsum.py [--repeats N]``. Cases: Σ_{i<j} Z_i Z_j at
L = 10, 20, 40 (exact bond 3) and the N = 40 sum of all four-body products
P↓_i P↓_j P↓_k P↓_l, i < j < k < l (91,390 terms, exact bond 5; ITensors issue #555). For
each the table gives the number of terms, the time to add them, the best ``to_mpo`` time
of the repeats (strings, automaton, rank reduction and cores), the automaton's largest bond
before the rank reduction, the bonds after it, and the relative distance to an
independently hand-built MPO of the same operator. Bare times: there is no peer in this
process (ITensor is Julia), so they are not ratios; compare runs on one machine only.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import numpy as np

import tnkit as tn
from tnkit.operators import automaton

Z = np.diag([1.0, -1.0])
DOWN = np.diag([0.0, 1.0])


def counting_mpo(length: int, op: np.ndarray, order: int) -> tn.MPO:
    """Σ over sites i_1 < … < i_order of Π op_i: the channel counts the ops placed."""
    bulk = np.zeros((order + 1, 2, 2, order + 1))
    for a in range(order + 1):
        bulk[a, :, :, a] = np.eye(2)
        if a < order:
            bulk[a, :, :, a + 1] = op
    return tn.MPO([bulk[:1]] + [bulk] * (length - 2) + [bulk[..., -1:]])


def zz_case(length: int) -> tuple[Callable[[], tn.OpSum], Callable[[], tn.MPO]]:
    def terms() -> tn.OpSum:
        ops = tn.OpSum(length, site=[2] * length)
        for i, j in itertools.combinations(range(length), 2):
            ops.add(1.0, Z, i, Z, j)
        return ops

    def reference() -> tn.MPO:  # (M² − L)/2 with M = Σ Z
        total = counting_mpo(length, Z, 1)
        return 0.5 * (total @ total) - 0.5 * length * tn.MPO.identity([2] * length)

    return terms, reference


def four_body_case(length: int) -> tuple[Callable[[], tn.OpSum], Callable[[], tn.MPO]]:
    def terms() -> tn.OpSum:
        ops = tn.OpSum(length)
        for i, j, k, m in itertools.combinations(range(length), 4):
            ops.add(1.0, DOWN, i, DOWN, j, DOWN, k, DOWN, m)
        return ops

    return terms, lambda: counting_mpo(length, DOWN, 4)


CASES = {
    "Σ Z_i Z_j, L = 10": zz_case(10),
    "Σ Z_i Z_j, L = 20": zz_case(20),
    "Σ Z_i Z_j, L = 40": zz_case(40),
    "Σ P↓P↓P↓P↓, N = 40": four_body_case(40),
}


def best_of(repeats: int, build: Callable[[], tn.MPO]) -> tuple[float, tn.MPO]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = build()
        best = min(best, time.perf_counter() - start)
    return best, result


def bonds_text(bonds: tuple[int, ...]) -> str:
    inner = sorted(set(bonds[3:-3] or bonds))
    return f"{bonds[:3]}…{bonds[-3:]}, inside {inner}" if len(bonds) > 8 else str(bonds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| case | terms | add s | to_mpo s | automaton max | bonds | max bond | rel. error |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (terms, reference) in CASES.items():
        start = time.perf_counter()
        ops = terms()
        added = time.perf_counter() - start
        seconds, mpo = best_of(args.repeats, ops.to_mpo)
        raw = max(automaton(ops._strings()[0], ops.L).bond_dims)
        want = reference()
        error = tn.distance(mpo, want) / want.norm()
        print(
            f"| {name} | {len(ops)} | {added:.2f} | {seconds:.2f} | {raw} | "
            f"{bonds_text(mpo.bond_dims)} | {max(mpo.bond_dims)} | {error:.1e} |"
        )


if __name__ == "__main__":
    main()
