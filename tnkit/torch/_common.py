"""MPOMatrix: one weight matrix ``W (rows, cols)`` held as MPO cores, the base of the layers.

Parameters, layout, plan, initial scaling, decomposition and checkpoint state of one MPO
weight; no layer semantics (bias, convolution, lookup, recurrence) and no math of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat.torch as torch_xp
import torch
from torch import nn

from .. import linear_map as maps
from .._adapters import (
    LAYOUT_OPTIONS,
    RULE_OPTIONS,
    decompose_weight,
    is_padded,
    mpo_core_shapes,
    mpo_of_cores,
    pick_options,
    work_dtype,
)
from ..mpo import MPO
from ..truncation import TruncationReport

_STATE_VERSION = 1


class MPOMatrix(nn.Module):
    """``x -> x @ W.T`` for ``W (rows, cols)`` stored as cores ``(Dl, out_k, in_k, Dr)``.

    Layers subclass it (``MPOLinear``, ``MPOConv2d``, ``MPOEmbedding``) or hold several
    (``MPOLSTM``). ``layout``: ``n_cores``, ``in_dims``, ``out_dims``, ``max_bond``,
    ``bond_dims``, as in [linear_layout][tnkit.linear_map.linear_layout]. The cores are left
    uninitialised (subclasses call ``_reset_cores``).

    Example:
        >>> import torch
        >>> from tnkit.torch._common import MPOMatrix
        >>> m = MPOMatrix(6, 8, n_cores=2, dtype=torch.float64)
        >>> m._reset_cores(norm=2.0)
        >>> x = torch.ones(3, 8, dtype=torch.float64)
        >>> round(float(torch.linalg.norm(m.matrix.detach())), 12), m(x).shape
        (2.0, torch.Size([3, 6]))
    """

    def __init__(
        self, rows: int, cols: int, *, device: Any = None, dtype: Any = None, **layout: Any
    ) -> None:
        super().__init__()
        layout = maps.linear_layout(cols, rows, **pick_options(layout, LAYOUT_OPTIONS))
        self.matrix_shape = (int(rows), int(cols))
        self.cores = core_parameters(layout, {"device": device, "dtype": dtype})
        self.report: TruncationReport | None = None
        self._set_layout(layout)

    # ------------------------------------------------------------------ layout

    def _set_layout(self, layout: tuple) -> None:
        self.out_dims, self.in_dims, self.bond_dims = layout
        self.plan: maps.LinearMapPlan = maps.plan_linear_map(
            *layout, matrix_shape=self.matrix_shape
        )

    def _reshape_cores(self, layout: tuple) -> None:
        """New (uninitialised) core parameters for ``layout``; kept if it is the current one."""
        if layout == (self.out_dims, self.in_dims, self.bond_dims):
            return
        like = self.cores[0]
        self.cores = core_parameters(layout, {"device": like.device, "dtype": like.dtype})
        self._set_layout(layout)
        self.report = None

    @property
    def padded(self) -> bool:
        """Whether the dims' products exceed the matrix (zero padding)."""
        return is_padded((self.out_dims, self.in_dims), self.matrix_shape)

    def contraction_order(self, batch: int) -> str:
        """``"sweep"``, ``"dense"`` or merged runs such as ``"2+2"``: the cheapest order of
        ``x @ W.T`` for ``batch`` rows."""
        return self.plan.order(batch)

    # ------------------------------------------------------------------ MPOP (Liu et al. 2021)

    @property
    def central_index(self) -> int:
        """The site of the core with the most entries (MPOP's central tensor; not a
        canonical ``centre``); ties go to the core nearest the middle, then to the left one."""
        middle = (len(self.cores) - 1) / 2
        sizes = [(-c.numel(), abs(k - middle), k) for k, c in enumerate(self.cores)]
        return min(sizes)[2]

    @property
    def central_tensor(self) -> nn.Parameter:
        """``cores[central_index]``: the core holding most of the parameters."""
        return self.cores[self.central_index]

    @property
    def auxiliary_tensors(self) -> tuple[nn.Parameter, ...]:
        """The other cores, in order (MPOP's auxiliary tensors)."""
        central = self.central_index
        return tuple(c for k, c in enumerate(self.cores) if k != central)

    # ------------------------------------------------------------------ values

    def _reset_cores(self, norm: float) -> None:
        """Random canonical cores with ``‖W‖_F == norm`` exactly (nothing for meta tensors)."""
        cores = list(self.cores)
        if cores[0].is_meta:
            return
        with torch.no_grad():
            work = work_dtype(cores[0].dtype, torch_xp)
            raw = [torch.randn(c.shape, dtype=work, device=c.device) for c in cores]
            scaled = maps.rescale_cores(raw, norm, matrix_shape=self.matrix_shape)
            for param, core in zip(cores, scaled, strict=True):
                param.copy_(core)
        self.report = None

    def _add_bias(self, bias: bool, factory: dict) -> None:
        """A ``bias (rows,)`` parameter, or ``None`` registered under that name."""
        if bias:
            self.bias = nn.Parameter(torch.empty(self.matrix_shape[0], **factory))
        else:
            self.register_parameter("bias", None)

    def _reset_like_kaiming(self) -> None:
        """``nn.Linear``'s and ``nn.Conv2d``'s default init, in norm: entry variance
        ``1/(3·cols)`` (``‖W‖_F² = rows/3`` exactly), bias ``U(±1/√cols)``."""
        if self.cores[0].is_meta:
            return
        rows, cols = self.matrix_shape
        self._reset_cores(math.sqrt(rows / 3))
        if getattr(self, "bias", None) is not None:
            bound = 1 / math.sqrt(cols)
            with torch.no_grad():
                nn.init.uniform_(self.bias, -bound, bound)

    def _load_mpo(self, mpo: MPO) -> None:
        """Take ``mpo``'s layout, values and report (from a decomposition)."""
        self._reshape_cores((mpo.out_dims, mpo.in_dims, mpo.bond_dims))
        with torch.no_grad():
            for param, core in zip(self.cores, mpo._folded_cores(), strict=True):
                param.copy_(core)
        self.report = mpo.report

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., cols) -> (..., rows)``, no bias."""
        return maps.linear_map(list(self.cores), x, plan=self.plan, xp=torch_xp)

    @property
    def matrix(self) -> torch.Tensor:
        """The dense matrix ``(rows, cols)``, differentiable in the cores."""
        return maps.dense_matrix(list(self.cores), plan=self.plan, xp=torch_xp)

    @property
    def mpo(self) -> MPO:
        """A ``tn.MPO`` of the current cores (detached; float32 for half types)."""
        return mpo_of_cores([c.detach() for c in self.cores], self.matrix_shape, torch_xp)

    def _layout_repr(self) -> str:
        return f"in_dims={self.in_dims}, out_dims={self.out_dims}, bond_dims={self.bond_dims}"

    def extra_repr(self) -> str:
        return f"rows={self.matrix_shape[0]}, cols={self.matrix_shape[1]}, {self._layout_repr()}"

    # ------------------------------------------------------------------ state

    def _state_sizes(self) -> dict:
        """The sizes a checkpoint must match (subclasses name theirs)."""
        return {"rows": self.matrix_shape[0], "cols": self.matrix_shape[1]}

    def get_extra_state(self) -> dict:
        """Dims and bonds, saved beside the cores: they are data-dependent."""
        return {
            "version": _STATE_VERSION,
            **self._state_sizes(),
            "in_dims": list(self.in_dims),
            "out_dims": list(self.out_dims),
            "bond_dims": list(self.bond_dims),
        }

    def set_extra_state(self, state: Any) -> None:
        """Take a checkpoint's dims and bonds; the cores are re-shaped (values load next)."""
        name = type(self).__name__
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(f"state: not an {name} extra state (version 1), got {state!r}")
        for key, value in self._state_sizes().items():
            if state.get(key) != value:
                raise ValueError(f"{key}: the checkpoint has {state.get(key)}, this layer {value}")
        rows, cols = self.matrix_shape
        layout = maps.linear_layout(
            cols,
            rows,
            in_dims=state["in_dims"],
            out_dims=state["out_dims"],
            bond_dims=state["bond_dims"],
        )
        self._reshape_cores(layout)


def decompose(matrix: torch.Tensor, out_dims: Any, in_dims: Any, **rule: Any) -> MPO:
    """``tn.MPO.from_matrix`` of a module's weight (detached; half types in float32);
    ``rule``: ``max_bond``, ``rtol``, ``atol``, ``method``."""
    rule = pick_options(rule, RULE_OPTIONS)
    return decompose_weight(matrix.detach(), torch_xp, out_dims=out_dims, in_dims=in_dims, **rule)


def convert(
    build: Callable, matrix: torch.Tensor, bias: Any = None, *, like: Any = None, **options: Any
) -> Any:
    """The ``from_*`` conversions: ``matrix`` decomposed, then ``build(in_dims=, out_dims=,
    device=, dtype=)`` on meta, moved to ``like``'s device (default ``matrix``'s) with the
    MPO's cores and a copy of ``bias``. ``options``: ``n_cores``, ``in_dims``, ``out_dims``
    (the layout) and ``max_bond``, ``rtol``, ``atol``, ``method`` (the truncation)."""
    like = matrix if like is None else like
    mpo = decompose_weight(matrix.detach(), torch_xp, **options)
    layer = build(in_dims=mpo.in_dims, out_dims=mpo.out_dims, device="meta", dtype=like.dtype)
    layer = layer.to_empty(device=like.device)
    layer._load_mpo(mpo)
    if bias is not None:
        with torch.no_grad():
            layer.bias.copy_(bias)
    return layer


def dense_module(build: Callable, weight: torch.Tensor, bias: Any = None) -> nn.Module:
    """A plain torch module ``build(device=, dtype=)`` holding ``weight`` (and ``bias``)."""
    weight = weight.detach()
    module = build(device="meta", dtype=weight.dtype).to_empty(device=weight.device)
    with torch.no_grad():
        module.weight.copy_(weight)
        if bias is not None:
            module.bias.copy_(bias)
    return module


def check_module(module: Any, kind: type, name: str) -> None:
    if not isinstance(module, kind):
        raise TypeError(f"{name}: expected a torch.nn.{kind.__name__}, got {type(module).__name__}")


def core_parameters(layout: tuple, factory: dict) -> nn.ParameterList:
    """Uninitialised core parameters ``(D_{k-1}, out_k, in_k, D_k)`` of ``layout``."""
    return nn.ParameterList(
        nn.Parameter(torch.empty(shape, **factory)) for shape in mpo_core_shapes(layout)
    )
