"""One-site DMRG with subspace expansion on block-sparse cores (issue 19 with issue 17's
one-site method): the block move keeps the centre's span and adds directions of the
perturbation, the cut behind the centre equals the dense one, and the sweeps find the
sector's ground state."""

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
    trim_blocks,
)
from tnkit.algorithms.blocks import densify
from tnkit.algorithms.engines import BlockEngine, choose_engine
from tnkit.algorithms.expansion import trim

FAST = settings(max_examples=15, deadline=None)

MODELS = {
    "heisenberg": (lambda L: tn.models.heisenberg(L, conserve="Sz"), 2, "spin-half", "Sz"),
    "hubbard": (
        lambda L: tn.models.hubbard(L, U=4.0, conserve=("N", "Sz")),
        4,
        "electron",
        ("N", "Sz"),
    ),
    "hubbard U(1)xZ2": (  # a group symmray names no array for: tnkit's ProductGroup
        lambda L: tn.models.hubbard(L, U=4.0, conserve=("N", "parity")),
        4,
        "electron",
        ("N", "parity"),
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
    moves) to site ``sites``, with the left environments up to it and the right ones,
    and the engine."""
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
            direction="right",
            max_bond=10**6,
            budget=None,
        )
        cores[i], cores[i + 1] = step.isometry, step.centre
        left.append(engine.grow_left(left[i], cores[i], ops[i]))
    return cores, ops, left, right, engine


def best_weight(matrix: np.ndarray, k: int) -> float:
    """The most squared weight of ``matrix`` that k directions keep (its k leading
    singular values): the plain block move keeps exactly this much."""
    s = np.linalg.svd(matrix, compute_uv=False)
    return float(np.sum(s[:k] ** 2))


def check_move(step, A, Pd, rows_first, cap, grown, grow):
    """The isometry is orthonormal; grown, it holds the centre's span (nothing is lost)
    and directions of the perturbation; plain, the best ``cap`` directions of the centre."""
    U, _ = dense(step.isometry, *grown)
    if rows_first:
        rows = A.shape[0] * A.shape[1]
        U, a, p = U.reshape(rows, -1), A.reshape(rows, -1), Pd.reshape(rows, -1)
    else:
        columns = A.shape[1] * A.shape[2]
        U = U.reshape(-1, columns).conj().T
        a, p = A.reshape(-1, columns).conj().T, Pd.reshape(-1, columns).conj().T
    k = U.shape[1]
    assert np.allclose(U.conj().T @ U, np.eye(k), atol=1e-12)
    carried = U.conj().T @ a
    if grow:
        assert step.discarded == 0.0
        assert np.allclose(U @ carried, a, atol=1e-12)  # the centre's span is kept
        outside = p - U @ (U.conj().T @ p)
        inside = p - np.linalg.qr(a)[0] @ (np.linalg.qr(a)[0].conj().T @ p)
        assert np.linalg.norm(outside) < np.linalg.norm(inside) + 1e-12
    else:
        assert k <= cap
        assert float(np.linalg.norm(carried) ** 2) == pytest.approx(best_weight(a, k), abs=1e-12)
        norm_a = np.linalg.norm(a) ** 2
        assert step.discarded == pytest.approx(norm_a - np.linalg.norm(carried) ** 2, abs=1e-12)
    return carried


def random_states(shortest: int):
    """Hypothesis cases: a model, a chain length from ``shortest`` to 6, a seed, a cap."""
    return given(
        st.sampled_from(sorted(MODELS)),
        st.integers(shortest, 6),
        st.integers(0, 2**31),
        st.integers(1, 12),
        st.data(),
    )


@FAST
@random_states(3)
def test_block_move_keeps_the_span_or_the_best_directions(model, L, seed, cap, data):
    i, grow = data.draw(st.integers(0, L - 2)), data.draw(st.booleans())
    cores, ops, left, right, _ = prepared(model, L, seed, i)
    cut = {"max_bond": cap, "budget": None}
    # moving right at site i
    centre, neighbour = cores[i], cores[i + 1]
    P = perturbation_right(left[i], centre, ops[i])
    step = expand_blocks(
        centre, neighbour, perturbation=P if grow else None, direction="right", **cut
    )
    A, _ = dense(centre, (P, (0, 1, None)), (step.isometry, (0, 1, None)))
    Pd, _ = dense(P, (centre, (0, 1, None, None)), (step.isometry, (0, 1, None, None)))
    grown = ((centre, (0, 1, None)), (P, (0, 1, None)))
    carried = check_move(step, A, Pd, True, cap, grown, grow)
    B, _ = dense(neighbour, (centre, (2, None, None)), (step.centre, (None, 1, 2)))
    following = np.tensordot(carried, B, axes=1)
    following /= np.linalg.norm(following)
    C, _ = dense(step.centre, (step.isometry, (2, None, None)), (neighbour, (None, 1, 2)))
    assert np.allclose(C.reshape(following.shape), following, atol=1e-12)
    # and back left from site i + 1: the right environment beyond it
    centre, neighbour = step.centre, step.isometry
    P = perturbation_left(right[i + 2], centre, ops[i + 1])
    back = expand_blocks(
        centre, neighbour, perturbation=P if grow else None, direction="left", **cut
    )
    A, _ = dense(centre, (P, (None, 2, 3)), (back.isometry, (None, 1, 2)))
    Pd, _ = dense(P, (centre, (None, None, 1, 2)), (back.isometry, (None, None, 1, 2)))
    check_move(back, A, Pd, False, cap, ((centre, (None, 1, 2)), (P, (None, 2, 3))), grow)


@FAST
@random_states(4)
def test_block_trim_equals_the_dense_cut(model, L, seed, cap, data):
    """The cut of the bond behind the centre keeps the same weight and the same state as
    the dense cut of the same tensors, and the core behind stays an isometry; both
    directions."""
    i = data.draw(st.integers(1, L - 3))
    cores, _, _, _, _ = prepared(model, L, seed, i)
    # moving right: the bond behind is the centre's left one
    centre, behind = cores[i], cores[i - 1]
    cut = trim_blocks(centre, behind, direction="right", max_bond=cap)
    a, _ = dense(centre, (behind, (2, None, None)))
    b, _ = dense(behind, (centre, (None, None, 0)))
    check_trim(cut, trim(a, b, direction="right", max_bond=cap), behind, centre, "right")
    # moving left from site i + 1: the bond behind is the centre's right one
    step = expand_blocks(
        centre, cores[i + 1], perturbation=None, direction="right", max_bond=10**6, budget=None
    )
    centre, behind = step.centre, cores[i + 2]
    cut = trim_blocks(centre, behind, direction="left", max_bond=cap)
    a, _ = dense(centre, (behind, (None, None, 0)))
    b, _ = dense(behind, (centre, (2, None, None)))
    check_trim(cut, trim(a, b, direction="left", max_bond=cap), behind, centre, "left")


def check_trim(cut, reference, behind, centre, direction):
    assert cut.discarded == pytest.approx(reference.discarded, abs=1e-12)
    if direction == "right":
        kept, _ = dense(cut.behind, (behind, (0, 1, None)), (cut.centre, (None, None, 0)))
        rest, _ = dense(cut.centre, (cut.behind, (2, None, None)), (centre, (None, 1, 2)))
        u = kept.reshape(-1, kept.shape[2])
        pair, expected = (
            np.tensordot(kept, rest, axes=1),
            np.tensordot(reference.behind, reference.centre, axes=1),
        )
    else:
        kept, _ = dense(cut.behind, (cut.centre, (2, None, None)), (behind, (None, 1, 2)))
        rest, _ = dense(cut.centre, (centre, (0, 1, None)), (cut.behind, (None, None, 0)))
        u = kept.reshape(kept.shape[0], -1).T
        pair, expected = (
            np.tensordot(rest, kept, axes=1),
            np.tensordot(reference.centre, reference.behind, axes=1),
        )
    assert np.allclose(u.conj().T @ u, np.eye(u.shape[1]), atol=1e-12)
    assert u.shape[1] == (reference.behind.shape[2 if direction == "right" else 0])
    # the same state up to the cut's own freedom (a basis change within degenerate values)
    assert abs(abs(np.vdot(pair, expected)) - 1.0) < 1e-9


@pytest.mark.parametrize(
    ("model", "L", "labels"),
    [
        ("heisenberg", 10, ["up", "dn"] * 5),
        ("heisenberg", 10, ["up"] * 6 + ["dn"] * 4),
        ("hubbard", 6, ["up", "dn"] * 3),
        ("hubbard", 6, ["up", "0", "dn", "0", "up", "0"]),
        ("hubbard U(1)xZ2", 6, ["up", "dn", "updn", "0", "up", "0"]),
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
