"""MPO adapters (tnkit.torch.adapters): init, freezing, gradients, merge, files, bad input, PEFT."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from tnkit import codec  # noqa: E402
from tnkit.torch import (  # noqa: E402
    MPOAdapter,
    adapter_parameters,
    add_adapters,
    load_adapters,
    merge_adapters,
    parameter_counts,
    save_adapters,
    unmerge_adapters,
)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = nn.Linear(24, 24)
        self.v_proj = nn.Linear(24, 24, bias=False)
        self.norm = nn.LayerNorm(24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + torch.tanh(self.q_proj(x)) * self.v_proj(x))


def mlp(seed: int = 0, dtype=torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(30, 24), nn.ReLU(), Block(), nn.Linear(24, 10))
    return model.to(dtype)


def dense_oracle(cores: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The (out, in) matrix of MPO cores (Dl, o, i, Dr), contracted leg by leg in NumPy."""
    total = cores[0][0]  # (o, i, D)
    for core in cores[1:]:
        o, i, d = total.shape
        total = np.einsum("OID,DoiE->OoIiE", total, core)
        total = total.reshape(o * core.shape[1], i * core.shape[2], core.shape[3])
    return total[..., 0][: shape[0], : shape[1]]


def randomise(model: nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for core in adapter_parameters(model).values():
            core.copy_(0.3 * torch.randn(core.shape, generator=generator, dtype=core.dtype))


# ---------------------------------------------------------------------- adding


def test_output_unchanged_and_only_adapters_trainable():
    model = mlp()
    x = torch.randn(6, 30)
    before = model(x)
    base_names = {name for name, _ in model.named_parameters()}
    assert add_adapters(model, ["q_proj", "0"], max_bond=3, n_cores=2) is model
    assert torch.equal(model(x), before)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(adapter_parameters(model))
    assert trainable == {f"{t}.adapter.cores.{k}" for t in ("0", "2.q_proj") for k in (0, 1)}
    assert not any(p.requires_grad for n, p in model.named_parameters() if n in base_names)
    assert set(model.state_dict()) == base_names | trainable  # the base names are unchanged
    adapters = sum(p.numel() for p in adapter_parameters(model).values())
    assert parameter_counts(model) == (adapters, adapters + sum(
        p.numel() for n, p in model.named_parameters() if n in base_names
    ))  # fmt: skip


def test_regex_and_all_linear_match_like_peft():
    model = add_adapters(mlp(), r".*_proj", max_bond=2)
    assert sorted(n for n, m in model.named_modules() if isinstance(m, MPOAdapter)) == [
        "2.q_proj.adapter",
        "2.v_proj.adapter",
    ]
    model = add_adapters(mlp(), "all-linear", max_bond=2)
    assert len([m for m in model.modules() if isinstance(m, MPOAdapter)]) == 4


def test_second_call_keeps_earlier_adapters_trainable():
    model = add_adapters(mlp(), ["0"], max_bond=2)
    add_adapters(model, ["3"], max_bond=2)
    assert all(p.requires_grad for p in adapter_parameters(model).values())
    assert len(adapter_parameters(model)) == 8


def test_gradient_reaches_every_core_after_one_step():
    model = add_adapters(mlp(), ["0"], max_bond=4, n_cores=4)
    adapter = model[0].adapter
    assert adapter.zero_core == 2 and not adapter.cores[2].abs().max()
    x, target = torch.randn(16, 30), torch.randn(16, 10)
    optimizer = torch.optim.SGD(list(adapter_parameters(model).values()), lr=0.1)
    norms = []
    for _ in range(2):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), target).backward()
        norms.append([float(c.grad.norm()) for c in adapter.cores])
        optimizer.step()
    step0, step1 = norms
    assert step0[2] > 0 and all(g == 0 for k, g in enumerate(step0) if k != 2)
    assert all(g > 0 for g in step1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtypes(dtype):
    model = mlp(dtype=dtype)
    x = torch.randn(4, 30, dtype=dtype)
    before = model(x)
    add_adapters(model, ["0", "3"], max_bond=2)
    assert torch.equal(model(x), before)
    assert all(p.dtype == dtype for p in adapter_parameters(model).values())


# ---------------------------------------------------------------------- merging


def test_merge_unmerge_round_trip():
    model = add_adapters(mlp(), ["0", "q_proj", "v_proj"], max_bond=3, n_cores=3, alpha=6)
    randomise(model)
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if "adapter" not in n}
    x = torch.randn(8, 30)
    adapted = model(x)
    merge_adapters(model)
    assert all(m.adapter.merged for m in model.modules() if hasattr(m, "adapter"))
    torch.testing.assert_close(model(x), adapted, rtol=1e-5, atol=1e-5)
    delta = model[0].adapter.delta_weight(torch.float64)
    assert (
        float((model[0].weight.double() - weights["0.weight"].double() - delta).abs().max()) < 1e-6
    )
    unmerge_adapters(model)
    for name, p in model.named_parameters():
        if name in weights:
            assert float((p - weights[name]).abs().max()) <= 1e-6, name
    torch.testing.assert_close(model(x), adapted, rtol=1e-6, atol=1e-6)


def test_merge_twice_and_unmerge_unmerged_are_errors():
    model = add_adapters(mlp(), ["0"], max_bond=2)
    with pytest.raises(ValueError, match="not merged"):
        unmerge_adapters(model)
    merge_adapters(model)
    with pytest.raises(ValueError, match="already merged"):
        merge_adapters(model)
    with pytest.raises(ValueError, match="add_adapters first"):
        merge_adapters(mlp())


def test_tied_weights_refuse_to_merge():
    model = mlp()
    model[2].v_proj.weight = model[2].q_proj.weight
    add_adapters(model, ["q_proj", "v_proj"], max_bond=2)
    with pytest.raises(ValueError, match="share one weight"):
        merge_adapters(model)


# ---------------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path):
    model = add_adapters(mlp(), ["0", "q_proj"], max_bond=4, n_cores=3, alpha=2)
    randomise(model)
    path = tmp_path / "adapters.safetensors"
    save_adapters(path, model)
    cores = sum(p.numel() for p in adapter_parameters(model).values())
    assert cores * 4 < os.path.getsize(path) < cores * 4 + 2048  # kilobytes: cores + header
    metadata, tensors = codec.read_safetensors(path)
    assert set(tensors) == set(adapter_parameters(model)) and metadata["format"] == "tnkit-adapters"
    x = torch.randn(5, 30)
    fresh = load_adapters(path, mlp())  # a model without adapters gets them from the file
    assert torch.equal(fresh(x), model(x))
    again = load_adapters(
        path, add_adapters(mlp(), ["0", "q_proj"], max_bond=4, n_cores=3, alpha=2)
    )
    assert torch.equal(again(x), model(x))


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    model = add_adapters(mlp(), ["0"], max_bond=2)
    path = tmp_path / "a.safetensors"
    save_adapters(path, model)
    old = path.read_bytes()

    def broken(handle, tensors, metadata):
        handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(codec, "serialize_safetensors", broken)
    randomise(model)
    with pytest.raises(OSError, match="disk full"):
        save_adapters(path, model)
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["a.safetensors"]


def test_load_into_the_wrong_model(tmp_path):
    path = tmp_path / "a.safetensors"
    save_adapters(path, add_adapters(mlp(), ["0", "q_proj"], max_bond=3))
    wrong = nn.Sequential(nn.Linear(30, 24), nn.ReLU(), nn.Linear(24, 10))
    with pytest.raises(ValueError, match=r"no torch.nn.Linear at '2.q_proj'"):
        load_adapters(path, wrong)
    wider = mlp()
    wider[0] = nn.Linear(31, 24)
    with pytest.raises(ValueError, match=r"\(in, out\) = \(30, 24\)"):
        load_adapters(path, wider)
    with pytest.raises(ValueError, match="bond_dims"):
        load_adapters(path, add_adapters(mlp(), ["0", "q_proj"], max_bond=2))
    with pytest.raises(ValueError, match="no adapter at '2.q_proj'"):
        load_adapters(path, add_adapters(mlp(), ["0"], max_bond=3))
    merged = merge_adapters(add_adapters(mlp(), ["0", "q_proj"], max_bond=3))
    with pytest.raises(ValueError, match="unmerge before loading"):
        load_adapters(path, merged)
    half_right = mlp()  # '0' fits, '2.q_proj' does not: nothing is added
    half_right[2].q_proj = nn.Linear(25, 24)
    with pytest.raises(ValueError, match="2.q_proj"):
        load_adapters(path, half_right)
    assert not adapter_parameters(half_right)
    assert all(p.requires_grad for p in half_right.parameters())


def test_load_foreign_and_damaged_files(tmp_path):
    foreign = tmp_path / "w.safetensors"
    codec.write_safetensors(foreign, {"t": codec.from_float(np.ones(2), "F32")}, {})
    with pytest.raises(ValueError, match="not a tnkit adapter file"):
        load_adapters(foreign, mlp())
    path = tmp_path / "a.safetensors"
    save_adapters(path, add_adapters(mlp(), ["0"], max_bond=2))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError):
        load_adapters(path, mlp())


# ---------------------------------------------------------------------- bad input


def test_bad_input():
    with pytest.raises(ValueError, match="target_modules: 'k_proj' matches no module"):
        add_adapters(mlp(), ["q_proj", "k_proj"])
    with pytest.raises(ValueError, match="target_modules: 'nothing.*' matches no module"):
        add_adapters(mlp(), "nothing.*")
    with pytest.raises(ValueError, match="target_modules: not a valid regular expression"):
        add_adapters(mlp(), "(")
    with pytest.raises(TypeError, match="target_modules: '2.norm' is a LayerNorm"):
        add_adapters(mlp(), ["norm"])
    with pytest.raises(TypeError, match="target_modules"):
        add_adapters(mlp(), [])
    with pytest.raises(TypeError, match="target_modules"):
        add_adapters(mlp(), 3)
    with pytest.raises(ValueError, match="max_bond"):
        add_adapters(mlp(), ["0"], max_bond=0)
    with pytest.raises(ValueError, match="n_cores"):
        add_adapters(mlp(), ["0"], n_cores=0)
    with pytest.raises(TypeError, match="max_bond"):
        add_adapters(mlp(), ["0"], max_bond=2.5)
    with pytest.raises(ValueError, match="alpha"):
        add_adapters(mlp(), ["0"], alpha=-1)
    with pytest.raises(TypeError, match="model"):
        add_adapters("model", ["0"])
    model = add_adapters(mlp(), ["0"])
    with pytest.raises(ValueError, match="'0' already has an MPO adapter"):
        add_adapters(model, ["0"])
    with pytest.raises(ValueError, match="path: adapter files are .safetensors"):
        save_adapters("adapters.pt", model)
    with pytest.raises(ValueError, match="no MPO adapters to save"):
        save_adapters("adapters.safetensors", mlp())


# ---------------------------------------------------------------------- properties


@given(
    in_features=st.integers(1, 40),
    out_features=st.integers(1, 40),
    n_cores=st.integers(1, 4),
    max_bond=st.integers(1, 6),
    alpha=st.sampled_from([None, 1.0, 16.0]),
    seed=st.integers(0, 2**16),
)
def test_delta_is_the_contraction_of_the_cores(
    in_features, out_features, n_cores, max_bond, alpha, seed
):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(in_features, out_features)).double()
    add_adapters(model, ["0"], max_bond=max_bond, n_cores=n_cores, alpha=alpha)
    adapter = model[0].adapter
    assert max(adapter.bond_dims, default=1) <= max_bond and len(adapter.cores) == n_cores
    randomise(model, seed)
    cores = [c.detach().numpy() for c in adapter.cores]
    scaling = 1.0 if alpha is None else alpha / max_bond
    expected = scaling * dense_oracle(cores, (out_features, in_features))
    np.testing.assert_allclose(adapter.delta_weight().numpy(), expected, rtol=1e-10, atol=1e-12)
    x = torch.randn(3, in_features, dtype=torch.float64)
    base = x @ model[0].weight.T + model[0].bias
    np.testing.assert_allclose(
        model(x).detach().numpy(), (base + x @ torch.from_numpy(expected).T).detach().numpy(),
        rtol=1e-10, atol=1e-12,
    )  # fmt: skip


# ---------------------------------------------------------------------- PEFT


def test_peft_lora_config_with_mpo_layers(tmp_path):
    peft = pytest.importorskip("peft")
    from tnkit.torch.peft_interop import mpo_lora_config

    x = torch.randn(5, 30)
    reference = mlp()(x)
    options = {"target_modules": ["0", "q_proj"], "r": 3, "lora_alpha": 6, "n_cores": 2}
    model = peft.get_peft_model(mlp(), mpo_lora_config(**options))
    assert torch.equal(model(x), reference)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_mpo.default.cores." in n for n in trainable)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    for _ in range(2):
        optimizer.zero_grad()
        model(x).square().sum().backward()
        optimizer.step()
    adapted = model(x).detach()
    assert not torch.allclose(adapted, reference)
    model.save_pretrained(tmp_path)
    loaded = peft.PeftModel.from_pretrained(mlp(), tmp_path, config=mpo_lora_config(**options))
    torch.testing.assert_close(loaded(x), adapted)
    with model.disable_adapter():
        torch.testing.assert_close(model(x), reference)
    merged = model.merge_and_unload()
    assert type(merged[0]) is nn.Linear
    torch.testing.assert_close(merged(x), adapted, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="use_dora"):
        mpo_lora_config(target_modules=["0"], use_dora=True)
    with pytest.raises(ValueError, match="init_lora_weights"):
        mpo_lora_config(target_modules=["0"], init_lora_weights="gaussian")
