"""tnkit.torch.MPOLinear: nn.Linear's contract with an MPO weight.

Forward equals ``x @ W.T + b`` in both contraction orders; exact parameter counts (MPO-Net);
variance-exact init; from_linear/to_linear/mpo; state dicts that re-shape the cores; autograd,
autocast, half types, torch.compile, torch.export, meta device, CUDA; bad input.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tnkit as tn  # noqa: E402
from tnkit.linear_map import linear_map  # noqa: E402
from tnkit.torch import MPOLinear  # noqa: E402

nn = torch.nn


def dense_reference(layer, x):
    """``x @ W.T + b`` in float64 from the layer's own dense weight."""
    W = layer.weight.detach().double()
    y = x.double() @ W.T
    return y if layer.bias is None else y + layer.bias.detach().double()


def test_import_tnkit_does_not_import_torch():
    code = "import sys, tnkit, tnkit.linear_map; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ============================================================================== forward


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_features": 64, "out_features": 32, "max_bond": 3},
        {"in_features": 97, "out_features": 50, "n_cores": 3, "max_bond": 4},  # padded
        {"in_features": 16, "out_features": 16, "n_cores": 2},  # full rank: dense from 3 rows
        {"in_features": 12, "out_features": 10, "in_dims": (3, 4), "out_dims": (2, 5)},
        {"in_features": 7, "out_features": 5, "n_cores": 1, "bias": False},
    ],
    ids=str,
)
def test_forward_matches_dense(kwargs):
    torch.manual_seed(0)
    layer = MPOLinear(dtype=torch.float64, **kwargs)
    n_in = kwargs["in_features"]
    for shape in [(n_in,), (1, n_in), (2, n_in), (3, 5, n_in), (64, n_in), (0, n_in)]:
        x = torch.randn(shape, dtype=torch.float64)
        y = layer(x)
        assert y.shape == (*shape[:-1], kwargs["out_features"])
        torch.testing.assert_close(y, dense_reference(layer, x), rtol=1e-10, atol=1e-12)


def test_orders_chosen_and_agree():
    layer = MPOLinear(16, 16, n_cores=2, dtype=torch.float64)  # full rank: dense from 3 rows
    assert layer.plan.segments == ((0, "sweep"), (3, "dense"))
    assert [layer.contraction_order(b) for b in (1, 2, 3, 100)] == ["sweep"] * 2 + ["dense"] * 2
    x = torch.randn(5, 16, dtype=torch.float64)
    cores = list(layer.cores)
    sweep = linear_map(cores, x, bias=layer.bias, order="sweep")
    dense = linear_map(cores, x, bias=layer.bias, order="dense")
    torch.testing.assert_close(sweep, dense)
    torch.testing.assert_close(layer(x), dense)
    big = MPOLinear(4096, 4096, max_bond=8, device="meta")
    assert [big.contraction_order(b) for b in (1, 64)] == ["sweep", "2+2"]


def test_parameter_count_mpo_net_fc2():
    """MPO-Net's FC2 first layer: 784 = 4·7·7·4 -> 256 = 4^4 at D = 4: 1,024 core entries."""
    layer = MPOLinear(784, 256, in_dims=(4, 7, 7, 4), out_dims=(4, 4, 4, 4), max_bond=4)
    assert sum(p.numel() for p in layer.cores) == 1024 == layer.mpo.num_params
    assert [tuple(p.shape) for p in layer.cores] == [
        (1, 4, 4, 4),
        (4, 4, 7, 4),
        (4, 4, 7, 4),
        (4, 4, 4, 1),
    ]
    assert sum(p.numel() for p in layer.parameters()) == 1024 + 256
    assert {name for name, _ in layer.named_parameters()} == {f"cores.{k}" for k in range(4)} | {
        "bias"
    }


# ============================================================================== init


@pytest.mark.parametrize("bond", [2, 8])
def test_init_variance_matches_nn_linear(bond):
    """tltorch's TT init is off by 0.014x and 2.4e-5x here; ours is exact by construction."""
    torch.manual_seed(1)
    dims = (4, 4, 8, 8)
    layer = MPOLinear(1024, 1024, in_dims=dims, out_dims=dims, max_bond=bond)
    W = layer.weight.detach().double()
    assert float((W**2).sum()) == pytest.approx(1024 / 3, rel=1e-5)
    want = float(nn.Linear(1024, 1024).weight.detach().double().std())
    assert float(W.std()) == pytest.approx(want, rel=0.03)
    assert want == pytest.approx(1 / math.sqrt(3 * 1024), rel=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_features": 97, "out_features": 50, "n_cores": 3, "max_bond": 4},  # padded
        {"in_features": 60, "out_features": 8, "bond_dims": (1, 2, 1)},
        {"in_features": 16, "out_features": 16, "n_cores": 4, "bond_dims": (1, 16, 4)},
    ],
    ids=str,
)
def test_init_norm_exact(kwargs):
    layer = MPOLinear(dtype=torch.float64, **kwargs)
    assert [p.shape[-1] for p in layer.cores[:-1]] == list(layer.bond_dims)
    norm_sq = float((layer.weight.detach() ** 2).sum())
    assert norm_sq == pytest.approx(kwargs["out_features"] / 3, rel=1e-12)
    bound = 1 / math.sqrt(kwargs["in_features"])
    assert float(layer.bias.detach().abs().max()) <= bound


def test_init_follows_torch_seed():
    torch.manual_seed(3)
    a = MPOLinear(32, 32, max_bond=2)
    torch.manual_seed(3)
    b = MPOLinear(32, 32, max_bond=2)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


# ============================================================================== conversions


def test_from_linear_exact_and_to_linear():
    torch.manual_seed(4)
    dense = nn.Linear(97, 50, dtype=torch.float64)
    layer = MPOLinear.from_linear(dense, n_cores=3)
    assert layer.padded and layer.report.rel_error_bound < 1e-12
    torch.testing.assert_close(layer.weight, dense.weight)
    x = torch.randn(4, 97, dtype=torch.float64)
    torch.testing.assert_close(layer(x), dense(x))
    back = layer.to_linear()
    assert type(back) is nn.Linear and back.weight.dtype == torch.float64
    torch.testing.assert_close(back(x), dense(x))
    o = layer.mpo
    assert isinstance(o, tn.MPO) and o.matrix_shape == (50, 97)
    np.testing.assert_allclose(o.to_matrix().numpy(), dense.weight.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("rule", [{"max_bond": 4}, {"rtol": 0.5}, {"atol": 2.0}], ids=str)
def test_from_linear_truncated(rule):
    """Same truncation as tn.MPO.from_matrix; the report's bound holds for the weight."""
    torch.manual_seed(5)
    dense = nn.Linear(256, 64)
    layer = MPOLinear.from_linear(dense, **rule)
    assert (layer.out_dims, layer.in_dims) == ((2, 2, 4, 4), (4, 4, 4, 4))
    ref = tn.MPO.from_matrix(dense.weight.detach(), layer.out_dims, layer.in_dims, **rule)
    assert layer.bond_dims == ref.bond_dims and layer.report == ref.report
    err = float(torch.linalg.norm(layer.weight - dense.weight).detach())
    assert err <= layer.report.abs_error_bound * (1 + 1e-5) + 1e-5
    assert layer.report.params_after == sum(p.numel() for p in layer.cores)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_from_linear_half(dtype):
    """Half weights are decomposed in float32 and cast back (documented)."""
    dense = nn.Linear(64, 32).to(dtype)
    layer = MPOLinear.from_linear(dense, max_bond=64)
    assert all(p.dtype == dtype for p in layer.parameters())
    assert layer.mpo.dtype == torch.float32
    x = torch.randn(8, 64, dtype=dtype)
    torch.testing.assert_close(layer(x).float(), dense(x).float(), rtol=0.05, atol=0.05)


# ============================================================================== state


def test_state_dict_compressed_loads_into_default_layer():
    torch.manual_seed(6)
    layer = MPOLinear.from_linear(nn.Linear(97, 50), n_cores=3, max_bond=3)
    state = layer.state_dict()
    assert state["_extra_state"]["bond_dims"] == [3, 3]
    fresh = MPOLinear(97, 50)  # 4 cores, full rank: every core is re-shaped on load
    assert len(fresh.cores) == 4
    fresh.load_state_dict(state)
    assert (fresh.in_dims, fresh.out_dims, fresh.bond_dims) == (
        layer.in_dims,
        layer.out_dims,
        layer.bond_dims,
    )
    x = torch.randn(5, 97)
    torch.testing.assert_close(fresh(x), layer(x))
    same = MPOLinear(97, 50, n_cores=3, max_bond=3)
    kept = list(same.cores)
    same.load_state_dict(state)  # same layout: the parameters are kept, values loaded
    assert all(p is q for p, q in zip(kept, same.cores, strict=True))
    with pytest.raises(ValueError, match="in_features"):
        MPOLinear(96, 50).load_state_dict(state)


def test_to_device_and_dtype():
    layer = MPOLinear(24, 12, max_bond=2).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    x = torch.randn(3, 24, dtype=torch.float64)
    torch.testing.assert_close(layer(x), dense_reference(layer, x))
    assert "bond_dims=(2, 2, 2)" in repr(layer) and "in_dims=(2, 2, 2, 3)" in repr(layer)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_forward_dtypes(dtype):
    torch.manual_seed(7)
    layer = MPOLinear(64, 48, max_bond=4, dtype=dtype)
    assert all(p.dtype == dtype for p in layer.parameters())
    x = torch.randn(6, 64, dtype=dtype)
    y = layer(x).detach()
    assert y.dtype == dtype
    tol = {torch.float32: 1e-5, torch.float64: 1e-12}.get(dtype, 3e-2)
    ref = dense_reference(layer, x)
    assert float((y.double() - ref).norm() / ref.norm()) <= tol


def test_meta_device():
    layer = MPOLinear(4096, 4096, device="meta")  # full rank: 16.8M entries, none allocated
    assert all(p.is_meta for p in layer.parameters())
    assert layer.bond_dims == (64, 4096, 64)
    small = MPOLinear(100, 30, max_bond=3, device="meta").to_empty(device="cpu")
    small.reset_parameters()
    assert float((small.weight.detach().double() ** 2).sum()) == pytest.approx(10, rel=1e-5)


# ============================================================================== autograd & co


def test_gradcheck():
    torch.manual_seed(8)
    layer = MPOLinear(7, 5, n_cores=2, dtype=torch.float64)  # padded: (2, 4) x (2, 3)
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    params = [*layer.cores, layer.bias]
    for order in ("sweep", "dense"):

        def f(x, *params, order=order):
            return linear_map(params[:-1], x, bias=params[-1], matrix_shape=(5, 7), order=order)

        assert torch.autograd.gradcheck(f, (x, *params))
    assert torch.autograd.gradcheck(lambda x: layer(x), (x,))


def test_autocast_bfloat16():
    torch.manual_seed(9)
    layer = MPOLinear(64, 32, max_bond=4)
    x = torch.randn(8, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16
    ref = layer(x)
    assert float((y.float() - ref).norm() / ref.norm()) < 0.05
    y.float().sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_export():
    torch.manual_seed(10)
    layer = MPOLinear(97, 50, n_cores=3, max_bond=4)
    x = torch.randn(5, 97)
    program = torch.export.export(layer, (x,))
    torch.testing.assert_close(program.module()(x), layer(x))


def test_compile_static_branch():
    """The order is a shape-only branch: with a dynamic batch, one graph per order, no
    graph break, and the compiled output equals eager (backend "eager": a cheap test)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    layer = MPOLinear(16, 16, n_cores=2)  # crossover 3: batch 2 sweeps, 3+ dense
    compiled = torch.compile(layer, backend="eager", dynamic=True, fullgraph=True)
    for batch in (2, 5, 9, 2, 4):
        x = torch.randn(batch, 16)
        torch.testing.assert_close(compiled(x), layer(x))
    assert counters["stats"]["unique_graphs"] == 2
    assert not counters["graph_break"]
    torch._dynamo.reset()


@pytest.mark.slow
def test_compile_inductor():
    torch._dynamo.reset()
    layer = MPOLinear(97, 50, n_cores=3, max_bond=4)
    compiled = torch.compile(layer)
    x = torch.randn(6, 97)
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()


@pytest.mark.gpu
def test_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(11)
    layer = MPOLinear(97, 50, n_cores=3, max_bond=4, device="cuda")
    x = torch.randn(6, 97, device="cuda")
    y = layer(x)
    assert y.device.type == "cuda"
    torch.testing.assert_close(y.double(), dense_reference(layer, x))
    dense = nn.Linear(64, 32, device="cuda")
    assert MPOLinear.from_linear(dense, max_bond=2).cores[0].device.type == "cuda"
    assert float((layer.weight.double() ** 2).sum()) == pytest.approx(50 / 3, rel=1e-5)


# ============================================================================== bad input


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((0, 4), {}, ValueError, "in_features"),
        ((4, -1), {}, ValueError, "out_features"),
        ((4.0, 4), {}, TypeError, "in_features"),
        ((16, 16), {"n_cores": 0}, ValueError, "n_cores"),
        ((16, 16), {"n_cores": 3, "in_dims": (4, 4)}, ValueError, "in_dims"),
        ((16, 16), {"in_dims": (4, 3)}, ValueError, "in_dims.*smaller than in_features"),
        ((16, 16), {"in_dims": (4, 4), "out_dims": (2, 2, 4)}, ValueError, "out_dims"),
        ((16, 16), {"n_cores": 2, "bond_dims": (2, 2)}, ValueError, "bond_dims"),
        ((16, 16), {"n_cores": 2, "bond_dims": (17,)}, ValueError, "bond_dims"),
        ((16, 16), {"n_cores": 2, "bond_dims": (0,)}, ValueError, "bond_dims"),
        ((16, 16), {"max_bond": 0}, ValueError, "max_bond"),
        ((16, 16), {"max_bond": 2, "bond_dims": (2, 2, 2)}, ValueError, "bond_dims and max_bond"),
    ],
    ids=str,
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        MPOLinear(*args, **kwargs)


def test_bad_forward_and_conversion_input():
    layer = MPOLinear(16, 8, max_bond=2)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 16\)"):
        layer(torch.randn(3, 15))
    with pytest.raises(TypeError, match="linear"):
        MPOLinear.from_linear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="rtol"):
        MPOLinear.from_linear(nn.Linear(16, 8), rtol=-1.0)
