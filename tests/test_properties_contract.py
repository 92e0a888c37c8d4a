"""Properties of contractions and arithmetic: inner, norms, expectation, sums, products."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import exact_rtol, mpo_trains, mps_trains, rel_error

import tnkit as tn


def close(a, b, dtype, scale=1.0) -> bool:
    return abs(complex(a) - complex(b)) <= 100 * exact_rtol(dtype) * max(scale, 1e-300)


def same_dims_pair(draw, dtype=None):
    a = draw(mps_trains(dtype=dtype))
    seed = draw(st.integers(0, 2**31))
    b = tn.MPS.random(a.phys_dims, draw(st.integers(1, 6)), seed=seed, dtype=a.dtype)
    return a, b


pairs = st.composite(same_dims_pair)


@given(pairs())
def test_inner_matches_dense_and_is_conjugate_linear_in_a(pair):
    a, b = pair
    da, db = np.asarray(a.to_dense()).ravel(), np.asarray(b.to_dense()).ravel()
    scale = np.linalg.norm(da) * np.linalg.norm(db)
    assert close(tn.inner(a, b), np.vdot(da, db), a.dtype, scale)
    assert close(tn.inner(b, a), np.conj(np.vdot(da, db)), a.dtype, scale)
    if "complex" in str(a.dtype):
        c = 0.5 - 2j
        assert close(tn.inner(c * a, b), np.conj(c) * tn.inner(a, b), a.dtype, 3 * scale)
        assert close(tn.inner(a, c * b), c * tn.inner(a, b), a.dtype, 3 * scale)


@given(pairs(), st.floats(-3, 3), st.floats(-3, 3))
def test_inner_is_linear_in_b(pair, x, y):
    a, b = pair
    c = tn.MPS.random(a.phys_dims, 2, seed=3, dtype=a.dtype)
    lhs = tn.inner(a, x * b + y * c)
    rhs = x * tn.inner(a, b) + y * tn.inner(a, c)
    scale = a.norm() * (abs(x) * b.norm() + abs(y) * c.norm())
    assert close(lhs, rhs, a.dtype, 10 * scale)


@given(st.one_of(mps_trains(), mpo_trains()))
def test_inner_with_itself_is_the_squared_norm(t):
    norm = t.norm()
    assert close(tn.inner(t, t), norm**2, t.dtype, norm**2)
    assert math.isclose(t.log_norm(), math.log(norm), rel_tol=1e-9, abs_tol=1e-5)


def test_log_norm_of_a_long_product_state():
    t = tn.MPS([np.ones((1, 2, 1))] * 3000)  # norm sqrt(2)^3000 = 2^1500
    assert t.log_norm() == pytest.approx(1500 * math.log(2), rel=1e-12)
    tiny = tn.MPS([np.full((1, 2, 1), 0.25)] * 3000)  # norm (2^-1.5)^3000
    assert tiny.log_norm() == pytest.approx(-4500 * math.log(2), rel=1e-12)
    assert math.isinf(tn.MPS([np.zeros((1, 2, 1))] * 3).log_norm())


@given(pairs())
def test_sums_and_differences_match_dense(pair):
    a, b = pair
    da, db = np.asarray(a.to_dense()), np.asarray(b.to_dense())
    scale = np.linalg.norm(da) + np.linalg.norm(db)
    for got, want in (((a + b).to_dense(), da + db), ((a - b).to_dense(), da - db)):
        assert np.linalg.norm(np.asarray(got) - want) <= 100 * exact_rtol(a.dtype) * scale
    assert (a + b).bond_dims == tuple(x + y for x, y in zip(a.bond_dims, b.bond_dims, strict=True))
    assert rel_error((-a).to_dense(), -da) <= exact_rtol(a.dtype)
    assert rel_error((a / 4).to_dense(), da / 4) <= exact_rtol(a.dtype)


@given(pairs())
def test_distance_matches_dense_and_stays_accurate_when_close(pair):
    a, b = pair
    da, db = np.asarray(a.to_dense()), np.asarray(b.to_dense())
    scale = np.linalg.norm(da) + np.linalg.norm(db)
    assert abs(tn.distance(a, b) - np.linalg.norm(da - db)) <= 100 * exact_rtol(a.dtype) * scale


def test_distance_resolves_a_relative_difference_of_1e9():
    a = tn.MPS.random([2] * 12, 8, seed=0)
    delta = tn.MPS.random([2] * 12, 8, seed=1)
    b = a + 1e-9 * (a.norm() / delta.norm()) * delta
    expected = 1e-9 * a.norm()
    assert tn.distance(a, b) == pytest.approx(expected, rel=1e-3)
    naive = math.sqrt(max(2 * a.norm() ** 2 - 2 * float(tn.inner(a, b)), 0.0))
    assert abs(naive - expected) > 1e-3 * expected  # the cancellation the design avoids


@given(st.data())
def test_expectation_matches_dense(data):
    m = data.draw(mps_trains(max_len=5))
    o = tn.MPO.random(m.phys_dims, m.phys_dims, data.draw(st.integers(1, 4)), seed=1, dtype=m.dtype)
    v = np.asarray(m.to_dense()).ravel()
    W = np.asarray(o.to_matrix())
    want = np.vdot(v, W @ v)
    scale = np.linalg.norm(v) ** 2 * np.linalg.norm(W)
    assert close(tn.expectation(m, o), want, m.dtype, scale)
    normalized = want / np.vdot(v, v)  # its scale is ‖W‖, whatever the state's norm
    assert close(tn.expectation(m, o, normalize=True), normalized, m.dtype, np.linalg.norm(W))


@given(st.data())
def test_mpo_times_mps_and_associativity(data):
    m = data.draw(mps_trains(max_len=5, dtype="float64"))
    o1 = tn.MPO.random(m.phys_dims, m.phys_dims, 2, seed=data.draw(st.integers(0, 99)))
    o2 = tn.MPO.random(m.phys_dims, m.phys_dims, 3, seed=data.draw(st.integers(0, 99)))
    v = np.asarray(m.to_dense()).ravel()
    y = o1 @ m
    assert y.bond_dims == tuple(p * q for p, q in zip(o1.bond_dims, m.bond_dims, strict=True))
    assert rel_error(np.asarray(y.to_dense()).ravel(), o1.to_matrix() @ v) <= 1e-12
    left = (o1 @ o2) @ m
    right = o1 @ (o2 @ m)
    assert rel_error(left.to_dense(), right.to_dense()) <= 1e-12
    assert rel_error((o1 @ o2).to_matrix(), o1.to_matrix() @ o2.to_matrix()) <= 1e-12


@given(mpo_trains())
def test_transpose_adjoint_trace(o):
    W = np.asarray(o.to_matrix())
    assert rel_error(o.T.to_matrix(), W.T) <= exact_rtol(o.dtype)
    assert rel_error(o.H.to_matrix(), W.conj().T) <= exact_rtol(o.dtype)
    assert o.T.out_dims == o.in_dims
    if o.out_dims == o.in_dims:
        assert close(o.trace(), np.trace(W), o.dtype, np.linalg.norm(W) * math.sqrt(W.shape[0]))


def test_identity_trace_and_product():
    eye = tn.MPO.identity([2, 3, 4])
    assert float(eye.trace()) == 24.0
    m = tn.MPS.random([2, 3, 4], 3, seed=0)
    assert rel_error((eye @ m).to_dense(), m.to_dense()) == 0.0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda a, b, o: tn.inner(a, o), ValueError, "MPO"),
        (lambda a, b, o: tn.inner(a, b), ValueError, "phys_dims"),
        (lambda a, b, o: a + b, ValueError, "phys_dims"),
        (lambda a, b, o: a + 1.0, TypeError, "MPS or MPO"),
        (lambda a, b, o: a * "x", TypeError, "factor"),
        (lambda a, b, o: a * float("inf"), ValueError, "finite"),
        (lambda a, b, o: a / 0, ZeroDivisionError, "zero"),
        (lambda a, b, o: o @ b, ValueError, "in_dims"),
        (lambda a, b, o: tn.expectation(o, a), TypeError, "MPS, MPO"),
        (lambda a, b, o: tn.MPO.random([2, 2], [3, 3], 1).trace(), ValueError, "trace"),
    ],
)
def test_bad_input(call, error, match):
    a = tn.MPS.random([2, 2, 2], 2, seed=0)
    b = tn.MPS.random([2, 3, 2], 2, seed=0)
    o = tn.MPO.random([2, 2, 2], [2, 2, 2], 2, seed=0)
    with pytest.raises(error, match=match):
        call(a, b, o)
