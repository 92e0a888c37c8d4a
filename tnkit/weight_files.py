"""Weight files with MPO-compressed tensors: the safetensors format behind ``tnkit compress``.

Converts whole files and says what it did (``Row``); the bytes are ``codec``'s, and it prints
nothing and parses no arguments (that is ``cli.py``). The format is specified in docs/cli.md.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ._executor import Jobs, check_executor
from ._version import __version__
from .calibration import calibrated_mpo, input_gram
from .codec import (
    FLOAT_CODES,
    RawTensor,
    from_float,
    parse_json,
    read_safetensors,
    to_float,
    write_safetensors,
)
from .mpo import MPO, from_matrix
from .truncation import Truncation

logger = logging.getLogger(__name__)

FORMAT = "tnkit-weights"
FORMAT_VERSION = 1
META_KEY = "tnkit"  # the __metadata__ entry holding the JSON description
_CORE = ".mpo.core_"
_HALF = ("F16", "BF16")
_ENTRY_KEYS = {
    "kind",
    "dtype",
    "shape",
    "matrix_shape",
    "out_dims",
    "in_dims",
    "bond_dims",
    "params_before",
    "params_after",
    "rel_error_bound",
    "rel_error",
    "method",
}
_TOP_KEYS = {"format", "format_version", "tnkit_version", "request", "tensors"}


@dataclass(frozen=True)
class Row:
    """What became of one tensor: converted to an MPO, or kept (``note`` says why)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    converted: bool
    note: str = ""
    out_dims: tuple[int, ...] = ()
    in_dims: tuple[int, ...] = ()
    bond_dims: tuple[int, ...] = ()
    params_before: int = 0
    params_after: int = 0
    rel_error_bound: float | None = None
    rel_error: float | None = None
    candidate: bool = False  # a floating 2-D/4-D tensor that the filters let through
    output_error: float | None = None  # with calibration: relative, on held-out rows


# ---------------------------------------------------------------------- compress


def compress_file(
    source: str | Path,
    target: str | Path,
    *,
    max_bond: int | None = None,
    rtol: float | None = None,
    n_cores: int = 4,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    progress: Callable[[Iterable[str]], Iterable[str]] = iter,
    executor: Any = None,
    calibration: dict[str, Any] | None = None,
) -> list[Row]:
    """Compress every selected 2-D (and 4-D conv) float tensor of ``source`` whose MPO is smaller.

    ``calibration``: activations ``X (n, cols)`` by tensor name (``cols``: the columns of
    the tensor as a matrix); those tensors are fitted to ``X @ W.T`` rather than to ``W``
    (``tnkit.calibration.calibrated_mpo``), a seeded 20% of the rows held out for the rows'
    ``output_error``.

    ``include``/``exclude`` are regular expressions searched in tensor names (a tensor is
    selected when it matches some ``include``, or there are none, and no ``exclude``).
    ``progress`` wraps the iteration (a sized iterable, e.g. for a tqdm bar) that yields the
    names of the candidates (selected 2-D/4-D float tensors) as they are done. ``executor``:
    anything with ``.submit(fn, *args)`` (a ``concurrent.futures`` executor, a
    ``distributed.Client``): each candidate is compressed there, in any order, and the file
    is the one a serial run writes. Returns one ``Row`` per tensor, in file order.

    Example:
        >>> import tempfile
        >>> W = np.ones((16, 16))  # an MPO of bond 1
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     source, target = Path(folder) / "w.safetensors", Path(folder) / "c.safetensors"
        ...     write_safetensors(source, {"w": from_float(W, "F32")}, {})
        ...     rows = compress_file(source, target, n_cores=2)
        ...     back = decompress_file(target, Path(folder) / "d.safetensors")
        >>> rows[0].converted, rows[0].bond_dims, rows[0].params_after
        (True, (1,), 32)
    """
    truncation = Truncation(max_bond=max_bond, rtol=rtol)  # validates before any work
    if isinstance(n_cores, bool) or not isinstance(n_cores, int) or n_cores < 2:
        raise ValueError(f"n_cores: expected an int >= 2, got {n_cores!r}")
    check_executor(executor)
    _check_target(target)
    includes = [_regex(p, "include") for p in include]
    excludes = [_regex(p, "exclude") for p in exclude]
    source = Path(source)
    metadata, tensors = read_safetensors(source)
    if META_KEY in metadata:
        raise ValueError(f"{source}: already compressed by tnkit (decompress it first)")
    stored: dict[str, RawTensor] = {}
    entries: dict[str, dict[str, Any]] = {}
    rows = []
    outcomes: dict[str, tuple[Row, list[RawTensor] | None, dict[str, Any] | None]] = {}
    for name, tensor in tensors.items():
        reason = _not_candidate(tensor, _selected(name, includes, excludes))
        if reason:
            outcomes[name] = _kept(name, tensor, reason)
            _log(outcomes[name][0])
    candidates = [name for name in tensors if name not in outcomes]
    grams = _calibration_grams(calibration, tensors, source)
    jobs = [(name, tensors[name], truncation, n_cores, grams.get(name)) for name in candidates]
    run = Jobs(_compress_one, jobs, executor, candidates)
    for _ in progress(run):  # as the candidates are done, in any order
        _log(run.latest[0])
    outcomes.update(zip(candidates, run.results, strict=True))
    for name in tensors:
        row, cores, entry = outcomes[name]
        rows.append(row)
        if cores is None:
            stored[name] = tensors[name]
        else:
            entries[name] = entry
            stored.update((f"{name}{_CORE}{k}", core) for k, core in enumerate(cores))
    clashes = sorted(
        core
        for name, entry in entries.items()
        for core in core_names(name, entry)
        if core in tensors
    )
    if clashes:
        raise ValueError(f"{source}: MPO core names clash with tensors of the file: {clashes}")
    description = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tnkit_version": __version__,
        "request": {"max_bond": max_bond, "rtol": rtol, "n_cores": n_cores},
        "tensors": entries,
    }
    write_safetensors(target, stored, {**metadata, META_KEY: json.dumps(description)})
    return rows


HELD_OUT = 0.2  # the share of calibration rows held out to measure the output error


def _calibration_grams(calibration: Any, tensors: dict[str, RawTensor], source: Path) -> dict:
    """(fitting, held-out or None) Gram matrices by tensor name, checked against the file."""
    if calibration is None:
        return {}
    unknown = sorted(set(calibration) - set(tensors))
    if unknown:
        raise ValueError(f"calibration: {unknown} are not tensors of {source}")
    grams = {}
    for name, rows in calibration.items():
        cols = math.prod(tensors[name].shape[1:])
        rows = np.asarray(rows)
        input_gram(rows, cols, name=f"calibration {name!r}")  # checks: shape, NaN, rows
        held = np.random.default_rng(0).random(rows.shape[0]) < HELD_OUT
        fit = input_gram(rows[~held], cols) if (~held).any() else input_gram(rows, cols)
        grams[name] = (fit, input_gram(rows[held], cols) if held.any() else None)
    return grams


def _selected(name: str, includes: list[re.Pattern[str]], excludes: list[re.Pattern[str]]) -> bool:
    return (not includes or any(p.search(name) for p in includes)) and not any(
        p.search(name) for p in excludes
    )


def _log(row: Row) -> None:
    """Log what became of a tensor (here, not in ``_compress_one``, which may run elsewhere)."""
    if row.converted:
        logger.info(
            "%s: %s -> MPO bonds %s, %d -> %d params, bound %.3g, error %.3g",
            row.name,
            row.shape,
            row.bond_dims,
            row.params_before,
            row.params_after,
            row.rel_error_bound,
            row.rel_error,
        )
    else:
        logger.info("%s: kept (%s)", row.name, row.note)


def _check_target(target: str | Path) -> None:
    """Fail before the work, not after it, when the output cannot be written."""
    folder = Path(target).resolve().parent
    if not folder.is_dir():
        raise FileNotFoundError(2, "the output folder does not exist", str(folder))
    if Path(target).is_dir():
        raise IsADirectoryError(21, "the output is a folder", str(target))


def _regex(pattern: str, name: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{name}: bad regular expression {pattern!r} ({exc})") from exc


def _not_candidate(tensor: RawTensor, selected: bool) -> str:
    """Why a tensor is copied without an attempt ('' if it is a candidate)."""
    if not selected:
        return "excluded by the filters"
    if tensor.dtype not in FLOAT_CODES:
        return f"dtype {tensor.dtype} is not floating"
    if len(tensor.shape) not in (2, 4):
        return f"{len(tensor.shape)}-D: only 2-D and 4-D are compressed"
    return "empty" if tensor.size == 0 else ""


def _compress_one(
    name: str, tensor: RawTensor, truncation: Truncation, n_cores: int, grams: Any = None
) -> tuple[Row, list[RawTensor] | None, dict[str, Any] | None]:
    """Compress one candidate tensor (a job: may run on an executor's worker); fitted to
    the calibration Gram matrices ``grams`` (fitting, held out) where given."""
    weights = to_float(tensor)
    matrix = weights.reshape(tensor.shape[0], -1)
    if not np.isfinite(matrix).all():
        return _kept(name, tensor, "contains NaN or Inf", candidate=True)
    start = time.perf_counter()
    rule = {"max_bond": truncation.max_bond, "rtol": truncation.rtol}
    output_error = None
    if grams is None:
        mpo = from_matrix(matrix, n_cores, n_cores, **rule)
        report = mpo.report
    else:
        mpo, fitted = calibrated_mpo(matrix, grams[0], n_cores, n_cores, held_out=grams[1], **rule)
        report, output_error = fitted.truncation, fitted.held_out_error
    logger.debug("%s: from_matrix %s in %.3f s", name, matrix.shape, time.perf_counter() - start)
    if mpo.num_params >= tensor.size:
        note = f"MPO not smaller ({mpo.num_params:,} params)"
        return _kept(name, tensor, note, candidate=True)
    cores = _storable_cores(mpo, tensor.dtype)
    if cores is None:
        return _kept(name, tensor, f"cores overflow {tensor.dtype}", candidate=True)
    approx = to_float(dense_tensor(cores, mpo.matrix_shape, tensor.shape, tensor.dtype))
    exact = matrix.astype(np.float64)
    norm = float(np.linalg.norm(exact))
    approx = approx.reshape(matrix.shape).astype(np.float64)
    # The report bounds the float32/64 product; storing cores (and the result) in a narrower
    # dtype adds a rounding error we measure, so the stored bound stays rigorous (triangle).
    rounding = _relative(np.linalg.norm(mpo.to_matrix().astype(np.float64) - approx), norm)
    bound = report.rel_error_bound + rounding
    error = _relative(np.linalg.norm(exact - approx), norm)
    entry = {
        "kind": "mpo",
        "dtype": tensor.dtype,
        "shape": list(tensor.shape),
        "matrix_shape": list(mpo.matrix_shape),
        "out_dims": list(mpo.out_dims),
        "in_dims": list(mpo.in_dims),
        "bond_dims": list(mpo.bond_dims),
        "params_before": tensor.size,
        "params_after": mpo.num_params,
        "rel_error_bound": bound,
        "rel_error": error,
        "method": report.method,
    }
    return replace(entry_row(name, entry), output_error=output_error), cores, entry


def _kept(
    name: str, tensor: RawTensor, note: str, *, candidate: bool = False
) -> tuple[Row, None, None]:
    size = tensor.size
    return (
        Row(
            name,
            tensor.shape,
            tensor.dtype,
            False,
            note,
            params_before=size,
            params_after=size,
            candidate=candidate,
        ),
        None,
        None,
    )


def _relative(error: float, norm: float) -> float:
    if norm > 0:
        return float(error) / norm
    return 0.0 if error == 0 else math.inf


def _storable_cores(mpo: MPO, dtype: str) -> list[RawTensor] | None:
    """Cores cast to ``dtype``; for half dtypes the norm is first spread evenly over the cores.

    A from_matrix MPO is left-canonical (entries ≤ 1) with the whole norm in its last core,
    which float16 cannot hold above 65504: each core times ‖W‖^(1/n) (the last divided by
    the rest) keeps every entry within ‖W‖^(1/n) and leaves the product unchanged.
    """
    cores = list(mpo._folded_cores())
    if dtype in _HALF:
        scale = float(np.linalg.norm(cores[-1]))
        if scale > 0:
            share = scale ** (1.0 / len(cores))
            cores = [c * share for c in cores[:-1]] + [cores[-1] / share ** (len(cores) - 1)]
    stored = [from_float(core, dtype) for core in cores]
    return stored if all(np.isfinite(to_float(c)).all() for c in stored) else None


def dense_tensor(
    cores: list[RawTensor], matrix_shape: tuple[int, int], shape: tuple[int, ...], dtype: str
) -> RawTensor:
    """The dense tensor of stored cores; compress measures and decompress returns exactly this."""
    mpo = MPO([to_float(core) for core in cores], matrix_shape=tuple(matrix_shape))
    return from_float(mpo.to_matrix().reshape(shape), dtype)


# ---------------------------------------------------------------------- read and decompress


def read_compressed(
    path: str | Path,
) -> tuple[dict[str, Any], dict[str, RawTensor], dict[str, str]]:
    """The checked description, the tensors and the other metadata of a compressed file."""
    metadata, tensors = read_safetensors(path)
    return check_compressed(metadata, tensors, Path(path))


def check_compressed(
    metadata: dict[str, str], tensors: dict[str, RawTensor], path: Path
) -> tuple[dict[str, Any], dict[str, RawTensor], dict[str, str]]:
    """Check a compressed file's description against its tensors; split it off the metadata."""
    metadata = dict(metadata)
    if META_KEY not in metadata:
        raise ValueError(f"{path}: not compressed by tnkit (no {META_KEY!r} metadata entry)")
    description = parse_json(metadata.pop(META_KEY), f"metadata {META_KEY!r}", path)
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ValueError(f"{path}: metadata {META_KEY!r} is not a {FORMAT} description")
    if description.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format version {description.get('format_version')!r} is not supported "
            f"(this tnkit reads version {FORMAT_VERSION})"
        )
    if set(description) != _TOP_KEYS or not isinstance(description["tensors"], dict):
        raise ValueError(
            f"{path}: metadata {META_KEY!r} needs exactly the keys {sorted(_TOP_KEYS)}"
        )
    for name, entry in description["tensors"].items():
        _check_entry(name, entry, tensors, path)
    return description, tensors, metadata


def _check_entry(name: str, entry: Any, tensors: dict[str, RawTensor], path: Path) -> None:
    where = f"{path}: tensor {name!r}"
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        raise ValueError(f"{where}: description needs exactly the keys {sorted(_ENTRY_KEYS)}")
    if entry["kind"] != "mpo" or entry["dtype"] not in FLOAT_CODES:
        raise ValueError(f"{where}: unsupported kind {entry['kind']!r} or dtype {entry['dtype']!r}")
    for key in ("shape", "matrix_shape", "out_dims", "in_dims", "bond_dims"):
        value = entry[key]
        if not isinstance(value, list) or not all(_is_count(v) for v in value):
            raise ValueError(f"{where}: {key} must be a list of positive ints, got {value!r}")
    for key in ("params_before", "params_after"):
        if not _is_count(entry[key]):
            raise ValueError(f"{where}: {key} must be a positive int, got {entry[key]!r}")
    for key in ("rel_error_bound", "rel_error"):
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{where}: {key} must be a number >= 0, got {value!r}")
    shape, (rows, cols) = entry["shape"], _pair(entry["matrix_shape"], where)
    out_dims, in_dims, bonds = entry["out_dims"], entry["in_dims"], [1, *entry["bond_dims"], 1]
    if (
        len(shape) not in (2, 4)
        or (shape[0], math.prod(shape[1:])) != (rows, cols)
        or len(out_dims) != len(in_dims)
        or len(bonds) != len(out_dims) + 1
    ):
        raise ValueError(
            f"{where}: shape {shape}, matrix_shape {entry['matrix_shape']}, dims "
            f"{out_dims} x {in_dims} and bond_dims {entry['bond_dims']} do not fit together"
        )
    if name in tensors:
        raise ValueError(f"{where}: described as compressed but also stored dense")
    for k, (d_out, d_in) in enumerate(zip(out_dims, in_dims, strict=True)):
        core = tensors.get(f"{name}{_CORE}{k}")
        expected = (bonds[k], d_out, d_in, bonds[k + 1])
        if core is None or core.dtype != entry["dtype"] or core.shape != expected:
            found = None if core is None else (core.dtype, core.shape)
            raise ValueError(
                f"{where}: core {k} should be {entry['dtype']} of shape {expected}, found {found}"
            )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _pair(value: list[int], where: str) -> tuple[int, int]:
    if len(value) != 2:
        raise ValueError(f"{where}: matrix_shape must have 2 entries, got {value}")
    return value[0], value[1]


def entry_row(name: str, entry: dict[str, Any]) -> Row:
    """The ``Row`` of a compressed tensor, from its (checked) description."""
    return Row(
        name,
        tuple(entry["shape"]),
        entry["dtype"],
        True,
        out_dims=tuple(entry["out_dims"]),
        in_dims=tuple(entry["in_dims"]),
        bond_dims=tuple(entry["bond_dims"]),
        params_before=entry["params_before"],
        params_after=entry["params_after"],
        rel_error_bound=entry["rel_error_bound"],
        rel_error=entry["rel_error"],
        candidate=True,
    )


def core_names(name: str, entry: dict[str, Any]) -> list[str]:
    """Names of the stored cores of the compressed tensor ``name``.

    Example:
        >>> core_names("fc.weight", {"out_dims": [4, 4]})
        ['fc.weight.mpo.core_0', 'fc.weight.mpo.core_1']
    """
    return [f"{name}{_CORE}{k}" for k in range(len(entry["out_dims"]))]


def decompress_file(source: str | Path, target: str | Path) -> list[Row]:
    """Write the dense tensors of a compressed file (names, shapes, dtypes of the original).

    Returns one ``Row`` per MPO made dense; see ``compress_file`` for an example.
    """
    _check_target(target)
    description, tensors, metadata = read_compressed(source)
    entries = description["tensors"]
    dense = dict(tensors)
    rows = []
    for name, entry in entries.items():
        cores = [dense.pop(core) for core in core_names(name, entry)]
        try:
            dense[name] = dense_tensor(
                cores, entry["matrix_shape"], tuple(entry["shape"]), entry["dtype"]
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: tensor {name!r}: invalid cores: {exc}") from exc
        rows.append(entry_row(name, entry))
        logger.info("%s: %d cores -> %s %s", name, len(cores), entry["dtype"], entry["shape"])
    write_safetensors(target, dense, metadata)
    return rows
