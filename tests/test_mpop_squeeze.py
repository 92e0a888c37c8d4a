"""tnkit.torch.squeeze as MPOP's Algorithm 2, and freeze_central's counts.

A digits MLP squeezed within Δ (fewer parameters, the metric kept, the failing round undone);
the cheapest central bond picked on MPOs whose Schmidt values are set by construction (and
the cut's error equal to its estimate); the central tensors bitwise unchanged by the local
fine-tuning; total/trainable counts; adapters left out; bad input.
"""

from __future__ import annotations

import contextlib
import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tnkit.torch import (  # noqa: E402
    MPOLinear,
    add_adapters,
    compress_model,
    freeze_central,
    parameter_counts,
    squeeze,
)

nn = torch.nn
F64 = torch.float64


@contextlib.contextmanager
def one_thread():
    """Tiny matrices: one thread is faster and avoids oversubscribing a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ============================================================================ digits


@pytest.mark.slow  # end-to-end training (10 s); the unit tests cover the parts
def test_squeezes_a_digits_mlp_within_delta():
    """MLP 64-64-64-10 on digits, the 64x64 layers as MPOs at bond 8, auxiliary-only
    recovery, then squeezing: fewer parameters, the validation accuracy within Δ of its
    start at every kept round and after the failing round is undone."""
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = torch.tensor(X[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    train, valid = slice(0, 1200), slice(1200, None)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
    )

    def loss(m):
        return nn.functional.cross_entropy(m(X[train]), y[train])

    def accuracy(m):
        with torch.no_grad():
            return float((m(X[valid]).argmax(1) == y[valid]).float().mean())

    def adam(params, steps, lr):
        optimizer = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            loss(model).backward()
            optimizer.step()

    delta = 0.02
    with one_thread():
        adam(model.parameters(), 150, 1e-2)
        compressed = compress_model(model, n_cores=3, max_bond=8)
        assert [r.name for r in compressed.replaced] == ["0", "2"]
        trainable = freeze_central(model)  # MPOP's lightweight recovery
        assert trainable == parameter_counts(model)[0] < parameter_counts(model)[1]
        adam([p for p in model.parameters() if p.requires_grad], 60, 1e-2)
        model.requires_grad_(True)
        start = accuracy(model)
        report = squeeze(model, accuracy, tolerance=delta, finetune=20, loss=loss, lr=1e-2)
    assert start > 0.85 and report[0].metric == start
    assert report.rounds >= 2 and report.params_after < report.params_before
    assert all(s.metric >= start - delta for s in report if s.accepted)
    assert accuracy(model) == report.final.metric  # the model is the last kept round's
    if not report[-1].accepted:  # the failing round was undone
        assert report[-1].metric < start - delta
        assert report[-1].params < report.final.params
    assert parameter_counts(model)[1] == report.final.params


# ============================================================================ designed MPOs


def designed_layer(s, t) -> MPOLinear:
    """An 8x8 ``MPOLinear`` with dims (2,2,2)², bonds (4,4), central core 1, whose Schmidt
    values are ``s·‖t‖`` at bond 0 and ``t·‖s‖`` at bond 1: the outer cores are identities
    (isometries) and the central core ``C[a, p, b] = s_a t_b [p == (a + b) mod 4]`` has
    orthogonal rows over ``a`` and orthogonal columns over ``b``."""
    layer = MPOLinear(8, 8, bias=False, in_dims=(2, 2, 2), out_dims=(2, 2, 2), bond_dims=(4, 4))
    layer = layer.to(F64)
    central = torch.zeros(4, 4, 4, dtype=F64)
    for a in range(4):
        for b in range(4):
            central[a, (a + b) % 4, b] = s[a] * t[b]
    eye = torch.eye(4, dtype=F64)
    with torch.no_grad():
        layer.cores[0].copy_(eye.reshape(1, 2, 2, 4))
        layer.cores[1].copy_(central.reshape(4, 2, 2, 4))
        layer.cores[2].copy_(eye.reshape(4, 2, 2, 1))
    return layer


def cut_error(values, keep: int) -> float:
    weights = np.asarray(values, dtype=float) ** 2
    return math.sqrt(weights[keep:].sum() / weights.sum())


def test_designed_schmidt_values_are_what_the_construction_says():
    s, t = [1.0, 0.5, 0.4, 0.1], [1.0, 0.8, 0.6, 0.4]
    mpo = designed_layer(s, t).mpo
    assert np.allclose(mpo.singular_values(0), np.array(s) * np.linalg.norm(t))
    assert np.allclose(mpo.singular_values(1), np.array(t) * np.linalg.norm(s))


def test_the_cheapest_central_bond_is_lowered_first():
    # relative errors of cutting one Schmidt value: layer 0 bond 0 0.41, bond 1 0.27;
    # layer 1 bond 0 0.084 (the least), bond 1 0.5. Next, layer 0 bond 1 (0.27) beats
    # layer 1 bond 0 again (0.4/sqrt(1.41) = 0.34) and bond 1 (still 0.5).
    s0, t0 = [1.0, 0.9, 0.8, 0.7], [1.0, 0.8, 0.6, 0.4]
    s1, t1 = [1.0, 0.5, 0.4, 0.1], [1.0, 1.0, 1.0, 1.0]
    model = nn.Sequential(designed_layer(s0, t0), designed_layer(s1, t1))
    before = [layer.matrix.detach().clone() for layer in model]
    report = squeeze(model, lambda m: 0.0, max_steps=2)
    assert [(s.layer, s.bond_index, s.lowered) for s in report[1:]] == [
        ("1", 0, (4, 3)),
        ("0", 1, (4, 3)),
    ]
    assert report[1].error == pytest.approx(cut_error(s1, 3))
    assert report[2].error == pytest.approx(cut_error(t0, 3))
    assert model[0].bond_dims == (4, 3) and model[1].bond_dims == (3, 4)
    # the cut is the best one-bond truncation: its measured error is the estimate
    for layer, dense, estimate in [
        (model[1], before[1], report[1].error),
        (model[0], before[0], report[2].error),
    ]:
        error = torch.linalg.norm(layer.matrix.detach() - dense) / torch.linalg.norm(dense)
        assert float(error) == pytest.approx(estimate, rel=1e-10)


def test_least_error_rounds_end_when_the_central_bonds_run_out():
    torch.manual_seed(0)
    model = nn.Sequential(MPOLinear(256, 256, n_cores=4, max_bond=6, dtype=F64))
    layer = model[0]
    central, bonds = layer.central_index, layer.bond_dims
    centrals = (central - 1, central)
    report = squeeze(model, lambda m: 1.0, step=2)
    assert all(s.accepted for s in report) and report.final.bond == 2
    assert len(report) - 1 == sum(bonds[k] // 2 - 1 for k in centrals)
    for k, bond in enumerate(bonds):  # the auxiliary-only bonds are not touched
        assert layer.bond_dims[k] == (2 if k in centrals else bond)
    assert layer.mpo.is_canonical(central)  # auxiliary tensors isometric
    assert report.metrics == (1.0,) * len(report)


# ============================================================================ local fine-tuning


def test_finetuning_leaves_the_central_tensors_bitwise_unchanged():
    torch.manual_seed(0)
    model = nn.Sequential(
        MPOLinear(64, 64, n_cores=3, max_bond=8), nn.Tanh(), MPOLinear(64, 8, n_cores=3)
    )
    x, target = torch.randn(32, 64), torch.randn(32, 8)
    seen = {}  # id of the central core -> (its value when fine-tuning started, aux values)

    def loss(m):
        for layer in (m[0], m[2]):
            core = layer.central_tensor
            if id(core) not in seen:
                assert not core.requires_grad  # frozen while fine-tuning
                aux = [a.detach().clone() for a in layer.auxiliary_tensors]
                seen[id(core)] = (core, core.detach().clone(), layer, aux)
        return ((m(x) - target) ** 2).mean()

    report = squeeze(model, lambda m: 0.0, step=4, finetune=3, loss=loss, lr=1e-2, max_steps=3)
    assert report.rounds == 3 and seen
    for core, value, layer, aux in seen.values():
        assert torch.equal(core.detach(), value)
        if layer.central_tensor is core:  # the round's fine-tuning moved the auxiliaries
            assert any(
                not torch.equal(a, b) for a, b in zip(layer.auxiliary_tensors, aux, strict=True)
            )
    assert all(c.requires_grad for layer in (model[0], model[2]) for c in layer.cores)


def test_a_finetune_that_moves_a_central_tensor_is_refused():
    model = nn.Sequential(MPOLinear(16, 16, n_cores=2, dtype=F64))
    cores = [c.detach().clone() for c in model[0].cores]

    def finetune(m):
        with torch.no_grad():
            m[0].central_tensor.mul_(2.0)

    with pytest.raises(RuntimeError, match="finetune: changed the central tensor of '0'"):
        squeeze(model, lambda m: 0.0, finetune=finetune)
    assert all(torch.equal(a, b) for a, b in zip(model[0].cores, cores, strict=True))


# ============================================================================ counts


def test_counts_total_and_trainable():
    torch.manual_seed(0)
    model = nn.Sequential(MPOLinear(64, 64, n_cores=3), nn.ReLU(), nn.Linear(64, 10))
    model[2].weight.requires_grad_(False)  # frozen before: not trainable
    report = squeeze(model, lambda m: 0.0, step=8, max_steps=1)
    start, final = report[0], report[1]
    assert (start.params, start.trainable) == (4672 + 650, 4672 + 650 - 4096 - 640)
    cores = sum(c.numel() for c in model[0].cores)
    assert final.params == cores + 64 + 650 == parameter_counts(model)[1]
    assert final.trainable == final.params - model[0].central_tensor.numel() - 640
    assert (report.params_before, report.params_after) == (start.params, final.params)
    assert model[0].central_tensor.requires_grad  # frozen only while fine-tuning
    frozen = copy.deepcopy(model)
    assert freeze_central(frozen) == final.trainable == parameter_counts(frozen)[0]
    assert "trainable" in str(report) and "params 5322 -> " in repr(report)


def test_freeze_central_freezes_exactly_the_central_tensors_and_skips_adapters():
    torch.manual_seed(0)
    model = nn.Sequential(MPOLinear(64, 64, n_cores=3), nn.ReLU(), nn.Linear(64, 64))
    add_adapters(model, ["2"], n_cores=3, max_bond=4)
    assert not any(p.requires_grad for p in model[0].parameters())  # PEFT: base frozen
    model[0].requires_grad_(True)
    trainable = freeze_central(model)
    central = model[0].central_tensor
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ["0.cores.1", "2.weight", "2.bias"] and central is model[0].cores[1]
    assert all(p.requires_grad for p in model[2].adapter.cores)  # its zero core must train
    assert (
        trainable
        == parameter_counts(model)[0]
        == sum(p.numel() for p in model.parameters() if p.requires_grad)
    )
    report = squeeze(model, lambda m: 0.0, max_steps=1)
    assert report[1].layer == "0"  # adapters are not squeezed


# ============================================================================ bad input


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"tolerance": -0.1}, ValueError, "^tolerance"),  # the paper's Δ
        ({"tolerance": math.nan}, ValueError, "^tolerance"),
        ({"select": "cheapest"}, ValueError, "^select"),
        ({"finetune": 0, "loss": lambda m: 0}, ValueError, "^finetune"),
        ({"finetune": True}, TypeError, "^finetune"),
        ({"finetune": 2.5}, TypeError, "^finetune"),
        ({"finetune": 3}, TypeError, "^loss"),
        ({"finetune": 3, "loss": "mse"}, TypeError, "^loss"),
        ({"finetune": lambda m: None, "loss": lambda m: 0}, ValueError, "^loss"),
        ({"loss": lambda m: 0}, ValueError, "^loss"),
        ({"finetune": 3, "loss": lambda m: 0, "lr": 0}, ValueError, "^lr"),
        ({"finetune": 3, "loss": lambda m: 0, "lr": "1e-3"}, TypeError, "^lr"),
    ],
)
def test_bad_input(kwargs, error, match):
    model = nn.Sequential(MPOLinear(16, 16, n_cores=2))
    with pytest.raises(error, match=match):
        squeeze(model, lambda m: 1.0, **kwargs)


def test_bad_metric_and_loss_values():
    model = nn.Sequential(MPOLinear(16, 16, n_cores=2))
    with pytest.raises(TypeError, match="^metric"):
        squeeze(model, "accuracy")  # the paper's evaluation must be a callable
    with pytest.raises(ValueError, match="^metric"):
        squeeze(model, lambda m: math.nan)
    with pytest.raises(TypeError, match="^loss: must return a scalar tensor"):
        squeeze(model, lambda m: 1.0, finetune=1, loss=lambda m: 0.5)
    assert model[0].bond_dims == (16,)  # the round that raised was undone
