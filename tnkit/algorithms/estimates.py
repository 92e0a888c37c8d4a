"""Error estimates for ground-state energies: the two-site variance of a state (one pass,
the cost of a matvec per bond) and the extrapolation of energies to zero variance.

Hubig, Haegeman & Schollwöck (PRB 97, 045125, 2018): the variance ‖(H − E)ψ‖² splits into
orthogonal parts living on one, two, … sites of the tangent space of ψ. At a DMRG fixed
point the one-site part vanishes and the two-site part is the leading one; it costs one
two-site matvec per bond, against the full variance's application of H (a bond χ·w). The
energies of a series of states (one per bond) are linear in either variance as it goes to
zero, which gives the energy at zero variance and an error bar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend as backend
from ..mpo import MPO
from ..mps import MPS
from .checks import check_state
from .engines import DenseEngine

__all__ = ["Extrapolation", "extrapolate", "two_site_variance"]

# The extrapolated energy is trusted to this fraction of its distance to the best point: the
# convention of DMRG extrapolations in bond or variance (e.g. Stoudenmire & White 2012).
EXTRAPOLATION_TRUST = 0.2
# The energy is linear in the variance only as it goes to zero: fit the (at most) three
# smallest variances, and none more than this many times the smallest.
FIT_POINTS = 3
FIT_SPAN = 100.0


@dataclass(frozen=True)
class Extrapolation:
    """The energy at zero variance from a linear fit of energy against variance: ``energy``,
    its ``error`` bar, the fit's ``slope``, and the ``points`` (variance, energy) it used."""

    energy: float
    error: float
    slope: float
    points: tuple[tuple[float, float], ...]


def two_site_variance(H: MPO, psi: MPS) -> float:
    """The two-site part of the variance of the normalised ``psi`` (Hubig et al., 2018).

    The part of (H − E)ψ that lies in the space of changes on two neighbouring sites at a
    time, outside the one-site ones: Σ over bonds of ‖(1 − P_left)(H_eff θ)(1 − P_right)‖²,
    where θ is the two-site tensor of ``psi`` in mixed canonical form and the projectors
    are onto its left and right bases. At most the full
    [variance][tnkit.algorithms.dmrg.variance], close to it for a converged DMRG state, and
    it costs one two-site matvec per bond.

    Example:
        >>> import tnkit as tn
        >>> h = tn.models.heisenberg(12)
        >>> r = tn.dmrg(h, max_bond=6, seed=0)
        >>> bool(0 < tn.two_site_variance(h, r.state) <= r.variance)
        True
    """
    if not isinstance(H, MPO) or not isinstance(psi, MPS):
        raise TypeError(
            f"two_site_variance: expected (MPO, MPS), got ({type(H).__name__}, "
            f"{type(psi).__name__})"
        )
    if H.out_dims != H.in_dims:
        raise ValueError(f"H: needs out_dims == in_dims, got {H.out_dims} and {H.in_dims}")
    check_state(psi, H)
    cores = list(psi.canonicalize(0)._arrays())
    norm = backend.frob_sq(cores[0]) ** 0.5
    if not norm > 0:
        raise ValueError("psi: the zero state has no variance")
    if len(psi) < 2:
        return 0.0
    cores[0] = cores[0] / norm
    return energy_and_two_site_variance(cores, list(H.cores))[1]


def energy_and_two_site_variance(
    cores: Sequence[Any], ops: Sequence[Any], engine: Any = None
) -> tuple[float, float]:
    """⟨H⟩ and the two-site variance of the unit state whose ``cores`` are right-canonical
    with the centre at site 0 (the form DMRG leaves): one left-to-right pass, on the local
    algebra of ``engine`` (dense arrays when None; ``ops`` in that engine's form)."""
    engine = DenseEngine() if engine is None else engine
    right = engine.right_environments(cores, ops)
    left = engine.edge(cores)
    centre, energy, total = cores[0], math.nan, 0.0
    for i in range(len(cores) - 1):
        following = cores[i + 1]
        theta = engine.merge(centre, following)
        image = engine.apply(engine.two_site_matvec(left, ops[i], ops[i + 1], right[i + 2]), theta)
        if i == 0:
            energy = engine.overlap(theta, image)
        basis, rest = engine.orthonormal_left(centre)
        total += engine.tangent_residual(image, basis, following)
        left = engine.grow_left(left, basis, ops[i])
        centre = engine.absorb(rest, following)
    return energy, total


def extrapolate(points: Sequence[tuple[float, float]]) -> Extrapolation | None:
    """Fit energy = E₀ + slope·variance through ``points`` (variance, energy) and return E₀
    with an error bar; ``None`` with fewer than two distinct variances. Only the three
    points of smallest variance enter the fit, and none whose variance is more than 100
    times the smallest: the energy is linear in the variance only as it goes to zero.

    The error bar: with three points, the larger of a fifth of the distance from E₀ to the
    lowest-variance point (the usual convention) and the standard error of the intercept;
    with two, that whole distance (a line through two points says nothing of its own
    trust).

    Example:
        >>> e = extrapolate([(1e-3, -9.99), (4e-3, -9.96), (2e-3, -9.98)])
        >>> round(e.energy, 6), round(e.slope, 6)
        (-10.0, 10.0)
    """
    data = np.array([(float(v), float(e)) for v, e in points], dtype=float).reshape(-1, 2)
    data = data[np.argsort(data[:, 0])][:FIT_POINTS]
    data = data[data[:, 0] <= FIT_SPAN * max(data[0, 0], 0.0)] if len(data) else data
    if len(np.unique(data[:, 0])) < 2:
        return None
    design = np.stack([np.ones(len(data)), data[:, 0]], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, data[:, 1], rcond=None)
    best = data[np.argmin(data[:, 0]), 1]
    # two points fix a line but not its trust: the whole correction is the error bar
    trust = EXTRAPOLATION_TRUST if len(data) > 2 else 1.0
    error = trust * abs(best - intercept)
    if len(data) > 2:
        residual = data[:, 1] - design @ np.array([intercept, slope])
        sigma_sq = float(residual @ residual) / (len(data) - 2)
        error = max(error, math.sqrt(sigma_sq * np.linalg.inv(design.T @ design)[0, 0]))
    ordered = tuple(sorted((float(v), float(e)) for v, e in data))
    return Extrapolation(float(intercept), float(error), float(slope), ordered)


def _dot(a: Any, b: Any, xp: Any) -> Any:
    return xp.sum(xp.conj(a) * b) if backend.is_complex(a.dtype) else xp.sum(a * b)
