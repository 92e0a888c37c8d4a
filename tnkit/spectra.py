"""Schmidt spectra, entanglement entropies and perfect sampling from canonical cores.

Pure functions on fused 3-leg cores that the caller has already brought into the right
canonical form; they never canonicalise, and the TensorTrain/MPS methods wrap them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _backend as backend

Cores = tuple


def schmidt_values(centre_core: Any, *, left_bond: bool, length: int) -> np.ndarray:
    """Singular values of the centre core across its left (``left_bond``) or right bond, as a
    descending float64 host array zero-padded (or cut) to ``length``.

    Example:
        >>> import numpy as np
        >>> schmidt_values(np.diag([3.0, 4.0]).reshape(1, 2, 2), left_bond=False, length=3)
        array([4., 3., 0.])
    """
    dl, p, dr = centre_core.shape
    shape = (dl, p * dr) if left_bond else (dl * p, dr)
    xp = backend.namespace(centre_core)
    s = backend.to_numpy(backend.svd(xp.reshape(centre_core, shape))[1]).astype(np.float64)
    padded = np.zeros(length)
    padded[: min(length, s.size)] = s[:length]
    return padded


def entropy_of(s: np.ndarray, alpha: float) -> float:
    """Rényi-``alpha`` entropy (natural log) of p = s²/Σs²; ``alpha=1``: von Neumann.

    Example:
        >>> import math
        >>> math.isclose(entropy_of(np.array([1.0, 1.0]), 1), math.log(2))
        True
    """
    top = float(np.max(s)) if s.size else 0.0
    if not top > 0:
        raise ValueError("t: the train is zero, so its Schmidt distribution is undefined")
    weights = (s / top) ** 2  # scaled first: s² of a huge or tiny train would over/underflow
    p = weights / np.sum(weights)
    if alpha == 1:
        p = p[p > 0]
        return float(-np.sum(p * np.log(p)))
    if math.isinf(alpha):
        return float(-np.log(np.max(p)))
    return float(np.log(np.sum(p**alpha)) / (1 - alpha))


def bond_entropies(right_canonical: Cores, alpha: float) -> np.ndarray:
    """Entropies of all bonds of right-canonical cores: the centre moves left to right by the
    SVD taken at each bond (one sweep)."""
    xp = backend.namespace(right_canonical[0])
    cores = list(right_canonical)
    values = np.zeros(len(cores) - 1)
    with backend.blas_threads(backend.sweep_threads(cores)):
        for k in range(len(cores) - 1):
            dl, p, dr = cores[k].shape
            u, s, vh = backend.svd(xp.reshape(cores[k], (dl * p, dr)))
            values[k] = entropy_of(backend.to_numpy(s).astype(np.float64), alpha)
            rest = xp.astype(s, vh.dtype)[:, None] * vh
            nxt = cores[k + 1]
            cores[k + 1] = xp.reshape(
                rest @ xp.reshape(nxt, (nxt.shape[0], -1)), (rest.shape[0], *nxt.shape[1:])
            )
    return values


def draw_samples(right_canonical: Cores, uniforms: np.ndarray) -> np.ndarray:
    """Samples of |x|²/‖x‖² from right-canonical cores: row k of ``uniforms`` (L, n) are the
    draws at site k. Returns an (n, L) int64 host array.

    All samples go site by site together; each carries its left vector, and the conditional
    probabilities are the squared norms of the candidate vectors (the right part is an
    isometry). Cost O(n·L·χ²·d).
    """
    xp = backend.namespace(right_canonical[0])
    n = uniforms.shape[1]
    samples = np.zeros((n, len(right_canonical)), dtype=np.int64)
    dtype = backend.dtype_name(right_canonical[0].dtype)
    real = {"complex64": "float32", "complex128": "float64"}.get(dtype, dtype)
    left = None  # (n, Dl) left vectors of unit norm; None is the boundary vector 1
    for k, core in enumerate(right_canonical):
        dl, d, dr = core.shape
        flat = xp.reshape(core, (dl, d * dr))
        candidates = xp.reshape(flat if left is None else left @ flat, (-1, dr))
        weights = backend.to_numpy(xp.sum(xp.abs(candidates) ** 2, axis=1)).astype(np.float64)
        weights = np.broadcast_to(np.reshape(weights, (-1, d)), (n, d))
        totals = weights.sum(axis=1)
        if not np.all(totals > 0):
            raise ValueError("m: cannot sample from a zero state")
        outcome = _draw(uniforms[k], weights, totals)
        samples[:, k] = outcome
        rows = outcome if left is None else np.arange(n) * d + outcome
        scale = 1.0 / np.sqrt(weights[np.arange(n), outcome])
        picked = xp.take(candidates, backend.from_numpy(rows, core), axis=0)
        left = picked * backend.from_numpy(scale[:, None].astype(real), core)
    return samples


def _draw(uniforms: np.ndarray, weights: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """One outcome per row with probability weights/totals (never a zero-weight outcome)."""
    thresholds = uniforms * totals
    outcome = np.sum(np.cumsum(weights, axis=1) <= thresholds[:, None], axis=1)
    d = weights.shape[1]
    last_positive = d - 1 - np.argmax(weights[:, ::-1] > 0, axis=1)
    return np.minimum(outcome, last_positive)


def distribution(dense: Any) -> Any:
    """|x|²/‖x‖² of a dense array, in its library, scaled first so nothing over/underflows."""
    xp = backend.namespace(dense)
    magnitudes = xp.abs(dense)
    top = xp.max(magnitudes)
    if not float(backend.to_numpy(top)) > 0:
        raise ValueError("m: the state is zero, so its distribution is undefined")
    weights = (magnitudes / top) ** 2
    return weights / xp.sum(weights)
