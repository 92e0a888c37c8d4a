"""Gradients through tnkit's factorisations (torch.autograd, jax.grad) against finite differences.

Degenerate and nearly degenerate spectra must give finite gradients, equal to the finite
differences wherever the loss is smooth (docs/autodiff.md).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as sla

import tnkit as tn
from tnkit import _backend as backend
from tnkit import linalg

STEP = 1e-6


class Torch:
    name = "torch"

    def __init__(self):
        self.torch = pytest.importorskip("torch")

    def asarray(self, x):
        return self.torch.asarray(np.array(x))

    def grad(self, loss, params):
        params = [p.detach().clone().requires_grad_(True) for p in params]
        value = loss(params)
        return [g.detach().numpy() for g in self.torch.autograd.grad(value, params)]

    def value(self, loss, params):
        return float(np.real(backend.to_numpy(loss(params))))


class Jax:
    name = "jax"

    def __init__(self):
        self.jax = pytest.importorskip("jax")
        self.jnp = pytest.importorskip("jax.numpy")

    def asarray(self, x):
        return self.jnp.asarray(np.array(x))

    def grad(self, loss, params):
        grads = self.jax.grad(lambda ps: self.jnp.real(loss(ps)))(list(params))
        return [np.asarray(g) for g in grads]

    def value(self, loss, params):
        return float(np.real(np.asarray(loss(params))))


# JAX compiles every new shape on first use (5–15 s a test here): its cases run with -m slow,
# and test_jax_degenerate_split_is_exact keeps a quick JAX check in the default suite.
@pytest.fixture(params=["torch", pytest.param("jax", marks=pytest.mark.slow)])
def lib(request):
    if request.param == "torch":
        yield Torch()
        return
    library = Jax()
    before = library.jax.config.jax_enable_x64
    library.jax.config.update("jax_enable_x64", True)
    yield library
    library.jax.config.update("jax_enable_x64", before)


def check_gradient(lib, loss, params, *, seed=0, directions=2, rtol=1e-5):
    """Finite gradients whose directional derivatives match central differences."""
    grads = lib.grad(loss, params)
    for g in grads:
        assert np.all(np.isfinite(g)), g
    rng = np.random.default_rng(seed)
    for _ in range(directions):
        step = [rng.standard_normal(np.shape(p)) for p in params]
        plus = [lib.asarray(np.asarray(p) + STEP * d) for p, d in zip(params, step, strict=True)]
        minus = [lib.asarray(np.asarray(p) - STEP * d) for p, d in zip(params, step, strict=True)]
        numeric = (lib.value(loss, plus) - lib.value(loss, minus)) / (2 * STEP)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, step, strict=True))
        scale = max(1.0, abs(numeric))
        assert abs(analytic - numeric) <= rtol * scale, (analytic, numeric)
    return grads


def cores_of(lib, train):
    return [lib.asarray(c) for c in train.cores]


def sum_sq(lib, x):
    return (x * x).sum() if lib.name == "torch" else lib.jnp.sum(x * x)


def ghz_cores(length, weights=(1.0, 1.0)):
    """(w0|00..0> + w1|11..1>)/sqrt(2) with bond 2: equal weights give degenerate Schmidt values."""
    cores = []
    for k in range(length):
        dl, dr = (1 if k == 0 else 2), (1 if k == length - 1 else 2)
        core = np.zeros((dl, 2, dr))
        for a in range(2):
            core[0 if dl == 1 else a, a, 0 if dr == 1 else a] = weights[a] if k == 0 else 1.0
        cores.append(core / (math.sqrt(2) if k == 0 else 1.0))
    return cores


def two_products(length, seed):
    """|a1..aL> + |b1..bL> with unit-norm orthogonal-ish products: Schmidt values pairwise equal."""
    rng = np.random.default_rng(seed)
    a = [np.linalg.qr(rng.standard_normal((2, 2)))[0] for _ in range(length)]
    cores = []
    for k in range(length):
        dl, dr = (1 if k == 0 else 2), (1 if k == length - 1 else 2)
        core = np.zeros((dl, 2, dr))
        for branch in range(2):
            core[0 if dl == 1 else branch, :, 0 if dr == 1 else branch] = a[k][:, branch]
        cores.append(core)
    return cores


# ------------------------------------------------------------------- operations, generic


def test_tt_svd(lib):
    x = np.random.default_rng(1).standard_normal((3, 4, 3, 2))
    fixed = tn.MPS.random([3, 4, 3, 2], 2, seed=2)

    def loss(ps):
        m = tn.tt_svd(ps[0], max_bond=2)
        f = type(m)([lib.asarray(c) for c in fixed.cores])
        return tn.inner(f, m) + sum(sum_sq(lib, c) for c in m.cores)

    check_gradient(lib, loss, [lib.asarray(x)])


def test_compress(lib):
    m = tn.MPS.random([2, 3, 3, 2], 3, seed=3)
    fixed = tn.MPS.random([2, 3, 3, 2], 2, seed=4)

    def loss(ps):
        c = tn.MPS(ps).compress(max_bond=2)
        f = tn.MPS([lib.asarray(x) for x in fixed.cores])
        return tn.inner(f, c) ** 2 + sum_sq(lib, c.to_dense())

    check_gradient(lib, loss, cores_of(lib, m))


def test_canonicalize(lib):
    m = tn.MPS.random([2, 3, 3, 2], 3, seed=5)

    def loss(ps):
        c = tn.MPS(ps).canonicalize(1)
        return sum_sq(lib, c.cores[0]) + sum_sq(lib, c.cores[2]) + tn.inner(c, c)

    check_gradient(lib, loss, cores_of(lib, m))


def test_inner_and_expectation(lib):
    m = tn.MPS.random([2, 3, 2], 2, seed=6)
    b = tn.MPS.random([2, 3, 2], 3, seed=7)
    o = tn.MPO.random([2, 3, 2], [2, 3, 2], 2, seed=8)

    def loss(ps):
        a = tn.MPS(ps)
        other = tn.MPS(cores_of(lib, b))
        return tn.inner(a, other) ** 2 + tn.expectation(a, tn.MPO(cores_of(lib, o)))

    check_gradient(lib, loss, cores_of(lib, m))


@pytest.mark.parametrize("method", ["zipup", "exact"])
def test_apply(lib, method):
    m = tn.MPS.random([2, 3, 2], 2, seed=9)
    o = tn.MPO.random([2, 3, 2], [2, 3, 2], 2, seed=10)
    fixed = tn.MPS.random([2, 3, 2], 2, seed=11)
    options = {"max_bond": 3} if method == "zipup" else {}

    def loss(ps):
        out = tn.apply(tn.MPO(cores_of(lib, o)), tn.MPS(ps), method=method, **options)
        return tn.inner(tn.MPS(cores_of(lib, fixed)), out) + sum_sq(lib, out.to_dense())

    check_gradient(lib, loss, cores_of(lib, m))


# ------------------------------------------------------------------- degenerate spectra


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 1.0 + 1e-9), (1.0, 1.0 + 1e-4)])
def test_ghz_compress_is_finite_and_exact(lib, weights):
    """Degenerate Schmidt values 1/√2 at every bond: nothing is cut, the loss is smooth."""

    def loss(ps):
        c = tn.MPS(ps).compress(max_bond=2)
        return tn.inner(c, c) + sum_sq(lib, c.to_dense()) + sum_sq(lib, c.to_dense()[0, 0])

    for seed, cores in enumerate([ghz_cores(5, weights), two_products(4, seed=12)]):
        check_gradient(lib, loss, [lib.asarray(c) for c in cores], seed=seed)


def test_ghz_tt_svd(lib):
    dense = tn.MPS(ghz_cores(4)).to_dense()

    def loss(ps):
        m = tn.tt_svd(ps[0], max_bond=2)
        return tn.inner(m, m) + sum_sq(lib, m.to_dense()[1, 1])

    check_gradient(lib, loss, [lib.asarray(dense)])


def test_rank_deficient_canonicalize_is_finite(lib):
    """A product state carried on bond 2 (a zero block): QR's R is singular at every site."""
    cores = [c.copy() for c in tn.MPS.random([2, 2, 2, 2], 1, seed=13).cores]
    padded = []
    for k, core in enumerate(cores):
        dl, dr = (1 if k == 0 else 2), (1 if k == len(cores) - 1 else 2)
        block = np.zeros((dl, 2, dr))
        block[:1, :, :1] = core
        padded.append(block)

    def loss(ps):
        c = tn.MPS(ps).canonicalize(2)
        return tn.inner(c, c) + sum_sq(lib, c.to_dense()[0])

    grads = check_gradient(lib, loss, [lib.asarray(c) for c in padded])
    assert all(np.all(np.isfinite(g)) for g in grads)


# ------------------------------------------------------------------- rules and routes


def test_torch_complex_compress_matches_finite_differences():
    torch = pytest.importorskip("torch")
    m = tn.MPS.random([2, 3, 2], 3, seed=14, dtype="complex128")
    params = [torch.asarray(np.array(c)).requires_grad_(True) for c in m.cores]
    loss = tn.inner(*(2 * [tn.MPS(params).compress(max_bond=2)])).real
    grads = torch.autograd.grad(loss, params)
    rng = np.random.default_rng(15)
    step = [rng.standard_normal(c.shape) + 1j * rng.standard_normal(c.shape) for c in m.cores]

    def value(sign):
        cores = [torch.asarray(c + sign * STEP * d) for c, d in zip(m.cores, step, strict=True)]
        c = tn.MPS(cores).compress(max_bond=2)
        return float(tn.inner(c, c).real)

    numeric = (value(1) - value(-1)) / (2 * STEP)
    analytic = sum(
        float(np.sum(np.real(np.conj(g.numpy()) * d))) for g, d in zip(grads, step, strict=True)
    )
    assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric))


def test_degenerate_svd_rule_recovers_the_product_gradient():
    """At σ₁ = σ₂ the loss ⟨G, u s vh⟩ has gradient G; plain autograd gives NaN there."""
    torch = pytest.importorskip("torch")
    a = torch.eye(3, dtype=torch.float64).requires_grad_(True)
    weights = torch.asarray(np.random.default_rng(16).standard_normal((3, 3)))
    u, s, vh = backend.svd(a)
    (grad,) = torch.autograd.grad(((u * s) @ vh * weights).sum(), a)
    np.testing.assert_allclose(grad.numpy(), weights.numpy(), atol=1e-12)


def test_jax_degenerate_split_is_exact():
    """jax.grad through a truncated split of a matrix with σ₁ = σ₂ (nothing cut): the
    product loss ⟨G, left @ right⟩ has gradient G."""
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        weights = jnp.asarray(np.random.default_rng(18).standard_normal((4, 3)))
        a = jnp.asarray(np.diag([2.0, 2.0, 1.0])[[0, 1, 2, 2]] * [1, 1, 0.5])

        def loss(x):
            split = linalg.truncated_split(x, max_bond=3)
            return jnp.sum(split.left @ split.right * weights)

        np.testing.assert_allclose(jax.grad(loss)(a), weights, atol=1e-12)
    finally:
        jax.config.update("jax_enable_x64", before)


def test_differentiable_inputs_take_the_svd_routes():
    torch = pytest.importorskip("torch")
    wide = torch.zeros((4, 400), dtype=torch.float64)
    assert linalg.truncated_split(wide.numpy(), max_bond=2).method == "gram"
    split = linalg.truncated_split(wide.requires_grad_(True) + 1.0, max_bond=2)
    assert split.method == "qr"


def test_numpy_results_do_not_change():
    a = np.random.default_rng(17).standard_normal((30, 20))
    for ours, theirs in zip(backend.svd(a), sla.svd(a, full_matrices=False), strict=True):
        assert np.array_equal(ours, theirs)
    assert not backend.requires_grad(a)
