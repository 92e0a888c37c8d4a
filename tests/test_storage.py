"""tn.save / tn.load: exact round trips, atomic writes, and hostile or damaged files refused."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import dtypes, mpo_trains, mps_trains

import tnkit as tn
from tnkit import storage

SUFFIXES = (".safetensors", ".npz")
suffixes = st.sampled_from(SUFFIXES)


def assert_same(back, train):
    """Same class, bytes-identical cores, same centre, report and matrix shape."""
    assert type(back) is type(train)
    assert len(back) == len(train)
    for a, b in zip(back.cores, train.cores, strict=True):
        assert isinstance(a, np.ndarray)
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        assert a.tobytes() == np.ascontiguousarray(b).tobytes()
    assert back.centre == train.centre
    if train.report is None:
        assert back.report is None
    else:  # NaN-aware: a report's norm may be NaN or inf
        np.testing.assert_equal(dataclasses.astuple(back.report), dataclasses.astuple(train.report))
    if isinstance(train, tn.MPO):
        assert back.matrix_shape == train.matrix_shape


@st.composite
def variants(draw, trains):
    """A train as built, canonicalised somewhere, or compressed (with a report)."""
    train = draw(trains)
    kind = draw(st.sampled_from(["plain", "canonical", "compressed"]))
    if kind == "canonical":
        return train.canonicalize(draw(st.integers(0, len(train) - 1)))
    if kind == "compressed":
        return train.compress(max_bond=draw(st.integers(1, 4)))
    return train


def round_trip(obj, suffix, *, as_path=True):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"obj{suffix}"
        tn.save(path if as_path else str(path), obj)
        back = tn.load(str(path) if as_path else path)
        assert os.listdir(folder) == [path.name]
    return back


@given(variants(mps_trains(max_len=5)), suffixes, st.booleans())
def test_mps_round_trip_is_exact(train, suffix, as_path):
    assert_same(round_trip(train, suffix, as_path=as_path), train)


@given(variants(mpo_trains(max_len=4)), suffixes)
def test_mpo_round_trip_is_exact(train, suffix):
    assert_same(round_trip(train, suffix), train)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_every_dtype_with_centre_and_report(dtype, suffix):
    m = tn.MPS.random([2, 3, 2, 2], 4, seed=3, dtype=dtype).compress(max_bond=2)
    assert m.report is not None and m.centre == 0
    assert_same(round_trip(m, suffix), m)
    o = tn.MPO.from_matrix(np.arange(35.0).reshape(5, 7).astype(dtype), 2, 2)
    assert_same(round_trip(o, suffix), o)


@given(dtypes, suffixes)
def test_report_round_trip(dtype, suffix):
    report = tn.MPS.random([3] * 4, 6, seed=0, dtype=dtype).compress(rtol=0.3).report
    back = round_trip(report, suffix)
    assert isinstance(back, tn.TruncationReport)
    np.testing.assert_equal(dataclasses.astuple(back), dataclasses.astuple(report))


def test_load_like_moves_cores_to_that_library():
    xp = pytest.importorskip("array_api_strict")
    m = tn.MPS.random([2] * 4, 3, seed=0).canonicalize(2)
    with tempfile.TemporaryDirectory() as folder:
        tn.save(Path(folder) / "m.npz", m)
        back = tn.load(Path(folder) / "m.npz", like=xp.asarray([1.0]))
    assert back.centre == 2
    assert type(back.cores[0]).__module__.startswith("array_api_strict")


# ---------------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_failed_save_leaves_previous_file_untouched(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"m{suffix}"
    tn.save(path, tn.MPS.random([2] * 4, 3, seed=0))
    before = path.read_bytes()

    def half_then_fail(handle, tensors, meta):
        handle.write(b"partial data")
        raise RuntimeError("disk unplugged")

    monkeypatch.setitem(storage._WRITERS, suffix, half_then_fail)
    with pytest.raises(RuntimeError, match="disk unplugged"):
        tn.save(path, tn.MPS.random([2] * 4, 3, seed=1))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]


def test_save_keeps_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "m.npz"
    tn.save(path, tn.MPS.random([2] * 3, 2, seed=0))
    os.chmod(path, 0o640)
    tn.save(path, tn.MPS.random([2] * 3, 2, seed=1))
    assert path.stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------- wrong arguments


@pytest.mark.parametrize(
    ("path", "obj", "error", "match"),
    [
        ("x.npz", {"cores": []}, TypeError, "obj.*dict"),
        ("x.npz", np.ones((1, 2, 1)), TypeError, "obj.*ndarray"),
        ("x.safetensors", [np.ones((1, 2, 1))], TypeError, "obj.*list"),
        ("x.pkl", None, ValueError, r"path.*x\.pkl"),
        ("x", None, ValueError, r"path.*/x' must end"),
        (3, None, TypeError, "path"),
    ],
)
def test_save_rejects_bad_arguments(tmp_path, path, obj, error, match):
    if obj is None:
        obj = tn.MPS.random([2, 2], 2, seed=0)
    if isinstance(path, str):
        path = tmp_path / path
    with pytest.raises(error, match=match):
        tn.save(path, obj)
    assert os.listdir(tmp_path) == []


def test_load_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"path.*m\.pt"):
        tn.load(tmp_path / "m.pt")


# ---------------------------------------------------------------------- hostile files


def good_parts():
    """Metadata and tensors of a valid 3-site MPS file, to be damaged by each test."""
    m = tn.MPS.random([2, 3, 2], 3, seed=0)
    return storage._encode_train(m)


def write_raw(path, tensors, meta):
    with open(path, "wb") as handle:
        storage._WRITERS[path.suffix](handle, tensors, meta)


def set_meta(key, value):
    return lambda meta, tensors: meta.__setitem__(key, value)


def set_tensor(name, value):
    return lambda meta, tensors: tensors.__setitem__(name, value)


def drop(mapping, key):
    return lambda meta, tensors: (meta if mapping == "meta" else tensors).pop(key)


def set_report(**fields):
    report = tn.MPS.random([2] * 3, 2, seed=0).compress(max_bond=1).report
    return set_meta("report", {**storage._encode_report(report), **fields})


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (set_meta("format_version", 3), "format version 3 is not supported"),
        (set_meta("format_version", 2), "lacks the key 'blocks'"),
        (set_meta("format", "other"), "not a tnkit file"),
        (set_meta("class", "PEPS"), "unknown class 'PEPS'"),
        (set_meta("layout", "(Dl, d_out, d_in, Dr)"), "layout"),
        (set_meta("dtype", "int8"), "unsupported dtype 'int8'"),
        (set_meta("dtype", "complex128"), "trailing"),
        (set_meta("dtype", "float32"), "stored as float64"),
        (set_meta("n_cores", 2), r"unexpected \['core_2'\]"),
        (set_meta("n_cores", 4), "n_cores is 4 but the file holds 3 tensors"),
        (set_meta("n_cores", 10**15), "n_cores is 1000000000000000 but"),
        (set_meta("dtype", ["float64"]), "unsupported dtype"),
        (set_meta("n_cores", "3"), "n_cores must be an int"),
        (set_meta("centre", 1), "claims centre 1.*not canonical"),
        (set_meta("centre", 7), "centre 7 is not a site"),
        (set_meta("bond_dims", [3, 5]), "metadata says dims"),
        (set_meta("dims", [[2], [2], [2]]), "metadata says dims"),
        (set_meta("dims", "2x3x2"), "dims must be a list"),
        (set_meta("extra", 1), r"unexpected \['extra'\]"),
        (drop("meta", "centre"), r"missing \['centre'\]"),
        (drop("tensors", "core_1"), r"missing \['core_1'\]"),
        (set_tensor("evil", np.zeros(3)), r"unexpected \['evil'\]"),
        (set_tensor("core_1", np.ones((2, 3, 3))), "left bond"),
        (set_tensor("core_2", np.ones((3, 2, 2))), "right boundary"),
        (set_tensor("core_0", np.full((1, 2, 3), np.nan)), "NaN or Inf"),
        (set_tensor("core_1", np.full((3, 3, 3), np.inf)), "NaN or Inf"),
        (set_report(method=3), "report field 'method'"),
        (set_report(discarded="none"), "report field 'discarded'"),
        (set_report(params_after=True), "report field 'params_after'"),
        (set_report(surprise=1.0), r"unexpected \['surprise'\]"),
        (set_meta("report", [1, 2]), "report must be a JSON object"),
    ],
)
def test_damaged_metadata_and_tensors_are_refused(tmp_path, suffix, damage, match):
    meta, tensors = good_parts()
    damage(meta, tensors)
    path = tmp_path / f"bad{suffix}"
    write_raw(path, tensors, meta)
    with pytest.raises(ValueError, match=match):
        tn.load(path)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_truncated_files_are_refused(tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    tn.save(good, tn.MPS.random([2] * 5, 4, seed=0).compress(max_bond=2))
    data = good.read_bytes()
    bad = tmp_path / f"bad{suffix}"
    for length in (0, 5, 8, 30, 100, len(data) // 2, len(data) - 8, len(data) - 1):
        bad.write_bytes(data[:length])
        with pytest.raises(ValueError, match="truncated"):
            tn.load(bad)


class Payload:
    """Pickles into a call that would create ``marker``: loading must never run it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_npz_with_object_array_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "executed"
    meta, tensors = good_parts()
    tensors["core_0"] = np.array([Payload(marker)], dtype=object)
    path = tmp_path / "evil.npz"
    np.savez(path, **tensors, __tnkit__=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with pytest.raises(ValueError, match="object array"):
        tn.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_pickle_renamed_is_refused_unexecuted(tmp_path, suffix):
    marker = tmp_path / "executed"
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ValueError, match="not an .npz|truncated or not a safetensors"):
        tn.load(path)
    assert not marker.exists()


def forbid(monkeypatch, module, name):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} was called on a file that should have been refused")

    monkeypatch.setattr(module, name, fail)


def test_safetensors_absurd_shape_is_refused_before_reading(tmp_path, monkeypatch):
    import safetensors
    import safetensors.numpy

    forbid(monkeypatch, safetensors.numpy, "load")
    forbid(monkeypatch, safetensors, "deserialize")
    meta, _ = good_parts()
    header = {
        "__metadata__": {key: json.dumps(value) for key, value in meta.items()},
        "core_0": {"dtype": "F64", "shape": [10**6, 10**6], "data_offsets": [0, 8 * 10**12]},
    }
    text = json.dumps(header).encode()
    path = tmp_path / "huge.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + bytes(64))
    with pytest.raises(ValueError, match="absurd shapes"):
        tn.load(path)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b'{"a": 1', "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"__metadata__": {"format": "tnkit"}, "__metadata__": {}}', "duplicate keys"),
        (b'{"__metadata__": {"format": "{oops"}}', "metadata 'format' is not valid JSON"),
        (b'{"__metadata__": {"format": 1}}', "not a tnkit file"),
        (b'{"__metadata__": {}, "t": {"dtype": "F64", "shape": [1]}}', "data_offsets"),
        (
            b'{"__metadata__": {}, "t": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}',
            "dtype",
        ),
        (
            b'{"__metadata__": {}, "t": {"dtype": "F64", "shape": [-1], "data_offsets": [0, 8]}}',
            "shape",
        ),
    ],
)
def test_safetensors_bad_headers_are_refused(tmp_path, header, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(ValueError, match=match):
        tn.load(path)


def test_safetensors_header_longer_than_file_is_refused(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="header declares"):
        tn.load(path)


def npz_member(shape, payload: bytes, descr="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue() + payload


def write_npz_members(path, members, meta=None, compression=zipfile.ZIP_STORED):
    meta = good_parts()[0] if meta is None else meta
    text = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("__tnkit__.npy", npz_member((len(text),), text, "|u1"))
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ({"core_0.npy": npz_member((10**6, 10**6), bytes(8))}, "absurd shape"),
        ({"core_0.npy": npz_member((1, 2, 3), bytes(8))}, "truncated"),
        ({"core_0.npy": npz_member((1, 2), bytes(16), "<i8")}, "unsupported dtype"),
        ({"core_0.npy": npz_member((1,), bytes(8), "|O")}, "object array"),
        ({"core_0.npy": b"\x93NUMPY\x09\x00garbage"}, "not a valid .npy"),
        ({"core_0.npy": b"plain text"}, "not a valid .npy"),
        ({"core_0.txt": b"hello"}, "unexpected archive member"),
        ({"../core_0.npy": b"hello"}, "unexpected archive member"),
    ],
)
def test_npz_bad_members_are_refused_before_loading(tmp_path, monkeypatch, members, match):
    forbid(monkeypatch, np, "load")
    path = tmp_path / "bad.npz"
    write_npz_members(path, members)
    with pytest.raises(ValueError, match=match):
        tn.load(path)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_npz_duplicate_members_are_refused(tmp_path):
    path = tmp_path / "bad.npz"
    core = npz_member((1, 2, 1), bytes(16))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("core_0.npy", core)
        archive.writestr("core_0.npy", core)
    with pytest.raises(ValueError, match="duplicate members"):
        tn.load(path)


def test_npz_compressed_and_unmarked_archives_are_refused(tmp_path):
    path = tmp_path / "bad.npz"
    write_npz_members(path, {}, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ValueError, match="compressed"):
        tn.load(path)
    np.savez(path, core_0=np.ones((1, 2, 1)))
    with pytest.raises(ValueError, match="no __tnkit__ metadata"):
        tn.load(path)
    np.savez(path, __tnkit__=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(ValueError, match="not valid JSON"):
        tn.load(path)
    np.savez(path, __tnkit__=np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="1-d uint8"):
        tn.load(path)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_report_file_with_tensors_is_refused(tmp_path, suffix):
    report = tn.MPS.random([2] * 3, 2, seed=0).compress(max_bond=1).report
    meta = storage._header("TruncationReport")
    meta["report"] = storage._encode_report(report)
    path = tmp_path / f"r{suffix}"
    write_raw(path, {"core_0": np.ones((1, 2, 1))}, meta)
    with pytest.raises(ValueError, match="unexpected tensors"):
        tn.load(path)
