"""Algorithms on trains and operators: ground states (DMRG) and time evolution (TDVP).

The layer above operators: it may use every layer below it (trains, operations, operators)
and nothing above it (no storage, interop or adapters); each family gets its own module here,
sharing one set of environments (``environments``) and Krylov solvers (``krylov``).
"""

from .dmrg import DMRGResult, SweepRecord, dmrg, variance
from .estimates import Extrapolation, extrapolate, two_site_variance
from .operator_tdvp import OperatorTDVPResult, tdvp_operator
from .scan import scan
from .tdvp import StepRecord, TDVPResult, tdvp

__all__ = [
    "DMRGResult",
    "Extrapolation",
    "OperatorTDVPResult",
    "StepRecord",
    "SweepRecord",
    "TDVPResult",
    "dmrg",
    "extrapolate",
    "scan",
    "tdvp",
    "tdvp_operator",
    "two_site_variance",
    "variance",
]
