"""Bond bases that always contain those of a given state ``K``: the exact form of Mendl's
energy-conserving operator evolution (arXiv:1812.11876), usable by any TDVP run.

Why. TDVP integrates dψ/dt = −i·P_T(ψ)·Hψ, P_T the projector onto the tangent space at ψ.
Then d/dt ⟨K, ψ⟩ = −i⟨P_T K, Hψ⟩, which is −i⟨HK, ψ⟩ (= 0 when HK = 0) exactly when K lies
in the tangent space, i.e. in span(left basis ⊗ local sites ⊗ right basis) of every local
step. That holds when every bond basis of ψ contains K's bond space there. Three places
can lose it, and each is handled here:

1. the start: ψ's own bases need not contain K's; ``with_kept_bases`` rewrites ψ (the same
   vector) on right bases that contain both, before the first sweep;
2. a truncated two-site split keeps the best directions of the evolved pair, not K's;
3. a one-site step's QR keeps the span of the evolved site tensor, not K's.

``kept_split`` replaces both splits: the isometry is K's bond space (found from K's cores
and the overlap environments ``KeptBases`` carries along) plus the best directions of the
rest, the part of the local tensor orthogonal to K's space. K's directions are never cut;
they come on top of the cap the caller gives for the rest. The rest's truncation discards
no more than a plain truncation of the whole tensor to the same cap would (the singular
values of a projected matrix are at most those of the matrix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _backend as backend
from .._einsum import contract
from ..linalg import orthonormalize, truncated_split
from ..mps import MPS
from . import environments as env

__all__ = ["RANK_TOL", "KeptBases", "kept_split", "with_kept_bases"]

# Directions of K's bond space whose singular value is below this, relative to the largest,
# are rounding noise and are not kept.
RANK_TOL = 1e-12


def kept_split(
    matrix: Any,
    keep: Any,
    *,
    cap: int | None,
    budget: float | None,
    isometry: str = "left",
) -> tuple[Any, Any, float]:
    """(left, right, discarded weight) with ``matrix ≈ left @ right``, the isometry's span
    containing the columns of ``keep`` (``isometry="left"``; rows of ``keep`` and of the right
    factor for ``"right"``). Beyond ``keep``'s directions the isometry takes the best ``cap``
    directions of the rest within ``budget`` (tnkit's truncation rule); ``discarded`` is the
    weight of the rest that was cut.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a, k = rng.standard_normal((8, 6)), rng.standard_normal((8, 2))
        >>> left, right, cut = kept_split(a, k, cap=1, budget=None)
        >>> left.shape, bool(np.allclose(left @ (left.T @ k), k))
        ((8, 3), True)
    """
    if isometry not in ("left", "right"):
        raise ValueError(f"isometry: expected 'left' or 'right', got {isometry!r}")
    if isometry == "right":
        right, left, discarded = kept_split(
            backend.conj_t(matrix), backend.conj_t(keep), cap=cap, budget=budget
        )
        return backend.conj_t(left), backend.conj_t(right), discarded
    xp = backend.namespace(matrix)
    kept = _column_basis(keep)
    rest = matrix - kept @ (backend.conj_t(kept) @ matrix)
    rest = rest - kept @ (backend.conj_t(kept) @ rest)  # twice: orthogonal to rounding
    free = None if cap is None else max(0, cap)
    discarded = backend.frob_sq(rest)
    negligible = discarded <= (RANK_TOL**2) * backend.frob_sq(matrix)
    if free != 0 and not negligible and kept.shape[1] < matrix.shape[0]:
        cut = truncated_split(rest, max_bond=free, budget=budget, isometry="left")
        extra = cut.left - kept @ (backend.conj_t(kept) @ cut.left)
        kept = xp.concat([kept, orthonormalize(extra)[0]], axis=1)
        discarded = cut.discarded
    elif negligible:
        discarded = 0.0
    return kept, backend.conj_t(kept) @ matrix, float(discarded)


def with_kept_bases(psi: MPS, keep: MPS) -> MPS:
    """``psi`` as the same vector, right-canonical (centre 0), on right bond bases that
    contain ``keep``'s (directions of ``keep`` below ``RANK_TOL`` are dropped). The bonds
    grow by at most ``keep``'s.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> psi = tn.MPS.random([2] * 5, 1, seed=0)
        >>> wider = with_kept_bases(psi, tn.MPS.random([2] * 5, 2, seed=1))
        >>> wider.bond_dims, bool(np.allclose(wider.to_dense(), psi.to_dense()))
        ((3, 3, 3, 2), True)
    """
    if not isinstance(keep, MPS) or keep.phys_dims != psi.phys_dims:
        raise ValueError(
            f"keep: expected an MPS with psi's phys_dims {psi.phys_dims}, got {keep!r}"
        )
    state, kept = psi.canonicalize(0), keep.canonicalize(0)
    ours, their_cores = state._arrays(), kept._arrays()  # not kept on psi, keep
    xp = psi.xp
    dtype = xp.result_type(state.dtype, kept.dtype)
    edge = xp.ones((1, 1), dtype=dtype, device=backend.device(ours[0]))
    own, theirs = edge, edge  # psi's / keep's right vectors in the new basis: (new, old)
    cores = [None] * len(ours)
    for k in range(len(cores) - 1, 0, -1):
        mine = contract("asb,cb->asc", xp.astype(ours[k], dtype), own)
        other = contract("asb,cb->asc", xp.astype(their_cores[k], dtype), theirs)
        stacked = xp.concat([_rows(mine), _rows(other)], axis=0)
        basis = backend.conj_t(_column_basis(backend.conj_t(stacked)))  # orthonormal rows
        own = xp.permute_dims(_rows(mine) @ backend.conj_t(basis), (1, 0))
        theirs = xp.permute_dims(_rows(other) @ backend.conj_t(basis), (1, 0))
        cores[k] = xp.reshape(basis, (basis.shape[0], *mine.shape[1:]))
    cores[0] = contract("asb,cb->asc", xp.astype(ours[0], dtype), own)
    return MPS._trusted(tuple(cores), 0, None, state.scale_exponent)


@dataclass
class KeptBases:
    """``K``'s cores (right-canonical) and the coordinates of its bond vectors in the
    sweep's bases: ``left[i]`` (D_i × w_i) at the bond left of site i, ``right[i]`` at the
    bond right of site i − 1, kept up to date as the sweep moves."""

    cores: list
    left: list
    right: list

    @classmethod
    def start(cls, keep: MPS, state_cores: list) -> KeptBases:
        """For a right-canonical chain with centre 0 whose bases contain ``keep``'s."""
        xp = backend.namespace(state_cores[0])
        dtype = state_cores[0].dtype
        cores = [xp.astype(c, dtype) for c in keep.canonicalize(0)._arrays()]
        edge = xp.ones((1, 1), dtype=dtype, device=backend.device(state_cores[0]))
        n = len(cores)
        right = [None] * n + [edge]
        for k in range(n - 1, 0, -1):
            right[k] = env.overlap_right(right[k + 1], state_cores[k], cores[k])
        return cls(cores, [edge] + [None] * n, right)

    def split(
        self,
        theta: Any,
        i: int,
        direction: str,
        cap: int | None,
        budget: Any,
    ) -> tuple:
        """(left core, right core, discarded) of the local tensor ``theta`` on site i or on
        sites (i, i + 1); the isometry on the side the sweep leaves (``direction``: where
        it goes) keeps K's bond space, the rest is cut to ``cap`` within ``budget``
        ([kept_split][tnkit.algorithms.kept_bases.kept_split])."""
        xp = backend.namespace(theta)
        if direction == "right":  # a left isometry on site i
            rows = theta.shape[0] * theta.shape[1]
            keep = contract("ab,bsd->asd", self.left[i], self.cores[i])
            left, right, cut = kept_split(
                xp.reshape(theta, (rows, -1)),
                xp.reshape(keep, (rows, -1)),
                cap=cap,
                budget=budget,
            )
            shape = (right.shape[0], *theta.shape[2:])
            return xp.reshape(left, (*theta.shape[:2], -1)), xp.reshape(right, shape), cut
        j = i + theta.ndim - 3  # a right isometry on the last site
        columns = theta.shape[-2] * theta.shape[-1]
        keep = contract("bsd,cd->bsc", self.cores[j], self.right[j + 1])
        left, right, cut = kept_split(
            xp.reshape(theta, (-1, columns)),
            xp.reshape(keep, (-1, columns)),
            cap=cap,
            budget=budget,
            isometry="right",
        )
        shape = (*theta.shape[:-2], left.shape[1])
        return xp.reshape(left, shape), xp.reshape(right, (-1, *theta.shape[-2:])), cut

    def grow_left(self, i: int, core: Any) -> None:
        """Site i became a left isometry: the coordinates at the bond right of it."""
        self.left[i + 1] = env.overlap_left(self.left[i], core, self.cores[i])

    def grow_right(self, i: int, core: Any) -> None:
        """Site i became a right isometry: the coordinates at the bond left of it."""
        self.right[i] = env.overlap_right(self.right[i + 1], core, self.cores[i])


def _column_basis(a: Any) -> Any:
    """Orthonormal columns spanning ``a``'s column space (rank by ``RANK_TOL``)."""
    xp = backend.namespace(a)
    u, s, _ = xp.linalg.svd(a, full_matrices=False)
    values = backend.to_numpy(s)
    rank = int((values > RANK_TOL * values[0]).sum()) if values.size and values[0] > 0 else 0
    return u[:, :rank]


def _rows(core: Any) -> Any:
    return backend.namespace(core).reshape(core, (core.shape[0], -1))
