"""Benchmark of tnkit.torch.MPOLinear against nn.Linear and tltorch's TT-matrix layer.

Usage: ``python benchmarks/bench_torch_linear.py [--quick] [--threads 1,default]
[--repeats N] [--batch B]``. A 4096 x 4096 layer, dims (8, 8, 8, 8) on both sides, batch 64,
forward + backward (the input requires grad, as in a hidden layer), over bond dims
2, 4, 8, 16, 32, 64. The peer is ``tltorch.FactorizedLinear(factorization="blocktt")``
(TT-matrix, its default "factorized" forward) at the same ranks, hence the same parameter
count (checked). Timings are interleaved (one run of each layer per round), best of
``--repeats``, once per thread setting (``torch.set_num_threads``; "default": torch's own).
The table gives ratios: speedup = peer time / tnkit time (> 1: tnkit is faster). The
prediction assumes every order runs at the GEMM rate measured on nn.Linear, so it is the
flop ratio 2·B·N² / plan.flops(B), and its crossover is where that ratio falls to 1.
``--quick`` (bonds 2, 8, 32; 3 repeats) takes well under a minute.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import torch
from torch import nn

from tnkit.linear_map import plan_linear_map
from tnkit.torch import MPOLinear

N = 4096
DIMS = (8, 8, 8, 8)
BONDS = (2, 4, 8, 16, 32, 64)


def tltorch_layer(bond: int):
    try:
        import tltorch
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tltorch.FactorizedLinear(DIMS, DIMS, factorization="blocktt", rank=bond)


def step(layer, x: torch.Tensor, grad: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    x.grad = None
    layer(x).backward(grad)


def interleaved_best(layers: dict, x, grad, repeats: int) -> dict:
    for layer in layers.values():
        step(layer, x, grad)  # warm up
    best = dict.fromkeys(layers, float("inf"))
    for _ in range(repeats):
        for name, layer in layers.items():
            start = time.perf_counter()
            step(layer, x, grad)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def predicted_crossover(batch: int) -> int | None:
    """Smallest bond whose forward flops (cheapest order) reach the dense matmul's."""
    for bond in range(1, 4097):
        bonds = (min(bond, 64), min(bond, 4096), min(bond, 64))
        if plan_linear_map(DIMS, DIMS, bonds).flops(batch) >= 2 * batch * N * N:
            return bond
    return None


def run(threads: str, bonds, batch: int, repeats: int) -> None:
    torch.set_num_threads(1 if threads == "1" else DEFAULT_THREADS)
    torch.manual_seed(0)
    x = torch.randn(batch, N, requires_grad=True)
    grad = torch.randn(batch, N)
    dense = nn.Linear(N, N)
    dense_params = N * N
    rows = []
    rate = None
    for bond in bonds:
        layer = MPOLinear(N, N, bias=True, in_dims=DIMS, out_dims=DIMS, max_bond=bond)
        peer = tltorch_layer(bond)
        params = sum(p.numel() for p in layer.cores)
        layers = {"linear": dense, "tnkit": layer}
        if peer is not None:
            assert sum(p.numel() for p in peer.weight.parameters()) == params
            layers["tltorch"] = peer
        best = interleaved_best(layers, x, grad, repeats)
        flops = layer.plan.flops(batch)
        gemm_flops = 3 * 2 * batch * N * N  # forward + two backward GEMMs
        rate = gemm_flops / best["linear"]
        rows.append(
            (
                bond,
                params,
                params / dense_params,
                layer.contraction_order(batch),
                best["linear"] / best["tnkit"],
                best["tltorch"] / best["tnkit"] if peer is not None else None,
                2 * batch * N * N / flops,
                best["tnkit"] * 1e3,
            )
        )
    print(f"\n### threads: {threads} ({torch.get_num_threads()})\n")
    print(
        "| bond | params | params / dense | order | speedup vs nn.Linear | speedup vs tltorch "
        "| predicted speedup (flops) | tnkit ms |"
    )
    print("|---:|---:|---:|:---|---:|---:|---:|---:|")
    for bond, params, ratio, order, vs_linear, vs_tl, predicted, ms in rows:
        tl = "—" if vs_tl is None else f"{vs_tl:.2f}"
        print(
            f"| {bond} | {params:,} | {ratio:.2e} | {order} | {vs_linear:.2f} | {tl} "
            f"| {predicted:.2f} | {ms:.1f} |"
        )
    measured = next((r[0] for r in rows if r[4] < 1), None)
    print(
        f"\nnn.Linear GEMM rate (forward + backward): {rate / 1e9:.1f} GFLOP/s; predicted "
        f"crossover (MPO flops = dense flops at batch {batch}): bond {predicted_crossover(batch)}"
        f"; measured: first bond slower than nn.Linear: {measured or 'none of those run'}"
    )


DEFAULT_THREADS = torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", default=None, help="comma list of 1 and default")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    bonds = (2, 8, 32) if args.quick else BONDS
    repeats = args.repeats or (3 if args.quick else 7)
    threads = (args.threads or "1,default").split(",")
    print(
        f"MPOLinear {N}x{N}, dims {DIMS}², batch {args.batch}, forward+backward, best of "
        f"{repeats}; torch {torch.__version__}, {platform.processor() or platform.machine()}"
    )
    for setting in threads:
        if setting not in ("1", "default"):
            parser.error(f"--threads: expected 1 or default, got {setting!r}")
        run(setting, bonds, args.batch, repeats)


if __name__ == "__main__":
    main()
