"""Matrix factorisations behind every sweep: truncated SVD family and fast orthonormalisation.

Works on one matrix at a time through ``_backend``; knows nothing about trains. Every
discarded weight it reports is measured from exact norms, never estimated from a sketch.
"""

from __future__ import annotations

from dataclasses import dataclass

import array_api_compat as aac
import numpy as np

from . import _backend as backend
from .truncation import choose_rank

__all__ = ["Split", "truncated_split", "orthonormalize", "METHODS"]

METHODS = ("auto", "exact", "qr", "gram", "randomized")

# Gram/eigh squares the condition number: below this relative error it cannot be trusted.
GRAM_RELATIVE_FLOOR = 1e-6
# From this many rows a tolerance-free near-square split goes through Gram: memory and time
# (gesdd's copies and workspace) matter more than SVD's slightly smaller rounding error.
GRAM_EXACT_MIN_ROWS = 256
_OVERSAMPLE_MIN = 10
_POWER_ITERATIONS = 2
# ‖a‖² − ‖Qᴴa‖² is used only when its rounding allowance is at most this fraction of it, so
# the weight reported is accurate to 1e-4 relative and still an upper bound (_residual_sq).
_PYTHAGORAS_PRECISION = 1e-4


@dataclass(frozen=True)
class Split:
    """``a ≈ left @ right`` with ``discarded = ‖a − left @ right‖_F²`` measured.

    For ``isometry="left"`` the columns of ``left`` are orthonormal and ``right = S V^H``;
    for ``"right"`` the rows of ``right`` are orthonormal and ``left = U S``.
    """

    left: backend.Array
    right: backend.Array
    singular_values: np.ndarray
    discarded: float
    method: str

    @property
    def rank(self) -> int:
        return int(self.singular_values.size)


def truncated_split(
    a: backend.Array,
    *,
    max_bond: int | None = None,
    budget: float | None = None,
    method: str = "auto",
    isometry: str = "left",
) -> Split:
    """Factor ``a`` into an isometry and a remainder, cutting as little as the rule allows.

    ``budget`` is the squared error this split may spend (None: exact, only numerically zero
    singular values go); ``max_bond`` caps the rank and wins over ``budget``.

    Example:
        >>> import numpy as np
        >>> a = np.outer(np.arange(1.0, 4.0), np.ones(5))
        >>> s = truncated_split(a)
        >>> s.rank, bool(np.allclose(s.left @ s.right, a))
        (1, True)
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if isometry == "right":
        flipped = truncated_split(
            backend.conj_t(a), max_bond=max_bond, budget=budget, method=method, isometry="left"
        )
        return Split(
            backend.conj_t(flipped.right),
            backend.conj_t(flipped.left),
            flipped.singular_values,
            flipped.discarded,
            flipped.method,
        )
    if isometry != "left":
        raise ValueError(f"isometry: expected 'left' or 'right', got {isometry!r}")
    chosen = _choose_method(a, max_bond, budget) if method == "auto" else method
    with backend.blas_threads(backend.split_threads(a)):
        return _SPLITTERS[chosen](a, max_bond, budget)


def _choose_method(a: backend.Array, max_bond: int | None, budget: float | None) -> str:
    """Fastest method that still honours the request (plain data: tests inspect it).

    Randomized when the cap is far below the matrix size; Gram for wide matrices, for loose
    or cap-only requests, and for tolerance-free ones on near-square matrices of at least
    ``GRAM_EXACT_MIN_ROWS`` rows (it checks itself and hands over to QR when it cannot resolve
    what it must; a full-rank Gram split is exact up to ~m·ε and needs one matrix-sized
    array where LAPACK's SVD needs several, and it is several times faster); otherwise
    QR-first for far-from-square matrices, else plain SVD. Inputs that carry gradients
    (torch tensors requiring grad, JAX tracers) always take QR-first or plain SVD: Gram
    squares the condition number of the backward too, and a randomized sketch's gradient
    is not the truncated SVD's (docs/autodiff.md).
    """
    m, n = a.shape
    small, large = min(m, n), max(m, n)
    if backend.requires_grad(a):  # SVD-based only: its backward is the broadened one
        return "qr" if large >= 4 * small else "exact"
    if small >= 64 and max_bond is not None and max_bond + _oversample(max_bond) <= small // 4:
        return "randomized"
    loose = budget is not None and budget >= (GRAM_RELATIVE_FLOOR**2) * backend.frob_sq(a)
    exact_large = budget is None and (max_bond is not None or m >= GRAM_EXACT_MIN_ROWS)
    if m <= n and (n >= 4 * m or loose or exact_large):
        return "gram"
    return "qr" if large >= 4 * small else "exact"


def _oversample(max_bond: int) -> int:
    return max(_OVERSAMPLE_MIN, max_bond // 4)


def _finish(u, s, vh, a, max_bond, budget, method, floor=0.0, row_basis=None) -> Split:
    """Truncate a (possibly partial) SVD ``u diag(s) vh`` of ``a``; ``floor`` = weight outside.
    With ``row_basis`` the right factors are ``vh @ row_basisᴴ``, formed for kept rows only."""
    s_host = np.asarray(backend.to_numpy(s), dtype=np.float64)
    rank = choose_rank(
        s_host,
        shape=tuple(a.shape),
        eps=backend.eps(a.dtype),
        max_bond=max_bond,
        budget=budget,
        floor=floor,
    )
    xp = aac.array_namespace(a)
    scale = xp.astype(s[:rank], a.dtype)
    left = u[:, :rank]
    right = scale[:, None] * vh[:rank, :]
    if row_basis is not None:
        right = right @ backend.conj_t(row_basis)
    discarded = floor + float(np.sum(s_host[rank:] ** 2))
    return Split(left, right, s_host[:rank], discarded, method)


def _exact(a, max_bond, budget) -> Split:
    try:
        u, s, vh = backend.svd(a)
    except Exception:  # noqa: BLE001 - LAPACK failed twice: last resort before giving up
        return _last_resort(a, max_bond, budget)
    return _finish(u, s, vh, a, max_bond, budget, "exact")


def _qr(a, max_bond, budget) -> Split:
    try:
        u, s, vh, row_basis = _thin_svd_via_qr(a)
    except np.linalg.LinAlgError:  # LAPACK's SVD failed with both drivers: as in _exact
        return _last_resort(a, max_bond, budget)
    return _finish(u, s, vh, a, max_bond, budget, "qr", row_basis=row_basis)


def _last_resort(a, max_bond, budget) -> Split:
    """Gram/eigh once gesdd and gesvd both failed; LinAlgError if that fails too."""
    try:
        return _gram(a, max_bond, budget, fallback=False)
    except Exception as exc:  # noqa: BLE001
        raise np.linalg.LinAlgError(
            f"SVD failed with gesdd, gesvd and Gram/eigh on a matrix of shape {a.shape}"
        ) from exc


def _thin_svd_via_qr(a):
    """Thin SVD ``(u, s, vh, row_basis)``, reducing a far-from-square matrix by QR first
    (cheaper than gesdd on it). For a wide ``a`` the right factors are ``vh @ row_basisᴴ``,
    left unformed so that only the kept rows are built (``row_basis`` None otherwise)."""
    m, n = a.shape
    if m >= 2 * n:
        q, r = orthonormalize(a)
        u, s, vh = backend.svd(r)
        owned = isinstance(q, np.ndarray) and not np.may_share_memory(q, a)
        left = backend.times_small_inplace(q, u) if owned else backend.times_small(q, u)
        return left, s, vh, None
    if n >= 2 * m:
        q, r = orthonormalize(backend.conj_t(a))  # a = r^H q^H
        u, s, vh = backend.svd(backend.conj_t(r))
        return u, s, vh, q
    return (*backend.svd(a), None)


def _gram(a, max_bond, budget, fallback: bool = True) -> Split:
    """Left singular vectors from eigh of ``a a^H``: one pass over ``a`` for the Gram matrix
    and one for the remainder. Eigenvalues carry absolute errors ~m·ε·‖a‖², so singular
    values below ``_gram_noise`` of the largest are unresolved; with ``fallback`` every case
    where that could matter (or the measured cut misses the budget) is redone by QR + SVD.
    """
    m, n = a.shape
    if m > n:  # a a^H is m×m with rank <= n: plain Gram splits wide matrices only
        if fallback:
            return _qr(a, max_bond, budget)
        # Last resort (LAPACK's SVD failed): eigh of the m×m a a^H still gives an
        # orthonormal basis; capping the rank at n drops only eigh's rounding noise.
        max_bond = n if max_bond is None else min(max_bond, n)
    xp = aac.array_namespace(a)
    evals, evecs = backend.eigh(backend.gram_upper(backend.conj_t(a)), overwrite=True)
    evals_host = np.clip(backend.to_numpy(evals)[::-1].astype(np.float64), 0.0, None)
    s_host = np.sqrt(evals_host)
    rank = choose_rank(
        s_host, shape=(m, n), eps=backend.eps(a.dtype), max_bond=max_bond, budget=budget
    )
    u = xp.flip(evecs, axis=1)[:, :rank]
    if isinstance(u, np.ndarray):  # a compact copy now, so the full eigenvector matrix can go
        u = np.ascontiguousarray(u)
        del evecs
    right = backend.conj_t(u) @ a
    norm_sq = backend.frob_sq(a)
    discarded = _residual_sq(a, u, right, norm_sq)
    if fallback and _gram_inadequate(s_host, rank, discarded, norm_sq, max_bond, budget, a):
        return _qr(a, max_bond, budget)
    return Split(u, right, s_host[:rank], discarded, "gram")


def _gram_inadequate(s, rank, discarded, norm_sq, max_bond, budget, a) -> bool:
    """Whether a Gram split might differ from what an SVD would give for this request."""
    m = a.shape[0]
    if s[rank - 1] < _gram_noise(m, a.dtype) * s[0]:
        return True  # a kept direction is below what Gram resolves
    capped = max_bond is not None and rank >= max_bond
    if budget is not None:
        return not capped and discarded > budget
    if rank == m:
        return False  # nothing cut: the basis is square and unitary, the split is exact
    # Cutting without a budget: exact requests need SVD accuracy, cap-only ones need a cut
    # large enough that Gram's rounding (~sqrt(ε)·‖a‖) cannot change which subspace is kept.
    return max_bond is None or discarded < GRAM_RELATIVE_FLOOR**2 * norm_sq


def _gram_noise(m: int, dtype) -> float:
    """Relative size below which Gram-derived singular values are rounding noise."""
    return float(np.sqrt(100.0 * m * backend.eps(dtype)))


def _randomized(a, max_bond, budget) -> Split:
    m, n = a.shape
    if max_bond is None:
        return _qr(a, max_bond, budget)
    k = min(max_bond + _oversample(max_bond), m, n)
    rng = np.random.default_rng(0x7E5)
    omega = rng.standard_normal((n, k))
    if backend.is_complex(a.dtype):
        omega = omega + 1j * rng.standard_normal((n, k))
    xp = aac.array_namespace(a)
    omega = xp.astype(backend.from_numpy(omega, like=a), a.dtype)
    q, _ = backend.qr(a @ omega)
    for _ in range(_POWER_ITERATIONS):
        z, _ = backend.qr(backend.conj_t(a) @ q)
        q, _ = backend.qr(a @ z)
    sketch = backend.conj_t(q) @ a
    residual = _residual_sq(a, q, sketch, backend.frob_sq(a))
    try:
        u_sketch, s, vh, sketch_rows = _thin_svd_via_qr(sketch)
    except np.linalg.LinAlgError:  # LAPACK's SVD failed with both drivers: as in _exact
        return _last_resort(a, max_bond, budget)
    left = q @ u_sketch
    split = _finish(
        left, s, vh, a, max_bond, budget, "randomized", floor=residual, row_basis=sketch_rows
    )
    capped = split.rank >= max_bond
    if budget is not None and not capped and split.discarded > budget:
        return _qr(a, max_bond, budget)
    return split


def _residual_sq(a, basis, coefficients, norm_sq: float) -> float:
    """‖a − basis @ coefficients‖² for an orthonormal ``basis`` and ``coefficients = basis^H a``.

    Pythagoras gives it as ‖a‖² − ‖coefficients‖² without another pass over ``a``. That
    difference carries a rounding error of a few (m+1)·ε·‖a‖² (m = the larger of the basis'
    rows and columns: the basis is orthonormal to ~m·ε), so it is used, with that allowance
    added (an upper bound, accurate to 1e-4 relative), only when the allowance is at most
    1e-4 of it. Otherwise the residual is formed explicitly.
    """
    rows, rank = basis.shape
    if rank == rows:
        return 0.0  # a square unitary basis loses nothing beyond rounding
    difference = norm_sq - backend.frob_sq(coefficients)
    allowance = 4.0 * (max(rows, rank) + 1) * backend.eps(a.dtype) * norm_sq
    if allowance <= _PYTHAGORAS_PRECISION * difference:
        return difference + allowance
    residual = _blocked_residual_sq(a, basis, coefficients)
    # What a product's rounding alone leaves (~ε·‖a‖ per entry) is not a cut: the library's
    # bounds hold "up to rounding", so counting it would only fail tolerances below ε.
    rounding = (4.0 * (rank + 1) * backend.eps(a.dtype)) ** 2 * norm_sq
    return 0.0 if residual <= rounding else residual


def _blocked_residual_sq(a, basis, coefficients) -> float:
    """``‖a − basis @ coefficients‖²`` a block of columns at a time (no ``a``-sized temporary)."""
    m, n = a.shape
    step = max(1, backend.BLOCK_ENTRIES // max(m, 1))
    blocks = ((j, min(j + step, n)) for j in range(0, n, step))  # strict APIs: no overrun
    return sum(backend.frob_sq(a[:, i:j] - basis @ coefficients[:, i:j]) for i, j in blocks)


_SPLITTERS = {"exact": _exact, "qr": _qr, "gram": _gram, "randomized": _randomized}


def orthonormalize(a: backend.Array) -> tuple[backend.Array, backend.Array]:
    """Thin QR ``a = q @ r`` for canonical sweeps, BLAS-3 where it is safe.

    Tall matrices use Cholesky QR twice (CholeskyQR2: two Gram products and triangular
    solves, no Householder panels); it is accurate to machine precision when the second
    Gram matrix is close to the identity, which is checked. Otherwise (and on tracers, whose
    values cannot be checked, and on inputs that carry gradients, whose Householder backward
    stays finite at rank deficiency) Householder QR.

    Example:
        >>> import numpy as np
        >>> a = np.random.default_rng(0).standard_normal((8, 3))
        >>> q, r = orthonormalize(a)
        >>> bool(np.allclose(q.T @ q, np.eye(3)) and np.allclose(q @ r, a))
        True
    """
    if _cholesky_applies(a):
        cholesky = _cholesky_qr2(a)
        if cholesky is not None:
            return cholesky
    return backend.qr(a)


def _cholesky_applies(a) -> bool:
    # The CholeskyQR2 check reads values (tracers have none); its backward through the Gram
    # matrix is singular at rank deficiency, Householder's broadened one is not.
    m, n = a.shape
    return m >= n and not backend.is_tracer(a) and not backend.requires_grad(a)


def sweep_orthonormalizer(max_failures: int = 2):
    """``orthonormalize`` for one canonical sweep: once CholeskyQR2 has failed
    ``max_failures`` times (rank-deficient cores, as in products of operators), the rest of
    the sweep goes straight to Householder QR instead of paying for attempts that fail.

    Example:
        >>> import numpy as np
        >>> run = sweep_orthonormalizer()
        >>> q, r = run(np.random.default_rng(0).standard_normal((8, 3)))
        >>> bool(np.allclose(q.T @ q, np.eye(3)))
        True
    """
    failures = 0

    def run(a):
        nonlocal failures
        if failures < max_failures and _cholesky_applies(a):
            cholesky = _cholesky_qr2(a)
            if cholesky is not None:
                return cholesky
            failures += 1
        return backend.qr(a)

    return run


def _cholesky_qr2(a):
    """CholeskyQR2 with an explicit triangular inverse (GEMM instead of trsm).

    The second Gram matrix measures the first pass's loss of orthogonality; when it is
    already at rounding level the second pass is skipped, and when it is far from the
    identity (condition number beyond ~1e7) the caller falls back to Householder.
    """
    n = a.shape[1]
    r1 = backend.cholesky_upper(backend.gram_upper(a))
    if r1 is None:
        return None
    q1 = backend.times_small(a, backend.inv_upper(r1))
    g2 = backend.gram_upper(q1)
    deviation = float(np.max(np.abs(np.triu(backend.to_numpy(g2)) - np.eye(n))))
    if deviation <= 16 * backend.eps(a.dtype):
        return q1, r1
    if deviation > 0.1:
        return None
    r2 = backend.cholesky_upper(g2)
    if r2 is None:
        return None
    return backend.times_small_inplace(q1, backend.inv_upper(r2)), r2 @ r1
