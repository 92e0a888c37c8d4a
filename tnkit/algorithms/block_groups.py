"""The symmetry groups of the block-sparse engine: symmray's named groups (U1, U1U1, Z_n,
Z2Z2) where one fits, and any other product of U(1) and Z_n factors (such as U(1) × Z2,
``conserve=("N", "parity")``) as a symmray symmetry of its own, so that every charge group a
site can declare runs on blocks.

Example:
    >>> from tnkit.symmetry import Charges
    >>> symmetry(Charges([[0, 0], [1, 1]], moduli=(0, 2)))
    <U1xZ2>
"""

from __future__ import annotations

from typing import Any

import numpy as np
from symmray.symmetries import Symmetry

from ..symmetry import Charges

__all__ = ["ProductGroup", "moduli", "symmetry"]

_NAMED = {(0,): "U1", (0, 0): "U1U1", (2,): "Z2", (2, 2): "Z2Z2"}


class ProductGroup(Symmetry):
    """A product of U(1) (modulus 0) and Z_n (modulus n) factors as a symmray symmetry: a
    charge is a tuple with one int per factor, combined by addition modulo each factor's n.

    Example:
        >>> g = ProductGroup((0, 2))
        >>> g.combine((1, 1), (2, 1)), g.sign((1, 1))
        ((3, 0), (-1, 1))
    """

    __slots__ = ("moduli",)

    def __init__(self, moduli: tuple[int, ...]) -> None:
        if len(moduli) < 2 or any(m < 0 or m == 1 for m in moduli):
            raise ValueError(f"moduli: expected ≥2 factors of 0 or n ≥ 2, got {moduli!r}")
        self.moduli = tuple(int(m) for m in moduli)

    @property
    def num_components(self) -> int:
        return len(self.moduli)

    def _reduced(self, charge: Any) -> tuple[int, ...]:
        return tuple(int(q) % m if m else int(q) for q, m in zip(charge, self.moduli, strict=True))

    def valid(self, *charges: Any) -> bool:
        return all(
            isinstance(c, tuple) and len(c) == len(self.moduli) and self._reduced(c) == c
            for c in charges
        )

    def combine(self, *charges: Any) -> tuple[int, ...]:
        total = np.zeros(len(self.moduli), dtype=np.int64)
        for charge in charges:
            total += np.asarray(charge, dtype=np.int64)
        return self._reduced(total)

    def sign(self, charge: Any, dual: bool = True) -> tuple[int, ...]:
        return self._reduced(-np.asarray(charge)) if dual else charge

    def parity(self, charge: Any) -> int:
        return int(sum(charge)) % 2

    def random_charge(self, seed: Any = None) -> tuple[int, ...]:
        rng = np.random.default_rng(seed)
        return self._reduced(rng.integers(-1, 2, size=len(self.moduli)))

    def _reduced_array(self, array: np.ndarray) -> np.ndarray:
        out = np.array(array, dtype=np.int64)
        for c, m in enumerate(self.moduli):
            if m:
                out[..., c] %= m
        return out

    def combine_array(self, array: np.ndarray, axis: int = -2) -> np.ndarray:
        return self._reduced_array(np.sum(array, axis=axis))

    def sign_array(self, array: np.ndarray, duals: np.ndarray) -> np.ndarray:
        return self._reduced_array(np.where(duals[..., None], -array, array))

    def parity_array(self, array: np.ndarray) -> np.ndarray:
        return np.sum(array, axis=-1) % 2

    def __str__(self) -> str:
        return "x".join(f"Z{m}" if m else "U1" for m in self.moduli)

    def __repr__(self) -> str:
        return f"<{self}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) == other
        return isinstance(other, ProductGroup) and other.moduli == self.moduli

    def __hash__(self) -> int:
        return hash((ProductGroup, self.moduli))


def symmetry(charges: Charges) -> str | ProductGroup:
    """The symmray symmetry of a charge group: its name where symmray has one (U1, U1U1,
    Z_n, Z2Z2), a [ProductGroup][tnkit.algorithms.block_groups.ProductGroup] otherwise."""
    found = charges.moduli
    if found in _NAMED:
        return _NAMED[found]
    if len(found) == 1:
        return f"Z{found[0]}"
    return ProductGroup(found)


def moduli(array: Any) -> tuple[int, ...]:
    """Per charge component of a symmray array: 0 for U(1), n for Z_n."""
    group = array.symmetry
    if isinstance(group, ProductGroup):
        return group.moduli
    name = str(group)
    if name.startswith("U1"):
        return (0,) * (len(name) // 2)
    if name == "Z2Z2":
        return (2, 2)
    return (int(name[1:]),)
