"""Compression of a train: truncating canonical sweeps and exact bond reduction.

- ``"svd"``: a canonical sweep with a truncated factorisation at every bond; the error of
  each bond is measured and the pieces are orthogonal, so the bound is rigorous.
- ``"rescaled"``: the same sweep on cores rescaled by powers of two at every site (exact), so
  operators whose norms or squared norms leave double range (long chains: ‖1‖ = d^(L/2))
  compress with the same relative thresholds; the scale goes back into the cores at the end.
- ``"deparallelise"`` / ``"delinearise"`` (Hubig, McCulloch & Schollwöck, PRB 95, 035129):
  no SVD and no canonical form: a column (row) of a core that is parallel to, or a linear
  combination of, columns kept before it is removed and its coefficients are pushed into the
  next core. Sparsity and tiny-but-exact components (1 − ⊗P↓'s 2^(−L/2)) survive.

Pure functions on 3-leg cores ``(Dl, p, Dr)``; no contraction of two trains here.
"""

from __future__ import annotations

import dataclasses
import math

import array_api_compat as aac
import numpy as np

from . import _backend as backend
from ._scaling import (
    binary_exponent,
    exponent_for,
    largest_entry,
    ldexp,
    pull_power_of_two,
    times_pow2,
)
from .canonical import absorb_right, left_sweep_scaled, move_centre, reshape
from .linalg import orthonormalize, truncated_split
from .parker import truncate_regular
from .truncation import Budget, Compressed, Truncation

COMPRESS_METHODS = ("svd", "rescaled", "deparallelise", "delinearise", "parker")
EXACT_METHODS = ("deparallelise", "delinearise")

# Zero and dependence thresholds of the exact methods, relative to the column's own norm
# (dependence) or to the largest column of the core (zero): this many ε times the column
# length, as the SVD's numerical zero is 10·max(m, n)·ε·σ_max.
_STRICT_FACTOR = 10.0

# The centre core takes the whole scale back while its largest entry stays below 2**limit
# (of a maxexp of 1024 in double, 128 in single precision); beyond, the scale is spread.
_CENTRE_EXPONENT = {float(np.finfo(np.float64).eps): 900, float(np.finfo(np.float32).eps): 112}


def compress_cores(
    cores: tuple,
    centre: int | None,
    truncation: Truncation,
    *,
    method: str = "svd",
    svd_method: str = "auto",
    tol: float | None = None,
    site_shapes: tuple | None = None,
) -> Compressed:
    """Compress fused cores ``(Dl, p, Dr)`` by ``method`` (the work of ``TensorTrain.compress``;
    arguments already validated). ``site_shapes``: the unfused physical legs (parker)."""
    if method == "parker":
        return _parker(cores, site_shapes, truncation)
    if method in EXACT_METHODS:
        return reduce_exactly(cores, kind=method, tol=tol)
    if method == "rescaled":
        return _rescaled(cores, centre, truncation, svd_method)
    if svd_method == "auto" and rounds_by_gram(cores, truncation):
        rounded = gram_rounding(cores, centre, truncation.max_bond)
        if rounded is not None:
            return rounded
    try:
        new, norm, discarded, met, used = svd_sweep(
            cores, centre, truncation, svd_method=svd_method
        )
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            "method: the 'svd' sweep met non-finite numbers (is the norm beyond the double "
            "range, as for long-chain operators?); use method='rescaled'"
        ) from exc
    if backend.has_values(new[0]) and exponent_for(largest_entry(new[0]), new[0].dtype):
        raise ValueError(  # squared weights under- or overflow: the bound would be lost
            "method: the 'svd' sweep's squared weights leave the float range; use method='rescaled'"
        )
    total = math.sqrt(max(sum(discarded), 0.0))
    rel = total / norm if norm > 0 else 0.0
    return Compressed(new, 0, norm, discarded, rel, met, f"svd/{used}" if used else "svd")


# ---------------------------------------------------------------------- svd


def svd_sweep(
    cores: tuple, centre: int | None, truncation: Truncation, *, svd_method: str = "auto"
) -> tuple[tuple, float, list[float], bool, str]:
    """Truncate every bond in one right-to-left sweep from the left-canonical form.

    Returns ``(cores, norm, discarded, tolerance_met, methods)`` with the result
    right-canonical (centre 0) and ``discarded[k]`` the squared weight cut at bond k.
    """
    last = len(cores) - 1
    with backend.blas_threads(backend.sweep_threads(cores)):
        return _truncating_sweep(move_centre(cores, centre, last), truncation, svd_method)


def _truncating_sweep(cores: tuple, truncation: Truncation, svd_method: str):
    last = len(cores) - 1
    cores = list(cores)
    norm = backend.frob_sq(cores[last]) ** 0.5
    budget = Budget(truncation.total_budget(norm), last)
    discarded = [0.0] * last
    methods = set()
    for k in range(last, 0, -1):
        dl, p, dr = cores[k].shape
        split = truncated_split(
            reshape(cores[k], (dl, p * dr)),
            max_bond=truncation.max_bond,
            budget=budget.allowance(),
            method=svd_method,
            isometry="right",
        )
        cores[k] = reshape(split.right, (split.rank, p, dr))
        cores[k - 1] = absorb_right(cores[k - 1], split.left)
        discarded[k - 1] = split.discarded
        budget.spend(split.discarded)
        methods.add(split.method)
    return tuple(cores), norm, discarded, budget.met(discarded), "+".join(sorted(methods))


# ---------------------------------------------------------------------- Gram rounding

# A cap-only request at most this fraction of the largest bond, which is at least
# _GRAM_ROUNDING_MIN_BOND, is rounded through Gram matrices: no QR of the big cores.
_GRAM_ROUNDING_MAX_FRACTION = 0.5
_GRAM_ROUNDING_MIN_BOND = 64
# ‖x‖² − 2·Re⟨z, x⟩ + ‖z‖² is a difference of sweeps' sums: this many ε·L·‖x‖² cover its
# rounding (as tn.apply does). Below _GRAM_ROUNDING_MIN_CUT of that, or below what eigh
# resolves, the QR-based sweep takes over: such a cut cannot be measured by a difference.
_GRAM_ROUNDING_ALLOWANCE = 64.0
_GRAM_ROUNDING_MIN_CUT = 1e3
_GRAM_NOISE = 100.0  # eigenvalues below this many m·ε of the largest are rounding noise
# A Pythagorean cut weight is used when its rounding allowance is at most this part of it.
_PYTHAGORAS_PRECISION = 1e-4


def rounds_by_gram(cores: tuple, truncation: Truncation) -> bool:
    """Whether a compression of ``cores`` takes Gram rounding: a cap-only request far below
    large bonds, on values that carry no gradient (Gram squares the condition number of the
    backward, as in ``linalg``'s choice of method)."""
    if truncation.max_bond is None or truncation.rtol is not None or truncation.atol is not None:
        return False
    largest = max(int(c.shape[-1]) for c in cores)
    if largest < _GRAM_ROUNDING_MIN_BOND:
        return False
    if truncation.max_bond > _GRAM_ROUNDING_MAX_FRACTION * largest:
        return False
    return not any(backend.is_tracer(c) or backend.requires_grad(c) for c in cores)


def gram_rounding(cores: tuple, centre: int | None, max_bond: int) -> Compressed | None:
    """Truncate every bond to ``max_bond`` from Gram matrices (the Gram-SVD rounding of
    Al Daas, Ballard & Benner, SIAM J. Sci. Comput. 44, 2022), right-canonical result.

    The left Gram matrices ``H_k = x_{≤k}ᴴ x_{≤k}`` come from one left-to-right sweep of
    products (no QR), kept as Cholesky factors where they are positive definite (triangular
    products and rank-k updates: about half the work of general ones); then right to left,
    the reduced density matrix ``Zᴴ H_{k−1} Z`` of ``Z = x_k · carried`` is diagonalised and
    its top eigenvectors become the right isometry of site k: the same truncation as the SVD
    sweep from the left-canonical form, at a third of its cost when the cap is small. The
    result ``z`` is an orthogonal projection of ``x``, so ‖x − z‖² = ‖x‖² − ‖z‖²; that
    difference is used, with a rounding allowance, for cuts well above the allowance, and
    ``‖x‖² − 2·Re⟨z, x⟩ + ‖z‖²`` (one overlap sweep) is measured for smaller ones. Returns
    None (the caller runs the QR-based sweep) when the norm is not finite or the cut is too
    small for eigh to resolve or for a difference to measure.

    Example:
        >>> import tnkit as tn
        >>> m = tn.MPS.random([2] * 16, 128, seed=0)
        >>> c = m.compress(max_bond=16)
        >>> c.report.method, max(c.bond_dims), c.is_canonical(0)
        ('gram-rounding', 16, True)
    """
    last = len(cores) - 1
    eps = backend.eps(cores[0].dtype)
    with backend.blas_threads(backend.sweep_threads(cores)):
        grams = _left_grams(cores, centre)
        norm_sq = _weighted_sq(_right_unfolding(cores[last]), grams[last])
        if not (math.isfinite(norm_sq) and norm_sq > 0):
            return None
        if exponent_for(math.sqrt(norm_sq), cores[0].dtype):
            return None  # Gram entries and cut weights would lose digits to the float range
        new, discarded = _gram_truncation(cores, grams, max_bond)
        err_sq = _projection_error_sq(cores, new, norm_sq)
    allowance = _GRAM_ROUNDING_ALLOWANCE * len(cores) * eps * norm_sq
    if err_sq <= max(_GRAM_ROUNDING_MIN_CUT * allowance, 100 * len(cores) * eps * norm_sq):
        return None
    norm = math.sqrt(norm_sq)
    rel = math.sqrt(max(err_sq, 0.0) + allowance) / norm
    return Compressed(new, 0, norm, discarded, rel, True, "gram-rounding")


def _projection_error_sq(cores: tuple, new: tuple, norm_sq: float) -> float:
    """‖x − z‖² for the Gram rounding ``z`` (centre 0) of ``x``, up to the rounding allowance
    the caller adds. ``z`` projects ``x`` orthogonally, so Pythagoras gives the difference
    ‖x‖² − ‖z‖² with no pass over ``x``; its rounding (L projections through bases
    orthonormal to ~m·ε, and ‖x‖²'s own sweep) is within a few L·(m+1)·ε·‖x‖², m the largest
    bond, which is added. It is used when that allowance is at most 1e-4 of it, else the
    overlap is measured."""
    kept_sq = backend.frob_sq(new[0])
    largest = max(max(c.shape[0], c.shape[-1]) for c in cores)
    allowance = 4.0 * len(cores) * (largest + 1) * backend.eps(cores[0].dtype) * norm_sq
    difference = norm_sq - kept_sq
    if allowance <= _PYTHAGORAS_PRECISION * difference:
        return difference + allowance
    return norm_sq - 2 * _overlap_real(new, cores) + kept_sq


def _right_unfolding(core):
    dl, p, dr = core.shape
    return reshape(core, (dl, p * dr))


@dataclasses.dataclass(frozen=True)
class _LeftGram:
    """A left Gram matrix H = x_{<k}ᴴ x_{<k}: its upper Cholesky factor R (H = RᴴR) when it
    is numerically positive definite, else H itself (a left part of lower rank)."""

    matrix: object
    factored: bool

    @classmethod
    def from_upper(cls, upper) -> _LeftGram:
        """From H's upper triangle (the lower one is not read)."""
        factor = backend.cholesky_upper(upper)
        if factor is not None:
            return cls(factor, True)
        return cls(_hermitian_from_upper(upper), False)

    def weighted(self, mat):
        """Mᴴ H M (only its upper triangle is meaningful)."""
        if self.factored:
            return backend.gram_upper(backend.upper_times(self.matrix, mat))
        return backend.conj_t(mat) @ (self.matrix @ mat)

    def applied(self, mat):
        """``(bra, ket)`` with Mᴴ H M = braᴴ·ket: ``(R M, R M)`` from the factor, else
        ``(M, H M)``."""
        if self.factored:
            product = backend.upper_times(self.matrix, mat)
            return product, product
        return mat, self.matrix @ mat


def _hermitian_from_upper(upper):
    xp = aac.array_namespace(upper)
    strict = xp.triu(upper, k=1)
    return xp.triu(upper) + backend.conj_t(strict)


def _left_grams(cores: tuple, centre: int | None) -> list:
    """``grams[k]`` = x_{<k}ᴴ x_{<k} as a ``_LeftGram`` (None where the left part is an
    isometry, up to the centre), from one left-to-right sweep of products."""
    grams: list = [None] * len(cores)
    gram = None
    for k in range(len(cores) - 1):
        if centre is None or k >= centre:
            gram = _gram_step(cores[k], gram)
        grams[k + 1] = gram
    return grams


def _gram_step(core, gram: _LeftGram | None) -> _LeftGram:
    """``coreᴴ (gram ⊗ 1) core`` (``gram`` None: the identity)."""
    dl, p, dr = core.shape
    if gram is None:
        return _LeftGram.from_upper(backend.gram_upper(reshape(core, (dl * p, dr))))
    bra, ket = gram.applied(reshape(core, (dl, p * dr)))
    if gram.factored:
        return _LeftGram.from_upper(backend.gram_upper(reshape(ket, (dl * p, dr))))
    product = backend.conj_t(reshape(bra, (dl * p, dr))) @ reshape(ket, (dl * p, dr))
    return _LeftGram.from_upper(product)


def _weighted_sq(mat, gram: _LeftGram | None) -> float:
    """tr(Mᴴ G M) (G None: the identity), as a float."""
    if gram is None:
        return backend.frob_sq(mat)
    bra, ket = gram.applied(mat)
    xp = aac.array_namespace(mat)
    conj = xp.conj(bra) if backend.is_complex(bra.dtype) else bra
    return float(np.real(backend.to_numpy(xp.sum(ket * conj))))


def _gram_truncation(cores: tuple, grams: list, max_bond: int) -> tuple[tuple, list]:
    """Right to left: eigh of ``Zᴴ H Z`` per bond; cores (centre 0) and the cut weights
    (eigenvalues; what rounding hides in them is in the measured error, not here)."""
    last = len(cores) - 1
    xp = aac.array_namespace(cores[0])
    eps = backend.eps(cores[0].dtype)
    out: list = [None] * len(cores)
    discarded = [0.0] * last
    carried = None
    for k in range(last, 0, -1):
        dl, p, _ = cores[k].shape
        z = _right_unfolding(cores[k] if carried is None else absorb_right(cores[k], carried))
        rho = backend.gram_upper(z) if grams[k] is None else grams[k].weighted(z)
        evals, evecs = backend.eigh(rho, overwrite=True)
        weights = np.clip(np.asarray(backend.to_numpy(evals), dtype=np.float64)[::-1], 0, None)
        # eigh resolves weights down to ~m·ε of the largest; below, directions are noise
        noise = _GRAM_NOISE * weights.size * eps * weights[0]
        rank = max(1, min(max_bond, dl, int(np.count_nonzero(weights > noise))))
        kept = xp.flip(evecs, axis=1)[:, :rank]
        if not backend.is_numpy(xp):
            # other libraries' eigh (MRRR, Jacobi) leave clustered eigenvalues' vectors
            # orthonormal to ~1e-12 only (LAPACK's divide and conquer: to ~m·ε): restore it
            kept, _ = orthonormalize(kept)
        out[k] = reshape(backend.conj_t(kept), (rank, p, z.shape[1] // p))
        carried = z @ kept
        discarded[k - 1] = float(np.sum(weights[rank:]))
    out[0] = absorb_right(cores[0], carried)
    return tuple(out), discarded


def _overlap_real(bra: tuple, ket: tuple) -> float:
    """Re⟨bra, ket⟩ by one right-to-left transfer sweep."""
    env = None
    for b, k in zip(reversed(bra), reversed(ket), strict=True):
        dl, p, dr = k.shape
        right = reshape(k, (dl * p, dr)) if env is None else reshape(k, (dl * p, dr)) @ env
        env = reshape(right, (dl, -1)) @ backend.conj_t(reshape(b, (b.shape[0], -1)))
    return float(np.real(backend.to_numpy(env)).reshape(-1)[0])


# ---------------------------------------------------------------------- rescaled svd


def _rescaled(cores: tuple, centre: int | None, truncation: Truncation, svd_method: str):
    """Left-canonical sweep that pulls a power of two out of every core before its QR (so no
    Gram matrix or R factor leaves double range), the truncating sweep on the scaled train
    (norm O(1); an ``atol`` is scaled alike), then the scale 2**exponent back into core 0 if
    it holds it, else into the result's ``exponent`` (the train's exact scale)."""
    with backend.blas_threads(backend.sweep_threads(cores)):
        scaled, exponent = left_sweep_scaled(cores, 0, len(cores) - 1)
        last, shift = pull_power_of_two(scaled[-1])
        scaled, exponent = (*scaled[:-1], last), exponent + shift
        request = truncation
        if truncation.atol is not None:
            request = dataclasses.replace(truncation, atol=ldexp(truncation.atol, -exponent))
        new, norm, discarded, met, used = _truncating_sweep(scaled, request, svd_method)
    rel = math.sqrt(max(sum(discarded), 0.0)) / norm if norm > 0 else 0.0
    new, kept = restore_scale(new, exponent)
    return Compressed(
        new,
        0,
        ldexp(norm, exponent),
        [ldexp(d, 2 * exponent) for d in discarded],
        rel,
        met,
        f"rescaled/{used}" if used else "rescaled",
        exponent=kept,
    )


def restore_scale(cores: tuple, exponent: int) -> tuple[tuple, int]:
    """``(cores, kept)``: the scale 2**exponent goes into the centre core 0 when its entries
    stay well inside the dtype's range (kept 0), else it stays the train's exponent."""
    if exponent == 0:
        return cores, 0
    largest = largest_entry(cores[0])
    limit = _CENTRE_EXPONENT[backend.eps(cores[0].dtype)]
    if largest > 0 and abs(binary_exponent(largest) + exponent) < limit:
        return (times_pow2(cores[0], exponent), *cores[1:]), 0
    return cores, exponent


def _parker(cores: tuple, site_shapes: tuple | None, truncation: Truncation) -> Compressed:
    """Parker compression of fused MPO cores: unfused on the host, fused again after."""
    if site_shapes is None or any(len(shape) != 2 for shape in site_shapes):
        raise ValueError("method: 'parker' compresses MPOs (two physical legs per site)")
    host = [
        np.asarray(backend.to_numpy(c)).reshape(c.shape[0], *shape, c.shape[-1])
        for c, shape in zip(cores, site_shapes, strict=True)
    ]
    result = truncate_regular(host, truncation, like=cores[0])
    fused = tuple(
        reshape(c, (c.shape[0], c.shape[1] * c.shape[2], c.shape[-1])) for c in result.cores
    )
    return dataclasses.replace(result, cores=fused)


# ---------------------------------------------------------------------- exact reduction


def reduce_exactly(cores: tuple, *, kind: str, tol: float | None) -> Compressed:
    """Deparallelise or delinearise every bond: left-to-right over columns, right-to-left
    over rows, repeated until no bond shrinks. Runs on the host (NumPy); the result goes
    back to the cores' library and device. ``rel_error`` estimates the relative change: the
    removed columns' residuals relative to their core, summed over bonds (rounding level
    for the strict default ``tol``)."""
    like = cores[0]
    host = [np.asarray(backend.to_numpy(c)) for c in cores]
    residual = [0.0] * (len(host) - 1)
    while True:
        bonds = [c.shape[-1] for c in host[:-1]]
        host = _reduction_pass(host, kind, tol, residual, rightward=True)
        host = _reduction_pass(host, kind, tol, residual, rightward=False)
        if [c.shape[-1] for c in host[:-1]] == bonds:
            break
    cores = tuple(backend.from_numpy(np.ascontiguousarray(c), like) for c in host)
    rel = float(sum(residual))
    return Compressed(cores, None, math.nan, [0.0] * len(residual), rel, True, kind)


def _reduction_pass(cores: list, kind: str, tol, residual: list, *, rightward: bool) -> list:
    cores = list(cores)
    last = len(cores) - 1
    for k in range(last) if rightward else range(last, 0, -1):
        dl, p, dr = cores[k].shape
        if rightward:  # columns of (Dl·p, Dr); the coefficients go into site k+1
            keep, coeffs, res = column_basis(cores[k].reshape(dl * p, dr), kind, tol)
            cores[k] = cores[k].reshape(dl * p, dr)[:, keep].reshape(dl, p, len(keep))
            cores[k + 1] = np.tensordot(coeffs, cores[k + 1], axes=(1, 0))
            residual[k] = max(residual[k], res)
        else:  # rows of (Dl, p·Dr) are the columns of its transpose; into site k-1
            keep, coeffs, res = column_basis(cores[k].reshape(dl, p * dr).T, kind, tol)
            cores[k] = cores[k].reshape(dl, p * dr)[keep].reshape(len(keep), p, dr)
            cores[k - 1] = np.tensordot(cores[k - 1], coeffs.T, axes=(2, 0))
            residual[k - 1] = max(residual[k - 1], res)
    return cores


def column_basis(m: np.ndarray, kind: str, tol: float | None) -> tuple[list, np.ndarray, float]:
    """``(keep, coeffs, residual)`` with ``m ≈ m[:, keep] @ coeffs``, taking columns in order.

    ``kind`` "deparallelise": a column is dropped when it is a multiple of one kept column;
    "delinearise": when it is a linear combination of the kept ones (Gram–Schmidt twice).
    A column counts as dependent when its residual is ≤ ``tol``·‖column‖ and as zero when
    ‖column‖ ≤ ``tol``·max‖column‖; the default ``tol`` is 10·rows·ε. ``residual`` is the
    removed columns' residual norm relative to ‖m‖_F. At least one column is kept.

    Example:
        >>> import numpy as np
        >>> m = np.array([[1.0, 2.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
        >>> keep, coeffs, _ = column_basis(m, "delinearise", None)
        >>> keep, bool(np.allclose(m[:, keep] @ coeffs, m))
        ([0, 2], True)
        >>> column_basis(m, "deparallelise", None)[0]
        [0, 2, 3]
    """
    rows, n = m.shape
    tol = _STRICT_FACTOR * max(rows, 1) * float(np.finfo(m.dtype).eps) if tol is None else tol
    norms = np.linalg.norm(m, axis=0)
    zero = norms <= tol * (float(norms.max()) if n else 0.0)
    if kind == "deparallelise":
        keep, coeffs, lost = _parallel_basis(m, norms, zero, tol)
    else:
        keep, coeffs, lost = _linear_basis(m, norms, zero, tol)
    if not keep:  # all zero: one zero column keeps the bond at 1
        keep, coeffs = [0], np.zeros((1, n), dtype=m.dtype)
    total = float(np.linalg.norm(norms))
    return keep, coeffs, math.sqrt(lost) / total if total > 0 else 0.0


def _parallel_basis(m, norms, zero, tol):
    """Greedy in column order: a column joins the kept column it is most parallel to when
    the residual of the best multiple is at most ``tol``·‖column‖ (cosines from one Gram
    matrix propose the partner; the residual itself decides)."""
    n = m.shape[1]
    live = np.flatnonzero(~zero)
    units = m[:, live] / norms[live]
    cosines = np.abs(np.conj(units).T @ units)  # (live, live)
    coeffs = np.zeros((n, n), dtype=m.dtype)
    lost = float(np.sum(norms[zero] ** 2))
    keep: list[int] = []  # positions in ``live``
    for a, j in enumerate(live):
        if keep:
            best = keep[int(np.argmax(cosines[keep, a]))]
            if cosines[best, a] > 0.5:
                kept = m[:, live[best]]
                factor = np.vdot(kept, m[:, j]) / np.vdot(kept, kept)
                miss = float(np.linalg.norm(m[:, j] - factor * kept))
                if miss <= tol * norms[j]:
                    coeffs[keep.index(best), j] = factor
                    lost += miss**2
                    continue
        coeffs[len(keep), j] = 1
        keep.append(a)
    return [int(live[a]) for a in keep], coeffs[: len(keep)], lost


def _linear_basis(m, norms, zero, tol):
    """Rank-revealing QR with column pivoting on the unit-normalised columns: the kept
    columns are well conditioned, so the coefficients stay O(1) and rounding cannot build
    up from bond to bond. A column is dependent once the pivoted residual ``|R_jj|`` (a
    relative residual, the columns having norm 1) is at most ``tol``."""
    from scipy.linalg import qr, solve_triangular

    live = np.flatnonzero(~zero)
    lost = float(np.sum(norms[zero] ** 2))
    if live.size == 0:
        return [], np.zeros((0, m.shape[1]), dtype=m.dtype), lost
    units = m[:, live] / norms[live]
    q, r, pivots = qr(units, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    rank = max(1, int(np.count_nonzero(diagonal > tol)))
    kept = live[pivots[:rank]]
    order = np.argsort(kept)  # kept columns in their original order
    solved = solve_triangular(r[:rank, :rank], r[:rank])  # units[:, pivots] ≈ kept · solved
    coeffs = np.zeros((rank, m.shape[1]), dtype=m.dtype)
    coeffs[:, live[pivots]] = solved * norms[live[pivots]] / norms[kept][:, None]
    lost += float(np.sum((np.linalg.norm(r[rank:], axis=0) * norms[live[pivots]]) ** 2))
    # Rounding in the coefficients grows with the kept columns' condition number, at least
    # |R_00| / |R_rr| = 1 / |R_rr|: a rank decision without a clear gap shows up here.
    condition = 1.0 / diagonal[rank - 1] if diagonal[rank - 1] > 0 else math.inf
    lost += float((np.finfo(m.dtype).eps * condition) ** 2 * np.sum(norms**2))
    return [int(k) for k in kept[order]], coeffs[order], lost
