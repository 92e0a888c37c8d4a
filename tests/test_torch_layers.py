"""tnkit.torch.MPOConv2d, MPOEmbedding, MPOLSTM: the torch modules' contracts with MPO weights.

Full rank reproduces the original module exactly; truncation reports; variance-exact init;
forward orders chosen by flops and agreeing; state dicts that re-shape the cores; gradcheck;
dtypes; paper parameter counts (MPO-Net's LeNet-5, MPO-LSTM's gate layout); bad input.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tnkit.torch import MPOLSTM, MPOConv2d, MPOEmbedding, MPOLinear  # noqa: E402
from tnkit.torch import conv as conv_module  # noqa: E402
from tnkit.torch.lstm import recurrent_order  # noqa: E402

nn = torch.nn
F64 = torch.float64


def gradcheck_module(module, *inputs):
    """gradcheck of ``module(*inputs)`` in the inputs that need grad and all parameters."""
    names = [name for name, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]

    def f(*args):
        values = dict(zip(names, args[len(inputs) :], strict=True))
        out = torch.func.functional_call(module, values, args[: len(inputs)])
        return out[0] if isinstance(out, tuple) else out

    return torch.autograd.gradcheck(f, (*inputs, *params))


def unfold_always(monkeypatch):
    """Make MPOConv2d take its cheapest MPO order through the unfolded input."""
    monkeypatch.setattr(conv_module, "UNFOLD_WEIGHT", 0)


# ============================================================================== MPOConv2d

CONV_CASES = [
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": (2, 3), "padding": "same", "dilation": 2},  # asymmetric "same"
    {"kernel_size": 3, "stride": 2, "padding": (1, 2), "bias": False},
    {"kernel_size": 1, "padding": "valid"},
]


@pytest.mark.parametrize("kwargs", CONV_CASES, ids=str)
@pytest.mark.parametrize("path", ["dense", "unfold"])
def test_conv_full_rank_reproduces_conv2d(kwargs, path, monkeypatch):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 10, dtype=F64, **kwargs)
    layer = MPOConv2d.from_conv(conv, n_cores=2)
    assert layer.report.rel_error_bound < 1e-12
    if path == "unfold":
        unfold_always(monkeypatch)
    x = torch.randn(2, 6, 9, 11, dtype=F64)
    rows = math.prod(conv(x).shape) // 10
    assert (layer.contraction_order(rows) == "dense") == (path == "dense")
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(layer(x[0]), conv(x[0]), rtol=1e-10, atol=1e-12)  # unbatched
    back = layer.to_conv()
    assert type(back) is nn.Conv2d and back.padding == conv.padding
    torch.testing.assert_close(back(x), conv(x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(layer.weight, conv.weight)


@pytest.mark.parametrize("rule", [{"max_bond": 3}, {"rtol": 0.5}], ids=str)
def test_conv_truncated_report(rule):
    torch.manual_seed(1)
    conv = nn.Conv2d(16, 32, 3)
    layer = MPOConv2d.from_conv(conv, **rule)
    assert (layer.out_dims, layer.in_dims) == ((2, 2, 2, 4), (3, 3, 4, 4))
    err = float(torch.linalg.norm(layer.weight - conv.weight).detach())
    assert err <= layer.report.abs_error_bound * (1 + 1e-5) + 1e-5
    assert layer.report.params_after == sum(p.numel() for p in layer.cores)


def test_conv_order_by_flops():
    """Big feature maps build the kernel; a 512-channel conv at bond 8 on one 2x2 output map
    contracts through the unfolded input (the cases measured in docs/torch.md)."""
    layer = MPOConv2d(512, 512, 3, max_bond=8, device="meta")
    assert layer.contraction_order(4) == "2+1+1"
    assert layer.contraction_order(32 * 4) == "dense"
    small = MPOConv2d(64, 64, 3, padding=1, max_bond=4, device="meta")
    assert small.plan.order(8 * 32 * 32) == "2+2"  # fewer flops unfolded ...
    assert small.contraction_order(8 * 32 * 32) == "dense"  # ... but 4x slower per flop


def test_conv_init_variance_matches_conv2d():
    torch.manual_seed(2)
    layer = MPOConv2d(32, 64, 3, max_bond=4)
    W = layer.weight.detach().double()
    assert float((W**2).sum()) == pytest.approx(64 / 3, rel=1e-5)
    want = float(nn.Conv2d(32, 64, 3).weight.detach().double().std())
    assert float(W.std()) == pytest.approx(want, rel=0.05)
    assert float(layer.bias.detach().abs().max()) <= 1 / math.sqrt(32 * 9)


@pytest.mark.parametrize("path", ["dense", "unfold"])
def test_conv_gradcheck(path, monkeypatch):
    torch.manual_seed(3)
    if path == "unfold":
        unfold_always(monkeypatch)
    layer = MPOConv2d(2, 3, 2, padding=1, n_cores=2, dtype=F64)
    x = torch.randn(1, 2, 3, 3, dtype=F64, requires_grad=True)
    assert gradcheck_module(layer, x)


def test_conv_bad_input():
    with pytest.raises(ValueError, match="groups"):
        MPOConv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        MPOConv2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="in_channels"):
        MPOConv2d(0, 4, 3)
    with pytest.raises(TypeError, match="n_core"):
        MPOConv2d(4, 4, 3, n_core=2)
    with pytest.raises(ValueError, match="rtol"):
        MPOConv2d.from_conv(nn.Conv2d(4, 4, 3), rtol=-1.0)
    with pytest.raises(ValueError, match="groups=2"):
        MPOConv2d.from_conv(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(TypeError, match="conv"):
        MPOConv2d.from_conv(nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 4, H, W\)"):
        MPOConv2d(4, 4, 3)(torch.randn(1, 3, 8, 8))


# ============================================================================== MPOEmbedding


@pytest.mark.parametrize("path", ["gather", "dense"])
def test_embedding_full_rank_reproduces_embedding(path, monkeypatch):
    torch.manual_seed(4)
    emb = nn.Embedding(97, 12, padding_idx=3, dtype=F64)  # 97 is prime: padded rows
    layer = MPOEmbedding.from_embedding(emb, n_cores=3)
    assert layer.padded and layer.report.rel_error_bound < 1e-12
    monkeypatch.setattr(layer, "contraction_order", lambda batch: path)
    idx = torch.randint(0, 97, (5, 7))
    idx[0, :3] = torch.tensor([3, 0, 96])
    torch.testing.assert_close(layer(idx), emb(idx), rtol=1e-10, atol=1e-12)
    assert layer(torch.zeros(0, 2, dtype=torch.int32)).shape == (0, 2, 12)
    back = layer.to_embedding()
    assert type(back) is nn.Embedding and back.padding_idx == 3
    torch.testing.assert_close(back.weight, emb.weight, rtol=1e-10, atol=1e-12)


def test_embedding_padding_idx_zero_output_and_no_gradient():
    torch.manual_seed(5)
    layer = MPOEmbedding(30, 8, padding_idx=-1, n_cores=2, dtype=F64)
    assert layer.padding_idx == 29
    assert float(layer.mpo.to_matrix()[29].abs().max()) > 0  # the cores' row is not zero
    assert torch.equal(layer.weight[29], torch.zeros(8, dtype=F64))
    idx = torch.tensor([29, 29])
    out = layer(idx)
    assert torch.equal(out, torch.zeros(2, 8, dtype=F64))
    out.sum().backward()
    assert all(float(p.grad.abs().max()) == 0 for p in layer.cores)


def test_embedding_order_by_lookups():
    layer = MPOEmbedding(10000, 256, max_bond=8, device="meta")
    build = layer.plan.contraction("dense").merge_flops
    crossover = build // layer.lookup_flops
    assert layer.contraction_order(crossover) == "gather"
    assert layer.contraction_order(crossover + 1) == "dense"
    assert 1000 < crossover < 10000


def test_embedding_init_matches_normal():
    torch.manual_seed(6)
    layer = MPOEmbedding(1000, 64, max_bond=8)
    W = layer.weight.detach().double()
    assert float((W**2).sum()) == pytest.approx(1000 * 64, rel=1e-5)
    assert float(W.std()) == pytest.approx(1.0, rel=0.05)


def test_embedding_gradcheck():
    torch.manual_seed(7)
    layer = MPOEmbedding(12, 4, padding_idx=2, n_cores=2, dtype=F64)
    idx = torch.tensor([[0, 2, 11], [5, 5, 7]])
    assert gradcheck_module(layer, idx)  # gather path
    layer.contraction_order = lambda batch: "dense"
    assert gradcheck_module(layer, idx)


def test_embedding_bad_input():
    layer = MPOEmbedding(10, 4)
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        layer(torch.tensor([10]))
    with pytest.raises(IndexError, match="indices"):
        layer(torch.tensor([-1]))
    with pytest.raises(TypeError, match="indices"):
        layer(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        MPOEmbedding(10, 4, padding_idx=10)
    with pytest.raises(ValueError, match="max_norm"):
        MPOEmbedding.from_embedding(nn.Embedding(10, 4, max_norm=1.0))
    with pytest.raises(TypeError, match="embedding"):
        MPOEmbedding.from_embedding(nn.Linear(4, 4))


# ============================================================================== MPOLSTM


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (F64, 1e-10)], ids=str)
@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_full_rank_reproduces_lstm(dtype, tol, batch_first):
    torch.manual_seed(8)
    lstm = nn.LSTM(6, 8, 2, batch_first=batch_first, bidirectional=True, dtype=dtype)
    layer = MPOLSTM.from_lstm(lstm, n_cores=2)
    x = torch.randn(3, 5, 6, dtype=dtype)  # (N, T) if batch_first else (T, N)
    batch = 3 if batch_first else 5
    hx = (torch.randn(4, batch, 8, dtype=dtype), torch.randn(4, batch, 8, dtype=dtype))
    for args in [(x,), (x, hx), (x[0],)]:
        got, (h, c) = layer(*args)
        want, (h_want, c_want) = lstm(*args)
        for a, b in [(got, want), (h, h_want), (c, c_want)]:
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    back = layer.to_lstm()
    assert type(back) is nn.LSTM and back.batch_first == batch_first
    torch.testing.assert_close(back(x)[0], lstm(x)[0], rtol=tol, atol=tol)


def test_lstm_gate_layout_mpo_lstm():
    """MPO-LSTM: hidden 256 as (8, 2, 2, 8), the four gates folded into the first mode."""
    layer = MPOLSTM(100, 256, 2, bidirectional=True, hidden_dims=(8, 2, 2, 8), device="meta")
    hh = layer.weight_hh_l0
    assert (hh.out_dims, hh.in_dims, hh.matrix_shape) == ((32, 2, 2, 8), (8, 2, 2, 8), (1024, 256))
    assert layer.weight_ih_l0.in_dims == (2, 2, 5, 5)
    assert layer.weight_ih_l1_reverse.in_dims == (16, 2, 2, 8)  # [forward h; backward h]
    names = [name for name, _ in layer.named_parameters()]
    assert names[:6] == [
        "bias_ih_l0",
        "bias_hh_l0",
        "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
        "bias_ih_l1",
        "bias_hh_l1",
    ]
    assert list(layer.mpo_weights())[:3] == ["weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse"]


def test_lstm_truncated_report_dict():
    torch.manual_seed(9)
    lstm = nn.LSTM(16, 16)
    layer = MPOLSTM.from_lstm(lstm, max_bond=3)
    assert set(layer.report) == {"weight_ih_l0", "weight_hh_l0"}
    for name, report in layer.report.items():
        err = float(
            torch.linalg.norm(layer.mpo_weights()[name].matrix - getattr(lstm, name)).detach()
        )
        assert err <= report.abs_error_bound * (1 + 1e-5) + 1e-5
    assert MPOLSTM(4, 4).report is None


def test_lstm_init_matches_uniform():
    torch.manual_seed(10)
    layer = MPOLSTM(64, 32, max_bond=4)
    bound = 1 / math.sqrt(32)
    for weight in layer.mpo_weights().values():
        rows, cols = weight.matrix_shape
        norm_sq = float((weight.matrix.detach().double() ** 2).sum())
        assert norm_sq == pytest.approx(rows * cols * bound**2 / 3, rel=1e-5)
    assert float(layer.bias_ih_l0.detach().abs().max()) <= bound


def test_lstm_dropout_between_layers():
    torch.manual_seed(11)
    lstm = nn.LSTM(4, 6, 2, dropout=0.5)
    layer = MPOLSTM.from_lstm(lstm, n_cores=2).eval()
    x = torch.randn(5, 2, 4)
    torch.testing.assert_close(layer(x)[0], lstm.eval()(x)[0])
    assert not torch.allclose(layer.train()(x)[0], layer.eval()(x)[0])


def test_lstm_recurrent_order():
    """At bond 16 a long sequence builds W_hh once and one step of one row merges pairs; at
    bond 4 sweeping every step is cheapest even for 100 steps of 32 rows."""
    dims = {"hidden_dims": (8, 2, 2, 8), "device": "meta"}
    plan = MPOLSTM(32, 256, max_bond=16, **dims).weight_hh_l0.plan
    assert recurrent_order(plan, 100, 32) == "dense"
    assert recurrent_order(plan, 1, 1) == "2+2"
    plan = MPOLSTM(32, 256, max_bond=4, **dims).weight_hh_l0.plan
    assert recurrent_order(plan, 100, 32) == "sweep"


def test_lstm_gradcheck():
    torch.manual_seed(12)
    layer = MPOLSTM(3, 2, bidirectional=True, n_cores=2, dtype=F64)
    x = torch.randn(3, 2, 3, dtype=F64, requires_grad=True)
    assert gradcheck_module(layer, x)


def test_lstm_bad_input():
    with pytest.raises(ValueError, match="proj_size"):
        MPOLSTM(4, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size"):
        MPOLSTM.from_lstm(nn.LSTM(4, 4, proj_size=2))
    with pytest.raises(ValueError, match="dropout"):
        MPOLSTM(4, 4, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        MPOLSTM(4, 0)
    with pytest.raises(TypeError, match="lstm"):
        MPOLSTM.from_lstm(nn.GRU(4, 4))
    layer = MPOLSTM(4, 4)
    with pytest.raises(ValueError, match="input"):
        layer(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="h0"):
        layer(torch.randn(2, 3, 4), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    packed = nn.utils.rnn.pack_sequence([torch.randn(2, 4)])
    with pytest.raises(TypeError, match="PackedSequence"):
        layer(packed)


# ============================================================================== all layers

LAYERS = {
    "conv": (
        lambda: MPOConv2d.from_conv(nn.Conv2d(6, 10, 3), max_bond=2),
        lambda: MPOConv2d(6, 10, 3),
        lambda: torch.randn(2, 6, 5, 5),
    ),
    "embedding": (
        lambda: MPOEmbedding.from_embedding(nn.Embedding(97, 12, padding_idx=0), max_bond=2),
        lambda: MPOEmbedding(97, 12, padding_idx=0),
        lambda: torch.randint(0, 97, (4, 3)),
    ),
    "lstm": (
        lambda: MPOLSTM.from_lstm(nn.LSTM(6, 8, 2, bidirectional=True), max_bond=2),
        lambda: MPOLSTM(6, 8, 2, bidirectional=True),
        lambda: torch.randn(4, 3, 6),
    ),
}


def first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_state_dict_compressed_loads_into_default_layer(kind):
    torch.manual_seed(13)
    make_compressed, make_default, make_input = LAYERS[kind]
    layer, fresh, x = make_compressed(), make_default(), make_input()
    shapes = [p.shape for p in fresh.parameters()]
    fresh.load_state_dict(layer.state_dict())
    assert [p.shape for p in fresh.parameters()] != shapes
    assert [p.shape for p in fresh.parameters()] == [p.shape for p in layer.parameters()]
    torch.testing.assert_close(first(fresh(x)), first(layer(x)))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_to_dtype(kind):
    torch.manual_seed(14)
    make_compressed, _, make_input = LAYERS[kind]
    layer = make_compressed()
    x = make_input()
    want = first(layer(x)).double()
    layer = layer.to(F64)
    assert all(p.dtype == F64 for p in layer.parameters())
    x = x if not x.is_floating_point() else x.double()
    got = first(layer(x))
    assert got.dtype == F64
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


# ============================================================================== paper counts


def test_parameter_count_mpo_net_lenet5():
    """MPO-Net (Gao et al. 2020), LeNet-5 on MNIST: 58,920 -> 2,860 parameters.

    The count covers the weights (no biases) of the last three layers, which the paper's code
    (github.com/zfgao66/deeplearning-mpo, LeNet5/mpo_lenet5/inference.py) replaces by MPOs:
    the 5x5 conv 16 -> 120 on the 5x5 map (a 400 -> 120 matrix), FC 120 -> 84, FC 84 -> 10:
    400·120 + 120·84 + 84·10 = 58,920. Its factorisations (in_modes -> out_modes, rank):
    400 = 2·10·10·2 -> 120 = 2·5·6·2 at D = 4 (1,792), 120 = 2·5·6·2 -> 84 = 2·3·7·2 at
    D = 4 (944), 84 = 2·3·7·2 -> 10 = 1·5·2·1 at D = 2 (124): 2,860.
    """
    dense = [nn.Conv2d(16, 120, 5), nn.Linear(120, 84), nn.Linear(84, 10)]
    assert sum(m.weight.numel() for m in dense) == 58920
    conv3 = MPOConv2d(16, 120, 5, in_dims=(2, 10, 10, 2), out_dims=(2, 5, 6, 2), max_bond=4)
    fc1 = MPOLinear(120, 84, in_dims=(2, 5, 6, 2), out_dims=(2, 3, 7, 2), max_bond=4)
    fc2 = MPOLinear(84, 10, in_dims=(2, 3, 7, 2), out_dims=(1, 5, 2, 1), max_bond=2)
    counts = [sum(p.numel() for p in m.cores) for m in (conv3, fc1, fc2)]
    assert counts == [1792, 944, 124] and sum(counts) == 2860
    assert [m.bond_dims for m in (conv3, fc1, fc2)] == [(4, 4, 4), (4, 4, 4), (2, 2, 2)]
    for layer, want in zip((conv3, fc1, fc2), counts, strict=True):
        edges = (1, *layer.bond_dims, 1)
        formula = sum(
            edges[k] * i * j * edges[k + 1]
            for k, (i, j) in enumerate(zip(layer.out_dims, layer.in_dims, strict=True))
        )
        assert formula == want == layer.mpo.num_params
    x = torch.randn(2, 16, 5, 5)
    assert fc2(fc1(conv3(x).flatten(1))).shape == (2, 10)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_compile_fullgraph(kind):
    """Order choices are int comparisons and the plans are precomputed: no graph break."""
    torch._dynamo.reset()
    make_compressed, _, make_input = LAYERS[kind]
    layer, x = make_compressed(), make_input()
    compiled = torch.compile(layer, backend="eager", fullgraph=True)
    torch.testing.assert_close(first(compiled(x)), first(layer(x)))
    torch._dynamo.reset()
