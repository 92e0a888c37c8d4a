"""Global Krylov subspace expansion for TDVP (Yang & White, PRB 102, 094315 (2020)): every
bond of a state is enlarged by the directions of H|ψ⟩, H²|ψ⟩, … with zero weight.

Pure functions on states and cores, and the immutable rule that says how to expand; which
step expands belongs to ``tdvp``. The state itself is never changed beyond the truncation
that was asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend as backend
from .._checks import check_int, check_number
from .._einsum import contract
from ..apply import apply
from ..linalg import orthonormalize, truncated_split
from ..mpo import MPO
from ..mps import MPS
from ..truncation import Truncation
from .checks import check_hamiltonian, check_state
from .tdvp_steps import bonds_saturated

__all__ = [
    "ExpandedState",
    "KrylovExpansion",
    "expand_basis",
    "expansion_rule",
    "krylov_expand",
]

EXPANSIONS = ("krylov",)
# The Krylov vectors are applied at this bond at least (a product state has bond 1, and
# H|ψ⟩ of a long-range H needs more: the first expansions set the
# accuracy, 1e-7 in fidelity at bond 8 and 5e-12 at 32 on the 1/r² test chain of L = 12).
_KRYLOV_BOND_FLOOR = 32


@dataclass(frozen=True)
class KrylovExpansion:
    """How ``tdvp`` expands: before every ``every``-th step, with the Krylov vectors
    H|ψ⟩ … H^``vectors``|ψ⟩ (each computed by ``tn.apply`` at ``krylov_bond``; None: twice
    the state's largest bond, at least 32), adding per bond the directions whose weight in
    their mean reduced density matrix exceeds ``cutoff``.

    Example:
        >>> KrylovExpansion(every=2).due(4), KrylovExpansion(every=2).due(5)
        (True, False)
    """

    every: int = 1
    vectors: int = 2
    cutoff: float = 1e-10
    krylov_bond: int | None = None

    def __post_init__(self) -> None:
        check_int(self.every, "every", minimum=1)
        check_int(self.vectors, "vectors", minimum=1)
        check_number(self.cutoff, "cutoff", minimum=0.0)
        if self.krylov_bond is not None:
            check_int(self.krylov_bond, "krylov_bond", minimum=1)

    def due(self, step: int) -> bool:
        """Whether the step numbered ``step`` (from 0) starts with an expansion."""
        return step % self.every == 0


@dataclass(frozen=True)
class ExpandedState:
    """The expanded ``state`` (right-canonical, centre 0; the same vector up to the
    truncation asked for), the largest weight one bond's truncation discarded (relative to
    ‖ψ‖²), and the directions added at every bond."""

    state: MPS
    discarded: float
    added: tuple[int, ...]


def expansion_rule(expand: Any) -> KrylovExpansion | None:
    """The rule for ``tdvp``'s ``expand``: None, ``"krylov"`` (the defaults) or a
    ``KrylovExpansion``.

    Example:
        >>> expansion_rule("krylov")
        KrylovExpansion(every=1, vectors=2, cutoff=1e-10, krylov_bond=None)
    """
    if expand is None or isinstance(expand, KrylovExpansion):
        return expand
    if isinstance(expand, str) and expand in EXPANSIONS:
        return KrylovExpansion()
    raise ValueError(
        f"expand: expected None, one of {EXPANSIONS} or a KrylovExpansion, got {expand!r}"
    )


def krylov_expand(
    H: MPO,
    psi: MPS,
    *,
    vectors: int = 2,
    cutoff: float = 1e-10,
    krylov_bond: int | None = None,
    max_bond: int | None = None,
    rtol: float | None = None,
) -> ExpandedState:
    """``psi`` with every bond enlarged by the directions of its Krylov vectors, at zero
    weight: the global subspace expansion of Yang & White (PRB 102, 094315, 2020).

    The Krylov vectors φ_k = H^k ψ/‖H^k ψ‖ (k = 1 … ``vectors``) come from ``tn.apply``
    at ``krylov_bond`` (None: twice ψ's largest bond, at least 32). A sweep from the right
    then takes, at every bond, ψ's right basis (an SVD of the centre: only numerically zero
    singular values go, or what ``rtol`` allows, at most ``max_bond``) and adds the leading
    eigenvectors of the φ's mean reduced density matrix projected out of it, those of
    weight above ``cutoff``, until the bond reaches ``max_bond`` or the size of the space
    to its left. The φ's are carried along in the enlarged basis, as in the paper. A
    one-site TDVP step on the result sees the new directions, so it can move weight into
    them: from a product state, or with a long-range H, that is how one-site TDVP grows
    the bond. Cost: ``vectors`` applications of H, and an SVD per bond of the stacked
    Krylov centres (O(vectors·χ_K·d²·χ²) for Krylov bond χ_K).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.algorithms import krylov_expand
        >>> neel = tn.MPS([np.eye(2)[k % 2].reshape(1, 2, 1) for k in range(6)])
        >>> grown = krylov_expand(tn.models.heisenberg(6), neel)
        >>> grown.state.bond_dims, bool(np.allclose(grown.state.to_dense(), neel.to_dense()))
        ((2, 4, 5, 3, 2), True)
    """
    check_hamiltonian(H)
    check_state(psi, H)
    rule = KrylovExpansion(vectors=vectors, cutoff=cutoff, krylov_bond=krylov_bond)
    return expand_basis(H, psi, rule, Truncation(max_bond=max_bond, rtol=rtol))


def expand_basis(H: MPO, psi: MPS, rule: KrylovExpansion, truncation: Truncation) -> ExpandedState:
    """``krylov_expand`` without the argument checks, for a run that made them once."""
    if bonds_saturated(psi.bond_dims, psi.phys_dims, truncation.max_bond):
        return ExpandedState(psi.canonicalize(0), 0.0, (0,) * (len(psi) - 1))
    xp = psi.xp
    dtype = xp.result_type(H.dtype, psi.dtype)
    n = len(psi)
    start = psi.canonicalize(n - 1)
    cores = [c if c.dtype == dtype else xp.astype(c, dtype) for c in start._arrays()]
    norm_sq = backend.frob_sq(cores[-1])
    if n == 1 or norm_sq == 0.0:
        return ExpandedState(psi.canonicalize(0), 0.0, ())
    bond = rule.krylov_bond or max(2 * max(psi.bond_dims), _KRYLOV_BOND_FLOOR)
    references = _krylov_vectors(H, start, rule.vectors, bond, dtype)
    cores, discarded, added = _expanded(cores, references, rule.cutoff, truncation, norm_sq)
    state = MPS(cores).canonicalize(0)
    if start.scale_exponent:
        state = state * 2.0**start.scale_exponent
    return ExpandedState(state, discarded, added)


def _krylov_vectors(H: MPO, psi: MPS, count: int, bond: int, dtype: Any) -> list[list]:
    """The cores of H^k ψ, k = 1 … count, each left-canonical with a unit centre at the
    last site (its scale dropped)."""
    xp = psi.xp
    references, vector = [], psi
    for _ in range(count):
        vector = apply(H, vector, max_bond=bond).canonicalize(len(psi) - 1)
        cores = [c if c.dtype == dtype else xp.astype(c, dtype) for c in vector._arrays()]
        norm = backend.frob_sq(cores[-1]) ** 0.5
        if norm == 0.0 or not math.isfinite(norm):  # H ψ = 0: nothing to add
            break
        cores[-1] = cores[-1] / norm
        references.append(cores)
    return references


def _expanded(
    cores: list, references: list, cutoff: float, truncation: Truncation, norm_sq: float
) -> tuple[list, float, tuple[int, ...]]:
    """The right-to-left expansion sweep on a left-canonical chain (centre at the end):
    at every site the centre is split (right isometry), the complement directions are
    appended, and the centre and the references move one site left in the enlarged basis.
    Returns the cores (centre at site 0), the largest relative discarded weight, and the
    directions added per bond."""
    xp = backend.namespace(cores[0])
    n = len(cores)
    left_space = np.cumprod([float(c.shape[1]) for c in cores])  # sites 0..k: their dimension
    budget = truncation.total_budget(norm_sq**0.5)
    discarded, added = 0.0, [0] * (n - 1)
    for j in range(n - 1, 0, -1):
        dl, d, dr = cores[j].shape
        flat = xp.reshape(cores[j], (dl, d * dr))
        split = truncated_split(flat, max_bond=truncation.max_bond, budget=budget, isometry="right")
        discarded = max(discarded, split.discarded / norm_sq)
        basis = split.right
        cap = min(left_space[j - 1], truncation.max_bond or math.inf, d * dr)
        room = int(cap) - basis.shape[0]
        if room > 0 and references:
            centres = [xp.reshape(ref[j], (ref[j].shape[0], d * dr)) for ref in references]
            extra = _complement(basis, xp.concat(centres, axis=0), cutoff * len(references))
            extra = extra[:room, :]
            added[j - 1] = extra.shape[0]
            basis = xp.concat([basis, extra], axis=0)
        rank = basis.shape[0]
        dual = backend.conj_t(basis)
        cores[j] = xp.reshape(basis, (rank, d, dr))
        cores[j - 1] = contract("asb,bc->asc", cores[j - 1], flat @ dual)
        for ref in references:
            carried = xp.reshape(ref[j], (ref[j].shape[0], d * dr)) @ dual
            ref[j - 1] = contract("asb,bc->asc", ref[j - 1], carried)
    return cores, discarded, tuple(added)


def _complement(basis: Any, stacked: Any, threshold: float) -> Any:
    """Orthonormal rows, orthogonal to ``basis``'s, spanning the leading right singular
    directions of ``stacked`` projected out of it: those with σ² above ``threshold``,
    strongest first."""
    xp = backend.namespace(basis)
    projected = stacked - (stacked @ backend.conj_t(basis)) @ basis
    _, singular_values, rows = backend.svd(projected)
    weights = np.asarray(backend.to_numpy(singular_values), dtype=np.float64) ** 2
    keep = int(np.count_nonzero(weights > threshold))
    if keep == 0:
        return rows[:0, :]
    rows = rows[:keep, :]
    # Rounding leaves the SVD's rows ε-close to basis; one more projection and an
    # orthonormalisation make [basis; rows] orthonormal to working precision.
    rows = rows - (rows @ backend.conj_t(basis)) @ basis
    columns, _ = orthonormalize(backend.conj_t(rows))
    return xp.astype(backend.conj_t(columns), basis.dtype)
