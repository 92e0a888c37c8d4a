"""MPOLinear forward in JAX (eager and ``jax.jit``) against the PyTorch MPOLinear, same size.

Usage: ``python benchmarks/bench_jax_linear.py [--quick]``. 1024×1024 with dims (4, 8, 8, 4)²
(``--quick``: 256×256, (4, 4, 4, 4)²), batch 64, bonds 4 and 16, float32, one thread for
both frameworks (XLA's CPU client and torch), best of N interleaved calls after a warm-up
(which includes jit compilation). Prints a markdown table of times and ratios.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)


def best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(bond: int, size: int, dims: tuple, x_np, repeats: int) -> tuple:
    """(bond, JAX eager, JAX jit, PyTorch) forward times of one layout."""
    import jax
    import jax.numpy as jnp
    import torch
    from flax import nnx

    from tnkit.jax import MPOLinear as JaxMPOLinear
    from tnkit.torch import MPOLinear as TorchMPOLinear

    layer = JaxMPOLinear(size, size, in_dims=dims, out_dims=dims, max_bond=bond, rngs=nnx.Rngs(0))
    graph, state = nnx.split(layer)
    forward = jax.jit(lambda state, x: nnx.merge(graph, state)(x))
    x_jax = jnp.asarray(x_np)
    eager = best(lambda: layer(x_jax).block_until_ready(), repeats)
    jitted = best(lambda: forward(state, x_jax).block_until_ready(), repeats)
    torch_layer = TorchMPOLinear(size, size, in_dims=dims, out_dims=dims, max_bond=bond)
    x_torch = torch.from_numpy(x_np)
    with torch.no_grad():
        torch_time = best(lambda: torch_layer(x_torch), repeats)
    return bond, eager, jitted, torch_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="256×256, fewer repeats")
    args = parser.parse_args()
    import jax
    import numpy as np
    import torch

    torch.set_num_threads(1)
    size, dims = (256, (4, 4, 4, 4)) if args.quick else (1024, (4, 8, 8, 4))
    repeats = 5 if args.quick else 20
    batch = 64
    x_np = np.random.default_rng(0).standard_normal((batch, size)).astype(np.float32)
    rows = [measure(bond, size, dims, x_np, repeats) for bond in (4, 16)]
    print(
        f"MPOLinear forward {size}x{size}, dims {dims}², batch {batch}, float32, 1 thread; "
        f"jax {jax.__version__}, torch {torch.__version__}"
    )
    print()
    print("| bond | JAX eager | JAX jit | PyTorch eager | eager / jit | PyTorch / JAX jit |")
    print("|---:|---:|---:|---:|---:|---:|")
    for bond, eager, jitted, torch_time in rows:
        print(
            f"| {bond} | {eager * 1e3:.3f} ms | {jitted * 1e3:.3f} ms | "
            f"{torch_time * 1e3:.3f} ms | {eager / jitted:.2f}× | {torch_time / jitted:.2f}× |"
        )


if __name__ == "__main__":
    main()
