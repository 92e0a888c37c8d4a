"""Trains whose cores hold numbers far from 1 (entries of 1e±170: squares under- or
overflow) keep their norms, log-norms and error bounds: the sweeps that square take a power
of two out first (issue 16, "no silent failure")."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tnkit as tn

H = tn.models.heisenberg(12)
PSI = tn.MPS.random([2] * 12, 16, seed=0)


@pytest.mark.parametrize("factor", [1e-170, 1e-200, 1e200])
def test_log_norm_of_cores_whose_squares_leave_the_range(factor):
    """H·ψ has bond 80 (no Numba kernel): its log-norm sweep squared entries of 1e-170 to 0
    and returned -inf (norm 0)."""
    product = H @ (PSI * factor)
    reference = (H @ PSI).log_norm() + math.log(factor)
    assert math.isclose(product.log_norm(), reference, rel_tol=1e-12)
    assert math.isclose(product.norm(), math.exp(reference), rel_tol=1e-10)


@pytest.mark.parametrize("factor", [1e-170, 1e170])
@pytest.mark.parametrize("method", ["zipup", "fit", "density", "exact"])
def test_apply_keeps_its_bound_at_extreme_scales(factor, method):
    """The truncating methods reported a bound of 0 for a cut of 99 % at 1e-170."""
    out = tn.apply(H, PSI * factor, method=method, max_bond=4)
    plain = tn.apply(H, PSI, method=method, max_bond=4)
    assert math.isclose(out.report.rel_error_bound, plain.report.rel_error_bound, rel_tol=1e-8)
    reference = H @ (PSI * factor)
    error = float(tn.distance(out, reference)) / float(reference.norm())
    assert error <= out.report.rel_error_bound * (1 + 1e-9) + 1e-12
    assert out.scale_exponent == 0  # the centre core holds the scale again


def test_gram_rounding_hands_over_at_extreme_scales():
    """Gram matrices of a train of norm 1e-160 lose their digits to the float range: the
    compression takes the rescaled sweep, whose bound holds."""
    m = tn.MPS.random([2] * 14, 128, seed=0)
    small = m * 1e-160
    out = small.compress(max_bond=16)
    assert out.report.method.startswith("rescaled")
    error = float(tn.distance(out, small)) / float(small.norm())
    assert error <= out.report.rel_error_bound * (1 + 1e-9) + 1e-12
    assert math.isclose(
        out.report.rel_error_bound, m.compress(max_bond=16).report.rel_error_bound, rel_tol=1e-6
    )


def test_projected_report_counts_the_projected_bonds():
    """A projection that shrinks bonds without a second cut reports the bonds it left."""
    square = tn.models.hubbard(8, U=4.0, conserve=("N", "Sz"))
    square = square @ square
    dense = tn.MPO([np.asarray(c) for c in square.cores]).with_charges(("N", "Sz"), site="electron")
    out = dense.compress(method="parker")
    assert out.report.bond_dims_after == out.bond_dims
    assert out.report.params_after == out.num_params
