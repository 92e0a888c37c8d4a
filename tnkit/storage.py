"""save/load of MPS, MPO and TruncationReport: what their .safetensors and .npz files hold.

The bytes (headers, sizes, atomic writes) are ``codec``'s; this module never trusts a file:
metadata is checked key by key and cores go through the normal constructors.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import _backend as backend
from . import codec
from ._checks import is_int
from ._version import __version__
from .mpo import MPO
from .mps import MPS
from .sectors import site_flows, unpack_blocks
from .symmetry import Charges
from .truncation import TruncationReport

__all__ = ["save", "load"]

FORMAT_VERSION = 1
# Files that hold only the charge blocks of a charged train (a layout older readers lack).
BLOCKS_FORMAT_VERSION = 2
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
_SAFETENSORS_DTYPES = {code: codec.FLOAT_CODES[code] for code in ("F32", "F64")}
_SAFETENSORS_CODES = {dtype: code for code, dtype in _SAFETENSORS_DTYPES.items()}
_TRAIN_KEYS = {"layout", "n_cores", "dims", "bond_dims", "centre", "dtype", "report"}
_COMMON_KEYS = {"format", "format_version", "class", "tnkit_version"}


def save(path: str | os.PathLike, obj: MPS | MPO | TruncationReport) -> None:
    """Write an MPS, MPO or TruncationReport to ``path`` (``.safetensors`` or ``.npz``).

    A train's ``centre``, ``report`` and exact scale ``scale_exponent`` (and an MPO's
    ``matrix_shape``, a charged train's ``charges``) are saved with it. A charged train
    whose cores are block-sparse in its charges is written as its charge blocks only
    (format version 2; docs: Saving and loading).
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
    codec.write_atomic(path, lambda handle: writer(handle, tensors, meta))


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
    if train.scale_exponent:  # files of ordinary trains stay as they were
        meta["scale_exponent"] = train.scale_exponent
    if train.charges is not None:  # likewise only in files of trains that declare them
        meta["charges"] = [q.to_json() for q in train.charges]
    held = train._charge_blocks()  # None without charges, or where the cores mix them
    tensors = {}
    if held is not None:  # only the entries that conserve charge are written
        meta["blocks"] = True
        meta["format_version"] = BLOCKS_FORMAT_VERSION
        cores = held.values
        tensors = {f"bond_charges_{k}": b.astype(_STORED[dtype]) for k, b in enumerate(held.bonds)}
    else:
        cores = [backend.to_numpy(core) for core in train.cores]
    for k, core in enumerate(cores):
        tensors[f"core_{k}"] = codec.real_pairs(core).astype(_STORED[dtype], copy=False)
    return meta, tensors


def _encode_report(report: TruncationReport) -> dict[str, Any]:
    return {
        field.name: list(value) if isinstance(value, tuple) else value
        for field in dataclasses.fields(report)
        for value in [getattr(report, field.name)]
    }


def _write_safetensors(handle: IO[bytes], tensors: dict, meta: dict) -> None:
    """Cores as F32/F64 tensors; each metadata value JSON-encoded in ``__metadata__``."""
    raw = {
        name: codec.from_float(array, _SAFETENSORS_CODES[array.dtype])
        for name, array in tensors.items()
    }
    codec.serialize_safetensors(
        handle, raw, {key: json.dumps(value) for key, value in meta.items()}
    )


def _write_npz(handle: IO[bytes], tensors: dict, meta: dict) -> None:
    codec.write_npz(handle, tensors, meta, meta_name=_META_NAME)


_WRITERS: dict[str, Callable[[IO[bytes], dict, dict], None]] = {
    ".safetensors": _write_safetensors,
    ".npz": _write_npz,
}


# ---------------------------------------------------------------------- reading


def _read_safetensors(handle: IO[bytes], size: int, path: Path) -> tuple[dict, dict]:
    """Check the header's declared tensors against the file size, then read them."""
    header = codec.read_header(handle, size, path)
    strings = header.pop("__metadata__", None)
    if not codec.is_string_map(strings):
        raise ValueError(f"{path}: not a tnkit file (no string-to-string __metadata__)")
    meta = {
        key: codec.parse_json(value, f"metadata {key!r}", path) for key, value in strings.items()
    }
    codec.check_layout(header, size - handle.tell(), path, _SAFETENSORS_DTYPES)
    handle.seek(0)
    tensors = codec.read_tensors(handle.read(), header, path)
    return meta, {name: codec.to_float(tensor) for name, tensor in tensors.items()}


def _read_npz(handle: IO[bytes], size: int, path: Path) -> tuple[dict, dict]:
    """Check every member's .npy header (no object dtype, size matches), then np.load."""
    return codec.read_npz(handle, size, path, meta_name=_META_NAME, dtypes=_STORED.values())


_READERS = {".safetensors": _read_safetensors, ".npz": _read_npz}


# ---------------------------------------------------------------------- decoding


def _decode(meta: Any, tensors: dict, path: Path, like: Any) -> Any:
    if not isinstance(meta, dict) or meta.get("format") != _MARKER:
        raise ValueError(f"{path}: not a tnkit file (metadata has no format marker 'tnkit')")
    version = meta.get("format_version")
    if version not in (FORMAT_VERSION, BLOCKS_FORMAT_VERSION) or isinstance(version, bool):
        raise ValueError(
            f"{path}: format version {version!r} is not supported (this tnkit reads "
            f"versions {FORMAT_VERSION} and {BLOCKS_FORMAT_VERSION})"
        )
    if ("blocks" in meta) != (version == BLOCKS_FORMAT_VERSION):
        found = "has" if "blocks" in meta else "lacks"
        holds = "hold" if version == BLOCKS_FORMAT_VERSION else "do not hold"
        raise ValueError(
            f"{path}: format version {version} files {holds} charge blocks, but the metadata "
            f"{found} the key 'blocks'"
        )
    cls_name = meta.get("class")
    if cls_name not in _CLASSES:
        raise ValueError(f"{path}: unknown class {cls_name!r}; expected one of {_CLASSES}")
    expected = _COMMON_KEYS | ({"report"} if cls_name == "TruncationReport" else _TRAIN_KEYS)
    if cls_name == "MPO":
        expected = expected | {"matrix_shape"}
    for optional in ("scale_exponent", "charges", "blocks"):  # only in files that have one
        if cls_name != "TruncationReport" and optional in meta:
            expected = expected | {optional}
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
    blocks = meta.get("blocks", False)
    if blocks is not True and "blocks" in meta:
        raise ValueError(f"{path}: metadata blocks must be true, got {blocks!r}")
    expected = n_cores * (2 if blocks else 1) + (1 if blocks else 0)
    names = [f"core_{k}" for k in range(min(n_cores, len(tensors)))]  # n_cores may be absurd
    if blocks:
        names += [f"bond_charges_{k}" for k in range(min(n_cores + 1, len(tensors)))]
    missing = [name for name in names if name not in tensors]
    extra = sorted(set(tensors) - set(names))
    if expected != len(tensors) or missing or extra:
        raise ValueError(
            f"{path}: n_cores is {n_cores} but the file holds {len(tensors)} tensors: "
            f"missing {missing}, unexpected {extra}"
        )
    cores = tuple(
        _decode_core(tensors[f"core_{k}"], dtype, f"core_{k}", path) for k in range(n_cores)
    )
    if blocks:
        cores = _scatter_blocks(cls, meta, cores, tensors, path)
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
    exponent = meta.get("scale_exponent", 0)
    if not is_int(exponent):
        raise ValueError(f"{path}: scale_exponent must be an int, got {exponent!r}")
    if "charges" in meta:
        train = _decode_charges(train, meta["charges"], path)
    return train._with_cores(train._stored(), centre, report, int(exponent))


def _scatter_blocks(cls: type, meta: dict, values: tuple, tensors: dict, path: Path) -> tuple:
    """The dense cores of a file that holds only the entries conserving charge: each core's
    stored values go to the entries its bonds' channel charges allow, zeros elsewhere."""
    if "charges" not in meta:
        raise ValueError(f"{path}: a file of charge blocks must declare the charges")
    charges = _stored_charges(meta["charges"], path)
    if len(charges) != len(values):
        raise ValueError(f"{path}: {len(charges)} sites of charges for {len(values)} cores")
    group = charges[0]
    bonds = [
        _bond_charges(tensors[f"bond_charges_{k}"], group, path) for k in range(len(values) + 1)
    ]
    try:
        return tuple(unpack_blocks(values, bonds, site_flows(charges, operator=cls is MPO), group))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _bond_charges(array: np.ndarray, group: Charges, path: Path) -> np.ndarray:
    """A bond's channel charges, stored as floats: whole numbers, one column per component."""
    ints = array.astype(np.int64) if np.all(np.isfinite(array)) else None
    if (
        array.ndim != 2
        or array.shape[1] != len(group.moduli)
        or ints is None
        or np.any(ints != array)
    ):
        raise ValueError(
            f"{path}: bond charges must be whole numbers of shape (channels, "
            f"{len(group.moduli)}), got {array.shape}"
        )
    return ints


def _decode_charges(train: Any, stored: Any, path: Path) -> Any:
    """The train with the charges a file declares (checked like any user's charges)."""
    try:
        return train.with_charges(_stored_charges(stored, path), site=None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid charges in the metadata: {exc}") from exc


def _stored_charges(stored: Any, path: Path) -> tuple[Charges, ...]:
    """The per-site charges of a file's metadata."""
    try:
        return tuple(Charges.from_json(q) for q in stored)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: invalid charges in the metadata: {exc}") from exc


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
    return codec.from_real_pairs(array, dtype)


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
