"""Array-library dispatch: the namespace of the inputs, host transfers and LAPACK wrappers.

Every backend difference lives here; algorithms never test for a library. Optional frameworks
are never imported by this module: array-api-compat recognises their arrays by type.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from typing import Any

import array_api_compat as aac
import numpy as np

from . import _autodiff

Array = Any

_DTYPE_NAMES = ("float32", "float64", "complex64", "complex128")
_NUMPY_DTYPE_NAMES = {np.dtype(name): name for name in _DTYPE_NAMES}


# ----------------------------------------------------------------------------- namespaces


def namespace(*arrays: Array, name: str = "cores") -> Any:
    """The array namespace shared by ``arrays``; TypeError when libraries are mixed."""
    try:
        return aac.array_namespace(*arrays)
    except TypeError as exc:
        kinds = sorted({type(a).__module__.split(".")[0] + "." + type(a).__name__ for a in arrays})
        raise TypeError(
            f"{name}: arrays must come from one array library, got {', '.join(kinds)}"
        ) from exc


def is_numpy(xp: Any) -> bool:
    return aac.is_numpy_namespace(xp)


def device(x: Array) -> Any:
    return aac.device(x)


def to_numpy(x: Array) -> np.ndarray:
    """A host NumPy copy (or view) of ``x``, for small arrays such as singular values."""
    if aac.is_numpy_array(x):
        return x
    if aac.is_torch_array(x):
        return x.detach().cpu().numpy()
    if aac.is_cupy_array(x):
        return x.get()
    if aac.is_jax_array(x):
        return np.asarray(without_gradient(x))  # under jax.grad: the primal values
    return np.from_dlpack(x)


def from_numpy(x: np.ndarray, like: Array | None, xp: Any = None) -> Array:
    """Move a NumPy array to the library and device of ``like`` (NumPy when ``like`` is None)."""
    if like is None and xp is None:
        return x
    if xp is None:
        xp = namespace(like, name="like")
    if is_numpy(xp):
        return x
    if like is None:
        return xp.asarray(x)
    return xp.asarray(x, device=device(like))


def is_tracer(x: Array) -> bool:
    """True for abstract values (JAX tracers, torch fake/meta tensors): no values to check."""
    module = type(x).__module__
    if module.startswith("jax") and "Tracer" in type(x).__name__:
        return True
    if aac.is_torch_array(x):
        if getattr(x, "is_meta", False):
            return True
        return "Fake" in type(x).__name__ or "Functional" in type(x).__name__
    return False


def without_gradient(x: Array) -> Array:
    """``x`` as a constant for differentiation (torch ``detach``, JAX ``stop_gradient``).
    Under ``jax.grad``/``jvp`` outside ``jit`` that is the concrete primal value; a ``jit``
    tracer stays a tracer (and converting it raises JAX's TracerArrayConversionError)."""
    if aac.is_torch_array(x):
        return x.detach()
    if aac.is_jax_array(x):
        import jax  # optional dependency: only reached with a JAX array in hand

        return jax.lax.stop_gradient(x)
    return x


def has_values(x: Array) -> bool:
    """Whether ``x``'s values can be read: not an abstract tracer. A JAX differentiation
    tracer outside ``jit`` (``jax.grad``, ``jvp``) has its primal values, so it counts."""
    if not is_tracer(x):
        return True
    return aac.is_jax_array(x) and not is_tracer(without_gradient(x))


# ----------------------------------------------------------------------------- dtypes


def all_finite(arrays: Any) -> bool:
    """Whether every entry of every array is finite (traced JAX arrays count as finite)."""
    return all(is_tracer(a) or bool(namespace(a).all(namespace(a).isfinite(a))) for a in arrays)


def dtype_name(dtype: Any) -> str:
    """Canonical name ('float64', ...) of a dtype from any supported library."""
    if isinstance(dtype, np.dtype):  # the common case: a dictionary lookup
        name = _NUMPY_DTYPE_NAMES.get(dtype)
        if name is not None:
            return name
    if isinstance(dtype, type) and issubclass(dtype, np.generic):  # np.float64, the scalar type
        dtype = np.dtype(dtype)
    text = str(dtype).rsplit(".", 1)[-1]
    for name in _DTYPE_NAMES:
        if text == name or text == f"dtype('{name}')":
            return name
    raise TypeError(f"dtype: unsupported dtype {dtype!r}; use one of {', '.join(_DTYPE_NAMES)}")


def resolve_dtype(xp: Any, dtype: Any) -> Any:
    """A library dtype from a name or a dtype object; TypeError for anything unsupported."""
    name = dtype if isinstance(dtype, str) else dtype_name(dtype)
    if name not in _DTYPE_NAMES:
        raise TypeError(f"dtype: unsupported dtype {dtype!r}; use one of {', '.join(_DTYPE_NAMES)}")
    return getattr(xp, name)


def quiet() -> Any:
    """No NumPy warnings in a first attempt that is checked, and redone with rescaling when
    it over- or underflowed (a fresh context per call: errstate objects are not reentrant)."""
    return np.errstate(over="ignore", under="ignore", invalid="ignore")


def is_complex(dtype: Any) -> bool:
    return dtype_name(dtype).startswith("complex")


def eps(dtype: Any) -> float:
    """Machine epsilon of the (real part of the) dtype."""
    return float(np.finfo(np.dtype(dtype_name(dtype))).eps)


# ----------------------------------------------------------------------------- checks


def rng(seed: Any) -> np.random.Generator:
    """``numpy.random.default_rng(seed)``, with errors that name ``seed``."""
    try:
        return np.random.default_rng(seed)
    except TypeError as exc:
        raise TypeError(f"seed: {exc} (got {seed!r})") from exc
    except ValueError as exc:
        raise ValueError(f"seed: {exc} (got {seed!r})") from exc


# ----------------------------------------------------------------------------- linear algebra


def frob_sq(x: Array) -> float:
    """Squared Frobenius norm as a Python float (exact sum of |x|^2, no cancellation).

    A measurement (budgets, reports), never differentiated: on torch and under ``jax.grad``
    (whose tracers know their values) it is the float. On an abstract tracer (``jax.jit``)
    it stays a 0-d array of the tracer's library, so the value can flow on instead of being
    forced to the host.
    """
    xp = np if type(x) is np.ndarray else aac.array_namespace(x)  # no look-up for NumPy
    if xp is np or is_numpy(xp):
        flat = x.reshape(-1)
        return float(np.real(np.vdot(flat, flat)))
    total = xp.sum(xp.abs(x) ** 2)
    if not has_values(total):
        return total
    return float(to_numpy(total))


def conj_t(x: Array) -> Array:
    """Conjugate transpose of a matrix."""
    if type(x) is np.ndarray:  # the common case, without a namespace look-up
        return x.conj().T
    xp = aac.array_namespace(x)
    if is_numpy(xp):
        return x.conj().T
    t = xp.matrix_transpose(x)
    return xp.conj(t) if xp.isdtype(x.dtype, "complex floating") else t


def requires_grad(x: Array) -> bool:
    """Whether a gradient may flow through ``x``: a torch tensor that requires grad (with
    grad mode on) or a JAX tracer. NumPy arrays never do."""
    if isinstance(x, np.ndarray):
        return False
    if aac.is_torch_array(x):
        import torch  # optional dependency: only reached with a torch tensor in hand

        return bool(x.requires_grad) and torch.is_grad_enabled()
    return aac.is_jax_array(x) and is_tracer(x)


def svd(a: Array) -> tuple[Array, Array, Array]:
    """Thin SVD with the LAPACK fallback chain gesdd -> gesvd; LinAlgError when both fail.
    Differentiable inputs get the broadened backward of ``_autodiff`` (docs/autodiff.md)."""
    if requires_grad(a):
        return _autodiff.differentiable("svd", a)(a)
    xp = aac.array_namespace(a)
    if is_numpy(xp):
        import scipy.linalg as sla

        try:
            return sla.svd(a, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        except (np.linalg.LinAlgError, ValueError):
            return sla.svd(a, full_matrices=False, check_finite=False, lapack_driver="gesvd")
    return xp.linalg.svd(a, full_matrices=False)


def qr(a: Array) -> tuple[Array, Array]:
    """Thin Householder QR (differentiable inputs: a backward finite at rank deficiency)."""
    if requires_grad(a):
        return _autodiff.differentiable("qr", a)(a)
    xp = aac.array_namespace(a)
    if is_numpy(xp):
        import scipy.linalg as sla

        return sla.qr(a, mode="economic", check_finite=False)
    return xp.linalg.qr(a, mode="reduced")


def eigh(a: Array, *, overwrite: bool = False) -> tuple[Array, Array]:
    """Eigen-decomposition of a Hermitian matrix from its upper triangle, eigenvalues
    ascending; ``overwrite=True`` lets LAPACK use ``a`` (a temporary of the caller's) as
    workspace instead of copying it. On NumPy, LAPACK's divide and conquer (``evd``): never
    slower than MRRR (``evr``) here, 15–30 % faster at orders 128–256, and its vectors are
    orthonormal to ~m·ε (MRRR's, of clustered eigenvalues, to ~1e-12 only). Differentiable
    inputs get a broadened backward."""
    if requires_grad(a):
        return _autodiff.differentiable("eigh", a)(a)
    xp = aac.array_namespace(a)
    if is_numpy(xp):
        import scipy.linalg as sla

        return sla.eigh(a, lower=False, check_finite=False, driver="evd", overwrite_a=overwrite)
    return xp.linalg.eigh(a)


def gram_upper(a: Array) -> Array:
    """``a^H a``; on NumPy only the upper triangle is computed (BLAS syrk/herk, half the work,
    no copy for C- or F-ordered ``a``). Consumers must read the upper triangle only."""
    xp = aac.array_namespace(a)
    if not (is_numpy(xp) and a.ndim == 2):
        return conj_t(a) @ a
    if a.shape[1] < 64:  # OpenBLAS rank-k updates are slow for very few columns: GEMM wins
        return conj_t(a) @ a
    from scipy.linalg import blas

    complex_ = np.iscomplexobj(a)
    rank_k = blas.get_blas_funcs("herk" if complex_ else "syrk", (a,))
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        return rank_k(1.0, a, trans=2 if complex_ else 1, lower=0)
    # On the F-ordered view a.T, rank-k with trans=0 gives a^T a (conj(a^H a) when complex).
    gram = rank_k(1.0, a.T, trans=0, lower=0)
    return np.conj(gram) if complex_ else gram


def upper_times(r: Array, x: Array) -> Array:
    """``r @ x`` for an upper-triangular ``r`` (its lower triangle is not read on NumPy,
    where BLAS trmm does half a product's work); a C-ordered ``x`` gives a C-ordered result."""
    if not (isinstance(x, np.ndarray) and isinstance(r, np.ndarray) and x.ndim == 2):
        return r @ x
    from scipy.linalg import blas

    dtype = np.result_type(r, x)
    if dtype not in (np.float32, np.float64, np.complex64, np.complex128):
        return r @ x
    r, x = r.astype(dtype, copy=False), x.astype(dtype, copy=False)
    trmm = blas.get_blas_funcs("trmm", (r, x))
    if x.flags.c_contiguous:  # on the F-ordered view xᵀ: xᵀ·rᵀ = (r x)ᵀ, no copy either way
        return trmm(1.0, r, x.T, side=1, lower=0, trans_a=1).T
    return trmm(1.0, r, x, side=0, lower=0)


def times_small(x: Array, m: Array) -> Array:
    """``x @ m`` for a tall ``x`` and a small square ``m``, fast also when ``x`` is a
    transposed (F-ordered) view: then the product is formed as ``(m^H x^H)^H``."""
    if isinstance(x, np.ndarray) and x.flags.f_contiguous and not x.flags.c_contiguous:
        return conj_t(conj_t(m) @ conj_t(x))
    return x @ m


# Blocks of in-place and blocked products hold about this many entries (512 KiB of doubles).
BLOCK_ENTRIES = 2**16


def times_small_inplace(x: Array, m: Array) -> Array:
    """``x @ m`` written over ``x`` (a NumPy array the caller owns) block by block, so no
    second ``x``-sized array exists; other libraries, or read-only or non-contiguous
    arrays, get ``times_small``'s new array."""
    square = m.shape[0] == m.shape[1]
    if not (
        isinstance(x, np.ndarray) and square and x.flags.writeable
    ) or x.dtype != np.result_type(x, m):
        return times_small(x, m)
    if x.flags.c_contiguous:
        step = max(1, BLOCK_ENTRIES // max(x.shape[1], 1))
        for start in range(0, x.shape[0], step):
            x[start : start + step] = x[start : start + step] @ m
        return x
    if x.flags.f_contiguous:  # x = yᵀ for a C-ordered y: x m = (mᵀ y)ᵀ, by column blocks of y
        y, mt = x.T, m.T
        step = max(1, BLOCK_ENTRIES // max(y.shape[0], 1))
        for start in range(0, y.shape[1], step):
            y[:, start : start + step] = mt @ y[:, start : start + step]
        return x
    return times_small(x, m)


def cholesky_upper(g: Array) -> Array | None:
    """Upper Cholesky factor R (g = R^H R, only g's upper triangle is read), or None when g
    is not numerically positive definite or the library has no Cholesky."""
    xp = aac.array_namespace(g)
    if is_numpy(xp):
        from scipy.linalg import lapack

        r, info = lapack.get_lapack_funcs("potrf", (g,))(g, lower=0, clean=1, overwrite_a=0)
        return None if info != 0 else r
    if aac.is_torch_array(g):
        import torch

        lower, info = torch.linalg.cholesky_ex(g)
        return None if int(info) != 0 else conj_t(lower)
    if hasattr(xp, "linalg") and hasattr(xp.linalg, "cholesky"):
        try:
            return xp.linalg.cholesky(g, upper=True)
        except Exception:  # noqa: BLE001 - libraries differ in their LinAlgError types
            return None
    return None


def inv_upper(r: Array) -> Array:
    """Inverse of an upper-triangular matrix (LAPACK trtri on NumPy)."""
    xp = aac.array_namespace(r)
    if is_numpy(xp):
        from scipy.linalg import lapack

        inv, info = lapack.get_lapack_funcs("trtri", (r,))(r, lower=0)
        if info != 0:
            raise np.linalg.LinAlgError(f"singular triangular factor (trtri info {info})")
        return inv
    if aac.is_torch_array(r):
        import torch

        eye = torch.eye(r.shape[0], dtype=r.dtype, device=r.device)
        return torch.linalg.solve_triangular(r, eye, upper=True)
    return xp.linalg.inv(r)


SMALL_WORK_ENTRIES = 2**20


def sweep_threads(arrays) -> int | None:
    """BLAS thread limit for a sweep over ``arrays``: one thread when every array is small."""
    largest = max(math.prod(a.shape) for a in arrays)
    return small_work_threads(largest, aac.is_numpy_array(arrays[0]))


def small_work_threads(largest_entries: int, on_numpy: bool) -> int | None:
    """One BLAS thread (NumPy only) when the largest matrix of a sweep is small, else None."""
    return 1 if on_numpy and largest_entries <= SMALL_WORK_ENTRIES else None


THIN_SIDE = 256


def split_threads(a: Array) -> int | None:
    """BLAS thread limit for factorising ``a``: one thread when its short side is at most
    256, where the work is thin products and small eigh/SVDs that a second thread slows
    down (measured on 2 cores: TT-SVD of 2^22 entries 0.24 s on one thread, 0.50 s on two)."""
    if not aac.is_numpy_array(a) or min(a.shape) > THIN_SIDE:
        return None
    return 1


_limit_lock = threading.Lock()
_limit_state: dict[str, Any] = {"depth": 0, "limiter": None}


@contextlib.contextmanager
def blas_threads(limit: int | None):
    """Limit BLAS threads for a block of small-matrix work (threads cost more than they give
    on 256×512 products, and far more when the other cores are busy). None: no change.

    The limit is process-wide, so blocks entered from several threads share one: the first
    to enter sets it and the last to leave restores the original. (Nested threadpoolctl
    limits from concurrent threads would restore in the wrong order and leave BLAS at one
    thread for good.) Every caller asks for one thread, so the shared limit is the same.
    """
    if limit is None:
        yield
        return
    with _limit_lock:
        if _limit_state["depth"] == 0:
            _release_openblas_control()
            _limit_state["limiter"] = _threadpool_controller().limit(limits=limit, user_api="blas")
        _limit_state["depth"] += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_state["depth"] -= 1
            if _limit_state["depth"] == 0:
                # The last block to leave may run on another thread than the first.
                _release_openblas_control()
                _limit_state["limiter"].restore_original_limits()
                _release_openblas_control()
                _limit_state["limiter"] = None


def _release_openblas_control() -> None:
    """Let this thread set OpenBLAS's thread count, and no thread keep that right after.

    threadpoolctl (3.6 and later) lets only one "controlling" thread change OpenBLAS's
    process-wide pool, the first to set it; any other thread's set is silently ignored. The
    shared limit above is set by the first block to enter and restored by the last to leave,
    often two different threads, so without this the restore is ignored and BLAS stays at
    one thread for good (seen with OpenBLAS 0.3.31 and threadpoolctl 3.8).
    """
    import threadpoolctl

    controller = getattr(threadpoolctl, "OpenBLASController", None)
    if controller is not None and hasattr(controller, "clear_controlling_thread"):
        controller.clear_controlling_thread(force=True)


@functools.lru_cache(maxsize=1)
def _threadpool_controller():
    """One threadpoolctl controller (finding the BLAS libraries costs ~1 ms; a cached
    controller's limit ~13 µs). SciPy is loaded first: only loaded libraries are found."""
    import scipy.linalg  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
