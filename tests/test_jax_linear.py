"""tnkit.jax.MPOLinear: nnx.Linear's contract with an MPO kernel.

Forward equals ``x @ kernel + bias`` in every contraction order and for any batch dims;
``jax.jit``/``nnx.jit`` and gradients through a train step; init whose norm is that of
``nnx.Linear``'s lecun_normal in expectation; exact parameter counts (MPO-Net);
from_dense/to_dense/mpo with honest reports; bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
import jax.numpy as jnp  # noqa: E402

import tnkit as tn  # noqa: E402
from tnkit.jax import MPOLinear  # noqa: E402


@pytest.fixture
def x64():
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def dense_reference(layer, x):
    """``x @ kernel + bias`` in float64 on the host, from the layer's own dense kernel."""
    kernel, bias = (None if a is None else np.asarray(a, np.float64) for a in layer.to_dense())
    y = np.asarray(x, np.float64) @ kernel
    return y if bias is None else y + bias


def normal(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ============================================================================== forward


def test_from_dense_full_rank_equals_dense_float32():
    dense = nnx.Linear(24, 20, rngs=nnx.Rngs(0))
    kernel, bias = dense.kernel[...], dense.bias[...]
    layer = MPOLinear.from_dense(kernel, bias, n_cores=3)
    assert layer.report.rel_error_bound == 0 and layer.cores[0].dtype == jnp.float32
    x = normal(1, (5, 24))
    np.testing.assert_allclose(layer(x), dense(x), rtol=1e-5, atol=1e-5)
    got_kernel, got_bias = layer.to_dense()
    np.testing.assert_allclose(got_kernel, kernel, atol=1e-5)
    np.testing.assert_array_equal(got_bias, bias)


def test_from_dense_full_rank_float64(x64):
    rng = np.random.default_rng(2)
    kernel, bias = rng.standard_normal((24, 20)), rng.standard_normal(20)
    layer = MPOLinear.from_dense(kernel, bias, n_cores=3)
    assert layer.cores[0].dtype == jnp.float64 and layer.bias.dtype == jnp.float64
    x = rng.standard_normal((4, 24))
    np.testing.assert_allclose(layer(x), x @ kernel + bias, rtol=1e-12, atol=1e-12)


def test_padded_sizes_batch_dims_and_orders():
    """97 -> 13 on 3 cores pads to (4,5,5) -> (2,2,4); 1, 3 and 4 rows take the three orders."""
    layer = MPOLinear(97, 13, n_cores=3, rngs=nnx.Rngs(0))
    assert layer.padded and (layer.in_dims, layer.out_dims) == ((4, 5, 5), (2, 2, 4))
    assert layer.plan.segments == ((0, "sweep"), (2, "2+1"), (4, "dense"))
    layer.bias.set_value(jnp.asarray(normal(3, 13)))
    for shape in [(97,), (3, 97), (2, 2, 97), (0, 97)]:
        x = normal(4, shape)
        y = layer(x)
        assert y.shape == (*shape[:-1], 13)
        np.testing.assert_allclose(y, dense_reference(layer, x), rtol=1e-5, atol=1e-5)


def test_from_dense_padded_and_no_bias():
    kernel = normal(6, (97, 13))
    layer = MPOLinear.from_dense(kernel, n_cores=2)
    assert layer.bias is None and layer.padded
    mpo = layer.mpo
    assert isinstance(mpo, tn.MPO) and mpo.matrix_shape == (13, 97)
    np.testing.assert_allclose(mpo.to_matrix(), kernel.T, atol=1e-5)
    x = normal(7, (2, 3, 97))
    np.testing.assert_allclose(layer(x), x @ kernel, rtol=1e-4, atol=1e-5)


def test_jit_forward_and_compute_dtype():
    layer = MPOLinear(32, 16, n_cores=2, rngs=nnx.Rngs(1))
    x = normal(8, (6, 32))
    want = layer(x)
    np.testing.assert_allclose(jax.jit(lambda x: layer(x))(x), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(layer, x), want, rtol=1e-6, atol=1e-6)
    half = MPOLinear(32, 16, n_cores=2, dtype=jnp.bfloat16, rngs=nnx.Rngs(1))
    assert half(x).dtype == jnp.bfloat16 and half.cores[0].dtype == jnp.float32


# ============================================================================== training


def test_grad_and_sgd_step_reduce_a_regression_loss():
    optax = pytest.importorskip("optax")
    layer = MPOLinear(16, 8, n_cores=2, max_bond=4, rngs=nnx.Rngs(2))
    x = normal(9, (64, 16))
    y = x @ normal(10, (16, 8)) / 4

    def loss_fn(model):
        return jnp.mean((model(x) - y) ** 2)

    optimizer = nnx.Optimizer(layer, optax.sgd(0.1), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    graphdef, params = nnx.split(layer, nnx.Param)
    grads = jax.jit(jax.grad(lambda p: loss_fn(nnx.merge(graphdef, p))))(params)
    assert [g.shape for g in jax.tree.leaves(grads)] == [p.shape for p in jax.tree.leaves(params)]
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))
    first = float(train_step(layer, optimizer))  # the loss before the update
    assert float(train_step(layer, optimizer)) < first


# ============================================================================== init


def test_init_matches_nnx_linear_lecun_normal():
    """lecun_normal: entry variance 1/in, so E‖kernel‖_F² = out; ours is exactly that."""
    dims = (4, 4, 4, 4)
    layer = MPOLinear(256, 256, in_dims=dims, out_dims=dims, max_bond=4, rngs=nnx.Rngs(3))
    kernel = np.asarray(layer.to_dense()[0], np.float64)
    assert float((kernel**2).sum()) == pytest.approx(256, rel=1e-5)
    want = float(np.asarray(nnx.Linear(256, 256, rngs=nnx.Rngs(3)).kernel[...]).std())
    assert want == pytest.approx(1 / math.sqrt(256), rel=0.02)
    assert float(kernel.std()) == pytest.approx(want, rel=0.03)
    np.testing.assert_array_equal(layer.bias[...], np.zeros(256, np.float32))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_features": 97, "out_features": 13, "n_cores": 3, "max_bond": 4},  # padded
        {"in_features": 16, "out_features": 16, "n_cores": 4, "bond_dims": (1, 16, 4)},
    ],
    ids=str,
)
def test_init_norm_exact_and_follows_the_key(kwargs, x64):
    layer = MPOLinear(**kwargs, param_dtype=jnp.float64, rngs=nnx.Rngs(4))
    assert [c.shape[-1] for c in layer.cores[:-1]] == list(layer.bond_dims)
    kernel = np.asarray(layer.to_dense()[0])
    assert float((kernel**2).sum()) == pytest.approx(kwargs["out_features"], rel=1e-12)
    again = MPOLinear(**kwargs, param_dtype=jnp.float64, rngs=nnx.Rngs(4))
    np.testing.assert_array_equal(again.to_dense()[0], kernel)


def test_traced_init():
    """nnx.eval_shape and nnx.jit build the layer abstractly / on device (no host reads)."""
    abstract = nnx.eval_shape(lambda: MPOLinear(97, 13, n_cores=3, rngs=nnx.Rngs(5)))
    assert all(isinstance(v, jax.ShapeDtypeStruct) for v in jax.tree.leaves(nnx.state(abstract)))
    layer = nnx.jit(lambda: MPOLinear(97, 13, n_cores=3, rngs=nnx.Rngs(5)))()
    kernel = np.asarray(layer.to_dense()[0], np.float64)
    assert float((kernel**2).sum()) == pytest.approx(13, rel=1e-5)
    assert [c.shape for c in layer.cores] == [c.shape for c in abstract.cores]


def test_parameter_count_mpo_net_fc2():
    """MPO-Net's FC2 first layer: 784 = 4·7·7·4 -> 256 = 4^4 at D = 4: 1,024 core entries."""
    layer = MPOLinear(
        784, 256, in_dims=(4, 7, 7, 4), out_dims=(4, 4, 4, 4), max_bond=4, rngs=nnx.Rngs(0)
    )
    shapes = [c.shape for c in layer.cores]
    assert shapes == [(1, 4, 4, 4), (4, 4, 7, 4), (4, 4, 7, 4), (4, 4, 4, 1)]
    assert sum(math.prod(s) for s in shapes) == 1024 == layer.mpo.num_params
    params = nnx.state(layer, nnx.Param)
    assert sum(p.size for p in jax.tree.leaves(params)) == 1024 + 256


# ============================================================================== conversions


@pytest.mark.parametrize("rule", [{"max_bond": 4}, {"rtol": 0.5}], ids=str)
def test_from_dense_truncated_report_bound_holds(rule):
    kernel, bias = normal(11, (64, 48)), normal(12, 48)
    layer = MPOLinear.from_dense(kernel, bias, n_cores=3, **rule)
    report = layer.report
    assert report is not None and report.bond_dims_after == layer.bond_dims
    assert report.params_after == sum(c.size for c in layer.cores)
    got = np.asarray(layer.to_dense()[0], np.float64)
    err = float(np.linalg.norm(got - kernel))
    assert err <= report.abs_error_bound + 1e-4 * np.linalg.norm(kernel)
    fresh = MPOLinear(
        64,
        48,
        in_dims=layer.in_dims,
        out_dims=layer.out_dims,
        bond_dims=layer.bond_dims,
        rngs=nnx.Rngs(0),
    )
    nnx.update(fresh, nnx.state(layer))  # a checkpoint restores into the same layout
    np.testing.assert_array_equal(fresh.to_dense()[0], layer.to_dense()[0])
    if "rtol" in rule:
        assert report.rel_error_bound <= 0.5
    else:
        assert max(layer.bond_dims) <= 4 and err > 0


# ============================================================================== bad input


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((0, 4), {}, ValueError, "in_features"),
        ((4, -1), {}, ValueError, "out_features"),
        ((16, 16), {"n_cores": 3, "in_dims": (4, 4)}, ValueError, "in_dims"),
        ((16, 16), {"in_dims": (4, 3)}, ValueError, "in_dims.*smaller than in_features"),
        ((16, 16), {"n_cores": 2, "bond_dims": (17,)}, ValueError, "bond_dims"),
        ((16, 16), {"max_bond": 0}, ValueError, "max_bond"),
        ((16, 16), {"max_bond": 2, "bond_dims": (2, 2, 2)}, ValueError, "bond_dims and max_bond"),
    ],
    ids=str,
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        MPOLinear(*args, **kwargs, rngs=nnx.Rngs(0))


def test_bad_forward_and_conversion_input():
    with pytest.raises(TypeError, match="rngs"):
        MPOLinear(16, 8, rngs=0)
    layer = MPOLinear(16, 8, n_cores=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 16\)"):
        layer(jnp.ones((3, 15)))
    kernel = normal(13, (16, 8))
    with pytest.raises(ValueError, match="kernel: expected 2 dimensions"):
        MPOLinear.from_dense(kernel[0])
    with pytest.raises(ValueError, match=r"bias: expected shape \(8,\)"):
        MPOLinear.from_dense(kernel, np.zeros(16, np.float32))
    with pytest.raises(ValueError, match="kernel: contains NaN"):
        MPOLinear.from_dense(np.full((16, 8), np.nan, np.float32))
    with pytest.raises(TypeError, match="kernel: expected a floating"):
        MPOLinear.from_dense(np.ones((16, 8), np.int32))
    with pytest.raises(TypeError, match="kernel: from_dense reads values on the host"):
        jax.jit(lambda k: MPOLinear.from_dense(k).cores[0][...])(jnp.asarray(kernel))
    with pytest.raises(ValueError, match="rtol"):
        MPOLinear.from_dense(kernel, rtol=-1.0)
