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
import math
import platform
import warnings
from typing import Any

import peers
import torch
from harness import GroupResult, Row, interleaved_best, ratio
from torch import nn

from tnkit.linear_map import plan_linear_map
from tnkit.torch import MPOLinear

DIMS = (8, 8, 8, 8)
N = math.prod(DIMS)
BONDS = (2, 4, 8, 16, 32, 64)
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"dims": (4, 4), "bonds": (2,), "batch": 4, "threads": ("1",), "repeats": 1},
    "quick": {"dims": DIMS, "bonds": (2, 8, 32), "batch": 64, "threads": ("1",), "repeats": 3},
    "full": {"dims": DIMS, "bonds": BONDS, "batch": 64, "threads": ("1", "default"), "repeats": 7},
}


def tltorch_layer(dims: tuple[int, ...], bond: int) -> Any:
    tltorch = peers.load("tltorch")
    if tltorch is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tltorch.FactorizedLinear(dims, dims, factorization="blocktt", rank=bond)


def step(layer, x: torch.Tensor, grad: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    x.grad = None
    layer(x).backward(grad)


def predicted_crossover(batch: int, dims: tuple[int, ...] = DIMS) -> int | None:
    """Smallest bond whose forward flops (cheapest order) reach the dense matmul's."""
    n = math.prod(dims)
    for bond in range(1, n + 1):
        bonds = plan_bonds(dims, bond)
        if plan_linear_map(dims, dims, bonds).flops(batch) >= 2 * batch * n * n:
            return bond
    return None


def plan_bonds(dims: tuple[int, ...], bond: int) -> tuple[int, ...]:
    """Bond ``bond`` capped by the exact TT-matrix ranks (products of d_k² on either side)."""
    squares = [d * d for d in dims]
    return tuple(
        min(bond, math.prod(squares[: k + 1]), math.prod(squares[k + 1 :]))
        for k in range(len(dims) - 1)
    )


def measure(threads: str, bonds, batch: int, repeats: int, dims=DIMS) -> list[dict[str, Any]]:
    """One dict per bond: parameter counts, contraction order, best times (s) of the layers."""
    torch.set_num_threads(1 if threads == "1" else DEFAULT_THREADS)
    torch.manual_seed(0)
    n = math.prod(dims)
    x = torch.randn(batch, n, requires_grad=True)
    grad = torch.randn(batch, n)
    dense = nn.Linear(n, n)
    out = []
    for bond in bonds:
        layer = MPOLinear(n, n, bias=True, in_dims=dims, out_dims=dims, max_bond=bond)
        peer = tltorch_layer(dims, bond)
        params = sum(p.numel() for p in layer.cores)
        layers = {"linear": dense, "tnkit": layer}
        if peer is not None:
            assert sum(p.numel() for p in peer.weight.parameters()) == params
            layers["tltorch"] = peer
        jobs = {name: (lambda m=m: step(m, x, grad)) for name, m in layers.items()}
        best = interleaved_best(jobs, repeats, warm_up=True)[0]
        out.append(
            {
                "threads": threads,
                "num_threads": torch.get_num_threads(),
                "bond": bond,
                "params": params,
                "params_ratio": params / (n * n),
                "order": layer.contraction_order(batch),
                "flops": layer.plan.flops(batch),
                "dense_flops": 2 * batch * n * n,
                "times": best,
            }
        )
    return out


def rows(mode: str, repeats: int | None = None, budget: float | None = None) -> GroupResult:
    """MPOLinear, nn.Linear and tltorch per bond (and thread setting) at the ``mode`` size."""
    size = SIZES[mode]
    repeats = repeats or size["repeats"]
    dims, batch = size["dims"], size["batch"]
    n = math.prod(dims)
    out = []
    try:
        for threads in size["threads"]:
            for m in measure(threads, size["bonds"], batch, repeats, dims):
                times = m["times"]
                case = f"{n}x{n} bond {m['bond']}, batch {batch}, threads {threads}"
                extra = {k: m[k] for k in ("params", "params_ratio", "order", "num_threads")}
                for library, seconds in times.items():
                    ratios = {}
                    if library == "tnkit":
                        ratios = {
                            "vs nn.Linear": ratio(times["linear"], seconds),
                            "vs tltorch": ratio(times.get("tltorch"), seconds),
                            "predicted vs nn.Linear (flops)": m["dense_flops"] / m["flops"],
                        }
                    name = {"linear": "nn.Linear", "tnkit": "MPOLinear"}.get(library, library)
                    method = {"linear": "dense", "tnkit": m["order"]}.get(library, "blocktt")
                    lib = "torch" if library == "linear" else library
                    note = f"{m['params'] if library != 'linear' else n * n:,} params"
                    out.append(
                        Row(
                            "torch_linear",
                            case,
                            lib,
                            f"{name} {method}",
                            seconds,
                            ratios=ratios,
                            note=note,
                            extra=extra,
                        )
                    )
    finally:
        torch.set_num_threads(DEFAULT_THREADS)
    notes = [
        f"predicted crossover with nn.Linear (MPO flops = dense flops at batch {batch}): bond "
        f"{predicted_crossover(batch, dims)}"
    ]
    if peers.load("tltorch") is None:
        notes.append("tltorch (tensorly-torch) is not installed: its rows are skipped")
    description = (
        f"MPOLinear vs nn.Linear and tltorch's FactorizedLinear(blocktt), {n} x {n}, dims "
        f"{dims} on both sides, forward + backward; speed-up = other time / MPOLinear time"
    )
    config = {"repeats": repeats, **size, "torch": torch.__version__}
    return GroupResult("torch_linear", description, out, notes, config)


def run(threads: str, bonds, batch: int, repeats: int) -> None:
    measured = measure(threads, bonds, batch, repeats)
    print(f"\n### threads: {threads} ({torch.get_num_threads()})\n")
    print(
        "| bond | params | params / dense | order | speedup vs nn.Linear | speedup vs tltorch "
        "| predicted speedup (flops) | tnkit ms |"
    )
    print("|---:|---:|---:|:---|---:|---:|---:|---:|")
    for m in measured:
        t = m["times"]
        vs_tl = ratio(t.get("tltorch"), t["tnkit"])
        tl = "—" if vs_tl is None else f"{vs_tl:.2f}"
        print(
            f"| {m['bond']} | {m['params']:,} | {m['params_ratio']:.2e} | {m['order']} "
            f"| {t['linear'] / t['tnkit']:.2f} | {tl} | {m['dense_flops'] / m['flops']:.2f} "
            f"| {t['tnkit'] * 1e3:.1f} |"
        )
    rate = 3 * measured[-1]["dense_flops"] / measured[-1]["times"]["linear"]  # fwd + 2 bwd GEMMs
    slower = next((m["bond"] for m in measured if m["times"]["linear"] < m["times"]["tnkit"]), None)
    print(
        f"\nnn.Linear GEMM rate (forward + backward): {rate / 1e9:.1f} GFLOP/s; predicted "
        f"crossover (MPO flops = dense flops at batch {batch}): bond {predicted_crossover(batch)}"
        f"; measured: first bond slower than nn.Linear: {slower or 'none of those run'}"
    )


DEFAULT_THREADS = torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", default=None, help="comma list of 1 and default")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    bonds = SIZES["quick" if args.quick else "full"]["bonds"]
    repeats = args.repeats or SIZES["quick" if args.quick else "full"]["repeats"]
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
