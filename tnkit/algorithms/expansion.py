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

__all__ = ["Expansion", "MixingFactor", "expand"]

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
) -> Expansion:
    """Move the centre one site in ``direction``, enlarging the bond on the way.

    Moving right, the centre ``A`` (Dl, d, Dr) gets the columns of the perturbation
    ``α·P``, ``P[a, s, (v, c)] = Σ env[a, w, b] A[b, t, c] W[w, s, t, v]`` (the left
    environment times ``A`` times the MPO core ``op``), and the neighbour the matching zero
    rows; the expanded bond is cut back to ``max_bond`` (and ``budget``) by the eigenvectors
    of ``[A, αP][A, αP]ᴴ``, and the neighbour gets ``Uᴴ A`` times itself, so only the
    subspace changes, by at most the cut. Moving left the same with the right environment.
    With ``alpha == 0`` it is the plain move of the centre (an exact split, then the cap).

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
        basis = _expanded_basis(flat, alpha * left_product(env, op)(centre), max_bond, budget)
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
    """The leading left singular vectors of ``[flat, perturbation]``, from the eigenvectors
    of its Gram matrix (rows × rows: cheaper than any SVD of the wide expanded matrix; the
    state is projected on them exactly, so their rounding moves no weight)."""
    xp = backend.namespace(flat)
    rows = flat.shape[0]
    expanded = xp.concat([flat, perturbation], axis=1)
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
    return xp.flip(vectors, axis=1)[:, :rank]
