"""TaylorLayer: a polynomial map ``y = Σ_n T_n(x, …, x)`` with each ``T_n`` a tensor train.

Holds the coefficient trains; the contraction, layout and init scales are the core's
(``tnkit.layer_maps``). No activation functions, and no ``in^n`` tensor is ever built.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat.torch as torch_xp
import torch
from torch import nn

from ..layer_maps import (
    taylor_bond_dims,
    taylor_core_shapes,
    taylor_init_stds,
    taylor_map,
    taylor_num_parameters,
    taylor_term,
)

__all__ = ["TaylorLayer", "taylor_bond_dims", "taylor_num_parameters"]


class TaylorLayer(nn.Module):
    """``y = T_0 + Σ_{n=1}^{order} T_n(x, …, x)``: a polynomial of degree ``order`` in ``x``.

    ``T_0`` is the bias ``(out_features,)``, ``T_1`` a linear map, and each ``T_n`` a tensor
    with ``n`` input legs and one output leg stored as a train of ``n`` cores
    ``(D_{k−1}, in_features, D_k)``, ``D_0 = 1``; the last core carries the output leg,
    ``D_n = out_features``. Inner bonds are the full ranks capped at ``max_bond``
    (``bond_dims(n)``). ``terms[n − 1]`` holds ``T_n``'s cores.

    ``forward`` contracts ``x`` into the train from the left: ``v ← (v · core)·x`` summed
    over the input leg, ``O(batch·n·in·D²)`` per order instead of ``in^n``. Parameters:
    ``out + Σ_n Σ_k D_{k−1}·in·D_k`` (``num_parameters``).

    Init: Gaussian cores, ``Var = 1/(in·D_k)`` for each inner core and ``1/(3·order·in)``
    for each last core, so that for inputs with unit-variance entries every order adds
    ``1/(3·order)`` to the output's variance in expectation over the cores: ``1/3`` in all
    (``nn.Linear``'s), plus the bias, drawn as ``nn.Linear`` draws it.

    Example:
        >>> import torch
        >>> from tnkit.torch import TaylorLayer
        >>> layer = TaylorLayer(64, 10, order=2, max_bond=4)
        >>> layer.bond_dims(2), layer.num_parameters
        ((4,), 3466)
        >>> layer(torch.randn(8, 64)).shape
        torch.Size([8, 10])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        order: int,
        max_bond: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("in_features", in_features, 1),
            ("out_features", out_features, 1),
            ("order", order, 0),
            ("max_bond", max_bond, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if order == 0 and not bias:
            raise ValueError("order: 0 with bias=False is the zero map")
        self.in_features, self.out_features = in_features, out_features
        self.order, self.max_bond = order, max_bond
        factory = {"device": device, "dtype": dtype}
        self.terms = nn.ModuleList(
            nn.ParameterList(nn.Parameter(torch.empty(shape, **factory)) for shape in shapes)
            for shapes in taylor_core_shapes(in_features, out_features, order, max_bond)
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def bond_dims(self, order: int) -> tuple[int, ...]:
        """The ``order − 1`` inner bonds of ``T_order``'s train."""
        return taylor_bond_dims(self.in_features, self.out_features, order, self.max_bond)

    @property
    def num_parameters(self) -> int:
        """``out + Σ_{n=1}^{order} Σ_{k=1}^{n} D_{k−1}·in·D_k`` (``D_0 = 1``, ``D_n = out``)."""
        return taylor_num_parameters(
            self.in_features,
            self.out_features,
            self.order,
            self.max_bond,
            bias=self.bias is not None,
        )

    def reset_parameters(self) -> None:
        """Gaussian cores with each order adding ``1/(3·order)`` to the output variance for
        unit-variance inputs; bias as ``nn.Linear``. Nothing for meta tensors."""
        stds = taylor_init_stds(self.in_features, self.out_features, self.order, self.max_bond)
        with torch.no_grad():
            for cores, term_stds in zip(self.terms, stds, strict=True):
                for core, std in zip(cores, term_stds, strict=True):
                    if core.is_meta:
                        return
                    nn.init.normal_(core, std=std)
            if self.bias is not None and not self.bias.is_meta:
                bound = 1 / math.sqrt(self.in_features)
                nn.init.uniform_(self.bias, -bound, bound)

    def term(self, x: torch.Tensor, order: int) -> torch.Tensor:
        """``T_order(x, …, x)``: ``x (batch, in) -> (batch, out)``, contracted left to right."""
        return taylor_term(list(self.terms[order - 1]), x, xp=torch_xp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., in_features) -> (..., out_features)``."""
        terms = [list(cores) for cores in self.terms]
        features = (self.in_features, self.out_features)
        return taylor_map(terms, x, self.bias, features=features, xp=torch_xp)

    def extra_repr(self) -> str:
        bonds = [self.bond_dims(n) for n in range(2, self.order + 1)]
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"order={self.order}, max_bond={self.max_bond}, bias={self.bias is not None}, "
            f"bond_dims={bonds}"
        )
