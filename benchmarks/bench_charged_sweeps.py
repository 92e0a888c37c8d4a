"""Core operations on charged trains by charge block against the same operations on the
plain (dense) trains: compress, canonicalize, apply, and the size of the saved files.

Usage: ``python benchmarks/bench_charged_sweeps.py [--quick] [--repeats N] [--blas-threads N]``.

Full size: the Heisenberg chain (Sz = 0, L = 40) and the Hubbard chain ((N, Sz) at half
filling, L = 24), random states of bond 256 in the sector; a bond scan 16…128 of the
Heisenberg compression (where the per-block overhead meets the dense sweep); ``apply`` of
the Heisenberg MPO at bond 128; and ``tn.save`` of a Hubbard state of bond 64 and of its MPO.
``--quick`` shrinks every size for a smoke run. Times are the best of the repeats, the
charged and the plain call interleaved; the speed-up is plain time / charged time (> 1: the
block path is faster). For every charged result the table says whether it conserves its
charges exactly and how far it is from the plain result (rounding; ~1e-7 where the plain
compression took Gram rounding, whose cut subspace is accurate to about that).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
from harness import blas_limit

import tnkit as tn
from tnkit.sectors import channel_charges, site_flows

SIZES = {
    "full": {
        "heisenberg": (40, 256),
        "hubbard": (24, 256),
        "scan": (40, (16, 32, 64, 128)),
        "apply": (40, 128),
        "files": (20, 64),
    },
    "quick": {
        "heisenberg": (12, 24),
        "hubbard": (8, 24),
        "scan": (12, (8, 16)),
        "apply": (10, 16),
        "files": (8, 16),
    },
}


def heisenberg_state(L: int, bond: int) -> tn.MPS:
    return tn.MPS.random([2] * L, bond, conserve="Sz", sector=(0,), seed=0)


def hubbard_state(L: int, bond: int) -> tn.MPS:
    return tn.MPS.random(
        [4] * L, bond, site="electron", conserve=("N", "Sz"), sector=(L, 0), seed=0
    )


def dense_twin(train):
    """The same train with dense cores and no charges, built without making ``train`` build
    (and keep) its dense cores: the charged side is timed as a train at rest, holding
    only its charge blocks."""
    held = train._held
    cores = held.cores() if held is not None and train._cores is None else train.cores
    return type(train)([np.array(c) for c in cores])


def held_sizes(train) -> tuple[int, int, float, float]:
    """Entries ``train`` holds (its charge blocks), entries of its dense cores, and the
    seconds to build the dense cores from the blocks and to pack them again (best of 3)."""
    from tnkit.held_blocks import HeldBlocks

    held = train._held
    flows = site_flows(train.charges, operator=isinstance(train, tn.MPO))
    unpack = pack = np.inf
    for _ in range(3):
        start = time.perf_counter()
        cores = held.cores()
        unpack = min(unpack, time.perf_counter() - start)
        start = time.perf_counter()
        HeldBlocks.pack(cores, flows, train.charges[0])
        pack = min(pack, time.perf_counter() - start)
    return sum(v.size for v in held.values), train.num_params, unpack, pack


def conserves(train) -> bool:
    """Whether every core entry outside the charge blocks is exactly zero."""
    cores = [np.asarray(c) for c in train.cores]
    flows = site_flows(train.charges, operator=isinstance(train, tn.MPO))
    return channel_charges(cores, flows, train.charges[0]) is not None


def timed(charged: Callable, plain: Callable, repeats: int) -> tuple[float, float, object, object]:
    """Best times of the two calls, interleaved, and their last results."""
    best = [np.inf, np.inf]
    results = [None, None]
    for _ in range(repeats):
        for i, call in enumerate((charged, plain)):
            start = time.perf_counter()
            results[i] = call()
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0], best[1], results[0], results[1]


def row(name: str, operation: str, charged: Callable, plain: Callable, repeats: int) -> str:
    t_charged, t_plain, out, reference = timed(charged, plain, repeats)
    apart = float(tn.distance(out.to_plain(), reference)) / float(reference.norm())
    method = out.report.method if out.report is not None else "—"
    return (
        f"| {name} | {operation} | {t_charged:.3f} | {t_plain:.3f} | {t_plain / t_charged:.2f}× "
        f"| {method} | {'yes' if conserves(out) else 'NO'} | {apart:.1e} |"
    )


def file_sizes(train) -> tuple[int, int]:
    """Bytes of the charged train's file (blocks) and of its plain twin's (dense)."""
    with tempfile.TemporaryDirectory() as folder:
        blocks, dense = os.path.join(folder, "b.safetensors"), os.path.join(folder, "d.safetensors")
        tn.save(blocks, train)
        tn.save(dense, dense_twin(train))
        return os.path.getsize(blocks), os.path.getsize(dense)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, default=1, help="0: leave as found")
    args = parser.parse_args()
    size = SIZES["quick" if args.quick else "full"]
    repeats = args.repeats
    rows = []
    with blas_limit(args.blas_threads or None):
        for model, build in (("heisenberg", heisenberg_state), ("hubbard", hubbard_state)):
            L, bond = size[model]
            psi = build(L, bond)
            plain = dense_twin(psi)
            name = f"{model} L={L} bond {bond}"
            half = bond // 2
            rows.append(
                row(
                    name,
                    f"compress(max_bond={half})",
                    lambda p=psi, h=half: p.compress(max_bond=h),
                    lambda p=plain, h=half: p.compress(max_bond=h),
                    repeats,
                )
            )
            rows.append(row(name, "compress()", psi.compress, plain.compress, repeats))
            rows.append(
                row(
                    name,
                    "canonicalize(0)",
                    lambda p=psi: p.canonicalize(0),
                    lambda p=plain: p.canonicalize(0),
                    repeats,
                )
            )
        L, bonds = size["scan"]
        for bond in bonds:
            psi = heisenberg_state(L, bond)
            plain = dense_twin(psi)
            rows.append(
                row(
                    f"heisenberg L={L} bond {bond}",
                    f"compress(max_bond={bond // 2})",
                    lambda p=psi, b=bond: p.compress(max_bond=b // 2),
                    lambda p=plain, b=bond: p.compress(max_bond=b // 2),
                    repeats,
                )
            )
        L, bond = size["apply"]
        psi, H = heisenberg_state(L, bond), tn.models.heisenberg(L, conserve="Sz")
        plain_psi, plain_H = dense_twin(psi), dense_twin(H)
        for method in ("exact", "density"):
            rows.append(
                row(
                    f"heisenberg L={L} bond {bond}",
                    f'apply(H, ψ, "{method}")',
                    lambda m=method: tn.apply(H, psi, method=m, max_bond=bond),
                    lambda m=method: tn.apply(plain_H, plain_psi, method=m, max_bond=bond),
                    repeats,
                )
            )
    threads = args.blas_threads or "as found"
    print(f"tnkit {tn.__version__}; BLAS threads: {threads}; best of {repeats}, interleaved\n")
    print(
        "| train | operation | by charge (s) | plain (s) | speed-up | method | conserves "
        "| ‖charged − plain‖ / ‖plain‖ |"
    )
    print("|---|---|---:|---:|---:|---|---|---:|")
    print("\n".join(rows))
    print(
        "\n| charged train at rest | entries held | dense entries | ratio | unpack (s) | pack (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for model, build in (("heisenberg", heisenberg_state), ("hubbard", hubbard_state)):
        L, bond = size[model]
        held, dense, unpack, pack = held_sizes(build(L, bond))
        print(
            f"| {model} L={L} bond {bond} | {held} | {dense} | {dense / held:.1f}× "
            f"| {unpack:.3f} | {pack:.3f} |"
        )
    L, bond = size["files"]
    state = hubbard_state(L, bond)
    operator = tn.models.hubbard(L, U=4.0, conserve=("N", "Sz"))
    print("\n| saved train | blocks (bytes) | dense (bytes) | ratio |")
    print("|---|---:|---:|---:|")
    for name, train in (
        (f"Hubbard state L={L} bond {bond}", state),
        (f"Hubbard MPO L={L}", operator),
    ):
        blocks, dense = file_sizes(train)
        print(f"| {name} | {blocks} | {dense} | {dense / blocks:.1f}× |")


if __name__ == "__main__":
    main()
