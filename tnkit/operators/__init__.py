"""Operators: site tables, sums of operator strings (OpSum) and model Hamiltonians as MPOs.

Builds MPOs exactly; it never contracts, truncates or evolves a state (algorithms do).
"""

from ..sites import SITE_TYPES, local_charges, local_operators
from ..symmetry import Charges, sector, site_charges
from . import models
from .automaton import automaton, min_vertex_cover
from .charges import bond_charges
from .opsum import OpSum

__all__ = ["OpSum", "SITE_TYPES", "automaton", "local_operators", "min_vertex_cover", "models"]
__all__ += ["Charges", "bond_charges", "local_charges", "sector", "site_charges"]  # symmetries
