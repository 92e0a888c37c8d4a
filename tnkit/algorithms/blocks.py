"""Block-sparse local algebra for states and operators that conserve Abelian charges: the
cores, environments and effective operators of DMRG as symmray arrays, so that only
charge-conserving blocks are stored and multiplied.

Conventions as in [environments][tnkit.algorithms.environments] (MPS cores ``(Dl, d, Dr)``,
MPO cores ``(Dl, d_out, d_in, Dr)``, environments ``(bra, operator, ket)``). Charges flow
left to right: a leg is *dual* when its charge leaves the tensor, and every block obeys
``Σ in − Σ out = 0`` (mod n for Z_n): MPS cores ``(in, in, out)``, MPO cores ``(in, in,
out, out)``, left environments ``(in, out, out)``, right ones ``(out, in, in)``. The left
boundary carries charge 0 and the right one the sector of the state.

symmray (block-sparse arrays by quimb's author) was chosen as the engine by measurement
(``benchmarks/bench_symmetric_engines.py``); the splits (SVD per charge block, truncated
over all blocks together) are written here, so the truncation rules are tnkit's own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import symmray as sr

from ..mpo import MPO
from ..operators import bond_charges
from ..sectors import ChargeResolved, charge_key
from ..symmetry import Charges
from ..truncation import choose_rank
from . import block_plans as plans
from . import environments as env
from .block_groups import moduli, symmetry
from .block_vectors import Layout, dense_positions, densify, flat, layout, unflat

__all__ = [
    "BlockSplit",
    "block_ranks",
    "cut_charge",
    "local_image",
    "overlap_edges",
    "overlap_left",
    "overlap_right",
    "densify",
    "dense_positions",
    "absorb",
    "one_site_matvec",
    "zero_site_matvec",
    "overlap",
    "tangent_residual",
    "dense_core",
    "edges",
    "flat",
    "grow_left",
    "grow_right",
    "merge",
    "operator_blocks",
    "split",
    "state_blocks",
    "two_site_matvec",
    "unflat",
]


def _index(rows: np.ndarray, dual: bool) -> sr.BlockIndex:
    """The block index of a leg whose channels carry ``rows`` (one charge row each)."""
    keys, counts = np.unique(rows, axis=0, return_counts=True)
    chargemap = {charge_key(k): int(c) for k, c in zip(keys, counts, strict=True)}
    return sr.BlockIndex(chargemap, dual=dual)


def _positions(rows: np.ndarray) -> dict:
    """Per charge key the channels (in order) that carry it."""
    out: dict = {}
    for i, row in enumerate(rows):
        out.setdefault(charge_key(row), []).append(i)
    return {k: np.array(v) for k, v in out.items()}


def from_dense(
    array: np.ndarray, legs: Sequence[np.ndarray], duals: Sequence[bool], group: Charges
):
    """The block-sparse array of a dense ``array`` whose leg i has channel charges
    ``legs[i]``: every charge-conserving block with a nonzero entry. A nonzero entry
    outside those blocks raises ValueError (the array breaks the symmetry)."""
    total = np.zeros(array.shape + (len(group.moduli),), dtype=np.int64)
    for axis, (rows, dual) in enumerate(zip(legs, duals, strict=True)):
        shape = [1] * array.ndim + [rows.shape[1]]
        shape[axis] = rows.shape[0]
        total += (-1 if dual else 1) * rows.reshape(shape)
    if np.any(
        array[
            np.any(group.reduce(total.reshape(-1, total.shape[-1])).reshape(total.shape), axis=-1)
        ]
    ):
        raise ValueError(
            f"the array has entries outside its charge blocks: it breaks {group.names}"
        )
    places = [_positions(rows) for rows in legs]
    signs = [-1 if dual else 1 for dual in duals]
    blocks = {}
    for head in itertools.product(*[list(p) for p in places[:-1]]):
        last = _balance(head, signs, group.moduli)  # the one conserving key of the last leg
        if last in places[-1]:
            sector = (*head, last)
            block = array[np.ix_(*[p[k] for p, k in zip(places, sector, strict=True)])]
            if np.any(block):
                blocks[sector] = np.ascontiguousarray(block)
    indices = [_index(rows, dual) for rows, dual in zip(legs, duals, strict=True)]
    return sr.AbelianArray(
        indices, charge=charge_key(group.zero), blocks=blocks, symmetry=symmetry(group)
    )


def dense_core(array: Any, phys: Sequence[np.ndarray] = ()) -> np.ndarray:
    """The dense core of a block-sparse one: bond legs in sorted charge order (each charge's
    channels together, the charges ascending), physical legs (given by their channel
    charges ``phys``, legs 1… in order) in their basis order."""
    places = []
    for axis, index in enumerate(array.indices):
        if 1 <= axis <= len(phys):
            places.append(_positions(phys[axis - 1]))
            continue
        start, place = 0, {}
        for key in sorted(index.chargemap):
            size = index.chargemap[key]
            place[key] = np.arange(start, start + size)
            start += size
        places.append(place)
    shape = tuple(sum(len(v) for v in p.values()) for p in places)
    out = np.zeros(shape, dtype=array.dtype)
    for sector, block in array.blocks.items():
        out[np.ix_(*[p[k] for p, k in zip(places, sector, strict=True)])] = block
    return out


def state_blocks(resolved: ChargeResolved, charges: Sequence[Charges]) -> list:
    """The block-sparse cores of a charge-resolved state (same gauge)."""
    return [
        from_dense(
            core,
            [resolved.bonds[k], charges[k].values, resolved.bonds[k + 1]],
            (False, False, True),
            charges[k],
        )
        for k, core in enumerate(resolved.cores)
    ]


def operator_blocks(H: MPO) -> list:
    """The block-sparse cores of an MPO that declares and conserves its charges."""
    charges = H.charges
    zero = np.array([charges[0].zero], dtype=np.int64)
    bonds = [zero, *bond_charges(H, site=None, conserve=charges), zero]
    return [
        from_dense(
            np.asarray(core),
            [bonds[k], charges[k].values, charges[k].values, bonds[k + 1]],
            (False, False, True, True),
            charges[k],
        )
        for k, core in enumerate(H._arrays())
    ]


def edges(group: Charges, sector: tuple, dtype: Any) -> tuple:
    """The left environment beyond site 0 and the right one beyond the last site."""
    zero, total = charge_key(group.zero), charge_key(np.array(sector))
    name = symmetry(group)

    def one(keys, duals):
        indices = [sr.BlockIndex({k: 1}, dual=d) for k, d in zip(keys, duals, strict=True)]
        return sr.AbelianArray(
            indices, charge=zero, symmetry=name, blocks={keys: np.ones((1, 1, 1), dtype=dtype)}
        )

    return one((zero, zero, zero), (False, True, True)), one(
        (total, zero, total), (True, False, False)
    )


# ---------------------------------------------------------------------- local algebra


def merge(a: Any, b: Any) -> Any:
    """The two-site tensor ``θ[a, s, t, c]`` of two neighbouring cores."""
    return sr.tensordot(a, b, axes=((2,), (0,)))


def grow_left(env: Any, core: Any, op: Any) -> Any:
    """Σ E[a,w,b] conj(A)[a,s,c] W[w,s,t,v] A[b,t,d] → E'[c, v, d]."""
    x = sr.tensordot(env, core, axes=((2,), (0,)))  # (a, w, t, d)
    x = sr.tensordot(x, op, axes=((1, 2), (0, 2)))  # (a, d, s, v)
    x = sr.tensordot(core.conj(), x, axes=((0, 1), (0, 2)))  # (c, d, v)
    return x.transpose((0, 2, 1))


def grow_right(env: Any, core: Any, op: Any) -> Any:
    """Σ conj(B)[a,s,c] W[w,s,t,v] B[b,t,d] E[c,v,d] → E'[a, w, b]."""
    x = sr.tensordot(core, env, axes=((2,), (2,)))  # (b, t, c, v)
    x = sr.tensordot(op, x, axes=((2, 3), (1, 3)))  # (w, s, b, c)
    return sr.tensordot(core.conj(), x, axes=((1, 2), (1, 3)))  # (a, w, b)


def two_site_matvec(left: Any, op1: Any, op2: Any, right: Any):
    """``θ -> H_eff θ`` for a two-site tensor ``θ[b, t, u, d]``: the two operators merged
    once (w·d⁴·w entries: tiny), then three block contractions, environments first and
    last (the order of the dense matvec)."""
    pair = sr.tensordot(op1, op2, axes=((3,), (0,)))  # (w, s, t, r, u, y)

    def matvec(theta: Any) -> Any:
        x = sr.tensordot(left, theta, axes=((2,), (0,)))  # (a, w, t, u, c)
        x = sr.tensordot(x, pair, axes=((1, 2, 3), (0, 2, 4)))  # (a, c, s, r, y)
        return sr.tensordot(x, right, axes=((1, 4), (2, 1)))  # (a, s, r, e)

    # the legs of θ in full: every charge of the local bases, not only those present now
    matvec.indices = (left.indices[0], op1.indices[1], op2.indices[1], right.indices[0])
    a, s, t, c = (index.chargemap for index in matvec.indices)
    w, x, y = op1.indices[0].chargemap, op1.indices[3].chargemap, op2.indices[3].chargemap
    matvec.compile = lambda where: _compiled(
        where,
        [
            (left, (0,), (2,), False),
            (pair, (1, 2, 3), (0, 2, 4), True),
            (right, (1, 4), (2, 1), True),
        ],
    )
    matvec.dense = lambda: env.two_site_matvec(
        densify(left, [a, w, a]),
        densify(op1, [w, s, s, x]),
        densify(op2, [x, t, t, y]),
        densify(right, [c, y, c]),
    )
    return matvec


def one_site_matvec(left: Any, op: Any, right: Any):
    """``A -> H_eff A`` for a one-site tensor ``A[b, t, d]``: three block contractions."""

    def matvec(core: Any) -> Any:
        x = sr.tensordot(left, core, axes=((2,), (0,)))  # (a, w, t, d)
        x = sr.tensordot(x, op, axes=((1, 2), (0, 2)))  # (a, d, s, v)
        return sr.tensordot(x, right, axes=((1, 3), (2, 1)))  # (a, s, e)

    matvec.indices = (left.indices[0], op.indices[1], right.indices[0])
    a, s, c = (index.chargemap for index in matvec.indices)
    w, v = op.indices[0].chargemap, op.indices[3].chargemap
    matvec.compile = lambda where: _compiled(
        where,
        [(left, (0,), (2,), False), (op, (1, 2), (0, 2), True), (right, (1, 3), (2, 1), True)],
    )
    matvec.dense = lambda: env.one_site_matvec(
        densify(left, [a, w, a]), densify(op, [w, s, s, v]), densify(right, [c, v, c])
    )
    return matvec


def zero_site_matvec(left: Any, right: Any):
    """``C -> H_eff C`` for a bond matrix ``C[b, d]``: Σ E_L[a,w,b] C[b,d] E_R[c,w,d]."""

    def matvec(bond: Any) -> Any:
        x = sr.tensordot(left, bond, axes=((2,), (0,)))  # (a, w, d)
        return sr.tensordot(x, right, axes=((1, 2), (1, 2)))  # (a, c)

    matvec.indices = (left.indices[0], right.indices[0])
    a, c = (index.chargemap for index in matvec.indices)
    w = {**left.indices[1].chargemap, **right.indices[1].chargemap}  # either may lack some
    matvec.compile = lambda where: _compiled(
        where, [(left, (0,), (2,), False), (right, (1, 2), (1, 2), True)]
    )
    matvec.dense = lambda: env.zero_site_matvec(densify(left, [a, w, a]), densify(right, [c, w, c]))
    return matvec


def _compiled(where: Layout, steps: list) -> Any:
    """The chain ``steps`` (see [compile_chain][tnkit.algorithms.block_plans.compile_chain])
    compiled for flat vectors in ``where``'s layout, on both ends."""
    placed = plans.placed_layout(where)
    return plans.compile_chain(placed, steps, placed, moduli(steps[0][0]))


def overlap_edges(group: Charges, sector: tuple, dtype: Any) -> tuple:
    """The overlap environments ``F[bra, ket]`` beyond either end, for two states in
    ``sector`` (states of different sectors have no overlap and need none)."""
    zero, total = charge_key(group.zero), charge_key(np.array(sector))
    name = symmetry(group)

    def one(key, duals):
        indices = [sr.BlockIndex({key: 1}, dual=d) for d in duals]
        return sr.AbelianArray(
            indices, charge=zero, symmetry=name, blocks={(key, key): np.ones((1, 1), dtype=dtype)}
        )

    return one(zero, (False, True)), one(total, (True, False))


def overlap_left(env_: Any, core: Any, other: Any) -> Any:
    """Σ F[a,b] conj(A)[a,s,c] B[b,s,d] → F'[c, d]."""
    x = sr.tensordot(env_, other, axes=((1,), (0,)))  # (a, s, d)
    return sr.tensordot(core.conj(), x, axes=((0, 1), (0, 1)))


def overlap_right(env_: Any, core: Any, other: Any) -> Any:
    """Σ conj(A)[a,s,c] B[b,s,d] F[c,d] → F'[a, b]."""
    x = sr.tensordot(other, env_, axes=((2,), (1,)))  # (b, s, c)
    return sr.tensordot(core.conj(), x, axes=((1, 2), (1, 2)))


def local_image(left: Any, cores: list, right: Any) -> Any:
    """Another state seen on this one's local sites: Σ F_L B… F_R, shaped like θ."""
    x = sr.tensordot(left, cores[0], axes=((1,), (0,)))
    for core in cores[1:]:
        x = sr.tensordot(x, core, axes=((x.ndim - 1,), (0,)))
    return sr.tensordot(x, right, axes=((x.ndim - 1,), (1,)))


def absorb(rest: Any, core: Any) -> Any:
    """``rest[a, b]·core[b, s, c]``: a bond matrix taken into the next core."""
    return sr.tensordot(rest, core, axes=((1,), (0,)))


def overlap(x: Any, y: Any) -> float:
    """Re ⟨x, y⟩ of two block-sparse local tensors."""
    return float(np.real(sr.tensordot(x.conj(), y, axes=x.ndim)))


def tangent_residual(image: Any, basis: Any, following: Any) -> float:
    """‖(1 − P_left) image (1 − P_right)‖² for a two-site ``image``, P onto the left
    isometry ``basis`` and the right-canonical core ``following``."""
    where = layout(image.indices, image)  # differences taken on one flat layout
    inside = sr.tensordot(basis.conj(), image, axes=((0, 1), (0, 1)))  # (k, t, c)
    y = flat(image, where) - flat(sr.tensordot(basis, inside, axes=((2,), (0,))), where)
    inside = sr.tensordot(unflat(y, where), following.conj(), axes=((2, 3), (1, 2)))  # (a, s, k)
    y = y - flat(sr.tensordot(inside, following, axes=((2,), (0,))), where)
    return float(np.vdot(y, y).real)


def _balance(head: tuple, signs: list, moduli: tuple) -> Any:
    """The charge key the last leg needs so that ``head`` (keys of the other legs) and it
    conserve: plain Python on int or tuple keys (called once per candidate block)."""
    if len(moduli) == 1:
        flow = -signs[-1] * sum(s * k for s, k in zip(signs[:-1], head, strict=True))
        return flow % moduli[0] if moduli[0] else flow
    flow = [
        -signs[-1] * sum(s * k[c] for s, k in zip(signs[:-1], head, strict=True))
        for c in range(len(moduli))
    ]
    return tuple(f % m if m else f for f, m in zip(flow, moduli, strict=True))


@dataclass(frozen=True)
class BlockSplit:
    """A truncated split of a block-sparse two-site tensor: the two cores, the kept rank
    and the discarded weight."""

    left: Any
    right: Any
    rank: int
    discarded: float


def split(
    theta: Any,
    *,
    max_bond: int,
    budget: float | None,
    isometry: str,
    rows: int = 2,
    keep_all: bool = False,
) -> BlockSplit:
    """Split ``θ[a, s, t, c]`` (or a core) after its first ``rows`` legs (incoming ones)
    by one SVD per charge of the cut, truncated over all blocks together: at most
    ``max_bond`` values kept, and (``budget``) as few as drop at most that squared weight;
    only numerically zero values go when ``budget`` is None, none with ``keep_all`` (a QR
    of each block: the bond keeps every channel it can). The singular values go right of
    the cut (``isometry="left"``) or left of it."""
    row_maps = [index.chargemap for index in theta.indices[:rows]]
    col_maps = [index.chargemap for index in theta.indices[rows:]]
    components = moduli(theta)
    by_cut: dict = {}
    for sector, block in theta.blocks.items():
        by_cut.setdefault(cut_charge(sector[:rows], components), {})[sector] = block
    factors = {}
    for cut, blocks in by_cut.items():
        row_keys = sorted({s[:rows] for s in blocks})
        col_keys = sorted({s[rows:] for s in blocks})
        row_sizes = [math.prod(m[q] for m, q in zip(row_maps, r, strict=True)) for r in row_keys]
        col_sizes = [math.prod(m[q] for m, q in zip(col_maps, c, strict=True)) for c in col_keys]
        matrix = np.zeros((sum(row_sizes), sum(col_sizes)), dtype=theta.dtype)
        r0 = np.cumsum([0, *row_sizes])
        c0 = np.cumsum([0, *col_sizes])
        for sector, block in blocks.items():
            i, j = row_keys.index(sector[:rows]), col_keys.index(sector[rows:])
            matrix[r0[i] : r0[i + 1], c0[j] : c0[j + 1]] = block.reshape(row_sizes[i], col_sizes[j])
        u, s, vh = np.linalg.svd(matrix, full_matrices=False)
        factors[cut] = (row_keys, col_keys, r0, c0, u, s, vh)
    keep = (
        {cut: len(f[5]) for cut, f in factors.items()}
        if keep_all
        else block_ranks(
            {cut: f[5] for cut, f in factors.items()},
            max_bond,
            budget,
            (
                math.prod(i.size_total for i in theta.indices[:rows]),
                math.prod(i.size_total for i in theta.indices[rows:]),
            ),
            float(np.finfo(theta.dtype).eps),
        )
    )
    total = sum(float(f[5] @ f[5]) for f in factors.values())
    kept_weight = sum(float(f[5][: keep[cut]] @ f[5][: keep[cut]]) for cut, f in factors.items())
    left_blocks, right_blocks, bond = {}, {}, {}
    for cut, (row_keys, col_keys, r0, c0, u, s, vh) in factors.items():
        k = keep[cut]
        if k == 0:
            continue
        bond[cut] = k
        u, s, vh = u[:, :k], s[:k], vh[:k]
        if isometry == "left":
            vh = s[:, None] * vh
        else:
            u = u * s
        for i, r in enumerate(row_keys):
            shape = (*(m[q] for m, q in zip(row_maps, r, strict=True)), k)
            left_blocks[(*r, cut)] = u[r0[i] : r0[i + 1]].reshape(shape)
        for j, c in enumerate(col_keys):
            shape = (k, *(m[q] for m, q in zip(col_maps, c, strict=True)))
            right_blocks[(cut, *c)] = vh[:, c0[j] : c0[j + 1]].reshape(shape)
    if not bond:
        raise ValueError("θ: the tensor to split is zero")
    left = sr.AbelianArray(
        [*theta.indices[:rows], sr.BlockIndex(bond, dual=True)],
        charge=theta.charge,
        blocks=left_blocks,
        symmetry=theta.symmetry,
    )
    right = sr.AbelianArray(
        [sr.BlockIndex(bond, dual=False), *theta.indices[rows:]],
        charge=theta.charge,
        blocks=right_blocks,
        symmetry=theta.symmetry,
    )
    return BlockSplit(left, right, sum(bond.values()), max(total - kept_weight, 0.0))


def cut_charge(keys: Sequence, components: tuple, signs: Sequence[int] | None = None) -> Any:
    """The charge key a cut carries: the sum of the leg keys ``keys`` (each times its sign in
    ``signs``, default +1: incoming legs left of the cut), mod n for Z_n components.

    Example:
        >>> cut_charge((1, -1, 2), (0,)), cut_charge(((1, 1), (1, 0)), (0, 2))
        (2, (2, 1))
    """
    signs = [1] * len(keys) if signs is None else signs
    flow = sum(s * np.atleast_1d(np.array(q)) for s, q in zip(signs, keys, strict=True))
    return charge_key(_reduce(flow, components))


def _reduce(charge: np.ndarray, moduli: tuple) -> np.ndarray:
    return np.array([c % m if m else c for c, m in zip(charge, moduli, strict=True)])


def block_ranks(
    values: dict, max_bond: int, budget: float | None, shape: tuple, eps: float
) -> dict:
    """How many singular values of each block to keep: the largest over all blocks, as
    many as [choose_rank][tnkit.truncation.choose_rank] keeps of them all together (the
    dense split's rule on the same matrix ``shape``)."""
    everything = np.concatenate([v for v in values.values()]) if values else np.zeros(0)
    if everything.size == 0:
        return {cut: 0 for cut in values}
    order = np.sort(everything)[::-1]
    count = choose_rank(order, shape=shape, eps=eps, max_bond=max_bond, budget=budget)
    threshold = order[count - 1]
    keep = {cut: int(np.count_nonzero(v >= threshold)) for cut, v in values.items()}
    excess = sum(keep.values()) - count  # ties at the threshold: drop from the last blocks
    for cut in reversed(list(keep)):
        if excess <= 0:
            break
        drop = min(excess, int(np.count_nonzero(values[cut] == threshold)), keep[cut])
        keep[cut] -= drop
        excess -= drop
    return keep


def right_canonical(cores: list) -> list:
    """Right-canonical block cores of the same state (centre, with the norm, at site 0):
    one right-to-left sweep of SVDs per charge of each core's left leg."""
    cores = list(cores)
    for k in range(len(cores) - 1, 0, -1):
        pair = merge(cores[k - 1], cores[k])
        step = split(pair, max_bond=np.iinfo(np.int64).max, budget=None, isometry="right")
        cores[k - 1], cores[k] = step.left, step.right
    return cores
