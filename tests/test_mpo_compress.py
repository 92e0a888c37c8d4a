"""Exact MPO compression: rescaled SVD, deparallelisation, delinearisation (issue acceptance).

The Heisenberg powers, 1 − ⊗P↓ and Hubbard cases are the reference figures of DESIGN §4; the
properties run every method on sums and products of random operators (with exact structure
to remove) and check that the operator does not change, bonds never grow, and a second
compression changes nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import eps, mpo_trains

import tnkit as tn

METHODS = ("svd", "rescaled", "deparallelise", "delinearise")
EXACT_POWER_BONDS = (5, 9, 16, 32, 51, 79, 110)  # centre bond of Heisenberg H^n, n = 1..7


def product_state(bits):
    return tn.MPS([np.eye(2)[b].reshape(1, 2, 1) for b in bits])


def relative_action_error(o, reference, states):
    """max over states of ‖o·ψ − reference(ψ)‖ / ‖reference(ψ)‖."""
    worst = 0.0
    for psi in states:
        want = reference(psi)
        worst = max(worst, tn.distance(o @ psi, want) / want.norm())
    return worst


def heisenberg_powers(length, n_max, **compress):
    h = tn.models.heisenberg(length)
    powers = [h]
    for _ in range(n_max - 1):
        powers.append((h @ powers[-1]).compress(**compress))
    return h, powers


def applied_power(h, n):
    def apply(psi):
        for _ in range(n):
            psi = (h @ psi).compress()
        return psi

    return apply


# ---------------------------------------------------------------------- Heisenberg powers


@pytest.mark.parametrize(
    ("method", "n_max", "tol"),
    [("rescaled", 7, None), ("svd", 5, None), ("delinearise", 5, None)],
)
def test_heisenberg_powers_reach_the_exact_bonds(method, n_max, tol):
    length = 16
    h, powers = heisenberg_powers(length, n_max, method=method, tol=tol)
    centre = [p.bond_dims[length // 2 - 1] for p in powers]
    assert tuple(centre) == EXACT_POWER_BONDS[:n_max]
    states = [tn.MPS.random([2] * length, 3, seed=s) for s in range(2)]
    for n in (n_max - 1, n_max):
        assert relative_action_error(powers[n - 1], applied_power(h, n), states) < 1e-10
    assert powers[-1].report.rel_error_bound < 1e-10


@pytest.mark.slow
def test_sixth_power_delinearises_exactly():
    length = 16
    h, powers = heisenberg_powers(length, 6, method="delinearise")
    assert [p.bond_dims[7] for p in powers] == list(EXACT_POWER_BONDS[:6])
    states = [tn.MPS.random([2] * length, 3, seed=0)]
    assert relative_action_error(powers[-1], applied_power(h, 6), states) < 1e-10


@pytest.mark.slow
def test_seventh_power_needs_the_relaxed_delinearisation():
    length = 16
    h, powers = heisenberg_powers(length, 7, method="delinearise", tol=1e-11)
    assert [p.bond_dims[7] for p in powers] == list(EXACT_POWER_BONDS)
    states = [tn.MPS.random([2] * length, 3, seed=0)]
    assert relative_action_error(powers[-1], applied_power(h, 7), states) < 1e-8


def test_deparallelisation_alone_stops_short_of_the_optimum():
    h, powers = heisenberg_powers(16, 4, method="deparallelise")
    assert [p.bond_dims[7] for p in powers] == [5, 11, 23, 56]  # optimum 5, 9, 16, 32
    states = [tn.MPS.random([2] * 16, 3, seed=0)]
    assert relative_action_error(powers[-1], applied_power(h, 4), states) < 1e-12
    assert powers[-1].report.rel_error_bound == 0.0  # only exactly parallel columns went


# ---------------------------------------------------------------------- 1 − ⊗P↓


def not_all_down(length):
    """1 − ⊗P↓ with bond 2 (basis 0 = ↑): its second singular value is 2^(−L/2) relative."""
    eye, down = np.eye(2), np.diag([0.0, 1.0])
    first = np.stack([eye, down], axis=-1)[None]
    middle = np.zeros((2, 2, 2, 2))
    middle[0, :, :, 0], middle[1, :, :, 1] = eye, down
    last = np.stack([eye, -down])[..., None]
    return tn.MPO([first] + [middle] * (length - 2) + [last])


@pytest.mark.parametrize("method", ["deparallelise", "delinearise"])
def test_exact_methods_keep_the_tiny_exact_component(method):
    length = 100
    square = not_all_down(length) @ not_all_down(length)  # = 1 − ⊗P↓, raw bond 4
    assert set(square.bond_dims) == {4}
    c = square.compress(method=method)
    assert set(c.bond_dims) == {2}
    cases = {(1,) * length: 0.0, (0,) * length: 1.0, (0, 1) * (length // 2): 1.0}
    for bits, value in cases.items():
        psi = product_state(bits)
        assert tn.inner(psi, c @ psi) == pytest.approx(value, abs=1e-14)
        assert tn.distance(c @ psi, value * psi) <= 1e-14


def test_svd_with_its_relative_cutoff_loses_the_tiny_component():
    """Documented limitation: 2^(−100) is below any relative SVD cutoff, so "svd" (and
    "rescaled") keep bond 1, i.e. the identity: wrong on the all-down state."""
    o = not_all_down(200)
    for method in ("svd", "rescaled"):
        c = o.compress(method=method)
        assert set(c.bond_dims) == {1}
        down = product_state((1,) * 200)
        assert tn.inner(down, c @ down) == pytest.approx(1.0)  # the exact value is 0


# ---------------------------------------------------------------------- Hubbard


def test_hubbard_square_has_its_exact_rank():
    h = tn.models.hubbard(80, t=1.0, U=4.0)
    square = h @ h
    c = square.compress(method="rescaled")
    assert c.bond_dims[39] == 17 and max(c.bond_dims) == 17
    assert all(np.isfinite(np.asarray(core)).all() for core in c.cores)
    states = [tn.MPS.random([4] * 80, 2, seed=s) for s in range(2)]
    assert relative_action_error(c, lambda psi: (square @ psi).compress(), states) < 1e-10


def test_rescaled_compression_beyond_the_double_range():
    h = tn.models.hubbard(700, t=1.0, U=4.0)
    assert 2 * h.log_norm() > math.log(np.finfo(np.float64).max)  # ‖H‖² leaves double range
    c = (h + h).compress(method="rescaled")
    assert set(c.bond_dims) == {6}
    assert all(np.isfinite(np.asarray(core)).all() for core in c.cores)
    assert c.report.rel_error_bound < 1e-12
    assert c.log_norm() == pytest.approx(math.log(2) + h.log_norm(), rel=1e-12)
    plain = (h + h).compress(method="svd")  # the plain sweep overflows and hands over
    assert plain.bond_dims == c.bond_dims and plain.report.method.startswith("rescaled")
    assert plain.log_norm() == pytest.approx(c.log_norm(), rel=1e-12)


# ---------------------------------------------------------------------- properties


@st.composite
def redundant_operators(draw):
    """An operator with exact redundancy: a sum with a multiple of itself, or a product."""
    o = draw(mpo_trains(max_len=5, max_bond=3))
    kind = draw(st.sampled_from(["sum", "difference", "product"]))
    if kind == "sum":
        return o + 2.5 * o
    if kind == "difference":
        other = draw(
            mpo_trains(dtype=o.dtype, max_len=5, max_bond=3).filter(
                lambda x: x.out_dims == o.out_dims and x.in_dims == o.in_dims
            )
        )
        return (o + other) - 0.5 * other
    square = tn.MPO.random(o.out_dims, o.out_dims, 2, seed=1, dtype=o.dtype)
    return square @ o


@given(redundant_operators(), st.sampled_from(METHODS))
def test_compression_keeps_the_operator_never_grows_and_is_idempotent(o, method):
    c = o.compress(method=method)
    scale = max(o.norm(), 1e-300)
    tol = 1e3 * math.sqrt(len(o)) * eps(o.dtype) * max(o.bond_dims + (1,)) * scale
    assert np.linalg.norm(c.to_matrix() - o.to_matrix()) <= max(tol, 0.0) + 1e-300
    assert all(a <= b for a, b in zip(c.bond_dims, o.bond_dims, strict=True))
    again = c.compress(method=method)
    assert again.bond_dims == c.bond_dims
    assert c.report.method.startswith(method)
    assert c.report.bond_dims_before == o.bond_dims
    assert c.report.rel_error_bound <= 1e3 * eps(o.dtype) * max(o.bond_dims + (1,)) ** 2


def test_sums_of_copies_deparallelise_to_the_original_bonds():
    o = tn.MPO.random([2, 3, 2, 2], [2, 2, 3, 2], 3, seed=0)
    for method in ("deparallelise", "delinearise", "svd", "rescaled"):
        assert (o + o + o).compress(method=method).bond_dims == o.bond_dims


def test_exact_methods_keep_sparsity():
    h = tn.models.heisenberg(10)
    c = (h + h).compress(method="deparallelise")
    assert c.bond_dims == h.bond_dims
    zeros = sum(int(np.count_nonzero(np.asarray(x) == 0)) for x in c.cores)
    assert zeros >= sum(int(np.count_nonzero(np.asarray(x) == 0)) for x in h.cores) * 0.9


def test_compression_methods_work_on_other_backends():
    torch = pytest.importorskip("torch")
    cores = [torch.asarray(np.array(c)) for c in tn.models.heisenberg(6).cores]
    h = tn.MPO(cores)
    for method in METHODS:
        c = (h + h).compress(method=method)
        assert isinstance(c.cores[0], torch.Tensor)
        assert c.bond_dims == (4, 5, 5, 5, 4)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "parallel"}, ValueError, "method"),
        ({"method": "deparallelise", "max_bond": 3}, ValueError, "exact"),
        ({"method": "delinearise", "rtol": 1e-3}, ValueError, "exact"),
        ({"method": "svd", "tol": 1e-10}, ValueError, "tol"),
        ({"method": "rescaled", "tol": 1e-10}, ValueError, "tol"),
        ({"method": "delinearise", "tol": "1e-10"}, TypeError, "tol"),
        ({"method": "delinearise", "tol": -1.0}, ValueError, "tol"),
        ({"method": "delinearise", "tol": 1.0}, ValueError, "tol"),
    ],
)
def test_bad_compression_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        tn.models.heisenberg(4).compress(**kwargs)
