"""tnkit: tensor trains (MPS/MPO) with honest truncation reports, on any array-API library."""

from . import models
from .apply import apply
from .contract import distance, expectation, inner
from .decompose import factorize_dims, from_matrix, tt_svd
from .measure import correlation, local_expectation
from .mpo import MPO
from .mps import MPS
from .operators import OpSum
from .storage import load, save
from .tensortrain import TensorTrain
from .truncation import Truncation, TruncationReport

__version__ = "0.1.0"

__all__ = [
    "MPO",
    "MPS",
    "OpSum",
    "TensorTrain",
    "Truncation",
    "TruncationReport",
    "apply",
    "correlation",
    "distance",
    "expectation",
    "factorize_dims",
    "from_matrix",
    "inner",
    "load",
    "local_expectation",
    "models",
    "save",
    "tt_svd",
]
