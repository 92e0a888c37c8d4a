"""Unit tests of truncation rules: rank choice, the budget split, report arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tnkit.truncation import Budget, Truncation, TruncationReport, choose_rank

descending = st.lists(st.floats(0, 10), min_size=1, max_size=30).map(
    lambda v: np.sort(np.asarray(v))[::-1]
)


@given(descending, st.one_of(st.none(), st.floats(0, 50)), st.one_of(st.none(), st.integers(1, 40)))
def test_choose_rank_respects_cap_and_budget(s, budget, max_bond):
    rank = choose_rank(s, shape=(30, 30), eps=2.2e-16, max_bond=max_bond, budget=budget)
    assert 1 <= rank <= s.size
    if max_bond is not None:
        assert rank <= max_bond
    tail = float(np.sum(s[rank:] ** 2))
    capped = max_bond is not None and rank == max_bond
    if budget is not None and not capped and rank > 1:
        assert tail <= budget
        assert float(np.sum(s[rank - 1 :] ** 2)) > budget  # smallest such rank


def test_exact_rank_drops_only_numerical_zeros():
    s = np.array([1.0, 1e-10, 1e-15, 0.0])
    assert choose_rank(s, shape=(4, 4), eps=2.2e-16, max_bond=None, budget=None) == 2


@given(st.lists(st.floats(0, 1), min_size=1, max_size=20), st.floats(0, 5))
def test_budget_never_overspends(cuts, total):
    budget = Budget(total, len(cuts))
    spent = []
    for cut in cuts:
        allowed = budget.allowance()
        take = min(cut, allowed)
        spent.append(take)
        budget.spend(take)
    assert sum(spent) <= total * (1 + 1e-12)
    assert budget.met(spent)


def test_tighter_of_rtol_and_atol_wins():
    assert Truncation(rtol=0.1, atol=1.0).total_budget(2.0) == pytest.approx(0.04)
    assert Truncation(rtol=0.1, atol=0.01).total_budget(2.0) == pytest.approx(1e-4)
    assert Truncation(max_bond=3).total_budget(2.0) is None
    assert Truncation().is_exact


def test_report_arithmetic():
    r = TruncationReport.from_discarded(
        discarded=[0.09, 0.16],
        norm=2.0,
        bond_dims_before=(4, 4),
        bond_dims_after=(2, 2),
        params_before=100,
        params_after=25,
        method="svd",
        tolerance_met=False,
    )
    assert r.abs_error_bound == pytest.approx(0.5)
    assert r.rel_error_bound == pytest.approx(0.25)
    assert r.compression_ratio == 4.0
    assert "NOT met" in str(r)
    with pytest.raises(AttributeError):
        r.method = "x"
    assert math.isfinite(r.norm)


def _report(**changes):
    fields = dict(
        norm=4.0,
        bond_dims_before=(4, 4),
        bond_dims_after=(2, 2),
        params_before=64,
        params_after=16,
        method="svd",
        tolerance_met=True,
    )
    return TruncationReport.from_discarded([1.0, 3.0], **{**fields, **changes})


def test_report_constructors():
    """The named constructors: each changes what it says and keeps the rest consistent."""
    r = _report()
    assert (r.abs_error_bound, r.rel_error_bound, r.compression_ratio) == (2.0, 0.5, 4.0)
    estimate = _report(rel_error=0.125)  # an estimate in scaled units wins over the weights
    assert (estimate.rel_error_bound, estimate.abs_error_bound) == (0.125, 0.5)
    assert _report(rel_error=0.0).abs_error_bound == 0.0
    big = r.scaled(512)
    assert big.rel_error_bound == r.rel_error_bound and big.norm == math.ldexp(4.0, 512)
    assert big.abs_error_bound == math.ldexp(2.0, 512)
    assert big.discarded == (math.inf, math.inf)  # 2^1024 leaves the double range
    assert r.scaled(0) == r
    wider = r.with_bound(3.0)
    assert (wider.abs_error_bound, wider.rel_error_bound) == (3.0, 0.75)
    assert wider.discarded == r.discarded
    assert _report(norm=0.0).with_bound(1.0).rel_error_bound == 0.0
    counted = r.counting_input(160)
    assert (counted.params_before, counted.compression_ratio) == (160, 10.0)
    assert r.renamed("exact/svd").method == "exact/svd" and r.method == "svd"
