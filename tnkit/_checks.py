"""Argument validation shared by every layer: ints, dims, arrays, sizes.

Each check returns the cleaned value or raises a TypeError/ValueError naming the parameter;
nothing here computes or allocates.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat as aac
import numpy as np

from . import _backend as backend


def is_int(value: Any) -> bool:
    """A Python or NumPy integer, but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(value: Any, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``, or a TypeError/ValueError naming ``name``."""
    if not is_int(value):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: must be <= {maximum}, got {value}")
    return int(value)


# Operators and models hold a Python object per site: longer chains cannot fit in memory.
MAX_SITES = 10**7


def check_array(x: Any, name: str, *, ndim: int | None = None) -> Any:
    """Validate a numeric array (dtype, rank, non-empty, finite); return its namespace."""
    if isinstance(x, np.ndarray) and x.dtype == object:
        raise TypeError(f"{name}: object arrays are not supported")
    if not aac.is_array_api_obj(x):
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
    xp = backend.namespace(x, name=name)
    backend.dtype_name(x.dtype)  # raises TypeError on unsupported dtypes
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(x.shape)}")
    if any(s == 0 for s in x.shape):
        raise ValueError(f"{name}: empty array of shape {tuple(x.shape)}")
    if backend.has_values(x) and not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name}: contains NaN or Inf")
    return xp


# No machine holds 2**40 entries (8 TiB of float64): refuse before NumPy tries to allocate.
_ENTRIES_LIMIT = 2**40


def check_entries(entries: int, name: str = "phys_dims") -> None:
    """ValueError naming ``name`` when cores of ``entries`` entries could never be allocated."""
    if entries > _ENTRIES_LIMIT:
        raise ValueError(
            f"{name}: the cores would hold {entries} entries, beyond any memory "
            f"(limit {_ENTRIES_LIMIT})"
        )


def check_dims(dims: Any, name: str) -> tuple[int, ...]:
    """A non-empty tuple of positive ints, or a ValueError/TypeError naming ``name``."""
    if isinstance(dims, (int, np.integer)):
        raise TypeError(f"{name}: expected a sequence of ints, got the int {dims}")
    try:
        dims = tuple(dims)
    except TypeError as exc:
        raise TypeError(f"{name}: expected a sequence of ints, got {dims!r}") from exc
    if not dims:
        raise ValueError(f"{name}: must not be empty")
    for d in dims:
        if not is_int(d):
            raise TypeError(f"{name}: expected ints, got {d!r} in {dims}")
        if d < 1:
            raise ValueError(f"{name}: dimensions must be >= 1, got {dims}")
    return tuple(int(d) for d in dims)


def check_dim_pair(out_dims: Any, in_dims: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validated ``(out_dims, in_dims)`` of one operator: same number of sites."""
    outs, ins = check_dims(out_dims, "out_dims"), check_dims(in_dims, "in_dims")
    if len(outs) != len(ins):
        raise ValueError(
            f"out_dims and in_dims: need the same number of sites, got {outs} and {ins}"
        )
    return outs, ins


def check_bond(bond: Any, length: int) -> int:
    """A bond index of a train of ``length`` sites (negative counts from the end), as 0..L-2.

    Example:
        >>> check_bond(-1, 5)
        3
    """
    if not is_int(bond):
        raise TypeError(f"bond: expected an int bond index, got {bond!r}")
    bonds = length - 1
    if bonds == 0:
        raise ValueError(f"bond: {bond} out of range: a train of length 1 has no bonds")
    if not -bonds <= bond < bonds:
        raise ValueError(
            f"bond: {bond} out of range for a train of length {length} (bonds 0..{bonds - 1})"
        )
    return int(bond) % bonds


def check_alpha(alpha: Any) -> float:
    """A Rényi order > 0 (``math.inf`` allowed) as a float."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha: expected a real number, got {alpha!r}")
    if not alpha > 0:
        raise ValueError(f"alpha: the Rényi order must be > 0, got {alpha}")
    return float(alpha)


def check_count(n: Any, name: str) -> int:
    """A number of samples: an int >= 0."""
    if not is_int(n):
        raise TypeError(f"{name}: expected an int number of samples, got {n!r}")
    if n < 0:
        raise ValueError(f"{name}: the number of samples must be >= 0, got {n}")
    return int(n)


def check_number(value: Any, name: str, *, minimum: float) -> float:
    """A finite real number >= ``minimum`` (not a bool), as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name}: must be a finite number >= {minimum}, got {value}")
    return float(value)
