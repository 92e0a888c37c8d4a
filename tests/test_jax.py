"""tnkit.jax: MPS/MPO as JAX pytrees; jit, grad and vmap through the core's array-API code.

The traced results must equal the NumPy ones on the same values (double precision, so x64
is switched on for this module's computations).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
import tnkit as tn  # noqa: E402
import tnkit.jax  # noqa: E402,F401  (registers the pytrees)


@pytest.fixture(autouse=True)
def _x64():
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def _to_jax(train):
    return type(train)([jnp.asarray(c) for c in train.cores])


@pytest.fixture
def trains():
    m = tn.MPS.random([2, 3, 2, 2], 3, seed=0, dtype="complex128")
    o = tn.MPO.random([2, 3, 2, 2], [2, 3, 2, 2], 3, seed=1, dtype="complex128")
    return m, o


def test_jit_norm_inner_expectation_match_numpy(trains):
    m, o = trains
    mj, oj = _to_jax(m), _to_jax(o)
    assert np.isclose(jax.jit(lambda a: a.norm())(mj), m.norm(), rtol=1e-13)
    assert np.isclose(jax.jit(tn.inner)(mj, mj), tn.inner(m, m), rtol=1e-13)
    assert np.isclose(jax.jit(tn.expectation)(mj, oj), tn.expectation(m, o), rtol=1e-13)
    dense = jax.jit(lambda a, b: (b @ a).to_dense())(mj, oj)
    np.testing.assert_allclose(dense, (o @ m).to_dense(), rtol=1e-12, atol=1e-14)


def test_jit_keeps_metadata_static():
    o = tn.MPO.from_matrix(np.arange(35.0).reshape(5, 7), 2, 2)  # padded: matrix_shape (5, 7)
    oj = _to_jax(o.canonicalize(0))
    oj = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(o), oj.cores)
    out = jax.jit(lambda a: a.canonicalize(1))(oj)
    assert isinstance(out, tn.MPO) and out.centre == 1 and out.report is o.report
    assert out.matrix_shape == (5, 7)
    np.testing.assert_allclose(out.to_matrix(), o.to_matrix(), atol=1e-12)


def test_grad_of_norm_squared_is_twice_x():
    core = np.random.default_rng(0).standard_normal((1, 5, 1))
    g = jax.grad(lambda a: a.norm() ** 2)(tn.MPS([jnp.asarray(core)]))
    assert isinstance(g, tn.MPS)
    np.testing.assert_allclose(g.cores[0], 2 * core, rtol=1e-13)


def test_grad_through_sweeps_matches_the_dense_route():
    m = _to_jax(tn.MPS.random([2, 3, 2, 2], 3, seed=4))
    g = jax.grad(lambda a: a.norm() ** 2)(m)
    g_dense = jax.grad(lambda a: jnp.sum(a.to_dense() ** 2))(m)
    for a, b in zip(g.cores, g_dense.cores, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_tree_map_returns_a_train(trains):
    m, o = trains
    doubled = jax.tree_util.tree_map(lambda c: 2 * c, m)
    assert isinstance(doubled, tn.MPS) and doubled.bond_dims == m.bond_dims
    np.testing.assert_allclose(doubled.to_dense(), 2 ** len(m) * m.to_dense())  # every core
    leaves, tree = jax.tree_util.tree_flatten(o)
    assert len(leaves) == len(o) and isinstance(tree.unflatten(leaves), tn.MPO)


def test_vmap_over_stacked_cores():
    batch = [tn.MPS.random([2, 3, 2], 2, seed=s) for s in range(4)]
    stacked = jax.tree_util.tree_map(lambda *cs: jnp.stack(cs), *map(_to_jax, batch))
    assert [c.shape[0] for c in stacked.cores] == [4, 4, 4]
    norms = jax.vmap(lambda a: a.norm())(stacked)
    np.testing.assert_allclose(norms, [m.norm() for m in batch], rtol=1e-13)
    o = tn.MPO.random([2, 3, 2], [2, 3, 2], 3, seed=9)
    values = jax.vmap(lambda a: tn.expectation(a, _to_jax(o)))(stacked)
    np.testing.assert_allclose(values, [tn.expectation(m, o) for m in batch], rtol=1e-12)


def test_register_pytree_refuses_other_types():
    with pytest.raises(TypeError, match="cls: expected a TensorTrain subclass"):
        tnkit.jax.register_pytree(dict)
