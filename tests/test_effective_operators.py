"""The dense effective operators of DMRG and TDVP against a plain einsum, the buffers they
keep between calls, the real-operator fast path, the Lanczos eigensolver against LAPACK, and
the engine's choice of SVD on finely cut bonds."""

import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from strategies import random_array

import tnkit as tn
from tnkit.algorithms import environments as env
from tnkit.algorithms.engines import FINE_CUT, DenseEngine
from tnkit.algorithms.krylov import lowest_eigenpair
from tnkit.linalg import truncated_split


@settings(max_examples=30, deadline=None)
@given(
    chi_l=st.integers(1, 9),
    chi_r=st.integers(1, 9),
    d=st.integers(1, 3),
    w=st.integers(1, 4),
    complex_state=st.booleans(),
    complex_op=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_two_site_matvec_equals_einsum(chi_l, chi_r, d, w, complex_state, complex_op, seed):
    rng = np.random.default_rng(seed)
    left = random_array(rng, (chi_l, w, chi_l), complex_state)
    right = random_array(rng, (chi_r, w, chi_r), complex_state)
    op1 = random_array(rng, (w, d, d, w), complex_op)
    op2 = random_array(rng, (w, d, d, w), complex_op)
    theta = random_array(rng, (chi_l, d, d, chi_r), complex_state)
    expected = np.einsum("awb,wstx,xruy,eyc,btuc->asre", left, op1, op2, right, theta)
    matvec = env.two_site_matvec(left, op1, op2, right)
    first = matvec(theta)
    np.testing.assert_allclose(first, expected, rtol=1e-12, atol=1e-12)
    kept = first.copy()
    second = matvec(2.0 * theta)  # the buffers are reused: earlier results must not change
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_allclose(second, 2.0 * expected, rtol=1e-12, atol=1e-11)


@settings(max_examples=30, deadline=None)
@given(
    chi_l=st.integers(1, 9),
    chi_r=st.integers(1, 9),
    d=st.integers(1, 3),
    w=st.integers(1, 4),
    complex_state=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_one_site_matvec_equals_einsum(chi_l, chi_r, d, w, complex_state, seed):
    rng = np.random.default_rng(seed)
    left = random_array(rng, (chi_l, w, chi_l), complex_state)
    right = random_array(rng, (chi_r, w, chi_r), complex_state)
    op = random_array(rng, (w, d, d, w), False).astype(complex)  # real values, complex dtype
    core = random_array(rng, (chi_l, d, chi_r), complex_state)
    expected = np.einsum("awb,wstx,exc,btc->ase", left, op, right, core)
    matvec = env.one_site_matvec(left, op, right)
    first = matvec(core)
    np.testing.assert_allclose(first, expected, rtol=1e-12, atol=1e-12)
    kept = first.copy()
    matvec(core[::-1].copy())
    np.testing.assert_array_equal(first, kept)


def test_real_operators_cast_to_complex_run_real():
    op = np.eye(4).astype(complex)
    assert env.real_if_real(op).dtype == np.float64
    assert env.real_if_real(op + 1e-300j).dtype == np.complex128  # any imaginary part: kept
    real = np.eye(2)
    assert env.real_if_real(real) is real


def test_workspace_fresh_slot_and_real_view():
    work = env.Workspace(np)
    a, b = np.arange(4.0).reshape(2, 2), (np.arange(6.0) + 1j).reshape(2, 3)
    fresh = work.matmul(a, b, slot=None)
    assert fresh is not work.matmul(a, b, slot=None)
    np.testing.assert_array_equal(fresh, a @ b)  # the real matrix on the complex float view


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 60), complex_=st.booleans(), seed=st.integers(0, 2**16))
def test_lowest_eigenpair_matches_lapack(n, complex_, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (n, n), complex_)
    a = a + a.conj().T
    values, vectors = scipy.linalg.eigh(a)
    pair = lowest_eigenpair(lambda x: a @ x, random_array(rng, n, complex_), max_iter=n + 5)
    assert abs(pair.value - values[0]) <= 1e-9 * max(1.0, abs(values[0]))
    if values[1] - values[0] > 1e-3:
        overlap = abs(np.vdot(vectors[:, 0], pair.vector))
        assert overlap == pytest.approx(1.0, abs=1e-8)


def test_finely_cut_bonds_split_by_svd_with_the_same_result():
    rng = np.random.default_rng(0)
    s = np.array([1.0, 0.5, 1e-3, 1e-9, 1e-13, 1e-15])
    u = np.linalg.qr(rng.standard_normal((8, 6)))[0]
    v = np.linalg.qr(rng.standard_normal((8, 6)))[0]
    theta = ((u * s) @ v.T).reshape(4, 2, 2, 4)
    engine = DenseEngine()
    first = engine.split(theta, 4, None, "right", normalise=False, bond=3)
    second = engine.split(theta, 4, None, "right", normalise=False, bond=3)  # by SVD now
    exact = truncated_split(theta.reshape(8, 8), max_bond=4, method="exact")
    assert first[2] < FINE_CUT * np.sum(s**2) and second[2] == pytest.approx(exact.discarded)
    for left, right, _ in (first, second):
        np.testing.assert_allclose(
            np.einsum("asb,btc->astc", left, right), theta, atol=1e-12, rtol=0
        )


def test_exact_bond_runs_cut_finely_and_stay_exact():
    # at the exact bond every cut is numerically zero, so the splits after the first go to
    # SVD directly: DMRG must still find the exact ground state and TDVP only rotate its phase
    H = tn.models.heisenberg(10)
    exact = scipy.linalg.eigvalsh(H.to_matrix())[0]
    r = tn.dmrg(H, max_bond=32, sweeps=4, seed=1)
    assert r.energy == pytest.approx(exact, abs=1e-10)
    evolved = tn.tdvp(H, r.state, 0.2, dt=0.05, max_bond=32, observables=["energy", "norm"])
    assert np.allclose(evolved.values["energy"], exact, atol=1e-9)
    assert np.allclose(evolved.values["norm"], 1.0, atol=1e-10)
    assert abs(complex(tn.inner(r.state, evolved.state))) == pytest.approx(1.0, abs=1e-9)


def test_lowest_eigenpair_of_a_complex_operator_from_a_real_start():
    rng = np.random.default_rng(0)
    a = random_array(rng, (20, 20), True)
    a = a + a.conj().T
    pair = lowest_eigenpair(lambda x: a @ x, np.ones(20), max_iter=30)
    assert pair.vector.dtype == np.complex128
    assert pair.value == pytest.approx(scipy.linalg.eigvalsh(a)[0], abs=1e-10)


def test_a_matvec_returning_its_input_leaves_the_krylov_vectors_intact():
    start = np.arange(1.0, 6.0)
    pair = lowest_eigenpair(lambda x: x, start)  # the identity: w is a view of the rows
    assert pair.value == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(pair.vector, start / np.linalg.norm(start), atol=1e-14)
