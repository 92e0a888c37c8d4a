"""Argument checks that several algorithms share: a Hermitian MPO Hamiltonian, a state it
acts on.

Checks only: they raise ValueError/TypeError naming the parameter and return nothing new.
"""

from __future__ import annotations

import math
from typing import Any

from ..mpo import MPO
from ..mps import MPS

__all__ = ["check_hamiltonian", "check_state"]

# ‖H − H†‖ above this fraction of ‖H‖ is not rounding: the operator is not Hermitian.
HERMITIAN_TOL = 1e-10


def check_hamiltonian(H: Any, name: str = "H") -> None:
    """Refuse anything but a square, Hermitian MPO (within ``HERMITIAN_TOL`` of ‖H‖).

    Example:
        >>> import tnkit as tn
        >>> check_hamiltonian(tn.models.heisenberg(4))
        >>> check_hamiltonian(tn.MPO.random([2] * 3, [2] * 3, 2, seed=0))
        Traceback (most recent call last):
        ...
        ValueError: H: not Hermitian (‖H − H†‖ = 0.651 of ‖H‖ = 0.502)
    """
    if not isinstance(H, MPO):
        raise TypeError(f"{name}: expected an MPO, got {type(H).__name__}")
    if H.out_dims != H.in_dims:
        raise ValueError(f"{name}: needs out_dims == in_dims, got {H.out_dims} and {H.in_dims}")
    scale = H.norm()
    if math.isfinite(scale) and scale > 0:
        error = float((H - H.H).norm())
        if error > HERMITIAN_TOL * scale:
            raise ValueError(f"{name}: not Hermitian (‖H − H†‖ = {error:.3g} of ‖H‖ = {scale:.3g})")


def check_state(psi: Any, H: MPO, name: str = "psi") -> None:
    """Refuse anything but an MPS on the sites ``H`` acts on.

    Example:
        >>> import tnkit as tn
        >>> check_state(tn.MPS.random([3] * 4, 2, seed=0), tn.models.heisenberg(4))
        Traceback (most recent call last):
        ...
        ValueError: psi: phys_dims (3, 3, 3, 3) differ from the dims H acts on, (2, 2, 2, 2)
    """
    if not isinstance(psi, MPS):
        raise TypeError(f"{name}: expected an MPS, got {type(psi).__name__}")
    if psi.phys_dims != H.in_dims:
        raise ValueError(
            f"{name}: phys_dims {psi.phys_dims} differ from the dims H acts on, {H.in_dims}"
        )
