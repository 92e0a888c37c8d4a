"""Heisenberg-picture evolution of an operator by TDVP: O(t) = e^{iHt} O e^{−iHt}, with
Mendl's augmentation by the Hamiltonian (arXiv:1812.11876) that conserves tr[H O(t)].

The operator is a state of the doubled chain (each site's out and in legs fused into one of
dimension d²) evolved by ``tdvp`` under the commutator superoperator, itself an MPO.

Why the augmentation works. Write ⟨A, B⟩ = tr(A†B). TDVP evolves dO/dt = P_T(O)·L(O) with
L = i[H, ·] and P_T the orthogonal projector onto the tangent space at O. Then
d/dt ⟨H, O⟩ = ⟨P_T H, L O⟩, which is ⟨H, L O⟩ = −⟨L H, O⟩ = 0 whenever H lies in the
tangent space; else it drifts. H lies there when every bond basis of O contains H's bond
space. The naive reading, H added to O with weight zero, does not keep it there: the first
QR of a one-site sweep completes a zero block with arbitrary vectors and a two-site
truncation drops it. ``augment=True`` makes the bases keep H's bond spaces by construction
(``tdvp(..., keep=vec(H))``, module ``kept_bases``): the start is rewritten on bases that
contain H's, and every split keeps H's bond space and truncates only the rest of the
operator. tr[H O(t)] is then conserved to rounding, O itself is evolved (no weight, nothing
subtracted at the end), and H's directions (at most its bond w per bond) come on top of
``max_bond``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _backend as backend
from ..contract import inner
from ..mpo import MPO
from ..mps import MPS
from .checks import check_hamiltonian
from .tdvp import StepRecord, tdvp

__all__ = [
    "OperatorTDVPResult",
    "commutator_mpo",
    "frobenius_distance",
    "operator_to_state",
    "state_to_operator",
    "tdvp_operator",
    "trace_distance",
]

# Dense trace distances up to this many rows (a 2^14 × 2^14 SVD is minutes already).
DENSE_LIMIT = 2**12


@dataclass(frozen=True)
class OperatorTDVPResult:
    """What ``tdvp_operator`` computed: the ``operator`` O(t) at the final time, the
    ``times``, ``energy`` = tr[H O(t)] at each of them, the observables' ``values`` and the
    step records of the underlying state evolution."""

    operator: MPO
    times: np.ndarray
    energy: np.ndarray
    values: dict = field(repr=False)
    steps: tuple[StepRecord, ...] = field(repr=False)


def tdvp_operator(
    H: MPO,
    O: MPO,
    t: float,
    *,
    dt: float,
    method: str = "two-site",
    order: int = 2,
    max_bond: int | None = None,
    rtol: float | None = None,
    augment: bool = True,
    observables: Mapping[str, Callable[[MPO], Any]] | None = None,
    callback: Callable[[StepRecord], None] | None = None,
    progress: bool = False,
) -> OperatorTDVPResult:
    """O(t) = e^{iHt} O e^{−iHt} by TDVP on the vectorised operator (ħ = 1).

    The commutator superoperator O ↦ OH − HO ([commutator_mpo]
    [tnkit.algorithms.operator_tdvp.commutator_mpo]) is the Hamiltonian of the doubled
    chain, so every option of [tdvp][tnkit.algorithms.tdvp.tdvp] applies (``method``,
    ``order``, ``max_bond``, ``rtol``; two-site steps until the bond saturates, then
    one-site). ``augment=True`` (Mendl, arXiv:1812.11876) keeps H's bond spaces in every
    basis of the run, so H stays in the TDVP projection space and tr[H O(t)] is conserved to
    rounding; H's directions (at most H's bond per bond) come on top of ``max_bond`` (the
    module docstring says why, and why a zero-weight H block would not do it).
    ``observables``: name → ``callable(operator)``, measured at every time on O(t). The
    result's ``energy`` is tr[H O(t)] at every time. O keeps its norm: real-time evolution
    is unitary on operators.

    Example:
        >>> import numpy as np, scipy.linalg, tnkit as tn
        >>> H = tn.models.heisenberg(4)
        >>> O = tn.MPO.random([2] * 4, [2] * 4, 2, seed=0)
        >>> r = tn.algorithms.tdvp_operator(H, O, 0.5, dt=0.1)
        >>> U = scipy.linalg.expm(-0.5j * H.to_matrix())
        >>> exact = U.conj().T @ O.to_matrix() @ U
        >>> bool(np.linalg.norm(r.operator.to_matrix() - exact) < 1e-8)
        True
    """
    check_hamiltonian(H)
    _check_operator(O, H)
    if not isinstance(augment, bool):
        raise TypeError(f"augment: expected a bool, got {augment!r}")
    generator = commutator_mpo(H)
    scale = O.norm()
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"O: cannot evolve an operator of norm {scale}")
    start = O if max_bond is None else O.compress(max_bond=max_bond)
    reference = operator_to_state(H)
    energy_scale = float(start.norm())  # tdvp evolves the normalised state

    def energy(state: MPS) -> complex:
        return complex(inner(reference, state)) * energy_scale

    measured = {"__energy": energy}
    for name, measure in (observables or {}).items():
        if not callable(measure):
            raise TypeError(f"observables: {name!r} is not a callable of the operator")
        measured[name] = _OnOperator(measure, O, energy_scale)
    run = tdvp(
        generator,
        operator_to_state(start),
        t,
        dt=dt,
        method=method,
        order=order,
        max_bond=max_bond,
        rtol=rtol,
        observables=measured,
        callback=callback,
        progress=progress,
        keep=reference if augment else None,
    )
    evolved = state_to_operator(run.state, O.out_dims, O.in_dims) * energy_scale
    if augment:  # bonds that carried H's directions and more than their cut can use
        evolved = evolved.compress(rtol=1e-14)
    values = {name: series for name, series in run.values.items() if name != "__energy"}
    return OperatorTDVPResult(
        operator=evolved,
        times=run.times,
        energy=np.real_if_close(run.values["__energy"]),
        values=values,
        steps=run.steps,
    )


def commutator_mpo(H: MPO) -> MPO:
    """The superoperator O ↦ OH − HO as an MPO on the vectorised operator (each site's pair
    (out, in) fused row-major into one leg of dimension d²): 1 ⊗ Hᵀ − H ⊗ 1, compressed
    exactly. It is Hermitian for a Hermitian H, and e^{−i𝓛t} vec(O) = vec(e^{iHt} O e^{−iHt}).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H, O = tn.models.ising(3), tn.MPO.random([2] * 3, [2] * 3, 2, seed=0)
        >>> L = commutator_mpo(H)
        >>> h, o = H.to_matrix(), O.to_matrix()
        >>> image = L.to_matrix() @ operator_to_state(O).to_dense().ravel()
        >>> sites_paired = (0, 3, 1, 4, 2, 5)  # (out₀ in₀ out₁ in₁ out₂ in₂)
        >>> target = (o @ h - h @ o).reshape([2] * 6).transpose(sites_paired).ravel()
        >>> bool(np.allclose(image, target)), L.bond_dims
        (True, (4, 4))
    """
    xp = H.xp
    left_cores, right_cores = [], []
    for core in _scaled_cores(H):
        a, d, _, b = core.shape
        eye = xp.eye(d, dtype=core.dtype, device=backend.device(core))
        # H ⊗ 1: (a, s, u, b) ⊗ δ(t, t') -> (a, (s t), (u t'), b)
        left = core[:, :, None, :, None, :] * eye[None, None, :, None, :, None]
        left_cores.append(xp.reshape(left, (a, d * d, d * d, b)))
        # 1 ⊗ Hᵀ: δ(s, s') H[a, u, t, b] -> (a, (s t), (s' u), b)
        right = (
            eye[None, :, None, :, None, None]
            * xp.permute_dims(core, (0, 2, 1, 3))[:, None, :, None, :, :]
        )
        right_cores.append(xp.reshape(right, (a, d * d, d * d, b)))
    generator = MPO._trusted(tuple(right_cores)) - MPO._trusted(tuple(left_cores))
    return generator.compress(rtol=1e-14)


def operator_to_state(O: MPO) -> MPS:
    """The vectorised operator: an MPS whose site k has dimension out_k·in_k (row-major)."""
    cores = tuple(
        backend.namespace(c).reshape(c, (c.shape[0], c.shape[1] * c.shape[2], c.shape[3]))
        for c in O.cores
    )
    return MPS._trusted(cores, None, None, O.scale_exponent)


def state_to_operator(psi: MPS, out_dims: Sequence[int], in_dims: Sequence[int]) -> MPO:
    """The inverse of [operator_to_state][tnkit.algorithms.operator_tdvp.operator_to_state]."""
    if [o * i for o, i in zip(out_dims, in_dims, strict=True)] != list(psi.phys_dims):
        raise ValueError(f"psi: phys_dims {psi.phys_dims} are not out·in of {out_dims}, {in_dims}")
    cores = tuple(
        backend.namespace(c).reshape(c, (c.shape[0], o, i, c.shape[2]))
        for c, o, i in zip(psi._arrays(), out_dims, in_dims, strict=True)
    )
    return MPO._trusted(cores, None, None, psi.scale_exponent)


def frobenius_distance(a: MPO, b: MPO) -> float:
    """‖a − b‖_F of two operators, from the canonical form of their difference."""
    _check_operator(b, a, name="b")
    return float((a - b).norm())


def trace_distance(a: MPO, b: MPO) -> float:
    """‖a − b‖₁, the sum of the singular values of the difference (dense: up to 2^12 rows).

    Example:
        >>> import tnkit as tn
        >>> a = tn.MPO.identity([2, 2])
        >>> round(trace_distance(a, 0.5 * a), 12)
        2.0
    """
    _check_operator(b, a, name="b")
    rows = math.prod(a.out_dims)
    if rows > DENSE_LIMIT or math.prod(a.in_dims) > DENSE_LIMIT:
        raise ValueError(
            f"a: trace distance needs the dense {rows}×{math.prod(a.in_dims)} matrix; "
            f"at most {DENSE_LIMIT} rows (use frobenius_distance)"
        )
    difference = np.asarray(backend.to_numpy((a - b).to_matrix()))
    return float(np.sum(np.linalg.svd(difference, compute_uv=False)))


@dataclass(frozen=True)
class _OnOperator:
    """A user's ``callable(operator)`` as a ``tdvp`` observable of the vectorised state."""

    function: Callable[[MPO], Any]
    like: MPO
    scale: float

    def __call__(self, state: MPS) -> Any:
        operator = state_to_operator(state, self.like.out_dims, self.like.in_dims) * self.scale
        return self.function(operator)


def _scaled_cores(H: MPO) -> list:
    cores = list(H.cores)
    if H.scale_exponent:
        cores[0] = cores[0] * 2.0**H.scale_exponent
    return cores


def _check_operator(O: Any, H: MPO, name: str = "O") -> None:
    if not isinstance(O, MPO):
        raise TypeError(f"{name}: expected an MPO, got {type(O).__name__}")
    if O.out_dims != H.out_dims or O.in_dims != H.in_dims:
        raise ValueError(
            f"{name}: dims {O.out_dims}×{O.in_dims} differ from {H.out_dims}×{H.in_dims}"
        )
