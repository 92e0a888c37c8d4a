"""The table of layer kinds: per dense module type, how to recognise, convert and densify it.

One ``LayerKind`` per kind, looked up by name or by module; the model-level functions loop
over the table and never switch on a kind. No traversal and no decompositions of its own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._common import MPOMatrix, convert
from .conv import MPOConv2d
from .embedding import MPOEmbedding
from .linear import MPOLinear
from .lstm import MPOLSTM

__all__ = [
    "LAYER_KINDS",
    "MPO_LAYERS",
    "LayerKind",
    "core_entries",
    "kind_of",
    "kind_of_mpo",
    "num_params",
]

logger = logging.getLogger("tnkit.torch.model")


# ---------------------------------------------------------------------- the usual entries


def _one_weight(module: nn.Module) -> dict[str, nn.Parameter]:
    return {"": module.weight}


def _as_matrix(module: nn.Module) -> dict[str, torch.Tensor]:
    return {"": module.weight.reshape(module.weight.shape[0], -1)}


def _itself(layer: nn.Module) -> dict[str, MPOMatrix]:
    return {"": layer}


def _bias(module: nn.Module) -> list[str]:
    return ["bias"]


def _supported(module: nn.Module) -> str:
    return ""


@dataclass(frozen=True)
class LayerKind:
    """A dense module type that ``compress_model`` converts, and its MPO layer.

    Weights are keyed alike on both sides: ``""`` for a module with one weight, the
    parameter names (``weight_ih_l0``, …) for an LSTM. The defaults fit a module with one
    ``weight (out, …)`` and a ``bias``.

    Attributes:
        name: ``"Linear"``, ``"Conv1D"``, ``"Conv2d"``, ``"Embedding"`` or ``"LSTM"``.
        mpo_type: the MPO layer class.
        recognise: whether a dense module is of this kind (exact types: a subclass may
            change ``forward``).
        skeleton: ``(dense module, **layout)`` -> an MPO layer on the meta device.
        convert: ``(dense module, options)`` -> its MPO layer (the decomposition).
        densify: an MPO layer -> its dense module.
        unsupported: why a dense module cannot be converted (``""`` if it can).
        weights: a dense module's weight parameters, by key.
        matrices: a dense module's weights as matrices ``(out, in)``, by key.
        mpo_weights: an MPO layer's ``MPOMatrix`` weights, by key.
        carried: the names of the parameters kept as they are (the biases), on either side.
        ties: whether modules sharing one weight become MPO layers sharing one ``cores``.
        transposed: whether the weight is stored ``(in, out)`` (the MPO's matrix is its
            transpose, so it cannot be tied to a weight of another orientation).
        keeps_type: whether the MPO layer remembers the dense type (to rebuild it).
    """

    name: str
    mpo_type: type
    recognise: Callable[[nn.Module], bool]
    skeleton: Callable[..., nn.Module]
    convert: Callable[[nn.Module, dict], nn.Module]
    densify: Callable[[nn.Module], nn.Module]
    unsupported: Callable[[nn.Module], str] = _supported
    weights: Callable[[nn.Module], dict[str, nn.Parameter]] = _one_weight
    matrices: Callable[[nn.Module], dict[str, torch.Tensor]] = _as_matrix
    mpo_weights: Callable[[nn.Module], dict[str, MPOMatrix]] = _itself
    carried: Callable[[nn.Module], list[str]] = _bias
    ties: bool = True
    transposed: bool = False
    keeps_type: bool = False

    def holds(self, layer: nn.Module) -> bool:
        """Whether ``layer`` is an MPO layer of this kind (one that remembers a dense type
        stands for the kind that keeps it)."""
        remembers = getattr(layer, "_dense_type", None) is not None
        return isinstance(layer, self.mpo_type) and remembers == self.keeps_type


def _meta(module: nn.Module, kind: LayerKind) -> dict:
    """``device``/``dtype`` of a skeleton: meta, the dense weights' dtype."""
    return {"device": "meta", "dtype": next(iter(kind.matrices(module).values())).dtype}


def _exact(dense_type: type) -> Callable[[nn.Module], bool]:
    return lambda module: type(module) is dense_type


# ---------------------------------------------------------------------- Linear, Conv1D


def _linear_skeleton(module: nn.Module, **layout: Any) -> MPOLinear:
    kind = kind_of(module)
    rows, cols = kind.matrices(module)[""].shape
    bias = module.bias is not None
    return MPOLinear(cols, rows, bias=bias, **_meta(module, kind), **layout)


def _is_conv1d(module: nn.Module) -> bool:
    """Hugging Face's GPT-2 ``Conv1D``: ``y = x @ weight + bias``, ``weight (in, out)``,
    ``nf = out``."""
    if type(module).__name__ != "Conv1D":
        return False
    weight, nf = getattr(module, "weight", None), getattr(module, "nf", None)
    return isinstance(weight, torch.Tensor) and weight.ndim == 2 and weight.shape[1] == nf


def _conv1d_convert(module: nn.Module, options: dict) -> MPOLinear:
    cols, rows = module.weight.shape
    build = functools.partial(MPOLinear, cols, rows, bias=module.bias is not None)
    return convert(build, module.weight.mT, **options)


def _conv1d_densify(layer: MPOLinear) -> nn.Module:
    """The ``Conv1D`` the layer came from, or ``nn.Linear`` where it cannot be rebuilt."""
    dense_type, weight = layer._dense_type, layer.weight.detach().mT
    try:  # Hugging Face's signature: Conv1D(nf, nx)
        dense = dense_type(layer.out_features, layer.in_features)
        fits = tuple(dense.weight.shape) == tuple(weight.shape)
    except (TypeError, AttributeError):
        fits = False
    if not fits:
        logger.warning("densify_model: cannot rebuild a %s; using nn.Linear", dense_type.__name__)
        return layer.to_linear()
    dense = dense.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        dense.weight.copy_(weight)
    return dense


# ---------------------------------------------------------------------- Conv2d, Embedding


def _conv2d_unsupported(module: nn.Conv2d) -> str:
    if module.groups != 1 or module.padding_mode != "zeros":
        return f"groups={module.groups}, padding_mode={module.padding_mode!r} unsupported"
    return ""


def _conv2d_skeleton(module: nn.Conv2d, **layout: Any) -> MPOConv2d:
    geometry = (module.kernel_size, module.stride, module.padding, module.dilation)
    factory = _meta(module, LAYER_KINDS["Conv2d"])
    bias = module.bias is not None
    return MPOConv2d(
        module.in_channels, module.out_channels, *geometry, bias=bias, **factory, **layout
    )


def _embedding_unsupported(module: nn.Embedding) -> str:
    for name in ("max_norm", "scale_grad_by_freq", "sparse"):
        if getattr(module, name):
            return f"{name}={getattr(module, name)!r} unsupported"
    return ""


def _embedding_skeleton(module: nn.Embedding, **layout: Any) -> MPOEmbedding:
    factory = _meta(module, LAYER_KINDS["Embedding"])
    sizes = (module.num_embeddings, module.embedding_dim, module.padding_idx)
    return MPOEmbedding(*sizes, **factory, **layout)


# ---------------------------------------------------------------------- LSTM


def _lstm_weights(module: nn.Module) -> dict[str, nn.Parameter]:
    names = [n for n in module._flat_weights_names if n.startswith("weight_")]
    return {name: getattr(module, name) for name in names}


def _lstm_biases(module: nn.Module) -> list[str]:
    return [n for n, _ in module.named_parameters(recurse=False) if n.startswith("bias_")]


def _lstm_unsupported(module: nn.LSTM) -> str:
    return f"proj_size={module.proj_size} unsupported" if module.proj_size else ""


def _lstm_skeleton(module: nn.LSTM, **layout: Any) -> MPOLSTM:
    m, factory = module, _meta(module, LAYER_KINDS["LSTM"])
    sizes = (m.input_size, m.hidden_size, m.num_layers, m.bias, m.batch_first, m.dropout)
    return MPOLSTM(*sizes, m.bidirectional, **factory, **layout)


# ---------------------------------------------------------------------- the table

LAYER_KINDS: dict[str, LayerKind] = {
    kind.name: kind
    for kind in (
        LayerKind(
            "Linear",
            MPOLinear,
            _exact(nn.Linear),
            _linear_skeleton,
            convert=lambda module, options: MPOLinear.from_linear(module, **options),
            densify=lambda layer: layer.to_linear(),
        ),
        LayerKind(
            "Conv1D",
            MPOLinear,
            _is_conv1d,
            _linear_skeleton,
            convert=_conv1d_convert,
            densify=_conv1d_densify,
            matrices=lambda module: {"": module.weight.mT},
            transposed=True,
            keeps_type=True,
        ),
        LayerKind(
            "Conv2d",
            MPOConv2d,
            _exact(nn.Conv2d),
            _conv2d_skeleton,
            convert=lambda module, options: MPOConv2d.from_conv(module, **options),
            densify=lambda layer: layer.to_conv(),
            unsupported=_conv2d_unsupported,
        ),
        LayerKind(
            "Embedding",
            MPOEmbedding,
            _exact(nn.Embedding),
            _embedding_skeleton,
            convert=lambda module, options: MPOEmbedding.from_embedding(module, **options),
            densify=lambda layer: layer.to_embedding(),
            unsupported=_embedding_unsupported,
            carried=lambda module: [],
        ),
        LayerKind(
            "LSTM",
            MPOLSTM,
            _exact(nn.LSTM),
            _lstm_skeleton,
            convert=lambda module, options: MPOLSTM.from_lstm(module, **options),
            densify=lambda layer: layer.to_lstm(),
            unsupported=_lstm_unsupported,
            weights=_lstm_weights,
            matrices=_lstm_weights,
            mpo_weights=lambda layer: layer.mpo_weights(),
            carried=_lstm_biases,
            ties=False,
        ),
    )
}

MPO_LAYERS = tuple(dict.fromkeys(kind.mpo_type for kind in LAYER_KINDS.values()))


def kind_of(module: nn.Module) -> LayerKind | None:
    """The kind of a dense module, or None if ``compress_model`` does not convert it."""
    return next((kind for kind in LAYER_KINDS.values() if kind.recognise(module)), None)


def kind_of_mpo(layer: nn.Module) -> LayerKind | None:
    """The kind an MPO layer stands for, or None if it is not one."""
    return next((kind for kind in LAYER_KINDS.values() if kind.holds(layer)), None)


def num_params(modules: Iterable[nn.Module]) -> int:
    """Parameters of ``modules``, each tensor counted once."""
    seen = {id(p): p.numel() for m in modules for p in m.parameters()}
    return sum(seen.values())


def core_entries(layer: nn.Module) -> int:
    """The entries of an MPO layer's cores (all its weights)."""
    weights = kind_of_mpo(layer).mpo_weights(layer).values()
    return sum(c.numel() for m in weights for c in m.cores)
