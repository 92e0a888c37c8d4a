"""Benchmark of compress_model on a Dask cluster: a many-layer model, serially and on 2 workers.

Usage: ``python benchmarks/bench_dask_model.py [--quick] [--layers N] [--size N]
[--max-bond D] [--repeats N] [--no-malloc-trim]``. A stack of ``--layers`` (24)
``nn.Linear(size, size)`` layers (1024, float32, random weights) is compressed with
``max_bond`` (32), 4 cores per MPO, three ways: serially with one BLAS/torch thread,
serially with two, and through a ``distributed.Client`` of a ``LocalCluster`` of 2 worker
processes with one thread each (what ``compress_model(..., executor=client)`` does: one job
per layer, the layer pickled to a worker and its MPO layer back). Best of ``--repeats`` (3)
rounds, interleaved (one run of each per round, each on a fresh deep copy of the model, the
copy untimed); the cluster is started and its workers warmed up (torch and tnkit imported,
one small compression) before the timing. The speed-up is the serial one-thread time over
each time (> 1: faster). The workers' own compute time per layer (from the task stream) is
printed too: well above the serial time per layer, the cores are shared with other
processes. The compressed models are checked identical (every tensor of the state dict)
between the one-thread serial run and the cluster run. ``--quick``: 8 layers of 512, 2
rounds. ``--no-malloc-trim`` starts the workers without the ``MALLOC_TRIM_THRESHOLD_=65536``
that Dask's nanny sets by default (config ``distributed.nanny.pre-spawn-environ``), with
which glibc hands freed memory back at once, so that the decompositions' temporaries cost
page faults again and again.
"""

from __future__ import annotations

import argparse
import copy
import gc
import math
import time
from collections.abc import Callable
from typing import Any

import harness
import torch
from torch import nn

from tnkit.torch import compress_model


def make_model(layers: int, size: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*(nn.Linear(size, size) for _ in range(layers)))


def serial(threads: int, max_bond: int) -> Callable[[nn.Module], Any]:
    """compress_model in this process with ``threads`` BLAS and torch threads."""

    def run(model: nn.Module) -> Any:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with harness.blas_limit(threads):
                return compress_model(model, max_bond=max_bond)
        finally:
            torch.set_num_threads(before)

    return run


def on_cluster(client: Any, max_bond: int, busy: list[float]) -> Callable[[nn.Module], Any]:
    """compress_model through ``client``; appends the workers' compute seconds of each run
    to ``busy`` (from the task stream)."""
    from distributed import get_task_stream

    def run(model: nn.Module) -> Any:
        with get_task_stream(client) as stream:
            report = compress_model(model, max_bond=max_bond, executor=client)
        busy.append(
            sum(
                part["stop"] - part["start"]
                for task in stream.data
                for part in task["startstops"]
                if part["action"] == "compute"
            )
        )
        return report

    return run


def identical(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        torch.equal(sa[k], sb[k]) if isinstance(sa[k], torch.Tensor) else sa[k] == sb[k] for k in sa
    )


def measure(model: nn.Module, jobs: dict[str, Callable], repeats: int) -> tuple[dict, dict]:
    """Best time of every job over interleaved rounds, and each job's last compressed model."""
    best = dict.fromkeys(jobs, math.inf)
    models: dict[str, nn.Module] = {}
    for round_ in range(repeats):
        for name, job in jobs.items():
            fresh = copy.deepcopy(model)
            gc.collect()
            start = time.perf_counter()
            job(fresh)
            elapsed = time.perf_counter() - start
            best[name] = min(best[name], elapsed)
            models[name] = fresh
            print(f"  round {round_ + 1}: {name}: {elapsed:.3f} s", flush=True)
    return best, models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 layers of 512, 2 rounds")
    parser.add_argument("--layers", type=int, default=None, help="number of layers (24)")
    parser.add_argument("--size", type=int, default=None, help="in = out features (1024)")
    parser.add_argument("--max-bond", type=int, default=32, help="max_bond (32)")
    parser.add_argument("--repeats", type=int, default=None, help="best of this many (3)")
    parser.add_argument(
        "--no-malloc-trim",
        action="store_true",
        help="workers without Dask's default MALLOC_TRIM_THRESHOLD_=65536",
    )
    args = parser.parse_args()
    layers = args.layers or (8 if args.quick else 24)
    size = args.size or (512 if args.quick else 1024)
    repeats = args.repeats or (2 if args.quick else 3)

    import dask
    from distributed import Client, LocalCluster

    environ = "distributed.nanny.pre-spawn-environ"
    if args.no_malloc_trim:
        spawn = dict(dask.config.get(environ))
        spawn.pop("MALLOC_TRIM_THRESHOLD_", None)
        dask.config.set({environ: spawn})
    trim = dask.config.get(environ).get("MALLOC_TRIM_THRESHOLD_", "unset")
    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        warm = make_model(2, 64)
        compress_model(copy.deepcopy(warm), max_bond=4, executor=client)  # imports on workers
        worker_threads = sorted(set(client.run(torch.get_num_threads).values()))
        print(f"cluster of 2 workers up and warm in {time.perf_counter() - start:.1f} s")
        model = make_model(layers, size)
        busy: list[float] = []
        jobs = {
            "serial, 1 thread": serial(1, args.max_bond),
            "serial, 2 threads": serial(2, args.max_bond),
            "dask, 2 workers x 1 thread": on_cluster(client, args.max_bond, busy),
        }
        for job in jobs.values():  # untimed: first-call costs (imports, plan caches)
            job(make_model(2, size))
        busy.clear()
        best, models = measure(model, jobs, repeats)
    same = identical(models["serial, 1 thread"], models["dask, 2 workers x 1 thread"])
    same_2 = identical(models["serial, 1 thread"], models["serial, 2 threads"])
    print()
    print(harness.script_header("torch", "dask", "distributed"))
    print(
        f"\ncompress_model of {layers} x nn.Linear({size}, {size}) float32, max_bond "
        f"{args.max_bond}, 4 cores; best of {repeats}; worker torch threads {worker_threads}, "
        f"worker MALLOC_TRIM_THRESHOLD_ {trim}\n"
    )
    print("| run | best s | s per layer | speed-up vs serial 1 thread |")
    print("|:---|---:|---:|---:|")
    base = best["serial, 1 thread"]
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.3f} | {seconds / layers:.3f} | {base / seconds:.2f} |")
    print(
        f"\nresults identical to serial 1 thread: dask {'yes' if same else 'NO'}, "
        f"serial 2 threads {'yes' if same_2 else 'no'}"
    )
    print(
        f"dask workers' compute per layer (task stream, mean over the rounds): "
        f"{sum(busy) / len(busy) / layers:.3f} s, against {base / layers:.3f} s serially"
    )
    if not same:
        raise SystemExit("the cluster's results differ from the serial run's")


if __name__ == "__main__":
    main()
