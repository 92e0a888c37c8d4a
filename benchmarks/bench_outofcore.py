"""Out-of-core TT-SVD: decompose a tensor larger than the memory the process may use.

The tensor is a sampled signal ``x[n] = sin(a·n) + cos(b·n)/2 + sin(c·n + 1)/4`` for
``n < 2**bits``, seen as a ``(2,)*bits`` tensor of n's binary digits (a quantized tensor
train: its exact TT ranks are at most 6). It is written block by block to a raw file and
read back by dask one block at a time with ``np.fromfile`` (``--computed``: blocks computed
on demand instead, no file), so the full tensor never exists in memory (a ``np.memmap``
would do as well, but its pages would count in the resident size). The process's data
segment is capped with ``RLIMIT_DATA`` before the decomposition starts: what it holds
after imports and a warm-up (``VmData``) plus an allowance, a quarter of the tensor by
default. The peak resident memory (``ru_maxrss``), the time, the bonds and the error at
random entries against the formula are reported.

    python benchmarks/bench_outofcore.py             # 2**29 doubles: 4 GiB, 1 GiB allowed
    python benchmarks/bench_outofcore.py --bits 26   # 512 MiB, 128 MiB allowed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time

import dask
import dask.array as da
import numpy as np

import tnkit as tn

FREQUENCIES = (1e-3, 3.7e-5, 0.31)


def signal(n: np.ndarray) -> np.ndarray:
    a, b, c = FREQUENCIES
    return np.sin(a * n) + 0.5 * np.cos(b * n) + 0.25 * np.sin(c * n + 1.0)


LOW_BITS = 7  # n's lowest bits pick the block: 128 blocks


class Signal:
    """The ``(2,)*bits`` tensor of ``signal``, computed slice by slice (what dask reads)."""

    def __init__(self, bits: int) -> None:
        self.shape, self.dtype, self.ndim = (2,) * bits, np.dtype(np.float64), bits

    def __getitem__(self, index: tuple) -> np.ndarray:
        n = np.zeros((1,) * self.ndim)
        for axis, part in enumerate(index):
            digits = np.arange(2)[part].reshape((-1,) + (1,) * (self.ndim - axis - 1))
            n = n + digits * 2.0 ** (self.ndim - 1 - axis)
        return signal(n)


class BlockFile:
    """The tensor's low-bits-first transpose ``y[t, j] = x[j, t]``, stored in a raw file
    (so each block ``t`` is contiguous) and read block by block with ``np.fromfile``."""

    def __init__(self, bits: int, path: str) -> None:
        self.bits, self.path, self.dtype = bits, path, np.dtype(np.float64)
        self.shape, self.ndim = (2,) * bits, bits
        high = np.arange(2 ** (bits - LOW_BITS), dtype=np.float64) * 2**LOW_BITS
        with open(path, "wb") as handle:
            for t in range(2**LOW_BITS):
                signal(high + t).tofile(handle)

    def __getitem__(self, index: tuple) -> np.ndarray:
        t = sum(part.start << (LOW_BITS - 1 - a) for a, part in enumerate(index[:LOW_BITS]))
        count = 2 ** (self.bits - LOW_BITS)
        block = np.fromfile(self.path, dtype=self.dtype, count=count, offset=t * count * 8)
        return block.reshape((1,) * LOW_BITS + (2,) * (self.bits - LOW_BITS))

    def as_dask(self) -> da.Array:
        """``x`` itself: the transpose back, block by block (dask moves no data for it)."""
        chunks = (1,) * LOW_BITS + (2,) * (self.bits - LOW_BITS)
        y = da.from_array(self, chunks=chunks, asarray=False)
        return y.transpose(tuple(range(LOW_BITS, self.bits)) + tuple(range(LOW_BITS)))


def entries(mps: tn.MPS, bits: np.ndarray, batch: int = 1000) -> np.ndarray:
    """``mps`` at the multi-indices in the rows of ``bits`` (no dense tensor), a batch of
    rows at a time (the gathered cores of a batch are ``batch × bond²``)."""
    parts = []
    for start in range(0, bits.shape[0], batch):
        rows = bits[start : start + batch]
        vectors = np.ones((rows.shape[0], 1))
        for k, core in enumerate(mps.cores):
            vectors = np.einsum("br,rbs->bs", vectors, core[:, rows[:, k], :])
        parts.append(vectors[:, 0])
    return np.concatenate(parts)


def vm_data_bytes() -> int:
    """The data segment the process holds now (what ``RLIMIT_DATA`` counts)."""
    with open("/proc/self/status") as status:
        line = next(row for row in status if row.startswith("VmData:"))
    return int(line.split()[1]) * 1024


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bits", type=int, default=29, help="tensor of 2**bits doubles")
    parser.add_argument("--allow-mib", type=int, help="memory allowed (default: size/4)")
    parser.add_argument("--chunk-mib", type=int, default=32, help="dask array.chunk-size")
    # sin(a·n) at n ~ 5e8 carries rounding noise of ~1e-16·a·n ~ 5e-11 relative: a
    # tolerance below ~1e-9 would keep that noise (bonds up to 56 instead of 6)
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--computed", action="store_true", help="no file: compute blocks")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    size = 2**args.bits * 8
    allowance = (args.allow_mib or max(size // 4 // 2**20, 16)) * 2**20
    with tempfile.TemporaryDirectory() as directory:
        if args.computed:
            chunks = (2,) * (args.bits - LOW_BITS) + (1,) * LOW_BITS
            x = da.from_array(Signal(args.bits), chunks=chunks)
        else:
            x = BlockFile(args.bits, os.path.join(directory, "signal.f64")).as_dask()
        with dask.config.set({"array.chunk-size": "4KiB"}):  # warm up every code path
            tn.tt_svd(da.from_array(Signal(12), chunks=(2,) * 6 + (1,) * 6), rtol=args.rtol)
        limit = vm_data_bytes() + allowance
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        rss_before = peak_rss_bytes()
        start = time.perf_counter()
        with dask.config.set({"array.chunk-size": f"{args.chunk_mib}MiB"}):
            mps = tn.tt_svd(x, rtol=args.rtol)
        seconds = time.perf_counter() - start
        peak_rss = peak_rss_bytes()  # the decomposition's peak, before the checks below
        resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))

    rng = np.random.default_rng(0)
    n = rng.integers(0, 2**args.bits, 100_000)
    bits = (n[:, None] >> np.arange(args.bits - 1, -1, -1)) & 1
    exact = signal(n.astype(np.float64))
    measured = float(np.linalg.norm(entries(mps, bits) - exact) / np.linalg.norm(exact))
    result = {
        "tensor": f"(2,)*{args.bits} float64",
        "source": "computed blocks" if args.computed else "raw file, np.fromfile per block",
        "tensor_bytes": size,
        "rlimit_data_bytes": limit,
        "allowance_bytes": allowance,
        "chunk_bytes": args.chunk_mib * 2**20,
        "peak_rss_bytes": peak_rss,
        "peak_rss_increase_bytes": peak_rss - rss_before,
        "peak_rss_before_bytes": rss_before,
        "seconds": round(seconds, 2),
        "bond_dims": list(mps.bond_dims),
        "rel_error_bound": mps.report.rel_error_bound,
        "rel_error_at_1e5_random_entries": measured,
        "method": mps.report.method,
    }
    print(json.dumps(result, indent=2))
    print(
        f"\n{size / 2**30:.2f} GiB tensor, {allowance / 2**30:.2f} GiB allowed above the "
        f"{(limit - allowance) / 2**30:.2f} GiB after imports: peak RSS "
        f"{result['peak_rss_bytes'] / 2**30:.2f} GiB, {rss_before / 2**30:.2f} GiB before "
        f"(increase {result['peak_rss_increase_bytes'] / size:.2f}× the tensor), "
        f"{seconds:.1f} s, max bond {max(mps.bond_dims)}, "
        f"relative error {measured:.1e} (bound {mps.report.rel_error_bound:.1e})",
        file=sys.stderr,
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    assert math.isfinite(measured)


if __name__ == "__main__":
    main()
