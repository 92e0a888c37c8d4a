"""Properties of tt_svd and MPO.from_matrix: exactness, rigorous bounds, tolerances, layouts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    DTYPES,
    METHODS,
    dense_tensors,
    double_dtypes,
    eps,
    exact_rtol,
    methods,
    rel_error,
    roundoff,
    truncations,
)

import tnkit as tn


def measured_error(train, x) -> float:
    return float(np.linalg.norm(np.asarray(train.to_dense()).reshape(-1) - x.reshape(-1)))


@given(dense_tensors())
def test_exact_round_trip_at_full_rank(x):
    m = tn.tt_svd(x)
    # Only numerically zero singular values go (σ ≤ 10·max(m, n)·ε·σ_max per bond), which in
    # single precision can reach ~1e-5 relative on its own: the report says how much.
    bound = m.report.rel_error_bound
    assert bound <= 1e3 * eps(x.dtype) * x.size**0.5
    assert rel_error(m.to_dense(), x) <= exact_rtol(x.dtype) + bound
    assert m.report.bond_dims_after == m.bond_dims
    assert all(b <= f for b, f in zip(m.bond_dims, m.report.bond_dims_before, strict=True))


@given(dense_tensors(), truncations(), methods)
def test_error_never_above_reported_bound(x, kwargs, method):
    m = tn.tt_svd(x, method=method, **kwargs)
    norm = float(np.linalg.norm(x))
    assert measured_error(m, x) <= m.report.abs_error_bound + roundoff(x.dtype, norm, x.size)
    assert m.report.rel_error_bound == pytest.approx(m.report.abs_error_bound / norm)


@given(dense_tensors(), st.sampled_from([1e-6, 1e-3, 0.05, 0.3]), methods)
def test_rtol_is_honoured_for_the_whole_train(x, rtol, method):
    m = tn.tt_svd(x, rtol=rtol, method=method)
    norm = float(np.linalg.norm(x))
    assert m.report.tolerance_met
    assert m.report.abs_error_bound <= rtol * norm * (1 + 1e-9)
    assert measured_error(m, x) <= rtol * norm + roundoff(x.dtype, norm, x.size)


@given(dense_tensors(), st.sampled_from([1e-6, 1e-2, 0.5]))
def test_atol_is_honoured(x, atol):
    m = tn.tt_svd(x, atol=atol)
    assert m.report.abs_error_bound <= atol * (1 + 1e-9)
    assert measured_error(m, x) <= atol + roundoff(x.dtype, float(np.linalg.norm(x)), x.size)


@given(dense_tensors(), st.integers(1, 4), methods)
def test_max_bond_is_a_hard_cap(x, max_bond, method):
    m = tn.tt_svd(x, max_bond=max_bond, rtol=1e-14, method=method)
    assert all(b <= max_bond for b in m.bond_dims)
    capped = any(f > max_bond for f in m.report.bond_dims_before)
    if not capped:
        assert m.report.tolerance_met


@given(dense_tensors(), truncations(), methods)
def test_result_is_left_canonical_and_keeps_dtype(x, kwargs, method):
    m = tn.tt_svd(x, method=method, **kwargs)
    assert m.centre == len(m) - 1
    assert m.is_canonical(len(m) - 1)
    assert all(c.dtype == x.dtype for c in m.cores)
    assert m.report.params_after == m.num_params
    assert m.report.params_before == x.size


@given(dense_tensors(dtype="float64"), truncations())
def test_input_is_not_modified(x, kwargs):
    before = x.copy()
    tn.tt_svd(x, **kwargs)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_method_on_large_unfoldings(method, dtype):
    """Shapes where each method really runs (Gram needs >= 64 rows, randomized a small cap)."""
    rng = np.random.default_rng(7)
    dims = (4, 4, 4, 4, 4, 4)
    x = tn.MPS.random(dims, 12, seed=3, dtype="complex128").to_dense()
    x = x + 1e-3 * rng.standard_normal(dims)
    x = np.asarray(x if "complex" in dtype else x.real, dtype=dtype)
    norm = float(np.linalg.norm(x))
    for kwargs in ({"max_bond": 8}, {"rtol": 0.05}, {"max_bond": 12, "rtol": 1e-2}, {}):
        m = tn.tt_svd(x, method=method, **kwargs)
        err = measured_error(m, x)
        assert err <= m.report.abs_error_bound + roundoff(dtype, norm, x.size), kwargs
        if "rtol" in kwargs and m.report.tolerance_met:
            assert err <= kwargs["rtol"] * norm + roundoff(dtype, norm, x.size)
        if not kwargs:
            assert err <= exact_rtol(dtype) * norm * 10


def test_auto_picks_randomized_and_gram_where_they_pay():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 512))
    m = tn.tt_svd(x, max_bond=16)
    assert "randomized" in m.report.method
    y = rng.standard_normal((128, 2048))
    assert "gram" in tn.tt_svd(y, rtol=0.5).report.method


def test_gram_hands_exact_requests_to_svd_when_it_cannot_resolve_them():
    rng = np.random.default_rng(2)
    full = rng.standard_normal((128, 2048))  # well conditioned: Gram keeps a unitary basis
    m = tn.tt_svd(full, method="gram")
    assert m.report.method == "tt_svd/gram" and m.bond_dims == (128,)
    assert rel_error(m.to_dense(), full) <= 1e-12
    low_rank = rng.standard_normal((128, 5)) @ rng.standard_normal((5, 2048))
    m = tn.tt_svd(low_rank)  # numerically zero values need SVD accuracy to be dropped
    assert m.bond_dims == (5,) and "gram" not in m.report.method
    assert rel_error(m.to_dense(), low_rank) <= 1e-12


def test_randomized_is_close_to_the_optimal_truncation():
    rng = np.random.default_rng(1)
    u, _ = np.linalg.qr(rng.standard_normal((1024, 200)))
    v, _ = np.linalg.qr(rng.standard_normal((1024, 200)))
    s = 1.0 / np.arange(1, 201) ** 1.5
    x = (u * s) @ v.T
    optimal = math.sqrt(np.sum(s[32:] ** 2))
    m = tn.tt_svd(x, max_bond=32, method="randomized")
    assert m.report.method.endswith("randomized")
    assert measured_error(m, x) <= 1.05 * optimal
    assert m.report.abs_error_bound <= 1.05 * optimal


@given(double_dtypes, st.integers(0, 2**31))
def test_from_matrix_round_trip_and_layout(dtype, seed):
    rng = np.random.default_rng(seed)
    outs, ins = (2, 3, 2), (3, 2, 2)
    W = rng.standard_normal((12, 12))
    if "complex" in dtype:
        W = W + 1j * rng.standard_normal((12, 12))
    W = W.astype(dtype)
    o = tn.MPO.from_matrix(W, outs, ins)
    assert o.out_dims == outs and o.in_dims == ins
    assert rel_error(o.to_matrix(), W) <= 1e-12
    # MPO-Net interleaving: W[(i1 i2 i3), (j1 j2 j3)] = Π_k core_k[i_k, j_k] (C order).
    i, j = (1, 2, 0), (2, 0, 1)
    row, col = np.ravel_multi_index(i, outs), np.ravel_multi_index(j, ins)
    chain = np.ones((1, 1))
    for core, ik, jk in zip(o.cores, i, j, strict=True):
        chain = chain @ core[:, ik, jk, :]
    assert chain[0, 0] == pytest.approx(W[row, col], rel=1e-10)


@given(st.integers(1, 4), st.integers(0, 2**31))
def test_parameter_count_formula(max_bond, seed):
    W = np.random.default_rng(seed).standard_normal((64, 27))
    o = tn.MPO.from_matrix(W, (4, 4, 4), (3, 3, 3), max_bond=max_bond)
    bonds = (1, *o.bond_dims, 1)
    expected = sum(bonds[k] * o.out_dims[k] * o.in_dims[k] * bonds[k + 1] for k in range(3))
    assert o.num_params == expected == o.report.params_after
    assert o.report.params_before == W.size
    assert o.report.compression_ratio == pytest.approx(W.size / expected)


def test_from_matrix_pads_awkward_sizes_and_crops_back():
    W = np.random.default_rng(3).standard_normal((10, 97))
    o = tn.MPO.from_matrix(W, 2, 2)
    assert math.prod(o.out_dims) >= 10 and math.prod(o.in_dims) >= 97
    assert o.matrix_shape == (10, 97)
    assert rel_error(o.to_matrix(), W) <= 1e-12
    padded = np.asarray(o.to_matrix(padded=True))
    assert padded.shape == (math.prod(o.out_dims), math.prod(o.in_dims))
    assert np.all(padded[10:, :] == 0) or np.abs(padded[10:, :]).max() < 1e-12
    assert o.compress(max_bond=2).matrix_shape == (10, 97)


def test_mpo_exact_truncation_keeps_identity_bond_one():
    o = tn.MPO.identity([2, 3, 2])
    W = np.asarray(o.to_matrix())
    back = tn.MPO.from_matrix(W, (2, 3, 2), (2, 3, 2))
    assert back.bond_dims == (1, 1)
    np.testing.assert_allclose(back.to_matrix(), np.eye(12), atol=1e-14)


@pytest.mark.parametrize(
    ("n", "k", "expected"),
    [(4096, 4, (8, 8, 8, 8)), (784, 4, (4, 4, 7, 7)), (1000, 3, (10, 10, 10)), (7, 1, (7,))],
)
def test_factorize_dims_known_values(n, k, expected):
    assert tn.factorize_dims(n, k) == expected


@given(st.integers(1, 5000), st.integers(1, 5))
def test_factorize_dims_properties(n, k):
    exact = tn.factorize_dims(n, k)
    assert len(exact) == k and math.prod(exact) == n and list(exact) == sorted(exact)
    padded = tn.factorize_dims(n, k, pad=True)
    assert len(padded) == k and n <= math.prod(padded) <= max(n + k, math.ceil(1.1 * n))
    assert padded[-1] <= exact[-1]
