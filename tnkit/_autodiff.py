"""Reverse-mode rules for SVD, QR and eigh that stay finite at (near-)degenerate spectra.

Imported only by ``_backend``; never imports torch or JAX at import time, never sees NumPy.
"""

# The backward formulas are written once, in the array API, in torch's convention (the
# adjoint for the real inner product Re tr(XᴴY)); JAX's cotangents of complex arrays are the
# conjugates of those, so its rules conjugate on the way in and out. See docs/autodiff.md.

from __future__ import annotations

import functools
from typing import Any

import array_api_compat as aac
import numpy as np

Array = Any

# Lorentzian broadening 1/x -> x/(x² + ε) of the spectral gaps σᵢ² − σⱼ² (and λᵢ − λⱼ), with
# ε = BROADENING · σ_max⁴ (λ_max²): gaps below ~sqrt(BROADENING) of the largest are smoothed
# (Liao, Liu, Wang & Xiang, PRX 9, 031041 (2019)). Single precision resolves less.
BROADENING = {"float64": 1e-12, "float32": 1e-6}


def _real_name(dtype: Any) -> str:
    text = str(dtype)
    return "float32" if ("float32" in text or "complex64" in text) else "float64"


def _eps(dtype: Any) -> float:
    return float(np.finfo(np.dtype(_real_name(dtype))).eps)


def _lorentz(x: Array, eps: Array | float) -> Array:
    """``1/x`` broadened: ``x / (x² + eps)``, zero at ``x = 0``."""
    return x / (x * x + eps)


def _conj_t(x: Array, xp: Any) -> Array:
    t = xp.matrix_transpose(x)
    return xp.conj(t) if xp.isdtype(x.dtype, "complex floating") else t


def _diagonal(x: Array, xp: Any) -> Array:
    return xp.sum(x * xp.eye(x.shape[0], dtype=x.dtype, device=aac.device(x)), axis=1)


def _as(x: Array, like: Array, xp: Any) -> Array:
    """Real ``x`` in the (possibly complex) dtype of ``like``."""
    return xp.astype(x, like.dtype) if x.dtype != like.dtype else x


def _inverse_scale(s: Array, shape: tuple, xp: Any) -> Array:
    """``1/s`` broadened below the numerical zero of an SVD (``max(m, n)·ε·σ_max``)."""
    delta = max(shape) * _eps(s.dtype) * xp.max(s)
    return _lorentz(s, delta * delta + np.finfo(np.float64).tiny)


# ----------------------------------------------------------------------------- SVD


def svd_backward(u, s, vh, gu, gs, gvh):
    """``gA`` from the cotangents of the thin SVD ``a = u diag(s) vh`` (torch convention).

    Off the diagonal the classic ``Γᵢⱼ = [(J−Jᴴ)ᵢⱼ sⱼ + sᵢ(K−Kᴴ)ᵢⱼ]/(sⱼ² − sᵢ²)`` (J = uᴴgu,
    K = vᴴgv) is split exactly into a regular part, which alone is the answer whenever the
    loss depends on u, s, v only through ``u diag(s) vh`` (what every tnkit sweep does), and
    a remainder that vanishes for such losses; only the remainder's ``1/(sⱼ² − sᵢ²)`` is
    broadened. Complement terms ``(1 − uuᴴ) gu s⁻¹ vh`` and ``u s⁻¹ gvh (1 − vvᴴ)`` use a
    ``1/s`` broadened below the numerical zero.
    """
    xp = aac.array_namespace(u)
    m, k = u.shape
    n = vh.shape[1]
    j = _conj_t(u, xp) @ gu
    kv = vh @ _conj_t(gvh, xp)  # vᴴ gv with v = vhᴴ, gv = gvhᴴ
    jh, kh = _conj_t(j, xp), _conj_t(kv, xp)
    s_row, s_col = s[None, :], s[:, None]  # s_j along rows' columns, s_i down the column
    tiny = float(np.finfo(np.float64).tiny)
    scale = xp.max(s) ** 2 if k else 1.0
    # Γ_prod = (J sⱼ + sᵢ Kᴴ)/(sᵢ² + sⱼ²): exact for losses of u diag(s) vh alone.
    square_sum = s_col**2 + s_row**2
    inv_sum = _lorentz(square_sum, (_eps(s.dtype) * scale) ** 2 + tiny)
    regular = (j * _as(s_row, j, xp) + _as(s_col, j, xp) * kh) * _as(inv_sum, j, xp)
    # Remainder [2 sᵢ sⱼ p/(sᵢ² + sⱼ²) − q]/(sⱼ² − sᵢ²) with p = J sᵢ − Kᴴ sⱼ, q = Jᴴ sⱼ − K sᵢ.
    p = j * _as(s_col, j, xp) - kh * _as(s_row, j, xp)
    q = jh * _as(s_row, j, xp) - kv * _as(s_col, j, xp)
    gap = s_row**2 - s_col**2
    inv_gap = _lorentz(gap, BROADENING[_real_name(s.dtype)] * scale**2 + tiny)
    remainder = (_as(2 * s_col * s_row * inv_sum, j, xp) * p - q) * _as(inv_gap, j, xp)
    eye = xp.eye(k, dtype=j.dtype, device=aac.device(j))
    gamma = (regular + remainder) * (1 - eye)
    inv_s = _inverse_scale(s, (m, n), xp)
    diagonal = _as(gs, j, xp)
    if xp.isdtype(j.dtype, "complex floating"):  # the phase gauge: i·Im(Jᵢᵢ − Kᵢᵢ)/(2sᵢ)
        phase = xp.imag(_diagonal(j, xp) - _diagonal(kv, xp)) * inv_s / 2
        diagonal = diagonal + 1j * _as(phase, j, xp)
    gamma = gamma + eye * diagonal[None, :]
    if m > k:  # u is not square: the part of gu outside its columns, (1 − uuᴴ) gu s⁻¹
        outside = (gu - u @ j) * _as(inv_s, j, xp)[None, :]
        ga = (u @ gamma + outside) @ vh
    else:
        ga = u @ (gamma @ vh)
    if n > k:
        ga = ga + u @ (_as(inv_s, j, xp)[:, None] * (gvh - kh @ vh))
    return ga


# ----------------------------------------------------------------------------- QR


def _broadened_inverse_h(r, shape, xp):
    """``R⁻ᴴ`` through the SVD of the small ``R``, its ``1/σ`` broadened below the numerical
    zero: exact to rounding for a full-rank ``R``, finite for a singular one."""
    u, s, vh = xp.linalg.svd(r, full_matrices=False)
    inv_s = _inverse_scale(s, shape, xp)
    return u @ (_as(inv_s, u, xp)[:, None] * vh)  # (v s uᴴ)⁻¹ = u s⁻¹ vᴴ, with R = u s vh


def _copy_lower(x, xp):
    """The Hermitian matrix whose lower triangle (diagonal's real part) is that of ``x``."""
    n = x.shape[0]
    idx = xp.arange(n, device=aac.device(x))
    lower = xp.astype(idx[:, None] > idx[None, :], x.dtype)
    strict = x * lower
    diagonal = xp.eye(n, dtype=x.dtype, device=aac.device(x)) * x
    if xp.isdtype(x.dtype, "complex floating"):
        diagonal = _as(xp.real(diagonal), x, xp)
    return strict + _conj_t(strict, xp) + diagonal


def _qr_backward_tall(q, r, gq, gr, xp):
    """``m ≥ n``: the classic ``(gq + q·copyltu(r grᴴ − gqᴴ q)) r⁻ᴴ``, arranged so that the
    part inside span(q) reads ``gr`` directly (exact even for a singular ``r`` when the loss
    depends on ``q r`` only) and only the remainder and the complement go through ``r⁻ᴴ``."""
    x = _conj_t(q, xp) @ gq
    m_mat = r @ _conj_t(gr, xp) - _conj_t(x, xp)
    remainder = x + _copy_lower(m_mat, xp) - gr @ _conj_t(r, xp)
    inv_h = _broadened_inverse_h(r, q.shape, xp)
    inside = q @ (gr + remainder @ inv_h)
    if q.shape[0] == q.shape[1]:
        return inside
    return inside + (gq - q @ x) @ inv_h


def qr_backward(q, r, gq, gr):
    """``gA`` from the cotangents of the reduced QR ``a = q r`` (torch convention); a wide
    ``a = [x | y]`` is ``x = q r₁`` (square) and ``y = q r₂``."""
    xp = aac.array_namespace(q)
    m, n = q.shape[0], r.shape[1]
    if m >= n:
        return _qr_backward_tall(q, r, gq, gr, xp)
    r1, r2, gr1, gr2 = r[:, :m], r[:, m:], gr[:, :m], gr[:, m:]
    y = q @ r2
    gx = _qr_backward_tall(q, r1, gq + y @ _conj_t(gr2, xp), gr1, xp)
    return xp.concat([gx, q @ gr2], axis=1)


# ----------------------------------------------------------------------------- eigh


def eigh_backward(w, v, gw, gv):
    """``gA`` from the cotangents of ``a = v diag(w) vᴴ`` (torch convention):
    ``v (diag(gw) + F ∘ skew(vᴴ gv)/2) vᴴ`` with ``Fᵢⱼ = 1/(wⱼ − wᵢ)`` broadened."""
    xp = aac.array_namespace(v)
    vhgv = _conj_t(v, xp) @ gv
    skew = (vhgv - _conj_t(vhgv, xp)) / 2
    scale = xp.max(xp.abs(w)) ** 2 if w.shape[0] else 1.0
    gap = w[None, :] - w[:, None]
    inv_gap = _lorentz(gap, BROADENING[_real_name(w.dtype)] * scale + np.finfo(np.float64).tiny)
    eye = xp.eye(w.shape[0], dtype=v.dtype, device=aac.device(v))
    inner = skew * _as(inv_gap, v, xp) * (1 - eye) + eye * _as(gw, v, xp)[None, :]
    return v @ inner @ _conj_t(v, xp)


# ----------------------------------------------------------------------------- torch


def _torch_rule(torch, primal, backward):
    """A ``torch.autograd.Function`` of ``primal`` whose backward is ``backward``."""

    class Rule(torch.autograd.Function):
        @staticmethod
        def forward(a):
            return primal(a)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*output)

        @staticmethod
        def backward(ctx, *cotangents):
            return backward(*ctx.saved_tensors, *cotangents)

    return Rule.apply


@functools.lru_cache(maxsize=1)
def _torch_rules() -> dict:
    import torch  # optional dependency: only reached with a torch tensor in hand

    return {
        "svd": _torch_rule(torch, lambda a: torch.linalg.svd(a, full_matrices=False), svd_backward),
        "qr": _torch_rule(torch, lambda a: torch.linalg.qr(a, mode="reduced"), qr_backward),
        "eigh": _torch_rule(torch, torch.linalg.eigh, eigh_backward),
    }


# ----------------------------------------------------------------------------- JAX


def _jax_rule(primal, backward):
    """A ``jax.custom_vjp`` of ``primal`` whose VJP is ``backward`` in torch's convention."""
    import jax  # optional dependency: only reached with a JAX array in hand
    import jax.numpy as jnp

    rule = jax.custom_vjp(primal)

    def forward(a):
        outputs = primal(a)
        return outputs, outputs

    def reverse(outputs, cotangents):
        complex_ = jnp.iscomplexobj(outputs[-1])
        flip = jnp.conj if complex_ else (lambda x: x)
        return (flip(backward(*outputs, *(flip(c) for c in cotangents))),)

    rule.defvjp(forward, reverse)
    return rule


@functools.lru_cache(maxsize=1)
def _jax_rules() -> dict:
    import jax.numpy as jnp  # optional dependency: only reached with a JAX array in hand

    def svd(a):
        return tuple(jnp.linalg.svd(a, full_matrices=False))

    def qr(a):
        return tuple(jnp.linalg.qr(a, mode="reduced"))

    def eigh(a):
        return tuple(jnp.linalg.eigh(a))

    return {
        "svd": _jax_rule(svd, svd_backward),
        "qr": _jax_rule(qr, qr_backward),
        "eigh": _jax_rule(eigh, eigh_backward),
    }


def differentiable(name: str, a: Array):
    """The rule ``name`` ('svd', 'qr', 'eigh') for ``a``'s library (torch or JAX)."""
    rules = _torch_rules() if aac.is_torch_array(a) else _jax_rules()
    return rules[name]
