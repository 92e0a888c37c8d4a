"""Canonical forms: QR sweeps that move the orthogonality centre, and checks of the result.

Pure functions on tuples of 3-leg cores ``(Dl, p, Dr)`` (an MPO core is passed with its two
physical legs fused); they never truncate and never see the TensorTrain class.
"""

from __future__ import annotations

import math

import array_api_compat as aac
import numpy as np

from . import _backend as backend
from ._scaling import pull_power_of_two
from .linalg import orthonormalize, sweep_orthonormalizer

_LN2 = math.log(2.0)

Cores = tuple


def move_centre(cores: Cores, centre: int | None, target: int) -> Cores:
    """Cores in mixed-canonical form about ``target``, sweeping only what ``centre`` needs.

    ``centre`` is the current orthogonality centre (None: not canonical). Bonds may shrink
    where a thin QR shows they were larger than the rank (an exact operation).
    """
    last = len(cores) - 1
    with backend.blas_threads(backend.sweep_threads(cores)):
        if centre is None:
            cores = left_sweep(cores, 0, target)
            return right_sweep(cores, last, target)
        if target >= centre:
            return left_sweep(cores, centre, target)
        return right_sweep(cores, centre, target)


def move_centre_scaled(cores: Cores, centre: int | None, target: int) -> tuple[Cores, int]:
    """``move_centre`` for trains whose norm leaves the dtype's range: every core is divided by
    a power of two before its QR (exact), so no Gram matrix or R factor over- or underflows.

    Returns ``(cores, exponent)``: the train is ``2**exponent`` times the new cores, whose
    centre core has its largest entry in [0.5, 1).
    """
    last = len(cores) - 1
    with backend.blas_threads(backend.sweep_threads(cores)):
        if centre is None:
            cores, left = left_sweep_scaled(cores, 0, target)
            cores, right = right_sweep_scaled(cores, last, target)
            exponent = left + right
        elif target >= centre:
            cores, exponent = left_sweep_scaled(cores, centre, target)
        else:
            cores, exponent = right_sweep_scaled(cores, centre, target)
    cores = list(cores)
    cores[target], shift = pull_power_of_two(cores[target])
    return tuple(cores), exponent + shift


def left_sweep_scaled(cores: Cores, start: int, stop: int) -> tuple[Cores, int]:
    """``left_sweep`` pulling a power of two out of each core first: ``(cores, exponent)``."""
    cores, exponent = list(cores), 0
    for k in range(start, stop):
        cores[k], shift = pull_power_of_two(cores[k])
        exponent += shift
        cores[k : k + 2] = left_sweep(cores[k : k + 2], 0, 1)
    return tuple(cores), exponent


def right_sweep_scaled(cores: Cores, start: int, stop: int) -> tuple[Cores, int]:
    """``right_sweep`` pulling a power of two out of each core first: ``(cores, exponent)``."""
    cores, exponent = list(cores), 0
    for k in range(start, stop, -1):
        cores[k], shift = pull_power_of_two(cores[k])
        exponent += shift
        cores[k - 1 : k + 1] = right_sweep(cores[k - 1 : k + 1], 1, 0)
    return tuple(cores), exponent


def left_sweep(cores: Cores, start: int, stop: int) -> Cores:
    """Left-orthonormalise sites ``start .. stop-1``, pushing the remainder into ``stop``."""
    cores = list(cores)
    orthonormalize = sweep_orthonormalizer()
    for k in range(start, stop):
        dl, p, dr = cores[k].shape
        q, r = orthonormalize(reshape(cores[k], (dl * p, dr)))
        cores[k] = reshape(q, (dl, p, q.shape[1]))
        cores[k + 1] = absorb_left(r, cores[k + 1])
    return tuple(cores)


def right_sweep(cores: Cores, start: int, stop: int) -> Cores:
    """Right-orthonormalise sites ``start`` down to ``stop+1``, pushing into ``stop``."""
    cores = list(cores)
    orthonormalize = sweep_orthonormalizer()
    for k in range(start, stop, -1):
        dl, p, dr = cores[k].shape
        q, r = orthonormalize(backend.conj_t(reshape(cores[k], (dl, p * dr))))
        cores[k] = reshape(backend.conj_t(q), (q.shape[1], p, dr))
        cores[k - 1] = absorb_right(cores[k - 1], backend.conj_t(r))
    return tuple(cores)


def is_canonical(cores: Cores, centre: int, tol: float) -> bool:
    """Whether sites left of ``centre`` are left-isometries and those right of it right ones."""
    for k, core in enumerate(cores):
        if k == centre:
            continue
        dl, p, dr = core.shape
        if k < centre:
            mat = reshape(core, (dl * p, dr))
            gram = backend.conj_t(mat) @ mat
        else:
            mat = reshape(core, (dl, p * dr))
            gram = mat @ backend.conj_t(mat)
        deviation = np.max(np.abs(backend.to_numpy(gram) - np.eye(gram.shape[0])))
        if not deviation <= tol:
            return False
    return True


def reshape(x, shape):
    """``x`` reshaped in its own library's namespace."""
    if type(x) is np.ndarray:  # the common case, without a namespace look-up
        return x.reshape(shape)
    xp = aac.array_namespace(x)
    return xp.reshape(x, shape)


def absorb_left(r, core):
    """``r @ core`` over the left bond of a 3-leg core."""
    dl, p, dr = core.shape
    return reshape(r @ reshape(core, (dl, p * dr)), (r.shape[0], p, dr))


def absorb_right(core, l):
    """``core @ l`` over the right bond of a 3-leg core."""
    dl, p, dr = core.shape
    return reshape(reshape(core, (dl * p, dr)) @ l, (dl, p, l.shape[1]))


def log_norm(cores: Cores) -> float:
    """``log ‖x‖`` (natural log) of the train, exact also when ‖x‖ leaves the double range.

    A left QR sweep that divides every carried factor by its norm and adds the logs; each
    norm is taken after a power of two is pulled out, so that no square under- or
    overflows (entries of 1e-170 square to zero).
    """
    cores = list(cores)
    total = 0.0
    for k in range(len(cores) - 1):
        dl, p, dr = cores[k].shape
        _, r = orthonormalize(reshape(cores[k], (dl * p, dr)))
        r, shift = pull_power_of_two(r)
        scale = backend.frob_sq(r) ** 0.5
        if scale == 0.0:
            return -math.inf
        total += math.log(scale) + shift * _LN2
        cores[k + 1] = absorb_left(r / scale, cores[k + 1])
    last, shift = pull_power_of_two(cores[-1])
    norm = backend.frob_sq(last) ** 0.5
    return total + (math.log(norm) + shift * _LN2 if norm > 0 else -math.inf)
