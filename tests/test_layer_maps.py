"""tnkit.layer_maps and tnkit._adapters: each layer map equals its dense reference on NumPy,
gives the same numbers on PyTorch and JAX (when installed), and both adapters agree."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

import tnkit as tn
from tnkit._adapters import decompose_weight, is_half, mpo_core_shapes, mpo_of_cores, work_dtype
from tnkit.layer_maps import (
    adtn_initial,
    adtn_matrix,
    brickwall_pairs,
    cheapest_order,
    embedding_lookup,
    embedding_table,
    gather_flops,
    leg_order,
    lookup_order,
    lstm_layout,
    lstm_recurrence,
    recurrent_map,
    sigmoid,
    taylor_core_shapes,
    taylor_map,
    taylor_num_parameters,
)
from tnkit.linear_map import dense_matrix, plan_linear_map


def plan_of(o, shape=None):
    return plan_linear_map(o.out_dims, o.in_dims, o.bond_dims, matrix_shape=shape)


# ============================================================================== orders


def test_cheapest_order_is_the_minimum_of_the_plans_counts():
    plan = plan_linear_map((4, 4, 4), (4, 4, 4), (8, 8))
    for batch, steps, weight in itertools.product((1, 7, 500), (1, 20), (1, 4)):
        costs = {"dense": plan.contraction("dense").flops(steps * batch)}
        for name, contraction in plan.contractions.items():
            if name != "dense":
                costs[name] = weight * steps * contraction.flops(batch)
        best = cheapest_order(plan, batch, steps=steps, weight=weight)
        assert costs[best] == min(costs.values())


def test_lookup_order_compares_gathering_with_building():
    o = tn.MPO.random((10, 10), (4, 4), 8, seed=0)
    plan = plan_of(o)
    build = plan.contraction("dense").merge_flops
    last = (build - 1) // gather_flops(o.in_dims, o.bond_dims)  # last batch gathering wins
    assert lookup_order(plan, last) == "gather"
    assert lookup_order(plan, last + 1) == "dense"


# ============================================================================== embedding


@pytest.mark.parametrize("order", ["gather", "dense", "auto"])
@pytest.mark.parametrize("padding_idx", [None, 3])
def test_embedding_lookup_equals_table_rows(order, padding_idx):
    o = tn.MPO.random((3, 4, 2), (2, 3, 2), 4, seed=1)
    shape = (21, 11)  # padded: rows 21 of 24, columns 11 of 12
    plan = plan_of(o, shape)
    table = np.asarray(o.to_matrix(padded=True))[: shape[0], : shape[1]].copy()
    if padding_idx is not None:
        table[padding_idx] = 0
    indices = np.array([0, 3, 20, 7, 3])
    rows = embedding_lookup(o.cores, indices, plan=plan, padding_idx=padding_idx, order=order)
    np.testing.assert_allclose(rows, table[indices], rtol=1e-12, atol=1e-13)
    whole = embedding_table(o.cores, plan=plan, padding_idx=padding_idx)
    np.testing.assert_allclose(whole, table, rtol=1e-12, atol=1e-13)


# ============================================================================== LSTM


def dense_lstm(gates_x, W_hh, h, c, reverse=False):
    """Independent oracle: nn.LSTM's equations, gates i, f, g, o, one step at a time."""
    logistic = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    out = np.zeros((*gates_x.shape[:2], h.shape[-1]))
    for t in reversed(range(len(gates_x))) if reverse else range(len(gates_x)):
        i, f, g, o = np.split(gates_x[t] + h @ W_hh.T, 4, axis=-1)
        c = logistic(f) * c + logistic(i) * np.tanh(g)
        h = logistic(o) * np.tanh(c)
        out[t] = h
    return out, h, c


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("steps", "batch"), [(1, 1), (6, 3), (200, 64)])
def test_lstm_recurrence_equals_dense_lstm(reverse, steps, batch):
    layout = lstm_layout(5, 6, hidden_dims=(2, 3))
    assert layout.gate_dims == (8, 3)
    o = tn.MPO.random(layout.gate_dims, layout.hidden_dims, 3, seed=2)
    rng = np.random.default_rng(3)
    gates_x = rng.standard_normal((steps, batch, 24))
    h, c = rng.standard_normal((2, batch, 6))
    recurrent = recurrent_map(o.cores, steps, batch, plan=plan_of(o))
    got = lstm_recurrence(gates_x, recurrent, h, c, reverse=reverse)
    want = dense_lstm(gates_x, np.asarray(o.to_matrix()), h, c, reverse)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_lstm_layout_folds_the_gates_and_stacks_directions():
    layout = lstm_layout(64, 256, num_layers=3, directions=2, hidden_dims=(8, 2, 2, 8))
    assert layout.n_cores == 4
    assert layout.gate_dims == (32, 2, 2, 8)
    assert layout.inputs == ((64, None), (512, (16, 2, 2, 8)), (512, (16, 2, 2, 8)))
    assert lstm_layout(10, 12, n_cores=2).hidden_dims == (3, 4)


def test_sigmoid_is_the_logistic_function_without_overflow():
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-13, atol=1e-300)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert sigmoid(np.array([-1e4, 1e4])).tolist() == [0.0, 1.0]


# ============================================================================== ADTN


def dense_adtn(states, gates, pairs, shape):
    """Independent oracle: each gate a 2^Q x 2^Q Kronecker product, legs to bits by index."""
    n = states.shape[0]
    psi = functools.reduce(np.kron, list(states))
    for gate, left in zip(gates, pairs, strict=True):
        psi = functools.reduce(np.kron, [np.eye(2**left), gate, np.eye(2 ** (n - left - 2))]) @ psi
    row_bits, col_bits = (math.ceil(math.log2(s)) for s in shape)
    W = np.zeros((2**row_bits, 2**col_bits))
    for index, bits in enumerate(itertools.product((0, 1), repeat=n)):
        row = col = 0
        for (side, k), bit in zip(leg_order(row_bits, col_bits), bits, strict=True):
            if side == "row":
                row += bit << (row_bits - 1 - k)
            else:
                col += bit << (col_bits - 1 - k)
        W[row, col] = psi[index]
    return W[: shape[0], : shape[1]]


@pytest.mark.parametrize(("shape", "depth"), [((4, 8), 2), ((3, 5), 3), ((1, 2), 1)])
def test_adtn_matrix_equals_kronecker_oracle_and_init_hits_the_norm(shape, depth):
    n_legs = sum(math.ceil(math.log2(s)) for s in shape)
    pairs = brickwall_pairs(n_legs, depth)
    rng = np.random.default_rng(4)
    states, gates = rng.standard_normal((n_legs, 2)), rng.standard_normal((len(pairs), 4, 4))
    np.testing.assert_allclose(
        adtn_matrix(states, gates, pairs, shape), dense_adtn(states, gates, pairs, shape), 1e-12
    )
    states, gates = adtn_initial(states, gates, pairs, shape, 1.5)
    assert math.isclose(np.linalg.norm(adtn_matrix(states, gates, pairs, shape)), 1.5)
    norms = np.linalg.norm(states, axis=1)  # one common factor: unit vectors, orthogonal gates
    np.testing.assert_allclose(norms, norms[0], rtol=1e-12)
    for gate in gates:
        np.testing.assert_allclose(gate @ gate.T, norms[0] ** 2 * np.eye(4), atol=1e-12)


# ============================================================================== Taylor


def dense_taylor(terms, x, bias):
    """Independent oracle: each T_n built as its full tensor ``(in,)*n + (out,)``, then
    contracted with ``n`` copies of each row of x."""
    y = np.tile(bias, (x.shape[0], 1))
    for cores in terms:
        full = cores[0][0]
        for core in cores[1:]:
            full = np.tensordot(full, core, axes=([-1], [0]))
        for b, row in enumerate(x):
            value = full
            for _ in cores:
                value = np.tensordot(row, value, axes=([0], [0]))
            y[b] += value
    return y


def test_taylor_map_equals_full_tensor_polynomial():
    shapes = taylor_core_shapes(3, 2, 3, 4)
    assert taylor_num_parameters(3, 2, 3, 4) == 2 + sum(math.prod(s) for t in shapes for s in t)
    rng = np.random.default_rng(5)
    terms = [[rng.standard_normal(s) for s in term] for term in shapes]
    x, bias = rng.standard_normal((2, 4, 3)), rng.standard_normal(2)
    got = taylor_map(terms, x, bias)
    want = dense_taylor(terms, x.reshape(-1, 3), bias).reshape(2, 4, 2)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    constant = taylor_map([], x, bias, features=(3, 2))
    np.testing.assert_array_equal(constant, np.broadcast_to(bias, (2, 4, 2)))
    with pytest.raises(ValueError, match="x: expected last dimension 3"):
        taylor_map(terms, x[..., :2])


# ============================================================================== backends


def namespaces():
    """``(name, to_array, to_numpy)`` for each installed array library besides NumPy."""
    found = []
    try:
        import torch

        found.append(
            ("torch", lambda a: torch.from_numpy(np.array(a)), lambda a: a.detach().numpy())
        )
    except ImportError:  # pragma: no cover - depends on the environment
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        found.append(("jax", jax.numpy.asarray, np.asarray))
    except ImportError:  # pragma: no cover - depends on the environment
        pass
    return found


@pytest.mark.parametrize(("name", "to", "back"), namespaces(), ids=lambda v: str(v)[:5])
def test_every_layer_map_gives_numpys_numbers(name, to, back):
    rng = np.random.default_rng(6)
    o = tn.MPO.random((3, 4), (2, 3), 3, seed=7)
    cores, plan = [to(np.asarray(c)) for c in o.cores], plan_of(o, (11, 6))
    indices = np.array([1, 10, 4])
    for order in ("gather", "dense"):
        want = embedding_lookup(o.cores, indices, plan=plan, padding_idx=4, order=order)
        got = embedding_lookup(cores, to(indices), plan=plan, padding_idx=4, order=order)
        np.testing.assert_allclose(back(got), want, rtol=1e-13, atol=1e-14)
    gates_x, h, c = rng.standard_normal((4, 2, 12)), *rng.standard_normal((2, 2, 3))
    lstm = tn.MPO.random((6, 2), (3, 1), 2, seed=8)
    lstm_cores, lstm_plan = [to(np.asarray(k)) for k in lstm.cores], plan_of(lstm)
    want = lstm_recurrence(gates_x, recurrent_map(lstm.cores, 4, 2, plan=lstm_plan), h, c)
    recurrent = recurrent_map(lstm_cores, 4, 2, plan=lstm_plan)
    got = lstm_recurrence(to(gates_x), recurrent, to(h), to(c))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(back(a), b, rtol=1e-12, atol=1e-14)
    pairs = brickwall_pairs(5, 2)
    states, gates = rng.standard_normal((5, 2)), rng.standard_normal((len(pairs), 4, 4))
    want = adtn_matrix(states, gates, pairs, (3, 7))
    np.testing.assert_allclose(back(adtn_matrix(to(states), to(gates), pairs, (3, 7))), want, 1e-12)
    terms = [[rng.standard_normal(s) for s in t] for t in taylor_core_shapes(4, 3, 2, 3)]
    x, bias = rng.standard_normal((5, 4)), rng.standard_normal(3)
    want = taylor_map(terms, x, bias)
    got = taylor_map([[to(k) for k in t] for t in terms], to(x), to(bias))
    np.testing.assert_allclose(back(got), want, rtol=1e-12, atol=1e-13)


def test_torch_and_jax_mpolinear_agree():
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    pytest.importorskip("flax.nnx")
    from tnkit.jax import MPOLinear as JaxLinear
    from tnkit.torch import MPOLinear as TorchLinear

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(9)
    W, b, x = rng.standard_normal((10, 27)), rng.standard_normal(10), rng.standard_normal((4, 27))
    dense = torch.nn.Linear(27, 10, dtype=torch.float64)
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(W))
        dense.bias.copy_(torch.from_numpy(b))
    on_torch = TorchLinear.from_linear(dense, n_cores=3, max_bond=3)
    on_jax = JaxLinear.from_dense(
        jax.numpy.asarray(W.T), jax.numpy.asarray(b), n_cores=3, max_bond=3
    )
    assert (on_torch.in_dims, on_torch.out_dims, on_torch.bond_dims) == (
        on_jax.in_dims,
        on_jax.out_dims,
        on_jax.bond_dims,
    )
    y_torch = on_torch(torch.from_numpy(x)).detach().numpy()
    y_jax = np.asarray(on_jax(jax.numpy.asarray(x)))
    np.testing.assert_allclose(y_torch, y_jax, rtol=1e-10, atol=1e-12)
    assert math.isclose(on_torch.report.rel_error_bound, on_jax.report.rel_error_bound)


# ============================================================================== adapters' core


def test_adapter_helpers():
    assert is_half(np.float16, np) and not is_half(np.float32, np)
    assert not is_half(np.int16, np)
    assert work_dtype(np.float16, np) is np.float32
    o = tn.MPO.random((2, 5), (10, 10), 3, seed=10)
    assert mpo_core_shapes((o.out_dims, o.in_dims, o.bond_dims)) == tuple(c.shape for c in o.cores)
    half = mpo_of_cores([np.asarray(c, np.float16) for c in o.cores], (10, 97), np)
    assert half.dtype == np.float32 and half.matrix_shape == (10, 97)
    W = np.random.default_rng(11).standard_normal((10, 97))
    mpo = decompose_weight(W.astype(np.float16), np, n_cores=2, max_bond=4)
    reference = tn.MPO.from_matrix(W.astype(np.float16).astype(np.float32), (2, 5), (10, 10),
                                   pad=True, max_bond=4)  # fmt: skip
    np.testing.assert_allclose(dense_matrix(mpo.cores, (10, 97)), reference.to_matrix(), 1e-5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        decompose_weight(W, np, bond_dims=(3,))
