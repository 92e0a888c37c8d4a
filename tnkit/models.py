"""Model Hamiltonians as MPOs: ``tnkit.models`` names the functions of ``operators.models``.

Kept so that ``tn.models.heisenberg`` and ``from tnkit.models import heisenberg`` work; the
code lives in the operators package, and nothing is defined here.
"""

from .operators.models import (
    heisenberg,
    heisenberg_cylinder,
    hubbard,
    hubbard_cylinder,
    ising,
    long_range_exp,
)

__all__ = ["heisenberg", "hubbard", "ising", "long_range_exp"]  # chains
__all__ += ["heisenberg_cylinder", "hubbard_cylinder"]  # cylinders
