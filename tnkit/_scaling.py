"""Exact scaling by powers of two: the one place where trains and tensors are rescaled.

Multiplying by 2**k only shifts exponents, so every function here is exact (no rounding)
for any dtype, as long as the result stays in range; nothing here decides *when* to rescale.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _backend as backend

# The largest single step each dtype's factor 2.0**step can take as a weak Python scalar
# (it is cast to the array's dtype: float32 holds up to 2**127, float64 up to 2**1023).
_STEP = {"float32": 96, "complex64": 96, "float64": 960, "complex128": 960}


def ldexp(value: float, exponent: int) -> float:
    """``value · 2**exponent`` as a Python float, ±inf where it leaves the double range.

    Example:
        >>> ldexp(3.0, 2), ldexp(1.0, 5000)
        (12.0, inf)
    """
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.copysign(math.inf, value)


def exp_saturating(log_value: float) -> float:
    """exp of a float log: ``inf`` above the double range, ``0.0`` below it (no error).

    Example:
        >>> exp_saturating(0.0), exp_saturating(1e4), exp_saturating(-1e4)
        (1.0, inf, 0.0)
    """
    return math.exp(log_value) if log_value < 709.78 else math.inf


def times_pow2(a: Any, exponent: int) -> Any:
    """``a · 2**exponent`` for an array of any library, exact.

    The factor is applied in steps the array's dtype can hold (a float32 array cannot be
    multiplied by the scalar 2.0**200 in one go); all steps have the same sign, so no
    intermediate value leaves the range between ``a`` and the result. Entries beyond the
    dtype's range become inf or 0, without a warning (callers check what they need).

    Example:
        >>> import numpy as np
        >>> times_pow2(np.ones(2, dtype=np.float32), -140).dtype, times_pow2(np.ones(1), 3)
        (dtype('float32'), array([8.]))
    """
    largest = _STEP.get(backend.dtype_name(a.dtype), 96)
    with np.errstate(over="ignore", under="ignore"):  # saturates to inf/0 like ldexp
        while exponent:
            step = max(-largest, min(largest, exponent))
            a = a * float(math.ldexp(1.0, step))
            exponent -= step
    return a


def binary_exponent(value: float) -> int:
    """k with ``value = m·2**k``, 0.5 <= |m| < 1 (0 for zero, inf and NaN).

    Example:
        >>> binary_exponent(1.0), binary_exponent(0.75), binary_exponent(0.0)
        (1, 0, 0)
    """
    if value == 0.0 or not math.isfinite(value):
        return 0
    return math.frexp(value)[1]


def exponent_for(largest: float, dtype: Any) -> int:
    """The exponent by which to rescale an array whose largest |entry| is ``largest``.

    0 for entries of ordinary size (they are kept bit for bit), else the binary exponent of
    ``largest``: once it passes a quarter of the dtype's exponent range, squares (norms,
    Gram matrices, discarded weights) would over- or underflow.

    Example:
        >>> import numpy as np
        >>> double = np.dtype("float64")
        >>> exponent_for(1e3, double), exponent_for(1e300, double), exponent_for(1e-300, double)
        (0, 997, -996)
    """
    exponent = binary_exponent(largest)
    limit = np.finfo(np.dtype(backend.dtype_name(dtype))).maxexp // 4
    return exponent if abs(exponent) > limit else 0


def largest_entry(a: Any) -> float:
    """max |a| as a Python float (0 for an empty array), reduced where the array lives (one
    number comes to the host)."""
    if not math.prod(a.shape):
        return 0.0
    xp = backend.namespace(a)
    return float(backend.to_numpy(xp.max(xp.abs(a))))


def over_largest(core: Any) -> tuple[Any, Any]:
    """``(core / m, m)``: m the largest |entry| of ``core`` as a 0-d array of its library,
    held constant for differentiation (core / m is then differentiated as core times a
    constant); zeros are divided by 1. Squares of core / m neither under- nor overflow.

    Example:
        >>> import numpy as np
        >>> scaled, largest = over_largest(np.array([3e-200, -4e-200]))
        >>> scaled.tolist(), float(largest)
        ([0.75, -1.0], 4e-200)
    """
    xp = backend.namespace(core)
    largest = backend.without_gradient(xp.max(xp.abs(core)))
    return core / xp.where(largest > 0, largest, xp.ones_like(largest)), largest


def centre_norm(core: Any, exponent: int, *, log: bool = False) -> Any:
    """‖core‖·2**exponent (``log=True``: its natural log) as a 0-d array of ``core``'s
    library, differentiable, and exact where ‖core‖² leaves the float range: the largest
    |entry| m is divided out first, ‖core‖ = m·(Σ|core/m|²)^½, with m a constant for
    differentiation (the value does not depend on it; through m, the gradient would divide
    by m², which underflows). The log is −inf for zeros.

    Example:
        >>> import numpy as np
        >>> core = np.array([3e-200, 4e-200])  # ‖core‖² underflows to 0
        >>> float(centre_norm(core, 0)), float(centre_norm(core, 1000, log=True))
        (5e-200, 234.2395998...)
    """
    xp = backend.namespace(core)
    scaled, largest = over_largest(core)
    squares = xp.sum(xp.abs(scaled) ** 2)
    if log:
        return xp.log(largest) + 0.5 * xp.log(squares) + exponent * math.log(2.0)
    value = largest * xp.sqrt(squares)
    return times_pow2(value, exponent) if exponent else value


def pull_power_of_two(core: Any) -> tuple[Any, int]:
    """``(core / 2**shift, shift)`` with the largest |entry| in [0.5, 1); shift 0 for zeros.

    Example:
        >>> import numpy as np
        >>> scaled, shift = pull_power_of_two(np.array([3.0, -12.0]))
        >>> scaled, shift
        (array([ 0.1875, -0.75  ]), 4)
    """
    shift = binary_exponent(largest_entry(core))
    return (times_pow2(core, -shift), shift) if shift else (core, 0)


def spread_power_of_two(cores: tuple, exponent: int) -> tuple:
    """Multiply a train by 2**exponent, spread as evenly as possible over all its cores.

    Each core gets 2**(k·e//n)-style shares that add up to ``exponent`` exactly, so a scale
    no single core can hold fits the train.

    Example:
        >>> import numpy as np
        >>> cores = spread_power_of_two((np.ones(1), np.ones(1), np.ones(1)), 4)
        >>> [float(c[0]) for c in cores]
        [2.0, 2.0, 4.0]
    """
    n = len(cores)
    shifts = [exponent * (k + 1) // n - exponent * k // n for k in range(n)]
    return tuple(times_pow2(c, s) if s else c for c, s in zip(cores, shifts, strict=True))
