"""A model's submodules: their names, groups sharing weights, and swapping one for another.

Edits models in place, as torch's own module utilities do; no conversions of its own (the
table in ``tnkit.torch.kinds`` says how each kind of layer converts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ._common import MPOMatrix
from .kinds import MPO_LAYERS, LayerKind, kind_of

__all__ = [
    "Group",
    "Member",
    "check_model",
    "check_root",
    "convertible_groups",
    "install",
    "module_names",
    "mpo_groups",
    "set_module",
    "tie",
]


@dataclass
class Member:
    """One convertible module, of ``kind``, under all its qualified ``names``."""

    kind: LayerKind
    module: nn.Module
    names: list[str]


@dataclass
class Group:
    """Modules converted together: one module (maybe under several names), or modules
    sharing one weight ``Parameter`` (tied), which get MPO layers sharing one ``cores``."""

    members: list[Member]
    reason: str = ""
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = [n for m in self.members for n in m.names]


def module_names(model: nn.Module) -> dict[int, tuple[nn.Module, list[str]]]:
    """``id(module) -> (module, all its qualified names)`` in traversal order."""
    entries: dict[int, tuple[nn.Module, list[str]]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        entries.setdefault(id(module), (module, []))[1].append(name)
    return entries


def check_model(model: Any) -> None:
    """A TypeError naming ``model`` unless it is an ``nn.Module``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")


def check_root(model: Any, what: str) -> None:
    """``check_model``, and a ValueError if the model itself is a layer ``what`` replaces."""
    check_model(model)
    if isinstance(model, MPO_LAYERS) or kind_of(model):
        raise ValueError(
            f"model: the model itself is a {type(model).__name__}; {what} replaces submodules "
            "in place, so wrap it (torch.nn.Sequential(model)) or convert it directly"
        )


def convertible_groups(model: nn.Module) -> list[Group]:
    """Convertible modules grouped by shared weights, with the reason a group cannot be
    converted (unsupported options, or a parameter used by a module outside the group)."""
    entries = module_names(model)
    owners: dict[int, set[int]] = {}
    for key, (module, _) in entries.items():
        for param in module.parameters(recurse=False):
            owners.setdefault(id(param), set()).add(key)
    groups: dict[int, list[Member]] = {}
    for key, (module, names) in entries.items():
        kind = kind_of(module)
        if kind is None or names == [""]:
            continue
        shared = id(module.weight) if kind.ties else key
        groups.setdefault(shared, []).append(Member(kind, module, names))
    result = []
    for members in groups.values():
        keys = {id(m.module) for m in members}
        reason = next((r for m in members if (r := m.kind.unsupported(m.module))), "")
        params = {id(p) for m in members for p in m.module.parameters(recurse=False)}
        if not reason and any(owners[p] - keys for p in params):
            reason = "shares a parameter with a module that is not converted"
        if not reason and len({m.kind.transposed for m in members}) > 1:
            reason = "weight tied to a Conv1D, which uses it transposed"
        result.append(Group(members, reason))
    return result


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` at the qualified ``name`` of ``model``."""
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent), attr, module)


def install(model: nn.Module, kind: LayerKind, old: nn.Module, new: nn.Module, names: list) -> None:
    """Put ``new`` in place of ``old`` at every name, with ``old``'s biases (the same
    ``Parameter`` objects), training mode and frozen weights."""
    for name in kind.carried(old):
        if getattr(old, name, None) is not None:
            setattr(new, name, getattr(old, name))
    frozen = not any(w.requires_grad for w in kind.weights(old).values())
    if kind.keeps_type:
        new._dense_type = type(old)
    for matrix in kind.mpo_weights(new).values():
        for core in matrix.cores:
            core.requires_grad_(not frozen)
    new.train(old.training)
    for name in names:
        set_module(model, name, new)


def tie(layer: nn.Module, primary: nn.Module) -> None:
    """``layer`` shares ``primary``'s cores (same ``ParameterList``), layout and report."""
    layer.cores = primary.cores
    layer._set_layout((primary.out_dims, primary.in_dims, primary.bond_dims))
    layer.report = primary.report


def mpo_groups(model: nn.Module) -> list[list[MPOMatrix]]:
    """Every MPO weight of the model, grouped by shared ``cores`` (tied weights)."""
    groups: dict[int, list[MPOMatrix]] = {}
    for module in model.modules():
        if isinstance(module, MPOMatrix):
            groups.setdefault(id(module.cores), []).append(module)
    return list(groups.values())
