"""The bytes of .safetensors and .npz files: checked headers, JSON metadata, tensors, atomic writes.

Knows no trains (``storage`` and ``weight_files`` decide what a file holds); never pickles, and
reads no tensor data before the header's sizes have been checked against the file's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import safetensors

from ._checks import is_int

__all__ = [
    "FLOAT_CODES",
    "MAX_HEADER_BYTES",
    "RawTensor",
    "check_layout",
    "declared_bytes",
    "from_float",
    "from_real_pairs",
    "is_string_map",
    "parse_json",
    "read_header",
    "read_npz",
    "read_safetensors",
    "read_tensors",
    "real_pairs",
    "serialize_safetensors",
    "to_float",
    "write_atomic",
    "write_npz",
    "write_safetensors",
]

MAX_HEADER_BYTES = 100 * 2**20  # the safetensors library's own limit on the JSON header
# NumPy dtypes of the floating safetensors codes; BF16, which NumPy lacks, is read as its bits.
FLOAT_CODES = {
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
_ITEMSIZE = {"F64": 8, "I64": 8, "U64": 8, "C64": 8, "F32": 4, "I32": 4, "U32": 4}
_ITEMSIZE.update({"F16": 2, "BF16": 2, "I16": 2, "U16": 2})


@dataclass(frozen=True)
class RawTensor:
    """A tensor of a safetensors file as stored: dtype (``"F32"``, ``"BF16"``…), shape, data."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    @property
    def size(self) -> int:
        return math.prod(self.shape)


# ---------------------------------------------------------------------- dtypes


def to_float(tensor: RawTensor) -> np.ndarray:
    """The tensor as a float array: float32 for F16/BF16 (exact), else its own dtype.

    Example:
        >>> to_float(RawTensor("BF16", (2,), bytes.fromhex("803f0040")))
        array([1., 2.], dtype=float32)
    """
    array = np.frombuffer(tensor.data, dtype=FLOAT_CODES[tensor.dtype]).reshape(tensor.shape)
    if tensor.dtype == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32 if tensor.dtype == "F16" else array.dtype.newbyteorder("="))


def from_float(array: np.ndarray, dtype: str) -> RawTensor:
    """Cast a float array to the safetensors ``dtype`` (BF16: round to nearest even).

    Example:
        >>> from_float(np.array([1.0, 2.0]), "BF16").data.hex()
        '803f0040'
    """
    array = np.ascontiguousarray(array)
    if dtype == "BF16":
        bits = array.astype(np.float32).view(np.uint32)
        data = ((bits + (0x7FFF + ((bits >> 16) & 1))) >> 16).astype("<u2").tobytes()
    else:
        data = array.astype(FLOAT_CODES[dtype]).tobytes()
    return RawTensor(dtype, tuple(int(s) for s in array.shape), data)


def real_pairs(array: np.ndarray) -> np.ndarray:
    """A complex array as its real view with a trailing (real, imaginary) axis of 2 (neither
    safetensors nor tnkit's .npz files hold complex data); a real array as it is.

    Example:
        >>> real_pairs(np.array([1 + 2j])).tolist()
        [[1.0, 2.0]]
    """
    array = np.ascontiguousarray(array)
    if not np.iscomplexobj(array):
        return array
    return array.view(array.real.dtype).reshape(*array.shape, 2)


def from_real_pairs(pairs: np.ndarray, dtype: str) -> np.ndarray:
    """The complex array of ``dtype`` whose real view is ``pairs`` (trailing axis of 2).

    Example:
        >>> from_real_pairs(np.array([[1.0, 2.0]]), "complex128")
        array([1.+2.j])
    """
    return np.ascontiguousarray(pairs).view(np.dtype(dtype))[..., 0]


# ---------------------------------------------------------------------- JSON


def parse_json(text: bytes | str, what: str, path: Path) -> Any:
    """Strict JSON (duplicate keys refused); a ValueError naming ``path`` and ``what`` else.

    Example:
        >>> parse_json(b'{"a": 1}', "the metadata", Path("f.npz"))
        {'a': 1}
    """

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate keys in {keys}")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeError too
        raise ValueError(f"{path}: {what} is not valid JSON ({exc})") from exc


def is_string_map(value: Any) -> bool:
    """Whether ``value`` is a dict of str to str (what safetensors' ``__metadata__`` must be).

    Example:
        >>> is_string_map({"a": "1"}), is_string_map({"a": 1})
        (True, False)
    """
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


# ---------------------------------------------------------------------- atomic writes


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file in the target's folder, then rename it over ``path``.

    The rename is atomic on POSIX and Windows, so readers see the old file or the new one,
    never half of one; on any failure the temporary file is removed. The file gets the mode
    of the file it replaces (or the one a plain ``open`` would give).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write_atomic(Path(folder) / "a.bin", lambda handle: handle.write(b"abc"))
        ...     (Path(folder) / "a.bin").read_bytes()
        b'abc'
    """
    folder = path.parent
    temp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - must outlive the with: renamed below
        dir=folder, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with temp:
            write(temp)
            temp.flush()
            os.fsync(temp.fileno())
        # NamedTemporaryFile creates mode 0600; give the file the mode a plain open() would.
        os.chmod(temp.name, _file_mode(path))
        os.replace(temp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp.name)
        raise
    with contextlib.suppress(OSError):  # make the rename durable (POSIX; no-op elsewhere)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _file_mode(path: Path) -> int:
    with contextlib.suppress(OSError):
        return os.stat(path).st_mode & 0o7777
    umask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(umask)
    return 0o666 & ~umask


# ---------------------------------------------------------------------- safetensors


def serialize_safetensors(
    handle: IO[bytes], tensors: Mapping[str, RawTensor], metadata: Mapping[str, str]
) -> None:
    """Write tensors (any dtype) and string metadata to ``handle`` in the safetensors format.

    Serialised here rather than by ``safetensors.numpy.save``, which has no bfloat16; the
    layout is the library's: header padded to 8 bytes, widest dtypes first so data stays
    aligned (then by name), ``__metadata__`` first and omitted when empty.

    Example:
        >>> import io
        >>> buffer = io.BytesIO()
        >>> serialize_safetensors(buffer, {"t": from_float(np.ones(1), "F32")}, {"k": "v"})
        >>> data = buffer.getvalue()  # the header is padded with a space to 80 bytes
        >>> int.from_bytes(data[:8], "little"), data[88:]
        (80, b'\\x00\\x00\\x80?')
        >>> data[8:88].decode()
        '{"__metadata__":{"k":"v"},"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} '
    """
    order = sorted(tensors, key=lambda name: (-_ITEMSIZE.get(tensors[name].dtype, 1), name))
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name in order:
        tensor = tensors[name]
        end = offset + len(tensor.data)
        header[name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    handle.write(len(text).to_bytes(8, "little"))
    handle.write(text)
    for name in order:
        handle.write(tensors[name].data)


def write_safetensors(
    path: str | os.PathLike, tensors: Mapping[str, RawTensor], metadata: Mapping[str, str]
) -> None:
    """Write a safetensors file atomically (``serialize_safetensors`` through ``write_atomic``).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "w.safetensors"
        ...     write_safetensors(path, {"t": from_float(np.ones(2), "F64")}, {})
        ...     read_safetensors(path)[1]["t"].shape
        (2,)
    """
    write_atomic(Path(path), lambda handle: serialize_safetensors(handle, tensors, metadata))


def read_header(handle: IO[bytes], size: int, path: Path) -> dict[str, Any]:
    """The JSON header of the safetensors file open in ``handle`` (``size`` bytes long).

    The declared header length is checked against the file size and the library's limit
    before it is read; ``handle`` is left at the start of the data.

    Example:
        >>> import io
        >>> data = b"\\x02" + bytes(7) + b"{}"
        >>> read_header(io.BytesIO(data), len(data), Path("f.safetensors"))
        {}
    """
    start = handle.read(8)
    if len(start) < 8:
        raise ValueError(f"{path}: truncated file ({size} bytes) has no safetensors header")
    header_len = int.from_bytes(start, "little")
    if header_len > min(size - 8, MAX_HEADER_BYTES):
        raise ValueError(
            f"{path}: safetensors header declares {header_len} bytes but the file has {size} "
            "(truncated or not a safetensors file)"
        )
    header = parse_json(handle.read(header_len), "the safetensors header", path)
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the safetensors header is not a JSON object")
    return header


def check_layout(
    header: Mapping[str, Any], data_len: int, path: Path, dtypes: Mapping[str, np.dtype]
) -> None:
    """Check that the tensors of ``header`` (without ``__metadata__``) tile ``data_len`` bytes.

    Each tensor needs a dtype among ``dtypes`` (safetensors code -> NumPy dtype), a shape
    whose size times the item size is its byte count, and offsets that leave no gap, overlap
    or trailing bytes: a header that declares more than the file holds fails before any read.

    Example:
        >>> info = {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}
        >>> check_layout({"t": info}, 16, Path("f.safetensors"), {"F64": np.dtype("<f8")})
    """
    end = 0
    for name, info in sorted(header.items(), key=lambda item: _offsets(item, path)):
        begin, stop = _offsets((name, info), path)
        dtype = dtypes.get(info.get("dtype"))
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info.get('dtype')!r}")
        declared = declared_bytes(info.get("shape"), dtype, name, path)
        if begin != end or stop - begin != declared or stop > data_len:
            raise ValueError(
                f"{path}: tensor {name!r} declares {declared} bytes at offsets "
                f"[{begin}, {stop}) but the file holds {data_len} data bytes "
                "(truncated, overlapping or absurd shapes)"
            )
        end = stop
    if end != data_len:
        raise ValueError(f"{path}: {data_len - end} bytes after the last tensor (damaged file)")


def _offsets(item: tuple[str, Any], path: Path) -> tuple[int, int]:
    name, info = item
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(is_int(o) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise ValueError(f"{path}: tensor {name!r} has malformed data_offsets {offsets!r}")
    return offsets[0], offsets[1]


def declared_bytes(shape: Any, dtype: np.dtype, name: str, path: Path) -> int:
    """Bytes a tensor of ``shape`` and ``dtype`` needs; a ValueError for a malformed shape.

    Example:
        >>> declared_bytes([2, 3], np.dtype("<f4"), "t", Path("f.npz"))
        24
    """
    if not isinstance(shape, (list, tuple)) or not all(is_int(s) and s >= 0 for s in shape):
        raise ValueError(f"{path}: tensor {name!r} has malformed shape {shape!r}")
    return math.prod(shape) * dtype.itemsize


def read_tensors(data: bytes, header: Mapping[str, Any], path: Path) -> dict[str, RawTensor]:
    """The tensors of the safetensors file ``data`` (whose parsed header is ``header``), in
    file order, as stored; the library checks the layout (any dtype it knows).

    Example:
        >>> import io
        >>> buffer = io.BytesIO()
        >>> serialize_safetensors(buffer, {"t": from_float(np.ones(1), "F32")}, {})
        >>> data, path = buffer.getvalue(), Path("f.safetensors")
        >>> header = read_header(io.BytesIO(data), len(data), path)
        >>> read_tensors(data, header, path)["t"].shape
        (1,)
    """
    try:
        entries = safetensors.deserialize(data)
    except Exception as exc:  # SafetensorError and whatever the Rust side raises
        raise ValueError(f"{path}: safetensors could not read the file: {exc}") from exc
    # In file order (data offsets, which deserialize checked): it returns them in random order.
    entries.sort(key=lambda entry: (*header[entry[0]]["data_offsets"], entry[0]))
    return {
        name: RawTensor(str(info["dtype"]), tuple(int(s) for s in info["shape"]), info["data"])
        for name, info in entries
    }


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, RawTensor]]:
    """``__metadata__`` (``{}`` when absent) and every tensor of a safetensors file (any dtype,
    bytes as stored, in file order).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write_safetensors(Path(folder) / "w.safetensors", {}, {"author": "me"})
        ...     read_safetensors(Path(folder) / "w.safetensors")
        ({'author': 'me'}, {})
    """
    path = Path(path)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        header = read_header(handle, size, path)
        metadata = header.get("__metadata__")
        if metadata is None:
            metadata = {}
        if not is_string_map(metadata):
            raise ValueError(f"{path}: __metadata__ is not a string-to-string map")
        handle.seek(0)
        data = handle.read()
    return metadata, read_tensors(data, header, path)


# ---------------------------------------------------------------------- npz


def write_npz(
    handle: IO[bytes], arrays: Mapping[str, np.ndarray], metadata: Any, *, meta_name: str
) -> None:
    """Write ``arrays`` and ``metadata`` (as UTF-8 JSON in the uint8 member ``meta_name``) as
    an uncompressed .npz.

    Example:
        >>> import io
        >>> buffer = io.BytesIO()
        >>> write_npz(buffer, {"a": np.ones(2)}, {"k": 1}, meta_name="__meta__")
        >>> read_npz(buffer, len(buffer.getvalue()), Path("f.npz"), meta_name="__meta__",
        ...          dtypes=[np.dtype("<f8")])
        ({'k': 1}, {'a': array([1., 1.])})
    """
    text = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    np.savez(handle, **arrays, **{meta_name: text})


def read_npz(
    handle: IO[bytes], size: int, path: Path, *, meta_name: str, dtypes: Collection[np.dtype]
) -> tuple[Any, dict[str, np.ndarray]]:
    """The JSON metadata and the arrays of what ``write_npz`` wrote (``size`` bytes).

    Every member's .npy header is checked first (uncompressed, no object dtype, a dtype among
    ``dtypes``, its size matching the bytes it holds); only then does ``np.load`` read data.
    """
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not an .npz (zip) archive, or a truncated one ({exc})") from exc
    names = []
    with archive:
        for info in archive.infolist():
            allowed = [np.dtype(np.uint8)] if info.filename == f"{meta_name}.npy" else dtypes
            names.append(_check_npz_member(archive, info, size, path, allowed))
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: duplicate members in {sorted(names)}")
        if meta_name not in names:
            raise ValueError(f"{path}: not a tnkit file (no {meta_name} metadata member)")
    handle.seek(0)
    try:
        with np.load(handle, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in names}
    except Exception as exc:  # zip CRC errors, short reads
        raise ValueError(f"{path}: numpy could not read the archive: {exc}") from exc
    text = arrays.pop(meta_name)
    if text.dtype != np.uint8 or text.ndim != 1:
        raise ValueError(f"{path}: {meta_name} must be a 1-d uint8 array of UTF-8 JSON")
    return parse_json(text.tobytes(), "the metadata", path), arrays


def _check_npz_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    size: int,
    path: Path,
    allowed: Collection[np.dtype],
) -> str:
    name = info.filename.removesuffix(".npy")
    if name == info.filename or "/" in name:
        raise ValueError(f"{path}: unexpected archive member {info.filename!r}")
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        raise ValueError(
            f"{path}: member {info.filename!r} is compressed; tnkit reads the uncompressed "
            ".npz files that tn.save writes"
        )
    if info.header_offset + info.compress_size > size:
        raise ValueError(
            f"{path}: member {info.filename!r} declares {info.file_size} bytes beyond the "
            f"end of the {size}-byte file (truncated)"
        )
    try:
        with archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            data_len = info.file_size - stream.tell()
    except (ValueError, OSError, EOFError, RuntimeError, zipfile.BadZipFile, SyntaxError) as exc:
        raise ValueError(f"{path}: member {info.filename!r} is not a valid .npy: {exc}") from exc
    if dtype.hasobject:
        raise ValueError(
            f"{path}: member {info.filename!r} is an object array (pickled data); refused"
        )
    if dtype not in allowed:
        raise ValueError(f"{path}: member {info.filename!r} has unsupported dtype {dtype}")
    declared = declared_bytes(shape, dtype, name, path)
    if declared != data_len:
        raise ValueError(
            f"{path}: member {info.filename!r} declares shape {shape} ({declared} bytes) but "
            f"holds {data_len} bytes (truncated or absurd shape)"
        )
    return name
