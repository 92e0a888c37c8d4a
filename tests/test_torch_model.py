"""tnkit.torch.model: compress_model, densify_model, mpo_structure/apply_structure, MPOP.

One small model with every convertible kind (Linear, Conv2d, Embedding, LSTM, a GPT-2-style
Conv1D), an embedding tied to its lm_head, a module shared at two names and a layer too
small to shrink: outputs kept, reports honest, ties and sharing kept, executors identical to
serial; central tensors frozen; squeezing stops at the first failing step; bad input.
"""

from __future__ import annotations

import concurrent.futures
import copy
import io
import json
import logging

import pytest

torch = pytest.importorskip("torch")

from tnkit.torch import (  # noqa: E402
    MPOLSTM,
    CompressionReport,
    MPOConv2d,
    MPOEmbedding,
    MPOLinear,
    apply_structure,
    compress_model,
    densify_model,
    freeze_central,
    mpo_structure,
    squeeze,
)

nn = torch.nn
F64 = torch.float64


class Conv1D(nn.Module):
    """Hugging Face GPT-2's ``Conv1D``, as a stand-in: ``y = x @ weight + bias``."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.randn(nf) * 0.1)

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1]) @ self.weight + self.bias
        return flat.reshape(*x.shape[:-1], self.nf)


class Toy(nn.Module):
    def __init__(self, dtype=F64) -> None:
        super().__init__()
        self.embed = nn.Embedding(64, 16)
        self.lstm = nn.LSTM(16, 16, batch_first=True)
        self.proj = Conv1D(32, 16)
        self.block = nn.Linear(32, 32)
        self.again = self.block  # one module at two names
        self.down = nn.Linear(32, 16)
        self.conv = nn.Conv2d(2, 16, 3)
        self.tiny = nn.Linear(3, 3)  # its MPO is never smaller
        self.lm_head = nn.Linear(16, 64)
        self.lm_head.weight = self.embed.weight  # tied
        self.to(dtype)

    def forward(self, tokens, image):
        h, _ = self.lstm(self.embed(tokens))
        h = self.again(torch.tanh(self.block(torch.tanh(self.proj(h)))))
        h = self.down(h) + self.conv(image).mean((2, 3))[:, None]
        h = h + self.tiny(h[..., :3]).sum(-1, keepdim=True)
        return self.lm_head(h)


def make_toy(dtype=F64, *, low_rank: bool = False, seed: int = 0) -> Toy:
    """The toy model; ``low_rank``: every weight of TT rank <= 2 in the default 4-core
    layout, so that exact compression shrinks every layer but ``tiny``."""
    torch.manual_seed(seed)
    model = Toy(dtype)
    if low_rank:
        kw = {"max_bond": 2, "dtype": dtype}
        lstm = MPOLSTM(16, 16, batch_first=True, **kw).to_lstm()
        with torch.no_grad():
            model.embed.weight.copy_(MPOEmbedding(64, 16, **kw).weight)
            for name, param in model.lstm.named_parameters():
                param.copy_(getattr(lstm, name))
            model.proj.weight.copy_(MPOLinear(16, 32, **kw).weight.mT)
            model.block.weight.copy_(MPOLinear(32, 32, **kw).weight)
            model.down.weight.copy_(MPOLinear(32, 16, **kw).weight)
            model.conv.weight.copy_(MPOConv2d(2, 16, 3, **kw).weight)
    return model


def inputs(dtype=F64):
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 64, (3, 5), generator=generator)
    return tokens, torch.randn(3, 2, 6, 6, generator=generator, dtype=dtype)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


CONVERTED = {
    "embed": MPOEmbedding,
    "lstm": MPOLSTM,
    "proj": MPOLinear,
    "block": MPOLinear,
    "down": MPOLinear,
    "conv": MPOConv2d,
    "lm_head": MPOLinear,
}


# ============================================================================ compress_model


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (F64, 1e-10)], ids=str)
def test_full_rank_keeps_outputs_ties_and_sharing(dtype, tol):
    model = make_toy(dtype, low_rank=True)
    x = inputs(dtype)
    expected = model(*x)
    before = n_params(model)
    report = compress_model(model)
    for name, cls in CONVERTED.items():
        assert type(getattr(model, name)) is cls, name
    assert type(model.tiny) is nn.Linear
    assert model.again is model.block
    assert model.lm_head.cores is model.embed.cores
    assert model.lm_head.bias is not None and model.proj._dense_type is Conv1D
    torch.testing.assert_close(model(*x), expected, rtol=tol, atol=tol)
    assert report.model_params_before == before
    assert report.model_params_after == n_params(model) < before / 4
    for row in report.replaced:
        assert row.rel_error <= tol and row.rel_error_bound <= tol
        assert max(row.bond_dims) <= 2


def test_report_rows_and_totals():
    model = make_toy()
    dense = copy.deepcopy(model)
    report = compress_model(model, max_bond=3)
    assert isinstance(report, CompressionReport)
    by_name = {row.name: row for row in report}
    assert sorted(by_name) == sorted(["embed", "lstm", "proj", "block", "down", "conv", "tiny"])
    tied, shared, tiny = by_name["embed"], by_name["block"], by_name["tiny"]
    assert (tied.kind, tied.aliases, tied.shape) == ("Embedding+Linear", ("lm_head",), (64, 16))
    assert shared.aliases == ("again",) and by_name["proj"].shape == (16, 32)
    assert tied.params_before == 64 * 16 + 64  # the tied weight counted once, plus the bias
    assert not tiny.replaced and tiny.note.startswith("MPO ") and type(model.tiny) is nn.Linear
    for row in report:
        module = getattr(model, row.name)
        assert row.replaced == (type(module) is not type(getattr(dense, row.name)))
        if row.replaced:
            assert row.params_after == n_params(module) + (64 if row.name == "embed" else 0)
            assert row.params_after < row.params_before and max(row.bond_dims) <= 3
            assert row.rel_error <= row.rel_error_bound * (1 + 1e-9) + 1e-12
            assert 0 < row.rel_error < 1
        else:
            assert row.params_after == row.params_before and row.rel_error is None
    assert report.params_before == sum(r.params_before for r in report)
    assert report.params_after == sum(r.params_after for r in report)
    assert report.model_params_before == n_params(dense)
    assert report.model_params_after == n_params(model)
    assert report.model_params_before - report.model_params_after == (
        report.params_before - report.params_after
    )
    table = str(report)
    assert "embed (= lm_head)" in table and "kept: MPO" in table and "layers:" in table
    assert "6 of 7 layers replaced" in repr(report)


def test_rtol_bound_holds_per_row():
    model = make_toy()
    report = compress_model(model, rtol=0.5)
    assert report.replaced
    for row in report.replaced:
        assert row.rel_error_bound <= 0.5 + 1e-12
        assert row.rel_error <= row.rel_error_bound * (1 + 1e-9) + 1e-12


def test_target_ratio_picks_the_largest_bond_that_reaches_it():
    model = make_toy()
    report = compress_model(model, target_ratio=4)
    layouts = {
        "block": lambda bond: MPOLinear(32, 32, max_bond=bond, device="meta"),
        "down": lambda bond: MPOLinear(32, 16, max_bond=bond, device="meta"),
        "lstm": lambda bond: MPOLSTM(16, 16, max_bond=bond, device="meta"),
    }

    def ratio(layer):
        weights = layer.mpo_weights().values() if isinstance(layer, MPOLSTM) else [layer]
        dense = sum(w.matrix_shape[0] * w.matrix_shape[1] for w in weights)
        return dense / sum(c.numel() for w in weights for c in w.cores)

    for name, layout in layouts.items():
        row = next(r for r in report if r.name == name)
        assert row.replaced and ratio(getattr(model, name)) >= 4
        assert ratio(layout(max(row.bond_dims))) >= 4 > ratio(layout(max(row.bond_dims) + 1))


def test_include_exclude():
    model = make_toy()
    report = compress_model(model, max_bond=2, include=r"^(block|down|lstm)$", exclude="lstm")
    assert [row.name for row in report] == ["block", "down"]
    assert type(model.block) is MPOLinear and type(model.lstm) is nn.LSTM
    # a tied group with one excluded name stays dense, and says why
    model = make_toy()
    report = compress_model(model, max_bond=2, exclude="lm_head")
    row = next(r for r in report if r.name == "embed")
    assert not row.replaced and row.note == "shared with an excluded name"
    assert type(model.embed) is nn.Embedding and model.lm_head.weight is model.embed.weight


class RecordingExecutor:
    """A minimal executor: runs on a thread pool and counts the submissions."""

    def __init__(self, pool):
        self.pool, self.calls = pool, 0

    def submit(self, fn, *args):
        self.calls += 1
        return self.pool.submit(fn, *args)


def test_executor_gives_identical_results():
    serial, threaded = make_toy(), make_toy()
    report = compress_model(serial, rtol=0.3)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        executor = RecordingExecutor(pool)
        threaded_report = compress_model(threaded, rtol=0.3, executor=executor)
    assert executor.calls == 7
    assert [r.bond_dims for r in report] == [r.bond_dims for r in threaded_report]
    a, b = serial.state_dict(), threaded.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_progress_and_logging(caplog):
    pytest.importorskip("tqdm")
    model = make_toy()
    with caplog.at_level(logging.INFO, logger="tnkit.torch.model"):
        compress_model(model, max_bond=2, progress=True)
    assert any("block (Linear" in message for message in caplog.messages)


def test_frozen_weights_and_training_mode_carry_over():
    model = make_toy()
    model.down.weight.requires_grad_(False)
    model.block.eval()
    bias = model.down.bias
    compress_model(model, max_bond=2)
    assert not any(c.requires_grad for c in model.down.cores)
    assert all(c.requires_grad for c in model.block.cores)
    assert not model.block.training and model.down.training
    assert model.down.bias is bias


# ============================================================================ densify_model


def test_densify_restores_plain_layers():
    model = make_toy()
    compress_model(model, max_bond=3)
    x = inputs()
    expected = model(*x)
    names = densify_model(model)
    converted = ["embed", "lstm", "proj", "block", "again", "down", "conv", "lm_head"]
    assert sorted(names) == sorted(converted)
    kinds = {"embed": nn.Embedding, "lstm": nn.LSTM, "proj": Conv1D, "block": nn.Linear}
    kinds |= {"down": nn.Linear, "conv": nn.Conv2d, "lm_head": nn.Linear, "tiny": nn.Linear}
    for name, cls in kinds.items():
        assert type(getattr(model, name)) is cls, name
    assert model.proj.weight.shape == (16, 32)
    assert model.lm_head.weight is model.embed.weight and model.again is model.block
    torch.testing.assert_close(model(*x), expected, rtol=1e-10, atol=1e-12)


# ============================================================================ structure


def test_structure_round_trip_through_a_state_dict():
    model = make_toy()
    compress_model(model, rtol=0.4)
    structure = json.loads(json.dumps(mpo_structure(model)))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    fresh = make_toy(seed=5)
    replaced = apply_structure(fresh, structure)
    assert sorted(replaced) == sorted(densify_model(copy.deepcopy(model)))
    assert fresh.lm_head.cores is fresh.embed.cores and fresh.again is fresh.block
    fresh.load_state_dict(state)
    assert fresh.lm_head.cores is fresh.embed.cores
    for name in CONVERTED:
        assert type(getattr(fresh, name)) is type(getattr(model, name))
    torch.testing.assert_close(fresh(*inputs()), model(*inputs()), rtol=0, atol=0)


def test_apply_structure_rejects_mismatches():
    model = make_toy()
    compress_model(model, max_bond=2)
    structure = mpo_structure(model)
    with pytest.raises(ValueError, match="structure"):
        apply_structure(make_toy(), {"layers": []})
    other = make_toy()
    other.block = nn.Conv2d(2, 2, 1)
    other.again = other.block
    with pytest.raises(ValueError, match="structure: 'block' is a Conv2d"):
        apply_structure(other, structure)
    renamed = copy.deepcopy(structure)
    renamed["layers"][0]["names"] = ["nowhere"]
    with pytest.raises(ValueError, match="no module 'nowhere'"):
        apply_structure(make_toy(), renamed)


# ============================================================================ MPOP


def test_central_and_auxiliary_tensors():
    layer = MPOLinear(64, 64, n_cores=3, dtype=F64)  # bonds 16, 16: the middle core is largest
    assert layer.central_index == 1 and layer.central_tensor is layer.cores[1]
    assert layer.auxiliary_tensors == (layer.cores[0], layer.cores[2])
    even = MPOLinear(256, 256, n_cores=4, dtype=F64)  # cores 1 and 2 tie: the left one
    assert even.central_index == 1
    emb = MPOEmbedding(10000, 8, out_dims=(10000, 1), in_dims=(1, 8))
    assert emb.central_index == 0


def test_freeze_central_counts_and_grads():
    model = nn.Sequential(MPOLinear(64, 64, n_cores=3), nn.ReLU(), MPOLinear(64, 8, n_cores=3))
    total = n_params(model)
    central = sum(layer.central_tensor.numel() for layer in (model[0], model[2]))
    assert freeze_central(model) == total - central
    model(torch.randn(2, 64)).sum().backward()
    for layer in (model[0], model[2]):
        assert layer.central_tensor.grad is None
        assert all(t.grad is not None for t in layer.auxiliary_tensors)
    tied = make_toy()
    compress_model(tied, max_bond=3)
    frozen = freeze_central(tied)
    assert not tied.lm_head.central_tensor.requires_grad
    assert frozen == sum(p.numel() for p in tied.parameters() if p.requires_grad)


def test_squeeze_stops_at_the_first_failing_step_and_restores():
    torch.manual_seed(0)
    model = nn.Sequential(MPOLinear(64, 64, n_cores=3, dtype=F64))
    layer = model[0]
    layer.central_tensor.requires_grad_(False)
    seen = {}

    def metric(m):  # falls by one per unit of bond; remembers the cores it saw
        seen[layer.bond_dims] = [c.detach().clone() for c in layer.cores]
        return float(max(layer.bond_dims))

    report = squeeze(model, metric, step=3, tolerance=7, select="all")  # every layer at once
    assert [(s.step, s.bond, s.metric, s.accepted) for s in report] == [
        (0, 16, 16.0, True),
        (1, 13, 13.0, True),
        (2, 10, 10.0, True),
        (3, 7, 7.0, False),
    ]
    assert report.final.step == 2 and layer.bond_dims == (10, 10)
    for core, kept in zip(layer.cores, seen[(10, 10)], strict=True):
        assert torch.equal(core, kept)
    assert report[2].params == n_params(model) and report[3].params < report[2].params
    assert [c.requires_grad for c in layer.cores] == [True, False, True]
    assert "accepted" in str(report)


def test_squeeze_min_mode_finetune_and_bounds_running_out():
    model = nn.Sequential(MPOLinear(16, 16, n_cores=2, dtype=F64))
    calls = []
    report = squeeze(model, lambda m: 0.0, mode="min", finetune=calls.append, tolerance=0)
    assert model[0].bond_dims == (1,) and all(s.accepted for s in report)
    assert len(calls) == len(report) - 1 == 15
    model = nn.Sequential(MPOLinear(16, 16, n_cores=2, dtype=F64))
    assert len(squeeze(model, lambda m: 0.0, max_steps=2)) == 3 and model[0].bond_dims == (14,)
    # a loss that rises: the first step is undone, fine-tuned values too
    model = nn.Sequential(MPOLinear(16, 16, n_cores=2, dtype=F64))
    bias = model[0].bias.detach().clone()

    def finetune(m):
        with torch.no_grad():
            m[0].bias.add_(1.0)

    loss = lambda m: 16.0 - m[0].bond_dims[0]  # noqa: E731
    report = squeeze(model, loss, mode="min", tolerance=0.5, finetune=finetune)
    assert [s.accepted for s in report] == [True, False] and model[0].bond_dims == (16,)
    assert torch.equal(model[0].bias, bias)


# ============================================================================ bad input


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m: compress_model("model"), TypeError, "model"),
        (lambda m: compress_model(nn.Linear(4, 4)), ValueError, "model"),
        (lambda m: compress_model(m, max_bond=0), ValueError, "max_bond"),
        (lambda m: compress_model(m, rtol=-1.0), ValueError, "rtol"),
        (lambda m: compress_model(m, n_cores=1), ValueError, "n_cores"),
        (lambda m: compress_model(m, n_cores=2.5), TypeError, "n_cores"),
        (lambda m: compress_model(m, target_ratio=0.5), ValueError, "target_ratio"),
        (lambda m: compress_model(m, target_ratio="4"), TypeError, "target_ratio"),
        (lambda m: compress_model(m, target_ratio=4, max_bond=2), ValueError, "target_ratio"),
        (lambda m: compress_model(m, include=3), TypeError, "include"),
        (lambda m: compress_model(m, exclude="("), ValueError, "exclude"),
        (lambda m: compress_model(m, executor=object()), TypeError, "executor"),
        (lambda m: compress_model(m, progress="yes"), TypeError, "progress"),
        (lambda m: densify_model(MPOLinear(4, 4)), ValueError, "model"),
        (lambda m: freeze_central(m), ValueError, "model"),
        (lambda m: squeeze(m, lambda x: 1.0), ValueError, "model"),
        (lambda m: squeeze(m, "metric"), TypeError, "metric"),
        (lambda m: apply_structure(m, "structure"), ValueError, "structure"),
        (lambda m: mpo_structure(None), TypeError, "model"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(make_toy())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"step": 0}, ValueError, "step"),
        ({"tolerance": -1}, ValueError, "tolerance"),
        ({"tolerance": "1"}, TypeError, "tolerance"),
        ({"mode": "up"}, ValueError, "mode"),
        ({"max_steps": 0}, ValueError, "max_steps"),
        ({"finetune": 3}, TypeError, "finetune"),
    ],
)
def test_squeeze_bad_input(kwargs, error, match):
    model = nn.Sequential(MPOLinear(16, 16, n_cores=2))
    with pytest.raises(error, match=match):
        squeeze(model, lambda m: 1.0, **kwargs)
    with pytest.raises(TypeError, match="metric"):
        squeeze(model, lambda m: "high")


def test_unsupported_layers_are_reported_and_kept():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.Linear(256, 256))
    report = compress_model(model, max_bond=2)
    assert [(r.name, r.replaced) for r in report] == [("0", False), ("1", True)]
    assert "groups=2" in report[0].note and type(model[0]) is nn.Conv2d


def test_weights_shared_outside_the_group_stay_dense():
    model = nn.Module()
    model.embed = nn.Embedding(16, 32)
    model.conv1d = Conv1D(32, 16)
    model.conv1d.weight = model.embed.weight  # tied, but used transposed
    model.other = nn.Module()
    model.linear = nn.Linear(256, 256)
    model.other.weight = model.linear.weight  # held by a module compress_model leaves alone
    report = compress_model(model, max_bond=2)
    notes = {row.name: row.note for row in report}
    assert notes["embed"] == "weight tied to a Conv1D, which uses it transposed"
    assert notes["linear"] == "shares a parameter with a module that is not converted"
    assert not report.replaced and type(model.linear) is nn.Linear
