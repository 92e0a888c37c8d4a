"""Contractions and arithmetic of trains: overlaps, expectations, exact products, sums.

Pure functions over TensorTrain objects (MPS and MPO alike through fused physical legs);
nothing here truncates — truncated application lives in ``apply.py``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _backend as backend
from . import _kernels
from ._einsum import contract
from .canonical import _absorb_left
from .linalg import orthonormalize

__all__ = ["inner", "expectation", "distance", "log_norm"]


# ---------------------------------------------------------------------- checks


def check_compatible(a: Any, b: Any, what: str) -> None:
    """Same class and same physical dims, else ValueError/TypeError naming the dims."""
    from .tensortrain import TensorTrain

    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, TensorTrain):
            raise TypeError(f"{what}: {name} must be an MPS or MPO, got {type(t).__name__}")
    if type(a) is not type(b):
        raise ValueError(
            f"{what}: cannot combine an {type(a).__name__} with an {type(b).__name__} "
            f"(phys_dims {a.phys_dims} and {b.phys_dims})"
        )
    if a.phys_dims != b.phys_dims:
        raise ValueError(f"{what}: phys_dims differ: {a.phys_dims} and {b.phys_dims}")
    backend.namespace(a.cores[0], b.cores[0], name=what)


# ---------------------------------------------------------------------- overlaps


def inner(a: Any, b: Any) -> Any:
    """⟨a, b⟩ = Σ conj(a)·b, conjugate-linear in ``a`` (Frobenius product for MPOs).

    Returns a 0-d array of the trains' library (a NumPy scalar for NumPy trains). One
    transfer-matrix sweep, two matrix products per site.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> a, b = tn.MPS.random([2] * 6, 3, seed=0), tn.MPS.random([2] * 6, 3, seed=1)
        >>> bool(np.isclose(tn.inner(a, b), np.vdot(a.to_dense(), b.to_dense())))
        True
    """
    packs = _kernels.kernel_packs(a, b)
    if packs is not None:
        return _kernels.overlap(*packs)
    check_compatible(a, b, "inner")
    xp = a.xp
    env = None
    for ca, cb in zip(a._fused(), b._fused(), strict=True):
        env = _transfer(xp, env, ca, cb)
    return env[0, 0]


def _transfer(xp: Any, env: Any, ca: Any, cb: Any) -> Any:
    """E' = Σ_p conj(A_p)^T E B_p for 3-leg cores; ``env=None`` is the 1×1 identity."""
    dla, p, dra = ca.shape
    dlb, _, drb = cb.shape
    right = cb if env is None else xp.reshape(env @ xp.reshape(cb, (dlb, p * drb)), (dla, p, drb))
    left = xp.reshape(ca, (dla * p, dra))
    if backend.is_complex(ca.dtype):
        left = xp.conj(left)
    return xp.matrix_transpose(left) @ xp.reshape(right, (dla * p, drb))


def log_norm(t: Any) -> float:
    """``log ‖t‖`` (natural log), exact also when ‖t‖ over- or underflows double precision.

    A left QR sweep that divides every carried factor by its norm and adds the logs.

    Example:
        >>> import math, numpy as np, tnkit as tn
        >>> big = tn.MPS([np.full((1, 2, 1), 2.0)] * 3000)   # norm (2·√2)^3000
        >>> round(big.log_norm() / math.log(2), 6)
        4500.0
    """
    if _kernels.applies(t._kernel_pack()):
        return _kernels.log_norm(t._kernel_pack())
    xp = t.xp
    cores = list(t._fused())
    total = 0.0
    for k in range(len(cores) - 1):
        dl, p, dr = cores[k].shape
        _, r = orthonormalize(xp.reshape(cores[k], (dl * p, dr)))
        scale = backend.frob_sq(r) ** 0.5
        if scale == 0.0:
            return -math.inf
        total += math.log(scale)
        cores[k + 1] = _absorb_left(r / scale, cores[k + 1])
    last = backend.frob_sq(cores[-1]) ** 0.5
    return total + (math.log(last) if last > 0 else -math.inf)


def distance(a: Any, b: Any) -> float:
    """‖a − b‖, accurate also when a ≈ b (no 2 − 2·Re⟨a, b⟩ cancellation).

    The difference is formed as a train (direct sum of cores) and its norm taken from the
    canonical form, so rounding is relative to the largest core, not to ‖a‖².

    Example:
        >>> import numpy as np, tnkit as tn
        >>> a = tn.MPS.random([2] * 8, 4, seed=0)
        >>> b = a + 1e-9 * tn.MPS.random([2] * 8, 4, seed=1)
        >>> d = tn.distance(a, b)
        >>> exact = 1e-9 * tn.MPS.random([2] * 8, 4, seed=1).norm()
        >>> bool(abs(d - exact) < 1e-3 * exact)
        True
    """
    check_compatible(a, b, "distance")
    return add(a, scale(b, -1.0)).norm()


# ---------------------------------------------------------------------- expectation


def expectation(m: Any, o: Any, *, normalize: bool = False) -> Any:
    """⟨m|o|m⟩ (divided by ⟨m|m⟩ if ``normalize``), without forming ``o @ m``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> m = tn.MPS.random([2] * 4, 3, seed=0)
        >>> o = tn.MPO.random([2] * 4, [2] * 4, 2, seed=1)
        >>> v = m.to_dense().ravel()
        >>> bool(np.isclose(tn.expectation(m, o), v @ o.to_matrix() @ v))
        True
    """
    from .mpo import MPO
    from .mps import MPS

    if not isinstance(m, MPS) or not isinstance(o, MPO):
        raise TypeError(
            f"expectation: expected (MPS, MPO), got ({type(m).__name__}, {type(o).__name__})"
        )
    packs = _kernels.kernel_packs(m, o, operator=True)
    if packs is not None:
        value = _kernels.expectation(*packs)
    else:
        if o.in_dims != m.phys_dims or o.out_dims != m.phys_dims:
            raise ValueError(
                f"expectation: operator dims out {o.out_dims} / in {o.in_dims} do not match "
                f"the state's phys_dims {m.phys_dims}"
            )
        xp = m.xp
        env = xp.ones((1, 1, 1), dtype=m.dtype)
        for cm, co in zip(m.cores, o.cores, strict=True):
            bra = xp.conj(cm) if backend.is_complex(cm.dtype) else cm
            env = contract("awb,asc,wstv,btd->cvd", env, bra, co, cm)
        value = env[0, 0, 0]
    if normalize:
        value = value / _nonzero(inner(m, m))
    return value


def _nonzero(norm_sq: Any) -> Any:
    """``norm_sq`` of a state being normalised, or a ValueError for the zero state (whose
    expectation values are undefined: 0/0)."""
    if not backend.is_tracer(norm_sq) and complex(backend.to_numpy(norm_sq)) == 0:
        raise ValueError("m: the state is zero, so normalize=True is undefined (0/0)")
    return norm_sq


# ---------------------------------------------------------------------- arithmetic


def add(a: Any, b: Any) -> Any:
    """``a + b`` as a direct sum of cores (bond dims add; the centre is lost)."""
    check_compatible(a, b, "add")
    xp = a.xp
    ca, cb = a._fused(), b._fused()
    n = len(ca)
    if a.dtype != b.dtype:
        raise TypeError(
            f"add: dtypes differ: {backend.dtype_name(a.dtype)} and {backend.dtype_name(b.dtype)}"
        )
    if n == 1:
        return a._evolve(a._unfused((ca[0] + cb[0],)), None, None)
    cores = []
    for k in range(n):
        x, y = ca[k], cb[k]
        if k == 0:
            cores.append(xp.concat([x, y], axis=2))
        elif k == n - 1:
            cores.append(xp.concat([x, y], axis=0))
        else:
            top = xp.concat([x, _zeros(xp, (x.shape[0], x.shape[1], y.shape[2]), x)], axis=2)
            bottom = xp.concat([_zeros(xp, (y.shape[0], y.shape[1], x.shape[2]), x), y], axis=2)
            cores.append(xp.concat([top, bottom], axis=0))
    return a._evolve(a._unfused(tuple(cores)), None, None)


def _zeros(xp: Any, shape: tuple[int, ...], like: Any) -> Any:
    return xp.zeros(shape, dtype=like.dtype, device=backend.device(like))


def scale(t: Any, factor: Any) -> Any:
    """``factor · t``: the centre core (or the first) is multiplied; the centre is kept."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float, complex, np.number)):
        raise TypeError(f"factor: expected a Python or NumPy scalar, got {type(factor).__name__}")
    if not math.isfinite(abs(complex(factor))):
        raise ValueError(f"factor: must be finite, got {factor}")
    if isinstance(factor, (complex, np.complexfloating)) and not backend.is_complex(t.dtype):
        if complex(factor).imag != 0:
            raise TypeError(
                f"factor: complex {factor} would change the dtype {backend.dtype_name(t.dtype)}"
            )
        factor = complex(factor).real
    site = 0 if t.centre is None else t.centre
    cores = list(t.cores)
    cores[site] = cores[site] * factor
    xp = t.xp
    if not backend.is_tracer(cores[site]) and not bool(xp.all(xp.isfinite(cores[site]))):
        raise ValueError(
            f"factor: {factor} times the train overflows {backend.dtype_name(t.dtype)} (scale the "
            "train in steps spread over its cores, or use a wider dtype)"
        )
    return t._evolve(tuple(cores), t.centre, None)


def conj(t: Any) -> Any:
    """Complex conjugate of every core (a no-op copy for real trains)."""
    xp = t.xp
    if not backend.is_complex(t.dtype):
        return t._evolve(t.cores, t.centre, None)
    return t._evolve(tuple(xp.conj(c) for c in t.cores), t.centre, None)


# ---------------------------------------------------------------------- products


def matmul(o: Any, t: Any) -> Any:
    """Exact ``o @ t`` for an MPO ``o`` and an MPS or MPO ``t`` (bond dims multiply)."""
    from .mpo import MPO
    from .mps import MPS

    if not isinstance(o, MPO) or not isinstance(t, (MPS, MPO)):
        raise TypeError(
            f"@: expected MPO @ MPS or MPO @ MPO, got {type(o).__name__} @ {type(t).__name__}"
        )
    dims = t.phys_dims if isinstance(t, MPS) else t.out_dims
    if o.in_dims != dims or len(o) != len(t):
        raise ValueError(
            f"@: operator in_dims {o.in_dims} do not match the right side's dims {dims}"
        )
    backend.namespace(o.cores[0], t.cores[0], name="@")
    xp = o.xp
    cores = []
    for co, ct in zip(o.cores, t.cores, strict=True):
        dlo, so, _, dro = co.shape
        if isinstance(t, MPS):
            dlt, _, drt = ct.shape
            c = contract("astb,xty->axsby", co, ct)
            cores.append(xp.reshape(c, (dlo * dlt, so, dro * drt)))
        else:
            dlt, _, ut, drt = ct.shape
            c = contract("astb,xtuy->axsuby", co, ct)
            cores.append(xp.reshape(c, (dlo * dlt, so, ut, dro * drt)))
    return type(t)._trusted(tuple(cores))


def transpose(o: Any) -> Any:
    """MPO transpose: out and in legs swap."""
    xp = o.xp
    return o._evolve(tuple(xp.permute_dims(c, (0, 2, 1, 3)) for c in o.cores), None, None)


def trace(o: Any) -> Any:
    """Trace of an MPO (square sites only)."""
    if o.out_dims != o.in_dims:
        raise ValueError(f"trace: needs out_dims == in_dims, got {o.out_dims} and {o.in_dims}")
    xp = o.xp
    env = None
    for c in o.cores:
        d = c.shape[1]
        eye = xp.reshape(xp.eye(d, dtype=c.dtype, device=backend.device(c)), (d, d))
        m = contract("asub,su->ab", c, eye)
        env = m if env is None else env @ m
    return env[0, 0]
