"""PyTorch adapters: modules whose weights are tensor trains (needs ``torch``).

Importing ``tnkit`` never imports this package; the math lives in the core (``tnkit.linear_map``).
"""

from .conv import MPOConv2d
from .embedding import MPOEmbedding
from .linear import MPOLinear
from .lstm import MPOLSTM

__all__ = ["MPOConv2d", "MPOEmbedding", "MPOLSTM", "MPOLinear"]
