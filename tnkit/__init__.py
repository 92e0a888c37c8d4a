"""tnkit: tensor trains (MPS/MPO) with honest truncation reports, on any array-API library."""

from .contract import distance, expectation, inner
from .decompose import factorize_dims, from_matrix, tt_svd
from .mpo import MPO
from .mps import MPS
from .tensortrain import TensorTrain
from .truncation import Truncation, TruncationReport

__version__ = "0.1.0"

__all__ = [
    "MPO",
    "MPS",
    "TensorTrain",
    "Truncation",
    "TruncationReport",
    "distance",
    "expectation",
    "factorize_dims",
    "from_matrix",
    "inner",
    "tt_svd",
]
