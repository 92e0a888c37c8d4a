"""Checkpoints of long runs: the states found so far, the state being swept, and the sweep
log, written atomically to one safetensors file after every sweep, and read back to resume.

Only files; what a run does with them is the algorithm's. Written through the one codec.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _backend as backend
from .. import codec
from ..mps import MPS

__all__ = ["Checkpoint", "read_checkpoint", "write_checkpoint"]

FORMAT = "tnkit.checkpoint"
_CODES = {"float32": "F32", "float64": "F64", "complex64": "F32", "complex128": "F64"}


@dataclass(frozen=True)
class Checkpoint:
    """A run as it stood after a sweep: ``done`` states, the ``current`` one (None when the
    last state had just finished), its index and last sweep, its energy, the sweep log (as
    dicts), and the request the run was started with (to refuse a mismatched resume)."""

    done: tuple[MPS, ...]
    current: MPS | None
    state: int
    sweep: int
    energy: float
    log: tuple[dict, ...]
    request: dict


def write_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a killed run leaves the previous file).

    Example:
        >>> import tempfile, tnkit as tn
        >>> m = tn.MPS.random([2] * 4, 2, seed=0).canonicalize(0)
        >>> point = Checkpoint((), m, 0, 3, -1.5, (), {"max_bond": 2})
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write_checkpoint(f"{folder}/run.safetensors", point)
        ...     back = read_checkpoint(f"{folder}/run.safetensors")
        >>> back.sweep, back.energy, back.current.bond_dims == m.bond_dims
        (3, -1.5, True)
    """
    trains = [*checkpoint.done, *([checkpoint.current] if checkpoint.current is not None else [])]
    tensors, layout = {}, []
    for k, train in enumerate(trains):
        dtype = backend.dtype_name(train.dtype)
        layout.append({"dtype": dtype, "n_cores": len(train), "exponent": train.scale_exponent})
        for site, core in enumerate(train.cores):
            pairs = codec.real_pairs(backend.to_numpy(core))
            tensors[f"state_{k}_core_{site}"] = codec.from_float(pairs, _CODES[dtype])
    meta = {
        "format": FORMAT,
        "trains": layout,
        "has_current": checkpoint.current is not None,
        "state": checkpoint.state,
        "sweep": checkpoint.sweep,
        "energy": checkpoint.energy,
        "log": list(checkpoint.log),
        "request": checkpoint.request,
    }
    codec.write_safetensors(Path(path), tensors, {"tnkit": json.dumps(meta)})


def read_checkpoint(path: str | os.PathLike, *, like: Any = None) -> Checkpoint:
    """The checkpoint in ``path`` (cores on ``like``'s library and device; NumPy when None)."""
    path = Path(path)
    metadata, tensors = codec.read_safetensors(path)
    meta = codec.parse_json(metadata.get("tnkit", "null"), "checkpoint metadata", path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tnkit checkpoint")
    trains = []
    for k, layout in enumerate(meta["trains"]):
        cores = []
        for site in range(layout["n_cores"]):
            array = codec.to_float(tensors[f"state_{k}_core_{site}"])
            if layout["dtype"].startswith("complex"):
                array = codec.from_real_pairs(array, layout["dtype"])
            cores.append(backend.from_numpy(np.ascontiguousarray(array), like))
        trains.append(MPS._trusted(tuple(cores), 0, None, layout["exponent"]))
    current = trains.pop() if meta["has_current"] else None
    return Checkpoint(
        done=tuple(trains),
        current=current,
        state=meta["state"],
        sweep=meta["sweep"],
        energy=meta["energy"],
        log=tuple(meta["log"]),
        request=meta["request"],
    )


def as_dict(record: Any) -> dict:
    """A sweep record as a JSON-ready dict."""
    return dataclasses.asdict(record)
