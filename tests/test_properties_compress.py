"""Properties of compression: rigorous bound, tolerances, idempotence, MPS and MPO alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import exact_rtol, mpo_trains, mps_trains, rel_error, roundoff, truncations

import tnkit as tn


def error_of(compressed, original) -> float:
    a = np.asarray(compressed.to_dense()).reshape(-1)
    b = np.asarray(original.to_dense()).reshape(-1)
    return float(np.linalg.norm(a - b))


@given(st.one_of(mps_trains(), mpo_trains()), truncations())
def test_error_never_above_reported_bound(t, kwargs):
    c = t.compress(**kwargs)
    norm = float(np.linalg.norm(np.asarray(t.to_dense())))
    assert error_of(c, t) <= c.report.abs_error_bound + roundoff(t.dtype, norm, t.num_params)
    assert c.report.norm == pytest.approx(norm, rel=1e-4)
    assert c.centre == 0 and c.is_canonical(0)
    assert c.report.bond_dims_before == t.bond_dims
    assert c.report.bond_dims_after == c.bond_dims
    assert c.report.params_after == c.num_params
    assert all(core.dtype == t.dtype for core in c.cores)


@given(mps_trains(), st.sampled_from([1e-6, 1e-3, 0.1, 0.5]))
def test_rtol_is_honoured(m, rtol):
    c = m.compress(rtol=rtol)
    norm = float(np.linalg.norm(np.asarray(m.to_dense())))
    assert c.report.tolerance_met and c.report.rel_error_bound <= rtol * (1 + 1e-9)
    assert error_of(c, m) <= rtol * norm + roundoff(m.dtype, norm, m.num_params)


@given(st.one_of(mps_trains(), mpo_trains()), st.integers(1, 5))
def test_max_bond_compression_is_idempotent(t, max_bond):
    once = t.compress(max_bond=max_bond)
    twice = once.compress(max_bond=max_bond)
    assert twice.bond_dims == once.bond_dims
    norm = once.report.norm
    assert twice.report.abs_error_bound <= roundoff(t.dtype, norm, t.num_params)
    assert error_of(twice, once) <= roundoff(t.dtype, norm, t.num_params)


@given(st.one_of(mps_trains(), mpo_trains()))
def test_exact_compression_keeps_the_tensor(t):
    c = t.compress()
    assert rel_error(c.to_dense(), t.to_dense()) <= 10 * exact_rtol(t.dtype)
    again = c.compress()
    assert again.bond_dims == c.bond_dims


@given(mps_trains(dtype="float64", min_len=3), st.integers(1, 3))
def test_max_bond_compression_matches_the_optimal_two_site_truncation(m, max_bond):
    """Each bond's cut is the optimal one for that bond: error >= the best single-bond error."""
    c = m.compress(max_bond=max_bond)
    dense = np.asarray(m.to_dense())
    best_single = 0.0
    for k in range(len(m) - 1):
        s = np.linalg.svd(dense.reshape(int(np.prod(m.phys_dims[: k + 1])), -1), compute_uv=False)
        best_single = max(best_single, float(np.sqrt(np.sum(s[max_bond:] ** 2))))
    assert error_of(c, m) >= best_single * (1 - 1e-9) - 1e-12
    assert c.report.abs_error_bound <= np.sqrt(len(m) - 1) * best_single * (1 + 1e-9) + 1e-12


def test_compress_does_not_modify_the_input():
    m = tn.MPS.random([2] * 8, 8, seed=5)
    before = [np.array(core, copy=True) for core in m.cores]
    m.compress(max_bond=2)
    m.canonicalize(3)
    for a, b in zip(m.cores, before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert m.centre is None


def test_svd_methods_are_selectable():
    m = tn.MPS.random([2] * 12, 32, seed=1)
    for method in ("exact", "qr", "gram", "randomized", "auto"):
        c = m.compress(max_bond=8, svd_method=method)
        assert max(c.bond_dims) <= 8
        assert error_of(c, m) <= c.report.abs_error_bound + 1e-12
