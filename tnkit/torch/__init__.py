"""PyTorch adapters: modules whose weights are tensor trains (needs ``torch``).

Importing ``tnkit`` never imports this package; the math lives in the core (``tnkit.linear_map``).
"""

from .adapters import (
    MPOAdapter,
    adapter_parameters,
    add_adapters,
    load_adapters,
    merge_adapters,
    parameter_counts,
    save_adapters,
    unmerge_adapters,
)
from .adtn import ADTNLinear
from .conv import MPOConv2d
from .embedding import MPOEmbedding
from .linear import MPOLinear
from .lstm import MPOLSTM
from .model import compress_model, densify_model
from .mpop import SqueezeReport, freeze_central, squeeze
from .report import CompressionReport
from .structure import apply_structure, mpo_structure
from .taylor import TaylorLayer

__all__ = [
    "ADTNLinear",
    "CompressionReport",
    "MPOAdapter",
    "MPOConv2d",
    "MPOEmbedding",
    "MPOLSTM",
    "MPOLinear",
    "SqueezeReport",
    "TaylorLayer",
    "adapter_parameters",
    "add_adapters",
    "apply_structure",
    "compress_model",
    "densify_model",
    "freeze_central",
    "load_adapters",
    "merge_adapters",
    "mpo_structure",
    "parameter_counts",
    "save_adapters",
    "squeeze",
    "unmerge_adapters",
]
