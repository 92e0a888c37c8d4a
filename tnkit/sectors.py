"""Charge sectors of states whose sites carry Abelian charges: every bond resolved into
channels of one definite charge, the sector of a state, and Schmidt values per charge.

A state that conserves its charges (every basis product it holds has the same total
charge) can always be written with cores that are block-diagonal in the charges: each bond
channel carries one charge, and a core entry ``A[l, s, r]`` may be nonzero only where
``q(l) + Q(s) = q(r)`` (mod n for Z_n). [resolve_charges][tnkit.sectors.resolve_charges]
finds that form for any cores (one SVD per charge block and site), whatever gauge they come
in; the block-sparse engine of the algorithms starts from it.

Host NumPy on 3-leg cores ``(Dl, d, Dr)``; no trains and no block-sparse arrays here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .symmetry import Charges

__all__ = [
    "ChargeResolved",
    "allowed_entries",
    "channel_charges",
    "charge_labels",
    "charge_key",
    "pack_blocks",
    "resolve_charges",
    "schmidt_by_charge",
    "site_flows",
    "snap_to_charges",
    "split_by_charge",
    "unpack_blocks",
]


@dataclass(frozen=True)
class ChargeResolved:
    """A state in charge-resolved form: ``cores`` left-canonical except the last (which
    holds the norm), ``bonds[k]`` the charge of every channel of bond k (an int64 array
    ``(D_k, n)``, sorted; ``bonds[0]`` the left boundary's zero, ``bonds[L]`` the sector),
    and the ``sector``: the total charge of the state. ``dropped``: the sum over sites of
    the root of the weight dropped there as rounding, a bound on ‖state − resolved‖ when
    the cores came right-canonical from site 1 on."""

    cores: tuple[np.ndarray, ...]
    bonds: tuple[np.ndarray, ...]
    sector: tuple[int, ...]
    dropped: float = 0.0


@dataclass(frozen=True)
class ChargeSplit:
    """``matrix = isometry @ rest`` with every column of ``isometry`` (row of ``rest``) of one
    charge: ``charges`` (sorted, one row per column) and the singular ``values`` of each
    charge block (a dict from [charge_key][tnkit.sectors.charge_key] to a descending array)."""

    isometry: np.ndarray
    rest: np.ndarray
    charges: np.ndarray
    values: dict
    dropped: float = 0.0


def charge_key(charge: Any) -> int | tuple[int, ...]:
    """A charge as a dict key: an int for one component, a tuple of ints for several.

    Example:
        >>> charge_key(np.array([2])), charge_key(np.array([1, -1]))
        (2, (1, -1))
    """
    values = tuple(int(x) for x in np.ravel(charge))
    return values[0] if len(values) == 1 else values


# Singular values below this fraction of the largest are rounding (of the operations that
# made the state) and are dropped: exact to 1e-13, and leaks of rounding size into other
# charges never open channels.
ROUNDING = 1e-13


def split_by_charge(matrix: np.ndarray, row_charges: np.ndarray) -> ChargeSplit:
    """Factor ``matrix`` whose rows carry charges into an isometry whose columns each carry
    one of them, by one SVD per charge: rows of different charges never mix. Singular
    values below rounding (``ROUNDING`` or ``eps·max(m, n)`` of the largest overall,
    whichever is more) are dropped, so the new bond holds no null channel; ``dropped`` is
    their squared weight.

    Example:
        >>> m = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
        >>> s = split_by_charge(m, np.array([[0], [1], [1]]))
        >>> s.charges[:, 0].tolist(), {k: v.tolist() for k, v in s.values.items()}
        ([0, 1], {0: [1.0], 1: [2.0]})
        >>> bool(np.allclose(s.isometry @ s.rest, m))
        True
    """
    distinct, which = charge_labels(np.asarray(row_charges, dtype=np.int64))
    parts = []
    for c in range(len(distinct)):
        rows = np.flatnonzero(which == c)
        u, s, vh = np.linalg.svd(matrix[rows], full_matrices=False)
        parts.append((rows, u, s, vh))
    largest = max((float(s[0]) for _, _, s, _ in parts if s.size), default=0.0)
    cutoff = max(np.finfo(matrix.dtype).eps * max(matrix.shape), ROUNDING) * largest
    kept = [int(np.count_nonzero(s > cutoff)) if largest > 0 else 0 for _, _, s, _ in parts]
    width = sum(kept)
    isometry = np.zeros((matrix.shape[0], width), dtype=matrix.dtype)
    rest = np.zeros((width, matrix.shape[1]), dtype=matrix.dtype)
    charges = np.zeros((width, row_charges.shape[1]), dtype=np.int64)
    values = {}
    start = 0
    for (rows, u, s, vh), rank, charge in zip(parts, kept, distinct, strict=True):
        if rank == 0:
            continue
        cols = slice(start, start + rank)
        isometry[rows, cols] = u[:, :rank]
        rest[cols] = s[:rank, None] * vh[:rank]
        charges[cols] = charge
        values[charge_key(charge)] = s[:rank]
        start += rank
    dropped = sum(float(s[r:] @ s[r:]) for (_, _, s, _), r in zip(parts, kept, strict=True))
    return ChargeSplit(isometry, rest, charges, values, dropped)


def resolve_charges(
    cores: Sequence[Any], charges: Sequence[Charges], *, sector: Any = None
) -> ChargeResolved:
    """The charge-resolved form of the state with NumPy ``cores`` whose site k has the basis
    charges ``charges[k]``: one left-to-right sweep of
    [split_by_charge][tnkit.sectors.split_by_charge]. Exact to rounding. With cores
    right-canonical from site 1 on (``canonicalize(0)``) every bond comes out at the state's
    Schmidt rank (never above the bond it had); in another gauge a bond may grow.

    Raises ValueError when the state is zero or holds more than one total charge (it is
    then in no sector: a sum of states of different charges). With a ``sector`` (its total
    charge, one entry per component) the state is projected onto it instead: the weight in
    other charges is dropped (ValueError if none is left).

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> up, dn = np.array([1.0, 0.0]).reshape(1, 2, 1), np.array([0.0, 1.0]).reshape(1, 2, 1)
        >>> r = resolve_charges([up, dn, up], [q] * 3)
        >>> r.sector, [b[:, 0].tolist() for b in r.bonds]
        ((1,), [[0], [1], [0], [1]])
    """
    first = charges[0]
    left = np.array([first.zero], dtype=np.int64)
    resolved, bonds, lost = [], [left], 0.0
    carry = np.ones((1, 1), dtype=np.result_type(*[c.dtype for c in cores], np.float64))
    for k, core in enumerate(cores):
        core = np.tensordot(carry, np.asarray(core), axes=(1, 0))
        dl, d, dr = core.shape
        rows = charges[k].reduce(left[:, None, :] + charges[k].values[None, :, :])
        split = split_by_charge(core.reshape(dl * d, dr), rows.reshape(dl * d, -1))
        lost += math.sqrt(split.dropped)
        if k == len(cores) - 1:
            return _last(resolved, bonds, split, core, first, sector, lost)
        resolved.append(split.isometry.reshape(dl, d, -1))
        bonds.append(split.charges)
        left, carry = split.charges, split.rest
    raise ValueError("cores: no sites")


def _last(
    resolved: list,
    bonds: list,
    split: ChargeSplit,
    core: np.ndarray,
    first: Charges,
    sector: Any,
    lost: float,
):
    """Close the sweep at the last site: exactly one charge may hold the state's weight
    (the ``sector``'s, the rest projected away, when it is given)."""
    if sector is not None:
        target = first.reduce(np.reshape(np.asarray(sector, dtype=np.int64), (1, -1)))
        mine = np.all(split.charges == target, axis=1)
        key = charge_key(target)
        split = ChargeSplit(
            split.isometry[:, mine],
            split.rest[mine],
            split.charges[mine],
            {k: v for k, v in split.values.items() if k == key},
            split.dropped,
        )
    weights = {key: float(v @ v) for key, v in split.values.items()}
    if not weights:
        raise ValueError(
            "psi: the zero state is in no charge sector"
            if sector is None
            else f"psi: holds no weight in the sector {tuple(np.ravel(sector))}"
        )
    if len(weights) > 1:
        shown = ", ".join(f"{k}: {w:.3g}" for k, w in weights.items())
        raise ValueError(
            f"psi: holds more than one total charge of {first.names} (weights {shown}); "
            "a state in one sector is needed"
        )
    sector = split.charges[0]
    resolved.append((split.isometry @ split.rest).reshape(core.shape))
    bonds.append(sector[None, :])
    sector = tuple(int(x) for x in sector)
    return ChargeResolved(tuple(resolved), tuple(bonds), sector, lost)


def schmidt_by_charge(cores: Sequence[Any], charges: Sequence[Charges], bond: int) -> dict:
    """Schmidt values across ``bond`` (cut after site ``bond``) of the state, per charge of
    the left part: a dict from [charge_key][tnkit.sectors.charge_key] to a descending array.
    The values of all charges together are the ordinary Schmidt values.

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> first = np.eye(2).reshape(1, 2, 2)  # site 0 up -> channel 0, dn -> channel 1
        >>> second = np.array([[0.0, 1.0], [-1.0, 0.0]]).reshape(2, 2, 1)
        >>> values = schmidt_by_charge([first, second], [q] * 2, 0)  # |up dn> - |dn up>
        >>> {k: np.round(v, 6).tolist() for k, v in values.items()}
        {-1: [1.0], 1: [1.0]}
    """
    resolved = resolve_charges(cores, charges)
    right = resolved.cores[-1]
    for k in range(len(resolved.cores) - 1, bond, -1):
        dl, d, dr = right.shape
        split = split_by_charge(right.reshape(dl, d * dr), resolved.bonds[k])
        if k == bond + 1:
            return split.values
        scale = np.concatenate(list(split.values.values()))  # the rest is S·Vh: keep Vh
        right = np.tensordot(resolved.cores[k - 1], split.isometry * scale, axes=(2, 0))
    raise ValueError(f"bond: expected 0 <= bond < {len(resolved.cores) - 1}, got {bond}")


def channel_charges(
    cores: Sequence[np.ndarray], flows: Sequence[np.ndarray], group: Charges
) -> list[np.ndarray] | None:
    """The charge of every bond channel (bonds 0…L, bond 0 the neutral charge) that makes
    every nonzero entry of the cores conserve charge, read off the cores as they are (no
    factorisation); None when some channel would need two charges (the gauge mixes charges,
    as a dense SVD of degenerate values across charges can). ``flows[k]``: per physical index
    of core k, shape ``core.shape[1:-1] + (components,)``, the charge it adds (an MPS site's
    basis charge; an MPO's ``Q(out) − Q(in)``).

    A channel takes the charge its entries on the left give it (left to right from bond
    0); one that nothing on its left feeds (a null channel, as a thin QR of a rank-deficient
    block leaves) takes the charge its entries on the right need (right to left); one with
    no entry at all, the neutral charge.

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> up, dn = np.array([1.0, 0.0]).reshape(1, 2, 1), np.array([0.0, 1.0]).reshape(1, 2, 1)
        >>> bonds = channel_charges([up, dn], [q.values] * 2, q)
        >>> tuple(b.ravel().tolist() for b in bonds)
        ([0], [1], [0])
    """
    n = len(group.moduli)
    nonzero = [np.asarray(c).reshape(c.shape[0], -1, c.shape[-1]) != 0 for c in cores]
    moves = [np.asarray(f).reshape(-1, n) for f in flows]
    bonds = [np.zeros((1, n), dtype=np.int64)] + [
        np.zeros((c.shape[-1], n), np.int64) for c in cores
    ]
    known = [np.ones(1, dtype=bool)] + [np.zeros(c.shape[-1], dtype=bool) for c in cores]
    for k, (mask, move) in enumerate(zip(nonzero, moves, strict=True)):  # from the left
        rows = group.reduce(bonds[k][:, None, :] + move[None, :, :])
        fed = mask & known[k][:, None, None]
        found = _one_charge(rows.reshape(-1, n), fed.reshape(-1, mask.shape[2]))
        if found is None:
            return None
        known[k + 1] = fed.any(axis=(0, 1))
        bonds[k + 1][known[k + 1]] = found[known[k + 1]]
    for k in range(len(cores) - 1, -1, -1):  # null channels, from the right
        open_ = ~known[k]
        if not open_.any():
            continue
        mask = nonzero[k][open_]
        need = group.reduce(bonds[k + 1][None, :, :] - moves[k][:, None, :])  # (p, Dr, n)
        usable = mask & known[k + 1][None, None, :]
        found = _one_charge(
            np.broadcast_to(need, mask.shape[1:] + (n,)).reshape(-1, n),
            usable.reshape(len(mask), -1).T,
        )
        if found is None or np.any(mask & ~known[k + 1][None, None, :]):
            return None  # two charges, or a chain of null channels with no end
        bonds[k][open_] = found
        known[k][open_] = True
    return bonds


def _one_charge(rows: np.ndarray, nonzero: np.ndarray) -> np.ndarray | None:
    """Per column the one charge of the ``rows`` where it is nonzero (neutral where it is
    nowhere nonzero); None if a column has two."""
    right = np.zeros((nonzero.shape[1], rows.shape[1]), dtype=np.int64)
    used = nonzero.any(axis=0)
    if not used.any():
        return right
    keys, labels = charge_labels(rows)
    first = labels[np.argmax(nonzero, axis=0)]  # the charge of each column's first entry
    if np.any(nonzero & (labels[:, None] != first[None, :])):
        return None
    right[used] = keys[first[used]]
    return right


def charge_labels(charges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, labels)``: the distinct rows of an int ``(m, n)`` array of charges, sorted,
    and for every row the index of its key (one sort of ints for a single component).

    Example:
        >>> keys, labels = charge_labels(np.array([[1], [-1], [1]]))
        >>> keys.ravel().tolist(), labels.tolist()
        ([-1, 1], [1, 0, 1])
    """
    if charges.shape[0] == 0:
        return charges[:0], np.zeros(0, dtype=np.intp)
    low = charges.min(axis=0)
    span = charges.max(axis=0) - low + 1
    if math.prod(float(s) for s in span) >= 2.0**62:  # no room for one int key per row
        keys, labels = np.unique(charges, axis=0, return_inverse=True)
        return keys, np.ravel(labels)
    strides = np.append(np.cumprod(span[:0:-1])[::-1], 1)  # the first component first
    _, first, labels = np.unique((charges - low) @ strides, return_index=True, return_inverse=True)
    return charges[first], np.ravel(labels)


def site_flows(charges: Sequence[Charges], *, operator: bool) -> list[np.ndarray]:
    """Per site the charge each physical index adds (the ``flows`` of
    [channel_charges][tnkit.sectors.channel_charges]): ``Q(s)``, shape ``(d, n)``, for a
    state; ``Q(out) − Q(in)``, shape ``(d, d, n)``, for an ``operator``.

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> flow = site_flows([q], operator=True)[0]
        >>> flow.shape, flow.ravel().tolist()
        ((2, 2, 1), [0, 2, -2, 0])
    """
    if operator:
        return [q.values[:, None, :] - q.values[None, :, :] for q in charges]
    return [q.values for q in charges]


def snap_to_charges(
    cores: Sequence[np.ndarray], flows: Sequence[np.ndarray], group: Charges, tol: float
) -> list[np.ndarray] | None:
    """The cores with the rounding that dense factorisations leave outside the charge
    blocks set to zero, or None when it is more than rounding. Each bond channel takes the
    charge that holds most of its weight (left to right, bond 0 neutral); every entry of
    another charge must be at most ``tol`` times the largest entry of its core, and is
    zeroed. The result conserves charge exactly
    ([channel_charges][tnkit.sectors.channel_charges] finds its channels).

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> up = np.array([1.0, 1e-20]).reshape(1, 2, 1)
        >>> snap_to_charges([up], [q.values], q, 1e-14)[0].ravel().tolist()
        [1.0, 0.0]
    """
    left = np.array([group.zero], dtype=np.int64)
    out = []
    for core, flow in zip(cores, flows, strict=True):
        rows = group.reduce(left.reshape((-1,) + (1,) * (flow.ndim - 1) + left.shape[1:]) + flow)
        rows = rows.reshape(-1, rows.shape[-1])
        matrix = np.asarray(core).reshape(rows.shape[0], -1)
        keys, which = charge_labels(rows)
        weight = np.zeros((len(keys), matrix.shape[1]))
        np.add.at(weight, which, np.abs(matrix) ** 2)
        right = keys[np.argmax(weight, axis=0)]
        outside = np.any(rows[:, None, :] != right[None, :, :], axis=-1)
        largest = float(np.max(np.abs(matrix))) if matrix.size else 0.0
        if np.any(np.abs(matrix[outside]) > tol * largest):
            return None
        out.append(np.where(outside, 0, matrix).astype(matrix.dtype).reshape(np.shape(core)))
        left = right
    return out


def allowed_entries(
    left: np.ndarray, flow: np.ndarray, right: np.ndarray, group: Charges
) -> np.ndarray:
    """The boolean mask, of a core's shape, of the entries that conserve charge between a
    left bond of channel charges ``left``, physical legs adding ``flow`` (as in
    [channel_charges][tnkit.sectors.channel_charges]) and a right bond ``right``: every
    other entry is structurally zero.

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> allowed_entries(np.array([[0]]), q.values, np.array([[1], [-1]]), q)[0]
        array([[ True, False],
               [False,  True]])
    """
    n = left.shape[1]
    rows = group.reduce(left.reshape((-1,) + (1,) * (flow.ndim - 1) + (n,)) + flow[None])
    # one integer label per distinct charge, so that the mask is one comparison per entry
    _, labels = charge_labels(np.concatenate([rows.reshape(-1, n), group.reduce(right)]))
    split = rows.size // n
    return labels[:split].reshape(rows.shape[:-1] + (1,)) == labels[split:]


def pack_blocks(
    cores: Sequence[np.ndarray], flows: Sequence[np.ndarray], group: Charges
) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """``(values, bonds)``: per core the 1-D array of its entries that conserve charge (C
    order), and the bonds' channel charges; None when the cores mix charges. What
    [unpack_blocks][tnkit.sectors.unpack_blocks] turns back into the same cores.

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> up = np.array([1.0, 0.0]).reshape(1, 2, 1)
        >>> values, bonds = pack_blocks([up], [q.values], q)
        >>> values[0].tolist(), bonds[1].tolist()
        ([1.0], [[1]])
    """
    bonds = channel_charges(cores, flows, group)
    if bonds is None:
        return None
    values = [
        np.asarray(core)[allowed_entries(bonds[k], flows[k], bonds[k + 1], group)]
        for k, core in enumerate(cores)
    ]
    return values, bonds


def unpack_blocks(
    values: Sequence[np.ndarray],
    bonds: Sequence[np.ndarray],
    flows: Sequence[np.ndarray],
    group: Charges,
) -> list[np.ndarray]:
    """The cores whose charge-conserving entries are ``values`` (as
    [pack_blocks][tnkit.sectors.pack_blocks] gives them), zeros elsewhere. ValueError when
    bond 0 is not neutral or a core's values do not fill its blocks."""
    if len(bonds) != len(values) + 1 or np.asarray(bonds[0]).tolist() != [list(group.zero)]:
        raise ValueError(f"bonds: expected {len(values) + 1} bonds, the first neutral")
    cores = []
    for k, (stored, flow) in enumerate(zip(values, flows, strict=True)):
        mask = allowed_entries(bonds[k], flow, bonds[k + 1], group)
        if stored.shape != (int(mask.sum()),):
            raise ValueError(
                f"values: core {k} holds {stored.shape} values; its charge blocks have "
                f"{int(mask.sum())} entries"
            )
        core = np.zeros(mask.shape, dtype=stored.dtype)
        core[mask] = stored
        cores.append(core)
    return cores


def sector_bonds(charges: Sequence[Charges], sector: Any, max_bond: int) -> list[np.ndarray]:
    """Channel charges of every bond (0…L) of a state of bond ``max_bond`` in ``sector``:
    each bond gets the charges both ends can reach, with channels shared out in proportion
    to the number of basis states through each charge (at most that many from either side),
    the largest shares first. Raises ValueError when no basis state has charge ``sector``.

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> bonds = sector_bonds([site_charges("spin-half", "Sz")] * 4, (0,), 4)
        >>> tuple(tuple(b[:, 0].tolist()) for b in bonds)
        ((0,), (-1, 1), (-2, 0, 0, 2), (-1, 1), (0,))
    """
    first = charges[0]
    target = tuple(
        int(x) for x in first.reduce(np.atleast_2d(np.asarray(sector, dtype=np.int64)))[0]
    )
    left = [{first.zero: 1.0}]
    for q in charges:
        left.append(_reach(left[-1], q, +1))
    if target not in left[-1]:
        raise ValueError(f"sector: no basis state has charge {target} of {first.names}")
    right = [{target: 1.0}]
    for q in reversed(charges):
        right.append(_reach(right[-1], q, -1))
    right.reverse()
    bonds = []
    for k in range(len(charges) + 1):
        through = {c: left[k][c] * right[k][c] for c in left[k] if c in right[k]}
        room = {c: min(left[k][c], right[k][c]) for c in through}
        if bonds:  # no more channels of a charge than the previous bond can feed
            fed = _reach(_counts(bonds[-1]), charges[k - 1], +1)
            room = {c: min(r, fed.get(c, 0.0)) for c, r in room.items()}
        bonds.append(_share(through, room, max_bond, len(first.moduli)))
    for k in range(len(charges) - 1, 0, -1):  # nor than the next bond can take
        fed = _reach(_counts(bonds[k + 1]), charges[k], -1)
        kept = _counts(bonds[k])
        bonds[k] = _rows(
            {c: int(min(n, fed.get(c, 0.0))) for c, n in kept.items()}, bonds[k].shape[1]
        )
    return bonds


def _counts(rows: np.ndarray) -> dict:
    """How many channels of a bond carry each charge."""
    keys, counts = np.unique(rows, axis=0, return_counts=True)
    return {tuple(int(x) for x in k): float(n) for k, n in zip(keys, counts, strict=True)}


def _rows(size: dict, n: int) -> np.ndarray:
    """Sorted channel charges: ``size[c]`` channels of each charge c."""
    rows = [np.tile(np.array(c, dtype=np.int64), (int(size[c]), 1)) for c in sorted(size)]
    rows = [r for r in rows if len(r)]
    return np.concatenate(rows) if rows else np.zeros((0, n), dtype=np.int64)


def _reach(counts: dict, q: Charges, sign: int) -> dict:
    """Charges one more site reaches (sign +1: left to right) and how many states do."""
    out: dict = {}
    for c, n in counts.items():
        for value in q.reduce(np.asarray(c)[None, :] + sign * q.values):
            key = tuple(int(x) for x in value)
            out[key] = out.get(key, 0.0) + n
    return out


def _share(weights: dict, room: dict, max_bond: int, n: int) -> np.ndarray:
    """``max_bond`` channels shared out over charges by weight, each at most its room."""
    total = sum(weights.values())
    quota = {c: max_bond * weights[c] / total for c in weights}
    size = {c: min(room[c], math.floor(quota[c])) for c in weights}
    # what rounding left over: one channel at a time, largest remainders first
    order = sorted(weights, key=lambda c: (size[c] - quota[c], -weights[c], c))
    spare = max_bond - sum(size.values())
    while spare > 0 and any(size[c] < room[c] for c in order):
        for c in order:
            if spare > 0 and size[c] < room[c]:
                size[c] += 1
                spare -= 1
    return _rows(size, n)


def random_sector_cores(
    charges: Sequence[Charges], sector: Any, max_bond: int, rng: np.random.Generator, dtype: Any
) -> list[np.ndarray]:
    """Gaussian cores of a random state in ``sector`` (bonds from
    [sector_bonds][tnkit.sectors.sector_bonds]; only charge-conserving entries nonzero),
    scaled so that E‖x‖² is of order 1."""
    bonds = sector_bonds(charges, sector, max_bond)
    cores = []
    for k, q in enumerate(charges):
        arriving = q.reduce(
            (bonds[k][:, None, :] + q.values[None, :, :]).reshape(-1, q.values.shape[1])
        )
        allowed = np.all(
            arriving.reshape(len(bonds[k]), q.dim, 1, -1) == bonds[k + 1][None, None], axis=-1
        )
        core = rng.standard_normal(allowed.shape)
        if np.issubdtype(dtype, np.complexfloating):
            core = (core + 1j * rng.standard_normal(allowed.shape)) / math.sqrt(2)
        per_column = np.maximum(allowed.sum(axis=(0, 1)), 1)
        cores.append((core * allowed / np.sqrt(per_column)).astype(dtype))
    return cores
