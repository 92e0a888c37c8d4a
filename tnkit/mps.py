"""MPS: a tensor train with one physical leg per core, layout (Dl, d, Dr).

Index layout and the dense round trip only; all algorithms are inherited from TensorTrain.
"""

from __future__ import annotations

from typing import Any

from . import measure as _measure
from ._checks import check_dims
from .tensortrain import TensorTrain, random_cores


class MPS(TensorTrain):
    """Matrix product state: cores ``(Dl, d, Dr)``; ``to_dense()`` has shape ``phys_dims``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> m = tn.MPS([np.ones((1, 2, 1)), np.ones((1, 3, 1))])
        >>> m.phys_dims, m.bond_dims, m.to_dense().shape
        ((2, 3), (1,), (2, 3))
    """

    _n_phys_legs = 1
    _layout = "(Dl, d, Dr)"
    __slots__ = ()

    @property
    def phys_dims(self) -> tuple[int, ...]:
        """Physical dimension of every site."""
        return tuple(int(c.shape[1]) for c in self.cores)

    def _dims_repr(self) -> str:
        return f"phys_dims={list(self.phys_dims)}"

    def to_dense(self) -> Any:
        """The full tensor, shape ``phys_dims`` (refused above 2**31 entries)."""
        return self.xp.reshape(self._contract_all(), self.phys_dims)

    def sample(self, n: int, *, seed: Any = None) -> Any:
        """``n`` exact samples of |x|²/‖x‖², an (n, len) int64 NumPy array; see
        [sample][tnkit.measure.sample]."""
        return _measure.sample(self, n, seed=seed)

    def probabilities(self) -> Any:
        """|x|²/‖x‖² as a dense array of shape ``phys_dims`` (small trains only); see
        [probabilities][tnkit.measure.probabilities]."""
        return _measure.probabilities(self)

    @classmethod
    def random(
        cls,
        phys_dims: Any,
        max_bond: int,
        *,
        seed: Any = None,
        dtype: Any = "float64",
        like: Any = None,
    ) -> MPS:
        """Gaussian random MPS, bonds ``min(max_bond, dims to either side)``, E‖x‖² = 1.

        Not canonical (``centre`` is None). ``like``: an array whose library and device the
        cores use (NumPy when None).

        Example:
            >>> import tnkit as tn
            >>> tn.MPS.random([2] * 5, 3, seed=0).bond_dims
            (2, 3, 3, 2)
        """
        dims = check_dims(phys_dims, "phys_dims")
        cores = random_cores([(d,) for d in dims], max_bond, seed=seed, dtype=dtype, like=like)
        return cls._trusted(cores)
