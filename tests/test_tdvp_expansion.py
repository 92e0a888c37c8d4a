"""Global Krylov subspace expansion for TDVP (issue 18, item 3): one-site TDVP from a product
state under a 1/r² Hamiltonian against exact evolution, the expansion leaves the state as it
is, caps, resumes, and bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.sparse.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import stopped_and_resumed

import tnkit as tn
from tnkit.algorithms import KrylovExpansion, krylov_expand


def neel(L: int) -> tn.MPS:
    return tn.MPS([np.eye(2)[k % 2].reshape(1, 2, 1) for k in range(L)])


def inverse_square_heisenberg(L: int) -> tn.MPO:
    """Σ_{i<j} (Sx Sx + Sy Sy + Sz Sz)_{ij} / |i − j|²: every pair coupled."""
    ops = tn.OpSum(L)
    for i in range(L):
        for j in range(i + 1, L):
            c = 1.0 / (j - i) ** 2
            ops.add(0.5 * c, "S+", i, "S-", j).add(0.5 * c, "S-", i, "S+", j)
            ops.add(c, "Sz", i, "Sz", j)
    return ops.to_mpo()


def infidelity(state: tn.MPS, reference: np.ndarray) -> float:
    x = state.to_dense().ravel()
    return 1 - abs(np.vdot(x, reference)) ** 2 / (
        np.vdot(x, x).real * np.vdot(reference, reference).real
    )


def exact(H: tn.MPO, psi: tn.MPS, t: float) -> np.ndarray:
    v = psi.to_dense().ravel().astype(complex)
    return scipy.sparse.linalg.expm_multiply(-1j * t * scipy.sparse.csr_matrix(H.to_matrix()), v)


@pytest.fixture(scope="module")
def long_range():
    H = inverse_square_heisenberg(8)
    return H, exact(H, neel(8), 1.0)


def expansion_matches_exact(L: int) -> None:
    H = inverse_square_heisenberg(L)
    result = tn.tdvp(H, neel(L), 1.0, dt=0.1, method="one-site", expand="krylov")
    assert infidelity(result.state, exact(H, neel(L), 1.0)) < 1e-9  # 5e-12 (L = 12), 1e-13 (8)
    assert max(result.state.bond_dims) == 2 ** (L // 2)  # the exact bond, grown one-site
    assert all(record.method == "one-site" for record in result.steps)


def test_one_site_with_expansion_from_a_product_state_matches_exact():
    expansion_matches_exact(8)


@pytest.mark.slow
def test_one_site_with_expansion_from_a_product_state_matches_exact_l12():
    expansion_matches_exact(12)


def test_one_site_without_expansion_stays_a_product_state(long_range):
    H, reference = long_range
    result = tn.tdvp(H, neel(8), 1.0, dt=0.1, method="one-site", observables=["energy"])
    assert result.state.bond_dims == (1,) * 7
    assert infidelity(result.state, reference) > 0.5  # a product state stays one
    # a product state's one-site dynamics is mean field: Néel is one of its fixed points
    assert np.allclose(result.values["energy"], result.values["energy"][0])


def test_expansion_at_a_capped_bond_keeps_the_cap(long_range):
    H, reference = long_range
    result = tn.tdvp(H, neel(8), 1.0, dt=0.1, method="one-site", max_bond=8,
                     expand=KrylovExpansion(every=2, vectors=1))  # fmt: skip
    assert max(result.state.bond_dims) == 8
    assert infidelity(result.state, reference) < 1e-3  # 1.0e-4 measured


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 100), bond=st.integers(1, 3), vectors=st.integers(1, 3))
def test_expansion_keeps_the_vector_and_only_grows_bonds(seed, bond, vectors):
    H = tn.models.heisenberg(6)
    psi = tn.MPS.random([2] * 6, bond, seed=seed, dtype="complex128")
    grown = krylov_expand(H, psi, vectors=vectors)
    assert np.allclose(grown.state.to_dense(), psi.to_dense(), atol=1e-12)
    assert grown.state.is_canonical(0) and grown.state.centre == 0
    assert all(b >= a for a, b in zip(psi.bond_dims, grown.state.bond_dims, strict=True))
    assert grown.discarded < 1e-20
    assert sum(grown.added) > 0


def test_expansion_holds_the_krylov_vector():
    """With no cutoff and an exact Krylov bond, Hψ lies in the span of the enlarged right
    basis of every bond, so a one-site projector sees the first step of the dynamics; but
    bond 0, which the two states of site 0 cap at 2 (ψ's direction and one more)."""
    L = 6
    H, psi = inverse_square_heisenberg(L), neel(L)
    grown = krylov_expand(H, psi, vectors=1, cutoff=0.0, krylov_bond=64).state
    h_psi = H.to_matrix() @ psi.to_dense().ravel()
    assert np.linalg.norm(h_psi) > 1
    assert grown.bond_dims[0] == 2
    for k in range(1, L - 1):
        right = grown.cores[k + 1 :]  # right isometries: grown is right-canonical
        basis = right[-1].reshape(-1, 2)
        for core in reversed(right[:-1]):
            basis = np.einsum("asb,bx->asx", core, basis).reshape(core.shape[0], -1)
        flat = h_psi.reshape(-1, basis.shape[1])
        assert np.allclose((flat @ basis.conj().T) @ basis, flat, atol=1e-10)


def test_saturated_state_is_left_alone():
    H, psi = tn.models.heisenberg(4), tn.MPS.random([2] * 4, 4, seed=0)
    grown = krylov_expand(H, psi)
    assert grown.added == (0, 0, 0) and grown.state.bond_dims == (2, 4, 2)


def test_a_stopped_expanding_run_resumes_to_the_same_result(tmp_path):
    H, psi, path = tn.models.heisenberg(8), neel(8), tmp_path / "run.safetensors"
    options = {"dt": 0.1, "method": "one-site", "expand": KrylovExpansion(every=2)}
    run = functools.partial(tn.tdvp, H, psi, 0.6)
    resumed, straight = stopped_and_resumed(run, path, 2, **options)
    assert np.allclose(resumed.state.to_dense(), straight.state.to_dense(), atol=1e-12)
    with pytest.raises(ValueError, match="another run"):
        tn.tdvp(H, psi, 0.6, resume=path, **{**options, "expand": "krylov"})


@pytest.mark.parametrize(
    ("expand", "error", "match"),
    [
        ("global", ValueError, "expand"),
        (3, ValueError, "expand"),
        (KrylovExpansion, ValueError, "expand"),
    ],
)
def test_bad_expand(expand, error, match):
    with pytest.raises(error, match=match):
        tn.tdvp(tn.models.heisenberg(4), neel(4), 0.1, dt=0.1, expand=expand)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every": 0}, ValueError, "every"),
        ({"vectors": 1.5}, TypeError, "vectors"),
        ({"cutoff": -1.0}, ValueError, "cutoff"),
        ({"krylov_bond": 0}, ValueError, "krylov_bond"),
    ],
)
def test_bad_expansion_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        KrylovExpansion(**kwargs)


def test_bad_krylov_expand_input():
    with pytest.raises(ValueError, match="psi"):
        krylov_expand(tn.models.heisenberg(4), neel(5))
    with pytest.raises(ValueError, match="H: not Hermitian"):
        krylov_expand(tn.MPO.random([2] * 4, [2] * 4, 2, seed=0), neel(4))
