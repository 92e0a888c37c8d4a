"""Subspace expansion for one-site sweeps: enlarge a bond by the directions a perturbation
of the centre reaches (Hubig, McCulloch, Schollwöck & Wolf, PRB 91, 155115 (2015)), and
cut it back by the weights the next optimisation gives them (as in the controlled bond
expansion of Gleis, Li & von Delft, PRL 130, 246402 (2023)).

Moving right from site i: the optimised centre keeps its whole span on the bond, plus a
sketch of the perturbation ``P = E·A·W`` outside it (``expand``); site i+1 is optimised
with the enlarged bond on its left, and then that bond is cut back to ``max_bond`` by the
singular values of the new centre (``trim``), the isometry on site i taking the kept
basis (its environment is grown again). The truncation is decided on real weights, after the
optimisation has used the new directions, so no mixing factor weighs them.

Pure functions on cores and environments; which site comes next and which environments
grow stays with the sweep (``dmrg``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend as backend
from .._einsum import contract
from ..linalg import orthonormalize, truncated_split
from .environments import left_product, mirror, mirror_op

__all__ = ["Expansion", "NEW_FRACTION", "Trim", "expand", "offered", "sketched_space", "trim"]

# At a full bond the expansion offers this fraction of the cap as new directions (sketched
# from the perturbation outside the centre's span), not all χ·d − χ of them: the next
# optimisation runs on a bond of ~1.25χ, and it uses only a few new directions per bond
# anyway (Gleis, Li & von Delft, PRL 130, 246402 (2023)).
NEW_FRACTION = 0.25


@dataclass(frozen=True)
class Expansion:
    """One move of the centre: the new isometric core on the site just optimised, the new
    centre (unit norm) on its neighbour, and the weight the state lost (zero when the bond
    was expanded: the centre's whole span is kept)."""

    isometry: Any
    centre: Any
    discarded: float


@dataclass(frozen=True)
class Trim:
    """The bond behind a centre cut back: the new centre (unit norm), the core behind it
    times the kept basis (still an isometry), and the squared weight dropped."""

    centre: Any
    behind: Any
    discarded: float


def offered(bond: int, max_bond: int) -> int:
    """How many new directions an expansion offers a bond of ``bond`` channels: the room
    left below ``max_bond``, and at least ``NEW_FRACTION`` of it.

    Example:
        >>> offered(10, 64), offered(64, 64)
        (54, 16)
    """
    return max(max_bond - bond, math.ceil(NEW_FRACTION * max_bond))


def expand(
    centre: Any,
    neighbour: Any,
    env: Any,
    op: Any,
    *,
    direction: str,
    max_bond: int,
    budget: float | None = None,
    grow: bool = True,
) -> Expansion:
    """Move the centre one site in ``direction``; with ``grow``, enlarge the bond on the way.

    Moving right, the centre ``A`` (Dl, d, Dr) keeps its whole span on the bond, and the
    bond gets ``offered(Dr, max_bond)`` more directions: a Gaussian sketch of the
    perturbation ``P[a, s, (v, c)] = Σ env[a, w, b] A[b, t, c] W[w, s, t, v]`` (the left
    environment times ``A`` times the MPO core ``op``) outside that span, or all of the
    local space when that is no larger. The neighbour gets ``Uᴴ A`` times itself: the state
    is unchanged, and the bond is cut back by [trim][tnkit.algorithms.expansion.trim] once
    the neighbour is optimised. Without ``grow`` it is the plain move: an exact split, cut
    to ``max_bond`` (and ``budget``) only where it exceeds them. Moving left the same with
    the right environment.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H, psi = tn.models.heisenberg(4), tn.MPS.random([2] * 4, 1, seed=0)
        >>> a, b = psi.cores[0] / psi.norm(), psi.cores[1]
        >>> step = expand(a, b, np.ones((1, 1, 1)), H.cores[0], direction="right",
        ...               max_bond=8)
        >>> step.isometry.shape, step.centre.shape, step.discarded  # bond 1 -> 2
        ((1, 2, 2), (2, 2, 1), 0.0)
    """
    if direction == "left":
        step = expand(
            mirror(centre),
            mirror(neighbour),
            env,
            mirror_op(op),
            direction="right",
            max_bond=max_bond,
            budget=budget,
            grow=grow,
        )
        return Expansion(mirror(step.isometry), mirror(step.centre), step.discarded)
    xp = backend.namespace(centre)
    dl, d, dr = centre.shape
    flat = xp.reshape(centre, (dl * d, dr))
    if not grow:
        basis, carried, discarded = _plain_move(flat, max_bond, budget)
    else:
        extra = offered(dr, max_bond)
        if dr + extra >= dl * d:  # the whole local space fits in the offer: keep it all
            basis = xp.eye(dl * d, dtype=flat.dtype, device=backend.device(flat))
        else:
            perturbation = left_product(env, op)(centre)
            basis = sketched_space(flat, perturbation, min(extra, perturbation.shape[1]))
        carried, discarded = backend.conj_t(basis) @ flat, 0.0
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


def trim(
    centre: Any, behind: Any, *, direction: str, max_bond: int, budget: float | None = None
) -> Trim:
    """Cut the bond behind ``centre`` (its left bond moving right, its right bond moving
    left) to ``max_bond`` channels (and ``budget``) by the centre's singular values over
    that bond; ``behind``, the isometric core on the other side, takes the kept basis.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> behind = np.linalg.qr(rng.standard_normal((6, 5)))[0].reshape(3, 2, 5)
        >>> centre = rng.standard_normal((5, 2, 2))
        >>> cut = trim(centre / np.linalg.norm(centre), behind, direction="right", max_bond=3)
        >>> cut.behind.shape, cut.centre.shape
        ((3, 2, 3), (3, 2, 2))
    """
    if direction == "left":
        cut = trim(
            mirror(centre), mirror(behind), direction="right", max_bond=max_bond, budget=budget
        )
        return Trim(mirror(cut.centre), mirror(cut.behind), cut.discarded)
    xp = backend.namespace(centre)
    dl, d, dr = centre.shape
    split = truncated_split(
        xp.reshape(centre, (dl, d * dr)), max_bond=max_bond, budget=budget, isometry="left"
    )
    rest = split.right / backend.frob_sq(split.right) ** 0.5
    kept = contract("asb,bk->ask", behind, split.left)
    return Trim(xp.reshape(rest, (split.rank, d, dr)), kept, split.discarded)
