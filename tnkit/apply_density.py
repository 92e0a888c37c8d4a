"""The density-matrix method of truncated application: a right-to-left sweep
that diagonalises the reduced density matrix of ``O·t`` at every bond and keeps its top
eigenvectors. For operands that conserve the same charges (NumPy), each density matrix is
block-diagonal in the charge of the bond and is diagonalised block by block, so the kept
vectors have definite charges and the result conserves them exactly (a dense ``eigh``
rotates degenerate eigenvectors of different charges together).
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _backend as backend
from ._einsum import contract
from .apply_parts import NORM, Operands, Run
from .mpo import MPO
from .sectors import channel_charges, charge_labels, site_flows
from .symmetry import Charges
from .truncation import Budget, Truncation, choose_rank

__all__ = ["ProductCharges", "density", "eigh_by_charge", "product_charges"]

RIGHT_BLOCK = "astb,xtuz,zbr->xasur"  # O · T · right block of the density sweep


@dataclass(frozen=True)
class ProductCharges:
    """The charges along ``O·t``: per site the charge each (out, spectator) index pair of the
    result adds (``flows``, ``(s·u, components)``), and the total charge of ``O·t``."""

    group: Charges
    flows: tuple
    total: np.ndarray


def product_charges(o: MPO, t: Any) -> ProductCharges | None:
    """The charges along ``o @ t`` when both are NumPy trains that declare the same charges
    and conserve them exactly; None otherwise (the dense sweep runs).

    Example:
        >>> import tnkit as tn
        >>> H = tn.models.heisenberg(4, conserve="Sz")
        >>> psi = tn.MPS.product_state(["up", "up", "up", "dn"], conserve="Sz")
        >>> product_charges(H, psi).total.tolist()
        [[2]]
    """
    if o.charges is None or o.charges != t.charges:
        return None
    if not (backend.is_numpy(o.xp) and backend.is_numpy(t.xp)):
        return None
    group = o.charges[0]
    operator_bonds = channel_charges(o._arrays(), site_flows(o.charges, operator=True), group)
    target = isinstance(t, MPO)
    state_bonds = channel_charges(t._arrays(), site_flows(t.charges, operator=target), group)
    if operator_bonds is None or state_bonds is None:
        return None
    flows = tuple(
        group.reduce(
            q.values[:, None, :] - (q.values if target else np.zeros_like(q.values[:1]))[None]
        ).reshape(-1, len(group.moduli))
        for q in o.charges
    )
    return ProductCharges(group, flows, group.reduce(operator_bonds[-1] + state_bonds[-1]))


def eigh_by_charge(rho: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``eigh`` of a Hermitian ``rho`` that is zero between indices of different charges
    (``rows``): ``(values, vectors, charges)``, the values ascending as ``eigh`` gives them,
    each vector (column) of one charge, found block by block.

    Example:
        >>> rho = np.diag([3.0, 1.0, 2.0])
        >>> values, vectors, charges = eigh_by_charge(rho, np.array([[0], [1], [1]]))
        >>> values.tolist(), charges.ravel().tolist()
        ([1.0, 2.0, 3.0], [1, 1, 0])
    """
    found, which = charge_labels(rows)
    values, vectors, charges = [], [], []
    for g, charge in enumerate(found):
        index = np.flatnonzero(which == g)
        block_values, block_vectors = np.linalg.eigh(rho[np.ix_(index, index)])
        full = np.zeros((rho.shape[0], index.size), dtype=rho.dtype)
        full[index] = block_vectors
        values.append(block_values)
        vectors.append(full)
        charges.append(np.repeat(charge[None, :], index.size, axis=0))
    order = np.argsort(np.concatenate(values), kind="stable")
    return np.concatenate(values)[order], np.hstack(vectors)[:, order], np.vstack(charges)[order]


def density(ops: Operands, truncation: Truncation, charges: ProductCharges | None = None) -> Run:
    """The density-matrix sweep over ``O·t``; by charge block with ``charges``."""
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
    right = None if charges is None else charges.total  # charges of the block's last leg
    norm_sq = None
    budget = None
    for k in range(n_sites - 1, 0, -1):
        y = contract(RIGHT_BLOCK, ops.ops[k], ops.states[k], block)
        x, a, s, u, r = y.shape
        y_mat = xp.reshape(y, (x * a, s * u * r))
        env = xp.reshape(envs[k], (x * a, x * a))  # rows ket, columns bra
        rho = backend.conj_t(y_mat) @ (xp.matrix_transpose(env) @ y_mat)  # Ψ^H Ψ right of bond k-1
        rho = (rho + backend.conj_t(rho)) / 2
        if right is None:
            evals, evecs = backend.eigh(rho)
        else:
            left = charges.group.reduce(right[None, :, :] - charges.flows[k][:, None, :])
            evals, evecs, labels = eigh_by_charge(rho, left.reshape(s * u * r, -1))
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
        if right is not None:
            right = labels[::-1][:rank]
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
