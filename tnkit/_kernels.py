"""Numba kernels for long chains with small bonds: overlap, expectation and the QR norm sweep.

NumPy inputs only, and only where a benchmark shows they win (see ``KERNEL_MAX_BOND``); numba
is imported and the kernels compiled on first use, never at ``import tnkit``. Each kernel has
a pure array-API twin that every other case runs: ``contract.inner``'s transfer loop
(``overlap``), ``contract.expectation``'s loop (``expectation``) and the left QR sweep of
``contract.log_norm`` and ``TensorTrain.norm`` (``qr_norm``); ``tests/test_kernels.py`` checks
that each pair agrees to rounding.

A kernel sees a train as two arrays, whatever its length: every core in one contiguous 1-D
buffer and an ``(L, 4)`` int64 table of ``(offset, Dl, p, Dr)`` per site (an MPO core enters
with its two physical legs fused, as in the sweeps). ``Packed`` builds them once per train;
``TensorTrain`` keeps it in a slot, since trains are immutable. Environments are rescaled by
powers of two after every site, which is exact: the result is the unscaled one, but it
neither under- nor overflows on the way (and never runs into slow subnormals).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import types
from typing import Any

import array_api_compat as aac
import numpy as np

from ._backend import blas_threads
from ._kernel_code import compile_kernels

# Largest bond (of any train involved) for which the kernels run; above it the array-API
# loops take over. Kernel time / array-API time on the 2-core box (``python
# benchmarks/bench_long_chains.py``, L=256, d=2, float64, best of 5, interleaved), for
# overlap / expectation (MPO bond 5) / norm: χ=16: 0.13/0.20/0.12, χ=32: 0.40/0.51/0.38,
# χ=48: 0.69/0.83/0.47, χ=64: 0.81/0.98/0.82, χ=96: 1.53/1.25/0.87. Past χ≈32 the BLAS
# products dominate and the gain shrinks to noise (and to a loss for a train too big to
# cache, packed on every call: overlap χ=48 measured 1.15), so 32 keeps a 2× margin.
KERNEL_MAX_BOND = 32

# The dtypes the kernels are compiled for. Numba compiles the five kernels once per dtype on
# first use (about 19 s per dtype on the 2-core box, then cached on disk); single precision
# (float32, complex64) runs the array-API twins instead, which halves that first-use cost
# (and a cold test run's) for the precisions long physics chains use.
KERNEL_DTYPES = frozenset({np.dtype("float64"), np.dtype("complex128")})

# Bonds from which a kernel limits BLAS to one thread (below, every site runs hand loops or
# products too small for OpenBLAS to thread).
_THREAD_LIMIT_FROM_BOND = 16

# Packed buffers up to this many entries (32 MiB of float64) are kept with their train; a
# larger one is built for each call instead (one copy of the cores per call), so caching
# never doubles the memory of a big train.
_CACHE_MAX_ENTRIES = 2**22

_state: dict[str, Any] = {"enabled": True}
_compile_lock = threading.Lock()


# ---------------------------------------------------------------------- dispatch


class Packed:
    """The cores of one train as kernel input: one buffer and a site table, built lazily.

    The core shapes (hence ``max_bond`` and ``dims``), ``dtype`` and ``is_numpy`` are read
    at once (one pass over the cores); the buffer is only built when a kernel runs, so
    trains outside the kernel regime never pay for a copy.
    """

    __slots__ = ("_cores", "_arrays", "shapes", "dtype", "is_numpy", "max_bond")

    def __init__(self, cores: Any) -> None:
        # ``cores``: a tuple of arrays, or NumPy cores held otherwise (``HeldBlocks``: their
        # ``shapes`` and ``dtype`` known, the arrays built by ``cores()`` when a kernel runs)
        self._cores = cores
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        held = not isinstance(cores, tuple)
        shapes = itertools.chain.from_iterable(cores.shapes if held else [c.shape for c in cores])
        self.shapes = np.fromiter(shapes, np.int64).reshape(len(cores), -1)  # (L, ndim)
        self.shapes.flags.writeable = False
        self.dtype = cores.dtype if held else cores[0].dtype
        self.is_numpy = held or aac.is_numpy_array(cores[0])
        self.max_bond = int(self.shapes[:, 0].max())

    @classmethod
    def prebuilt(cls, like: Packed, data: np.ndarray, sites: np.ndarray) -> Packed:
        """A pack of a train with ``like``'s core shapes whose buffer (laid out as
        ``arrays`` lays it out) is already known; the cores are read from ``data``."""
        new = object.__new__(cls)
        new._cores = None
        new._arrays = (data, sites)
        new.shapes = like.shapes
        new.dtype = like.dtype
        new.is_numpy = like.is_numpy
        new.max_bond = like.max_bond
        return new

    @property
    def dims(self) -> np.ndarray:
        """Physical dims, an ``(L, legs)`` int64 array (compared in microseconds, unlike
        tuples built from L cores on every call)."""
        return self.shapes[:, 1:-1]

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(data, sites)``: all cores raveled into one read-only buffer, and per site
        ``(offset, Dl, p, Dr)`` with the physical legs fused into ``p``."""
        if self._arrays is not None:
            return self._arrays
        cores = self._cores if isinstance(self._cores, tuple) else self._cores.cores()
        data = np.concatenate(cores, axis=None)
        sites = np.empty((len(self.shapes), 4), dtype=np.int64)
        sites[:, 1] = self.shapes[:, 0]
        sites[:, 2] = self.dims.prod(axis=1)
        sites[:, 3] = self.shapes[:, -1]
        sites[0, 0] = 0
        np.cumsum(sites[:-1, 1:].prod(axis=1), out=sites[1:, 0])
        data.flags.writeable = False
        sites.flags.writeable = False
        if data.size <= _CACHE_MAX_ENTRIES:
            self._arrays = (data, sites)
        return data, sites


def applies(*packs: Packed) -> bool:
    """Whether the kernels run for these trains: all NumPy, one dtype of ``KERNEL_DTYPES``,
    every bond at most ``KERNEL_MAX_BOND``, and kernels not switched off by
    [disabled][tnkit._kernels.disabled]."""
    if not _state["enabled"]:
        return False
    dtype = packs[0].dtype
    if not all(p.is_numpy for p in packs) or dtype not in KERNEL_DTYPES:
        return False
    return all(p.dtype == dtype and p.max_bond <= KERNEL_MAX_BOND for p in packs)


def kernel_packs(a: Any, b: Any, *, operator: bool = False) -> tuple[Packed, Packed] | None:
    """The packed cores of two trains when a kernel runs for them, else None.

    The one dispatch point of ``inner`` (``a``, ``b`` of one class with equal physical dims)
    and ``expectation`` (``operator``: an MPS ``a`` and an MPO ``b`` with out = in = the
    MPS's dims). Anything else gives None: the caller's own checks and twin take over, so
    errors are raised there, and the compatible case skips their O(L) checks.
    """
    pack_a, pack_b = getattr(a, "_kernel_pack", None), getattr(b, "_kernel_pack", None)
    if pack_a is None or pack_b is None or (not operator and type(a) is not type(b)):
        return None
    packs = pack_a(), pack_b()
    if not applies(*packs):
        return None
    dims_a, dims_b = packs[0].dims, packs[1].dims
    if not operator:
        return packs if np.array_equal(dims_a, dims_b) else None
    if dims_a.shape[1] != 1 or dims_b.shape != (dims_a.shape[0], 2):
        return None
    state = dims_a[:, 0]
    square = np.array_equal(dims_b[:, 0], state) and np.array_equal(dims_b[:, 1], state)
    return packs if square else None


@contextlib.contextmanager
def disabled():
    """Run the array-API twins everywhere inside the block (for tests and benchmarks).

    Example:
        >>> import tnkit as tn
        >>> from tnkit import _kernels
        >>> a = tn.MPS.random([2] * 4, 2, seed=0)
        >>> with _kernels.disabled():
        ...     twin = tn.inner(a, a)
        >>> bool(abs(tn.inner(a, a) - twin) < 1e-12 * twin)
        True
    """
    previous = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = previous


# ---------------------------------------------------------------------- entry points


def overlap_parts(a: Packed, b: Packed) -> tuple[Any, int]:
    """⟨a, b⟩ (conjugate-linear in ``a``) as ``(mantissa, exponent)``: a NumPy scalar of the
    trains' dtype and the power of two it is to be multiplied by."""
    with _one_blas_thread(a, b):
        mantissa, exponent = _compiled().overlap(*a.arrays, *b.arrays)
    return np.asarray(mantissa, dtype=a.dtype)[()], int(exponent)


def overlap(a: Packed, b: Packed) -> Any:
    """⟨a, b⟩ as a NumPy scalar of the trains' dtype (inf or 0 beyond its range)."""
    return ldexp_scalar(*overlap_parts(a, b))


def expectation_parts(m: Packed, o: Packed) -> tuple[Any, int]:
    """⟨m|o|m⟩ for an MPS ``m`` and a square MPO ``o`` as ``(mantissa, exponent)``, as
    ``overlap_parts``."""
    with _one_blas_thread(m, o):
        mantissa, exponent = _compiled().expectation(*m.arrays, *o.arrays)
    return np.asarray(mantissa, dtype=m.dtype)[()], int(exponent)


def expectation(m: Packed, o: Packed) -> Any:
    """⟨m|o|m⟩ as a NumPy scalar of the trains' dtype (inf or 0 beyond its range)."""
    return ldexp_scalar(*expectation_parts(m, o))


def ldexp_scalar(mantissa: Any, exponent: int) -> Any:
    """``mantissa · 2**exponent`` for a NumPy scalar, in its dtype (exact unless it over- or
    underflows there, then inf or 0 without a warning)."""
    value = np.asarray(mantissa)
    with np.errstate(over="ignore", under="ignore"):
        if not np.iscomplexobj(value):
            return np.ldexp(value, exponent)[()]
        result = np.empty((), dtype=value.dtype)
        result.real = np.ldexp(value.real, exponent)
        result.imag = np.ldexp(value.imag, exponent)
        return result[()]


def qr_norm(t: Packed) -> tuple[float, int]:
    """``(mantissa, exponent)`` with ``‖t‖ = mantissa · 2**exponent``, from a left QR sweep
    (Householder; only the triangular factors are formed). The mantissa is 0 for a zero train.
    """
    with _one_blas_thread(t):
        mantissa, exponent = _compiled().qr_norm(*t.arrays)
    return float(mantissa), int(exponent)


def norm(t: Packed) -> float:
    """‖t‖ from [qr_norm][tnkit._kernels.qr_norm] (inf only if ‖t‖ itself overflows)."""
    mantissa, exponent = qr_norm(t)
    with np.errstate(over="ignore", under="ignore"):
        return float(np.ldexp(mantissa, exponent))


def log_norm(t: Packed) -> float:
    """``log ‖t‖`` from [qr_norm][tnkit._kernels.qr_norm]; -inf for a zero train."""
    mantissa, exponent = qr_norm(t)
    return math.log(mantissa) + exponent * math.log(2.0) if mantissa > 0 else -math.inf


def move_centre(t: Packed, centre: int | None, target: int) -> tuple[tuple, Packed | None]:
    """The twin of ``canonical.move_centre`` on packed cores: ``(cores, packed)``.

    ``cores`` are ``(Dl, p, Dr)`` read-only views into one new buffer (mixed-canonical about
    ``target``; every R factor has a non-negative real diagonal, as CholeskyQR2 gives).
    ``packed`` is that buffer as kernel input for the new train, or None when a thin QR
    shrank a bond (the buffer then has gaps; the new train packs itself when needed).
    """
    data, sites = t.arrays
    start = -1 if centre is None else centre
    with _one_blas_thread(t):
        out, new_sites = _compiled().move_centre(data, sites, start, target)
    out.flags.writeable = False
    new_sites.flags.writeable = False
    cores = tuple(
        out[offset : offset + dl * p * dr].reshape(dl, p, dr)
        for offset, dl, p, dr in new_sites.tolist()
    )
    if not np.array_equal(new_sites, sites):
        return cores, None
    return cores, Packed.prebuilt(t, out, sites)


def sample(t: Packed, uniforms: np.ndarray) -> np.ndarray:
    """Samples of a right-canonical train (centre 0), one per column of ``uniforms``
    (``(L, n)`` draws in [0, 1), row k for site k, as the twin in ``measure.sample`` consumes
    them); an ``(n, L)`` int64 array. ValueError for a zero state."""
    data, sites = t.arrays
    with _one_blas_thread(t):
        samples, failed = _compiled().sample(data, sites, uniforms)
    if failed:
        raise ValueError("m: cannot sample from a zero state")
    return samples


def _one_blas_thread(*packs: Packed) -> Any:
    """One BLAS thread for kernels that reach BLAS: their products are small, and threaded
    OpenBLAS on them is slow (measured: QR sweep at χ=96 9× slower with 2 threads on a busy
    2-core box). A cached controller costs ~13 µs per limit; ``threadpool_limits`` ~360 µs."""
    if max(p.max_bond for p in packs) < _THREAD_LIMIT_FROM_BOND:
        return contextlib.nullcontext()
    return blas_threads(1)  # shared with the sweeps: safe across threads


def _compiled() -> types.SimpleNamespace:
    """The kernels, compiled on first call (and cached on disk by numba per signature)."""
    with _compile_lock:
        if "kernels" not in _state:
            _state["kernels"] = compile_kernels()
    return _state["kernels"]
