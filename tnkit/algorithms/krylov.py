"""Krylov solvers for effective operators: the lowest eigenpair by Lanczos (with an optional
subspace to stay orthogonal to) and the action of the exponential exp(t·A)·v, on vectors of
any array-API library.

The vectors stay in their library (and device); only the small tridiagonal problem goes to
the host. Nothing here knows about trains or environments: callers pass a matvec.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import scipy.linalg.lapack

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
    krylov = _Rows(vector / norm, max_iter, xp)
    alphas: list[float] = []
    betas: list[float] = []
    value, coefficients, residual = 0.0, np.ones(1), np.inf
    for step in range(max_iter):
        w = krylov.common_dtype(xp.reshape(matvec(xp.reshape(krylov.last, shape)), (-1,)))
        w = _project(w, basis, xp)
        alphas.append(_vdot(krylov.last, w, xp).real)
        w, beta = krylov.orthogonalise(w)
        values, vectors = _tridiagonal(alphas, betas)
        value, coefficients = float(values[0]), vectors[:, 0]
        residual = beta * abs(coefficients[-1])
        if residual <= tol * max(1.0, abs(value)) or beta <= 1e-14 * max(1.0, abs(value)):
            break
        if step == max_iter - 1:
            break
        betas.append(beta)
        krylov.append(w / beta)
    x = krylov.combine(coefficients)
    x = x / _norm(x, xp)
    return Eigenpair(value, xp.reshape(x, shape), len(alphas), float(residual))


class _Rows:
    """Orthonormal vectors, stored as the rows of one matrix that grows one row at a time.

    On NumPy the matrix is a buffer filled in place (no copy of the earlier rows per step);
    other libraries concatenate, which also serves immutable arrays (JAX).
    """

    def __init__(self, first: Any, capacity: int, xp: Any) -> None:
        self.xp, self.count = xp, 1
        if backend.is_numpy(xp):
            self._store = np.empty((max(1, capacity), first.shape[0]), dtype=first.dtype)
            self._store[0] = first
        else:
            self._store = xp.reshape(first, (1, -1))

    @property
    def matrix(self) -> Any:
        return self._store[: self.count]

    @property
    def last(self) -> Any:
        return self._store[self.count - 1]

    @property
    def dtype(self) -> Any:
        return self._store.dtype

    def common_dtype(self, w: Any) -> Any:
        """``w`` and the rows in their common dtype (a real operator on complex vectors, or
        a complex one on real vectors): the rows are promoted in place, ``w`` returned."""
        if w.dtype == self._store.dtype:
            return w
        dtype = self.xp.result_type(w.dtype, self._store.dtype)
        self._store = self.xp.astype(self._store, dtype)
        return self.xp.astype(w, dtype)

    def append(self, row: Any) -> None:
        if backend.is_numpy(self.xp) and self.count < self._store.shape[0]:
            self._store[self.count] = row
        elif backend.is_numpy(self.xp):
            self._store = np.concatenate([self.matrix, row[None, :]])
        else:
            self._store = self.xp.concat([self._store, self.xp.reshape(row, (1, -1))], axis=0)
        self.count += 1

    def orthogonalise(self, w: Any) -> tuple[Any, float]:
        """``w`` minus its projection on the rows (full reorthogonalisation), and its
        norm. A second pass runs when the first removed most of ``w`` (Daniel, Gragg,
        Kaufman & Stewart's criterion: the norm fell below 1/√2 of what it was), which keeps
        the rows orthonormal to working precision. A looser threshold (1/100) was tried and
        broke one-site DMRG: one pass leaves ``w`` off orthogonal by the rows' own error
        times ‖w before‖/‖w after‖, so the error compounds from step to step, and the sweeps
        then raised the energy (L = 40 Heisenberg at bond 24: −17.12 instead of −17.54,
        now a test). Each pass is two matrix-vector products, in place through BLAS on
        NumPy."""
        xp, rows = self.xp, self.matrix
        before = _norm(w, xp)
        for _ in range(2):
            if backend.is_numpy(xp):
                aliased = np.may_share_memory(w, self._store)  # a matvec returning its input
                w = _subtract_projection_blas(rows, w, aliased=aliased)
            elif backend.is_complex(rows.dtype):  # ⟨v_k, w⟩ = conj(v_k · conj(w)): no copy of V
                w = w - xp.conj(rows @ xp.conj(w)) @ rows
            else:
                w = w - (rows @ w) @ rows
            after = _norm(w, xp)
            if after > _REORTHOGONALISE * before:
                break
            before = after
        return w, after

    def combine(self, weights: np.ndarray) -> Any:
        """Σ_k weights[k]·v_k, in the rows' library and dtype (``weights`` on the host)."""
        if not backend.is_complex(self.dtype):
            weights = weights.real
        weights = weights.astype(backend.dtype_name(self.dtype))
        return backend.from_numpy(weights, self._store) @ self.matrix


# A second reorthogonalisation pass runs when the first left less than this of the norm.
_REORTHOGONALISE = 2.0**-0.5

# The error estimate of a sub-step cannot resolve less than this (relative): the rounding of
# exp(t·T_m)·e_1. A sub-step is accepted at this floor even below its share of ``tol``.
_ROUNDING = 1e-14


@dataclass(frozen=True)
class KrylovExponential:
    """``exp(t·A)·v`` as found: the ``vector``, the matvecs it took, and the a-posteriori
    ``error`` estimate ‖exact − vector‖ (absolute, summed over sub-steps)."""

    vector: Any
    matvecs: int
    error: float


def expm_krylov(
    matvec: Callable[[Any], Any],
    v: Any,
    t: complex,
    *,
    tol: float = 1e-12,
    max_iter: int = 30,
) -> KrylovExponential:
    """``exp(t·A)·v`` for a Hermitian operator ``A`` by Lanczos with full reorthogonalisation.

    ``t`` is any real or complex number: a real-time step is ``t = −i·dt``, an imaginary-time
    one ``t = −dt``; a real ``v`` with a complex ``t`` gives a complex result (of ``v``'s
    precision). With m Lanczos vectors, ``v ≈ ‖v‖·V_m·exp(t·T_m)·e_1``, and the error
    estimate is the first two terms of Saad's expansion of that approximation's error
    (SIAM J. Numer. Anal. 29, 209 (1992); see ``_LanczosSpace.error``), which is at or
    just above the actual error (tested); the more common ‖v‖·β_m·|e_mᵀ·exp(t·T_m)·e_1|
    overestimates it by about m/(|t|·‖T_m‖) and so costs one matvec more. The Krylov
    space grows until the estimate is at most ``tol·‖v‖`` (or the space is exhausted: then
    the result is exact). If ``max_iter`` vectors do not reach it, the step
    is split: the largest fraction ``t/2^k`` of ``t`` whose estimate is within its share of
    ``tol`` is taken with the space at hand, and Lanczos restarts from the result for the
    rest (as Expokit does), so the total estimate stays within ``tol·‖v‖`` (plus 1e-14·‖v‖
    per sub-step, the rounding floor of the estimate).

    Example:
        >>> import numpy as np, scipy.linalg
        >>> a = np.diag([1.0, 2.0, 3.0]) + np.diag([0.5, 0.5], 1) + np.diag([0.5, 0.5], -1)
        >>> v = np.array([1.0, 0.0, 1.0])
        >>> r = expm_krylov(lambda x: a @ x, v, -0.3j)
        >>> bool(np.allclose(r.vector, scipy.linalg.expm(-0.3j * a) @ v)), r.vector.dtype
        (True, dtype('complex128'))
    """
    xp = backend.namespace(v)
    shape = v.shape
    t = complex(t)
    x = xp.reshape(v, (-1,))
    if t.imag != 0.0 and not backend.is_complex(x.dtype):
        x = xp.astype(x, xp.result_type(x.dtype, xp.complex64))
    norm = _norm(x, xp)
    if norm == 0.0 or t == 0.0:
        return KrylovExponential(xp.reshape(x, shape), 0, 0.0)
    remaining, matvecs, error = 1.0, 0, 0.0  # remaining: the fraction of t still to go
    trial = 1.0  # the first fraction tried when the space is too small for all that remains
    while remaining > 0.0:
        space = _LanczosSpace(matvec, x / norm, shape, xp, max_iter + 1)
        while True:
            space.extend()
            estimate = norm * space.error(t * remaining)
            if estimate <= tol * norm * remaining or space.exhausted:
                fraction = remaining
                break
            if len(space.alphas) >= max_iter:
                fraction, estimate = _largest_fraction(space, t, min(trial, remaining), norm, tol)
                trial = 2.0 * fraction
                break
        matvecs += len(space.alphas)
        error += estimate
        x = space.combine(t * fraction, norm)
        norm = _norm(x, xp)
        remaining = remaining - fraction if fraction < remaining else 0.0
        if norm == 0.0:
            break
    return KrylovExponential(xp.reshape(x, shape), matvecs, float(error))


class _LanczosSpace:
    """The orthonormal Krylov vectors (rows) of a unit start vector and the tridiagonal
    matrix of the operator on them, grown one vector at a time."""

    def __init__(
        self, matvec: Callable[[Any], Any], start: Any, shape: tuple, xp: Any, capacity: int
    ) -> None:
        self.matvec, self.shape, self.xp = matvec, shape, xp
        self.rows = _Rows(start, capacity, xp)
        self.alphas: list[float] = []
        self.betas: list[float] = []
        self.exhausted = False
        self._pending: Any = None

    def extend(self) -> None:
        xp = self.xp
        if self._pending is not None:
            self.rows.append(self._pending)
        w = xp.reshape(self.matvec(xp.reshape(self.rows.last, self.shape)), (-1,))
        w = self.rows.common_dtype(w)
        self.alphas.append(_vdot(self.rows.last, w, xp).real)
        w, beta = self.rows.orthogonalise(w)
        scale = max(1.0, max(abs(a) for a in self.alphas), max(self.betas, default=0.0))
        self.exhausted = beta <= 1e-14 * scale
        self.betas.append(beta)
        self._pending = None if self.exhausted else w / beta

    def weights(self, t: complex) -> np.ndarray:
        """``exp(t·T_m)·e_1`` (complex)."""
        values, vectors = _tridiagonal(self.alphas, self.betas)
        return vectors @ (np.exp(t * values) * vectors[0, :])

    def error(self, t: complex) -> float:
        """The error of ``V_m·exp(t·T_m)·e_1`` for a unit start vector: the first two terms
        of Saad's expansion (SIAM J. Numer. Anal. 29, 209 (1992), Thm 5.1),
        β_m·(|t|·|e_mᵀφ₁(tT)e_1| + |t|²·ρ·|e_mᵀφ₂(tT)e_1|), on T shifted to the centre c
        of its spectrum (ρ: the half width plus β_m, a bound for the next vector's growth)
        and scaled back by |e^{tc}|. The common estimate β_m·|e_mᵀ exp(tT)e_1| is, to
        leading order, the error of the space one vector smaller: it costs a matvec more
        for the same tolerance."""
        if self.exhausted:
            return 0.0
        values, vectors = _tridiagonal(self.alphas, self.betas)
        centre = 0.5 * (values[0] + values[-1])
        reach = 0.5 * (values[-1] - values[0]) + self.betas[-1]
        z = t * (values - centre)
        ends = vectors[-1] * vectors[0]
        first, second = ((ends * phi).sum() for phi in _phi12(z))
        terms = abs(t) * abs(first) + abs(t) ** 2 * reach * abs(second)
        return self.betas[-1] * abs(np.exp(t * centre)) * terms

    def combine(self, t: complex, norm: float) -> Any:
        """``norm·V_m·exp(t·T_m)·e_1`` in the vectors' library and dtype."""
        return self.rows.combine(norm * self.weights(t))


def _phi12(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """φ₁(z) = (e^z − 1)/z and φ₂(z) = (e^z − 1 − z)/z² (1 and 1/2 at z = 0), through
    φ₁ = 1 + z·φ₂, to full precision: φ₂ by its Taylor series where the closed form would
    lose digits (|z| < 0.1, to z¹⁰: the remainder is below 1e-20). Full precision matters:
    the estimate is a sum over Ritz values that cancels down to (tβ)^m/m!, so a truncated
    series (a polynomial of low degree in T) would vanish from it."""
    z = np.asarray(z, dtype=complex)
    phi2 = np.full(z.shape, _PHI2_SERIES[-1], dtype=complex)
    for coefficient in _PHI2_SERIES[-2::-1]:
        phi2 = phi2 * z + coefficient
    small = np.abs(z) < 0.1
    if not small.all():
        safe = np.where(small, 1.0, z)
        phi2 = np.where(small, phi2, (np.expm1(safe) - safe) / safe**2)
    return 1.0 + z * phi2, phi2


_PHI2_SERIES = tuple(1.0 / math.factorial(k + 2) for k in range(11))  # φ₂'s Taylor terms


def _largest_fraction(
    space: _LanczosSpace, t: complex, start: float, norm: float, tol: float
) -> tuple[float, float]:
    """The largest ``start/2^k`` (k ≥ 0) whose estimate is within its share of ``tol``."""
    fraction = 2.0 * start
    for _ in range(60):
        fraction /= 2.0
        estimate = norm * space.error(t * fraction)
        if estimate <= max(tol * fraction, _ROUNDING) * norm:
            return fraction, estimate
    return fraction, estimate


def _subtract_projection_blas(rows: np.ndarray, w: np.ndarray, aliased: bool) -> np.ndarray:
    """``w`` minus its projection on the rows V, by two BLAS gemv calls on the transposed
    (Fortran-ordered) view of V: no conjugated copy, and ``w`` overwritten (copied first
    when ``aliased`` with the rows, or when it is not a contiguous array of V's dtype)."""
    basis = rows.T  # (n, m), Fortran order: a view
    if aliased or w.dtype != rows.dtype or not w.flags.c_contiguous or not w.flags.writeable:
        w = np.array(w, dtype=rows.dtype, order="C")
    gemv = scipy.linalg.blas.get_blas_funcs("gemv", (basis,))
    coefficients = gemv(1.0, basis, w, trans=2)  # conj(V) w: ⟨v_k, w⟩ for every row
    return gemv(-1.0, basis, coefficients, beta=1.0, y=w, overwrite_y=1)


def _tridiagonal(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric tridiagonal matrix, by
    LAPACK's dstev directly (scipy's ``eigh_tridiagonal`` spends 10 µs per call checking
    its input: as much as the solve, and it runs after every matvec)."""
    if len(alphas) == 1:
        return np.array(alphas), np.ones((1, 1))
    diagonal = np.array(alphas, dtype=np.float64)
    off = np.array(betas[: len(alphas) - 1], dtype=np.float64)
    values, vectors, info = scipy.linalg.lapack.dstev(diagonal, off, compute_v=1)
    if info != 0:  # did not converge (not seen in practice): the checked, slower driver
        return scipy.linalg.eigh_tridiagonal(diagonal, off)
    return values, vectors


def _vdot(a: Any, b: Any, xp: Any) -> complex:
    """⟨a, b⟩ (a conjugated) of two vectors, as a Python complex."""
    if backend.is_numpy(xp):
        return complex(np.vdot(a, b))
    product = xp.sum(xp.conj(a) * b) if backend.is_complex(a.dtype) else xp.sum(a * b)
    return complex(backend.to_numpy(product))


def _norm(a: Any, xp: Any) -> float:
    if backend.is_numpy(xp):
        return float(np.sqrt(np.vdot(a, a).real))
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
        overlap = _vdot(u, x, xp)
        x = x - (overlap if backend.is_complex(x.dtype) else overlap.real) * u
    return x
