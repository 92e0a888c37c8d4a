"""tnkit: tensor trains (MPS/MPO) with honest truncation reports, on any array-API library."""

from . import models
from ._factorize import factorize_dims
from ._version import __version__ as __version__
from .algorithms import dmrg, tdvp, tdvp_operator, two_site_variance, variance
from .apply import apply
from .contract import distance, expectation, inner
from .measure import correlation, local_expectation
from .mpo import MPO, from_matrix
from .mps import MPS, tt_svd
from .operators import OpSum
from .storage import load, save
from .tensortrain import TensorTrain
from .truncation import Truncation, TruncationReport

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
    "dmrg",
    "expectation",
    "factorize_dims",
    "from_matrix",
    "inner",
    "load",
    "local_expectation",
    "models",
    "save",
    "tdvp",
    "tdvp_operator",
    "tt_svd",
    "two_site_variance",
    "variance",
]
