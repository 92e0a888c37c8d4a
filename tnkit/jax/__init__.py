"""JAX adapter: importing ``tnkit.jax`` registers MPS and MPO as JAX pytrees (needs ``jax``).

No math of its own: ``jax.jit``, ``jax.grad`` and ``jax.vmap`` trace the core's array-API code.
Importing ``tnkit`` never imports this package; ``MPOLinear`` (Flax nnx) imports Flax on
first use, so the pytrees work without Flax.
"""

from __future__ import annotations

from typing import Any

try:
    import jax
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tnkit.jax needs JAX: install tnkit[jax] or pip install jax flax") from exc

from ..mpo import MPO
from ..mps import MPS
from ..tensortrain import TensorTrain

__all__ = ["MPOLinear", "register_pytree"]

_REGISTERED: set[type] = set()


def __getattr__(name: str) -> Any:
    if name == "MPOLinear":
        from .linear import MPOLinear  # optional dependency: tnkit.jax.linear needs flax

        return MPOLinear
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_pytree(cls: type[TensorTrain]) -> type[TensorTrain]:
    """Register a TensorTrain class as a JAX pytree; idempotent, returns ``cls``.

    The cores are the leaves; the class, ``centre``, ``report``, the exact scale
    ``scale_exponent`` and any slots a subclass adds
    (e.g. an MPO's ``matrix_shape``) are static aux data, so a ``jax.jit`` recompiles when
    they change. Unflattening rebuilds through the trusted constructor without validation:
    leaves may be tracers, stacked batches or anything ``tree_map`` returns. ``MPS`` and
    ``MPO`` are registered on import; call this for a subclass of your own (JAX registers
    exact types).

    Example:
        >>> import jax, jax.numpy as jnp, tnkit as tn, tnkit.jax
        >>> m = tn.MPS([jnp.ones((1, 2, 1)), jnp.ones((1, 2, 1))])
        >>> round(float(jax.jit(lambda m: m.norm())(m)), 5)
        2.0
        >>> type(jax.tree_util.tree_map(lambda c: 2 * c, m)).__name__
        'MPS'
    """
    if not (isinstance(cls, type) and issubclass(cls, TensorTrain)):
        raise TypeError(f"cls: expected a TensorTrain subclass, got {cls!r}")
    if cls in _REGISTERED:
        return cls
    extra_slots = tuple(
        name
        for base in cls.__mro__
        for name in getattr(base, "__slots__", ())
        if name not in TensorTrain.__slots__
    )

    def flatten(train: TensorTrain) -> tuple[tuple, tuple]:
        meta = tuple((name, getattr(train, name, None)) for name in extra_slots)
        return train.cores, (train.centre, train.report, train.scale_exponent, meta)

    def unflatten(aux: tuple, cores: Any) -> TensorTrain:
        centre, report, exponent, meta = aux
        train = object.__new__(cls)
        train._init(tuple(cores), centre, report, exponent)
        for name, value in meta:
            object.__setattr__(train, name, value)
        return train

    jax.tree_util.register_pytree_node(cls, flatten, unflatten)
    _REGISTERED.add(cls)
    return cls


register_pytree(MPS)
register_pytree(MPO)
