"""One-site DMRG with subspace expansion on block-sparse cores (issue 19 with issue 17's
one-site method): the block move keeps the best directions of the expanded matrix, as the
dense truncated SVD of the same matrix does, and the sweeps find the sector's ground state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tnkit as tn
from tnkit.algorithms.block_expansion import (
    expand_blocks,
    perturbation_left,
    perturbation_right,
)
from tnkit.algorithms.blocks import densify
from tnkit.algorithms.engines import BlockEngine, choose_engine

FAST = settings(max_examples=15, deadline=None)

MODELS = {
    "heisenberg": (lambda L: tn.models.heisenberg(L, conserve="Sz"), 2, "spin-half", "Sz"),
    "hubbard": (
        lambda L: tn.models.hubbard(L, U=4.0, conserve=("N", "Sz")),
        4,
        "electron",
        ("N", "Sz"),
    ),
}


def dense(array, *like):
    """The dense array of a block-sparse one, each leg laid out by the union of the
    chargemaps of the same leg in ``like`` (and its own)."""
    maps = []
    for axis, index in enumerate(array.indices):
        chargemap = dict(index.chargemap)
        for other, other_axis in like:
            if other_axis[axis] is not None:
                chargemap.update(other.indices[other_axis[axis]].chargemap)
        maps.append(chargemap)
    return densify(array, maps), maps


def prepared(model: str, L: int, seed: int, sites: int):
    """The block cores and operators of a random sector state, the centre moved (plain
    moves) to site ``sites``, with the left environments up to it and the right ones."""
    build, d, site, conserve = MODELS[model]
    H = build(L)
    target = (L % 2,) if model == "heisenberg" else (L, L % 2)  # Sz ≈ 0; half filling
    psi = tn.MPS.random([d] * L, 6, site=site, conserve=conserve, sector=target, seed=seed)
    engine = BlockEngine(H)
    cores, ops = engine.start(psi, H)
    left = [engine.edge(cores)]
    right = engine.right_environments(cores, ops)
    for i in range(sites):
        step = expand_blocks(
            cores[i],
            cores[i + 1],
            perturbation=None,
            alpha=0.0,
            direction="right",
            max_bond=10**6,
            budget=None,
        )
        cores[i], cores[i + 1] = step.isometry, step.centre
        left.append(engine.grow_left(left[i], cores[i], ops[i]))
    return cores, ops, left, right


def best_weight(matrix: np.ndarray, k: int, within: np.ndarray) -> float:
    """The most squared weight of ``matrix`` that k directions within the column span of
    ``within`` keep: the block move keeps at least this much (its candidates contain the
    centre's span), and exactly the best for the plain move."""
    span = np.linalg.qr(within)[0]
    s = np.linalg.svd(span.conj().T @ matrix, compute_uv=False)
    return float(np.sum(s[:k] ** 2))


@FAST
@given(
    st.sampled_from(sorted(MODELS)),
    st.integers(3, 6),
    st.integers(0, 2**31),
    st.integers(1, 12),
    st.sampled_from([0.0, 1e-3, 0.3]),
    st.data(),
)
def test_block_move_keeps_the_best_directions_of_the_expanded_matrix(
    model, L, seed, cap, alpha, data
):
    i = data.draw(st.integers(0, L - 2))
    cores, ops, left, right = prepared(model, L, seed, i)
    # moving right at site i
    centre, neighbour = cores[i], cores[i + 1]
    P = perturbation_right(left[i], centre, ops[i])
    step = expand_blocks(
        centre,
        neighbour,
        perturbation=P,
        alpha=alpha,
        direction="right",
        max_bond=cap,
        budget=None,
    )
    A, _ = dense(centre, (P, (0, 1, None)), (neighbour, (None, None, 0)))
    Pd, _ = dense(P, (centre, (0, 1, None, None)))
    rows = A.shape[0] * A.shape[1]
    expanded = np.concatenate([A.reshape(rows, -1), alpha * Pd.reshape(rows, -1)], axis=1)
    U, umaps = dense(step.isometry, (centre, (0, 1, None)), (P, (0, 1, None)))
    U = U.reshape(rows, -1)
    k = U.shape[1]
    assert k <= cap
    assert np.allclose(U.conj().T @ U, np.eye(k), atol=1e-12)
    kept = float(np.linalg.norm(U.conj().T @ expanded) ** 2)
    assert kept >= best_weight(expanded, k, A.reshape(rows, -1)) * (1 - 1e-10) - 1e-14
    if alpha == 0.0:
        assert kept == pytest.approx(best_weight(expanded, k, np.eye(rows)), abs=1e-12)
    carried = U.conj().T @ A.reshape(rows, -1)
    norm_a = np.linalg.norm(A) ** 2
    assert step.discarded == pytest.approx(norm_a - np.linalg.norm(carried) ** 2, abs=1e-12)
    B, _ = dense(neighbour, (centre, (2, None, None)), (step.centre, (None, 1, 2)))
    following = np.tensordot(carried, B, axes=1)
    following /= np.linalg.norm(following)
    C, _ = dense(step.centre, (step.isometry, (2, None, None)), (neighbour, (None, 1, 2)))
    assert np.allclose(C.reshape(following.shape), following, atol=1e-12)
    # and back left from site i + 1: the right environment beyond it
    centre, neighbour = step.centre, step.isometry
    P = perturbation_left(right[i + 2], centre, ops[i + 1])
    back = expand_blocks(
        centre,
        neighbour,
        perturbation=P,
        alpha=alpha,
        direction="left",
        max_bond=cap,
        budget=None,
    )
    A, _ = dense(centre, (P, (None, 2, 3)))
    Pd, _ = dense(P, (centre, (None, None, 1, 2)))
    columns = A.shape[1] * A.shape[2]
    expanded = np.concatenate([A.reshape(-1, columns), alpha * Pd.reshape(-1, columns)])
    V, _ = dense(back.isometry, (centre, (None, 1, 2)), (P, (None, 2, 3)))
    V = V.reshape(-1, columns)
    k = V.shape[0]
    assert k <= cap
    assert np.allclose(V @ V.conj().T, np.eye(k), atol=1e-12)
    within = A.reshape(-1, columns).conj().T
    kept = float(np.linalg.norm(expanded @ V.conj().T) ** 2)
    assert kept >= best_weight(expanded.conj().T, k, within) * (1 - 1e-10) - 1e-14


@pytest.mark.parametrize(
    ("model", "L", "labels"),
    [
        ("heisenberg", 10, ["up", "dn"] * 5),
        ("heisenberg", 10, ["up"] * 6 + ["dn"] * 4),
        ("hubbard", 6, ["up", "dn"] * 3),
        ("hubbard", 6, ["up", "0", "dn", "0", "up", "0"]),
    ],
)
def test_one_site_dmrg_on_blocks_equals_two_site_in_the_sector(model, L, labels):
    build, _, site, conserve = MODELS[model]
    H = build(L)
    start = tn.MPS.product_state(labels, site=site, conserve=conserve)
    assert isinstance(choose_engine(H, [start]), BlockEngine)
    one = tn.dmrg(H, max_bond=64, init=start, method="one-site", sweeps=12)
    two = tn.dmrg(H, max_bond=64, init=start, sweeps=12)
    assert abs(one.energy - two.energy) < 1e-9
    assert one.state.charges == H.charges
    assert one.state.singular_values(L // 2 - 1, by_charge=True)  # in one sector
    assert abs(one.variance) < 1e-8


def test_one_site_on_blocks_stays_at_half_filling():
    """The blocks keep the particle number exactly (a dense run keeps it only to rounding,
    and the plain Hubbard chain at μ = 0 is lower at another filling)."""
    L = 8
    H = tn.models.hubbard(L, U=8.0, conserve=("N", "Sz"))
    start = tn.MPS.product_state(["up", "dn"] * (L // 2), site="electron", conserve=("N", "Sz"))
    r = tn.dmrg(H, max_bond=[8, 16, 32], init=start, method="one-site", sweeps=10)
    number = tn.OpSum(L, site="electron")
    for j in range(L):
        number.add(1.0, "N", j)
    assert tn.expectation(r.state, number.to_mpo()) == pytest.approx(L, abs=1e-9)
    two = tn.dmrg(H, max_bond=[8, 16, 32], init=start, sweeps=10)
    assert abs(r.energy - two.energy) < 1e-6
