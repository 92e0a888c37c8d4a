"""PyTorch adapters: modules whose weights are tensor trains (needs ``torch``).

Importing ``tnkit`` never imports this package; the math lives in the core (``tnkit.linear_map``).
"""

from .linear import MPOLinear

__all__ = ["MPOLinear"]
