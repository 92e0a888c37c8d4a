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


def check_factor(factor: Any, dtype: Any) -> Any:
    """A finite Python/NumPy scalar that keeps ``dtype`` (a real complex is made real)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float, complex, np.number)):
        raise TypeError(f"factor: expected a Python or NumPy scalar, got {type(factor).__name__}")
    if not math.isfinite(abs(complex(factor))):
        raise ValueError(f"factor: must be finite, got {factor}")
    if isinstance(factor, (complex, np.complexfloating)) and not backend.is_complex(dtype):
        if complex(factor).imag != 0:
            raise TypeError(
                f"factor: complex {factor} would change the dtype {backend.dtype_name(dtype)}"
            )
        factor = complex(factor).real
    return factor


def scaled(cores: Cores, site: int, factor: Any) -> Cores:
    """Cores with ``cores[site]`` times ``factor`` (checked); ValueError where it overflows.

    Example:
        >>> import numpy as np
        >>> scaled((np.ones((1, 2, 1)),), 0, 3)[0].ravel()
        array([3., 3.])
    """
    factor = check_factor(factor, cores[0].dtype)
    cores = list(cores)
    cores[site] = cores[site] * factor
    xp = backend.namespace(cores[site])
    if not backend.is_tracer(cores[site]) and not bool(xp.all(xp.isfinite(cores[site]))):
        raise ValueError(
            f"factor: {factor} times the train overflows {backend.dtype_name(cores[0].dtype)} "
            "(scale the train in steps spread over its cores, or use a wider dtype)"
        )
    return tuple(cores)


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
