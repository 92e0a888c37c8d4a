"""Parker canonical form and compression of local MPOs (tnkit.parker).

Exact compression reproduces the operator (dense for L ≤ 8, action on random states for
L = 40) with the optimal regular-form bonds and stays in regular form; the canonical
conditions of the paper hold; a relative tolerance on a power-law Hamiltonian grows the
bond slowly and its error bound is rigorous; an MPO without identity channels is refused.
"""

from __future__ import annotations

import numpy as np
import pytest

import tnkit as tn
from tnkit import parker
from tnkit.truncation import Truncation

K_TERMS = [(1.0, 0.5), (-2.0, 0.25), (0.3, 0.9)]


def power_law(length, alpha=2.0):
    """Σ_{i<j} Sz_i Sz_j / |i − j|^alpha (exact OpSum MPO, bond 2 + min(k+1, L−1−k))."""
    ops = tn.OpSum(length)
    for i in range(length):
        for j in range(i + 1, length):
            ops.add(1.0 / (j - i) ** alpha, "Sz", i, "Sz", j)
    return ops.to_mpo()


def magnetisation(length):
    ops = tn.OpSum(length)
    for i in range(length):
        ops.add(1.0, "Sz", i)
    return ops.to_mpo()


MODELS = {
    "heisenberg": (lambda n: tn.models.heisenberg(n, J=1.0, Jz=0.7, h=0.3), 5),
    "ising": (lambda n: tn.models.ising(n, J=1.0, g=0.7), 3),
    "hubbard": (lambda n: tn.models.hubbard(n, t=1.0, U=4.0, mu=0.2), 6),
    "long_range_exp": (lambda n: tn.models.long_range_exp(n, K_TERMS), 2 + len(K_TERMS)),
}


def compressed(o, **truncation):
    cores, discarded, rel = parker.parker_compress(o.cores, **truncation)
    return tn.MPO(cores), discarded, rel


def relative_action_error(o, reference, length, d, seeds=(0, 1)):
    worst = 0.0
    for seed in seeds:
        psi = tn.MPS.random([d] * length, 3, seed=seed)
        want = reference @ psi
        worst = max(worst, tn.distance(o @ psi, want) / want.norm())
    return worst


def normalised_gram(block, axis):
    """Σ over the other channel leg of Tr(X†Y)/d between the channels on ``axis``."""
    d = block.shape[1]
    flat = np.moveaxis(block, axis, 0).reshape(block.shape[axis], -1)
    return flat.conj() @ flat.T / d


def assert_regular(cores, form):
    """Identity channels where ``form`` says: start first, done last, exactly the identity,
    start column and done row zero elsewhere."""
    n = len(cores)
    for k, core in enumerate(cores):
        eye = np.eye(core.shape[1])
        start_left, done_left = form.flags(k - 1)
        start_right, done_right = form.flags(k)
        if start_right:
            assert start_left
            np.testing.assert_array_equal(core[0, :, :, 0], eye)
            assert not np.any(core[1:, :, :, 0])
        if done_left and k < n:
            assert done_right
            np.testing.assert_array_equal(core[-1, :, :, -1], eye)
            assert not np.any(core[-1, :, :, :-1])


# ---------------------------------------------------------------------- exactness, bonds


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("combine", ["h", "h+h", "h+0.5h"])
def test_exact_compression_is_the_same_operator_with_optimal_bonds(name, combine):
    build, inner = MODELS[name]
    h = build(4 if name == "hubbard" else 7)  # dense: 4^4 or 2^7
    o = {"h": h, "h+h": h + h, "h+0.5h": h + 0.5 * h}[combine]
    scale = {"h": 1.0, "h+h": 2.0, "h+0.5h": 1.5}[combine]
    c, discarded, rel = compressed(o)
    want = scale * h.to_matrix()
    assert np.linalg.norm(c.to_matrix() - want) <= 1e-13 * np.linalg.norm(want)
    assert max(c.bond_dims) == inner
    assert c.bond_dims[(len(c) - 2) // 2] == inner
    assert rel < 1e-13
    assert_regular(c.cores, parker.regular_form(c.cores))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_long_chain_action_and_bonds(name):
    build, inner = MODELS[name]
    h = build(40)
    doubled = h + 0.5 * h
    c, _, rel = compressed(doubled)
    assert set(c.bond_dims[3:-3]) == {inner}
    assert c.bond_dims == h.bond_dims or max(c.bond_dims) == inner
    d = h.out_dims[0]
    assert relative_action_error(c, doubled, 40, d) < 1e-10
    assert rel < 1e-12


def test_product_of_sums_reaches_bond_three():
    m = magnetisation(8)
    square = m @ m  # raw bond 4; M² = M_L² ⊗ 1 + 1 ⊗ M_R² + 2 M_L ⊗ M_R
    assert set(square.bond_dims) == {4}
    c, _, _ = compressed(square)
    assert max(c.bond_dims) == 3
    want = square.to_matrix()
    assert np.linalg.norm(c.to_matrix() - want) <= 1e-13 * np.linalg.norm(want)


def test_lower_triangular_convention_and_idempotence():
    h = tn.models.heisenberg(8, h=0.2)
    flipped = tn.MPO([core[::-1, :, :, ::-1] for core in h.cores])  # done first, start last
    c, _, _ = compressed(flipped)
    assert c.bond_dims == h.bond_dims
    assert np.allclose(c.to_matrix(), h.to_matrix(), atol=1e-13)
    again, discarded, _ = compressed(c)
    assert again.bond_dims == c.bond_dims and sum(discarded) < 1e-28


def test_complex_and_float32():
    h = tn.models.long_range_exp(8, [(1.0 + 0.5j, 0.5), (0.5, -0.3 + 0.2j)], "S+", "S-")
    o = h + h.conj() if hasattr(h, "conj") else h + h
    c, _, _ = compressed(o)
    assert c.dtype == o.dtype
    assert np.allclose(c.to_matrix(), o.to_matrix(), atol=1e-13)
    single = tn.MPO([np.asarray(core, dtype=np.float32) for core in tn.models.ising(6).cores])
    c32, _, _ = compressed(single + single)
    assert c32.dtype == single.dtype and max(c32.bond_dims) == 3
    assert np.allclose(c32.to_matrix(), 2 * single.to_matrix(), atol=1e-5)


# ---------------------------------------------------------------------- canonical forms


def test_canonical_conditions():
    """Left: without the done row/column, Σ_a ⟨W[a,b], W[a,c]⟩ = δ_bc (normalised trace)
    and the start column is e_0 ⊗ 1 (so middle left operators are traceless). Right (the
    compressed cores 1..L−1): without the start row/column, Σ_b ⟨W[a,b], W[c,b]⟩ = δ_ac
    and the done row is e_last ⊗ 1."""
    h = tn.models.heisenberg(10, h=0.3) + tn.models.long_range_exp(10, K_TERMS)
    form = parker.regular_form(h.cores)
    left = parker.canonical(form, "left")
    for k, core in enumerate(left.cores[:-1]):
        _, done_left = left.flags(k - 1)
        _, done_right = left.flags(k)
        block = core[: core.shape[0] - done_left, :, :, : core.shape[-1] - done_right]
        gram = normalised_gram(block, axis=3)
        np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-13)
    assert np.allclose(tn.MPO(left.cores).to_matrix(), h.to_matrix(), atol=1e-12)
    c, _, _ = compressed(h)
    out = parker.regular_form(c.cores)
    for k in range(1, len(c.cores)):
        core = c.cores[k]
        start_left, _ = out.flags(k - 1)
        start_right, _ = out.flags(k)
        block = core[int(start_left) :, :, :, int(start_right) :]
        gram = normalised_gram(block, axis=0)
        np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-13)
    assert_regular(c.cores, out)


# ---------------------------------------------------------------------- truncation


def test_relative_tolerance_on_a_power_law():
    length = 40
    h = power_law(length) + tn.models.heisenberg(length)
    exact, _, _ = compressed(h)
    bonds = []
    for rtol in (1e-2, 1e-4, 1e-6, 1e-8):
        c, discarded, rel = compressed(h, rtol=rtol)
        bonds.append(max(c.bond_dims))
        assert rel <= rtol
        assert relative_action_error(c, h, length, 2) <= 2 * rtol
        assert_regular(c.cores, parker.regular_form(c.cores))
    assert bonds == sorted(bonds) and bonds[-1] <= max(exact.bond_dims) < max(h.bond_dims)
    assert bonds[-1] - bonds[0] <= 8  # slow growth: a few channels per two decades


def test_the_bound_is_rigorous_and_max_bond_binds():
    h = power_law(8) + tn.models.ising(8)
    norm = np.linalg.norm(h.to_matrix())
    for request in ({"rtol": 1e-3}, {"max_bond": 3}, {"max_bond": 4, "rtol": 1e-12}):
        result = parker.truncate_regular(h.cores, Truncation(**request))
        c = tn.MPO(result.cores)
        measured = np.linalg.norm(c.to_matrix() - h.to_matrix())
        assert measured <= result.rel_error * norm * (1 + 1e-9) + 1e-12 * norm
        assert abs(result.norm - norm) <= 1e-12 * norm
        if "max_bond" in request:
            assert max(c.bond_dims) <= request["max_bond"]
        assert result.tolerance_met == (request != {"max_bond": 4, "rtol": 1e-12})


def test_atol_is_in_absolute_frobenius_units():
    h = power_law(8)
    norm = np.linalg.norm(h.to_matrix())
    c, _, rel = compressed(h, atol=1e-3 * norm)
    assert rel <= 1e-3
    assert np.linalg.norm(c.to_matrix() - h.to_matrix()) <= 1e-3 * norm * (1 + 1e-9)


# ---------------------------------------------------------------------- bad input


def test_not_regular_form_is_refused():
    with pytest.raises(ValueError, match="^o: not in regular form"):
        parker.parker_compress(tn.MPO.random([2] * 5, [2] * 5, 3, seed=0).cores)
    with pytest.raises(ValueError, match="^o: .*square"):
        parker.parker_compress(tn.MPO.random([2] * 3, [3] * 3, 2, seed=0).cores)
    with pytest.raises(ValueError, match="^max_bond"):
        parker.parker_compress(tn.models.ising(5).cores, max_bond=1)
