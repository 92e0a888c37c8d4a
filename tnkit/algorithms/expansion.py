"""Subspace expansion for one-site sweeps (Hubig, McCulloch, Schollwöck & Wolf, PRB 91, 155115
(2015)): enlarge a bond by a perturbation of the centre, truncate it back, adapt its weight.

Pure functions on cores and environments, and the immutable rule for the mixing factor α;
which site comes next and which environments grow stays with the sweep (``dmrg``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .. import _backend as backend
from .._einsum import contract
from ..linalg import orthonormalize, truncated_split
from ..truncation import choose_rank
from .environments import left_product, mirror, mirror_op

__all__ = [
    "Expansion",
    "MixingFactor",
    "RecordingOperator",
    "NEW_FRACTION",
    "expand",
    "sketched_space",
]

# The mixing factor starts here, and stays within these bounds while the expansion is on.
ALPHA_START = 1e-3
ALPHA_MIN = 1e-9
ALPHA_MAX = 0.1
# Hubig et al. §II.C: shrink α when the truncation after the expansion gives back more than
# this much of what the optimisation gained; grow it when it gives back less than the other.
_SHRINK_ABOVE = 0.3
_GROW_BELOW = 0.05
_FACTOR = 1.2
# A gain below this (relative to |E|) is the local solver's noise: converged, so α shrinks.
_ENERGY_NOISE = 1e-12
# Gram eigenvalues below this (times rows·ε·λ_max) are rounding: their directions are noise.
_GRAM_NOISE = 100.0
# At a full bond the expansion offers this fraction of the cap as new directions (sketched
# from the perturbation outside the centre's span), not all χ·d − χ of them: the choice of
# the kept χ is then an eigenproblem of ~1.25χ, not of χ·d (a quarter of the time at d = 2,
# a thirtieth at d = 4), and the optimisation uses only a few new directions per bond anyway
# (Gleis, Li & von Delft, PRL 130, 246402 (2023)).
NEW_FRACTION = 0.25


@dataclass(frozen=True)
class MixingFactor:
    """The weight α of the perturbation, adapted site by site from two energy changes.

    ``before``/``after`` are the energies around the last local optimisation; the energy
    before the next one (the state after the truncation in between) completes the picture.

    Example:
        >>> m = MixingFactor(1e-3).optimised(before=-1.0, after=-2.0)
        >>> m.adapted(truncated=-1.5).alpha < 1e-3  # the cut gave back half the gain
        True
        >>> m.adapted(truncated=-1.99).alpha > 1e-3  # it gave back 1%
        True
    """

    alpha: float
    before: float = math.nan
    after: float = math.nan

    def optimised(self, *, before: float, after: float) -> MixingFactor:
        """Record the energies around a local optimisation."""
        return replace(self, before=before, after=after)

    def adapted(self, *, truncated: float) -> MixingFactor:
        """α after seeing ``truncated``, the energy once the last expansion was cut back.

        The optimisation gained ``before − after``; the truncation cost ``truncated −
        after``. A cost above 30 % of the gain (or any cost without a gain: converged)
        shrinks α by 1.2, a cost below 5 % grows it by 1.2, within [1e-9, 0.1]; a gain
        below 1e-12·|E| counts as none.
        """
        if self.alpha == 0.0 or math.isnan(self.after):
            return replace(self, before=math.nan, after=math.nan)
        gain, cost = self.before - self.after, truncated - self.after
        alpha = self.alpha
        if gain <= _ENERGY_NOISE * max(1.0, abs(self.after)) or cost > _SHRINK_ABOVE * gain:
            alpha = max(alpha / _FACTOR, ALPHA_MIN)
        elif cost < _GROW_BELOW * gain:
            alpha = min(alpha * _FACTOR, ALPHA_MAX)
        return MixingFactor(alpha)


@dataclass(frozen=True)
class Expansion:
    """One expanded and truncated bond: the new isometric core on the site just optimised,
    the new centre (unit norm) on its neighbour, and the weight the state lost."""

    isometry: Any
    centre: Any
    discarded: float


def expand(
    centre: Any,
    neighbour: Any,
    env: Any,
    op: Any,
    *,
    alpha: float,
    direction: str,
    max_bond: int,
    budget: float | None = None,
    perturbation: Any = None,
) -> Expansion:
    """Move the centre one site in ``direction``, enlarging the bond on the way.

    Moving right, the centre ``A`` (Dl, d, Dr) gets the columns of the perturbation
    ``α·P``, ``P[a, s, (v, c)] = Σ env[a, w, b] A[b, t, c] W[w, s, t, v]`` (the left
    environment times ``A`` times the MPO core ``op``), and the neighbour the matching zero
    rows; the expanded bond is cut back to ``max_bond`` (and ``budget``) by the eigenvectors
    of ``[A, αP][A, αP]ᴴ``, and the neighbour gets ``Uᴴ A`` times itself, so only the
    subspace changes, by at most the cut. Moving left the same with the right environment.
    With ``alpha == 0`` it is the plain move of the centre (an exact split, then the cap).
    ``perturbation``: ``P`` already formed (``(Dl·d, w·Dr)``; moving left, of the mirrored
    chain), as [RecordingOperator][tnkit.algorithms.expansion.RecordingOperator] gives it.
    At a full bond the new directions offered are the centre's span plus a sketch of ``P``
    outside it (a quarter of ``max_bond`` of them), so the cut is decided on ~1.25·χ
    directions rather than χ·d; below the cap the bond may grow to it at once.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H, psi = tn.models.heisenberg(4), tn.MPS.random([2] * 4, 1, seed=0)
        >>> a, b = psi.cores[0] / psi.norm(), psi.cores[1]
        >>> step = expand(a, b, np.ones((1, 1, 1)), H.cores[0], alpha=0.1, direction="right",
        ...               max_bond=8)
        >>> step.isometry.shape, step.centre.shape  # bond 1 -> 2 from a product state
        ((1, 2, 2), (2, 2, 1))
    """
    if direction == "left":
        step = expand(
            mirror(centre),
            mirror(neighbour),
            env,
            mirror_op(op),
            alpha=alpha,
            direction="right",
            max_bond=max_bond,
            budget=budget,
            perturbation=perturbation,
        )
        return Expansion(mirror(step.isometry), mirror(step.centre), step.discarded)
    xp = backend.namespace(centre)
    dl, d, dr = centre.shape
    flat = xp.reshape(centre, (dl * d, dr))
    if alpha == 0.0:
        basis, carried, discarded = _plain_move(flat, max_bond, budget)
    elif budget is None and dl * d <= max_bond:  # the whole local space fits: keep it all
        eye = xp.eye(dl * d, dtype=flat.dtype, device=backend.device(flat))
        basis, carried, discarded = eye, flat, 0.0
    else:
        if perturbation is None:
            perturbation = left_product(env, op)(centre)
        basis = _expanded_basis(flat, alpha * perturbation, max_bond, budget)
        carried = backend.conj_t(basis) @ flat
        discarded = max(0.0, backend.frob_sq(flat) - backend.frob_sq(carried))
    rank = basis.shape[1]
    following = contract("ab,bsc->asc", carried, neighbour)
    following = following / backend.frob_sq(following) ** 0.5
    return Expansion(xp.reshape(basis, (dl, d, rank)), following, discarded)


def _plain_move(flat: Any, max_bond: int, budget: float | None) -> tuple[Any, Any, float]:
    """``flat = basis @ carried`` with an isometric ``basis``: a QR where nothing is cut (a
    tenth of an SVD's time), else the truncated split."""
    rows, columns = flat.shape
    if budget is None and columns <= min(max_bond, rows):
        basis, carried = orthonormalize(flat)
        return basis, carried, 0.0
    split = truncated_split(flat, max_bond=max_bond, budget=budget, isometry="left")
    return split.left, split.right, split.discarded


def _expanded_basis(flat: Any, perturbation: Any, max_bond: int, budget: float | None) -> Any:
    """The leading left singular vectors of ``[flat, perturbation]`` within the centre's
    span and a sketch of the perturbation outside it (all of the local space when that is
    no larger), from the eigenvectors of the Gram matrix there (cheaper than any SVD of the
    wide expanded matrix; the state is projected on them exactly, so their rounding moves no
    weight)."""
    xp = backend.namespace(flat)
    rows, columns = flat.shape
    offered = min(
        perturbation.shape[1], max(max_bond - columns, math.ceil(NEW_FRACTION * max_bond))
    )
    if columns + offered >= rows:
        space, expanded = None, xp.concat([flat, perturbation], axis=1)
    else:
        space = sketched_space(flat, perturbation, offered)
        expanded = backend.conj_t(space) @ xp.concat([flat, perturbation], axis=1)
    values, vectors = backend.eigh(backend.gram_upper(backend.conj_t(expanded)), overwrite=True)
    values = np.clip(np.asarray(backend.to_numpy(values), dtype=np.float64)[::-1], 0.0, None)
    noise = _GRAM_NOISE * rows * backend.eps(flat.dtype) * values[0]
    resolved = max(1, int(np.count_nonzero(values > noise)))
    rank = choose_rank(
        np.sqrt(values[:resolved]),
        shape=(rows, rows),
        eps=backend.eps(flat.dtype),
        max_bond=max_bond,
        budget=budget,
    )
    kept = xp.flip(vectors, axis=1)[:, :rank]
    return kept if space is None else space @ kept


def sketched_space(flat: Any, perturbation: Any, offered: int) -> Any:
    """An orthonormal basis of the span of ``flat`` and ``offered`` directions of
    ``perturbation`` outside it (a Gaussian sketch, the same for equal shapes: a resumed
    run repeats it), each part orthogonalised twice against the first."""
    xp = backend.namespace(flat)
    own = backend.qr(flat)[0]
    sketch = np.random.default_rng(0).standard_normal((perturbation.shape[1], offered))
    new = perturbation @ backend.from_numpy(sketch.astype(backend.dtype_name(flat.dtype)), flat)
    for _ in range(2):
        new = backend.qr(new - own @ (backend.conj_t(own) @ new))[0]
    return xp.concat([own, new], axis=1)


class RecordingOperator:
    """The one-site effective operator ``A -> H_eff A`` that keeps, for every vector it is
    applied to, the half product with the environment on the side the centre leaves from:
    the expansion's perturbation ``P`` of any combination of those vectors (the Lanczos
    result) is then the same combination of the kept halves, no contraction of its own.

    ``near``, ``op``, ``far``: the environment on the side the centre leaves from, the MPO
    core, the other environment, all as seen from that side (moving left: the mirrored
    chain, ``mirror_op(op)``); ``mirrored`` says whether vectors are mirrored to get there.
    ``start`` (optional, unit norm): its product is formed at once, ``energy`` = ⟨v|H|v⟩,
    and handed back when the solver asks for it. ``applied`` counts the products formed.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.algorithms.environments import one_site_matvec
        >>> op, rng = tn.models.heisenberg(3).cores[1], np.random.default_rng(0)
        >>> near, far = rng.random((2, op.shape[0], 2)), rng.random((2, op.shape[3], 2))
        >>> a = rng.random((2, 2, 2))
        >>> recording = RecordingOperator(near, op, far, mirrored=False)
        >>> bool(np.allclose(recording(a), one_site_matvec(near, op, far)(a)))
        True
        >>> bool(np.allclose(recording.perturbation(2 * a), 2 * left_product(near, op)(a)))
        True
    """

    def __init__(self, near: Any, op: Any, far: Any, *, mirrored: bool, start: Any = None):
        xp = backend.namespace(near)
        self._xp, self._mirrored = xp, mirrored
        self._half = left_product(near, op)
        self._chi_near, self._d = near.shape[0], op.shape[1]
        self._far = xp.reshape(xp.permute_dims(far, (1, 2, 0)), (-1, far.shape[0]))
        self._inputs: list = []
        self._halves: list = []
        self.applied = 0
        self._start, self._start_product, self.energy = start, None, math.nan
        if start is not None:
            self._start_product = self._apply(start)
            bra = xp.conj(start) if backend.is_complex(start.dtype) else start
            overlap = xp.sum(bra * self._start_product)
            self.energy = float(backend.to_numpy(overlap).real)

    def __call__(self, x: Any) -> Any:
        if self._start_product is not None:
            product, self._start_product = self._start_product, None
            if backend.frob_sq(x - self._start) <= 1e-24:
                return product
            self._inputs, self._halves = [], []  # the start was not the first vector
        return self._apply(x)

    def _apply(self, x: Any) -> Any:
        xp = self._xp
        self.applied += 1
        half = self._half(mirror(x) if self._mirrored else x)
        self._inputs.append(xp.reshape(x, (-1,)))
        self._halves.append(half)
        y = xp.reshape(half @ self._far, (self._chi_near, self._d, -1))
        return mirror(y) if self._mirrored else y

    def perturbation(self, vector: Any) -> Any:
        """``P`` of ``vector`` (``(Dl·d, w·Dr)`` as seen from the side left), from the kept
        halves when ``vector`` lies in the span of the (orthonormal) vectors applied to."""
        xp = self._xp
        flat = xp.reshape(vector, (-1,))
        if self._inputs:
            inputs = xp.stack(self._inputs)
            weights = (xp.conj(inputs) if backend.is_complex(inputs.dtype) else inputs) @ flat
            if backend.frob_sq(flat - weights @ inputs) <= 1e-24 * backend.frob_sq(flat):
                halves = xp.stack(self._halves)
                return xp.tensordot(weights, halves, axes=1)
        return self._half(mirror(vector) if self._mirrored else vector)
