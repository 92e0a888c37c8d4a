"""Krylov solvers for effective operators: the lowest eigenpair by Lanczos, on vectors of any
array-API library, with an optional subspace to stay orthogonal to.

The vectors stay in their library (and device); only the small tridiagonal problem goes to
the host. Nothing here knows about trains or environments: callers pass a matvec.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from .. import _backend as backend


@dataclass(frozen=True)
class Eigenpair:
    """The lowest eigenpair found: ``value``, unit ``vector``, the matvecs it took and the
    residual norm ‖A x − λ x‖ estimated by Lanczos."""

    value: float
    vector: Any
    matvecs: int
    residual: float


def lowest_eigenpair(
    matvec: Callable[[Any], Any],
    start: Any,
    *,
    tol: float = 1e-12,
    max_iter: int = 40,
    orthogonal_to: Sequence[Any] = (),
) -> Eigenpair:
    """Lowest eigenpair of a Hermitian operator by Lanczos with full reorthogonalisation.

    ``start`` (any shape; warm start) is projected out of ``orthogonal_to`` (vectors of the
    same shape, need not be orthonormal), so the operator is solved on their complement.
    Stops when the residual estimate is below ``tol·max(1, |λ|)``, the Krylov space is
    exhausted, or after ``max_iter`` matvecs.

    Example:
        >>> import numpy as np
        >>> a = np.diag([3.0, -1.0, 2.0])
        >>> pair = lowest_eigenpair(lambda x: a @ x, np.ones(3))
        >>> round(pair.value, 12), np.round(np.abs(pair.vector), 12).tolist()
        (-1.0, [0.0, 1.0, 0.0])
    """
    xp = backend.namespace(start)
    shape = start.shape
    basis = _orthonormal([xp.reshape(u, (-1,)) for u in orthogonal_to], xp)
    vector = _project(xp.reshape(start, (-1,)), basis, xp)
    norm = _norm(vector, xp)
    if norm == 0.0:  # a start inside the excluded space: any vector outside it
        vector = _project(xp.ones_like(vector), basis, xp)
        norm = _norm(vector, xp)
    krylov = xp.reshape(vector / norm, (1, -1))  # rows: the orthonormal Krylov vectors
    alphas: list[float] = []
    betas: list[float] = []
    value, coefficients, residual = 0.0, np.ones(1), np.inf
    for step in range(max_iter):
        w = _project(xp.reshape(matvec(xp.reshape(krylov[-1, :], shape)), (-1,)), basis, xp)
        alphas.append(float(backend.to_numpy(_vdot(krylov[-1, :], w, xp)).real))
        for _ in range(2):  # full reorthogonalisation (twice is enough) as two products
            w = w - _coefficients(krylov, w, xp) @ krylov
        beta = _norm(w, xp)
        values, vectors = _tridiagonal(alphas, betas)
        value, coefficients = float(values[0]), vectors[:, 0]
        residual = beta * abs(coefficients[-1])
        if residual <= tol * max(1.0, abs(value)) or beta <= 1e-14 * max(1.0, abs(value)):
            break
        if step == max_iter - 1:
            break
        betas.append(beta)
        krylov = xp.concat([krylov, xp.reshape(w / beta, (1, -1))], axis=0)
    weights = backend.from_numpy(coefficients.astype(backend.dtype_name(krylov.dtype)), krylov)
    x = weights @ krylov
    x = x / _norm(x, xp)
    return Eigenpair(value, xp.reshape(x, shape), len(alphas), float(residual))


def _coefficients(rows: Any, w: Any, xp: Any) -> Any:
    """⟨v_k, w⟩ for every row v_k."""
    return (xp.conj(rows) if backend.is_complex(rows.dtype) else rows) @ w


def _tridiagonal(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(alphas) == 1:
        return np.array(alphas), np.ones((1, 1))
    return scipy.linalg.eigh_tridiagonal(np.array(alphas), np.array(betas[: len(alphas) - 1]))


def _vdot(a: Any, b: Any, xp: Any) -> Any:
    return xp.sum(xp.conj(a) * b) if backend.is_complex(a.dtype) else xp.sum(a * b)


def _norm(a: Any, xp: Any) -> float:
    return float(backend.to_numpy(xp.sqrt(xp.sum(xp.abs(a) ** 2))))


def _orthonormal(vectors: list, xp: Any) -> list:
    basis: list = []
    for u in vectors:
        u = _project(u, basis, xp)
        norm = _norm(u, xp)
        if norm > 1e-12:
            basis.append(u / norm)
    return basis


def _project(x: Any, basis: list, xp: Any) -> Any:
    for u in basis:
        x = x - _vdot(u, x, xp) * u
    return x
