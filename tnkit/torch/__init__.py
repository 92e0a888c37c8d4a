"""PyTorch adapters: modules whose weights are tensor trains (needs ``torch``).

Importing ``tnkit`` never imports this package; the math lives in the core (``tnkit.linear_map``).
"""

from .conv import MPOConv2d
from .embedding import MPOEmbedding
from .linear import MPOLinear
from .lstm import MPOLSTM
from .model import (
    CompressionReport,
    apply_structure,
    compress_model,
    densify_model,
    mpo_structure,
)
from .mpop import SqueezeReport, freeze_central, squeeze

__all__ = [
    "CompressionReport",
    "MPOConv2d",
    "MPOEmbedding",
    "MPOLSTM",
    "MPOLinear",
    "SqueezeReport",
    "apply_structure",
    "compress_model",
    "densify_model",
    "freeze_central",
    "mpo_structure",
    "squeeze",
]
