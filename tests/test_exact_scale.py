"""The exact scale (issue 16): a train is 2**scale_exponent times its cores, so no size of a
number is the user's problem; every operation keeps the scale, and nothing is silently lost.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tnkit as tn
from tnkit import _kernels


def filled(L: int, value: float, bond: int = 2, d: int = 2) -> tn.MPS:
    """A chain of cores filled with ``value`` (bond ``bond``): norm (value·√(d·bond))^L-ish."""
    shapes = [(1, d, bond)] + [(bond, d, bond)] * (L - 2) + [(bond, d, 1)]
    return tn.MPS([np.full(s, value) for s in shapes])


def exact_log_norm(L: int, value: float, bond: int = 2, d: int = 2) -> float:
    """log ‖x‖ of ``filled``: the tensor is value^L·bond^(L-1) on every entry (rank one)."""
    return L * math.log(value) + (L - 1) * math.log(bond) + 0.5 * L * math.log(d)


def product_state(L: int, amplitude: float = 0.5) -> tn.MPS:
    return tn.MPS([np.array([amplitude, 0.0]).reshape(1, 2, 1)] * L)


@pytest.mark.parametrize(("value", "L"), [(0.9, 5000), (1e3, 400)])
def test_long_chains_canonicalise_compress_and_overlap(value, L):
    m = filled(L, value)
    exact = exact_log_norm(L, value)
    assert math.isclose(m.log_norm(), exact, rel_tol=1e-9)
    for centre in (0, L - 1):
        c = m.canonicalize(centre)
        assert c.is_canonical(centre)
        assert math.isclose(c.log_norm(), exact, rel_tol=1e-9)
    assert math.isclose(tn.inner(m, m, log=True) / 2, exact, rel_tol=1e-9)
    c = m.compress()
    assert c.bond_dims == (1,) * (L - 1)  # rank one, exactly
    assert math.isclose(c.log_norm(), exact, rel_tol=1e-9)
    assert c.report.tolerance_met and c.report.rel_error_bound < 1e-12
    assert c.norm() == math.inf  # not representable: inf, never NaN
    with pytest.raises(OverflowError, match="log_norm"):
        tn.MPS([np.full((1, 2, 1), 1e200)] * 3).to_dense()


@pytest.mark.parametrize("L", [2000, pytest.param(10**5, marks=pytest.mark.slow)])
def test_a_vanishing_product_state_survives_every_method(L):
    m = product_state(L)
    exact = L * math.log(0.5)
    assert math.isclose(m.canonicalize(0).log_norm(), exact, rel_tol=1e-9)
    assert math.isclose(m.canonicalize(L - 1).log_norm(), exact, rel_tol=1e-9)
    for method in ("svd", "rescaled", "deparallelise", "delinearise"):
        c = m.compress(method=method)
        assert math.isclose(c.log_norm(), exact, rel_tol=1e-9), method
        assert c.report.tolerance_met and c.report.rel_error_bound < 1e-9, method
    assert m.norm() == 0.0  # below the double range, and said so by log_norm


def test_the_zero_train_is_still_zero():
    zero = tn.MPS([np.zeros((1, 2, 1))] * 5)
    assert zero.log_norm() == -math.inf and zero.norm() == 0.0
    c = zero.compress()
    assert c.norm() == 0.0 and c.report.rel_error_bound == 0.0


def test_huge_trains_compress_by_default_without_picking_a_method():
    unit = tn.MPS.random([2] * 10, 4, seed=0)
    big = tn.MPS([c * 2.0**100 for c in unit.cores])  # 2^1000
    c, reference = big.compress(max_bond=2), unit.compress(max_bond=2)
    assert math.isclose(c.log_norm(), reference.log_norm() + 1000 * math.log(2), rel_tol=1e-12)
    assert c.report.rel_error_bound == pytest.approx(reference.report.rel_error_bound, rel=1e-9)
    assert c.report.tolerance_met and math.isinf(c.report.discarded[1])  # 2^2000-ish weights
    ones = tn.MPS([np.ones((1, 2, 1))] * 400)
    total = ones
    for _ in range(49):
        total = total + ones
    s = total.compress()
    assert s.bond_dims == (1,) * 399
    assert math.isclose(s.log_norm(), math.log(50) + 200 * math.log(2), rel_tol=1e-12)


def test_operations_keep_the_scale():
    a = tn.MPS.random([2] * 6, 3, seed=1)
    b = tn.MPS.random([2] * 6, 3, seed=2)
    o = tn.MPO.random([2] * 6, [2] * 6, 2, seed=3)
    big = 1e300 * (1e300 * a)  # the second factor the cores cannot take: the exponent does
    shift = 600 * math.log(10)
    assert big.scale_exponent > 900
    assert math.isclose(big.log_norm(), a.log_norm() + shift, rel_tol=1e-12)
    assert math.isclose(tn.inner(big, b, log=True).real, math.log(abs(tn.inner(a, b))) + shift)
    tiny_o = 1e-300 * (1e-300 * (1e-300 * (1e-300 * o)))  # ⟨big|tiny_o|big⟩ = ⟨a|o|a⟩
    assert tn.expectation(big, tiny_o) == pytest.approx(tn.expectation(a, o), rel=1e-12)
    assert tn.expectation(big, o, normalize=True) == pytest.approx(
        tn.expectation(a, o, normalize=True), rel=1e-12
    )
    product = (1e-300 * (1e-300 * o)) @ big
    assert product.scale_exponent == big.scale_exponent + (1e-300 * (1e-300 * o)).scale_exponent
    assert np.allclose(product.to_dense(), (o @ a).to_dense(), rtol=1e-10, atol=1e-12)
    s_big, s = big.singular_values(2), a.singular_values(2)
    assert np.all(np.isinf(s_big[s > 0]))  # 1e600 σ: beyond float64, said so
    assert math.isclose(big.entropy(2), a.entropy(2), rel_tol=1e-12)
    assert np.allclose(big.entropies(), a.entropies(), rtol=1e-12)
    assert np.array_equal(big.sample(20, seed=4), a.sample(20, seed=4))
    # sums with different exponents align them (the small one vanishes below rounding)
    assert math.isclose((big + a).log_norm(), big.log_norm(), rel_tol=1e-12)
    assert (big - big).log_norm() < big.log_norm() + math.log(1e-13)  # rounding, relative
    assert (big - (1e300 * (1e300 * b))).log_norm() == pytest.approx(
        tn.distance(a, b) and math.log(tn.distance(a, b)) + shift, rel=1e-12
    )
    with pytest.raises(OverflowError, match="log_norm"):
        big.to_dense()


def test_the_scale_round_trips_through_storage(tmp_path):
    big = (1e300 * (1e300 * tn.MPS.random([2] * 5, 2, seed=0))).canonicalize(2)
    for suffix in (".npz", ".safetensors"):
        path = tmp_path / f"t{suffix}"
        tn.save(path, big)
        back = tn.load(path)
        assert back.scale_exponent == big.scale_exponent and back.centre == 2
        assert all(np.array_equal(x, y) for x, y in zip(back.cores, big.cores, strict=True))


def test_complex_factors_promote_real_trains():
    h = tn.MPO.random([2] * 4, [2] * 4, 3, seed=0)
    ih = 1j * h
    assert ih.dtype == np.complex128 and np.allclose(ih.to_matrix(), 1j * h.to_matrix())
    assert (1j * tn.MPS.random([2] * 3, 2, seed=0, dtype="float32")).dtype == np.complex64


@settings(max_examples=40, deadline=None)
@given(
    exponent=st.floats(-300, 300),
    dtype=st.sampled_from(["float32", "float64", "complex64", "complex128"]),
    seed=st.integers(0, 2**16),
)
def test_log_norm_of_a_multiple(exponent, dtype, seed):
    """log_norm(c·a) = log|c| + log_norm(a) for c from 1e-300 to 1e300, any dtype, and
    canonicalisation never changes log_norm beyond rounding."""
    a = tn.MPS.random([2] * 5, 3, seed=seed, dtype=dtype)
    c = 10.0**exponent
    scaled = c * a
    tol = 1e-4 if dtype in ("float32", "complex64") else 1e-11
    expected = math.log(c) + a.log_norm()
    assert math.isclose(scaled.log_norm(), expected, rel_tol=tol, abs_tol=tol)
    for centre in (0, 2, 4):
        assert math.isclose(
            scaled.canonicalize(centre).log_norm(), expected, rel_tol=tol, abs_tol=tol
        )


def test_kernels_and_twins_agree_on_the_scale():
    big = filled(300, 1e3)
    with _kernels.disabled():
        twin = (tn.inner(big, big, log=True), big.log_norm(), big.canonicalize(0).log_norm())
    kernel = (tn.inner(big, big, log=True), big.log_norm(), big.canonicalize(0).log_norm())
    for x, y in zip(twin, kernel, strict=True):
        assert math.isclose(x, y, rel_tol=1e-12)


def test_torch_norm_carries_gradients():
    torch = pytest.importorskip("torch")
    cores = [torch.randn(1, 2, 2, dtype=torch.float64, requires_grad=True)]
    cores += [torch.randn(2, 2, 1, dtype=torch.float64, requires_grad=True)]
    m = tn.MPS(cores)
    n = m.norm()
    assert isinstance(n, torch.Tensor) and n.requires_grad
    n.backward()
    dense = torch.einsum("asb,btc->st", *[c.detach() for c in cores])
    assert math.isclose(n.item(), float(torch.linalg.norm(dense)), rel_tol=1e-12)
    assert all(c.grad is not None and torch.all(torch.isfinite(c.grad)) for c in cores)
    log = m.log_norm()
    assert isinstance(log, torch.Tensor) and math.isclose(log.item(), math.log(n.item()))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_tt_svd_error_strictly_decreases_with_the_rank(dtype):
    """TensorLy #607 reports a complex TT-SVD whose error does not fall with the rank; here
    it falls strictly until it reaches rounding, and never exceeds the report's bound."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((4,) * 5) + 1j * rng.standard_normal((4,) * 5)).astype(dtype)
    errors = []
    for rank in range(1, 17):
        m = tn.tt_svd(x, max_bond=rank)
        error = float(np.linalg.norm(m.to_dense() - x) / np.linalg.norm(x))
        assert error <= m.report.rel_error_bound + 100 * np.finfo(dtype).eps
        errors.append(error)
    floor = 1000 * np.finfo(dtype).eps
    for before, after in zip(errors, errors[1:], strict=False):
        assert after < before or before < floor
    assert errors[-1] < floor
