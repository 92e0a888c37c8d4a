"""MPOLSTM: ``nn.LSTM`` whose gate weights are MPOs (one per weight matrix, MPO-LSTM).

Holds parameters and wires layers and directions; the gate layout, the cell and the
recurrent contraction order are the core's (``tnkit.layer_maps``), no math of its own.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat.torch as torch_xp
import torch
import torch.nn.functional as F
from torch import nn

from .._adapters import pick_options
from .._checks import check_int
from ..layer_maps import lstm_layout, lstm_recurrence, recurrent_map, recurrent_order
from ..truncation import TruncationReport
from ._common import MPOMatrix, check_module, decompose

__all__ = ["MPOLSTM", "recurrent_order"]

_LAYOUT = ("n_cores", "input_dims", "hidden_dims")


class MPOLSTM(nn.Module):
    """``nn.LSTM`` (gates i, f, g, o; biases ``b_ih`` and ``b_hh``) with MPO gate weights.

    Each ``weight_ih_l{k}[_reverse]`` ``(4·hidden, input)`` and ``weight_hh_l{k}[_reverse]``
    ``(4·hidden, hidden)`` is one ``MPOMatrix`` submodule: the
    four gates share it, the factor 4 folded into the most significant output mode. With
    ``hidden_dims = (h_1..h_N)`` (default ``factorize_dims(hidden, n_cores, pad=True)``)
    the output dims are ``(4·h_1, h_2..h_N)``, as MPO-LSTM's hidden 256 = (8,2,2,8)·4; the
    input dims are ``input_dims`` (default from ``input_size``) in the first layer and
    ``(directions·h_1, h_2..h_N)`` above it. Bonds are full, or capped by ``max_bond``
    (keywords ``n_cores``, ``input_dims``, ``hidden_dims``, ``max_bond``).
    Biases are plain parameters named as ``nn.LSTM``'s.

    Init mirrors ``nn.LSTM``'s ``U(−1/√hidden, 1/√hidden)``: each weight gets exactly the
    expected norm (entry variance ``1/(3·hidden)``), the biases that uniform law.
    ``forward(input, (h0, c0))`` returns ``output, (h_n, c_n)`` as ``nn.LSTM`` does
    (``batch_first``, unbatched input, ``bidirectional``, ``dropout`` between layers);
    ``proj_size`` and ``PackedSequence`` input are not supported. The input projection runs
    on all steps at once; the recurrent one in the cheapest order for the whole sequence
    (``recurrent_order``).

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOLSTM
        >>> lstm = MPOLSTM(64, 256, hidden_dims=(8, 2, 2, 8), max_bond=4)
        >>> lstm.weight_hh_l0.out_dims, lstm.weight_hh_l0.in_dims
        ((32, 2, 2, 8), (8, 2, 2, 8))
        >>> output, (h, c) = lstm(torch.randn(5, 3, 64))
        >>> output.shape, h.shape
        (torch.Size([5, 3, 256]), torch.Size([1, 3, 256]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        device: Any = None,
        dtype: Any = None,
        **layout: Any,
    ) -> None:
        super().__init__()
        self.input_size = check_int(input_size, "input_size", minimum=1)
        self.hidden_size = check_int(hidden_size, "hidden_size", minimum=1)
        self.num_layers = check_int(num_layers, "num_layers", minimum=1)
        if proj_size != 0:
            raise ValueError(f"proj_size: only 0 is supported, got {proj_size!r}")
        if isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: must be a number in [0, 1], got {dropout!r}")
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        self.proj_size = 0
        pick_options(layout, (*_LAYOUT, "max_bond"))
        gates = lstm_layout(
            self.input_size,
            self.hidden_size,
            num_layers=self.num_layers,
            directions=self.num_directions,
            **{name: layout.get(name) for name in _LAYOUT},
        )
        factory = {"device": device, "dtype": dtype}
        options = {"n_cores": gates.n_cores, "max_bond": layout.get("max_bond"), **factory}
        hidden = (self.hidden_size, gates.hidden_dims)
        for layer, inputs in enumerate(gates.inputs):
            for suffix in self._suffixes(layer):
                for name, (cols, in_dims) in (("ih", inputs), ("hh", hidden)):
                    weight = MPOMatrix(
                        4 * self.hidden_size,
                        cols,
                        out_dims=gates.gate_dims,
                        in_dims=in_dims,
                        **options,
                    )
                    setattr(self, f"weight_{name}{suffix}", weight)
                for name in ("ih", "hh"):
                    if self.bias:
                        value = nn.Parameter(torch.empty(4 * self.hidden_size, **factory))
                        setattr(self, f"bias_{name}{suffix}", value)
                    else:
                        self.register_parameter(f"bias_{name}{suffix}", None)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def mpo_weights(self) -> dict[str, MPOMatrix]:
        """The MPO weights by ``nn.LSTM``'s parameter names, in its order."""
        return {
            name: module for name, module in self.named_children() if name.startswith("weight_")
        }

    @property
    def num_params(self) -> int:
        """Entries of the MPO gate weights, all layers and directions, biases aside.

        Per weight this is MPO-LSTM's count (Sun et al. 2020): with bonds ``d_0 = d_N = 1``,
        ``P(d) = Σ_k i_k·j_k·d_{k−1}·d_k + 3·i_1·j_1·d_0·d_1``, the last term the four gates
        folded into the first output mode (``4·i_1``).

        Example:
            >>> from tnkit.torch import MPOLSTM
            >>> dims = (8, 2, 2, 8)
            >>> MPOLSTM(256, 256, input_dims=dims, hidden_dims=dims, max_bond=7).num_params
            5264
        """
        return sum(c.numel() for w in self.mpo_weights().values() for c in w.cores)

    @property
    def report(self) -> dict[str, TruncationReport] | None:
        """``{parameter name: TruncationReport}`` after ``from_lstm``, else None."""
        reports = {name: m.report for name, m in self.mpo_weights().items()}
        return None if any(r is None for r in reports.values()) else reports

    def reset_parameters(self) -> None:
        """``nn.LSTM``'s ``U(±1/√hidden)`` in norm for the MPO weights (exact), in law for
        the biases. Does nothing to meta tensors."""
        bound = 1 / math.sqrt(self.hidden_size)
        for weight in self.mpo_weights().values():
            rows, cols = weight.matrix_shape
            weight._reset_cores(bound * math.sqrt(rows * cols / 3))
        with torch.no_grad():
            for param in self.parameters(recurse=False):
                if not param.is_meta:
                    nn.init.uniform_(param, -bound, bound)

    # ------------------------------------------------------------------ forward

    def forward(self, input: torch.Tensor, hx: Any = None) -> tuple:
        """``input (T, N, input_size)`` (``(N, T, ·)`` if ``batch_first``, or ``(T, ·)``
        unbatched) -> ``output, (h_n, c_n)`` as ``nn.LSTM``."""
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise TypeError("input: PackedSequence is not supported; pass a padded tensor")
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(
                f"input: expected shape (T, N, {self.input_size}) or (T, {self.input_size}), "
                f"got {tuple(input.shape)}"
            )
        batched = input.ndim == 3
        x = input if batched else input[:, None]
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        states = self.num_layers * self.num_directions
        shape = (states, x.shape[1], self.hidden_size)
        if hx is None:
            h0 = c0 = x.new_zeros(shape)
        else:
            h0, c0 = (t if batched else t[:, None] for t in hx)
            for name, t in (("h0", h0), ("c0", c0)):
                if tuple(t.shape) != shape:
                    raise ValueError(f"hx: {name} must have shape {shape}, got {tuple(t.shape)}")
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + direction
                out, h, c = self._run(x, h0[k], c0[k], suffix, reverse=direction == 1)
                outputs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.dropout and self.training and layer + 1 < self.num_layers:
                x = F.dropout(x, self.dropout, training=True)
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)
        if not batched:
            return x[:, 0], (h_n[:, 0], c_n[:, 0])
        return (x.transpose(0, 1) if self.batch_first else x), (h_n, c_n)

    def _run(self, x, h, c, suffix: str, *, reverse: bool) -> tuple:
        """One layer in one direction over the sequence ``x (T, N, ·)``."""
        gates_x = getattr(self, f"weight_ih{suffix}")(x)
        if self.bias:
            gates_x = gates_x + (
                getattr(self, f"bias_ih{suffix}") + getattr(self, f"bias_hh{suffix}")
            )
        weight = getattr(self, f"weight_hh{suffix}")
        cores = list(weight.cores)
        recurrent = recurrent_map(cores, *x.shape[:2], plan=weight.plan, xp=torch_xp)
        return lstm_recurrence(
            gates_x, recurrent, h, c, reverse=reverse, activation=torch.sigmoid, xp=torch_xp
        )

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name in ("batch_first", "bidirectional"):
            if getattr(self, name):
                text += f", {name}=True"
        if not self.bias:
            text += ", bias=False"
        if self.dropout:
            text += f", dropout={self.dropout}"
        return text

    # ------------------------------------------------------------------ conversions

    def _dense_args(self) -> tuple:
        return (
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.bias,
            self.batch_first,
            self.dropout,
            self.bidirectional,
        )

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, **options: Any) -> MPOLSTM:
        """An MPOLSTM of ``lstm``'s weights, each by ``tn.MPO.from_matrix`` with the same
        truncation; ``report`` is a dict of the weights' reports. ``options``: the layout
        (``n_cores``, ``input_dims``, ``hidden_dims``) and the truncation (``max_bond``,
        ``rtol``, ``atol``, ``method``).

        Example:
            >>> import torch
            >>> from tnkit.torch import MPOLSTM
            >>> lstm = MPOLSTM.from_lstm(torch.nn.LSTM(32, 64), max_bond=4)
            >>> sorted(lstm.report), lstm.weight_ih_l0.bond_dims
            (['weight_hh_l0', 'weight_ih_l0'], (4, 4, 4))
        """
        check_module(lstm, nn.LSTM, "lstm")
        if lstm.proj_size:
            raise ValueError(f"lstm: proj_size={lstm.proj_size} is not supported")
        like = lstm.weight_ih_l0
        layer = cls(
            *(lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bias),
            *(lstm.batch_first, lstm.dropout, lstm.bidirectional),
            device="meta",
            dtype=like.dtype,
            **{k: v for k, v in options.items() if k in _LAYOUT},
        ).to_empty(device=like.device)
        rule = {k: v for k, v in options.items() if k not in _LAYOUT}
        for name, weight in layer.mpo_weights().items():
            matrix = getattr(lstm, name)
            weight._load_mpo(decompose(matrix, weight.out_dims, weight.in_dims, **rule))
        with torch.no_grad():
            for name, param in layer.named_parameters(recurse=False):
                param.copy_(getattr(lstm, name))
        return layer

    def to_lstm(self) -> nn.LSTM:
        """A plain ``nn.LSTM`` with the dense weights (and the biases)."""
        like = next(iter(self.mpo_weights().values())).cores[0]
        lstm = nn.LSTM(*self._dense_args(), device="meta", dtype=like.dtype)
        lstm = lstm.to_empty(device=like.device)
        with torch.no_grad():
            for name, weight in self.mpo_weights().items():
                getattr(lstm, name).copy_(weight.matrix)
            for name, param in self.named_parameters(recurse=False):
                getattr(lstm, name).copy_(param)
        return lstm
