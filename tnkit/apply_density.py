"""The density-matrix method of truncated application (McCulloch's): a right-to-left sweep
that diagonalises the reduced density matrix of ``O·t`` at every bond and keeps its top
eigenvectors.
"""

from __future__ import annotations

import itertools
import math
import operator

import numpy as np

from . import _backend as backend
from ._einsum import contract
from .apply_parts import NORM, Operands, Run
from .truncation import Budget, Truncation, choose_rank

__all__ = ["density"]

RIGHT_BLOCK = "astb,xtuz,zbr->xasur"  # O · T · right block of the density sweep


def density(ops: Operands, truncation: Truncation) -> Run:
    xp = ops.xp
    n_sites = ops.length
    envs = [ops.ones(4)]
    for w, c in zip(ops.ops[:-1], ops.states[:-1], strict=True):
        envs.append(contract(NORM, envs[-1], c, ops.conj(c), w, ops.conj(w)))
    cores: list = [None] * n_sites
    discarded = [0.0] * (n_sites - 1)
    sizes = [int(w.shape[1] * c.shape[2]) for w, c in zip(ops.ops, ops.states, strict=True)]
    left_phys = list(itertools.accumulate(sizes, operator.mul, initial=1))  # exact ints
    block = ops.ones(3)
    norm_sq = None
    budget = None
    for k in range(n_sites - 1, 0, -1):
        y = contract(RIGHT_BLOCK, ops.ops[k], ops.states[k], block)
        x, a, s, u, r = y.shape
        y_mat = xp.reshape(y, (x * a, s * u * r))
        env = xp.reshape(envs[k], (x * a, x * a))  # rows ket, columns bra
        rho = backend.conj_t(y_mat) @ (xp.matrix_transpose(env) @ y_mat)  # Ψ^H Ψ right of bond k-1
        rho = (rho + backend.conj_t(rho)) / 2
        evals, evecs = backend.eigh(rho)
        if norm_sq is None:  # trace of the last site's density matrix: ‖Ot‖² (4-layer sweep)
            norm_sq = float(np.sum(backend.to_numpy(evals)))
            budget = Budget(truncation.total_budget(math.sqrt(max(norm_sq, 0.0))), n_sites - 1)
        weights = np.clip(np.asarray(backend.to_numpy(evals), dtype=np.float64)[::-1], 0.0, None)
        structural = int(min(weights.size, a * x, left_phys[k]))
        if truncation.is_exact:
            rank = structural  # eigh cannot tell tiny weights from zero: keep every direction
        else:
            rank = choose_rank(
                np.sqrt(weights),
                shape=(a * x, weights.size),
                eps=ops.eps,
                max_bond=truncation.max_bond,
                budget=budget.allowance(),
            )
            rank = max(1, min(rank, structural))
        discarded[k - 1] = float(np.sum(weights[rank:]))
        budget.spend(discarded[k - 1])
        kept = xp.flip(evecs, axis=1)[:, :rank]
        cores[k] = xp.reshape(backend.conj_t(kept), (rank, s, u, r))
        block = xp.reshape(y_mat @ kept, (x, a, rank))
    first = contract(RIGHT_BLOCK, ops.ops[0], ops.states[0], block)
    _, _, s, u, r = first.shape
    cores[0] = xp.reshape(first, (1, s, u, r))
    # ⟨y, Ot⟩ = Σ conj(y_0)·(O_0 T_0 · block) = ‖y_0‖²: the blocks are the 3-layer environment.
    if norm_sq is None:
        norm_sq = backend.frob_sq(cores[0])
    err_sq = norm_sq - backend.frob_sq(cores[0])
    return Run(cores, norm_sq, err_sq, discarded, "density", {})
