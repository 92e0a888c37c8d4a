"""MPOConv2d: ``nn.Conv2d`` whose kernel, as the matrix ``(out, in·kh·kw)``, is an MPO.

Holds parameters and picks between two forward passes by FLOP count; the contraction and
the planning are the core's (``tnkit.linear_map``), the cores' bookkeeping ``MPOMatrix``'s.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import array_api_compat.torch as torch_xp
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int
from ..layer_maps import cheapest_order
from ..linear_map import linear_map
from ._common import MPOMatrix, check_module, convert, dense_module

# im2col copies the input kh·kw times and the sweep's matmuls are small and memory-bound:
# on a 2-core CPU they ran 4-12x slower per flop than F.conv2d (docs/torch.md, "MPOConv2d").
UNFOLD_WEIGHT = 4


class MPOConv2d(MPOMatrix):
    """``nn.Conv2d`` with the kernel ``(out, in, kh, kw)`` stored as an MPO (MPO-Net).

    The MPO is that of the kernel reshaped to the matrix ``(out_channels,
    in_channels·kh·kw)`` (columns in C order over ``(in, kh, kw)``): ``out_dims`` factor
    ``out_channels`` and ``in_dims`` factor ``in_channels·kh·kw``, with the defaults,
    padding and bonds of [MPOLinear][tnkit.torch.MPOLinear] (keywords ``n_cores``,
    ``in_dims``, ``out_dims``, ``max_bond``, ``bond_dims``). Only ``groups=1`` and
    ``padding_mode="zeros"`` are supported. The initial kernel has exactly the norm that
    ``nn.Conv2d``'s default init has in expectation (entry variance ``1/(3·fan_in)``); the
    bias is ``nn.Conv2d``'s.

    ``forward`` either builds the kernel and calls ``F.conv2d`` (``"dense"``) or unfolds the
    input (im2col) and contracts the MPO through the ``N·H_out·W_out`` patch rows, whichever
    needs fewer flops, the unfolded path's counted 4 times (``UNFOLD_WEIGHT``, measured):
    ``contraction_order(N·H_out·W_out)`` says which.

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOConv2d
        >>> conv = MPOConv2d(16, 32, 3, padding=1, max_bond=4)
        >>> conv.out_dims, conv.in_dims, conv.bond_dims
        ((2, 2, 2, 4), (3, 3, 4, 4), (4, 4, 4))
        >>> conv(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        device: Any = None,
        dtype: Any = None,
        **layout: Any,
    ) -> None:
        if groups != 1:
            raise ValueError(f"groups: only groups=1 is supported, got {groups!r}")
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode: only 'zeros' is supported, got {padding_mode!r}")
        in_channels = check_int(in_channels, "in_channels", minimum=1)
        out_channels = check_int(out_channels, "out_channels", minimum=1)
        # nn.Conv2d normalises and checks kernel, stride, padding and dilation: a meta twin.
        twin = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, device="meta"
        )
        super().__init__(
            out_channels,
            in_channels * math.prod(twin.kernel_size),
            device=device,
            dtype=dtype,
            **layout,
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = twin.kernel_size, twin.stride
        self.padding, self.dilation = twin.padding, twin.dilation
        self.groups, self.padding_mode = 1, "zeros"
        self._add_bias(bias, {"device": device, "dtype": dtype})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random canonical cores with ``‖W‖_F² = out_channels / 3`` exactly (entry
        variance ``1/(3·fan_in)``, as ``nn.Conv2d``); bias as ``nn.Conv2d``."""
        self._reset_like_kaiming()

    # ------------------------------------------------------------------ forward

    def _pads(self) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` zero padding (``"same"`` may be asymmetric)."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            pads = []
            for d, k in zip(self.dilation, self.kernel_size, strict=True):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return tuple(pads)
        (ph, pw) = self.padding
        return (ph, ph, pw, pw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (N, C_in, H, W)`` or ``(C_in, H, W)`` -> ``(N, C_out, H_out, W_out)``."""
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(
                f"x: expected shape (N, {self.in_channels}, H, W) or ({self.in_channels}, H, "
                f"W), got {tuple(x.shape)}"
            )
        batched = x if x.ndim == 4 else x[None]
        top, bottom, left, right = self._pads()
        sizes = []
        for size, pad, d, k, s in zip(
            batched.shape[2:],
            (top + bottom, left + right),
            self.dilation,
            self.kernel_size,
            self.stride,
            strict=True,
        ):
            sizes.append((size + pad - d * (k - 1) - 1) // s + 1)
        rows = batched.shape[0] * sizes[0] * sizes[1]
        order = self.contraction_order(rows) if min(sizes) > 0 else "dense"
        if order == "dense":
            y = F.conv2d(batched, self.weight, self.bias, self.stride, self.padding, self.dilation)
        else:
            if (top, left) != (bottom, right):
                batched = F.pad(batched, (left, right, top, bottom))
                top = left = 0
            patches = F.unfold(batched, self.kernel_size, self.dilation, (top, left), self.stride)
            y = linear_map(
                list(self.cores),
                patches.transpose(1, 2),
                bias=self.bias,
                order=order,
                plan=self.plan,
                xp=torch_xp,
            )
            y = y.transpose(1, 2).reshape(batched.shape[0], self.out_channels, *sizes)
        return y if x.ndim == 4 else y[0]

    def contraction_order(self, batch: int) -> str:
        """What ``forward`` does for ``batch = N·H_out·W_out`` patch rows: ``"dense"``
        (build the kernel, ``F.conv2d``) or the cheapest MPO order through the unfolded
        input, whose flops count ``UNFOLD_WEIGHT`` times (measured, docs/torch.md)."""
        return cheapest_order(self.plan, batch, weight=UNFOLD_WEIGHT)

    @property
    def weight(self) -> torch.Tensor:
        """The dense kernel ``(out, in, kh, kw)``, differentiable in the cores."""
        return self.matrix.reshape(self.out_channels, self.in_channels, *self.kernel_size)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.bias is not None}, {self._layout_repr()}"
        )

    # ------------------------------------------------------------------ conversions

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **options: Any) -> MPOConv2d:
        """An MPOConv2d of ``conv``'s kernel by ``tn.MPO.from_matrix`` (same truncation).

        ``options`` as [MPOLinear.from_linear][tnkit.torch.MPOLinear.from_linear]'s:
        ``n_cores``, ``in_dims``, ``out_dims``, ``max_bond``, ``rtol``, ``atol``, ``method``.
        The new layer's ``report`` says what was cut; half-precision kernels are decomposed
        in float32 and the cores cast back.

        Example:
            >>> import torch
            >>> from tnkit.torch import MPOConv2d
            >>> conv = torch.nn.Conv2d(16, 32, 3)
            >>> layer = MPOConv2d.from_conv(conv, max_bond=8)
            >>> layer.bond_dims, layer.report.params_after < conv.weight.numel()
            ((6, 8, 8), True)
        """
        check_module(conv, nn.Conv2d, "conv")
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError(
                f"conv: only groups=1 and padding_mode='zeros' are supported, got "
                f"groups={conv.groups}, padding_mode={conv.padding_mode!r}"
            )
        build = functools.partial(
            cls,
            conv.in_channels,
            conv.out_channels,
            *(conv.kernel_size, conv.stride, conv.padding, conv.dilation),
            bias=conv.bias is not None,
        )
        matrix = conv.weight.reshape(conv.out_channels, -1)
        return convert(build, matrix, conv.bias, **options)

    def to_conv(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` with the dense kernel (and the bias)."""
        build = functools.partial(
            nn.Conv2d,
            self.in_channels,
            self.out_channels,
            *(self.kernel_size, self.stride, self.padding, self.dilation),
            bias=self.bias is not None,
        )
        return dense_module(build, self.weight, self.bias)

    def _state_sizes(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
        }
