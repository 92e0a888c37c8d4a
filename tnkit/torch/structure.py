"""The MPO layouts of a model as JSON-able data, and rebuilding them on a fresh model.

Edits models in place (``apply_structure``), as torch's own module utilities do; the cores
it builds are freshly initialised (values come from a state dict), no math of its own.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .kinds import MPO_LAYERS, kind_of, kind_of_mpo
from .modules import check_model, install, module_names, tie

__all__ = ["apply_structure", "mpo_structure"]

STRUCTURE_FORMAT = "tnkit.mpo_structure"
_STRUCTURE_VERSION = 1


def mpo_structure(model: nn.Module) -> dict:
    """A JSON-able record of the model's MPO layers (kinds, names, dims, bonds, ties), for
    [apply_structure][tnkit.torch.apply_structure] on a freshly built model.

    Example:
        >>> import json, torch
        >>> from tnkit.torch import compress_model, mpo_structure
        >>> model = torch.nn.Sequential(torch.nn.Linear(64, 64))
        >>> _ = compress_model(model, max_bond=4)
        >>> layers = json.loads(json.dumps(mpo_structure(model)))["layers"]
        >>> layer = layers.pop(0)
        >>> weight = layer["weights"].get("")
        >>> layer["names"], layer["kind"], weight["bond_dims"]
        (['0'], 'Linear', [4, 4, 4])
    """
    check_model(model)
    layers, owners = [], {}
    for module, names in module_names(model).values():
        if not isinstance(module, MPO_LAYERS):
            continue
        kind = kind_of_mpo(module)
        weights = {key: m.get_extra_state() for key, m in kind.mpo_weights(module).items()}
        entry = {"names": names, "kind": kind.name, "weights": weights}
        if kind.ties:
            owner = owners.setdefault(id(module.cores), names[0])
            if owner != names[0]:
                entry["cores_of"] = owner
        layers.append(entry)
    return {"format": STRUCTURE_FORMAT, "version": _STRUCTURE_VERSION, "layers": layers}


def apply_structure(model: nn.Module, structure: dict) -> list[str]:
    """Replace, in place, ``model``'s dense layers by MPO layers of the recorded layouts
    (from [mpo_structure][tnkit.torch.mpo_structure]); the names replaced.

    The new cores are freshly initialised: load the compressed model's state dict next.
    Ties and shared modules are rebuilt as recorded, so ``load_state_dict`` keeps them.

    Example:
        >>> import torch
        >>> from tnkit.torch import apply_structure, compress_model, mpo_structure
        >>> make = lambda: torch.nn.Sequential(torch.nn.Linear(64, 64))
        >>> model = make()
        >>> _ = compress_model(model, max_bond=4)
        >>> fresh = make()
        >>> apply_structure(fresh, mpo_structure(model))
        ['0']
        >>> fresh.load_state_dict(model.state_dict())
        <All keys matched successfully>
    """
    check_model(model)
    if (
        not isinstance(structure, dict)
        or structure.get("format") != STRUCTURE_FORMAT
        or structure.get("version") != _STRUCTURE_VERSION
    ):
        raise ValueError(
            f"structure: expected a dict from mpo_structure (format {STRUCTURE_FORMAT!r}, "
            f"version {_STRUCTURE_VERSION}), got {_short(structure)}"
        )
    built: dict[str, nn.Module] = {}
    replaced = []
    for entry in structure.get("layers", []):
        try:
            names, recorded, weights = entry["names"], entry["kind"], entry["weights"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"structure: malformed layer entry {_short(entry)}") from exc
        module = _lookup(model, names[0])
        if any(_lookup(model, name) is not module for name in names[1:]):
            raise ValueError(f"structure: {names} are not one shared module in this model")
        kind = kind_of(module)
        if kind is None or kind.name != recorded:
            raise ValueError(
                f"structure: {names[0]!r} is a {type(module).__name__} here, the structure "
                f"records a {recorded}"
            )
        first = next(iter(weights.values()))
        layer = kind.skeleton(module, n_cores=len(first["in_dims"]))
        matrices = kind.mpo_weights(layer)
        if set(weights) != set(matrices):
            raise ValueError(f"structure: {names[0]!r} records weights {sorted(weights)}")
        for key, matrix in matrices.items():
            matrix.set_extra_state(weights[key])
        device = next(iter(kind.matrices(module).values())).device
        layer = layer.to_empty(device=device)
        layer.reset_parameters()
        if "cores_of" in entry:
            if entry["cores_of"] not in built:
                raise ValueError(f"structure: {names[0]!r} ties to unknown {entry['cores_of']!r}")
            tie(layer, built[entry["cores_of"]])
        install(model, kind, module, layer, names)
        built[names[0]] = layer
        replaced += names
    return replaced


def _lookup(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        raise ValueError(f"structure: this model has no module {name!r}") from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
