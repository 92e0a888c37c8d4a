"""The TDVP integrators on cores and environments (Haegeman, Lubich, Oseledets, Vandereycken &
Verstraete, PRB 94, 165116 (2016)): symmetric second-order sweeps, one-site and two-site, and
their fourth-order composition.

Pure sweeps on a ``Chain`` of state cores, operator cores and environments: any MPO acting on
any MPS-shaped chain (a vectorised operator included). What to measure, when to switch, and
checkpoints belong to ``tdvp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..mpo import MPO
from ..mps import MPS
from ..truncation import Truncation
from .engines import DenseEngine
from .kept_bases import KeptBases, with_kept_bases

__all__ = [
    "COMPOSITIONS",
    "Chain",
    "Integrator",
    "StepStats",
    "bonds_saturated",
    "composed_step",
    "symmetric_step",
]

# Suzuki's fourth-order fractal (Phys. Lett. A 146, 319 (1990)): five second-order steps of
# p, p, 1 − 4p, p, p times the step, p = 1/(4 − 4^(1/3)) ≈ 0.4145; the middle one goes
# back in time (≈ −0.658: every real composition beyond second order has a negative step).
_P = 1.0 / (4.0 - 4.0 ** (1.0 / 3.0))
COMPOSITIONS = {2: (1.0,), 4: (_P, _P, 1.0 - 4.0 * _P, _P, _P)}


@dataclass
class Chain:
    """What a sweep updates in place: the state's cores (right-canonical, centre at site 0,
    between steps), the operator's cores, and the left and right environments (``left[i]``
    covers sites 0..i−1, ``right[i]`` sites i..n−1), all in the form of ``engine`` (dense or
    block-sparse arrays: [engines][tnkit.algorithms.engines]). ``kept``: a state whose bond
    spaces every basis keeps (`tnkit.algorithms.kept_bases`; dense only)."""

    cores: list
    ops: list
    left: list
    right: list
    engine: Any = field(default_factory=DenseEngine)
    kept: KeptBases | None = None

    @classmethod
    def start(cls, psi: MPS, H: MPO, engine: Any = None, keep: MPS | None = None) -> Chain:
        """The chain of ``psi`` (made right-canonical with centre 0 and unit norm) under
        ``H``, in ``engine``'s arrays (dense when None), its bases containing ``keep``'s."""
        engine = DenseEngine() if engine is None else engine
        if keep is not None:
            psi = with_kept_bases(psi, keep)
        cores, ops = engine.start(psi, H)
        left = [engine.edge(cores)] + [None] * len(cores)
        kept = None if keep is None else KeptBases.start(keep, cores)
        return cls(cores, ops, left, engine.right_environments(cores, ops), engine, kept)

    def state(self, like: MPS) -> MPS:
        """The chain's state as an MPS (centre 0), with ``like``'s charges."""
        return self.engine.finish(self.cores, like)


@dataclass(frozen=True)
class Integrator:
    """How the sweeps step: ``two_site`` (with ``truncation`` of every split) or one-site
    (bond fixed), ``normalise`` (imaginary time: every local tensor back to unit norm), and
    the Krylov tolerance (relative to the local tensor's norm) and vectors per restart."""

    two_site: bool
    truncation: Truncation
    normalise: bool
    krylov_tol: float = 1e-12
    krylov_vectors: int = 30


@dataclass
class StepStats:
    """What a step cost and cut: matvecs, the largest Krylov error estimate (relative to the
    local tensor's norm) and the largest weight discarded by one split (relative)."""

    matvecs: int = 0
    krylov_error: float = 0.0
    discarded: float = 0.0


def composed_step(
    chain: Chain, tau: complex, order: int, rule: Integrator, stats: StepStats
) -> None:
    """``exp(tau·H)`` on the chain to ``order`` 2 or 4 (Suzuki's composition of second-order
    steps, ``COMPOSITIONS``); ``tau = −i·dt`` for real time, ``−dt`` for imaginary time."""
    for weight in COMPOSITIONS[order]:
        symmetric_step(chain, weight * tau, rule, stats)


def symmetric_step(chain: Chain, tau: complex, rule: Integrator, stats: StepStats) -> None:
    """One symmetric second-order step ``exp(tau·H)``: a left-to-right sweep of half steps
    and a right-to-left one (Haegeman et al. §IV), the two half steps at the turning point
    merged into one. One-site: sites forward, bonds (zero-site) backward; two-site: pairs
    forward (then truncated), single sites backward. Starts and ends at centre 0."""
    if rule.two_site and len(chain.cores) > 1:
        _two_site_sweeps(chain, tau, rule, stats)
    else:
        _one_site_sweeps(chain, tau, rule, stats)


def bonds_saturated(bond_dims: tuple, phys_dims: tuple, max_bond: int | None) -> bool:
    """Whether every bond is at ``max_bond`` or at the largest its cut allows (the smaller
    of the dimensions to either side): a two-site step can grow none of them.

    Example:
        >>> bonds_saturated((2, 4, 2), (2, 2, 2, 2), None), bonds_saturated((2, 3, 2), (2,) * 4, 3)
        (True, True)
    """
    for k, bond in enumerate(bond_dims):
        cap = min(math.prod(phys_dims[: k + 1]), math.prod(phys_dims[k + 1 :]))
        if max_bond is not None:
            cap = min(cap, max_bond)
        if bond < cap:
            return False
    return True


def _one_site_sweeps(chain: Chain, tau: complex, rule: Integrator, stats: StepStats) -> None:
    n, half = len(chain.cores), tau / 2
    for i in range(n - 1):
        _evolve_site(chain, i, half, rule, stats)
        _move_right(chain, i, half, rule, stats)
    _evolve_site(chain, n - 1, tau, rule, stats)
    for i in range(n - 1, 0, -1):
        _move_left(chain, i, half, rule, stats)
        _evolve_site(chain, i - 1, half, rule, stats)


def _two_site_sweeps(chain: Chain, tau: complex, rule: Integrator, stats: StepStats) -> None:
    n, half = len(chain.cores), tau / 2
    for i in range(n - 2):
        _evolve_pair(chain, i, half, "right", rule, stats)
        _evolve_site(chain, i + 1, -half, rule, stats)
    _evolve_pair(chain, n - 2, tau, "left", rule, stats)
    for i in range(n - 3, -1, -1):
        _evolve_site(chain, i + 1, -half, rule, stats)
        _evolve_pair(chain, i, half, "left", rule, stats)


def _exp(chain: Chain, matvec: Any, x: Any, tau: complex, rule: Integrator, stats: StepStats):
    """``exp(tau·H_eff)·x`` by Lanczos, counted in ``stats``."""
    engine = chain.engine
    result = engine.exp(matvec, x, tau, tol=rule.krylov_tol, max_iter=rule.krylov_vectors)
    stats.matvecs += result.matvecs
    scale = max(engine.frob_sq(x) ** 0.5, 1e-300)
    stats.krylov_error = max(stats.krylov_error, result.error / scale)
    if rule.normalise:
        return result.vector / engine.frob_sq(result.vector) ** 0.5
    return result.vector


def _evolve_site(chain: Chain, i: int, tau: complex, rule: Integrator, stats: StepStats) -> None:
    matvec = chain.engine.one_site_matvec(chain.left[i], chain.ops[i], chain.right[i + 1])
    chain.cores[i] = _exp(chain, matvec, chain.cores[i], tau, rule, stats)


def _move_right(chain: Chain, i: int, half: complex, rule: Integrator, stats: StepStats) -> None:
    """Site i becomes a left isometry (QR: the bond keeps its dimension); the bond matrix
    steps back by ``half`` between the environments either side and joins site i+1."""
    engine = chain.engine
    if chain.kept is None:
        chain.cores[i], bond = engine.orthonormal_left(chain.cores[i])
    else:
        chain.cores[i], bond = _kept_site_split(chain, i, "right", rule, stats)
    chain.left[i + 1] = engine.grow_left(chain.left[i], chain.cores[i], chain.ops[i])
    matvec = engine.zero_site_matvec(chain.left[i + 1], chain.right[i + 1])
    bond = _exp(chain, matvec, bond, -half, rule, stats)
    chain.cores[i + 1] = engine.absorb(bond, chain.cores[i + 1])


def _move_left(chain: Chain, i: int, half: complex, rule: Integrator, stats: StepStats) -> None:
    """The mirror of ``_move_right``: site i becomes a right isometry (LQ), the bond matrix
    steps back and joins site i−1."""
    engine = chain.engine
    if chain.kept is None:
        chain.cores[i], bond = engine.orthonormal_right(chain.cores[i])
    else:
        bond, chain.cores[i] = _kept_site_split(chain, i, "left", rule, stats)
    chain.right[i] = engine.grow_right(chain.right[i + 1], chain.cores[i], chain.ops[i])
    matvec = engine.zero_site_matvec(chain.left[i], chain.right[i])
    bond = _exp(chain, matvec, bond, -half, rule, stats)
    chain.cores[i - 1] = engine.absorb_right(chain.cores[i - 1], bond)


def _evolve_pair(
    chain: Chain, i: int, tau: complex, direction: str, rule: Integrator, stats: StepStats
) -> None:
    """Sites (i, i+1) forward by ``tau``, split by a truncated SVD, the centre left on site
    i+1 (``direction="right"``) or i, and the environment grown past the isometry."""
    cores, ops, engine = chain.cores, chain.ops, chain.engine
    theta = engine.merge(cores[i], cores[i + 1])
    matvec = engine.two_site_matvec(chain.left[i], ops[i], ops[i + 1], chain.right[i + 2])
    theta = _exp(chain, matvec, theta, tau, rule, stats)
    weight = engine.frob_sq(theta)
    budget = rule.truncation.total_budget(weight**0.5)
    cap = rule.truncation.max_bond
    if chain.kept is None:
        cores[i], cores[i + 1], discarded = engine.split(
            theta, cap, budget, direction, normalise=rule.normalise, bond=i
        )
    else:
        cores[i], cores[i + 1], discarded = chain.kept.split(theta, i, direction, cap, budget)
        _normalise_centre(chain, i + 1 if direction == "right" else i, rule)
    stats.discarded = max(stats.discarded, discarded / max(weight, 1e-300))
    if direction == "right":
        chain.left[i + 1] = engine.grow_left(chain.left[i], cores[i], ops[i])
        if chain.kept is not None:
            chain.kept.grow_left(i, cores[i])
    else:
        chain.right[i + 1] = engine.grow_right(chain.right[i + 2], cores[i + 1], ops[i + 1])
        if chain.kept is not None:
            chain.kept.grow_right(i + 1, cores[i + 1])


def _kept_site_split(
    chain: Chain, i: int, direction: str, rule: Integrator, stats: StepStats
) -> tuple[Any, Any]:
    """A one-site step's QR (``direction="right"``: isometry, bond matrix) or LQ (bond
    matrix, isometry) whose isometry also spans the kept bond space. The bond may change:
    the kept directions plus every direction of the rest of the core (at most as many as
    the bond had), capped by ``max_bond``; what a cap cuts is counted in ``stats``."""
    core = chain.cores[i]
    weight = chain.engine.frob_sq(core)
    cap = rule.truncation.max_bond
    left, right, discarded = chain.kept.split(core, i, direction, cap, None)
    stats.discarded = max(stats.discarded, discarded / max(weight, 1e-300))
    if direction == "right":
        chain.kept.grow_left(i, left)
    else:
        chain.kept.grow_right(i, right)
    return left, right


def _normalise_centre(chain: Chain, i: int, rule: Integrator) -> None:
    if rule.normalise:
        chain.cores[i] = chain.cores[i] / chain.engine.frob_sq(chain.cores[i]) ** 0.5
