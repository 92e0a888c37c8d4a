"""MPOLinear: ``nn.Linear`` with its weight stored as MPO cores ``(Dl, d_out, d_in, Dr)``.

Holds parameters and state only; layout, planning, contraction and initial scaling are the
core's (``tnkit.linear_map``), the data-aware fit is ``tnkit.calibration``'s, the cores'
bookkeeping is ``MPOMatrix``'s.
"""

from __future__ import annotations

import functools
from typing import Any

import array_api_compat.torch as torch_xp
import torch
from torch import nn

from .._adapters import is_half
from ..calibration import CalibrationReport, calibrated_mpo, input_gram
from ..linear_map import linear_map
from ._common import MPOMatrix, check_module, convert, dense_module

__all__ = ["MPOLinear", "activation_gram", "calibrate_linear"]


class MPOLinear(MPOMatrix):
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
        super().__init__(
            out_features,
            in_features,
            n_cores=n_cores,
            in_dims=in_dims,
            out_dims=out_dims,
            max_bond=max_bond,
            bond_dims=bond_dims,
            device=device,
            dtype=dtype,
        )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self._add_bias(bias, {"device": device, "dtype": dtype})
        self.calibration: CalibrationReport | None = None
        self.reset_parameters()

    # ------------------------------------------------------------------ init and forward

    def reset_parameters(self) -> None:
        """Random canonical cores with ``‖W‖_F² = out_features / 3`` exactly; bias as
        ``nn.Linear``. Does nothing to meta tensors."""
        self._reset_like_kaiming()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., in_features) -> (..., out_features)``."""
        return linear_map(list(self.cores), x, bias=self.bias, plan=self.plan, xp=torch_xp)

    @property
    def weight(self) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)``, differentiable in the cores."""
        return self.matrix

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, {self._layout_repr()}"
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
        inputs: torch.Tensor | None = None,
    ) -> MPOLinear:
        """An MPOLinear of ``linear``'s weight by ``tn.MPO.from_matrix`` (same truncation).

        The new layer's ``report`` says what was cut. Half-precision weights are decomposed
        in float32 and the cores cast back.

        ``inputs``: activations ``X (n, in_features)`` (or ``(..., in_features)``) of the
        layer on calibration data. The cores then minimise the output error
        ‖(W − W̃)Xᵀ‖_F instead of ‖W − W̃‖_F (``tn.calibration.calibrated_mpo``: plain
        TT-SVD, Kronecker-whitened TT-SVD and ALS sweeps, the best kept, never worse than
        plain on ``X``); ``layer.calibration`` says which and the output errors, and
        ``report``'s bound is then the measured weight error. Only ``XᵀX`` is used.

        Example:
            >>> import torch
            >>> from tnkit.torch import MPOLinear
            >>> dense = torch.nn.Linear(64, 64)
            >>> layer = MPOLinear.from_linear(dense, n_cores=3, max_bond=8)
            >>> layer.bond_dims, layer.report.rel_error_bound < 1
            ((8, 8), True)
        """
        check_module(linear, nn.Linear, "linear")
        gram = None if inputs is None else activation_gram(inputs, linear.weight, "inputs")
        build = functools.partial(
            cls, linear.in_features, linear.out_features, bias=linear.bias is not None
        )
        layout = {"n_cores": n_cores, "in_dims": in_dims, "out_dims": out_dims}
        rule = {"max_bond": max_bond, "rtol": rtol, "atol": atol, "method": method}
        layer = convert(build, linear.weight, linear.bias, **layout, **rule)
        if gram is not None:
            calibrate_linear(layer, linear.weight, gram, **rule)
        return layer

    def to_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the dense weight (and the bias)."""
        build = functools.partial(
            nn.Linear, self.in_features, self.out_features, bias=self.bias is not None
        )
        return dense_module(build, self.weight, self.bias)

    # ------------------------------------------------------------------ state

    def _state_sizes(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features}


# ---------------------------------------------------------------------- data-aware fit


def activation_gram(inputs: Any, weight: torch.Tensor, name: str) -> torch.Tensor:
    """``XᵀX`` (float64, on ``weight``'s device) of activations ``(..., in_features)`` for
    a weight ``(out, in_features)``; errors name ``name``.

    Example:
        >>> import torch
        >>> activation_gram(torch.ones(2, 5, 3), torch.zeros(4, 3), "inputs").shape
        torch.Size([3, 3])
    """
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of activations, got {type(inputs)}")
    in_features = int(weight.shape[-1])
    if inputs.ndim < 2 or inputs.shape[-1] != in_features:
        raise ValueError(
            f"{name}: expected activations of shape (n, {in_features}), got {tuple(inputs.shape)}"
        )
    rows = inputs.detach().reshape(-1, in_features).to(weight.device)
    return input_gram(rows, in_features, name=name)


def calibrate_linear(
    layer: MPOLinear,
    weight: torch.Tensor,
    gram: torch.Tensor,
    *,
    held_out: torch.Tensor | None = None,
    max_bond: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    method: str = "auto",
) -> MPOLinear:
    """Refit ``layer`` (an MPO of ``weight (out, in)``, its layout kept) in place to the
    calibration Gram matrix ``gram = XᵀX`` by ``tn.calibration.calibrated_mpo``;
    ``held_out``: the Gram matrix of held-out rows, measured only. Sets ``layer.report``
    and ``layer.calibration``; returns ``layer``.

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOLinear
        >>> dense = torch.nn.Linear(16, 16)
        >>> layer = MPOLinear.from_linear(dense, n_cores=2, max_bond=2)
        >>> X = torch.randn(64, 16) * torch.logspace(0, -2, 16)
        >>> _ = calibrate_linear(layer, dense.weight, activation_gram(X, dense.weight, "X"))
        >>> layer.calibration.method in ("plain", "whitened", "als")
        True
    """
    matrix = weight.detach()
    if is_half(matrix.dtype, torch_xp):
        matrix = matrix.float()
    rule = {"max_bond": max_bond, "rtol": rtol, "atol": atol, "method": method}
    mpo, report = calibrated_mpo(
        matrix, gram, layer.out_dims, layer.in_dims, held_out=held_out, **rule
    )
    layer._load_mpo(mpo)
    layer.report = report.truncation
    layer.calibration = report
    return layer
