"""Bare NumPy/LAPACK tensor trains: the LAPACK floor of each workload, and the error checks.

Nothing here imports tnkit or a peer library, so the errors it measures are independent of them.
Cores are lists of NumPy arrays: MPS (Dl, d, Dr), MPO (Dl, d_out, d_in, Dr), boundary bonds of 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.linalg

Cores = list[np.ndarray]


def bond_dims(phys_dims: Sequence[int], max_bond: int) -> list[int]:
    """Bond dimensions L+1 (boundaries included) of a full-rank train capped at ``max_bond``."""
    bonds = [1]
    for k in range(1, len(phys_dims)):
        left = math.prod(phys_dims[:k])
        right = math.prod(phys_dims[k:])
        bonds.append(min(left, right, max_bond))
    return [*bonds, 1]


def random_mps(rng: np.random.Generator, length: int, phys_dim: int, max_bond: int) -> Cores:
    """Gaussian MPS cores scaled by 1/sqrt(Dl*d), so the norm stays O(1) along the chain."""
    bonds = bond_dims([phys_dim] * length, max_bond)
    return [
        rng.standard_normal((bonds[k], phys_dim, bonds[k + 1])) / math.sqrt(bonds[k] * phys_dim)
        for k in range(length)
    ]


def fused_dims(out_dims: Sequence[int], in_dims: Sequence[int]) -> list[int]:
    """Dimensions o_k * i_k of the MPO legs fused per site."""
    return [o * i for o, i in zip(out_dims, in_dims, strict=True)]


def random_mpo(
    rng: np.random.Generator, out_dims: Sequence[int], in_dims: Sequence[int], max_bond: int
) -> Cores:
    """Gaussian MPO cores (Dl, o, i, Dr) with bonds capped at ``max_bond``."""
    bonds = bond_dims(fused_dims(out_dims, in_dims), max_bond)
    return [
        rng.standard_normal((bonds[k], o, i, bonds[k + 1])) / math.sqrt(bonds[k] * o * i)
        for k, (o, i) in enumerate(zip(out_dims, in_dims, strict=True))
    ]


def tt_svd(tensor: np.ndarray, dims: Sequence[int], max_bond: int) -> Cores:
    """Sequential TT-SVD: reshape, gesdd (full_matrices=False), keep ``max_bond`` values."""
    cores: Cores = []
    rest = np.asarray(tensor).reshape(1, -1)
    for d in dims[:-1]:
        left_bond = rest.shape[0]
        u, s, vt = scipy.linalg.svd(
            rest.reshape(left_bond * d, -1), full_matrices=False, check_finite=False
        )
        keep = min(max_bond, s.size)
        cores.append(u[:, :keep].reshape(left_bond, d, keep))
        rest = s[:keep, None] * vt[:keep]
    cores.append(rest.reshape(rest.shape[0], dims[-1], 1))
    return cores


def interleave(matrix: np.ndarray, out_dims: Sequence[int], in_dims: Sequence[int]) -> np.ndarray:
    """Reorder W (out, in) to (o1 i1, o2 i2, ...) as a contiguous tensor of fused legs."""
    n = len(out_dims)
    order = [ax for k in range(n) for ax in (k, n + k)]
    tensor = matrix.reshape(*out_dims, *in_dims).transpose(order)
    return np.ascontiguousarray(tensor).reshape(fused_dims(out_dims, in_dims))


def mpo_from_matrix(
    matrix: np.ndarray, out_dims: Sequence[int], in_dims: Sequence[int], max_bond: int
) -> Cores:
    """MPO-Net interleave of W followed by the sequential TT-SVD; cores (Dl, o, i, Dr)."""
    cores = tt_svd(interleave(matrix, out_dims, in_dims), fused_dims(out_dims, in_dims), max_bond)
    shapes = zip(out_dims, in_dims, strict=True)
    return [c.reshape(c.shape[0], *oi, c.shape[2]) for c, oi in zip(cores, shapes, strict=True)]


def mps_to_dense(cores: Sequence[np.ndarray]) -> np.ndarray:
    """Contract MPS cores left to right into the full vector (C order over sites)."""
    vec = np.ones((1, 1), dtype=np.result_type(*cores))
    for core in cores:
        vec = (vec @ core.reshape(core.shape[0], -1)).reshape(-1, core.shape[-1])
    return vec.reshape(-1)


def mpo_to_matrix(cores: Sequence[np.ndarray]) -> np.ndarray:
    """Contract MPO cores (Dl, o, i, Dr) into W (out, in), undoing the MPO-Net interleave."""
    out_dims = [c.shape[1] for c in cores]
    in_dims = [c.shape[2] for c in cores]
    fused = [c.reshape(c.shape[0], -1, c.shape[-1]) for c in cores]
    n = len(cores)
    tensor = mps_to_dense(fused).reshape([d for c in cores for d in c.shape[1:3]])
    tensor = tensor.transpose([*range(0, 2 * n, 2), *range(1, 2 * n, 2)])
    return tensor.reshape(math.prod(out_dims), math.prod(in_dims))


def _left_sweep(cores: Sequence[np.ndarray]) -> Cores:
    """QR sweep left to right: every core but the last becomes a left isometry."""
    result = list(cores)
    for k in range(len(result) - 1):
        left_bond, d, right_bond = result[k].shape
        q, r = np.linalg.qr(result[k].reshape(left_bond * d, right_bond))
        result[k] = q.reshape(left_bond, d, -1)
        nxt = result[k + 1]
        result[k + 1] = (r @ nxt.reshape(nxt.shape[0], -1)).reshape(r.shape[0], *nxt.shape[1:])
    return result


def _mirror(cores: Sequence[np.ndarray]) -> Cores:
    """Reverse the chain: site order and the two bond legs of every core."""
    return [c.transpose(2, 1, 0) for c in reversed(cores)]


def canonicalize(cores: Sequence[np.ndarray], centre: int) -> Cores:
    """QR sweep to centre L-1 (left-canonical) or 0 (right-canonical, by mirroring)."""
    if centre == len(cores) - 1:
        return _left_sweep(cores)
    if centre == 0:
        return _mirror(_left_sweep(_mirror(cores)))
    raise ValueError(f"centre must be 0 or L-1, got {centre}")


def compress(cores: Sequence[np.ndarray], max_bond: int) -> Cores:
    """QR sweep left to right, then truncated-SVD sweep right to left; the result has centre 0."""
    result = _left_sweep(cores)
    for k in range(len(result) - 1, 0, -1):
        left_bond, d, right_bond = result[k].shape
        u, s, vt = scipy.linalg.svd(
            result[k].reshape(left_bond, d * right_bond), full_matrices=False, check_finite=False
        )
        keep = min(max_bond, s.size)
        result[k] = vt[:keep].reshape(keep, d, right_bond)
        prev = result[k - 1]
        us = u[:, :keep] * s[:keep]
        result[k - 1] = (prev.reshape(-1, prev.shape[-1]) @ us).reshape(*prev.shape[:2], keep)
    return result


def overlap_log(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray], rescale: bool = True
) -> tuple[complex, float]:
    """<a|b> by transfer matrices, two GEMMs per site; returns (mantissa, log_scale).

    The value is ``mantissa * exp(log_scale)``; with ``rescale`` the environment is normalised at
    every site so long chains neither overflow nor underflow.
    """
    env = np.ones((1, 1), dtype=np.result_type(a[0], b[0]))
    log_scale = 0.0
    for ca, cb in zip(a, b, strict=True):
        half = (env @ cb.reshape(cb.shape[0], -1)).reshape(ca.shape[0] * ca.shape[1], -1)
        env = ca.reshape(-1, ca.shape[2]).conj().T @ half
        if rescale:
            scale = float(np.abs(env).max())
            if scale > 0:
                env = env / scale
                log_scale += math.log(scale)
    return complex(env[0, 0]), log_scale


def overlap(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> complex:
    """<a|b> without rescaling: the LAPACK/BLAS floor of the overlap workload."""
    mantissa, _ = overlap_log(a, b, rescale=False)
    return mantissa


def log_norm(cores: Sequence[np.ndarray]) -> float:
    """log ||a|| from the rescaled transfer-matrix contraction."""
    mantissa, log_scale = overlap_log(cores, cores)
    return 0.5 * (math.log(abs(mantissa)) + log_scale)


def mps_rel_error(reference: Sequence[np.ndarray], approx: Sequence[np.ndarray]) -> float:
    """||a - b|| / ||a|| from err^2 = <a|a> + <b|b> - 2 Re<a|b> (floor ~1e-7 from cancellation)."""
    log_aa = 2 * log_norm(reference)
    log_bb = 2 * log_norm(approx)
    ab, log_ab = overlap_log(reference, approx)
    err2 = 1.0 + math.exp(log_bb - log_aa) - 2.0 * ab.real * math.exp(log_ab - log_aa)
    return math.sqrt(max(err2, 0.0))


def isometry_defect(cores: Sequence[np.ndarray], centre: int) -> float:
    """max |G - I| over cores left of ``centre`` (A^H A) and right of it (B B^H): 0 if canonical."""
    defect = 0.0
    for k, core in enumerate(cores):
        if k == centre:
            continue
        left = k < centre
        matrix = core.reshape(-1, core.shape[-1]) if left else core.reshape(core.shape[0], -1)
        gram = matrix.conj().T @ matrix if left else matrix @ matrix.conj().T
        defect = max(defect, float(np.abs(gram - np.eye(gram.shape[0])).max()))
    return defect


def max_bond_dim(cores: Sequence[np.ndarray]) -> int:
    """Largest bond dimension of a train."""
    return max(max(c.shape[0], c.shape[-1]) for c in cores)


def rel_error(reference: np.ndarray, approx: np.ndarray) -> float:
    """Relative Frobenius error ||reference - approx|| / ||reference|| of dense arrays."""
    return float(np.linalg.norm(reference - approx) / np.linalg.norm(reference))
