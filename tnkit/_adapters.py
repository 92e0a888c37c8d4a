"""What the torch and JAX adapters share about MPO weights: options, shapes, dtypes, MPOs.

Framework-agnostic (dtypes are asked of the array namespace passed in); no parameters, no
random draws and no layer semantics: those are the adapters' own.
"""

from __future__ import annotations

import math
from typing import Any

from .linear_map import linear_layout
from .mpo import MPO

__all__ = [
    "LAYOUT_OPTIONS",
    "RULE_OPTIONS",
    "decompose_weight",
    "is_half",
    "is_padded",
    "mpo_core_shapes",
    "mpo_of_cores",
    "pick_options",
    "work_dtype",
]

LAYOUT_OPTIONS = ("n_cores", "in_dims", "out_dims", "max_bond", "bond_dims")
RULE_OPTIONS = ("max_bond", "rtol", "atol", "method")


def pick_options(options: dict, allowed: tuple) -> dict:
    """``options`` if every key is ``allowed``, else a TypeError naming the others.

    Example:
        >>> pick_options({"max_bond": 4}, RULE_OPTIONS)
        {'max_bond': 4}
    """
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown}; expected some of {allowed}")
    return options


def is_half(dtype: Any, xp: Any) -> bool:
    """Whether ``dtype`` is a real floating type of fewer than 32 bits (float16, bfloat16),
    asked of the namespace ``xp`` (LAPACK has no such types).

    Example:
        >>> import numpy as np
        >>> is_half(np.float16, np), is_half(np.complex64, np), is_half(np.int8, np)
        (True, False, False)
    """
    try:
        return xp.finfo(dtype).bits < 32
    except (TypeError, ValueError):
        return False


def work_dtype(dtype: Any, xp: Any) -> Any:
    """The dtype decompositions and QR sweeps run in: float32 for half types, else ``dtype``.

    Example:
        >>> import numpy as np
        >>> work_dtype(np.float16, np), work_dtype(np.float64, np)
        (<class 'numpy.float32'>, <class 'numpy.float64'>)
    """
    return xp.float32 if is_half(dtype, xp) else dtype


def mpo_core_shapes(layout: tuple) -> tuple[tuple[int, int, int, int], ...]:
    """The core shapes ``(D_{k-1}, out_k, in_k, D_k)`` of ``(out_dims, in_dims, bond_dims)``.

    Example:
        >>> mpo_core_shapes(((2, 3), (4, 5), (6,)))
        ((1, 2, 4, 6), (6, 3, 5, 1))
    """
    outs, ins, bonds = layout
    edges = (1, *bonds, 1)
    return tuple(
        (edges[k], o, i, edges[k + 1]) for k, (o, i) in enumerate(zip(outs, ins, strict=True))
    )


def is_padded(layout: tuple, matrix_shape: tuple) -> bool:
    """Whether the dims' products exceed the matrix ``(rows, cols)`` (zero padding).

    Example:
        >>> is_padded(((2, 5), (10, 10), (20,)), (10, 97))
        True
    """
    outs, ins = layout[0], layout[1]
    return (math.prod(outs), math.prod(ins)) != tuple(matrix_shape)


def mpo_of_cores(cores: Any, matrix_shape: tuple, xp: Any) -> MPO:
    """A ``tn.MPO`` of a layer's (detached) cores for a matrix ``(rows, cols)``: half types
    cast to float32, the matrix shape kept only where the dims pad it.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> o = tn.MPO.random((2, 5), (10, 10), 2, seed=0)
        >>> mpo_of_cores(o.cores, (10, 97), np).matrix_shape
        (10, 97)
    """
    cores = list(cores)
    if is_half(cores[0].dtype, xp):
        cores = [xp.astype(core, xp.float32) for core in cores]
    layout = ([c.shape[1] for c in cores], [c.shape[2] for c in cores], ())
    return MPO(cores, matrix_shape=tuple(matrix_shape) if is_padded(layout, matrix_shape) else None)


def decompose_weight(matrix: Any, xp: Any, **options: Any) -> MPO:
    """``tn.MPO.from_matrix`` of a layer's (detached) weight ``(rows, cols)``, zero-padded
    to the layout; half types decomposed in float32. ``options``: ``n_cores``,
    ``in_dims``, ``out_dims`` (the layout, as
    [linear_layout][tnkit.linear_map.linear_layout]) and ``max_bond``, ``rtol``, ``atol``,
    ``method`` (the truncation).

    Example:
        >>> import numpy as np
        >>> W = np.random.default_rng(0).standard_normal((10, 97))
        >>> mpo = decompose_weight(W, np, n_cores=2, max_bond=4)
        >>> mpo.out_dims, mpo.in_dims, mpo.bond_dims
        ((2, 5), (10, 10), (4,))
    """
    layout_keys = ("n_cores", "in_dims", "out_dims")
    pick_options(options, layout_keys + RULE_OPTIONS)
    rows, cols = matrix.shape
    layout = {k: v for k, v in options.items() if k in layout_keys}
    outs, ins, _ = linear_layout(cols, rows, **layout)
    rule = {k: v for k, v in options.items() if k in RULE_OPTIONS}
    if is_half(matrix.dtype, xp):
        matrix = xp.astype(matrix, xp.float32)
    return MPO.from_matrix(matrix, outs, ins, pad=True, **rule)
