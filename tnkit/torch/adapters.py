"""MPO adapters, PEFT-style: a trainable ``ΔW`` held as MPO cores beside frozen linear layers.

Edits models in place, as PEFT's ``inject_adapter_in_model`` does; no math of its own: ``ΔW``
and ``x @ ΔW.T`` are the core's (``tnkit.linear_map``), the file's bytes ``tnkit.codec``'s.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import array_api_compat.torch as torch_xp
import numpy as np
import torch
from torch import nn

from .. import codec
from .._checks import check_int
from .._version import __version__
from ..linear_map import dense_matrix
from ._common import MPOMatrix

__all__ = [
    "MPOAdapter",
    "adapter_parameters",
    "adapters",
    "add_adapters",
    "fold",
    "load_adapters",
    "merge_adapters",
    "parameter_counts",
    "save_adapters",
    "unmerge_adapters",
]

ATTRIBUTE = "adapter"  # the adapter's name under its target: ``fc.adapter.cores.0``
FORMAT = "tnkit-adapters"
FORMAT_VERSION = "1"
_CODES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
}
_LAYOUT_KEYS = ("in_features", "out_features", "in_dims", "out_dims", "bond_dims", "scaling")


class MPOAdapter(MPOMatrix):
    """``ΔW (out_features, in_features) = scaling ·`` an MPO, zero when created.

    The layout is ``MPOLinear``'s (dims from ``tn.factorize_dims(size, n_cores, pad=True)``,
    bonds the full TT ranks capped by ``max_bond``). At creation the cores are random and
    canonical about ``zero_core = n_cores // 2`` (the canonical centre: the cores left of it
    left-orthonormal, those right of it right-orthonormal), and that centre core is zero, so
    ``ΔW = 0``. This is LoRA's ``B = 0``: at the first step only the zero core has a gradient,
    the orthogonal projection of ``∂L/∂ΔW`` onto the other cores' isometries; after one step
    it is non-zero and every core gets a gradient. ``forward(x) = x @ ΔW.T``; ``merged`` says
    whether ``ΔW`` has been folded into the target's weight (then the target skips it).
    The layout is not saved in state dicts (they hold tensors only, as PEFT's and safetensors
    do): it follows from the options, and ``save_adapters`` writes it in the file's metadata.

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOAdapter
        >>> adapter = MPOAdapter(64, 32, n_cores=3, max_bond=4)
        >>> adapter.zero_core, adapter.bond_dims, float(adapter.delta_weight().abs().max())
        (1, (4, 4), 0.0)
    """

    # The layout travels as options and file metadata, not as a dict in the state dict.
    get_extra_state = nn.Module.get_extra_state
    set_extra_state = nn.Module.set_extra_state

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        n_cores: int = 4,
        max_bond: int | None = 8,
        scaling: float = 1.0,
        in_dims: Any = None,
        out_dims: Any = None,
        bond_dims: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        layout = {"in_dims": in_dims, "out_dims": out_dims}
        layout.update({"bond_dims": bond_dims} if bond_dims is not None else {"max_bond": max_bond})
        super().__init__(
            out_features, in_features, n_cores=n_cores, device=device, dtype=dtype, **layout
        )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.scaling = _check_scaling(scaling, "scaling")
        self.merged = False
        self.reset_parameters()

    @property
    def zero_core(self) -> int:
        """The core that is zero at creation: the canonical centre, ``n_cores // 2``."""
        return len(self.cores) // 2

    def reset_parameters(self) -> None:
        """Random canonical cores, the centre one zero: ``ΔW = 0``."""
        self._reset_cores(1.0)  # isometries around the centre; its norm is discarded
        with torch.no_grad():
            self.cores[self.zero_core].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., in_features) -> scaling · x @ ΔW.T (..., out_features)``."""
        y = super().forward(x)
        return y if self.scaling == 1.0 else y * self.scaling

    def delta_weight(self, dtype: Any = None) -> torch.Tensor:
        """``ΔW`` detached, in ``dtype`` (default the cores'); built in ``dtype`` or float64."""
        cores = [c.detach() for c in self.cores]
        work = dtype or cores[0].dtype
        matrix = dense_matrix([c.to(work) for c in cores], plan=self.plan, xp=torch_xp)
        return matrix * self.scaling

    def layout(self) -> dict[str, Any]:
        """What rebuilds this adapter: features, dims, bonds and scaling (JSON-ready)."""
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "in_dims": list(self.in_dims),
            "out_dims": list(self.out_dims),
            "bond_dims": list(self.bond_dims),
            "scaling": self.scaling,
        }

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"{self._layout_repr()}, scaling={self.scaling}, merged={self.merged}"
        )


# ---------------------------------------------------------------------- adding


def add_adapters(
    model: nn.Module,
    target_modules: str | Iterable[str],
    *,
    max_bond: int = 8,
    n_cores: int = 4,
    alpha: float | None = None,
) -> nn.Module:
    """Add an MPO adapter beside each target ``nn.Linear`` and freeze every other parameter.

    Changes ``model`` in place and returns it, as PEFT's ``inject_adapter_in_model`` does: the
    model keeps its type and its parameter names, and each target gains a submodule
    ``adapter`` (an [MPOAdapter][tnkit.torch.MPOAdapter], named ``<target>.adapter.cores.<k>``)
    that a forward hook adds to the layer's output: ``y = x @ W.T + b + x @ ΔW.T``.

    ``target_modules`` is matched as PEFT matches it: a list of names, each matching a
    module's qualified name exactly or as a dotted suffix (``"fc1"`` matches ``"block.fc1"``);
    a string is a regular expression the whole name must match; ``"all-linear"`` takes every
    ``nn.Linear``. Every list entry must match something, and every matched module must be
    an ``nn.Linear``. ``ΔW`` starts at zero, so the model's output is unchanged, and all the
    model's parameters except the adapters' get ``requires_grad=False``. ``alpha`` scales
    ``ΔW`` by ``alpha / max_bond`` as LoRA's ``lora_alpha / r`` (default: scaling 1).

    Example:
        >>> import torch
        >>> from tnkit.torch import add_adapters, parameter_counts
        >>> model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
        ...                             torch.nn.Linear(64, 10))
        >>> x = torch.randn(5, 64)
        >>> before = model(x)
        >>> model = add_adapters(model, ["0"], max_bond=4, n_cores=3)
        >>> torch.equal(model(x), before), parameter_counts(model)
        (True, (384, 5194))
        >>> print(*(name for name, p in model.named_parameters() if p.requires_grad))
        0.adapter.cores.0 0.adapter.cores.1 0.adapter.cores.2
    """
    _check_model(model)
    max_bond = check_int(max_bond, "max_bond", minimum=1)
    n_cores = check_int(n_cores, "n_cores", minimum=1)
    scaling = 1.0 if alpha is None else _check_scaling(alpha, "alpha") / max_bond
    targets = _match(model, target_modules)
    for name, module in targets:
        if isinstance(getattr(module, ATTRIBUTE, None), MPOAdapter):
            raise ValueError(
                f"target_modules: {name!r} already has an MPO adapter (add_adapters was called "
                "twice on it)"
            )
    layouts = {
        name: {"n_cores": n_cores, "max_bond": max_bond, "scaling": scaling} for name, _ in targets
    }
    _install(model, dict(targets), layouts)
    return model


def _install(model: nn.Module, targets: dict[str, nn.Linear], layouts: dict[str, dict]) -> None:
    """Freeze all but the adapters, then give each target its adapter and hook."""
    keep = {id(p) for _, adapter in adapters(model) for p in adapter.parameters()}
    for param in model.parameters():
        if id(param) not in keep:
            param.requires_grad_(False)
    for name, module in targets.items():
        weight = module.weight
        adapter = MPOAdapter(
            module.in_features,
            module.out_features,
            device=weight.device,
            dtype=weight.dtype,
            **layouts[name],
        )
        adapter.train(module.training)
        module.add_module(ATTRIBUTE, adapter)
        module.register_forward_hook(_add_delta)


def _add_delta(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    """The forward hook of an adapted layer: its output plus the adapter's (unless merged)."""
    adapter = getattr(module, ATTRIBUTE, None)
    if not isinstance(adapter, MPOAdapter) or adapter.merged:
        return output
    return output + adapter(args[0]).to(output.dtype)


def _match(model: nn.Module, target_modules: Any) -> list[tuple[str, nn.Linear]]:
    """The modules ``target_modules`` names, PEFT's way; errors name what did not fit."""
    inside = {id(m) for _, a in adapters(model) for m in a.modules()}
    named = [(n, m) for n, m in model.named_modules() if n and id(m) not in inside]
    if isinstance(target_modules, str) and target_modules == "all-linear":
        found = [(n, m) for n, m in named if isinstance(m, nn.Linear)]
        if not found:
            raise ValueError("target_modules: 'all-linear', but the model has no torch.nn.Linear")
        return found
    if isinstance(target_modules, (str, re.Pattern)):
        try:
            pattern = re.compile(target_modules)
        except re.error as exc:
            raise ValueError(
                f"target_modules: not a valid regular expression {target_modules!r} ({exc})"
            ) from exc
        found = [(n, m) for n, m in named if pattern.fullmatch(n)]
        missing = [] if found else [target_modules]
    else:
        entries = _names(target_modules)
        found = [(n, m) for n, m in named if any(n == t or n.endswith(f".{t}") for t in entries)]
        missing = [t for t in entries if not any(n == t or n.endswith(f".{t}") for n, _ in named)]
    if missing:
        linear = [n for n, m in named if isinstance(m, nn.Linear)]
        raise ValueError(
            f"target_modules: {missing[0]!r} matches no module of the model (its linear layers: "
            f"{linear[:8]}{' …' if len(linear) > 8 else ''})"
        )
    for name, module in found:
        if not isinstance(module, nn.Linear):
            raise TypeError(
                f"target_modules: {name!r} is a {type(module).__name__}; MPO adapters go beside "
                "torch.nn.Linear layers only"
            )
    return found


def _names(target_modules: Any) -> list[str]:
    if isinstance(target_modules, Iterable) and not isinstance(target_modules, (bytes, dict)):
        entries = list(target_modules)
        if entries and all(isinstance(t, str) and t for t in entries):
            return entries
    raise TypeError(
        "target_modules: expected module names (a non-empty list of non-empty str), a regular "
        f"expression (str) or 'all-linear', got {target_modules!r}"
    )


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")


def _check_scaling(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------- finding and counting


def adapters(model: nn.Module) -> list[tuple[str, MPOAdapter]]:
    """``(target name, adapter)`` for every MPO adapter of ``model``, in module order."""
    return [
        (name, adapter)
        for name, module in model.named_modules()
        if isinstance(adapter := getattr(module, ATTRIBUTE, None), MPOAdapter)
        and isinstance(module, nn.Linear)
    ]


def _adapted(model: Any, what: str) -> list[tuple[str, nn.Linear]]:
    _check_model(model)
    found = [(n, model.get_submodule(n)) for n, _ in adapters(model)]
    if not found:
        raise ValueError(f"model: has no MPO adapters to {what} (call add_adapters first)")
    return found


def adapter_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every adapter core of ``model`` by its state-dict name (what ``save_adapters`` writes).

    Example:
        >>> import torch
        >>> from tnkit.torch import add_adapters, adapter_parameters
        >>> model = add_adapters(torch.nn.Sequential(torch.nn.Linear(8, 8)), ["0"], n_cores=2)
        >>> {name: tuple(p.shape) for name, p in adapter_parameters(model).items()}
        {'0.adapter.cores.0': (1, 2, 2, 4), '0.adapter.cores.1': (4, 4, 4, 1)}
    """
    _check_model(model)
    return {
        f"{name}.{ATTRIBUTE}.cores.{k}": core
        for name, adapter in adapters(model)
        for k, core in enumerate(adapter.cores)
    }


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts of ``model`` (PEFT's
    ``get_nb_trainable_parameters``); shared parameters count once.

    Example:
        >>> import torch
        >>> parameter_counts(torch.nn.Linear(3, 2))
        (8, 8)
    """
    _check_model(model)
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# ---------------------------------------------------------------------- merging


def merge_adapters(model: nn.Module) -> nn.Module:
    """Fold each adapter into its layer's weight, ``W ← W + ΔW``, in place; returns ``model``.

    ``W + ΔW`` is formed in float64 (complex128 for complex weights) and rounded once to the
    weight's dtype; the adapters stay and are skipped in ``forward`` until
    [unmerge_adapters][tnkit.torch.unmerge_adapters]. Do not train while merged: unmerging
    subtracts the current ``ΔW``.

    Example:
        >>> import torch
        >>> from tnkit.torch import add_adapters, merge_adapters, unmerge_adapters
        >>> model = add_adapters(torch.nn.Sequential(torch.nn.Linear(8, 8)), ["0"], n_cores=2)
        >>> with torch.no_grad():
        ...     _ = model[0].adapter.cores[1].normal_()
        >>> x = torch.randn(3, 8)
        >>> y = model(x)
        >>> torch.allclose(merge_adapters(model)(x), y, atol=1e-5), model[0].adapter.merged
        (True, True)
    """
    targets = _adapted(model, "merge")
    for name, module in targets:
        if module.adapter.merged:
            raise ValueError(f"model: the adapter of {name!r} is already merged")
    owners: dict[int, str] = {}
    for name, module in targets:
        other = owners.setdefault(id(module.weight), name)
        if other != name:
            raise ValueError(
                f"model: {other!r} and {name!r} share one weight; merging would add both "
                "adapters to it"
            )
    for _, module in targets:
        _fold(module, +1)
    return model


def unmerge_adapters(model: nn.Module) -> nn.Module:
    """Undo [merge_adapters][tnkit.torch.merge_adapters]: ``W ← W − ΔW`` in float64, rounded
    once; with unchanged cores this restores ``W`` to within two roundings of its dtype.

    Example:
        >>> import torch
        >>> from tnkit.torch import add_adapters, merge_adapters, unmerge_adapters
        >>> model = add_adapters(torch.nn.Sequential(torch.nn.Linear(8, 8)), ["0"], n_cores=2)
        >>> weight = model[0].weight.clone()
        >>> model = unmerge_adapters(merge_adapters(model))
        >>> torch.equal(model[0].weight, weight), model[0].adapter.merged
        (True, False)
    """
    targets = _adapted(model, "unmerge")
    for name, module in targets:
        if not module.adapter.merged:
            raise ValueError(f"model: the adapter of {name!r} is not merged")
    for _, module in targets:
        _fold(module, -1)
    return model


def fold(weight: torch.Tensor, adapter: MPOAdapter, sign: int, scaling: float = 1.0) -> None:
    """``weight ← weight + sign·scaling·ΔW`` in place, formed in float64 (complex128 for
    complex weights) and rounded once to ``weight``'s dtype (shared with the PEFT layer)."""
    work = torch.promote_types(weight.dtype, torch.float64)
    with torch.no_grad():
        delta = adapter.delta_weight(work).to(weight.device)
        weight.copy_((weight.to(work) + (sign * scaling) * delta).to(weight.dtype))


def _fold(module: nn.Linear, sign: int) -> None:
    fold(module.weight, module.adapter, sign)
    module.adapter.merged = sign > 0


# ---------------------------------------------------------------------- files


def save_adapters(path: str | os.PathLike, model: nn.Module) -> None:
    """Write ``model``'s adapters alone to a ``.safetensors`` file: the cores under their
    state-dict names, in their dtype, and each adapter's layout in the metadata.

    The file is written beside ``path`` and renamed over it when complete (``tnkit.codec``),
    so a failed save leaves an existing file as it was. Merged adapters are saved too (their
    cores do not change when merged).

    Example:
        >>> import os, tempfile, torch
        >>> from tnkit.torch import add_adapters, load_adapters, save_adapters
        >>> model = add_adapters(torch.nn.Sequential(torch.nn.Linear(64, 64)), ["0"], max_bond=4)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "adapters.safetensors")
        ...     save_adapters(path, model)
        ...     fresh = load_adapters(path, torch.nn.Sequential(torch.nn.Linear(64, 64)))
        ...     size = os.path.getsize(path)
        >>> size < 4096, torch.equal(fresh[0].adapter.cores[0], model[0].adapter.cores[0])
        (True, True)
    """
    path = _check_path(path)
    tensors, layouts = {}, {}
    for name, module in _adapted(model, "save"):
        adapter = module.adapter
        layouts[name] = adapter.layout()
        for k, core in enumerate(adapter.cores):
            code = _CODES.get(core.dtype)
            if code is None:
                raise TypeError(f"model: cannot save {core.dtype} adapter cores ({name!r})")
            array = core.detach().to("cpu", torch.float32 if code == "BF16" else core.dtype)
            tensors[f"{name}.{ATTRIBUTE}.cores.{k}"] = codec.from_float(array.numpy(), code)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tnkit_version": __version__,
        "adapters": json.dumps(layouts),
    }
    codec.write_safetensors(path, tensors, metadata)


def load_adapters(path: str | os.PathLike, model: nn.Module) -> nn.Module:
    """Read what [save_adapters][tnkit.torch.save_adapters] wrote into ``model``; returns it.

    A model without adapters gets them first, at the file's target names and layouts, with
    its other parameters frozen (as ``add_adapters`` does). A model with adapters must have
    the file's: the same targets, features, dims and bonds, none merged. Everything is
    checked before anything changes; a mismatch is a ValueError naming it. Values are cast
    to the cores' dtype and device.

    Example: see [save_adapters][tnkit.torch.save_adapters].
    """
    path = _check_path(path)
    _check_model(model)
    layouts, values = _read(path)
    present = dict(adapters(model))
    if present:
        _check_present(path, present, layouts)
    else:
        _check_targets(path, model, layouts)
        fields = ("in_dims", "out_dims", "bond_dims", "scaling")
        options = {n: {k: layout[k] for k in fields} for n, layout in layouts.items()}
        options = {n: {**o, "n_cores": len(o["in_dims"])} for n, o in options.items()}
        _install(model, {n: model.get_submodule(n) for n in layouts}, options)
        present = dict(adapters(model))
    expected = {
        f"{name}.{ATTRIBUTE}.cores.{k}": core
        for name, adapter in present.items()
        for k, core in enumerate(adapter.cores)
    }
    for key, core in expected.items():
        if key not in values:
            raise ValueError(f"{path}: no tensor {key!r} in the file")
        if tuple(values[key].shape) != tuple(core.shape):
            raise ValueError(
                f"{path}: tensor {key!r} has shape {tuple(values[key].shape)}, the model's "
                f"adapter core {tuple(core.shape)}"
            )
    extra = sorted(set(values) - set(expected))
    if extra:
        raise ValueError(f"{path}: tensor {extra[0]!r} belongs to no adapter of the model")
    with torch.no_grad():
        for key, core in expected.items():
            core.copy_(torch.from_numpy(values[key]).to(device=core.device, dtype=core.dtype))
    return model


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path: adapter files are .safetensors, got {str(path)!r}")
    return path


def _read(path: Path) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    metadata, tensors = codec.read_safetensors(path)
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: not a tnkit adapter file (format {metadata.get('format')!r}, version "
            f"{metadata.get('format_version')!r}; expected {FORMAT!r}, {FORMAT_VERSION!r})"
        )
    layouts = codec.parse_json(metadata.get("adapters", ""), "metadata 'adapters'", path)
    if not isinstance(layouts, dict) or not all(
        isinstance(v, dict) and set(v) == set(_LAYOUT_KEYS) for v in layouts.values()
    ):
        raise ValueError(f"{path}: metadata 'adapters' is not a map of adapter layouts")
    foreign = sorted({t.dtype for t in tensors.values()} - set(_CODES.values()))
    if foreign:
        raise ValueError(f"{path}: adapter cores of dtype {foreign[0]!r} (expected float)")
    return layouts, {name: codec.to_float(tensor) for name, tensor in tensors.items()}


def _check_present(path: Path, present: dict[str, MPOAdapter], layouts: dict) -> None:
    for name in sorted(set(present) ^ set(layouts)):
        where = "the model has no adapter at" if name in layouts else "the file has no adapter for"
        raise ValueError(f"{path}: {where} {name!r}")
    for name, adapter in present.items():
        if adapter.merged:
            raise ValueError(f"model: the adapter of {name!r} is merged; unmerge before loading")
        mine, theirs = adapter.layout(), layouts[name]
        for key in _LAYOUT_KEYS:
            if mine[key] != theirs[key]:
                raise ValueError(
                    f"{path}: {key} of the adapter at {name!r} is {theirs[key]!r} in the file, "
                    f"{mine[key]!r} in the model"
                )


def _check_targets(path: Path, model: nn.Module, layouts: dict) -> None:
    for name, layout in layouts.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            module = None
        if not isinstance(module, nn.Linear) or not name:
            raise ValueError(f"{path}: the model has no torch.nn.Linear at {name!r}")
        shape = (module.in_features, module.out_features)
        if shape != (layout["in_features"], layout["out_features"]):
            raise ValueError(
                f"{path}: the adapter at {name!r} is for (in, out) = "
                f"{(layout['in_features'], layout['out_features'])}, the model's layer is {shape}"
            )
