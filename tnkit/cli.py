"""The ``tnkit`` command: compress, inspect and decompress weight files; run the bench and demo.

Argument parsing, progress, tables and exit codes only: the file format and the conversions
live in ``tnkit.weight_files``. tqdm and rich are optional and imported lazily (plain text without),
as is dask.distributed (only ``compress --scheduler`` needs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence, Sized
from pathlib import Path
from typing import Any

import numpy as np

from . import codec, weight_files
from .mpo import MPO
from .storage import load
from .truncation import TruncationReport

__all__ = ["main"]

EXIT_USAGE = 2  # every error: bad arguments, unreadable or foreign files (argparse's status)
REPO_ROOT = Path(__file__).resolve().parent.parent
_LOG_FORMAT = "tnkit: %(message)s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tnkit`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Every error is one line ``tnkit: error: ...`` on stderr and status 2 (``--debug`` adds
    the traceback).

    Example:
        >>> import os, tempfile, tnkit as tn
        >>> o = tn.MPO.random([2, 2], [3, 3], 2, seed=0)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     tn.save(os.path.join(folder, "op.npz"), o)
        ...     status = main(["info", os.path.join(folder, "op.npz")])  # doctest: +ELLIPSIS
        tensor  kind  shape  dtype    dims       bonds  params  ratio  bound
        ------  ----  -----  -------  ---------  -----  ------  -----  -----
        op      MPO   4x9    float64  2,2 x 3,3  2      24      1.5x   -
        1 MPO; params 24 (dense 36); file ...
        >>> status
        0
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    _configure_logging(args.verbose)
    try:
        return args.command(args)
    except KeyboardInterrupt:
        print("tnkit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        expected = isinstance(exc, (ValueError, TypeError, OSError, KeyError, MemoryError))
        return _fail(_describe(exc) + ("" if expected or args.debug else " (--debug: traceback)"))


# ---------------------------------------------------------------------- arguments


class _UsageError(Exception):
    """An argparse complaint, turned into one line by ``main`` instead of usage and exit."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse prints usage and exits; we want one line
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log each tensor (-vv: debug)",
    )
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors"
    )
    parser = _Parser(
        prog="tnkit",
        description="Tensor-train tools: MPO compression of weight files, inspection, benchmarks.",
        parents=[common],
    )
    parser.set_defaults(verbose=0, debug=False)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    compress = commands.add_parser(
        "compress",
        parents=[common],
        help="store 2-D/4-D weights of a safetensors file as MPO cores",
        description="Store each 2-D weight (and 4-D conv kernel, as (out, in*kh*kw)) of a "
        "safetensors file as MPO cores where that takes fewer parameters; copy the rest. "
        "--scheduler spreads the tensors over a Dask cluster.",
    )
    compress.add_argument("input", type=Path, metavar="IN.safetensors")
    compress.add_argument("output", type=_safetensors_path, metavar="OUT.safetensors")
    rule = compress.add_mutually_exclusive_group()
    rule.add_argument(
        "--rtol",
        type=_non_negative_float,
        help="relative Frobenius error per tensor (default: exact; zero singular values go)",
    )
    rule.add_argument(
        "--max-bond", type=_int_at_least(1), metavar="D", help="cap on every bond dimension"
    )
    compress.add_argument(
        "--n-cores",
        type=_int_at_least(2),
        default=4,
        metavar="N",
        help="cores per MPO (default 4, >= 2)",
    )
    for flag, says in (("--include", "only names matching"), ("--exclude", "skip names matching")):
        compress.add_argument(
            flag,
            action="append",
            type=_regex,
            default=[],
            metavar="REGEX",
            help=f"{says} (repeatable)",
        )
    compress.add_argument(
        "--calibration",
        type=Path,
        metavar="FILE",
        help="a .safetensors or .npz file of activations, one (n, in) array per weight name: "
        "those weights are fitted to their outputs on these rows, not to their entries",
    )
    compress.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="compress the tensors in parallel on a Dask cluster, given its scheduler's "
        "address (tcp://HOST:PORT); needs dask.distributed here and tnkit on the workers; "
        "the output is the same as without",
    )
    compress.set_defaults(command=_compress)

    info = commands.add_parser(
        "info",
        parents=[common],
        help="list the tensors of a compressed file, a tn.save file or a safetensors file",
    )
    info.add_argument("file", type=Path, metavar="FILE")
    info.set_defaults(command=_info)

    decompress = commands.add_parser(
        "decompress", parents=[common], help="dense weights back from a compressed file"
    )
    decompress.add_argument("input", type=Path, metavar="IN.safetensors")
    decompress.add_argument("output", type=_safetensors_path, metavar="OUT.safetensors")
    decompress.set_defaults(command=_decompress)

    bench = commands.add_parser(
        "bench", parents=[common], help="run the benchmark suite (source checkout only)"
    )
    bench.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    bench.set_defaults(command=_bench)

    demo = commands.add_parser(
        "demo", parents=[common], help="run examples/demo.py (source checkout only)"
    )
    demo.set_defaults(command=_demo)
    return parser


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r} ({exc})") from None
    return text


def _safetensors_path(text: str) -> Path:
    if not text.lower().endswith(".safetensors"):
        raise argparse.ArgumentTypeError(f"{text!r} must end in .safetensors")
    return Path(text)


# ---------------------------------------------------------------------- commands


def _compress(args: argparse.Namespace) -> int:
    calibration = None if args.calibration is None else _read_calibration(args.calibration)
    client = None if args.scheduler is None else _connect(args.scheduler)
    try:
        with _progress("compress") as progress:
            rows = weight_files.compress_file(
                args.input,
                args.output,
                max_bond=args.max_bond,
                rtol=args.rtol,
                n_cores=args.n_cores,
                include=args.include,
                exclude=args.exclude,
                progress=progress,
                executor=client,
                calibration=calibration,
            )
    finally:
        if client is not None:
            client.close()
    shown = [row for row in rows if row.candidate]
    table = [
        [
            row.name,
            _shape(row.shape),
            _dims(row),
            _ints(row.bond_dims),
            f"{row.params_before:,}",
            f"{row.params_after:,}",
            _number(row.rel_error_bound),
            _number(row.rel_error),
            "mpo" if row.converted else f"kept: {row.note}",
        ]
        for row in shown
    ]
    header = ["tensor", "shape", "dims", "bonds", "before", "after", "bound", "error", "result"]
    if calibration is not None:  # the held-out output error beside the weight error
        header.insert(8, "out error")
        for line, row in zip(table, shown, strict=True):
            line.insert(8, _number(row.output_error))
    _print_table(f"{args.input} -> {args.output}", header, table)
    before = sum(row.params_before for row in rows)
    after = sum(row.params_after for row in rows)
    others = len(rows) - len(shown)
    print(
        f"{sum(row.converted for row in rows)} of {len(rows)} tensors as MPOs"
        + (f" ({others} other tensors copied unchanged)" if others else "")
        + f"; params {before:,} -> {after:,} ({_ratio(before, after)}); "
        f"file {_bytes(args.input)} -> {_bytes(args.output)}"
    )
    return 0


def _read_calibration(path: Path) -> dict[str, Any]:
    """The activations of ``--calibration``: arrays by weight name, from a .safetensors or an
    .npz file (read without pickle)."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        _, tensors = codec.read_safetensors(path)
        wrong = sorted(n for n, t in tensors.items() if t.dtype not in codec.FLOAT_CODES)
        if wrong:
            raise ValueError(f"--calibration {path}: tensors {wrong} are not floating point")
        return {name: codec.to_float(tensor) for name, tensor in tensors.items()}
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return {name: arrays[name] for name in arrays.files}
        except ValueError as exc:  # object arrays, which need pickle
            raise ValueError(f"--calibration {path}: {exc}") from exc
    raise ValueError(f"--calibration {path}: expected a .safetensors or .npz file")


SCHEDULER_TIMEOUT_S = 10.0  # how long --scheduler waits for the scheduler to answer


def _connect(address: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``; errors name ``--scheduler``."""
    try:
        from distributed import Client
        from distributed.comm import get_address_host_port
    except ImportError as exc:
        raise ValueError(
            f"--scheduler needs dask.distributed ({exc}): pip install 'tnkit[dask]'"
        ) from exc
    try:  # first: a Client given a malformed address hangs (2 timeouts) when collected
        get_address_host_port(address)
    except ValueError as exc:
        raise ValueError(f"--scheduler {address!r}: not a scheduler address ({exc})") from exc
    try:
        return Client(address, timeout=SCHEDULER_TIMEOUT_S, set_as_default=False)
    except Exception as exc:  # OSError when nobody answers, ValueError/TypeError for bad ones
        raise ValueError(f"--scheduler {address}: cannot connect ({_describe(exc)})") from exc


def _decompress(args: argparse.Namespace) -> int:
    rows = weight_files.decompress_file(args.input, args.output)
    print(f"{len(rows)} MPO tensors made dense; wrote {args.output} ({_bytes(args.output)})")
    return 0


def _info(args: argparse.Namespace) -> int:
    path: Path = args.file
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".npz"):
        raise ValueError(f"{path}: expected a .safetensors or .npz file")
    metadata: dict[str, str] = {}
    if suffix == ".safetensors":
        metadata, tensors = codec.read_safetensors(path)
    if suffix == ".npz" or {"format", "class"} <= set(metadata):
        return _info_saved(path)
    if weight_files.META_KEY in metadata:
        description, tensors, _ = weight_files.check_compressed(metadata, tensors, path)
        entries = description["tensors"]
    else:
        entries = {}
    rows, before, after = [], 0, 0
    hidden = {
        core for name, entry in entries.items() for core in weight_files.core_names(name, entry)
    }
    for name, entry in entries.items():
        row = weight_files.entry_row(name, entry)
        rows.append(
            [name, "mpo", _shape(row.shape), row.dtype, _dims(row), _ints(row.bond_dims)]
            + [f"{row.params_after:,}", _ratio(row.params_before, row.params_after)]
            + [_number(row.rel_error_bound), _number(row.rel_error)]
        )
        before, after = before + row.params_before, after + row.params_after
    for name, tensor in tensors.items():
        if name not in hidden:
            rows.append(
                [name, "dense", _shape(tensor.shape), tensor.dtype, "-", "-", f"{tensor.size:,}"]
                + ["1x", "-", "-"]
            )
            before, after = before + tensor.size, after + tensor.size
    _print_table(str(path), [*_INFO_HEADER, "error"], sorted(rows))
    print(
        f"{len(entries)} MPO and {len(rows) - len(entries)} dense tensors; params {after:,} "
        f"(dense {before:,}, {_ratio(before, after)}); file {_bytes(path)}"
    )
    return 0


_INFO_HEADER = ["tensor", "kind", "shape", "dtype", "dims", "bonds", "params", "ratio", "bound"]


def _info_saved(path: Path) -> int:
    """``info`` of a file written by ``tn.save``: one train, or one report."""
    obj = load(path)
    if isinstance(obj, TruncationReport):
        _print_table(str(path), ["field", "value"], [[k, str(v)] for k, v in vars(obj).items()])
        return 0
    kind = type(obj).__name__
    if isinstance(obj, MPO):
        shape, dims = obj.matrix_shape, f"{_ints(obj.out_dims)} x {_ints(obj.in_dims)}"
    else:
        shape, dims = obj.phys_dims, _ints(obj.phys_dims)
    dense = math.prod(shape)
    bound = None if obj.report is None else obj.report.rel_error_bound
    row = [
        path.stem,
        kind,
        _shape(shape),
        str(obj.dtype),
        dims,
        _ints(obj.bond_dims),
        f"{obj.num_params:,}",
        _ratio(dense, obj.num_params),
        _number(bound),
    ]
    _print_table(str(path), _INFO_HEADER, [row])
    print(f"1 {kind}; params {obj.num_params:,} (dense {dense:,}); file {_bytes(path)}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    return _run_script("benchmarks/run.py", ["--quick"] if args.quick else [])


def _demo(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("sklearn") is None:
        raise ValueError("the demo needs scikit-learn: pip install 'tnkit[demo]'")
    return _run_script("examples/demo.py", [])


def _run_script(relative: str, arguments: list[str]) -> int:
    """Run a script of the source checkout that holds this tnkit with this interpreter."""
    script = REPO_ROOT / relative
    pyproject = REPO_ROOT / "pyproject.toml"
    if (
        not script.is_file()
        or not pyproject.is_file()
        or 'name = "tnkit"' not in pyproject.read_text()
    ):
        raise ValueError(
            f"{relative} is part of the tnkit source repository, not of an installed tnkit "
            f"(looked in {REPO_ROOT}); run it from a clone: pip install -e . && tnkit ..."
        )
    logging.getLogger(__name__).info("running %s %s", script, " ".join(arguments))
    return subprocess.run([sys.executable, str(script), *arguments], cwd=REPO_ROOT).returncode


# ---------------------------------------------------------------------- output


def _fail(message: str) -> int:
    print(f"tnkit: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    text = str(exc)
    return (
        text
        if isinstance(exc, (ValueError, TypeError)) and text
        else f"{type(exc).__name__}: {text}"
    )


_handler: logging.Handler | None = None


def _configure_logging(verbosity: int) -> None:
    """One stderr handler on the ``tnkit`` logger (replaced on each call, e.g. in tests)."""
    global _handler
    logger = logging.getLogger("tnkit")
    if _handler is not None:
        logger.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    logger.addHandler(_handler)
    logger.setLevel(
        logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    )


class _progress:
    """A tqdm bar on stderr over the tensors (only on a terminal; nothing without tqdm)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.redirect: Any = None

    def __enter__(self) -> Callable[[Iterable[str]], Iterable[str]]:
        if importlib.util.find_spec("tqdm") is None:
            return iter
        from tqdm.contrib.logging import logging_redirect_tqdm

        self.redirect = logging_redirect_tqdm(loggers=[logging.getLogger("tnkit")])
        self.redirect.__enter__()
        return self.wrap

    def wrap(self, names: Iterable[str]) -> Iterable[str]:
        from tqdm import tqdm

        names = names if isinstance(names, Sized) else list(names)  # sized: a total, lazily
        with tqdm(names, desc=self.what, unit="tensor", file=sys.stderr, disable=None) as bar:
            for name in bar:
                bar.set_postfix_str(name, refresh=False)
                yield name

    def __exit__(self, *exc: object) -> None:
        if self.redirect is not None:
            self.redirect.__exit__(*exc)


def _rich() -> Any:
    """The rich module when installed and stdout is a terminal; else None (plain text)."""
    if not sys.stdout.isatty() or importlib.util.find_spec("rich") is None:
        return None
    import rich

    return rich


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    rich = _rich()
    if rich is not None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for k, column in enumerate(header):
            numeric = k > 0 and any(_is_numeric(row[k]) for row in rows)
            table.add_column(column, justify="right" if numeric else "left", no_wrap=k == 0)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _is_numeric(cell: str) -> bool:
    return cell[:1].isdigit()


def _shape(shape: Sequence[Any]) -> str:
    return "x".join(str(s) for s in shape) if shape else "scalar"


def _ints(values: Sequence[Any]) -> str:
    return ",".join(str(v) for v in values) if values else "-"


def _dims(row: weight_files.Row) -> str:
    return f"{_ints(row.out_dims)} x {_ints(row.in_dims)}" if row.out_dims else "-"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _ratio(before: int, after: int) -> str:
    return f"{before / after:.3g}x" if after else "-"


def _bytes(path: str | os.PathLike) -> str:
    size = os.stat(path).st_size
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"
