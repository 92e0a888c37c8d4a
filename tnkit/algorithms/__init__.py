"""Algorithms on trains and operators: ground states (DMRG) and time evolution (TDVP).

The layer above operators: it may use every layer below it (trains, operations, operators)
and nothing above it (no storage, interop or adapters); each family gets its own module here,
sharing one set of environments (``environments``) and Krylov solvers (``krylov``).
"""

from .correlations import CorrelationResult, correlation_function
from .dmrg import DMRGResult, SweepRecord, dmrg, variance
from .estimates import Extrapolation, extrapolate, two_site_variance
from .operator_tdvp import OperatorTDVPResult, tdvp_operator
from .scan import scan
from .tdvp import StepRecord, TDVPResult, tdvp
from .tdvp_expansion import KrylovExpansion, krylov_expand

__all__ = [
    "CorrelationResult",
    "DMRGResult",
    "Extrapolation",
    "KrylovExpansion",
    "OperatorTDVPResult",
    "StepRecord",
    "SweepRecord",
    "TDVPResult",
    "correlation_function",
    "dmrg",
    "extrapolate",
    "krylov_expand",
    "scan",
    "tdvp",
    "tdvp_operator",
    "two_site_variance",
    "variance",
]
