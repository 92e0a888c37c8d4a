"""Multi-tensor contractions on any array-API library: opt_einsum plans, tensordot executes.

opt_einsum chooses the pairwise order (cached per subscripts and shapes); each pair is
contracted with ``xp.tensordot`` and a final ``permute_dims``, which every array-API library
has. Only plain contractions: every index appears in at most two operands.
"""

from __future__ import annotations

import functools
from typing import Any

import array_api_compat as aac
import opt_einsum


def contract(subscripts: str, *operands: Any) -> Any:
    """``einsum(subscripts, *operands)`` in the order opt_einsum finds cheapest.

    Example:
        >>> import numpy as np
        >>> a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 5))
        >>> contract("ij,jk,kl->il", a, b, c).shape
        (2, 5)
    """
    inputs, output = subscripts.replace(" ", "").split("->")
    terms = inputs.split(",")
    path = _plan(subscripts, tuple(tuple(int(s) for s in op.shape) for op in operands))
    xp = aac.array_namespace(*operands)
    live = list(zip(operands, terms, strict=True))
    for positions in path:
        picked = [live[p] for p in sorted(positions, reverse=True)]
        for p in sorted(positions, reverse=True):
            del live[p]
        needed = output + "".join(term for _, term in live)
        live.append(_pair(xp, picked, needed) if len(picked) == 2 else picked[0])
    ((result, indices),) = live
    if indices != output:
        result = xp.permute_dims(result, tuple(indices.index(c) for c in output))
    return result


@functools.lru_cache(maxsize=1024)
def _plan(subscripts: str, shapes: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    if len(shapes) == 1:
        return ((0,),)
    path, _ = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize="auto")
    return tuple(tuple(step) for step in path)


def _pair(xp: Any, picked: list, needed: str) -> tuple[Any, str]:
    (a, ia), (b, ib) = picked
    summed = [c for c in ia if c in ib and c not in needed]
    kept = [c for c in ia if c in ib and c in needed]
    if kept:
        raise ValueError(f"contract: batch index {kept} is not supported (indices {ia}, {ib})")
    axes = ([ia.index(c) for c in summed], [ib.index(c) for c in summed])
    result = xp.tensordot(a, b, axes=axes)
    indices = "".join(c for c in ia if c not in summed) + "".join(c for c in ib if c not in summed)
    return result, indices
