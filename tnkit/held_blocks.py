"""The cores of a charged NumPy train held as their charge blocks: per core only the entries
that conserve charge, and per bond the charge of every channel. Every other entry of a
block-sparse core is structurally zero and is not stored.

A train holds ``HeldBlocks`` in place of its core arrays; the dense cores are built from it
when an operation without a block path reads them (``TensorTrain.cores``), and the sweeps
that work by charge block build one core at a time (``core``) and hold the result as blocks
again. Host NumPy only; the layout is the one files of charge blocks use
([pack_blocks][tnkit.sectors.pack_blocks]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .sectors import allowed_entries, pack_blocks
from .symmetry import Charges

__all__ = ["HeldBlocks"]


@dataclass(frozen=True, eq=False)
class HeldBlocks:
    """Cores ``(Dl, *phys, Dr)`` as ``values[k]``, the 1-D array of core k's entries that
    conserve ``group`` (C order), with ``bonds[k]`` the channel charges of bond k (``(D_k,
    n)``, bond 0 neutral) and ``flows[k]`` the charge each physical index of site k adds
    (``sectors.site_flows``). Build it with ``pack``.

    Example:
        >>> from tnkit.sectors import site_flows
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("spin-half", "Sz")
        >>> up = np.array([1.0, 0.0]).reshape(1, 2, 1)
        >>> held = HeldBlocks.pack([up, up], site_flows([q, q], operator=False), q)
        >>> held.nbytes, held.core(1).ravel().tolist()
        (16, [1.0, 0.0])
    """

    values: tuple[np.ndarray, ...]
    bonds: tuple[np.ndarray, ...]
    flows: tuple[np.ndarray, ...]
    group: Charges

    def __post_init__(self) -> None:  # read-only, as a train's cores are
        for name in ("values", "bonds", "flows"):
            object.__setattr__(self, name, tuple(_frozen(a) for a in getattr(self, name)))

    def __reduce__(self) -> tuple:
        """Pickle through the constructor (so the arrays come back read-only)."""
        return (type(self), (self.values, self.bonds, self.flows, self.group))

    @classmethod
    def pack(
        cls, cores: Sequence[np.ndarray], flows: Sequence[np.ndarray], group: Charges
    ) -> HeldBlocks | None:
        """The charge blocks of NumPy ``cores``, or None when their nonzero entries do not
        conserve ``group`` (some bond channel would need two charges)."""
        packed = pack_blocks(cores, flows, group)
        if packed is None:
            return None
        values, bonds = packed
        return cls(tuple(values), tuple(bonds), tuple(np.array(f) for f in flows), group)

    def with_values(self, values: Sequence[np.ndarray]) -> HeldBlocks:
        """The same blocks holding ``values`` (of the same sizes: e.g. scaled, conjugated)."""
        return replace(self, values=tuple(values))

    def __len__(self) -> int:
        return len(self.values)

    @property
    def dtype(self) -> np.dtype:
        return self.values[0].dtype

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """The dense shape of every core."""
        return tuple(
            (len(self.bonds[k]), *np.shape(flow)[:-1], len(self.bonds[k + 1]))
            for k, flow in enumerate(self.flows)
        )

    @property
    def nbytes(self) -> int:
        """Bytes of the stored entries (the channel charges not counted)."""
        return sum(v.nbytes for v in self.values)

    def core(self, k: int) -> np.ndarray:
        """Core ``k`` as a dense, read-only array (built now)."""
        mask = allowed_entries(self.bonds[k], self.flows[k], self.bonds[k + 1], self.group)
        core = np.zeros(mask.shape, dtype=self.dtype)
        core[mask] = self.values[k]
        return _frozen(core)

    def cores(self) -> tuple[np.ndarray, ...]:
        """Every core as a dense, read-only array (built now)."""
        return tuple(self.core(k) for k in range(len(self)))


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    array.flags.writeable = False
    return array
