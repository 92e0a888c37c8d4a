"""tnkit.linear_map: an MPO applied to a batch of vectors equals ``x @ W.T``, in both orders.

Property tests on NumPy and (when installed) PyTorch; the planner's choice is the cheaper
order by its own counts; layouts and bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import mpo_trains

import tnkit as tn
from tnkit.linear_map import (
    dense_matrix,
    linear_layout,
    linear_map,
    plan_linear_map,
    rescale_cores,
)

ORDERS = ("sweep", "dense", "auto")


def all_orders(o):
    return ["auto", *plan_linear_map(o.out_dims, o.in_dims, o.bond_dims).contractions]


def tol(dtype) -> float:
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


@st.composite
def cases(draw):
    """A random MPO, a crop of its matrix (padding) and an input batch of any rank."""
    o = draw(mpo_trains())
    full = (math.prod(o.out_dims), math.prod(o.in_dims))
    shape = (draw(st.integers(1, full[0])), draw(st.integers(1, full[1])))
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((*lead, shape[1]))
    if np.issubdtype(o.dtype, np.complexfloating):
        x = x + 1j * rng.standard_normal(x.shape)
    return o, shape, x.astype(o.dtype)


def reference(o, shape, x):
    W = np.asarray(o.to_matrix(padded=True))[: shape[0], : shape[1]].astype(np.complex128)
    return x.astype(np.complex128) @ W.T, np.linalg.norm(W)


def check(y, o, shape, x):
    want, norm = reference(o, shape, x)
    assert y.shape == (*x.shape[:-1], shape[0])
    rows = np.linalg.norm(x.reshape(-1, shape[1]), axis=-1)
    scale = norm * rows.max(initial=0.0) + 1e-300
    assert np.abs(np.asarray(y) - want).max(initial=0.0) <= tol(o.dtype) * scale


@given(cases())
def test_matches_dense_numpy(case):
    o, shape, x = case
    for order in all_orders(o):
        y = linear_map(o.cores, x, matrix_shape=shape, order=order)
        assert isinstance(y, np.ndarray) and y.dtype == o.dtype
        check(y, o, shape, x)


@given(cases())
def test_matches_dense_torch(case):
    torch = pytest.importorskip("torch")
    o, shape, x = case
    cores = [torch.from_numpy(np.array(c)) for c in o.cores]
    for order in all_orders(o):
        y = linear_map(cores, torch.from_numpy(x), matrix_shape=shape, order=order)
        assert isinstance(y, torch.Tensor) and str(y.dtype).endswith(str(o.dtype))
        check(y.numpy(), o, shape, x)


@given(mpo_trains(dtype="float64", max_len=6, max_bond=16), st.integers(0, 10**4))
def test_plan_picks_fewest_flops(o, batch):
    p = plan_linear_map(o.out_dims, o.in_dims, o.bond_dims)
    costs = {name: c.flops(batch) for name, c in p.contractions.items()}
    assert p.flops(batch) == min(costs.values())
    assert len(costs) == 2 ** (len(o) - 1)
    starts = [start for start, _ in p.segments]
    assert starts[0] == 0 and starts == sorted(set(starts))


def test_plan_counts():
    """Hand-counted flops of (8,8,8,8)² at bond 8."""
    p = plan_linear_map((8,) * 4, (8,) * 4, (8, 8, 8))
    sweep = p.contractions["sweep"]
    steps = [2 * 8**3 * 1 * 8 * 8 * 8, 2 * 8**2 * 8 * 8 * 8 * 8 * 8, 2 * 8 * 8**2 * 8 * 64 * 8]
    steps.append(2 * 8**3 * 8 * 8 * 8 * 1)
    assert (sweep.merge_flops, sweep.flops_per_row) == (0, sum(steps))
    # 2+2: merge each pair (one product of 64 x 8 by 8 x 512), then two steps of 64^3 * 8
    pairs = p.contractions["2+2"]
    assert pairs.merge_flops == 2 * (2 * 64 * 8 * 512)
    assert pairs.flops_per_row == 2 * (2 * 64 * 64 * 64 * 8)
    # dense: halves of two cores each, then one (4096 x 8) @ (8 x 4096) product; 2 N^2 per row
    dense = p.contractions["dense"]
    assert dense.merge_flops == 2 * (2 * 64 * 8 * 512) + 2 * 4096 * 8 * 4096
    assert dense.flops_per_row == 2 * 4096**2
    assert p.segments == ((0, "sweep"), (2, "2+2"))
    big = plan_linear_map((8,) * 4, (8,) * 4, (64, 64, 64))
    assert big.segments == ((0, "sweep"), (1, "2+2"), (65, "dense"))
    assert [big.order(b) for b in (0, 1, 64, 65, 10**6)] == ["sweep", "2+2", "2+2"] + ["dense"] * 2


def test_mpo_argument_and_padding():
    """An MPO from ``from_matrix(pad=True)`` carries its crop; the result is W's."""
    W = np.random.default_rng(0).standard_normal((5, 7))
    o = tn.MPO.from_matrix(W, 2, 2)
    x = np.random.default_rng(1).standard_normal((2, 3, 7))
    for order in (*ORDERS, (1, 1), (2,)):
        np.testing.assert_allclose(linear_map(o, x, order=order), x @ W.T, atol=1e-12)
    b = np.arange(5.0)
    np.testing.assert_allclose(linear_map(o, x, bias=b), x @ W.T + b, atol=1e-12)
    np.testing.assert_allclose(dense_matrix(o.cores, (5, 7)), W, atol=1e-12)


def test_rescale_cores():
    o = tn.MPO.random((2, 3, 2), (3, 3, 2), 4, seed=3)
    for shape in (None, (11, 17)):
        cores = rescale_cores(o.cores, 2.5, matrix_shape=shape)
        assert [c.shape for c in cores] == [c.shape for c in o.cores]
        assert np.linalg.norm(dense_matrix(cores, shape)) == pytest.approx(2.5, rel=1e-12)
    # a bond the neighbours cannot carry: QR shrinks it, zeros restore the shape
    o = tn.MPO.random((2, 2, 2, 2), (2, 2, 2, 2), 16, seed=4)
    cores = list(o.cores)
    cores[0] = cores[0][..., :1]
    cores[1] = cores[1][:1]
    shapes = [c.shape for c in cores]
    cores = rescale_cores(cores, 1.0)
    assert [c.shape for c in cores] == shapes
    assert np.linalg.norm(dense_matrix(cores)) == pytest.approx(1.0, rel=1e-12)


def test_layout():
    assert linear_layout(4096, 4096, max_bond=8) == ((8,) * 4, (8,) * 4, (8, 8, 8))
    assert linear_layout(4096, 4096) == ((8,) * 4, (8,) * 4, (64, 4096, 64))
    assert linear_layout(97, 10, n_cores=2) == ((2, 5), (10, 10), (20,))
    assert linear_layout(6, 6, in_dims=(2, 3), bond_dims=[2]) == ((2, 3), (2, 3), (2,))
    assert linear_layout(5, 5, n_cores=1) == ((5,), (5,), ())
    assert linear_layout(5, 5, n_cores=1, bond_dims=()) == ((5,), (5,), ())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"in_features": 0}, ValueError, "in_features"),
        ({"out_features": 2.0}, TypeError, "out_features"),
        ({"n_cores": 0}, ValueError, "n_cores"),
        ({"n_cores": 3, "in_dims": (4, 4, 4, 4)}, ValueError, "in_dims"),
        ({"in_dims": (4, 4), "out_dims": (4, 4, 4, 4)}, ValueError, "out_dims"),
        ({"in_dims": (4, 4, 4, 3)}, ValueError, "in_dims.*smaller than in_features"),
        ({"in_dims": (4, 0, 4, 4)}, ValueError, "in_dims"),
        ({"bond_dims": (2, 2)}, ValueError, "bond_dims.*3 bonds"),
        ({"bond_dims": (2, 0, 2)}, ValueError, "bond_dims"),
        ({"bond_dims": (2, 2, 65)}, ValueError, r"bond_dims\[2\] = 65 exceeds"),
        ({"bond_dims": (2, 2, 2), "max_bond": 2}, ValueError, "bond_dims and max_bond"),
        ({"max_bond": 0}, ValueError, "max_bond"),
    ],
    ids=str,
)
def test_layout_bad_input(kwargs, error, match):
    args = {"in_features": 256, "out_features": 256, **kwargs}
    with pytest.raises(error, match=match):
        linear_layout(args.pop("in_features"), args.pop("out_features"), **args)


def test_linear_map_bad_input():
    o = tn.MPO.random((2, 2), (3, 3), 2, seed=0)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 9\)"):
        linear_map(o, np.ones((2, 8)))
    with pytest.raises(ValueError, match="order"):
        linear_map(o, np.ones(9), order="fast")
    with pytest.raises(ValueError, match=r"cores\[0\]"):
        linear_map([np.ones((1, 2, 1))], np.ones(2))
