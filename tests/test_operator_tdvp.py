"""Operator TDVP (Heisenberg picture) against exact e^{iHt} O e^{−iHt}, and Mendl's
augmentation: tr[H O(t)] conserved where plain TDVP drifts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import tnkit as tn
from tnkit.algorithms import tdvp_operator
from tnkit.algorithms.operator_tdvp import (
    commutator_mpo,
    frobenius_distance,
    operator_to_state,
    state_to_operator,
    trace_distance,
)


def xxz(L: int, site: str, J: float = 1.0, Jz: float = 1.2, h: float = -0.2) -> tn.MPO:
    """Mendl's setting: J(Sx Sx + Sy Sy) + Jz Sz Sz − h Sz."""
    ops = tn.OpSum(L, site=site)
    for i in range(L - 1):
        ops.add(0.5 * J, "S+", i, "S-", i + 1).add(0.5 * J, "S-", i, "S+", i + 1)
        ops.add(Jz, "Sz", i, "Sz", i + 1)
    for i in range(L):
        ops.add(-h, "Sz", i)
    return ops.to_mpo()


def random_operator(L: int, d: int, seed: int) -> tn.MPO:
    o = tn.MPO.random([d] * L, [d] * L, 2, seed=seed)
    return o * (1 / o.norm())


def exact(H: tn.MPO, O: tn.MPO, t: float) -> np.ndarray:
    u = scipy.linalg.expm(-1j * t * H.to_matrix())
    return u.conj().T @ O.to_matrix() @ u


@settings(max_examples=10, deadline=None)
@given(
    L=st.integers(2, 4), site=st.sampled_from(["spin-half", "spin-one"]), seed=st.integers(0, 99)
)
def test_commutator_mpo_is_the_hermitian_superoperator_o_h_minus_h_o(L, site, seed):
    L = min(L, 3) if site == "spin-one" else L  # the dense check is (d^2L)²: 9^6 at most
    H = xxz(L, site)
    d = H.in_dims[0]
    O = tn.MPO.random([d] * L, [d] * L, 2, seed=seed, dtype=np.complex128)
    generator = commutator_mpo(H).to_matrix()
    h, o = H.to_matrix(), O.to_matrix()
    paired = [k for site_ in range(L) for k in (site_, L + site_)]
    target = (o @ h - h @ o).reshape([d] * (2 * L)).transpose(paired).ravel()
    image = generator @ operator_to_state(O).to_dense().ravel()
    assert np.allclose(image, target, atol=1e-12)
    assert np.allclose(generator, generator.conj().T, atol=1e-12)


def test_vectorisation_round_trip_keeps_scale_and_values():
    O = tn.MPO.random([2, 3, 2], [3, 2, 2], 3, seed=0) * 2.0**900
    back = state_to_operator(operator_to_state(O), O.out_dims, O.in_dims)
    assert back.scale_exponent == O.scale_exponent
    assert back.log_norm() == pytest.approx(O.log_norm(), rel=1e-14)
    with pytest.raises(ValueError, match="psi"):
        state_to_operator(operator_to_state(O), O.in_dims, [5, 5, 5])


@pytest.mark.parametrize("site, L", [("spin-half", 4), ("spin-one", 3)])
@pytest.mark.parametrize("augment", [False, True])
def test_at_full_bond_one_site_evolution_is_exact(site, L, augment):
    H = xxz(L, site)
    d = H.in_dims[0]
    O = tn.MPO.random([d] * L, [d] * L, d ** (2 * L), seed=1)  # every bond at its maximum
    O = O * (1 / O.norm())
    r = tdvp_operator(H, O, 1.0, dt=0.1, method="one-site", augment=augment)
    assert np.linalg.norm(r.operator.to_matrix() - exact(H, O, 1.0)) < 1e-8
    e0 = np.trace(H.to_matrix() @ O.to_matrix())
    assert r.energy[0] == pytest.approx(e0, abs=1e-12)
    assert np.max(np.abs(r.energy - e0)) < 1e-9
    assert r.times[-1] == pytest.approx(1.0) and len(r.energy) == len(r.times)


def test_two_site_from_a_small_bond_converges_to_the_exact_operator():
    H = xxz(4, "spin-half")
    O = random_operator(4, 2, seed=1)
    errors = [
        np.linalg.norm(
            tdvp_operator(H, O, 1.0, dt=dt, augment=False).operator.to_matrix() - exact(H, O, 1.0)
        )
        for dt in (0.1, 0.05)
    ]
    assert errors[1] < 1e-4 and errors[1] < errors[0] / 3  # the bond-growing steps: O(dt²)


def test_augmentation_conserves_the_energy_where_plain_tdvp_drifts():
    L, bond = 6, 16  # the exact operator needs bond 64 at the centre: truncation matters
    H = xxz(L, "spin-half")
    O = random_operator(L, 2, seed=42)
    e0 = np.trace(H.to_matrix() @ O.to_matrix()).real
    drift = {}
    for augment in (False, True):
        r = tdvp_operator(H, O, 1.0, dt=0.05, max_bond=bond, augment=augment)
        drift[augment] = np.max(np.abs(r.energy - e0)) / abs(e0)
        assert max(r.operator.bond_dims) <= bond + max(H.bond_dims)
        assert abs(np.trace(H.to_matrix() @ r.operator.to_matrix()) - r.energy[-1]) < 1e-9
    assert drift[False] > 1e-3  # plain TDVP: percent-level drift here
    assert drift[True] < 1e-9  # H stays in the projection space: conserved to rounding


def test_observables_see_the_operator_without_the_augmentation():
    H = xxz(3, "spin-half")
    O = random_operator(3, 2, seed=3)
    r = tdvp_operator(H, O, 0.3, dt=0.1, observables={"trace": lambda op: op.trace()})
    traces = np.asarray(r.values["trace"])
    assert traces.shape == (4,)
    assert np.allclose(traces, np.trace(O.to_matrix()), atol=1e-10)  # the trace is conserved


def test_distances_against_dense():
    a = tn.MPO.random([2] * 3, [2] * 3, 2, seed=0)
    b = tn.MPO.random([2] * 3, [2] * 3, 2, seed=1)
    diff = a.to_matrix() - b.to_matrix()
    assert trace_distance(a, b) == pytest.approx(np.linalg.svd(diff, compute_uv=False).sum())
    assert frobenius_distance(a, b) == pytest.approx(np.linalg.norm(diff))
    big = tn.MPO.identity([2] * 13)
    with pytest.raises(ValueError, match="frobenius_distance"):
        trace_distance(big, big)


def test_bad_input():
    H = xxz(3, "spin-half")
    O = random_operator(3, 2, seed=0)
    with pytest.raises(TypeError, match="O"):
        tdvp_operator(H, operator_to_state(O), 1.0, dt=0.1)
    with pytest.raises(ValueError, match="O"):
        tdvp_operator(H, random_operator(3, 3, seed=0), 1.0, dt=0.1)
    with pytest.raises(TypeError, match="augment"):
        tdvp_operator(H, O, 1.0, dt=0.1, augment="yes")
    with pytest.raises(ValueError, match="O"):
        tdvp_operator(H, 0.0 * O, 1.0, dt=0.1)
    with pytest.raises(ValueError, match="H"):
        tdvp_operator(tn.MPO.random([2] * 3, [2] * 3, 2, seed=5), O, 1.0, dt=0.1)
    with pytest.raises(TypeError, match="observables"):
        tdvp_operator(H, O, 1.0, dt=0.1, observables={"x": 3})
