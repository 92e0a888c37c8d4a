"""Charges of the bonds of an MPO: which charge every channel carries, read from the exact
zero pattern of the cores and the charges of the sites, or a ValueError where none fits.

Integer bookkeeping on NumPy copies of the cores; it never changes, truncates or builds
a train (a block-sparse train is built from these charges, not here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _backend as backend
from ..mpo import MPO
from ..sites import check_site_type
from ..symmetry import Charges, conserved_charges

__all__ = ["bond_charges"]


def bond_charges(o: MPO, *, site: Any = "spin-half", conserve: Any) -> tuple[np.ndarray, ...]:
    """The charge of every channel of every inner bond of ``o``: ``result[k]`` is an int64
    array ``(bond_dims[k], n)`` (n charge components), bond k the cut after site k.

    Charges flow from left to right: the left boundary carries 0, and a core block
    ``o.cores[k][a, :, :, b]`` with a nonzero entry ``(out, in)`` sets the charge of
    channel b to ``left[a] + Q(out) − Q(in)`` (mod n for Z_n). Every nonzero entry of a
    channel must agree, and the right boundary must come out 0: otherwise ``o`` does not
    conserve the charges (ValueError naming the core). Entries count as nonzero unless
    exactly 0, which MPOs built by [OpSum][tnkit.OpSum] with ``conserve`` (and the models
    with ``conserve=``) guarantee; a channel with no nonzero entry gets charge 0.
    ``site`` and ``conserve`` are as in OpSum (``site`` may also be None: the MPO's dims,
    with ``conserve`` a Charges or one per site).

    Example:
        >>> import tnkit as tn
        >>> from tnkit.operators import bond_charges
        >>> H = tn.models.heisenberg(4, conserve="Sz")
        >>> [q[:, 0].tolist() for q in bond_charges(H, conserve="Sz")]   # units of 2·Sz
        [[0, 2, -2, 0], [0, -2, 2, 0, 0], [-2, 2, 0, 0]]
    """
    if not isinstance(o, MPO):
        raise TypeError(f"o: expected an MPO, got {type(o).__name__}")
    if o.out_dims != o.in_dims:
        raise ValueError(f"o: needs equal out and in dims, got {o.out_dims} and {o.in_dims}")
    site_type, dims = check_site_type(o.out_dims if site is None else site, len(o))
    if dims != o.out_dims:
        raise ValueError(f"site: local dims {dims} do not match the MPO's {o.out_dims}")
    per_site = conserved_charges(conserve, site_type, dims)
    if per_site is None:
        raise ValueError("conserve: bond charges need the charges, got None")
    left = np.array([per_site[0].zero], dtype=np.int64)
    bonds = []
    for k, core in enumerate(o._arrays()):
        right = _right_charges(backend.to_numpy(core), left, per_site[k], k)
        if k == len(o) - 1:
            if any(right[0]):
                raise ValueError(
                    f"o: its total charge is {tuple(int(x) for x in right[0])} of "
                    f"{per_site[k].names}, not 0: it does not conserve {conserve!r}"
                )
        else:
            bonds.append(right)
        left = right
    return tuple(bonds)


def _right_charges(core: np.ndarray, left: np.ndarray, charges: Charges, k: int) -> np.ndarray:
    """The charges of the right channels of one core ``(Dl, d, d, Dr)`` from its left ones."""
    a, out, in_, b = np.nonzero(core)
    arriving = charges.reduce(left[a] + charges.values[out] - charges.values[in_])
    right = np.zeros((core.shape[-1], left.shape[1]), dtype=np.int64)
    right[b[::-1]] = arriving[::-1]  # the first entry of each channel wins
    wrong = np.flatnonzero(np.any(right[b] != arriving, axis=1))
    if wrong.size:
        e = wrong[0]
        raise ValueError(
            f"o: core {k} does not conserve {charges.names}: channel {int(b[e])} gets "
            f"charge {right[b[e]].tolist()} from one entry and {arriving[e].tolist()} from "
            f"entry {(int(a[e]), int(out[e]), int(in_[e]), int(b[e]))}"
        )
    return right
