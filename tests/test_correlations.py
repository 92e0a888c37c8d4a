"""Dynamical correlation functions ⟨A_i(t) B_j(0)⟩ (issue 18, item 5) against dense
evolution for L = 8: ground states (the eigenstate shortcut), states that evolve, fermions,
and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import tnkit as tn
from tnkit.algorithms import correlation_function

SZ = np.diag([0.5, -0.5])
SP = np.array([[0.0, 1.0], [0.0, 0.0]])


def dense_op(matrix: np.ndarray, i: int, L: int) -> np.ndarray:
    return np.kron(np.kron(np.eye(2**i), matrix), np.eye(2 ** (L - i - 1)))


def dense_correlation(H, psi, a_ops, b_op, times) -> np.ndarray:
    """⟨ψ|e^{iHt} A_i e^{−iHt} B|ψ⟩ for dense A_i (a list) and B."""
    W = H.to_matrix()
    v = psi.to_dense().ravel().astype(complex)
    v /= np.linalg.norm(v)
    rows = []
    for t in times:
        U = scipy.linalg.expm(-1j * t * W)
        bra, ket = U @ v, U @ (b_op @ v)
        rows.append([np.vdot(bra, a @ ket) for a in a_ops])
    return np.array(rows)


@pytest.fixture(scope="module")
def chain():
    L = 8
    H = tn.models.heisenberg(L)
    return H, tn.dmrg(H, max_bond=16, seed=0).state


def test_ground_state_correlation_matches_dense(chain):
    H, ground = chain
    L = len(ground)
    result = correlation_function(H, ground, "Sz", "Sz", 3, 1.0, dt=0.1, site_type="spin-half")
    assert result.energy == pytest.approx(tn.expectation(ground, H, normalize=True).real)
    assert result.values.shape == (11, L) and result.sites == tuple(range(L))
    reference = dense_correlation(
        H, ground, [dense_op(SZ, i, L) for i in range(L)], dense_op(SZ, 3, L), result.times
    )
    assert np.max(np.abs(result.values - reference)) < 1e-7
    assert result.values[0, 3] == pytest.approx(0.25)  # (Sz)² = 1/4


def test_transverse_correlation_on_some_sites(chain):
    H, ground = chain
    L = len(ground)
    result = correlation_function(H, ground, SP.T, SP, 4, 0.5, dt=0.1, sites=[5, 0, 4])
    assert result.sites == (0, 4, 5) and result.values.shape == (6, 3)
    reference = dense_correlation(
        H, ground, [dense_op(SP.T, i, L) for i in (0, 4, 5)], dense_op(SP, 4, L), result.times
    )
    assert np.max(np.abs(result.values - reference)) < 1e-7  # 1e-8 measured


def test_a_state_that_is_no_eigenstate_is_evolved_too(chain):
    H, _ = chain
    L = 8
    psi = tn.MPS.random([2] * L, 3, seed=2)
    result = correlation_function(H, psi, SZ, SP, 2, 0.5, dt=0.1, expand="krylov")
    assert result.energy is None
    reference = dense_correlation(
        H, psi, [dense_op(SZ, i, L) for i in range(L)], dense_op(SP, 2, L), result.times
    )
    assert np.max(np.abs(result.values - reference)) < 1e-8


def test_forcing_the_eigenstate_shortcut_on_a_state_that_is_none_is_wrong(chain):
    H, _ = chain
    psi = tn.MPS.random([2] * 8, 3, seed=2)
    forced = correlation_function(H, psi, SZ, SZ, 2, 0.5, dt=0.1, eigenstate=True)
    evolved = correlation_function(H, psi, SZ, SZ, 2, 0.5, dt=0.1, eigenstate=False)
    assert np.allclose(forced.values[0], evolved.values[0])  # t = 0 is the same
    assert np.max(np.abs(forced.values - evolved.values)) > 1e-3


def test_fermion_correlation_carries_the_jordan_wigner_strings():
    L = 6
    ops = tn.OpSum(L, site="fermion")
    for i in range(L - 1):
        ops.add(-1.0, "Cdag", i, "C", i + 1).add(-1.0, "Cdag", i + 1, "C", i)
    ops.add(0.3, "N", 1)  # no reflection symmetry
    H = ops.to_mpo()
    filled = tn.MPS([np.eye(2)[k % 2].reshape(1, 2, 1) for k in range(L)])  # every other site

    def string_op(name: str, i: int) -> np.ndarray:
        return tn.OpSum(L, site="fermion").add(1.0, name, i).to_mpo().to_matrix()

    result = correlation_function(H, filled, "C", "Cdag", 2, 1.0, dt=0.1, site_type="fermion",
                                  eigenstate=False, expand="krylov")  # fmt: skip
    reference = dense_correlation(
        H, filled, [string_op("C", i) for i in range(L)], string_op("Cdag", 2), result.times
    )
    # 3e-9 (4e-14 at dt = 0.05): the expansion lets the product state's bond grow without
    # the error that two-site steps make while it grows (3e-4 at dt = 0.05 without it)
    assert np.max(np.abs(result.values - reference)) < 1e-8


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"j": 8}, ValueError, "j"),
        ({"j": 1.0}, ValueError, "j"),
        ({"sites": []}, TypeError, "sites"),
        ({"sites": [1, 1]}, ValueError, "sites"),
        ({"sites": [9]}, ValueError, "sites"),
        ({"A": np.eye(3)}, ValueError, "A"),
        ({"B": "Sq", "site_type": "spin-half"}, ValueError, "B"),
        ({"site_type": "boson"}, ValueError, "site_type"),
        ({"eigenstate": 1}, TypeError, "eigenstate"),
        ({"B": np.zeros((2, 2))}, ValueError, "B"),
        ({"dt": -0.1}, ValueError, "dt"),
        ({"psi0": tn.MPS.random([2] * 5, 2, seed=0)}, ValueError, "psi0"),
    ],
)
def test_bad_input(chain, kwargs, error, match):
    H, ground = chain
    request = {"psi0": ground, "A": SZ, "B": SZ, "j": 2, **kwargs}
    with pytest.raises(error, match=match):
        correlation_function(H, t=0.1, dt=request.pop("dt", 0.1), **request)


def test_odd_and_even_operators_are_refused():
    H = tn.OpSum(4, site="fermion").add(1.0, "N", 0).add(1.0, "N", 3).to_mpo()
    psi = tn.MPS([np.eye(2)[k % 2].reshape(1, 2, 1) for k in range(4)])
    with pytest.raises(ValueError, match="fermion-odd"):
        correlation_function(H, psi, "C", "N", 1, 0.1, dt=0.1, site_type="fermion")
