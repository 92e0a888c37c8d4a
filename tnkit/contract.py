"""Contractions of trains: overlaps, norms, distances and expectation values.

Pure functions over MPS and MPO objects (alike through fused physical legs); nothing here
truncates (truncated application lives in ``apply``) and sums and products are methods.
"""

from __future__ import annotations

from typing import Any

from . import _backend as backend
from . import _kernels
from ._einsum import contract
from .mpo import MPO
from .mps import MPS
from .tensortrain import TensorTrain, check_compatible

__all__ = ["inner", "expectation", "distance", "log_norm"]


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
    if not isinstance(t, TensorTrain):
        raise TypeError(f"t: expected an MPS or MPO, got {type(t).__name__}")
    return t.log_norm()


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
    return (a - b).norm()


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
        value = value / nonzero_norm_sq(inner(m, m))
    return value


def nonzero_norm_sq(norm_sq: Any) -> Any:
    """``norm_sq`` of a state being normalised, or a ValueError for the zero state (whose
    expectation values are undefined: 0/0)."""
    if not backend.is_tracer(norm_sq) and complex(backend.to_numpy(norm_sq)) == 0:
        raise ValueError("m: the state is zero, so normalize=True is undefined (0/0)")
    return norm_sq
