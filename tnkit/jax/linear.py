"""MPOLinear for Flax nnx: ``nnx.Linear`` with its kernel stored as MPO cores (needs ``flax``).

Holds parameters only: layout, planning, contraction and initial scaling are the core's
(``tnkit.linear_map``), shared with ``tnkit.torch.MPOLinear``; decompositions are ``tn.MPO``'s.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

try:
    from flax import nnx
    from flax.nnx.nn.dtypes import promote_dtype
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tnkit.jax.MPOLinear needs Flax: pip install tnkit[jax] or flax") from exc

from .. import _backend as backend
from .._adapters import decompose_weight, is_half, is_padded, mpo_core_shapes, mpo_of_cores
from ..linear_map import (
    LinearMapPlan,
    dense_matrix,
    linear_layout,
    linear_map,
    plan_linear_map,
    rescale_cores,
)
from ..mpo import MPO
from ..truncation import TruncationReport

__all__ = ["MPOLinear"]

# flax >= 0.12 wants lists of Variables wrapped; older nnx takes a plain list.
_ParamList = getattr(nnx, "List", list)


class MPOLinear(nnx.Module):
    """``y = x @ kernel + bias`` with ``kernel (in_features, out_features)`` an MPO, like
    ``nnx.Linear``.

    The parameters are ``cores`` (``nnx.Param`` arrays ``(D_{k-1}, out_k, in_k, D_k)``,
    Σ D_{k-1}·out_k·in_k·D_k entries) and ``bias``; the MPO's matrix ``W (out, in)`` is
    ``kernel.T``. The layout is ``tnkit.torch.MPOLinear``'s: dims not given come from
    ``tn.factorize_dims(size, n_cores, pad=True)`` (a size without a balanced factorisation
    is zero-padded, the padding cropped in ``__call__``); ``n_cores`` defaults to 4, or to
    the length of the dims given. Bonds are the full TT ranks (an exact layer), capped by
    ``max_bond``, or ``bond_dims`` exactly.

    The initial kernel has exactly the Frobenius norm that ``nnx.Linear``'s default init
    (``lecun_normal``: entry variance ``1 / in_features``) has in expectation,
    ``sqrt(out_features)``: random cores from ``rngs.params()``, canonicalised, the centre
    core rescaled. The bias starts at zero, as ``nnx.Linear``'s. Half-precision
    ``param_dtype`` cores are made in float32 and cast. ``dtype`` is the computation dtype
    (``None``: promoted from the input and the parameters), as in ``nnx.Linear``.

    ``__call__`` contracts core by core through the input or builds ``W`` and multiplies,
    whichever needs fewer flops for the batch (``plan.order(batch)``, integer arithmetic on
    shapes: ``jax.jit`` sees a static branch).

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from tnkit.jax import MPOLinear
        >>> layer = MPOLinear(784, 256, in_dims=(4, 7, 7, 4), out_dims=(4, 4, 4, 4),
        ...                   max_bond=4, rngs=nnx.Rngs(0))
        >>> sum(c.size for c in layer.cores), layer.bond_dims
        (1024, (4, 4, 4))
        >>> layer(jnp.ones((32, 784))).shape
        (32, 256)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rngs: nnx.Rngs,
        use_bias: bool = True,
        n_cores: int | None = None,
        in_dims: Any = None,
        out_dims: Any = None,
        max_bond: int | None = None,
        bond_dims: Any = None,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
    ) -> None:
        layout = linear_layout(
            in_features,
            out_features,
            n_cores=n_cores,
            in_dims=in_dims,
            out_dims=out_dims,
            max_bond=max_bond,
            bond_dims=bond_dims,
        )
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"rngs: expected an nnx.Rngs, got {type(rngs).__name__}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.out_dims, self.in_dims, self.bond_dims = layout
        self.use_bias = bool(use_bias)
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.report: TruncationReport | None = None
        cores = _initial_cores(rngs.params(), layout, self.matrix_shape, param_dtype)
        self.cores = _ParamList([nnx.Param(core) for core in cores])
        if self.use_bias:
            self.bias = nnx.Param(jnp.zeros((self.out_features,), param_dtype))
        else:
            self.bias = nnx.data(None)

    # ------------------------------------------------------------------ layout

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``: the shape of ``W = kernel.T``."""
        return (self.out_features, self.in_features)

    @property
    def plan(self) -> LinearMapPlan:
        """The [LinearMapPlan][tnkit.linear_map.LinearMapPlan] of the cores' shapes (cached)."""
        return plan_linear_map(
            self.out_dims, self.in_dims, self.bond_dims, matrix_shape=self.matrix_shape
        )

    @property
    def padded(self) -> bool:
        """Whether the dims' products exceed the matrix (zero padding)."""
        return is_padded((self.out_dims, self.in_dims), self.matrix_shape)

    # ------------------------------------------------------------------ forward

    def __call__(self, x: Any) -> jax.Array:
        """``x (..., in_features) -> (..., out_features)``."""
        cores = [core[...] for core in self.cores]
        bias = None if self.bias is None else self.bias[...]
        x, bias, *cores = promote_dtype((x, bias, *cores), dtype=self.dtype)
        return _linear_map(cores, x, bias, self.matrix_shape)

    # ------------------------------------------------------------------ conversions

    def to_dense(self) -> tuple[jax.Array, jax.Array | None]:
        """``(kernel (in_features, out_features), bias or None)``, differentiable in the
        cores: what an ``nnx.Linear`` of the same map holds."""
        kernel = _dense_matrix([core[...] for core in self.cores], self.matrix_shape).T
        return kernel, None if self.bias is None else self.bias[...]

    @property
    def mpo(self) -> MPO:
        """A ``tn.MPO`` of the current cores (``W (out, in)``; float32 for half types)."""
        return mpo_of_cores([core[...] for core in self.cores], self.matrix_shape, jnp)

    @classmethod
    def from_dense(
        cls,
        kernel: Any,
        bias: Any = None,
        *,
        rngs: nnx.Rngs | None = None,
        n_cores: int | None = None,
        in_dims: Any = None,
        out_dims: Any = None,
        max_bond: int | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        method: str = "auto",
    ) -> MPOLinear:
        """An MPOLinear of a Flax kernel ``(in_features, out_features)`` and optional bias.

        ``kernel.T`` goes through ``tn.MPO.from_matrix`` on the host (NumPy), with its
        truncation (``max_bond``, ``rtol``, ``atol``, ``method``); the new layer's
        ``report`` says what was cut. Dims as in the constructor. The parameters take the
        kernel's dtype (half types are decomposed in float32 and cast back). ``rngs`` is
        accepted for symmetry with the constructor; nothing here is random. Not traceable:
        bond dims depend on the values.

        Example:
            >>> from flax import nnx
            >>> from tnkit.jax import MPOLinear
            >>> dense = nnx.Linear(64, 64, rngs=nnx.Rngs(0))
            >>> layer = MPOLinear.from_dense(dense.kernel[...], dense.bias[...],
            ...                              n_cores=3, max_bond=8)
            >>> layer.bond_dims, layer.report.rel_error_bound < 1
            ((8, 8), True)
        """
        matrix = _host_array(kernel, "kernel", 2)
        dtype = jax.dtypes.canonicalize_dtype(np.asarray(kernel).dtype)
        in_features, out_features = matrix.shape
        if bias is not None:
            bias = _host_array(bias, "bias", 1)
            if bias.shape != (out_features,):
                raise ValueError(
                    f"bias: expected shape ({out_features},) for a kernel of shape "
                    f"{matrix.shape}, got {bias.shape}"
                )
        options = {"n_cores": n_cores, "in_dims": in_dims, "out_dims": out_dims}
        rule = {"max_bond": max_bond, "rtol": rtol, "atol": atol, "method": method}
        mpo = decompose_weight(matrix.T, np, **options, **rule)
        # The layer's structure without computing an init, then the decomposed values.
        layer = nnx.eval_shape(
            lambda: cls(
                in_features,
                out_features,
                use_bias=bias is not None,
                in_dims=mpo.in_dims,
                out_dims=mpo.out_dims,
                bond_dims=mpo.bond_dims,
                param_dtype=dtype,
                rngs=nnx.Rngs(0),
            )
        )
        layer.cores = _ParamList([nnx.Param(jnp.asarray(core, dtype)) for core in mpo.cores])
        if bias is not None:
            layer.bias = nnx.Param(jnp.asarray(bias, dtype))
        layer.report = mpo.report
        return layer


# One XLA computation per shape instead of one per small op when called eagerly; inside an
# outer jit/grad they inline. The plan is re-derived from the static shapes (cached).
@functools.partial(jax.jit, static_argnums=3)
def _linear_map(cores: list, x: jax.Array, bias: Any, matrix_shape: tuple) -> jax.Array:
    return linear_map(cores, x, bias=bias, matrix_shape=matrix_shape, xp=jnp)


@functools.partial(jax.jit, static_argnums=1)
def _dense_matrix(cores: list, matrix_shape: tuple) -> jax.Array:
    return dense_matrix(cores, matrix_shape, xp=jnp)


def _initial_cores(key: jax.Array, layout: tuple, matrix_shape: tuple, dtype: Any) -> tuple:
    """Random canonical cores with ``‖W‖_F² = rows`` exactly (lecun_normal's expectation).

    One normal draw from ``key`` for all cores; a concrete draw is canonicalised in NumPy on
    the host (eager XLA would compile every small QR shape, seconds per layout), a traced
    one (``nnx.jit``/``nnx.eval_shape`` init) by the same core code on tracers.
    """
    shapes = mpo_core_shapes(layout)
    sizes = [math.prod(shape) for shape in shapes]
    # The QR sweep runs in float32 for half types.
    work = jnp.float32 if is_half(dtype, jnp) else dtype
    flat = jax.random.normal(key, (sum(sizes),), work)
    if not backend.is_tracer(flat):
        flat = np.asarray(flat)
    offsets = np.cumsum([0, *sizes])
    raw = [
        flat[a:b].reshape(shape)
        for a, b, shape in zip(offsets[:-1], offsets[1:], shapes, strict=True)
    ]
    scaled = rescale_cores(raw, math.sqrt(matrix_shape[0]), matrix_shape=matrix_shape)
    return tuple(jnp.asarray(core, dtype) for core in scaled)


def _host_array(value: Any, name: str, ndim: int) -> np.ndarray:
    """``value`` as a finite NumPy array with ``ndim`` dims."""
    if backend.is_tracer(value):
        raise TypeError(f"{name}: from_dense reads values on the host; call it outside jit")
    array = np.asarray(value)
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {array.shape}")
    if not jnp.issubdtype(array.dtype, jnp.inexact):
        raise TypeError(f"{name}: expected a floating or complex array, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or Inf")
    return array
