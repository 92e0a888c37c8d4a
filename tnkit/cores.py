"""What a chain of cores must be (ranks, dtypes, library, device, bonds), random cores, and
one dtype for two trains. Checks and construction of cores; no algorithm here.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat as aac
import numpy as np

from . import _backend as backend
from ._checks import check_array, check_entries
from .truncation import Truncation


def common_dtype(o: Any, t: Any) -> tuple[Any, Any]:
    """Both trains in one dtype: a real train meeting a complex one of the same precision
    becomes complex; different precisions are refused (no silent upcast). The messages name
    ``t`` (the operand that meets the operator ``o``)."""
    if o.dtype == t.dtype:
        return o, t
    if backend.eps(o.dtype) != backend.eps(t.dtype):
        raise TypeError(
            f"t: dtype {backend.dtype_name(t.dtype)} and o's {backend.dtype_name(o.dtype)} "
            "differ in precision; convert one of them first"
        )
    xp = o.xp
    dtype = xp.result_type(o.dtype, t.dtype)
    cast = [
        x
        if x.dtype == dtype
        else x._with_cores(tuple(xp.astype(c, dtype) for c in x.cores), None, None)
        for x in (o, t)
    ]
    return cast[0], cast[1]


def read_only(core: Any) -> Any:
    """A read-only view of a NumPy core (other libraries' arrays as they are)."""
    if isinstance(core, np.ndarray) and core.flags.writeable:
        core = core.view()
        core.flags.writeable = False
    return core


def validate_cores(cores: Any, n_phys: int, kind: str, layout: str) -> tuple:
    """Check ranks, dtypes, library, finiteness and bond matching; messages name the site."""
    if aac.is_array_api_obj(cores):
        raise TypeError(
            f"cores: expected a sequence of arrays, got a single {type(cores).__name__}"
        )
    try:
        cores = tuple(cores)
    except TypeError as exc:
        raise TypeError(
            f"cores: expected a sequence of arrays, got {type(cores).__name__}"
        ) from exc
    if not cores:
        raise ValueError("cores: need at least one core")
    ndim = n_phys + 2
    for k, core in enumerate(cores):
        check_array(core, f"cores[{k}]")
        if core.ndim != ndim:
            raise ValueError(
                f"cores[{k}]: {kind} cores have {ndim} dimensions {layout}, "
                f"got shape {tuple(core.shape)}"
            )
    backend.namespace(*cores, name="cores")
    # A JAX tracer has no device (None): it goes wherever the arrays beside it are.
    devices = [(k, d) for k, d in enumerate(backend.device(c) for c in cores) if d is not None]
    for k, dev in devices:
        if dev != devices[0][1]:
            first, where = devices[0]
            raise ValueError(f"cores[{k}]: on device {dev}, but cores[{first}] is on {where}")
    dtypes = {backend.dtype_name(c.dtype) for c in cores}
    if len(dtypes) > 1:
        raise TypeError(f"cores: mixed dtypes {sorted(dtypes)}; convert them to one dtype first")
    if cores[0].shape[0] != 1:
        raise ValueError(
            f"cores[0]: left boundary bond must be 1, got shape {tuple(cores[0].shape)}"
        )
    if cores[-1].shape[-1] != 1:
        raise ValueError(
            f"cores[{len(cores) - 1}]: right boundary bond must be 1, "
            f"got shape {tuple(cores[-1].shape)}"
        )
    for k in range(1, len(cores)):
        if cores[k - 1].shape[-1] != cores[k].shape[0]:
            raise ValueError(
                f"cores[{k}]: left bond {cores[k].shape[0]} does not match right bond "
                f"{cores[k - 1].shape[-1]} of cores[{k - 1}] "
                f"(shapes {tuple(cores[k - 1].shape)} and {tuple(cores[k].shape)})"
            )
    return cores


def random_cores(
    site_shapes: list[tuple[int, ...]],
    max_bond: int,
    *,
    seed: Any,
    dtype: Any,
    like: Any,
) -> tuple:
    """Gaussian cores with bonds min(max_bond, dims to either side) and E‖x‖² = 1."""
    Truncation(max_bond=max_bond)  # validates max_bond
    xp = np if like is None else backend.namespace(like, name="like")
    target = backend.resolve_dtype(np, dtype)
    rng = backend.rng(seed)
    sizes = [math.prod(s) for s in site_shapes]
    bonds = [1]
    for k in range(1, len(sizes)):
        left, right = math.prod(sizes[:k]), math.prod(sizes[k:])
        bonds.append(min(max_bond, left, right))
    bonds.append(1)
    check_entries(sum(bonds[k] * sizes[k] * bonds[k + 1] for k in range(len(sizes))))
    cores = []
    for k, shape in enumerate(site_shapes):
        full = (bonds[k], *shape, bonds[k + 1])
        scale = 1.0 / math.sqrt(bonds[k] * sizes[k])
        core = rng.standard_normal(full)
        if np.issubdtype(target, np.complexfloating):
            core = (core + 1j * rng.standard_normal(full)) / math.sqrt(2)
        cores.append(backend.from_numpy((scale * core).astype(target), like, xp))
    return tuple(cores)
