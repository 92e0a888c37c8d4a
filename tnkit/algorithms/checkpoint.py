"""Checkpoints of long runs: the states found so far, the state being swept, and the sweep
log, written atomically to one safetensors file after every sweep, and read back to resume.
States that declare charges keep them, and are written as their charge blocks only.

Only files; what a run does with them is the algorithm's. Written through the one codec.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _backend as backend
from .. import codec
from ..mps import MPS
from ..sectors import site_flows, unpack_blocks
from ..symmetry import Charges

__all__ = ["Checkpoint", "read_checkpoint", "write_checkpoint"]

FORMAT = "tnkit.checkpoint"
_CODES = {"float32": "F32", "float64": "F64", "complex64": "F32", "complex128": "F64"}


@dataclass(frozen=True)
class Checkpoint:
    """A run as it stood after a sweep: ``done`` states, the ``current`` one (None between
    two states), its index, where its sweeps stood (``position``: last sweep, energy, and
    whatever else the algorithm needs to go on exactly; None between states), the sweep log
    (as dicts), and the request the run was started with (to refuse a mismatched resume)."""

    done: tuple[MPS, ...]
    current: MPS | None
    state: int
    position: dict | None
    log: tuple[dict, ...]
    request: dict


def write_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a killed run leaves the previous file).

    Example:
        >>> import tempfile, tnkit as tn
        >>> m = tn.MPS.random([2] * 4, 2, seed=0).canonicalize(0)
        >>> point = Checkpoint((), m, 0, {"sweep": 3, "energy": -1.5}, (), {"max_bond": 2})
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write_checkpoint(f"{folder}/run.safetensors", point)
        ...     back = read_checkpoint(f"{folder}/run.safetensors")
        >>> back.position, back.current.bond_dims == m.bond_dims
        ({'sweep': 3, 'energy': -1.5}, True)
    """
    trains = [*checkpoint.done, *([checkpoint.current] if checkpoint.current is not None else [])]
    tensors, layout = {}, []
    for k, train in enumerate(trains):
        dtype = backend.dtype_name(train.dtype)
        entry = {"dtype": dtype, "n_cores": len(train), "exponent": train.scale_exponent}
        held = train._charge_blocks()
        if train.charges is not None:  # kept, so that a resumed run stays on its sector
            entry["charges"] = [q.to_json() for q in train.charges]
        if held is not None:  # only the charge blocks are written
            entry["bonds"] = [b.tolist() for b in held.bonds]
        cores = held.values if held is not None else [backend.to_numpy(c) for c in train.cores]
        layout.append(entry)
        for site, core in enumerate(cores):
            pairs = codec.real_pairs(core)
            tensors[f"state_{k}_core_{site}"] = codec.from_float(pairs, _CODES[dtype])
    meta = {
        "format": FORMAT,
        "trains": layout,
        "has_current": checkpoint.current is not None,
        "state": checkpoint.state,
        "position": checkpoint.position,
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
            cores.append(array)
        charges = None
        if "charges" in layout:
            charges = tuple(Charges.from_json(q) for q in layout["charges"])
        if "bonds" in layout:
            flows = site_flows(charges, operator=False)
            bonds = [np.array(b, dtype=np.int64).reshape(len(b), -1) for b in layout["bonds"]]
            cores = unpack_blocks(cores, bonds, flows, charges[0])
        cores = tuple(backend.from_numpy(np.ascontiguousarray(c), like) for c in cores)
        trains.append(MPS._trusted(cores, 0, None, layout["exponent"], _charges=charges))
    current = trains.pop() if meta["has_current"] else None
    return Checkpoint(
        done=tuple(trains),
        current=current,
        state=meta["state"],
        position=meta["position"],
        log=tuple(meta["log"]),
        request=meta["request"],
    )
