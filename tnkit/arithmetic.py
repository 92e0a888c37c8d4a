"""Exact arithmetic on the cores of trains: direct sums, scaling, conjugation, products.

Pure functions on tuples of cores, the work behind ``+``, ``*``, ``@``, ``.T`` and
``trace()``; they never truncate, and the TensorTrain methods wrap their results.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _backend as backend
from ._einsum import contract
from ._scaling import pull_power_of_two

Cores = tuple


def direct_sum(ca: Cores, cb: Cores) -> Cores:
    """Cores of ``a + b`` from fused 3-leg cores of the same dims: bond dims add.

    Example:
        >>> import numpy as np
        >>> [c.shape for c in direct_sum((np.ones((1, 2, 1)),) * 2, (np.ones((1, 2, 1)),) * 2)]
        [(1, 2, 2), (2, 2, 1)]
    """
    xp = backend.namespace(ca[0])
    n = len(ca)
    if n == 1:
        return (ca[0] + cb[0],)
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
    return tuple(cores)


def _zeros(xp: Any, shape: tuple[int, ...], like: Any) -> Any:
    return xp.zeros(shape, dtype=like.dtype, device=backend.device(like))


def check_factor(factor: Any) -> Any:
    """A finite Python/NumPy scalar (not a bool), else TypeError/ValueError naming ``factor``."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float, complex, np.number)):
        raise TypeError(f"factor: expected a Python or NumPy scalar, got {type(factor).__name__}")
    if not math.isfinite(abs(complex(factor))):
        raise ValueError(f"factor: must be finite, got {factor}")
    if isinstance(factor, (complex, np.complexfloating)) and complex(factor).imag == 0:
        return complex(factor).real
    return factor


def scaled(cores: Cores, site: int, factor: Any) -> tuple[Cores, int]:
    """``(cores, shift)`` of ``factor`` times the train of ``cores``: ``cores[site]`` takes
    the factor, or only its mantissa where the core cannot hold it (then the train is
    ``2**shift`` times the new cores, exact). A complex factor makes real cores complex
    (complex64 from float32), as NumPy promotes.

    Example:
        >>> import numpy as np
        >>> new, shift = scaled((np.ones((1, 2, 1)),), 0, 3)
        >>> new[0].ravel(), shift
        (array([3., 3.]), 0)
        >>> scaled((np.ones((1, 2, 1)),), 0, 1e-310)[1]   # a subnormal factor: the exponent
        -1029
        >>> scaled((np.ones((1, 2, 1)),), 0, 1j)[0][0].dtype
        dtype('complex128')
    """
    factor = check_factor(factor)
    xp = backend.namespace(cores[0])
    if isinstance(factor, (complex, np.complexfloating)) and not backend.is_complex(cores[0].dtype):
        dtype = xp.complex64 if backend.dtype_name(cores[0].dtype) == "float32" else xp.complex128
        cores = tuple(xp.astype(c, dtype) for c in cores)
    cores = list(cores)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # checked next
        core = cores[site] * factor
    if factor == 0 or not backend.has_values(core) or _holds(xp, core, cores[site]):
        cores[site] = core
        return tuple(cores), 0
    # The core cannot hold the product: it takes the factor's mantissa, then gives every
    # power of two of its own to the scale, so the cores stay of order one.
    mantissa, shift = math.frexp(abs(factor))
    cores[site], own = pull_power_of_two(cores[site] * (factor / abs(factor) * mantissa))
    return tuple(cores), shift + own


def _holds(xp: Any, scaled_core: Any, core: Any) -> bool:
    """Whether a scaled core kept its values: finite, and no entry pushed below the normal
    range (flushed to zero, or a subnormal that lost digits)."""
    if not bool(xp.all(xp.isfinite(scaled_core))):
        return False
    tiny = float(np.finfo(np.dtype(backend.dtype_name(core.dtype))).tiny)
    return bool(xp.all((xp.abs(scaled_core) >= tiny) | (xp.abs(core) < tiny)))


def conjugated(cores: Cores) -> Cores:
    """Every core conjugated (the same cores for a real dtype)."""
    if not backend.is_complex(cores[0].dtype):
        return cores
    xp = backend.namespace(cores[0])
    return tuple(xp.conj(c) for c in cores)


def product(operator: Cores, cores: Cores) -> Cores:
    """Cores of ``O @ T`` for MPO cores ``(Dl, s, t, Dr)`` and MPS (3-leg) or MPO (4-leg)
    cores ``T`` (bond dims multiply).

    Example:
        >>> import numpy as np
        >>> eye = (np.eye(2).reshape(1, 2, 2, 1),) * 2
        >>> [c.shape for c in product(eye, (np.ones((1, 2, 3)), np.ones((3, 2, 1))))]
        [(1, 2, 3), (3, 2, 1)]
    """
    xp = backend.namespace(operator[0])
    result = []
    for co, ct in zip(operator, cores, strict=True):
        dlo, so, _, dro = co.shape
        if ct.ndim == 3:
            dlt, _, drt = ct.shape
            c = contract("astb,xty->axsby", co, ct)
            result.append(xp.reshape(c, (dlo * dlt, so, dro * drt)))
        else:
            dlt, _, ut, drt = ct.shape
            c = contract("astb,xtuy->axsuby", co, ct)
            result.append(xp.reshape(c, (dlo * dlt, so, ut, dro * drt)))
    return tuple(result)


def transposed(operator: Cores) -> Cores:
    """MPO cores with the out and in legs swapped."""
    xp = backend.namespace(operator[0])
    return tuple(xp.permute_dims(c, (0, 2, 1, 3)) for c in operator)


def trace(operator: Cores) -> Any:
    """Trace of the operator of square MPO cores, a 0-d array of their library.

    Example:
        >>> import numpy as np
        >>> float(trace((np.eye(3).reshape(1, 3, 3, 1),) * 2))
        9.0
    """
    xp = backend.namespace(operator[0])
    env = None
    for c in operator:
        d = c.shape[1]
        eye = xp.reshape(xp.eye(d, dtype=c.dtype, device=backend.device(c)), (d, d))
        m = contract("asub,su->ab", c, eye)
        env = m if env is None else env @ m
    return env[0, 0]


def contract_chain(cores: Cores) -> Any:
    """Every fused core ``(Dl, p, Dr)`` contracted left to right: shape ``(Dl_0, p_0, …,
    p_{L-1}, Dr_{L-1})``.

    Example:
        >>> import numpy as np
        >>> contract_chain((np.ones((1, 2, 3)), np.ones((3, 2, 1)))).shape
        (1, 2, 2, 1)
    """
    xp = backend.namespace(cores[0])
    result = cores[0]
    for core in cores[1:]:
        rows = result.shape[0] * math.prod(result.shape[1:-1])
        merged = xp.reshape(result, (rows, result.shape[-1])) @ xp.reshape(
            core, (core.shape[0], -1)
        )
        result = xp.reshape(merged, (*result.shape[:-1], core.shape[1], core.shape[2]))
    return result
