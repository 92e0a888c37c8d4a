"""Data-aware MPO compression: ``tnkit.calibration`` and its torch and CLI entry points."""

from __future__ import annotations

import concurrent.futures
import copy
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tnkit as tn
from tnkit import codec
from tnkit.calibration import calibrated_mpo, input_gram, output_error
from tnkit.cli import main

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from tnkit.torch import MPOLinear, compress_model  # noqa: E402

ROUNDING = 1e-9


def anisotropic_inputs(rng, rows, cols, decades=3.0):
    """Activations whose covariance has eigenvalues over ``2·decades`` decades, in a random
    basis (not aligned with any input mode)."""
    basis = np.linalg.qr(rng.standard_normal((cols, cols)))[0]
    return (rng.standard_normal((rows, cols)) * np.logspace(0, -decades, cols)) @ basis.T


def plain_error(W, gram, outs, ins, max_bond):
    plain = tn.MPO.from_matrix(W, outs, ins, max_bond=max_bond, pad=True)
    return output_error(W, plain.to_matrix(), gram)


# ---------------------------------------------------------------------- the core


@settings(max_examples=25, deadline=None)
@given(
    outs=st.lists(st.integers(2, 4), min_size=2, max_size=3),
    ins=st.lists(st.integers(2, 4), min_size=2, max_size=3),
    bond=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    crop=st.booleans(),
)
def test_never_worse_than_plain_tt_svd(outs, ins, bond, seed, crop):
    n = min(len(outs), len(ins))
    outs, ins = tuple(outs[:n]), tuple(ins[:n])
    rng = np.random.default_rng(seed)
    rows, cols = int(np.prod(outs)), int(np.prod(ins))
    if crop and cols > 2:  # a padded layout
        cols -= 1
    W = rng.standard_normal((rows, cols))
    gram = input_gram(anisotropic_inputs(rng, 3 * cols, cols), cols)
    mpo, report = calibrated_mpo(W, gram, outs, ins, max_bond=bond)
    measured = output_error(W, mpo.to_matrix(), gram)
    assert measured <= plain_error(W, gram, outs, ins, bond) + ROUNDING
    assert measured == pytest.approx(report.output_error, abs=1e-9)
    assert mpo.bond_dims == tn.MPO.from_matrix(W, outs, ins, max_bond=bond, pad=True).bond_dims
    assert dict(report.candidates)["plain"] + ROUNDING >= report.output_error


def test_substantially_better_on_anisotropic_data():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((64, 64))
    X = anisotropic_inputs(rng, 600, 64)
    fit, held = input_gram(X[:480], 64), input_gram(X[480:], 64)
    dims = (4, 4, 4)
    mpo, report = calibrated_mpo(W, fit, dims, dims, max_bond=8, held_out=held)
    plain = plain_error(W, fit, dims, dims, 8)
    assert report.output_error < plain / 2
    assert report.held_out_error < report.plain_held_out_error / 2
    assert report.method == "als" and report.sweeps >= 1
    errors = dict(report.candidates)
    assert errors["als"] <= errors["whitened"] + ROUNDING


def test_kronecker_covariance_is_whitened_exactly():
    """With Σ = C_1 ⊗ C_2 the whitened TT-SVD is the optimal bond-r fit (Eckart-Young on
    W·Σ^{1/2} at a 2-core cut), which ALS cannot improve."""
    rng = np.random.default_rng(1)
    factors = [np.diag(np.logspace(0, -3, 4)) for _ in range(2)]
    gram = np.kron(*factors)
    W = rng.standard_normal((16, 16))
    _, report = calibrated_mpo(W, gram, (4, 4), (4, 4), max_bond=2, ridge=0.0)
    errors = dict(report.candidates)
    assert errors["whitened"] < errors["plain"]
    assert errors["als"] == pytest.approx(errors["whitened"], rel=1e-3)


def test_exact_at_full_bond():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((24, 30))
    gram = input_gram(anisotropic_inputs(rng, 90, 30), 30)
    mpo, report = calibrated_mpo(W, gram, (2, 3, 4), (2, 3, 5))
    np.testing.assert_allclose(mpo.to_matrix(), W, atol=1e-10)
    assert report.output_error < 1e-10 and report.weight_error < 1e-10


def test_float32_and_torch_stay_in_their_library_and_dtype():
    rng = np.random.default_rng(3)
    W = torch.tensor(rng.standard_normal((20, 18)), dtype=torch.float32)
    X = torch.tensor(anisotropic_inputs(rng, 60, 18), dtype=torch.float32)
    mpo, report = calibrated_mpo(W, input_gram(X, 18), 2, 2, max_bond=3)
    assert isinstance(mpo.cores[0], torch.Tensor) and mpo.cores[0].dtype == torch.float32
    assert mpo.matrix_shape == (20, 18)
    truncation = report.truncation
    measured = float(torch.linalg.norm(mpo.to_matrix().double() - W.double()) / W.norm())
    assert measured <= truncation.rel_error_bound * (1 + 1e-6) + 1e-7


def test_zero_inputs_keep_plain():
    W = np.random.default_rng(4).standard_normal((8, 8))
    mpo, report = calibrated_mpo(W, np.zeros((8, 8)), (2, 4), (2, 4), max_bond=1)
    assert report.method == "plain" and report.output_error == 0.0


def test_bad_calibration_input():
    W = np.ones((8, 6))
    with pytest.raises(ValueError, match=r"inputs: expected activations of shape \(n, 6\)"):
        input_gram(np.ones((5, 4)), 6)
    with pytest.raises(ValueError, match="inputs: contains NaN or Inf"):
        input_gram(np.full((5, 6), np.nan), 6)
    with pytest.raises(ValueError, match="inputs: empty"):
        input_gram(np.ones((0, 6)), 6)
    with pytest.raises(ValueError, match=r"gram: expected shape \(6, 6\)"):
        calibrated_mpo(W, np.eye(5), 2, 2)
    with pytest.raises(ValueError, match="held_out: contains NaN"):
        calibrated_mpo(W, np.eye(6), 2, 2, held_out=np.full((6, 6), np.inf))
    with pytest.raises(TypeError, match="gram"):
        calibrated_mpo(W, torch.eye(6, dtype=torch.float64), 2, 2)
    with pytest.raises(TypeError, match="W: complex"):
        calibrated_mpo(W.astype(complex), np.eye(6), 2, 2)
    with pytest.raises(ValueError, match="sweeps"):
        calibrated_mpo(W, np.eye(6), 2, 2, sweeps=-1)


# ---------------------------------------------------------------------- torch


def test_from_linear_with_inputs():
    torch.manual_seed(0)
    dense = nn.Linear(48, 40)
    scale = torch.logspace(0, -3, 48)
    X = torch.randn(400, 48) * scale
    plain = MPOLinear.from_linear(dense, n_cores=3, max_bond=3)
    fitted = MPOLinear.from_linear(dense, n_cores=3, max_bond=3, inputs=X)
    assert fitted.bond_dims == plain.bond_dims and plain.calibration is None
    with torch.no_grad():
        exact = dense(X) - dense.bias
        errors = [float((m(X) - dense(X)).norm() / exact.norm()) for m in (plain, fitted)]
    assert errors[1] < 0.9 * errors[0]
    assert fitted.calibration.output_error == pytest.approx(errors[1], rel=1e-3)
    with torch.no_grad():
        weight_error = float((fitted.weight - dense.weight).norm() / dense.weight.norm())
    assert weight_error <= fitted.report.rel_error_bound * (1 + 1e-5)
    torch.testing.assert_close(fitted.bias, dense.bias)


def test_from_linear_inputs_errors_and_half():
    dense = nn.Linear(12, 10)
    with pytest.raises(ValueError, match=r"inputs: expected activations of shape \(n, 12\)"):
        MPOLinear.from_linear(dense, max_bond=2, inputs=torch.ones(5, 11))
    with pytest.raises(ValueError, match="inputs: contains NaN"):
        MPOLinear.from_linear(dense, max_bond=2, inputs=torch.full((5, 12), float("nan")))
    with pytest.raises(ValueError, match="inputs: empty"):
        MPOLinear.from_linear(dense, max_bond=2, inputs=torch.ones(0, 12))
    with pytest.raises(TypeError, match="inputs: expected a torch.Tensor"):
        MPOLinear.from_linear(dense, max_bond=2, inputs=np.ones((5, 12)))
    half = nn.Linear(12, 10).to(torch.bfloat16)
    layer = MPOLinear.from_linear(half, n_cores=2, max_bond=2, inputs=torch.randn(2, 7, 12))
    assert layer.cores[0].dtype == torch.bfloat16 and layer.calibration is not None


class KeywordMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down, self.head = nn.Linear(64, 96), nn.Linear(96, 64), nn.Linear(64, 8)

    def forward(self, x, scale=1.0):
        return self.head(torch.relu(self.down(torch.relu(self.up(x * scale)))))


def no_hooks(model):
    return all(not m._forward_hooks for m in model.modules())


def test_compress_model_with_calibration():
    torch.manual_seed(1)
    model = KeywordMLP()
    scale = torch.logspace(0, -3, 64)
    batches = [{"x": torch.randn(32, 64) * scale, "scale": 1.0} for _ in range(6)]
    batches += [(torch.randn(32, 64) * scale,), torch.randn(32, 64) * scale]
    plain = copy.deepcopy(model)
    plain_report = compress_model(plain, max_bond=4)
    report = compress_model(model, max_bond=4, calibration=batches)
    assert no_hooks(model)
    assert [r.bond_dims for r in report] == [r.bond_dims for r in plain_report]
    for row in report.replaced:
        assert row.calibration is not None and row.output_error is not None
        assert row.calibration.output_error <= dict(row.calibration.candidates)["plain"]
        assert row.output_error == row.calibration.held_out_error
    assert "out error" in str(report)
    assert plain_report.rows[0].output_error is None and "out error" not in str(plain_report)


def test_compress_model_calibration_beats_plain_on_held_out_outputs():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64))
    scale = torch.logspace(0, -3, 64)
    data = torch.randn(1200, 64) * scale
    original = copy.deepcopy(model)
    plain = copy.deepcopy(model)
    compress_model(plain, max_bond=4)
    compress_model(model, max_bond=4, calibration=list(data[:1000].split(100)))
    with torch.no_grad():
        target = original(data[1000:])
        errors = [float((m(data[1000:]) - target).norm() / target.norm()) for m in (plain, model)]
    assert errors[1] < 0.9 * errors[0]  # layer by layer, on the original model's inputs


def deep_model(depth=4, width=64, seed=4):
    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers[:-1])


@pytest.mark.parametrize("seed", [4, 5])
def test_sequential_calibration_beats_layer_by_layer_on_the_model_outputs(seed):
    model = deep_model(seed=seed)
    data = torch.randn(1400, 64) * torch.logspace(0, -3, 64)
    batches = list(data[:1000].split(100))
    original = copy.deepcopy(model)
    errors = []
    for sequential in (False, True):
        twin = copy.deepcopy(model)
        report = compress_model(twin, max_bond=4, calibration=batches, sequential=sequential)
        assert no_hooks(twin) and all(row.output_error is not None for row in report.replaced)
        with torch.no_grad():
            target = original(data[1000:])
            errors.append(float((twin(data[1000:]) - target).norm() / target.norm()))
    assert errors[1] < 0.9 * errors[0]  # later layers make up for earlier cuts


def test_sequential_calibration_order_and_targets():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
    original = copy.deepcopy(model)
    batches = [torch.randn(50, 32) * torch.logspace(0, -2, 32) for _ in range(3)]
    compress_model(model, max_bond=32, calibration=batches, sequential=True)  # exact bonds
    with torch.no_grad():
        torch.testing.assert_close(model(batches[0]), original(batches[0]), atol=1e-4, rtol=1e-4)
    assert no_hooks(model)


def test_sequential_calibration_bad_requests():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 16))
    batches = [torch.randn(8, 16)]
    with pytest.raises(ValueError, match="sequential: needs calibration"):
        compress_model(model, max_bond=2, sequential=True)
    with pytest.raises(TypeError, match="sequential"):
        compress_model(model, max_bond=2, calibration=batches, sequential=1)
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        pytest.raises(ValueError, match="sequential: .* executor"),
    ):
        compress_model(model, max_bond=2, calibration=batches, sequential=True, executor=pool)
    with pytest.raises(ValueError, match="calibration: no batches"):
        compress_model(model, max_bond=2, calibration=iter([]), sequential=True)
    bad = [torch.full((4, 16), float("nan"))]
    with pytest.raises(ValueError, match="NaN"):
        compress_model(model, max_bond=2, calibration=bad, sequential=True)
    assert type(model[0]) is nn.Linear and no_hooks(model)
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_compress_model_calibration_errors_remove_hooks():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 16))
    bad = [torch.randn(4, 16), torch.full((4, 16), float("nan"))]
    with pytest.raises(ValueError, match="calibration: the inputs of 0 contain NaN"):
        compress_model(model, max_bond=2, calibration=bad)
    assert no_hooks(model) and type(model[0]) is nn.Linear
    with pytest.raises(RuntimeError):
        compress_model(model, max_bond=2, calibration=[torch.randn(4, 7)])  # model's error
    assert no_hooks(model)
    with pytest.raises(ValueError, match="calibration: no batches"):
        compress_model(model, max_bond=2, calibration=[])
    with pytest.raises(TypeError, match="calibration: expected an iterable of batches"):
        compress_model(model, max_bond=2, calibration=torch.randn(4, 16))
    with pytest.raises(TypeError, match="calibration: batch 0"):
        compress_model(model, max_bond=2, calibration=[3])
    assert no_hooks(model) and type(model[0]) is nn.Linear


def test_compress_model_calibration_through_an_executor_matches_serial():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
    batches = [torch.randn(50, 32) * torch.logspace(0, -2, 32) for _ in range(3)]
    twin = copy.deepcopy(model)
    compress_model(model, max_bond=3, calibration=batches)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        compress_model(twin, max_bond=3, calibration=batches, executor=pool)
    for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------- CLI


def _write(path, tensors):
    raw = {name: codec.from_float(array, "F32") for name, array in tensors.items()}
    codec.write_safetensors(path, raw, {})


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_cli_round_trip_with_calibration(suffix, tmp_path, capsys):
    rng = np.random.default_rng(5)
    W = rng.standard_normal((64, 64)).astype(np.float32)
    X = anisotropic_inputs(rng, 500, 64).astype(np.float32)
    source, target = tmp_path / "w.safetensors", tmp_path / "c.safetensors"
    plain_target, back = tmp_path / "p.safetensors", tmp_path / "d.safetensors"
    _write(source, {"layer.weight": W, "other.weight": W.T.copy()})
    calibration = tmp_path / f"cal{suffix}"
    if suffix == ".npz":
        np.savez(calibration, **{"layer.weight": X})
    else:
        _write(calibration, {"layer.weight": X})
    flags = ["--max-bond", "4", "--n-cores", "3"]
    assert (
        main(["compress", str(source), str(target), *flags, "--calibration", str(calibration)]) == 0
    )
    out = capsys.readouterr().out
    assert "out error" in out
    assert main(["compress", str(source), str(plain_target), *flags]) == 0
    capsys.readouterr()
    gram = input_gram(X.astype(np.float64), 64)
    errors = []
    for compressed in (plain_target, target):
        assert main(["decompress", str(compressed), str(back)]) == 0
        _, tensors = codec.read_safetensors(back)
        errors.append(output_error(W, codec.to_float(tensors["layer.weight"]), gram))
        other = codec.to_float(tensors["other.weight"])
        assert other.shape == (64, 64)
    assert errors[1] < 0.8 * errors[0]


def test_cli_bad_calibration(tmp_path, capsys):
    source, target = tmp_path / "w.safetensors", tmp_path / "c.safetensors"
    _write(source, {"layer.weight": np.ones((16, 16), np.float32)})
    cases = {
        "unknown": ({"nope": np.ones((4, 16))}, r"calibration: \['nope'\] are not tensors"),
        "shape": ({"layer.weight": np.ones((4, 15))}, r"expected activations of shape \(n, 16\)"),
        "nan": ({"layer.weight": np.full((4, 16), np.nan)}, "contains NaN or Inf"),
    }
    for arrays, message in cases.values():
        calibration = tmp_path / "cal.npz"
        np.savez(calibration, **arrays)
        status = main(["compress", str(source), str(target), "--calibration", str(calibration)])
        assert status == 2
        assert re.search(message, capsys.readouterr().err)
    text = tmp_path / "cal.txt"
    text.write_text("x")
    assert main(["compress", str(source), str(target), "--calibration", str(text)]) == 2
    assert "--calibration" in capsys.readouterr().err


class KeywordCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(16, 16)

    def forward(self, x):
        return self.inner(input=x)


def test_compress_model_calibration_of_a_layer_called_with_a_keyword():
    model = KeywordCall()
    report = compress_model(model, max_bond=2, calibration=[torch.randn(40, 16)])
    assert report.rows[0].calibration is not None and no_hooks(model)
