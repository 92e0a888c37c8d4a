"""Contractions of trains: overlaps, norms, distances and expectation values.

Pure functions over MPS and MPO objects (alike through fused physical legs); nothing here
truncates (truncated application lives in ``apply``) and sums and products are methods.
"""

from __future__ import annotations

import cmath
import math
from typing import Any

import numpy as np

from . import _backend as backend
from . import _kernels
from ._einsum import contract
from ._scaling import pull_power_of_two, times_pow2
from .mpo import MPO
from .mps import MPS
from .tensortrain import TensorTrain, check_compatible

_LN2 = math.log(2.0)
# Sites between two rescalings of a sweep's environment (exact powers of two).
_RESCALE_EVERY = 8

__all__ = ["inner", "expectation", "distance", "log_norm"]


# ---------------------------------------------------------------------- overlaps


def inner(a: Any, b: Any, *, log: bool = False) -> Any:
    """⟨a, b⟩ = Σ conj(a)·b, conjugate-linear in ``a`` (Frobenius product for MPOs).

    Returns a 0-d array of the trains' library (a NumPy scalar for NumPy trains): the value
    where its dtype holds it, ``inf``/0 where it does not. ``log=True`` returns the natural
    log of the overlap instead, exact at any size (a complex log for negative or complex
    overlaps; -inf for 0). One transfer-matrix sweep, two matrix products per site, the
    environment rescaled by a power of two at every site.

    Example:
        >>> import math, numpy as np, tnkit as tn
        >>> a, b = tn.MPS.random([2] * 6, 3, seed=0), tn.MPS.random([2] * 6, 3, seed=1)
        >>> bool(np.isclose(tn.inner(a, b), np.vdot(a.to_dense(), b.to_dense())))
        True
        >>> big = tn.MPS([np.full((1, 2, 1), 2.0)] * 2000)   # ⟨big, big⟩ = 8**2000
        >>> float(tn.inner(big, big)), round(tn.inner(big, big, log=True) / math.log(8), 6)
        (inf, 2000.0)
    """
    mantissa, exponent = _overlap_parts(a, b)
    exponent += a.scale_exponent + b.scale_exponent
    return _log(mantissa, exponent) if log else _scaled(mantissa, exponent)


def _log(mantissa: Any, exponent: int) -> Any:
    """log(mantissa · 2**exponent): real for a positive real mantissa, else complex."""
    if isinstance(mantissa, np.generic):
        value = complex(mantissa)
        if value == 0:
            return -math.inf
        log = cmath.log(value) if value.imag or value.real < 0 else math.log(value.real)
        return log + exponent * _LN2
    xp = backend.namespace(mantissa)
    return xp.log(mantissa) + exponent * _LN2


def _overlap_parts(a: Any, b: Any) -> tuple[Any, int]:
    """⟨a, b⟩ of the cores alone as ``(mantissa, exponent)``: the environment is rescaled
    by a power of two on the way (exact), so no train's size over- or underflows it."""
    packs = _kernels.kernel_packs(a, b)
    if packs is not None:
        return _kernels.overlap_parts(*packs)
    check_compatible(a, b, "inner")
    xp = a.xp
    pairs = list(zip(a._fused(), b._fused(), strict=True))
    return _sweep(lambda env, pair: _transfer(xp, env, *pair), None, pairs)


def _sweep(step: Any, env: Any, sites: list) -> tuple[Any, int]:
    """Fold ``step`` over the sites with the environment rescaled every ``_RESCALE_EVERY``
    sites (a host max costs ~5% of a χ=128 transfer), or at every site when that lost the
    value (over- or underflow between two rescalings): ``(env[0, ...], exponent)``."""
    for every in (_RESCALE_EVERY, 1):
        current, exponent = env, 0
        for k, site in enumerate(sites):
            current = step(current, site)
            if k % every == every - 1 or k == len(sites) - 1:
                current, shift = _rescaled(current)
                exponent += shift
        value = current[(0,) * current.ndim]
        if not backend.has_values(value) or every == 1:
            return value, exponent
        number = complex(backend.to_numpy(value))
        if number != 0 and cmath.isfinite(number):
            return value, exponent
    raise AssertionError("unreachable: the last pass returns")


def _rescaled(env: Any) -> tuple[Any, int]:
    """``(env / 2**shift, shift)`` with the largest entry in [0.5, 1) (jit tracers: unchanged)."""
    return pull_power_of_two(env) if backend.has_values(env) else (env, 0)


def _scaled(value: Any, exponent: int) -> Any:
    """A 0-d value times 2**exponent (inf or 0 where its dtype cannot hold it)."""
    if not exponent:
        return value
    if isinstance(value, np.generic):
        return _kernels.ldexp_scalar(value, exponent)
    return times_pow2(value, exponent)


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
    value, exponent = _expectation_parts(m, o)
    exponent += o.scale_exponent
    if not normalize:
        return _scaled(value, exponent + 2 * m.scale_exponent)
    norm_sq, norm_exponent = _overlap_parts(m, m)  # the state's own scale cancels
    return _scaled(value / nonzero_norm_sq(norm_sq), exponent - norm_exponent)


def _expectation_parts(m: Any, o: Any) -> tuple[Any, int]:
    """⟨m|o|m⟩ of the cores alone as ``(mantissa, exponent)``, as ``_overlap_parts``."""
    packs = _kernels.kernel_packs(m, o, operator=True)
    if packs is not None:
        return _kernels.expectation_parts(*packs)
    if o.in_dims != m.phys_dims or o.out_dims != m.phys_dims:
        raise ValueError(
            f"expectation: operator dims out {o.out_dims} / in {o.in_dims} do not match "
            f"the state's phys_dims {m.phys_dims}"
        )
    xp = m.xp

    def step(env: Any, pair: tuple) -> Any:
        cm, co = pair
        bra = xp.conj(cm) if backend.is_complex(cm.dtype) else cm
        return contract("awb,asc,wstv,btd->cvd", env, bra, co, cm)

    start = xp.ones((1, 1, 1), dtype=m.dtype)
    return _sweep(step, start, list(zip(m._fused(), o._arrays(), strict=True)))


def nonzero_norm_sq(norm_sq: Any) -> Any:
    """``norm_sq`` of a state being normalised, or a ValueError for the zero state (whose
    expectation values are undefined: 0/0)."""
    if backend.has_values(norm_sq) and complex(backend.to_numpy(norm_sq)) == 0:
        raise ValueError("m: the state is zero, so normalize=True is undefined (0/0)")
    return norm_sq
