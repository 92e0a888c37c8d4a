"""OpSum.to_mpo is exact with minimal bonds: the operator Schmidt ranks of the dense sum for
small chains (structured and random coefficients, real and complex), the named cases of
issue 16 (Σ Z_i Z_j → 3, the four-body projector sum → 5, 1 − ⊗P↓ → 2) on long chains
against independent hand-built MPOs, complex Pauli products, and Parker's regular form.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_operators import PAULI, dense_sum, operator_ranks

import tnkit as tn
from tnkit import parker
from tnkit.operators.reduce import minimal_cores, span_basis

DOWN = np.diag([0.0, 1.0])  # P↓ (basis 0 = ↑)


def zz_sum(L):
    ops = tn.OpSum(L, site=[2] * L)
    for i, j in itertools.combinations(range(L), 2):
        ops.add(1.0, PAULI["Z"], i, PAULI["Z"], j)
    return ops


def four_body(N):
    ops = tn.OpSum(N)
    for sites in itertools.combinations(range(N), 4):
        ops.add(1.0, *(x for site in sites for x in (DOWN, site)))
    return ops


def counting_mpo(L, op, order, coef=1.0):
    """Σ over sites i_1 < … < i_order of Π op_i, by hand: the channel counts the ops placed."""
    middle = np.zeros((order + 1, 2, 2, order + 1))
    for a in range(order + 1):
        middle[a, :, :, a] = np.eye(2)
        if a < order:
            middle[a, :, :, a + 1] = op
    return tn.MPO([middle[:1]] + [middle] * (L - 2) + [coef * middle[..., -1:]])


def product_state(bits):
    return tn.MPS([np.eye(2)[b].reshape(1, 2, 1) for b in bits])


def down_counts(L):
    """The number of down spins (bit 1) of every basis state, in C order."""
    return np.indices((2,) * L).reshape(L, -1).sum(axis=0)


def relative_distance(a, b):
    return tn.distance(a, b) / b.norm()


def expected_ramp(L, top):
    """Bonds min(k + 2, top, L − k) of a symmetric sum with ``top − 1`` factors per term."""
    return tuple(min(k + 2, top, L - k) for k in range(L - 1))


# ---------------------------------------------------------------------- named cases


@pytest.mark.parametrize("L", [10, 20, 40])
def test_sum_of_all_zz_pairs_has_bond_three(L):
    mpo = zz_sum(L).to_mpo()
    assert mpo.bond_dims == (2,) + (3,) * (L - 3) + (2,)
    assert mpo.compress().bond_dims == mpo.bond_dims
    reference = 0.5 * counting_mpo(L, PAULI["Z"], 1) @ counting_mpo(L, PAULI["Z"], 1)
    reference = reference - 0.5 * L * tn.MPO.identity([2] * L)  # (M² − L)/2, M = Σ Z
    assert relative_distance(mpo, reference) < 1e-12
    if L == 10:  # diagonal: ((Σ z)² − L)/2 with z = ±1
        z = L - 2 * down_counts(L)
        np.testing.assert_allclose(mpo.to_matrix(), np.diag((z**2 - L) / 2.0), atol=1e-12)


def test_four_body_projector_sum_at_forty_sites_has_bond_five():
    """ITensors issue #555: 91,390 terms P↓_i P↓_j P↓_k P↓_l, i < j < k < l."""
    N = 40
    ops = four_body(N)
    assert len(ops) == math.comb(N, 4)
    mpo = ops.to_mpo()
    assert mpo.bond_dims == expected_ramp(N, 5)
    assert relative_distance(mpo, counting_mpo(N, DOWN, 4)) < 1e-12
    for downs in (0, 3, 4, 17, 40):  # diagonal: C(number of down spins, 4)
        bits = [1] * downs + [0] * (N - downs)
        state = product_state(bits)
        assert tn.expectation(state, mpo) == pytest.approx(math.comb(downs, 4), rel=1e-12)


def test_four_body_projector_sum_is_exact_on_a_small_chain():
    N = 8
    ops = four_body(N)
    mpo = ops.to_mpo()
    dense = np.diag([math.comb(int(n), 4) for n in down_counts(N)]).astype(float)
    np.testing.assert_allclose(mpo.to_matrix(), dense, atol=1e-12)
    assert mpo.bond_dims == operator_ranks(dense, [2] * N) == expected_ramp(N, 5)


def test_one_minus_all_down_keeps_its_tiny_exact_component():
    L = 100
    ops = tn.OpSum(L).add(1.0, "Id", 0).add(-1.0, *(x for k in range(L) for x in (DOWN, k)))
    mpo = ops.to_mpo()
    assert set(mpo.bond_dims) == {2}
    for bits, value in {(1,) * L: 0.0, (0,) * L: 1.0, (0, 1) * (L // 2): 1.0}.items():
        state = product_state(bits)
        assert tn.expectation(state, mpo) == pytest.approx(value, abs=1e-14)


def _pauli_string(L, letters):
    ops = tn.OpSum(L, site=[2] * L)
    return ops.add(1.0, *(x for k, p in enumerate(letters) for x in (PAULI[p], k))).to_mpo()


@pytest.mark.parametrize("theta", [0.3, 1.1])
def test_pauli_string_times_a_complex_rotation(theta):
    """P · (cos θ + i sin θ Z0 Z1) has operator rank 2 across the first cut, 1 elsewhere."""
    L = 5
    P = _pauli_string(L, "XYZXY")
    U = tn.OpSum(L, site=[2] * L).add(math.cos(theta), "Id", 0)
    U = U.add(1j * math.sin(theta), PAULI["Z"], 0, PAULI["Z"], 1).to_mpo()
    assert P.bond_dims == (1,) * (L - 1) and U.bond_dims == (2,) + (1,) * (L - 2)
    assert U.dtype == np.complex128
    zz = np.kron(np.kron(PAULI["Z"], PAULI["Z"]), np.eye(2 ** (L - 2)))
    want_u = math.cos(theta) * np.eye(2**L) + 1j * math.sin(theta) * zz
    np.testing.assert_allclose(U.to_matrix(), want_u, atol=1e-14)
    product = (P @ U).compress()
    assert product.bond_dims == (2,) + (1,) * (L - 2)
    np.testing.assert_allclose(product.to_matrix(), P.to_matrix() @ want_u, atol=1e-13)
    doubled = (P + P).compress()
    assert doubled.bond_dims == (1,) * (L - 1)
    np.testing.assert_allclose(doubled.to_matrix(), 2 * P.to_matrix(), atol=1e-13)


# ---------------------------------------------------------------------- structured sums


def _coefficients(kind, L, rng, complex_):
    i, j = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    table = {
        "constant": np.full((L, L), 0.7),
        "rank one": np.outer(rng.normal(size=L), rng.normal(size=L)),
        "exponential": 0.8 * 0.6 ** np.abs(j - i),
        "two exponentials": 0.6 ** np.abs(j - i) - 0.3 * (-0.5) ** np.abs(j - i),
        "random": rng.normal(size=(L, L)),
    }[kind]
    if complex_:
        table = table * np.exp(1j * rng.uniform(0, 2 * np.pi)) + 1j * (kind == "random") * (
            rng.normal(size=(L, L))
        )
    return table


@given(
    kind=st.sampled_from(["constant", "rank one", "exponential", "two exponentials", "random"]),
    pair=st.sampled_from([("Sz", "Sz"), ("S+", "S-"), ("Sx", "Sy"), ("C", "Cdag")]),
    L=st.integers(2, 6),
    complex_=st.booleans(),
    single=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_structured_two_body_sums_are_exact_with_minimal_bonds(
    kind, pair, L, complex_, single, seed
):
    rng = np.random.default_rng(seed)
    site = "fermion" if pair[0] == "C" else "spin-half"
    coefs = _coefficients(kind, L, rng, complex_)
    ops = tn.OpSum(L, site=site)
    for i, j in itertools.combinations(range(L), 2):
        ops.add(complex(coefs[i, j]) if complex_ else float(coefs[i, j]), pair[0], i, pair[1], j)
    if single:
        for i in range(L):
            ops.add(0.25 * (i + 1), "N" if site == "fermion" else "Sz", i)
    mpo = ops.to_mpo()
    dense = dense_sum(ops.terms, site, [2] * L)
    np.testing.assert_allclose(mpo.to_matrix(), dense, atol=1e-12)
    assert mpo.bond_dims == operator_ranks(dense, [2] * L)


@given(L=st.integers(3, 6), seed=st.integers(0, 2**16), complex_=st.booleans())
def test_three_body_sums_with_product_coefficients(L, seed, complex_):
    """c_ijk = a_i b_j c_k: rank one in every unfolding, far below the automaton's bonds."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, L)) + (1j * rng.normal(size=(3, L)) if complex_ else 0)
    ops = tn.OpSum(L)
    for i, j, k in itertools.combinations(range(L), 3):
        ops.add(
            complex(a[i] * b[j] * c[k]) if complex_ else a[i] * b[j] * c[k],
            "Sz",
            i,
            "Sx",
            j,
            "Sz",
            k,
        )
    mpo = ops.to_mpo()
    dense = dense_sum(ops.terms, "spin-half", [2] * L)
    np.testing.assert_allclose(mpo.to_matrix(), dense, atol=1e-12)
    assert mpo.bond_dims == operator_ranks(dense, [2] * L)


def test_local_relations_between_matrices_are_seen():
    """S+S- + S-S+ on one site is the identity: the sum is 2·1 ⊗ Sz-string, rank 1."""
    L = 4
    ops = tn.OpSum(L)
    for i in range(L - 1):
        ops.add(1.0, "S+", 0, "S-", 0, "Sz", i + 1).add(1.0, "S-", 0, "S+", 0, "Sz", i + 1)
    mpo = ops.to_mpo()
    dense = dense_sum(ops.terms, "spin-half", [2] * L).real
    np.testing.assert_allclose(mpo.to_matrix(), dense, atol=1e-13)
    assert mpo.bond_dims == operator_ranks(dense, [2] * L) == (1, 2, 2)


# ---------------------------------------------------------------------- structure kept


@pytest.mark.parametrize("L", [6, 12])
def test_minimal_mpo_stays_in_regular_form_for_parker(L):
    mpo = zz_sum(L).to_mpo()
    form = parker.regular_form(mpo.cores)
    # no term starts on the last site alone, none ends on the first: no channel there
    assert all(form.has_start[:-1]) and all(form.has_done[1:])
    cores, _, rel = parker.parker_compress(mpo.cores)
    assert tn.MPO(cores).bond_dims == mpo.bond_dims and rel < 1e-13
    projectors = four_body(10).to_mpo()
    cores, _, rel = parker.parker_compress(projectors.cores)
    assert tn.MPO(cores).bond_dims == projectors.bond_dims and rel < 1e-13


def test_models_keep_their_layouts_and_cores_are_sparse():
    h = tn.models.heisenberg(8, h=0.3)
    assert h.bond_dims == (4,) + (5,) * 5 + (4,)
    assert tn.models.hubbard(5, U=2.0).bond_dims == (6,) * 4
    bulk = np.asarray(h.cores[3])
    assert np.count_nonzero(bulk) <= 20  # the automaton's layout, untouched by the reduction


def test_span_basis_and_minimal_cores_on_small_cases():
    m = np.array([[1.0, 2.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    keep, coeffs = span_basis(m)
    assert len(keep) == 2 and np.allclose(m[:, keep] @ coeffs, m, atol=1e-15)
    assert span_basis(np.eye(3)) is None  # independent columns: nothing to do
    assert span_basis(np.zeros((2, 3)))[0] == [0]  # the zero operator keeps one channel
    complex_ = m * (1 + 2j)
    keep, coeffs = span_basis(complex_, [3])
    assert 3 in keep and np.allclose(complex_[:, keep] @ coeffs, complex_, atol=1e-14)
    single = (np.ones((1, 2, 2, 1)),)
    assert minimal_cores(single)[0] is single[0]


def test_empty_and_cancelling_sums_stay_the_zero_operator():
    zero = tn.OpSum(5).add(1.0, "Sz", 0, "Sz", 3).add(-1.0, "Sz", 3, "Sz", 0).to_mpo()
    assert zero.bond_dims == (1,) * 4 and not np.any(zero.to_matrix())
    assert tn.OpSum(5).to_mpo().bond_dims == (1,) * 4
