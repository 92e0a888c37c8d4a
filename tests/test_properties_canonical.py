"""Properties of canonical forms: orthonormal cores, unchanged tensor and norm, tracked centre."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from strategies import exact_rtol, mpo_trains, mps_trains, rel_error

import tnkit as tn


@given(mps_trains(), st.data())
def test_canonicalize_gives_orthonormal_cores_and_same_tensor(m, data):
    centre = data.draw(st.integers(0, len(m) - 1))
    c = m.canonicalize(centre)
    assert c.centre == centre and m.centre is None
    assert c.is_canonical(centre)
    assert rel_error(c.to_dense(), m.to_dense()) <= 10 * exact_rtol(m.dtype)
    assert all(core.dtype == m.dtype for core in c.cores)


@given(mps_trains(dtype="float64"), st.data())
def test_canonical_cores_orthonormal_to_1e12(m, data):
    centre = data.draw(st.integers(0, len(m) - 1))
    c = m.canonicalize(centre)
    assert c.is_canonical(centre, tol=1e-12)


@given(mps_trains(), st.data())
def test_moving_the_centre_matches_a_fresh_canonicalisation(m, data):
    first = data.draw(st.integers(0, len(m) - 1))
    second = data.draw(st.integers(0, len(m) - 1))
    moved = m.canonicalize(first).canonicalize(second)
    assert moved.centre == second and moved.is_canonical(second)
    assert rel_error(moved.to_dense(), m.to_dense()) <= 10 * exact_rtol(m.dtype)


@given(mps_trains())
def test_norm_is_the_frobenius_norm(m):
    dense = np.asarray(m.to_dense())
    assert abs(m.norm() - np.linalg.norm(dense)) <= 10 * exact_rtol(m.dtype) * np.linalg.norm(dense)
    assert m.canonicalize(0).norm() == np.float64(m.canonicalize(0).norm())


@given(mpo_trains(), st.data())
def test_mpo_canonical_forms(o, data):
    centre = data.draw(st.integers(0, len(o) - 1))
    c = o.canonicalize(centre)
    assert c.is_canonical(centre)
    assert c.out_dims == o.out_dims and c.in_dims == o.in_dims
    assert rel_error(c.to_matrix(), o.to_matrix()) <= 10 * exact_rtol(o.dtype)


def test_random_train_is_not_canonical_and_canonicalize_keeps_report():
    m = tn.MPS.random([3] * 6, 5, seed=2)
    assert m.centre is None and not m.is_canonical(0)
    t = tn.tt_svd(np.asarray(m.to_dense()), max_bond=2)
    assert t.canonicalize(0).report is t.report


def test_canonicalize_shrinks_bonds_larger_than_the_rank():
    rng = np.random.default_rng(0)
    cores = [rng.standard_normal((1, 2, 6)), rng.standard_normal((6, 2, 6)), np.ones((6, 2, 1))]
    m = tn.MPS(cores)
    c = m.canonicalize(2)
    assert c.bond_dims[0] == 2
    assert rel_error(c.to_dense(), m.to_dense()) <= 1e-12


def test_negative_centre_counts_from_the_end():
    m = tn.MPS.random([2] * 5, 4, seed=0)
    assert m.canonicalize(-1).centre == 4


def test_sweep_orthonormalizer_stops_trying_cholesky_after_failures(monkeypatch):
    """Rank-deficient blocks (products of operators) fail CholeskyQR2; after two failures a
    sweep goes straight to Householder, and every factor is still an exact thin QR."""
    import tnkit.linalg as linalg

    attempts: list = []
    original = linalg._cholesky_qr2
    monkeypatch.setattr(linalg, "_cholesky_qr2", lambda a: attempts.append(1) or original(a))
    rng = np.random.default_rng(0)
    run = linalg.sweep_orthonormalizer()
    deficient = rng.standard_normal((40, 6)) @ rng.standard_normal((6, 12))  # rank 6 of 12
    full = rng.standard_normal((40, 12))
    for a in (full, deficient, deficient, deficient, full):
        q, r = run(a)
        np.testing.assert_allclose(q.T @ q, np.eye(12), atol=1e-12)
        np.testing.assert_allclose(q @ r, a, atol=1e-12)
    assert len(attempts) == 3  # the full one, then the two failures; none after
