"""The ``tnkit`` command: compress → info → decompress round trips, filters, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import tnkit as tn
from tnkit import cli, codec, weight_files
from tnkit.cli import main

ROUNDING = 1e-5  # measured <= bound up to float32 rounding of the reconstruction


def _weights_file(path, rng):
    """A small model: awkward sizes (a prime), a conv kernel, bias, ints, float16 and bfloat16."""
    dense = {
        "layer1.weight": rng.standard_normal((64, 48)).astype(np.float32),
        "layer1.bias": rng.standard_normal(64).astype(np.float32),
        "layer2.weight": rng.standard_normal((97, 40)),  # float64, 97 rows: a prime
        "conv.weight": rng.standard_normal((16, 8, 3, 3)).astype(np.float32),
        "half.weight": rng.standard_normal((60, 50)).astype(np.float16),
        "small": rng.standard_normal((3, 4)).astype(np.float32),  # no MPO is smaller
        "step": np.arange(3, dtype=np.int64),
    }
    tensors = {name: _raw(array) for name, array in dense.items()}
    tensors["bf.weight"] = codec.from_float(rng.standard_normal((40, 64)), "BF16")
    codec.write_safetensors(path, tensors, {"author": "test"})
    return tensors


def _raw(array):
    code = {"float16": "F16", "float32": "F32", "float64": "F64", "int64": "I64"}
    return codec.RawTensor(code[array.dtype.name], array.shape, array.tobytes())


def _errors(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()


def test_round_trip_compress_info_decompress(tmp_path, capsys):
    source, packed, back = (tmp_path / f"{n}.safetensors" for n in ("in", "packed", "back"))
    original = _weights_file(source, np.random.default_rng(0))

    assert main(["compress", str(source), str(packed), "--max-bond", "4"]) == 0
    table = capsys.readouterr().out
    for name in ("layer1.weight", "layer2.weight", "conv.weight", "half.weight", "bf.weight"):
        assert name in table
    assert "kept: MPO not smaller" in table  # "small"

    metadata, stored = codec.read_safetensors(packed)
    description = json.loads(metadata["tnkit"])
    assert metadata["author"] == "test"
    assert description["format"] == "tnkit-weights" and description["format_version"] == 1
    converted = set(description["tensors"])
    assert converted == {
        "layer1.weight",
        "layer2.weight",
        "conv.weight",
        "half.weight",
        "bf.weight",
    }
    for name, entry in description["tensors"].items():
        assert entry["kind"] == "mpo" and entry["dtype"] == original[name].dtype
        assert entry["params_after"] < entry["params_before"] == original[name].size
        cores = [stored[core] for core in weight_files.core_names(name, entry)]
        assert {core.dtype for core in cores} == {original[name].dtype}  # half stays half
        assert max(max(core.shape[0], core.shape[-1]) for core in cores) <= 4
    for name in ("layer1.bias", "small", "step"):  # copied bit for bit
        assert stored[name] == original[name]
    assert len(safetensors.deserialize(packed.read_bytes())) == len(stored)  # readable elsewhere

    assert main(["info", str(packed)]) == 0
    info = capsys.readouterr().out
    assert "5 MPO and 3 dense tensors" in info
    assert all(name in info for name in original)

    assert main(["decompress", str(packed), str(back)]) == 0
    metadata, restored = codec.read_safetensors(back)
    assert metadata == {"author": "test"} and set(restored) == set(original)
    for name, tensor in original.items():
        assert (restored[name].dtype, restored[name].shape) == (tensor.dtype, tensor.shape)
        if name not in converted:
            assert restored[name] == tensor
            continue
        exact = codec.to_float(tensor).astype(np.float64)
        approx = codec.to_float(restored[name]).astype(np.float64)
        error = np.linalg.norm(exact - approx) / np.linalg.norm(exact)
        entry = description["tensors"][name]
        assert error == pytest.approx(entry["rel_error"], rel=1e-6)
        assert error <= entry["rel_error_bound"] + ROUNDING


@pytest.mark.parametrize("dtype", ["F64", "F32", "F16", "BF16"])
def test_rtol_on_an_mpo_shaped_weight(dtype, tmp_path, capsys):
    rng = np.random.default_rng(1)
    W = tn.MPO.random([4, 4, 4], [4, 4, 4], 3, seed=2).to_matrix()
    W = W + 1e-3 * np.linalg.norm(W) / 64 * rng.standard_normal(W.shape)
    source, packed = tmp_path / "w.safetensors", tmp_path / "c.safetensors"
    codec.write_safetensors(source, {"w": codec.from_float(W, dtype)}, {})
    assert main(["compress", str(source), str(packed), "--rtol", "0.01", "--n-cores", "3"]) == 0
    entry = json.loads(codec.read_safetensors(packed)[0]["tnkit"])["tensors"]["w"]
    assert entry["out_dims"] == entry["in_dims"] == [4, 4, 4]
    assert entry["bond_dims"] == [3, 3]
    assert entry["rel_error"] <= entry["rel_error_bound"] + ROUNDING
    if dtype in ("F64", "F32"):  # half precision adds the measured rounding of its cores
        assert entry["rel_error_bound"] <= 0.01
    assert "1 of 1 tensors as MPOs" in capsys.readouterr().out


def test_include_exclude_and_non_finite(tmp_path, capsys):
    rng = np.random.default_rng(3)
    tensors = {f"{p}.weight": rng.standard_normal((32, 32)) for p in ("enc", "dec", "head")}
    tensors["enc.nan"] = np.full((32, 32), np.nan)
    source, packed = tmp_path / "in.safetensors", tmp_path / "out.safetensors"
    source.write_bytes(safetensors.numpy.save(tensors))
    argv = ["compress", str(source), str(packed), "--max-bond", "2", "--include", "^(enc|dec)\\."]
    assert main([*argv, "--exclude", "^dec", "-v"]) == 0
    captured = capsys.readouterr()
    assert "enc.nan: kept (contains NaN or Inf)" in captured.err  # -v logs each tensor
    described = json.loads(codec.read_safetensors(packed)[0]["tnkit"])["tensors"]
    assert set(described) == {"enc.weight"}
    stored = safetensors.numpy.load(packed.read_bytes())
    np.testing.assert_array_equal(stored["dec.weight"], tensors["dec.weight"])
    np.testing.assert_array_equal(stored["head.weight"], tensors["head.weight"])
    assert np.isnan(stored["enc.nan"]).all()


def test_info_of_tn_save_files(tmp_path, capsys):
    o = tn.MPO.from_matrix(np.random.default_rng(4).standard_normal((10, 12)), 2, 2, max_bond=3)
    m = tn.MPS.random([2] * 5, 4, seed=5)
    tn.save(tmp_path / "o.npz", o)
    tn.save(tmp_path / "m.safetensors", m)
    tn.save(tmp_path / "r.npz", o.report)
    assert main(["info", str(tmp_path / "o.npz")]) == 0
    out = capsys.readouterr().out
    assert "MPO" in out and "10x12" in out and ",".join(map(str, o.bond_dims)) in out
    assert main(["info", str(tmp_path / "m.safetensors")]) == 0
    assert f"params {m.num_params:,} (dense 32)" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "r.npz")]) == 0
    assert "rel_error_bound" in capsys.readouterr().out


def _tampered(tmp_path):
    """A compressed file whose description no longer matches its cores."""
    source, packed = tmp_path / "in.safetensors", tmp_path / "packed.safetensors"
    source.write_bytes(safetensors.numpy.save({"w": np.ones((16, 16))}))
    assert main(["compress", str(source), str(packed), "--n-cores", "2"]) == 0
    metadata, tensors = codec.read_safetensors(packed)
    description = json.loads(metadata["tnkit"])
    description["tensors"]["w"]["bond_dims"] = [7]
    codec.write_safetensors(packed, tensors, {"tnkit": json.dumps(description)})
    return packed


def _not_tnkit_npz(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    return tmp_path / "plain.npz"


def _plain(tmp_path):
    path = tmp_path / "plain.safetensors"
    path.write_bytes(safetensors.numpy.save({"a": np.ones((4, 4))}))
    return path


def _corrupt(tmp_path):
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(np.random.default_rng(6).bytes(200))
    return path


def _truncated(tmp_path):
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(safetensors.numpy.save({"a": np.ones((64, 64))})[:300])
    return path


ERRORS = {  # argv (with {file} made by the function), expected words in the message
    "missing file": (["info", "{tmp}/nope.safetensors"], None, "No such file"),
    "corrupt bytes": (["compress", "{file}", "{tmp}/o.safetensors"], _corrupt, "not a safetensors"),
    "truncated": (["decompress", "{file}", "{tmp}/o.safetensors"], _truncated, "truncated"),
    "wrong suffix": (["info", "{tmp}/notes.txt"], None, ".safetensors or .npz"),
    "foreign npz": (["info", "{file}"], _not_tnkit_npz, "not a tnkit file"),
    "not compressed": (["decompress", "{file}", "{tmp}/o.safetensors"], _plain, "not compressed"),
    "compressed twice": (["compress", "{file}", "{tmp}/o.safetensors"], _tampered, "already"),
    "tampered": (["decompress", "{file}", "{tmp}/o.safetensors"], _tampered, "core 0 should"),
    "missing folder": (["compress", "{file}", "{tmp}/no/o.safetensors"], _plain, "folder"),
    "output suffix": (["compress", "{file}", "{tmp}/o.bin"], _plain, "end in .safetensors"),
    "exclusive": (
        ["compress", "{file}", "{tmp}/o.safetensors", "--rtol", "0.1", "--max-bond", "3"],
        _plain,
        "not allowed with",
    ),
    "bad rtol": (["compress", "{file}", "{tmp}/o.safetensors", "--rtol", "-1"], _plain, ">= 0"),
    "bad n-cores": (["compress", "{file}", "{tmp}/o.safetensors", "--n-cores", "1"], _plain, ">="),
    "bad regex": (
        ["compress", "{file}", "{tmp}/o.safetensors", "--include", "("],
        _plain,
        "regular",
    ),
    "unknown option": (["info", "{tmp}/x.npz", "--bogus"], None, "unrecognized arguments"),
    "unknown command": (["frobnicate"], None, "invalid choice"),
    "no command": ([], None, "required"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_are_one_line_and_status_2(case, tmp_path, capsys):
    argv, make, words = ERRORS[case]
    file = make(tmp_path) if make else None
    capsys.readouterr()
    argv = [a.format(tmp=tmp_path, file=file) for a in argv]
    assert main(argv) == 2
    lines = _errors(capsys)
    assert len(lines) == 1 and lines[0].startswith("tnkit: error: ")
    assert words in lines[0]


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["info", str(_corrupt(tmp_path)), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("tnkit: error: ")


def test_unexpected_exceptions_are_one_line_too(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(weight_files, "decompress_file", broken)
    assert main(["decompress", "a.safetensors", "b.safetensors"]) == 2
    assert _errors(capsys) == ["tnkit: error: RuntimeError: boom (--debug: traceback)"]


def test_bench_and_demo_need_the_source_checkout(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: calls.append(argv) or _Done())
    assert main(["bench", "--quick"]) == 0
    assert calls[-1][0] == sys.executable and calls[-1][1:] == [
        str(cli.REPO_ROOT / "benchmarks" / "run.py"),
        "--quick",
    ]
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    for command in ("bench", "demo"):
        if command == "demo":
            pytest.importorskip("sklearn")
        assert main([command]) == 2
        lines = _errors(capsys)
        assert len(lines) == 1 and "source repository" in lines[0]


class _Done:
    returncode = 0


def test_rich_table(tmp_path, capsys, monkeypatch):
    rich = pytest.importorskip("rich")
    monkeypatch.setattr(cli, "_rich", lambda: rich)
    assert main(["info", str(_plain(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "plain.safetensors" in out and "4x4" in out and "┃" in out


def test_python_m_tnkit_help():
    result = subprocess.run(
        [sys.executable, "-m", "tnkit", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "compress" in result.stdout and not result.stderr
