"""Block-sparse arrays as flat vectors (for the Krylov solvers): the layout of every
block a set of legs allows for a given charge, and the maps between arrays and vectors in
it. Plain NumPy on symmray's block dictionaries; no contraction happens here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import symmray as sr

from .block_groups import moduli

__all__ = ["Layout", "dense_positions", "densify", "flat", "layout", "unflat"]


@dataclass(frozen=True)
class Layout:
    """Where each block of a block-sparse array sits in its flat vector (for Lanczos)."""

    indices: tuple
    charge: Any
    symmetry: Any
    sectors: tuple
    shapes: tuple
    offsets: tuple
    size: int


def layout(indices: Sequence[sr.BlockIndex], like: Any) -> Layout:
    """The flat layout of every block over ``indices`` that carries the charge of ``like``
    (present in an array or not), so that vectors on the same legs line up entry by entry;
    charge and symmetry from ``like``. The candidates are enumerated as arrays: the last
    leg's charge is what conservation leaves for each combination of the others."""
    maps = [index.chargemap for index in indices]
    signs = np.array([-1 if index.dual else 1 for index in indices], dtype=np.int64)
    modulus = moduli(like)
    keys = [sorted(m) for m in maps]
    grids = [
        np.array([k if isinstance(k, tuple) else (k,) for k in leg], dtype=np.int64).reshape(
            len(leg), len(modulus)
        )
        for leg in keys[:-1]
    ]
    choice = np.indices([len(leg) for leg in keys[:-1]]).reshape(len(keys) - 1, -1)
    charge = np.atleast_1d(np.array(like.charge, dtype=np.int64))
    flow = charge - sum(
        (s * g[c] for s, g, c in zip(signs[:-1], grids, choice, strict=True)),
        np.zeros((choice.shape[1], len(modulus)), dtype=np.int64),
    )
    last = signs[-1] * flow
    for c, m in enumerate(modulus):
        if m:
            last[:, c] %= m
    sectors, shapes, offsets, start = [], [], [], 0
    for combination, wanted in zip(choice.T.tolist(), last.tolist(), strict=True):
        key = wanted[0] if len(modulus) == 1 else tuple(wanted)
        if key in maps[-1]:
            sector = (*(leg[i] for leg, i in zip(keys, combination, strict=False)), key)
            shape = tuple(m[k] for m, k in zip(maps, sector, strict=True))
            sectors.append(sector)
            shapes.append(shape)
            offsets.append(start)
            start += math.prod(shape)
    return Layout(
        tuple(indices),
        like.charge,
        like.symmetry,
        tuple(sectors),
        tuple(shapes),
        tuple(offsets),
        start,
    )


def flat(array: Any, where: Layout) -> np.ndarray:
    """The blocks of ``array`` as one vector in ``where``'s layout (absent blocks: zeros)."""
    out = np.zeros(where.size, dtype=array.dtype)
    for sector, _shape, start in zip(where.sectors, where.shapes, where.offsets, strict=True):
        block = array.blocks.get(sector)
        if block is not None:
            out[start : start + block.size] = block.reshape(-1)
    return out


def unflat(vector: np.ndarray, where: Layout) -> Any:
    """The block-sparse array of a vector in ``where``'s layout (views of ``vector``)."""
    blocks = {
        sector: vector[start : start + int(np.prod(shape))].reshape(shape)
        for sector, shape, start in zip(where.sectors, where.shapes, where.offsets, strict=True)
    }
    return sr.AbelianArray(
        list(where.indices), charge=where.charge, blocks=blocks, symmetry=where.symmetry
    )


def densify(array: Any, maps: Sequence[dict]) -> np.ndarray:
    """The dense array of a block-sparse one, leg i laid out by the chargemap ``maps[i]``
    (charges ascending, each charge's channels together; a superset of the leg's own)."""
    starts = [_starts(chargemap) for chargemap in maps]
    out = np.zeros(tuple(sum(m.values()) for m in maps), dtype=array.dtype)
    for sector, block in array.blocks.items():
        where = tuple(
            slice(o[k], o[k] + n) for o, k, n in zip(starts, sector, block.shape, strict=True)
        )
        out[where] = block
    return out


def _starts(chargemap: dict) -> dict:
    """Where each charge's channels start along a leg laid out by ``chargemap``."""
    keys = sorted(chargemap)
    offsets = np.cumsum([0, *(chargemap[k] for k in keys)])
    return {k: int(o) for k, o in zip(keys, offsets, strict=False)}


def dense_positions(where: Layout) -> np.ndarray:
    """Where each entry of a flat vector in ``where``'s layout sits in the raveled dense
    array of the same legs (laid out as [densify][tnkit.algorithms.blocks.densify] does)."""
    maps = [index.chargemap for index in where.indices]
    starts = [_starts(chargemap) for chargemap in maps]
    shape = tuple(sum(m.values()) for m in maps)
    parts = [
        np.ravel_multi_index(
            np.ix_(
                *[np.arange(o[k], o[k] + n) for o, k, n in zip(starts, sector, block, strict=True)]
            ),
            shape,
        ).ravel()
        for sector, block in zip(where.sectors, where.shapes, strict=True)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
