"""save/load of MPS, MPO and TruncationReport as .safetensors or .npz, atomically written.

Never pickles and never trusts a file: headers are checked against the file size before any
array is read, and cores go through the normal constructors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import _backend as backend
from ._checks import is_int
from ._version import __version__
from .mpo import MPO
from .mps import MPS
from .truncation import TruncationReport

__all__ = ["save", "load"]

FORMAT_VERSION = 1
_MARKER = "tnkit"
_META_NAME = "__tnkit__"  # npz member holding the metadata as UTF-8 JSON bytes
_TRAINS = {"MPS": MPS, "MPO": MPO}
_CLASSES = (*_TRAINS, "TruncationReport")
# Stored dtype of each core dtype: complex cores are saved as a real view with a trailing
# axis of 2 (real, imaginary), since safetensors has no complex type.
_STORED = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "complex64": np.dtype("<f4"),
    "complex128": np.dtype("<f8"),
}
_SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_MAX_HEADER = 100 * 2**20  # the safetensors library's own limit on the JSON header
_TRAIN_KEYS = {"layout", "n_cores", "dims", "bond_dims", "centre", "dtype", "report"}
_COMMON_KEYS = {"format", "format_version", "class", "tnkit_version"}


def save(path: str | os.PathLike, obj: MPS | MPO | TruncationReport) -> None:
    """Write an MPS, MPO or TruncationReport to ``path`` (``.safetensors`` or ``.npz``).

    A train's ``centre`` and ``report`` (and an MPO's ``matrix_shape``) are saved with it.
    Cores of any library are copied to the host; complex cores are stored as real arrays
    with a trailing axis of 2. The file is written to a temporary file beside ``path`` and
    moved over it only when complete, so a failed save leaves an existing file untouched.

    Example:
        >>> import os, tempfile, tnkit as tn
        >>> m = tn.MPS.random([2] * 4, 3, seed=0, dtype="complex64").canonicalize(1)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     tn.save(os.path.join(folder, "state.safetensors"), m)
        ...     back = tn.load(os.path.join(folder, "state.safetensors"))
        >>> back.bond_dims, back.dtype, back.centre
        ((2, 3, 2), dtype('complex64'), 1)
    """
    path, suffix = _check_path(path)
    if isinstance(obj, (MPS, MPO)):
        meta, tensors = _encode_train(obj)
    elif isinstance(obj, TruncationReport):
        meta, tensors = _header("TruncationReport"), {}
        meta["report"] = _encode_report(obj)
    else:
        raise TypeError(f"obj: can save an MPS, MPO or TruncationReport, got {type(obj).__name__}")
    writer = _WRITERS[suffix]
    _write_atomic(path, lambda handle: writer(handle, tensors, meta))


def load(path: str | os.PathLike, *, like: Any = None) -> MPS | MPO | TruncationReport:
    """Read what [save][tnkit.save] wrote; a ValueError for any damaged or foreign file.

    Trains come back NumPy-backed, or on the library and device of the array ``like``.
    Everything is checked before use: the format version and metadata, every declared
    array size against the file size (before anything is read), the cores through the
    MPS/MPO constructor (bonds, dtype, NaN/Inf), and a stored ``centre`` against the cores
    (``is_canonical``). Pickled data is never loaded.

    Example:
        >>> import os, tempfile, tnkit as tn
        >>> o = tn.MPO.random([2, 2], [3, 3], 4, seed=1).compress(max_bond=2)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     tn.save(os.path.join(folder, "op.npz"), o)
        ...     back = tn.load(os.path.join(folder, "op.npz"))
        >>> back.bond_dims, back.report == o.report
        ((2,), True)
    """
    path, suffix = _check_path(path)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        meta, tensors = _READERS[suffix](handle, size, path)
    return _decode(meta, tensors, path, like)


# ---------------------------------------------------------------------- encoding


def _check_path(path: Any) -> tuple[Path, str]:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITERS:
        raise ValueError(
            f"path: {str(path)!r} must end in .safetensors or .npz (the suffix picks the format)"
        )
    return path, suffix


def _header(cls_name: str) -> dict[str, Any]:
    return {
        "format": _MARKER,
        "format_version": FORMAT_VERSION,
        "class": cls_name,
        "tnkit_version": __version__,
    }


def _encode_train(train: MPS | MPO) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    cls_name = "MPO" if isinstance(train, MPO) else "MPS"
    dtype = backend.dtype_name(train.dtype)
    meta = _header(cls_name)
    meta.update(
        layout=train._layout,
        n_cores=len(train),
        dims=[list(shape) for shape in train._site_shapes],
        bond_dims=list(train.bond_dims),
        centre=train.centre,
        dtype=dtype,
        report=None if train.report is None else _encode_report(train.report),
    )
    if cls_name == "MPO":
        meta["matrix_shape"] = list(train.matrix_shape)
    tensors = {}
    for k, core in enumerate(train.cores):
        array = np.ascontiguousarray(backend.to_numpy(core))
        if backend.is_complex(array.dtype):
            array = array.view(array.real.dtype).reshape(*array.shape, 2)
        tensors[f"core_{k}"] = array.astype(_STORED[dtype], copy=False)
    return meta, tensors


def _encode_report(report: TruncationReport) -> dict[str, Any]:
    return {
        field.name: list(value) if isinstance(value, tuple) else value
        for field in dataclasses.fields(report)
        for value in [getattr(report, field.name)]
    }


def _write_safetensors(handle: IO[bytes], tensors: dict, meta: dict) -> None:
    import safetensors.numpy

    strings = {key: json.dumps(value) for key, value in meta.items()}
    try:
        data = safetensors.numpy.save(tensors, metadata=strings)
    except Exception as exc:  # the library's errors are not OSErrors
        raise ValueError(f"safetensors could not serialise the cores: {exc}") from exc
    handle.write(data)


def _write_npz(handle: IO[bytes], tensors: dict, meta: dict) -> None:
    text = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(handle, **tensors, **{_META_NAME: text})


_WRITERS: dict[str, Callable[[IO[bytes], dict, dict], None]] = {
    ".safetensors": _write_safetensors,
    ".npz": _write_npz,
}


def _write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temporary file in the target's folder, then rename it over the target.

    The rename is atomic on POSIX and Windows, so readers see the old file or the new one,
    never half of one; on any failure the temporary file is removed.
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


# ---------------------------------------------------------------------- reading


def _parse_json(text: bytes | str, what: str, path: Path) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate keys in {keys}")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeError too
        raise ValueError(f"{path}: {what} is not valid JSON ({exc})") from exc


def _read_safetensors(handle: IO[bytes], size: int, path: Path) -> tuple[dict, dict]:
    """Check the header's declared tensors against the file size, then let the library read."""
    import safetensors.numpy

    start = handle.read(8)
    if len(start) < 8:
        raise ValueError(f"{path}: truncated file ({size} bytes) has no safetensors header")
    header_len = int.from_bytes(start, "little")
    if header_len > min(size - 8, _MAX_HEADER):
        raise ValueError(
            f"{path}: safetensors header declares {header_len} bytes but the file has {size} "
            "(truncated or not a safetensors file)"
        )
    header = _parse_json(handle.read(header_len), "the safetensors header", path)
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the safetensors header is not a JSON object")
    strings = header.pop("__metadata__", None)
    if not isinstance(strings, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in strings.items()
    ):
        raise ValueError(f"{path}: not a tnkit file (no string-to-string __metadata__)")
    meta = {key: _parse_json(value, f"metadata {key!r}", path) for key, value in strings.items()}
    data_len = size - 8 - header_len
    end = 0
    for name, info in sorted(header.items(), key=lambda item: _offsets(item, path)):
        begin, stop = _offsets((name, info), path)
        dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info.get('dtype')!r}")
        declared = _declared_bytes(info.get("shape"), dtype, name, path)
        if begin != end or stop - begin != declared or stop > data_len:
            raise ValueError(
                f"{path}: tensor {name!r} declares {declared} bytes at offsets "
                f"[{begin}, {stop}) but the file holds {data_len} data bytes "
                "(truncated, overlapping or absurd shapes)"
            )
        end = stop
    if end != data_len:
        raise ValueError(f"{path}: {data_len - end} bytes after the last tensor (damaged file)")
    handle.seek(0)
    try:
        tensors = safetensors.numpy.load(handle.read())
    except Exception as exc:  # SafetensorError and whatever the Rust side raises
        raise ValueError(f"{path}: safetensors could not read the file: {exc}") from exc
    return meta, tensors


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


def _declared_bytes(shape: Any, dtype: np.dtype, name: str, path: Path) -> int:
    if not isinstance(shape, (list, tuple)) or not all(is_int(s) and s >= 0 for s in shape):
        raise ValueError(f"{path}: tensor {name!r} has malformed shape {shape!r}")
    return math.prod(shape) * dtype.itemsize


def _read_npz(handle: IO[bytes], size: int, path: Path) -> tuple[dict, dict]:
    """Check every member's .npy header (no object dtype, size matches), then np.load."""
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not an .npz (zip) archive, or a truncated one ({exc})") from exc
    names = []
    with archive:
        for info in archive.infolist():
            names.append(_check_npz_member(archive, info, size, path))
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: duplicate members in {sorted(names)}")
        if _META_NAME not in names:
            raise ValueError(f"{path}: not a tnkit file (no {_META_NAME} metadata member)")
    handle.seek(0)
    try:
        with np.load(handle, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in names}
    except Exception as exc:  # zip CRC errors, short reads
        raise ValueError(f"{path}: numpy could not read the archive: {exc}") from exc
    text = arrays.pop(_META_NAME)
    if text.dtype != np.uint8 or text.ndim != 1:
        raise ValueError(f"{path}: {_META_NAME} must be a 1-d uint8 array of UTF-8 JSON")
    return _parse_json(text.tobytes(), "the metadata", path), arrays


def _check_npz_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int, path: Path):
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
    allowed = (np.dtype(np.uint8),) if name == _META_NAME else tuple(_STORED.values())
    if dtype not in allowed:
        raise ValueError(f"{path}: member {info.filename!r} has unsupported dtype {dtype}")
    declared = _declared_bytes(shape, dtype, name, path)
    if declared != data_len:
        raise ValueError(
            f"{path}: member {info.filename!r} declares shape {shape} ({declared} bytes) but "
            f"holds {data_len} bytes (truncated or absurd shape)"
        )
    return name


_READERS = {".safetensors": _read_safetensors, ".npz": _read_npz}


# ---------------------------------------------------------------------- decoding


def _decode(meta: Any, tensors: dict, path: Path, like: Any) -> Any:
    if not isinstance(meta, dict) or meta.get("format") != _MARKER:
        raise ValueError(f"{path}: not a tnkit file (metadata has no format marker 'tnkit')")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format version {version!r} is not supported (this tnkit reads "
            f"version {FORMAT_VERSION})"
        )
    cls_name = meta.get("class")
    if cls_name not in _CLASSES:
        raise ValueError(f"{path}: unknown class {cls_name!r}; expected one of {_CLASSES}")
    expected = _COMMON_KEYS | ({"report"} if cls_name == "TruncationReport" else _TRAIN_KEYS)
    if cls_name == "MPO":
        expected = expected | {"matrix_shape"}
    if set(meta) != expected:
        missing, extra = sorted(expected - set(meta)), sorted(set(meta) - expected)
        raise ValueError(f"{path}: metadata keys: missing {missing}, unexpected {extra}")
    if cls_name == "TruncationReport":
        if tensors:
            raise ValueError(f"{path}: unexpected tensors {sorted(tensors)} in a report file")
        return _decode_report(meta["report"], path)
    return _decode_train(_TRAINS[cls_name], meta, tensors, path, like)


def _decode_train(cls: type, meta: dict, tensors: dict, path: Path, like: Any) -> Any:
    if meta["layout"] != cls._layout:
        raise ValueError(f"{path}: layout {meta['layout']!r} is not {cls.__name__} {cls._layout}")
    n_cores, dtype = meta["n_cores"], meta["dtype"]
    if not is_int(n_cores) or n_cores < 1:
        raise ValueError(f"{path}: n_cores must be an int >= 1, got {n_cores!r}")
    if not isinstance(dtype, str) or dtype not in _STORED:
        raise ValueError(f"{path}: unsupported dtype {dtype!r}; expected one of {list(_STORED)}")
    names = [f"core_{k}" for k in range(min(n_cores, len(tensors)))]  # n_cores may be absurd
    missing = [name for name in names if name not in tensors]
    extra = sorted(set(tensors) - set(names))
    if n_cores != len(tensors) or missing or extra:
        raise ValueError(
            f"{path}: n_cores is {n_cores} but the file holds {len(tensors)} tensors: "
            f"missing {missing}, unexpected {extra}"
        )
    cores = tuple(_decode_core(tensors[name], dtype, name, path) for name in names)
    kwargs = {}
    if cls is MPO:
        kwargs["matrix_shape"] = _int_list(meta["matrix_shape"], "matrix_shape", path)
    try:
        train = cls(tuple(backend.from_numpy(core, like) for core in cores), **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid cores: {exc}") from exc
    if not isinstance(meta["dims"], list):
        raise ValueError(f"{path}: metadata dims must be a list, got {meta['dims']!r}")
    dims = tuple(tuple(_int_list(shape, "dims", path)) for shape in meta["dims"])
    bond_dims = tuple(_int_list(meta["bond_dims"], "bond_dims", path))
    if dims != train._site_shapes or bond_dims != train.bond_dims:
        raise ValueError(
            f"{path}: metadata says dims {meta['dims']}, bond_dims {meta['bond_dims']}; the "
            f"cores have dims {[list(s) for s in train._site_shapes]}, "
            f"bond_dims {list(train.bond_dims)}"
        )
    centre = meta["centre"]
    if centre is not None:
        if not is_int(centre) or not 0 <= centre < len(train):
            raise ValueError(
                f"{path}: centre {centre!r} is not a site of a {len(train)}-site train"
            )
        if not train.is_canonical(centre):
            raise ValueError(
                f"{path}: metadata claims centre {centre}, but the cores are not canonical there"
            )
    report = None if meta["report"] is None else _decode_report(meta["report"], path)
    return train._evolve(train.cores, centre, report)


def _decode_core(array: np.ndarray, dtype: str, name: str, path: Path) -> np.ndarray:
    if array.dtype != _STORED[dtype]:
        raise ValueError(
            f"{path}: tensor {name!r} is stored as {array.dtype}, expected {_STORED[dtype]} "
            f"for {dtype} cores"
        )
    if not backend.is_complex(dtype):
        return array
    if array.ndim < 1 or array.shape[-1] != 2:
        raise ValueError(
            f"{path}: tensor {name!r} of a {dtype} train needs a trailing (real, imag) axis "
            f"of 2, got shape {array.shape}"
        )
    return np.ascontiguousarray(array).view(np.dtype(dtype))[..., 0]


def _decode_report(fields: Any, path: Path) -> TruncationReport:
    if not isinstance(fields, dict):
        raise ValueError(f"{path}: report must be a JSON object, got {fields!r}")
    known = {field.name: field for field in dataclasses.fields(TruncationReport)}
    required = {
        name
        for name, field in known.items()
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }
    if not required <= set(fields) <= set(known):
        raise ValueError(
            f"{path}: report fields: missing {sorted(required - set(fields))}, "
            f"unexpected {sorted(set(fields) - set(known))}"
        )
    values = {}
    for name, value in fields.items():
        convert = _FIELD_TYPES.get(str(known[name].type))
        if convert is None:
            raise ValueError(f"{path}: report field {name!r} has a type this reader lacks")
        try:
            values[name] = convert(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: report field {name!r}: bad value {value!r}") from exc
    return TruncationReport(**values)


_JSON_KINDS = {float: (int, float), int: (int,), str: (str,), bool: (bool,)}


def _checked(kind: type) -> Callable[[Any], Any]:
    """A converter from a JSON value to ``kind`` that refuses anything else (bools as ints)."""

    def convert(value: Any) -> Any:
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, _JSON_KINDS[kind]):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    return convert


def _tuple_of(kind: type) -> Callable[[Any], tuple]:
    item = _checked(kind)

    def convert(values: Any) -> tuple:
        if not isinstance(values, list):
            raise TypeError(f"expected a list, got {type(values).__name__}")
        return tuple(item(value) for value in values)

    return convert


_FIELD_TYPES = {
    "float": _checked(float),
    "int": _checked(int),
    "str": _checked(str),
    "bool": _checked(bool),
    "tuple[float, ...]": _tuple_of(float),
    "tuple[int, ...]": _tuple_of(int),
}


def _int_list(value: Any, name: str, path: Path) -> list[int]:
    if not isinstance(value, list) or not all(is_int(v) for v in value):
        raise ValueError(f"{path}: metadata {name} must be a list of ints, got {value!r}")
    return value
