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


def _scaled_cores(library: str, scale: float, length: int = 12):
    """PSI-like random cores times ``scale`` in ``library`` (float64), and NumPy twins."""
    xp = pytest.importorskip(library)
    plain = tn.MPS.random([2] * length, 4, seed=1)
    host = [np.array(c) * scale for c in plain.cores]
    return xp, [xp.asarray(c) for c in host], host


def _gradient(library: str, loss, core):
    """d loss / d core in ``library`` (JAX: jax.grad, not jitted; torch: autograd)."""
    if library == "torch":
        leaf = core.clone().requires_grad_(True)
        value = loss(leaf)
        value.backward()
        return float(value.detach()), leaf.grad.numpy()
    import jax

    value, grad = jax.value_and_grad(loss)(core)
    return float(value), np.asarray(grad)


@pytest.fixture
def x64():
    """JAX in double precision for one test (restored after it)."""
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.mark.parametrize("library", ["torch", "jax.numpy"])
@pytest.mark.parametrize(
    ("measure", "scale"), [("log_norm", 1e-30), ("log_norm", 1e25), ("norm", 1e-15)]
)
def test_norms_and_their_gradients_at_extreme_scales(library, measure, scale, x64):
    """Under autodiff, norm and log_norm squared the centre core: at norms of 1e-360 and
    1e300 log_norm gave ∓inf and NaN gradients; at 1e-180 (representable, its square is not)
    norm gave 0. Both equal NumPy's value and scale as they should; the gradient of the
    scaled train is the unscaled one, rescaled."""
    _, cores, host = _scaled_cores(library, scale)
    _, unscaled, _ = _scaled_cores(library, 1.0)

    def loss(rest):
        return lambda core: getattr(tn.MPS([core, *rest[1:]]), measure)()

    value, grad = _gradient(library, loss(cores), cores[0])
    value_1, grad_1 = _gradient(library, loss(unscaled), unscaled[0])
    assert value == pytest.approx(getattr(tn.MPS(host), measure)(), rel=1e-12)
    if measure == "log_norm":  # log_norm(c·x) = 12·log c + log_norm(x); gradient over c
        assert value == pytest.approx(value_1 + 12 * math.log(scale), rel=1e-12)
        np.testing.assert_allclose(grad * scale, grad_1, rtol=1e-9, atol=1e-12)
    else:  # norm(c·x) = c¹²·norm(x); gradient times c¹¹
        assert value == pytest.approx(value_1 * scale**12, rel=1e-12)
        np.testing.assert_allclose(grad / scale**11, grad_1, rtol=1e-9, atol=1e-12)


def test_compress_under_jax_grad_hands_over_at_extreme_scales(x64):
    """Under jax.grad (values known, no jit), a cut at norm ~1e-180 reported a bound of 0:
    the svd sweep's scale check skipped differentiation tracers."""
    import jax

    _, cores, host = _scaled_cores("jax.numpy", 1e-15)
    reports = []

    def loss(core):
        c = tn.MPS([core, *cores[1:]]).compress(max_bond=2)
        reports.append(c.report)
        return c.log_norm()

    grad = jax.grad(loss)(cores[0])
    plain = tn.MPS(host).compress(max_bond=2)
    assert reports[0].method.startswith("rescaled")
    assert reports[0].rel_error_bound == pytest.approx(plain.report.rel_error_bound, rel=1e-9)
    assert reports[0].rel_error_bound > 0.01
    assert bool(np.all(np.isfinite(np.asarray(grad))))


def test_scale_paths_read_values_under_jax_grad(x64):
    """Differentiation tracers outside jit know their values; the scale checks skipped them,
    so under jax.grad tt_svd of entries 1e-200 reported a bound of 0 for a 90 % cut, and
    inner(log=True) at norm² 1e-720, the log-norm of 1e-300·x, gave -inf with NaN gradients."""
    import jax
    import jax.numpy as jnp

    x = np.random.default_rng(0).standard_normal((2,) * 10) * 1e-200
    reports = []

    def decomposed(v):
        t = tn.tt_svd(v, max_bond=4)
        reports.append(t.report)
        return t.log_norm()

    grad = jax.grad(decomposed)(jnp.asarray(x))
    plain = tn.tt_svd(x, max_bond=4).report.rel_error_bound
    assert reports[0].rel_error_bound == pytest.approx(plain, rel=1e-9) and plain > 0.5
    assert bool(jnp.all(jnp.isfinite(grad)))

    _, cores, host = _scaled_cores("jax.numpy", 1e-30)
    unscaled = tn.MPS([c / 1e-30 for c in host])

    def overlap_log(core):
        a = tn.MPS([core, *cores[1:]])
        return jnp.real(tn.inner(a, a, log=True))

    value, grad = jax.value_and_grad(overlap_log)(cores[0])
    assert float(value) == pytest.approx(tn.inner(tn.MPS(host), tn.MPS(host), log=True).real)
    assert bool(jnp.all(jnp.isfinite(grad)))

    def scaled_log_norm(core):
        return (tn.MPS([core, *cores[1:]]) * 1e-300).log_norm()

    value, grad = jax.value_and_grad(scaled_log_norm)(cores[0])
    expected = unscaled.log_norm() + 12 * math.log(1e-30) + math.log(1e-300)
    assert float(value) == pytest.approx(expected, rel=1e-12)
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_cores_are_checked_for_nan_under_jax_grad(x64):
    """Under jax.grad the values are known, so a NaN core is refused as NumPy's would be
    (before, differentiation tracers skipped the finiteness check)."""
    import jax

    _, cores, _ = _scaled_cores("jax.numpy", 1.0)

    def loss(core):
        return tn.MPS([core.at[0, 0, 0].set(float("nan")), *cores[1:]]).log_norm()

    with pytest.raises(ValueError, match=r"cores\[0\]: contains NaN"):
        jax.grad(loss)(cores[0])


@pytest.mark.parametrize("factor", [1e-15, 1e25])  # norms ~1e-180 and ~1e300
def test_normalized_measurements_at_extreme_scales(factor):
    """local_expectation/correlation with normalize=True squared the centre core: at norm
    1e-180 they called the state zero, at 1e300 they returned NaN. The scale cancels."""
    plain = tn.MPS.random([2] * 12, 4, seed=1)
    scaled = tn.MPS([np.array(c) * factor for c in plain.cores])
    z = np.diag([1.0, -1.0])
    for measure in (
        lambda m: tn.local_expectation(m, z, 3, normalize=True),
        lambda m: tn.correlation(m, z, 2, z, 5, normalize=True),
    ):
        assert measure(scaled) == pytest.approx(measure(plain), rel=1e-12)
