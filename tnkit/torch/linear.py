"""MPOLinear: ``nn.Linear`` with its weight stored as MPO cores ``(Dl, d_out, d_in, Dr)``.

Holds parameters and state only; layout, planning, contraction and initial scaling are the
core's (``tnkit.linear_map``), decompositions are ``tnkit.MPO.from_matrix``.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat.torch as torch_xp
import torch
from torch import nn

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

_HALF = (torch.float16, torch.bfloat16)
_STATE_VERSION = 1


class MPOLinear(nn.Module):
    """``y = x @ W.T + b`` with ``W (out_features, in_features)`` an MPO, like ``nn.Linear``.

    The parameters are ``cores`` (an ``nn.ParameterList`` of ``(D_{k-1}, out_k, in_k, D_k)``
    tensors, Σ D_{k-1}·out_k·in_k·D_k entries) and ``bias``. Dims not given come from
    ``tn.factorize_dims(size, n_cores, pad=True)``: a size without a balanced factorisation
    (a prime) is zero-padded, and the padded rows and columns are cropped in ``forward``.
    ``n_cores`` defaults to 4, or to the length of the dims given. Bonds are the full TT
    ranks (an exact, uncompressed layer), capped by ``max_bond``, or ``bond_dims`` exactly.

    The initial weight has exactly the Frobenius norm ``nn.Linear``'s default init has in
    expectation, ``sqrt(out_features / 3)`` (entry variance ``1 / (3·in_features)``): random
    cores, canonicalised, the centre core rescaled. The bias is ``nn.Linear``'s.

    ``forward`` contracts core by core through the input or builds ``W`` and multiplies,
    whichever needs fewer flops for the batch (``plan.order(batch)``, a comparison of ints:
    ``torch.compile`` sees a static branch). The dims and bonds are saved in the state dict
    (extra state), so a compressed checkpoint loads into ``MPOLinear(in_features,
    out_features)``: the cores take the checkpoint's shapes (build optimizers after loading).

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOLinear
        >>> layer = MPOLinear(784, 256, in_dims=(4, 7, 7, 4), out_dims=(4, 4, 4, 4), max_bond=4)
        >>> sum(p.numel() for p in layer.cores), layer.bond_dims
        (1024, (4, 4, 4))
        >>> layer(torch.randn(32, 784)).shape
        torch.Size([32, 256])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        n_cores: int | None = None,
        in_dims: Any = None,
        out_dims: Any = None,
        max_bond: int | None = None,
        bond_dims: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        layout = linear_layout(
            in_features,
            out_features,
            n_cores=n_cores,
            in_dims=in_dims,
            out_dims=out_dims,
            max_bond=max_bond,
            bond_dims=bond_dims,
        )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        factory = {"device": device, "dtype": dtype}
        self.cores = _core_parameters(layout, factory)
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.report: TruncationReport | None = None
        self._set_layout(layout)
        self.reset_parameters()

    # ------------------------------------------------------------------ layout

    def _set_layout(self, layout: tuple) -> None:
        self.out_dims, self.in_dims, self.bond_dims = layout
        self.plan: LinearMapPlan = plan_linear_map(
            *layout, matrix_shape=(self.out_features, self.in_features)
        )

    @property
    def padded(self) -> bool:
        """Whether the dims' products exceed the features (zero padding)."""
        return (math.prod(self.out_dims), math.prod(self.in_dims)) != (
            self.out_features,
            self.in_features,
        )

    def contraction_order(self, batch: int) -> str:
        """``"sweep"`` or ``"dense"``: what ``forward`` does for ``batch`` input rows."""
        return self.plan.order(batch)

    # ------------------------------------------------------------------ init and forward

    def reset_parameters(self) -> None:
        """Random canonical cores with ``‖W‖_F² = out_features / 3`` exactly; bias as
        ``nn.Linear``. Does nothing to meta tensors."""
        cores = list(self.cores)
        if cores[0].is_meta:
            return
        with torch.no_grad():
            dtype = cores[0].dtype
            # The QR sweep runs in float32 for half types (the core's LAPACK dtypes).
            work = torch.float32 if dtype in _HALF else dtype
            raw = [torch.randn(c.shape, dtype=work, device=c.device) for c in cores]
            target = math.sqrt(self.out_features / 3)
            shape = (self.out_features, self.in_features)
            for param, core in zip(
                cores, rescale_cores(raw, target, matrix_shape=shape), strict=True
            ):
                param.copy_(core)
            if self.bias is not None:
                bound = 1 / math.sqrt(self.in_features)
                nn.init.uniform_(self.bias, -bound, bound)
        self.report = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., in_features) -> (..., out_features)``."""
        return linear_map(list(self.cores), x, bias=self.bias, plan=self.plan, xp=torch_xp)

    @property
    def weight(self) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)``, differentiable in the cores."""
        return dense_matrix(list(self.cores), (self.out_features, self.in_features), xp=torch_xp)

    @property
    def mpo(self) -> MPO:
        """A ``tn.MPO`` of the current cores (detached; float32 for half types)."""
        cores = [c.detach() for c in self.cores]
        if cores[0].dtype in _HALF:
            cores = [c.float() for c in cores]
        shape = (self.out_features, self.in_features) if self.padded else None
        return MPO(cores, matrix_shape=shape)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, in_dims={self.in_dims}, out_dims={self.out_dims}, "
            f"bond_dims={self.bond_dims}"
        )

    # ------------------------------------------------------------------ conversions

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        *,
        n_cores: int | None = None,
        in_dims: Any = None,
        out_dims: Any = None,
        max_bond: int | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        method: str = "auto",
    ) -> MPOLinear:
        """An MPOLinear of ``linear``'s weight by ``tn.MPO.from_matrix`` (same truncation).

        The new layer's ``report`` says what was cut. Half-precision weights are decomposed
        in float32 and the cores cast back.

        Example:
            >>> import torch
            >>> from tnkit.torch import MPOLinear
            >>> dense = torch.nn.Linear(64, 64)
            >>> layer = MPOLinear.from_linear(dense, n_cores=3, max_bond=8)
            >>> layer.bond_dims, layer.report.rel_error_bound < 1
            ((8, 8), True)
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear: expected a torch.nn.Linear, got {type(linear).__name__}")
        outs, ins, _ = linear_layout(
            linear.in_features,
            linear.out_features,
            n_cores=n_cores,
            in_dims=in_dims,
            out_dims=out_dims,
        )
        weight = linear.weight.detach()
        dtype = weight.dtype
        mpo = MPO.from_matrix(
            weight.float() if dtype in _HALF else weight,
            outs,
            ins,
            max_bond=max_bond,
            rtol=rtol,
            atol=atol,
            method=method,
            pad=True,
        )
        layer = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            in_dims=ins,
            out_dims=outs,
            bond_dims=mpo.bond_dims,
            device="meta",
            dtype=dtype,
        ).to_empty(device=weight.device)
        with torch.no_grad():
            for param, core in zip(layer.cores, mpo.cores, strict=True):
                param.copy_(core)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        layer.report = mpo.report
        return layer

    def to_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the dense weight (and the bias)."""
        weight = self.weight.detach()
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device="meta",
            dtype=weight.dtype,
        ).to_empty(device=weight.device)
        with torch.no_grad():
            linear.weight.copy_(weight)
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    # ------------------------------------------------------------------ state

    def get_extra_state(self) -> dict:
        """Dims and bonds, saved beside the cores: they are data-dependent."""
        return {
            "version": _STATE_VERSION,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "in_dims": list(self.in_dims),
            "out_dims": list(self.out_dims),
            "bond_dims": list(self.bond_dims),
        }

    def set_extra_state(self, state: Any) -> None:
        """Take a checkpoint's dims and bonds; the cores are re-shaped (values load next)."""
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(f"state: not an MPOLinear extra state (version 1), got {state!r}")
        for name in ("in_features", "out_features"):
            if state[name] != getattr(self, name):
                raise ValueError(
                    f"{name}: the checkpoint has {state[name]}, this layer {getattr(self, name)}"
                )
        layout = linear_layout(
            self.in_features,
            self.out_features,
            in_dims=state["in_dims"],
            out_dims=state["out_dims"],
            bond_dims=state["bond_dims"],
        )
        if layout == (self.out_dims, self.in_dims, self.bond_dims):
            return
        like = self.cores[0]
        self.cores = _core_parameters(layout, {"device": like.device, "dtype": like.dtype})
        self._set_layout(layout)
        self.report = None


def _core_parameters(layout: tuple, factory: dict) -> nn.ParameterList:
    outs, ins, bonds = layout
    edges = (1, *bonds, 1)
    return nn.ParameterList(
        nn.Parameter(torch.empty((edges[k], o, i, edges[k + 1]), **factory))
        for k, (o, i) in enumerate(zip(outs, ins, strict=True))
    )
