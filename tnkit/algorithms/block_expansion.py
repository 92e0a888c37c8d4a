"""Subspace expansion on block-sparse cores: the one-site moves and cuts of
[expansion][tnkit.algorithms.expansion], with every bond basis resolved by charge.

Moving right, the centre ``A[a, s, b]`` and the perturbation ``P[a, s, v, c]`` (the left
environment times ``A`` times the MPO core) share the rows ``(a, s)``. For every charge of
the cut, their rows of that charge form one matrix ``[A_q, P_q]``; the new bond keeps the
span of ``A_q`` and a Gaussian sketch of ``P_q`` outside it (as on the dense path: a
quarter of ``max_bond`` new directions in all, shared between the charges by the
perturbation's weight outside the span), and the neighbour gets ``Uᴴ A`` times itself.
Moving left the same with the columns ``(s, c)`` shared and the right environment. The
plain move is the truncated split of ``A``; ``trim_blocks`` cuts the bond behind the
next centre back by its singular values, over all charges together. Charges flow as in
[blocks][tnkit.algorithms.blocks]: MPS cores ``(in, in, out)``, MPO cores ``(in, in, out,
out)``, left environments ``(in, out, out)``, right ones ``(out, in, in)``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import symmray as sr

from .block_groups import moduli
from .blocks import cut_charge, merge, split
from .expansion import Expansion, Trim, offered, sketched_space

__all__ = [
    "expand_blocks",
    "perturbation_left",
    "perturbation_right",
    "trim_blocks",
]


def perturbation_right(env: Any, centre: Any, op: Any) -> Any:
    """``P[a, s, v, c] = Σ E[a, w, b] A[b, t, c] W[w, s, t, v]``: what the move right
    offers the bond, its rows ``(a, s)`` first."""
    x = sr.tensordot(env, centre, axes=((2,), (0,)))  # (a, w, t, c)
    x = sr.tensordot(x, op, axes=((1, 2), (0, 2)))  # (a, c, s, v)
    return x.transpose((0, 2, 3, 1))


def perturbation_left(env: Any, centre: Any, op: Any) -> Any:
    """``P[w, b, s, e] = Σ W[w, s, t, v] A[b, t, c] E[e, v, c]``: what the move left offers
    the bond, its columns ``(s, e)`` last."""
    x = sr.tensordot(centre, env, axes=((2,), (2,)))  # (b, t, e, v)
    x = sr.tensordot(op, x, axes=((2, 3), (1, 3)))  # (w, s, b, e)
    return x.transpose((0, 2, 1, 3))


def expand_blocks(
    centre: Any,
    neighbour: Any,
    *,
    perturbation: Any | None,
    direction: str,
    max_bond: int,
    budget: float | None,
) -> Expansion:
    """Move the unit-norm block-sparse ``centre`` one site in ``direction`` (see the module
    docstring); ``perturbation`` from ``perturbation_right`` or ``perturbation_left``
    enlarges the bond (the state is unchanged, ``discarded`` is zero); None is the plain
    move, cut to ``max_bond`` channels over all charges (and ``budget``) only where the
    split exceeds them, the weight lost reported as ``discarded``.

    Example:
        >>> import tnkit as tn
        >>> from tnkit.algorithms.engines import BlockEngine
        >>> H = tn.models.heisenberg(4, conserve="Sz")
        >>> psi = tn.MPS.product_state(["up", "dn"] * 2, conserve="Sz")
        >>> engine = BlockEngine(H)
        >>> cores, ops = engine.start(psi, H)
        >>> P = perturbation_right(engine.edge(cores), cores[0], ops[0])
        >>> step = expand_blocks(cores[0], cores[1], perturbation=P, direction="right",
        ...                      max_bond=8, budget=None)
        >>> step.isometry.shape[-1], step.discarded  # bond 1 -> 2: both charges of site 0
        (2, 0.0)
    """
    rightward = direction == "right"
    if perturbation is None:  # the plain move: the truncated split of the centre
        rows, side = (2, "left") if rightward else (1, "right")
        cut = split(centre, max_bond=max_bond, budget=budget, isometry=side, rows=rows)
        isometry, carried = (cut.left, cut.right) if rightward else (cut.right, cut.left)
        discarded = cut.discarded
    elif rightward:
        isometry = _basis([centre, perturbation], side="rows", max_bond=max_bond)
        carried = sr.tensordot(isometry.conj(), centre, axes=((0, 1), (0, 1)))  # (k, b)
        discarded = 0.0
    else:
        isometry = _basis([centre, perturbation], side="columns", max_bond=max_bond)
        carried = sr.tensordot(centre, isometry.conj(), axes=((1, 2), (1, 2)))  # (a, k)
        discarded = 0.0
    if rightward:
        following = sr.tensordot(carried, neighbour, axes=((1,), (0,)))
    else:
        following = merge(neighbour, carried)
    return Expansion(isometry, following / float(following.norm()), discarded)


def trim_blocks(
    centre: Any, behind: Any, *, direction: str, max_bond: int, budget: float | None = None
) -> Trim:
    """[trim][tnkit.algorithms.expansion.trim] on blocks: the bond behind the centre cut
    back by one SVD per charge of the bond, truncated over all charges together."""
    if direction == "right":
        cut = split(centre, max_bond=max_bond, budget=budget, isometry="left", rows=1)
        kept = sr.tensordot(behind, cut.left, axes=((2,), (0,)))
        return Trim(cut.right / float(cut.right.norm()), kept, cut.discarded)
    cut = split(centre, max_bond=max_bond, budget=budget, isometry="right", rows=2)
    kept = sr.tensordot(cut.right, behind, axes=((1,), (0,)))
    return Trim(cut.left / float(cut.left.norm()), kept, cut.discarded)


def _basis(parts: list, *, side: str, max_bond: int, shared: int = 2) -> Any:
    """The expanded bond's basis over every charge of the cut, for the matrix whose shared
    legs (the first or the last ``shared`` legs of every part) index its rows
    (``side="rows"``, the parts side by side) or its columns (``"columns"``, stacked): an
    isometry ``(shared legs…, k)`` or ``(k, shared legs…)``. The parts are the centre and
    the perturbation, which offers new directions (see ``_expanded``)."""
    rows_shared = side == "rows"
    legs = [p.indices[:shared] if rows_shared else p.indices[-shared:] for p in parts]
    maps: list[dict] = [{} for _ in range(shared)]
    for part_legs in legs:
        for leg, index in zip(maps, part_legs, strict=True):
            leg.update(index.chargemap)
    local = math.prod(sum(m.values()) for m in maps)  # the dimension of the local space
    bond = parts[0].indices[-1 if rows_shared else 0].size_total
    if bond + offered(bond, max_bond) >= local:
        # the whole local space fits in the offer: keep it all
        whole = _whole_space(maps, legs[0], moduli(parts[0]), right_of_cut=not rows_shared)
        factors = {cut: (keys, o, np.eye(int(o[-1]))) for cut, (keys, o) in whole.items()}
    else:
        matrices = {
            cut: (keys, offsets, matrix if rows_shared else matrix.conj().T, own)
            for cut, (keys, offsets, matrix, own) in _cut_matrices(parts, shared, rows_shared, maps)
        }
        offers = _offers(matrices, max_bond)
        factors = {
            cut: (keys, offsets, _expanded(matrix, own, offers[cut]))
            for cut, (keys, offsets, matrix, own) in matrices.items()
        }
    blocks, bond_map = {}, {}
    for cut, (keys, offsets, u) in factors.items():
        k = u.shape[1]
        if k == 0:
            continue
        bond_map[cut] = k
        for i, key in enumerate(keys):
            shape = tuple(m[q] for m, q in zip(maps, key, strict=True))
            vectors = u[offsets[i] : offsets[i + 1]]
            if rows_shared:
                blocks[(*key, cut)] = vectors.reshape(*shape, k)
            else:  # the isometry's rows are the conjugated right singular vectors
                blocks[(cut, *key)] = vectors.conj().T.reshape(k, *shape)
    if not bond_map:
        raise ValueError("centre: the tensor to move is zero")
    shared_legs = [
        sr.BlockIndex(m, dual=index.dual) for m, index in zip(maps, legs[0], strict=True)
    ]
    new = sr.BlockIndex(bond_map, dual=rows_shared)
    indices = [*shared_legs, new] if rows_shared else [new, *shared_legs]
    return sr.AbelianArray(
        indices, charge=parts[0].charge, blocks=blocks, symmetry=parts[0].symmetry
    )


def _whole_space(maps: list, legs: Any, components: tuple, *, right_of_cut: bool) -> dict:
    """Per charge of the cut, every combination of the shared legs' charges that reaches
    it (in order) and their offsets: the whole local space, resolved by charge. The cut
    carries the signed sum of the shared legs' charges (incoming +, outgoing −), negated
    when the shared legs are right of the cut."""
    groups: dict = {}
    for key in itertools.product(*[sorted(m) for m in maps]):
        signs = [(-1 if index.dual else 1) * (-1 if right_of_cut else 1) for index in legs]
        groups.setdefault(cut_charge(key, components, signs), []).append(key)
    out = {}
    for cut, keys in groups.items():
        sizes = [math.prod(m[q] for m, q in zip(maps, key, strict=True)) for key in keys]
        out[cut] = (keys, np.cumsum([0, *sizes]))
    return out


def _cut_matrices(parts: list, shared: int, rows_shared: bool, maps: list) -> Any:
    """Per charge of the cut: (the shared keys in order, their offsets, the parts' blocks
    side by side with the shared legs as rows, or stacked with them as columns, and how
    many columns or rows of it are the first part's)."""
    components = moduli(parts[0])
    groups: dict = {}  # cut charge -> per part {other key: {shared key: matrix}}
    for n, part in enumerate(parts):
        own = part.ndim - shared
        for sector, block in part.blocks.items():
            key = sector[:shared] if rows_shared else sector[-shared:]
            other = sector[shared:] if rows_shared else sector[:-shared]
            # the charge the cut carries, left to right: the incoming legs left of it
            cut = cut_charge(key if rows_shared else other, components)
            width = math.prod(block.shape[shared:] if rows_shared else block.shape[:own])
            matrix = block.reshape(-1, width) if rows_shared else block.reshape(width, -1)
            groups.setdefault(cut, [{} for _ in parts])[n].setdefault(other, {})[key] = matrix
    for cut, by_part in groups.items():
        keys = sorted({k for part in by_part for entries in part.values() for k in entries})
        sizes = [math.prod(m[q] for m, q in zip(maps, key, strict=True)) for key in keys]
        offsets = np.cumsum([0, *sizes])
        pieces, own = [], 0
        for n, part in enumerate(by_part):
            for other in sorted(part):
                entries = part[other]
                width = next(iter(entries.values())).shape[1 if rows_shared else 0]
                shape = (offsets[-1], width) if rows_shared else (width, offsets[-1])
                piece = np.zeros(shape, dtype=parts[0].dtype)
                for i, key in enumerate(keys):
                    if key in entries:
                        where = slice(offsets[i], offsets[i + 1])
                        if rows_shared:
                            piece[where] = entries[key]
                        else:
                            piece[:, where] = entries[key]
                pieces.append(piece)
                own += width if n == 0 else 0
        yield cut, (keys, offsets, np.concatenate(pieces, axis=1 if rows_shared else 0), own)


def _offers(matrices: dict, max_bond: int) -> dict:
    """How many new directions each charge of the cut offers: as many in all as the dense
    expansion offers (``offered``), shared in proportion to the perturbation's weight
    outside the centre's span in each charge, as a Gaussian sketch of the whole
    perturbation would share them."""
    bond = sum(own for *_, own in matrices.values())
    weights = {cut: _outside(matrix, own) for cut, (_, _, matrix, own) in matrices.items()}
    total, whole = offered(bond, max_bond), sum(weights.values())
    return {cut: math.ceil(total * weights[cut] / whole) if whole > 0 else 0 for cut in matrices}


def _outside(matrix: np.ndarray, own: int) -> float:
    """The squared weight of the perturbation (columns from ``own`` on) outside the span of
    the centre (the first ``own`` columns)."""
    perturbation = matrix[:, own:]
    if own == 0 or perturbation.shape[1] == 0:
        return float(np.linalg.norm(perturbation) ** 2)
    span = np.linalg.qr(matrix[:, :own])[0]
    return float(np.linalg.norm(perturbation - span @ (span.conj().T @ perturbation)) ** 2)


def _expanded(matrix: np.ndarray, own: int, offered: int) -> np.ndarray:
    """An orthonormal basis of the span of ``matrix``'s first ``own`` columns (the
    centre's) and a sketch of ``offered`` directions of the rest (the perturbation's)
    outside it; the whole space when that is no larger."""
    rows = matrix.shape[0]
    offered = min(matrix.shape[1] - own, offered)
    if own + offered >= rows:
        return np.eye(rows, dtype=matrix.dtype)
    if offered == 0:
        return np.linalg.qr(matrix[:, :own])[0]
    if own == 0:
        sketch = np.random.default_rng(0).standard_normal((matrix.shape[1], offered))
        return np.linalg.qr(matrix @ sketch.astype(matrix.dtype))[0]
    return sketched_space(matrix[:, :own], matrix[:, own:], offered)
