"""Thread safety: trains are immutable, so concurrent calls on shared objects match serial ones.

Eight workers of a ThreadPoolExecutor run every operation on the same shared trains; each
result must equal the serial result exactly (bitwise), the shared trains must be unchanged,
and the process-wide BLAS thread limit must be what it was before (the library limits BLAS
threads around small work with threadpoolctl, which sets a global). The Numba kernels are
exercised hot (compiled before) and cold (a fresh interpreter and an empty Numba cache, so
that eight threads race to compile ``expectation`` and ``inner`` on their first call).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tnkit as tn

WORKERS = 8
REPEATS = 3


def _snapshot(train) -> list[np.ndarray]:
    return [np.array(c, copy=True) for c in train.cores]


def _same(a, b) -> bool:
    """Bitwise equality of results: trains (cores, centre), arrays, scalars, tuples."""
    if isinstance(a, tn.TensorTrain):
        return (
            type(a) is type(b)
            and a.centre == b.centre
            and len(a) == len(b)
            and all(np.array_equal(x, y) for x, y in zip(a.cores, b.cores, strict=True))
        )
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def _blas_threads() -> dict[str, int]:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return {info["filepath"]: info["num_threads"] for info in threadpoolctl.threadpool_info()}


@pytest.fixture
def blas_guard():
    """The BLAS thread counts before the test (every BLAS library loaded first); restored
    afterwards whatever happens, so that a failure here does not slow the rest of the suite."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import scipy.linalg  # noqa: F401 - load SciPy's BLAS before taking the snapshot

    tn.inner(*[tn.MPS.random([2] * 4, 20, seed=0)] * 2)  # loads numba (and its BLAS use)
    with threadpoolctl.threadpool_limits(limits=None):  # restores the originals on exit
        yield _blas_threads()


def _operations(chi: int):
    """Shared trains and the calls made on them (bond ``chi``: ≤ 32 runs the Numba kernels,
    larger the array-API twins; ≥ 16 makes the kernels limit BLAS threads)."""
    m = tn.MPS.random([2] * 12, chi, seed=1)
    b = tn.MPS.random([2] * 12, chi, seed=2)
    mc = tn.MPS.random([2] * 12, chi, seed=3, dtype="complex128")
    o = tn.MPO.random([2] * 12, [2] * 12, 3, seed=4)
    h = tn.models.heisenberg(12)
    shared = (m, b, mc, o, h)
    calls = {
        "inner": lambda: tn.inner(m, b),
        "inner-complex": lambda: tn.inner(mc, mc),
        "norm": lambda: m.norm(),
        "log_norm": lambda: mc.log_norm(),
        "canonicalize": lambda: m.canonicalize(7),
        "canonicalize-end": lambda: mc.canonicalize(0),
        "compress": lambda: m.compress(max_bond=max(chi // 2, 1)),
        "compress-rtol": lambda: mc.compress(rtol=0.2),
        "apply-zipup": lambda: tn.apply(o, m, max_bond=chi),
        "apply-density": lambda: tn.apply(o, m, max_bond=chi, method="density"),
        "apply-fit": lambda: tn.apply(o, m, max_bond=chi, method="fit"),
        "sample": lambda: m.sample(64, seed=11),
        "sample-complex": lambda: mc.sample(64, seed=12),
        "expectation": lambda: tn.expectation(m, h),
        "expectation-normalized": lambda: tn.expectation(m, h, normalize=True),
        "entropies": lambda: m.entropies(),
        "correlation": lambda: tn.correlation(m, np.diag([1.0, -1.0]), 2, np.eye(2), 8),
        "distance": lambda: tn.distance(m, b),
        "o@m": lambda: o @ m,
    }
    return shared, calls


@pytest.mark.parametrize("chi", [4, 20, 40], ids=["kernel-loops", "kernel-blas", "twin"])
def test_concurrent_calls_match_serial(chi, blas_guard):
    """Bitwise equality needs every call to see the same BLAS thread count in both runs: the
    library's limit to one thread around small work is process-wide, so a concurrent call
    may run its large products on one thread where the serial call used two, and OpenBLAS
    0.3.31 then rounds differently (``inner`` and ``log_norm`` of complex χ=40 trains). One
    BLAS thread for the whole test makes the comparison one of shared state and races only;
    the next test checks the limit itself with BLAS free."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    shared, calls = _operations(chi)
    before = [_snapshot(t) for t in shared]
    jobs = [name for name in calls for _ in range(REPEATS)]
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        serial = {name: call() for name, call in calls.items()}
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(lambda name: (name, calls[name]()), jobs))
    mismatched = sorted({name for name, value in results if not _same(value, serial[name])})
    assert not mismatched, f"concurrent results differ from serial ones: {mismatched}"
    for train, cores in zip(shared, before, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(train.cores, cores, strict=True))


@pytest.mark.parametrize("chi", [4, 20, 40], ids=["kernel-loops", "kernel-blas", "twin"])
def test_concurrent_calls_restore_the_blas_limit(chi, blas_guard):
    """With BLAS free to use its threads, concurrent calls that limit it around small work
    leave the process-wide limit as it was, and the shared trains unchanged."""
    shared, calls = _operations(chi)
    before = [_snapshot(t) for t in shared]
    threads_before = blas_guard
    jobs = [name for name in calls for _ in range(REPEATS)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(lambda name: calls[name](), jobs))
    for train, cores in zip(shared, before, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(train.cores, cores, strict=True))
    assert _blas_threads() == threads_before, "the global BLAS thread limit was not restored"


def test_concurrent_first_use_of_a_fresh_train():
    """Many threads on a train that has never been packed for the kernels: the lazily built
    pack (a slot written on first use) is raced for."""
    for seed in range(3):
        m = tn.MPS.random([2] * 24, 6, seed=seed)
        reference = tn.MPS.random([2] * 24, 6, seed=seed)
        expected = (tn.inner(reference, reference), reference.norm(), reference.log_norm())
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            got = list(pool.map(lambda _, m=m: (tn.inner(m, m), m.norm(), m.log_norm()), range(16)))
        assert all(_same(g, expected) for g in got)


COLD_SCRIPT = textwrap.dedent(
    """
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    import tnkit as tn
    from tnkit import _kernels

    m = tn.MPS.random([2] * 40, 8, seed=1)
    h = tn.models.heisenberg(40)
    with ThreadPoolExecutor(max_workers=8) as pool:  # the first kernel calls race to compile
        got = list(pool.map(lambda _: (tn.expectation(m, h), tn.inner(m, m)), range(16)))
    hot = (tn.expectation(m, h), tn.inner(m, m))
    with _kernels.disabled():
        twin = (tn.expectation(m, h), tn.inner(m, m))
    assert all(g == hot for g in got), (got, hot)
    assert np.allclose(hot, twin, rtol=1e-12), (hot, twin)
    print("ok", len(got))
    """
)


def test_cold_numba_kernels_load_concurrently():
    """A fresh interpreter: eight threads make the first kernel calls (the compiled kernels
    come from Numba's on-disk cache, so this is the dispatch and loading race)."""
    pytest.importorskip("numba")
    _run_cold(dict(os.environ))


@pytest.mark.slow
def test_cold_numba_kernels_compile_concurrently(tmp_path):
    """As above with an empty Numba cache: the threads race to compile (~40-50 s on 2 cores)."""
    pytest.importorskip("numba")
    _run_cold({**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")})


def _run_cold(env: dict) -> None:
    done = subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok 16"
