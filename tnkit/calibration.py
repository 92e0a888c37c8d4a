"""Data-aware MPO decomposition: the MPO of ``W`` that keeps ``x @ W.T`` on calibration data.

Minimises the output error ‖(W − W̃)Xᵀ‖_F through the Gram matrix Σ = XᵀX only (never the
rows); pure functions on any array-API library, no parameters, no layers, no I/O.

Design (docs/calibration.md). Weight-space TT-SVD minimises ‖W − W̃‖_F, but a layer is judged
by its outputs, ‖(W − W̃)Xᵀ‖_F² = tr((W − W̃) Σ (W − W̃)ᵀ). Three candidates share the bonds
of the plain decomposition, and the one with the least output error on the calibration rows
is kept, so the result is never worse than plain TT-SVD there:

1. ``plain``: ``MPO.from_matrix(W)``, the start and the fallback.
2. ``whitened``: Kronecker-factored whitening. The input index factorises as
   ``in = i_1·…·i_N`` over the cores; the factor of mode k is the partial trace of Σ over
   the other modes (the mode-k unfolding of the activations, ``X_(k) X_(k)ᵀ``), normalised
   to mean eigenvalue 1 plus a ridge ``ridge·I``. ``S_k = C_k^{1/2}`` is folded into the
   input leg of core k, the whitened ``W·(S_1 ⊗ … ⊗ S_N)`` is decomposed by TT-SVD, and
   ``S_k^{-1}`` is unfolded from the cores. Exact when Σ is a Kronecker product.
3. ``als``: alternating least squares over the cores under the exact metric Σ, from the
   better of 1 and 2. Each core's update is a linear least-squares problem (the
   environments of the other cores times Σ), block-diagonal in the core's output index;
   it is solved by conjugate gradients with the matrix-free product
   ``P(E(g)·Σ')`` (embed the core, multiply by the metric, project back; O(out·in·(in + D))
   per product, no matrix of the size of a core squared). The sweep runs in the whitened
   frame (Σ' = S⁻¹ΣS⁻¹ ≈ I) with the other cores orthonormal, which makes each local
   system close to the identity: a few CG steps suffice.

All of this runs in float64, except the ALS sweeps of float32 weights (float32: half the
time; the candidates are still compared in float64); complex weights are not supported. The
cores are cast back to ``W``'s dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import _backend as backend
from ._checks import check_array, check_int, check_number
from ._einsum import contract
from .mpo import MPO
from .truncation import TruncationReport

__all__ = ["CalibrationReport", "calibrated_mpo", "input_gram", "output_error"]

CG_TOLERANCE = 1e-2  # CG ends a core's update when its residual fell by this factor
CG_STEPS = 10  # at most this many CG steps per core update (more sweeps pay off more)


@dataclass(frozen=True)
class CalibrationReport:
    """What ``calibrated_mpo`` tried and kept.

    Output errors are relative, ‖(W − W̃)Xᵀ‖_F / ‖W Xᵀ‖_F, on the calibration rows (``X``
    of the Gram matrix passed) or on the held-out rows.

    Attributes:
        method: the candidate kept: ``"plain"``, ``"whitened"`` or ``"als"``.
        output_error: its output error on the calibration rows.
        candidates: ``(name, output error)`` of every candidate tried, in order.
        held_out_error: its output error on the held-out rows (None without them).
        plain_held_out_error: plain TT-SVD's output error on the held-out rows (or None).
        weight_error: its ‖W − W̃‖_F / ‖W‖_F (what the weight-space report bounds).
        sweeps: ALS sweeps run.
        truncation: the weight-space report of the result: plain TT-SVD's report if
            ``plain`` was kept, else one whose bound is the measured weight error.
    """

    method: str
    output_error: float
    candidates: tuple[tuple[str, float], ...]
    held_out_error: float | None
    plain_held_out_error: float | None
    weight_error: float
    sweeps: int
    truncation: TruncationReport


def input_gram(inputs: Any, in_features: int, *, name: str = "inputs") -> Any:
    """``XᵀX`` (float64, ``(in_features, in_features)``) of activations ``X (n, in_features)``,
    checked: a ValueError naming ``name`` for a wrong feature size, NaN/Inf or no rows.

    Example:
        >>> import numpy as np
        >>> input_gram(np.ones((3, 2)), 2).tolist()
        [[3.0, 3.0], [3.0, 3.0]]
    """
    xp = check_array(inputs, name, ndim=2)
    if int(inputs.shape[1]) != in_features:
        raise ValueError(
            f"{name}: expected activations of shape (n, {in_features}), got {tuple(inputs.shape)}"
        )
    if xp.isdtype(inputs.dtype, "complex floating"):
        raise TypeError(f"{name}: complex activations are not supported")
    rows = xp.astype(inputs, xp.float64)
    return backend.conj_t(rows) @ rows


def output_error(W: Any, approx: Any, gram: Any) -> float:
    """Relative output error ‖(W − W̃)Xᵀ‖_F / ‖W Xᵀ‖_F from the Gram matrix ``XᵀX``.

    Example:
        >>> import numpy as np
        >>> W = np.eye(2)
        >>> output_error(W, 0.5 * W, np.eye(2))
        0.5
    """
    xp = backend.namespace(W, approx, gram, name="W")
    exact, gram = xp.astype(W, xp.float64), xp.astype(gram, xp.float64)
    diff = exact - xp.astype(approx, xp.float64)
    norm_sq = float(xp.sum((exact @ gram) * exact))
    error_sq = float(xp.sum((diff @ gram) * diff))
    return math.sqrt(max(error_sq, 0.0) / norm_sq) if norm_sq > 0 else 0.0


def calibrated_mpo(
    W: Any,
    gram: Any,
    out_dims: Any,
    in_dims: Any,
    *,
    max_bond: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    method: str = "auto",
    held_out: Any = None,
    sweeps: int = 3,
    ridge: float = 1e-3,
) -> tuple[MPO, CalibrationReport]:
    """The MPO of ``W (out, in)`` with the least output error ‖(W − W̃)Xᵀ‖_F found among
    plain TT-SVD, Kronecker-whitened TT-SVD and ALS sweeps (module docstring), and its report.

    ``gram``: ``XᵀX (in, in)`` of the calibration activations (``input_gram``);
    ``held_out``: the same of held-out rows, only measured. ``out_dims``/``in_dims`` and the
    truncation (``max_bond``, ``rtol``, ``atol``, ``method``) as in
    [from_matrix][tnkit.mpo.from_matrix] (dims may pad); the whitened decomposition cuts
    with the same rule in the whitened metric, so with ``rtol``/``atol`` its bonds may differ
    from plain TT-SVD's. ``sweeps``: ALS sweeps (0: none); ``ridge``: added to the
    normalised Kronecker factors (relative to their mean eigenvalue).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> rng = np.random.default_rng(0)
        >>> W = rng.standard_normal((16, 16))
        >>> X = rng.standard_normal((200, 16)) * np.logspace(0, -3, 16)   # anisotropic
        >>> gram = input_gram(X, 16)
        >>> mpo, report = calibrated_mpo(W, gram, (4, 4), (4, 4), max_bond=3)
        >>> plain = tn.MPO.from_matrix(W, (4, 4), (4, 4), max_bond=3).to_matrix()
        >>> plain_error = output_error(W, plain, gram)
        >>> report.output_error < plain_error / 2, mpo.bond_dims
        (True, (3,))
    """
    xp = check_array(W, "W", ndim=2)
    if xp.isdtype(W.dtype, "complex floating"):
        raise TypeError("W: complex weights are not supported by calibrated_mpo")
    rows, cols = (int(s) for s in W.shape)
    gram = _check_gram(gram, cols, "gram", xp)
    held_out = None if held_out is None else _check_gram(held_out, cols, "held_out", xp)
    sweeps = check_int(sweeps, "sweeps", minimum=0)
    ridge = check_number(ridge, "ridge", minimum=0.0)
    rule = {"max_bond": max_bond, "rtol": rtol, "atol": atol, "method": method}

    plain = MPO.from_matrix(W, out_dims, in_dims, pad=True, **rule)
    outs, ins = plain.out_dims, plain.in_dims
    shape = (math.prod(outs), math.prod(ins))
    target = _pad(xp, xp.astype(W, xp.float64), shape)
    metric = _pad(xp, gram, (shape[1], shape[1]))
    norm_sq = float(xp.sum((target @ metric) * target))
    plain_cores = _cores64(xp, plain)
    candidates = {"plain": plain_cores}
    errors = {"plain": _error_sq(target, metric, plain_cores)}
    done = 0
    if norm_sq > 0:
        roots, inverse_roots = _kronecker_roots(xp, metric, ins, ridge)
        white = _mode_products(xp, target, roots)
        white_metric = _mode_products(
            xp, _mode_products(xp, metric, inverse_roots).T, inverse_roots
        )
        whitened = MPO.from_matrix(white, outs, ins, **rule)
        white_cores = _cores64(xp, whitened)
        candidates["whitened"] = _on_inputs(xp, white_cores, inverse_roots)
        errors["whitened"] = _error_sq(target, metric, candidates["whitened"])
        if sweeps:
            start = min(("plain", "whitened"), key=lambda name: errors[name])
            cores = white_cores if start == "whitened" else _on_inputs(xp, plain_cores, roots)
            # The sweeps run in W's precision (float32 for float32 weights: half the time);
            # the candidates are compared in float64.
            work = xp.float32 if W.dtype == xp.float32 else xp.float64
            cores = [xp.astype(c, work) for c in cores]
            cores, done = _als(
                xp, xp.astype(white, work), xp.astype(white_metric, work), cores, sweeps
            )
            cores = [xp.astype(c, xp.float64) for c in cores]
            candidates["als"] = _on_inputs(xp, cores, inverse_roots)
            errors["als"] = _error_sq(target, metric, candidates["als"])
    kept = min(candidates, key=lambda name: (errors[name], name != "plain"))
    cores = [xp.astype(c, W.dtype) for c in candidates[kept]]
    result = MPO(cores, matrix_shape=(rows, cols) if shape != (rows, cols) else None)
    approx = xp.astype(result.to_matrix(), xp.float64)
    exact = target[:rows, :cols]
    weight_norm = math.sqrt(backend.frob_sq(exact))
    weight_error = math.sqrt(backend.frob_sq(approx - exact)) / weight_norm if weight_norm else 0.0
    report = plain.report
    if kept != "plain":
        report = TruncationReport.from_discarded(
            list(report.discarded),
            norm=weight_norm,
            bond_dims_before=report.bond_dims_before,
            bond_dims_after=result.bond_dims,
            params_before=report.params_before,
            params_after=result.num_params,
            method=f"{report.method}+{kept}",
            tolerance_met=report.tolerance_met,
            rel_error=weight_error,
        )

    def relative(error_sq: float) -> float:
        return math.sqrt(max(error_sq, 0.0) / norm_sq) if norm_sq > 0 else 0.0

    held, plain_held = None, None
    if held_out is not None:
        held = output_error(exact, approx, held_out)
        plain_held = output_error(exact, xp.astype(plain.to_matrix(), xp.float64), held_out)
    calibration = CalibrationReport(
        method=kept,
        output_error=relative(errors[kept]),
        candidates=tuple((name, relative(errors[name])) for name in candidates),
        held_out_error=held,
        plain_held_out_error=plain_held,
        weight_error=weight_error,
        sweeps=done,
        truncation=report,
    )
    return result, calibration


# ---------------------------------------------------------------------- checks and padding


def _check_gram(gram: Any, size: int, name: str, xp: Any) -> Any:
    """``gram`` as float64, checked: of ``xp``, square ``(size, size)``, finite."""
    check_array(gram, name, ndim=2)
    if backend.namespace(gram, name=name) is not xp:
        raise TypeError(f"{name}: must come from the array library of W")
    if tuple(int(s) for s in gram.shape) != (size, size):
        raise ValueError(f"{name}: expected shape ({size}, {size}), got {tuple(gram.shape)}")
    return xp.astype(gram, xp.float64)


def _pad(xp: Any, matrix: Any, shape: tuple[int, int]) -> Any:
    """``matrix`` zero-padded at the bottom and right to ``shape``."""
    rows, cols = matrix.shape
    where = {"dtype": matrix.dtype, "device": backend.device(matrix)}
    if shape[1] > cols:
        matrix = xp.concat([matrix, xp.zeros((rows, shape[1] - cols), **where)], axis=1)
    if shape[0] > rows:
        matrix = xp.concat([matrix, xp.zeros((shape[0] - rows, shape[1]), **where)], axis=0)
    return matrix


def _cores64(xp: Any, mpo: MPO) -> list:
    """The cores of ``mpo`` in float64, its exact scale folded into the first."""
    cores = [xp.astype(c, xp.float64) for c in mpo.cores]
    if mpo.scale_exponent:
        cores[0] = cores[0] * 2.0**mpo.scale_exponent
    return cores


# ---------------------------------------------------------------------- whitening


def _kronecker_roots(xp: Any, metric: Any, ins: tuple, ridge: float) -> tuple[list, list]:
    """``S_k = C_k^{1/2}`` and ``S_k^{-1}`` of the per-mode factors of ``metric (N, N)``:
    partial traces over the other input modes, scaled to mean eigenvalue 1, plus ``ridge``."""
    roots, inverse_roots = [], []
    for k, size in enumerate(ins):
        left, right = math.prod(ins[:k]), math.prod(ins[k + 1 :])
        blocks = xp.reshape(metric, (left, size, right, left, size, right))
        eye_l = xp.eye(left, dtype=metric.dtype, device=backend.device(metric))
        eye_r = xp.eye(right, dtype=metric.dtype, device=backend.device(metric))
        factor = contract("larmbs,lm,rs->ab", blocks, eye_l, eye_r)
        factor = (factor + factor.T) / 2
        mean = float(xp.sum(xp.linalg.diagonal(factor))) / size
        eye = xp.eye(size, dtype=metric.dtype, device=backend.device(metric))
        factor = (factor / mean if mean > 0 else eye) + ridge * eye
        values, vectors = backend.eigh(factor)
        values = xp.clip(values, ridge if ridge > 0 else 1e-12, None)
        roots.append((vectors * xp.sqrt(values)) @ vectors.T)
        inverse_roots.append((vectors / xp.sqrt(values)) @ vectors.T)
    return roots, inverse_roots


def _mode_products(xp: Any, matrix: Any, factors: list) -> Any:
    """``matrix (rows, N) @ (F_1 ⊗ … ⊗ F_N)`` for symmetric ``F_k (i_k, i_k)``, mode by mode."""
    rows, cols = matrix.shape
    sizes = [int(f.shape[0]) for f in factors]
    for k, factor in enumerate(factors):
        right = math.prod(sizes[k + 1 :])
        blocks = xp.reshape(matrix, (rows * (cols // (sizes[k] * right)), sizes[k], right))
        blocks = xp.permute_dims(xp.permute_dims(blocks, (0, 2, 1)) @ factor, (0, 2, 1))
        matrix = xp.reshape(blocks, (rows, cols))
    return matrix


def _on_inputs(xp: Any, cores: list, factors: list) -> list:
    """Each core ``(Dl, o, i, Dr)`` times ``factors[k] (i, i)`` on its input leg."""
    moved = []
    for core, factor in zip(cores, factors, strict=True):
        turned = xp.permute_dims(core, (0, 1, 3, 2)) @ factor
        moved.append(xp.permute_dims(turned, (0, 1, 3, 2)))
    return moved


# ---------------------------------------------------------------------- dense views


def _left_block(xp: Any, cores: list) -> Any:
    """Cores ``0..k-1`` contracted: ``(O_<, I_<, D)`` (``(1, 1, 1)`` for none)."""
    block = None
    for core in cores:
        if block is None:
            block = xp.reshape(core, (core.shape[1], core.shape[2], core.shape[3]))
            continue
        outs, ins, _ = block.shape
        merged = xp.tensordot(block, core, axes=([2], [0]))  # (O, I, o, i, b)
        merged = xp.permute_dims(merged, (0, 2, 1, 3, 4))
        block = xp.reshape(merged, (outs * core.shape[1], ins * core.shape[2], core.shape[3]))
    return block


def _right_block(xp: Any, cores: list) -> Any:
    """Cores ``k+1..N-1`` contracted: ``(D, O_>, I_>)``."""
    block = None
    for core in reversed(cores):
        if block is None:
            block = xp.reshape(core, (core.shape[0], core.shape[1], core.shape[2]))
            continue
        _, outs, ins = block.shape
        merged = xp.tensordot(core, block, axes=([3], [0]))  # (a, o, i, O, I)
        merged = xp.permute_dims(merged, (0, 1, 3, 2, 4))
        block = xp.reshape(merged, (core.shape[0], core.shape[1] * outs, core.shape[2] * ins))
    return block


def _ones_block(xp: Any, like: Any) -> Any:
    return xp.ones((1, 1, 1), dtype=like.dtype, device=backend.device(like))


def _embed(xp: Any, left: Any, core: Any, right: Any) -> Any:
    """The matrix ``(M, N)`` of the train with ``core`` between the blocks."""
    outs_l, ins_l, _ = left.shape
    _, outs_r, ins_r = right.shape
    half = xp.tensordot(core, right, axes=([3], [0]))  # (a, o, i, O>, I>)
    full = xp.tensordot(left, half, axes=([2], [0]))  # (O<, I<, o, i, O>, I>)
    full = xp.permute_dims(full, (0, 2, 4, 1, 3, 5))
    o, i = core.shape[1], core.shape[2]
    return xp.reshape(full, (outs_l * o * outs_r, ins_l * i * ins_r))


def _project(xp: Any, left: Any, matrix: Any, right: Any, core_shape: tuple) -> Any:
    """The adjoint of ``_embed``: ``matrix (M, N)`` contracted with the blocks."""
    outs_l, ins_l, _ = left.shape
    _, outs_r, ins_r = right.shape
    _, o, i, _ = core_shape
    blocks = xp.reshape(matrix, (outs_l, o, outs_r, ins_l, i, ins_r))
    half = xp.tensordot(blocks, left, axes=([0, 3], [0, 1]))  # (o, O>, i, I>, a)
    core = xp.tensordot(half, right, axes=([1, 3], [1, 2]))  # (o, i, a, b)
    return xp.permute_dims(core, (2, 0, 1, 3))


def _dense(xp: Any, cores: list) -> Any:
    return _embed(
        xp,
        _ones_block(xp, cores[0]),
        cores[0],
        _right_block(xp, cores[1:]) if len(cores) > 1 else _ones_block(xp, cores[0]),
    )


def _error_sq(target: Any, metric: Any, cores: list) -> float:
    """``tr((T − W̃) Σ (T − W̃)ᵀ)`` of the train ``cores``."""
    xp = backend.namespace(target)
    diff = target - _dense(xp, cores)
    return float(xp.sum((diff @ metric) * diff))


# ---------------------------------------------------------------------- ALS


def _als(xp: Any, target: Any, metric: Any, cores: list, sweeps: int) -> tuple[list, int]:
    """ALS sweeps (left to right and back) minimising ``tr((T − W̃) Σ (T − W̃)ᵀ)`` core by
    core with the others orthonormal; each core's normal equations by CG. Stops early when a
    sweep gains less than 1e-4 of the error; returns the cores and the sweeps run."""
    cores = _right_canonical(xp, list(cores))
    rhs_matrix = target @ metric
    n = len(cores)
    order = list(range(n)) + list(range(n - 2, 0, -1))
    before = _error_sq(target, metric, cores)
    done = 0
    for _ in range(sweeps):
        for step, k in enumerate(order):
            left = _left_block(xp, cores[:k]) if k else _ones_block(xp, cores[k])
            right = _right_block(xp, cores[k + 1 :]) if k < n - 1 else _ones_block(xp, cores[k])
            shape = tuple(cores[k].shape)

            def normal(core: Any, left=left, right=right, shape=shape) -> Any:
                return _project(xp, left, _embed(xp, left, core, right) @ metric, right, shape)

            rhs = _project(xp, left, rhs_matrix, right, shape)
            cores[k] = _conjugate_gradients(xp, normal, rhs, cores[k])
            forward = step < n - 1
            if n > 1:
                cores = _move_centre(xp, cores, k, k + 1 if forward else k - 1)
        done += 1
        after = _error_sq(target, metric, cores)
        if before - after <= 1e-4 * before:
            break
        before = after
    return cores, done


def _conjugate_gradients(xp: Any, apply: Any, rhs: Any, start: Any) -> Any:
    """CG for the symmetric positive semi-definite ``apply(x) = rhs``, from ``start``, until
    the residual fell by ``CG_TOLERANCE`` (or ``CG_STEPS`` steps)."""
    x = start
    residual = rhs - apply(x)
    direction = residual
    rr = float(xp.sum(residual * residual))
    goal = CG_TOLERANCE**2 * rr
    for _ in range(CG_STEPS):
        if rr <= goal:
            break
        image = apply(direction)
        curvature = float(xp.sum(direction * image))
        if curvature <= 0:
            break
        step = rr / curvature
        x = x + step * direction
        residual = residual - step * image
        rr, previous = float(xp.sum(residual * residual)), rr
        direction = residual + (rr / previous) * direction
    return x


def _right_canonical(xp: Any, cores: list) -> list:
    """Cores ``1..N-1`` right-orthonormal (centre 0), the same train."""
    for k in range(len(cores) - 1, 0, -1):
        cores = _move_centre(xp, cores, k, k - 1)
    return cores


def _move_centre(xp: Any, cores: list, site: int, to: int) -> list:
    """QR of core ``site`` towards its neighbour ``to`` (``site ± 1``); the same train."""
    core, other = cores[site], cores[to]
    dl, o, i, dr = core.shape
    if to > site:
        q, r = backend.qr(xp.reshape(core, (dl * o * i, dr)))
        cores[site] = xp.reshape(q, (dl, o, i, q.shape[1]))
        cores[to] = xp.tensordot(r, other, axes=([1], [0]))
    else:
        q, r = backend.qr(xp.reshape(core, (dl, o * i * dr)).T)
        cores[site] = xp.reshape(q.T, (q.shape[1], o, i, dr))
        cores[to] = xp.tensordot(other, r.T, axes=([3], [0]))
    return cores
