"""Operators: site tables, sums of operator strings (OpSum) and model Hamiltonians as MPOs.

Builds MPOs exactly; it never contracts, truncates or evolves a state (algorithms do).
"""

from ..sites import SITE_TYPES, local_operators
from . import models
from .automaton import automaton, min_vertex_cover
from .opsum import OpSum

__all__ = ["OpSum", "SITE_TYPES", "automaton", "local_operators", "min_vertex_cover", "models"]
