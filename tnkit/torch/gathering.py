"""Calibration data for ``compress_model``: the input Gram matrices of its target layers,
gathered by forward hooks, in one pass over the original model or layer by layer through
the model as it is being compressed (``sequential``).

Sequential calibration. A layer fitted to its inputs in the original model meets other
inputs once the layers before it are compressed: their output errors reach it and compound
through the blocks. Fitted in execution order instead, each layer sees the inputs X̃ it has
in the partly compressed model and is fitted to the outputs the original layer gives on the
original inputs X (same tokens): min over W̃ of ‖X̃W̃ᵀ − XWᵀ‖_F. That equals
‖X̃(W̃ − W')ᵀ‖_F plus a constant, with the corrected target W' that minimises
‖X̃W'ᵀ − XWᵀ‖² + λ‖W' − W‖², i.e. W' = (W·Cᵀ + λW)·(Σ̃ + λ)⁻¹ (C = X̃ᵀX, Σ̃ = X̃ᵀX̃): the
usual data-aware fit of W' under the metric Σ̃. It is the layer-wise sequential scheme that
post-training quantisers use (GPTQ), for MPO cores. The ridge holds W' near W: W' has
``in_features`` unknowns per output, and calibration sets often have fewer tokens than that
(MiniLM: 1,315 fitting rows for 1,536 features), where the plain regression overfits
(docs/calibration.md). No math lives here beyond the normal equations; the fit is
``calibrate_linear``'s.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = [
    "CALIBRATION_SEED",
    "HELD_OUT",
    "RIDGE",
    "Gatherer",
    "check_calibration",
    "corrected_weight",
    "execution_order",
    "gather",
    "paired_grams",
    "run_batch",
]

HELD_OUT = 0.2  # the share of calibration rows kept aside to measure the output error
CALIBRATION_SEED = 0  # which rows are held out: reproducible for the same batches
RIDGE = 1.0  # λ of W' (corrected_weight), relative to Σ̃'s mean eigenvalue


class Gatherer:
    """A forward hook that adds ``xᵀx`` of a layer's input rows to a fitting and a held-out
    Gram matrix (float64, on the layer's device), rows split at random (seeded)."""

    def __init__(self, name: str, in_features: int) -> None:
        self.name, self.in_features = name, in_features
        self.fit: torch.Tensor | None = None
        self.held: torch.Tensor | None = None
        self.cross: torch.Tensor | None = None
        self.rows = self.held_rows = 0
        self.split = torch.Generator().manual_seed(CALIBRATION_SEED)

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        self.add(_input_rows(self.name, self.in_features, args, kwargs))

    def add(self, rows: torch.Tensor, paired: torch.Tensor | None = None) -> None:
        """Add the rows (and, with ``paired``, the cross term ``rowsᵀ·paired`` to ``cross``:
        the fitting rows only)."""
        held = (torch.rand(rows.shape[0], generator=self.split) < HELD_OUT).to(rows.device)
        if self.fit is None:
            zeros = torch.zeros(self.in_features, self.in_features, dtype=torch.float64)
            self.fit, self.held = zeros.to(rows.device), zeros.clone().to(rows.device)
            self.cross = zeros.clone().to(rows.device) if paired is not None else None
        fit_rows, held_rows = rows[~held], rows[held]
        self.fit += fit_rows.mT @ fit_rows
        self.held += held_rows.mT @ held_rows
        if paired is not None:
            self.cross += fit_rows.mT @ paired[~held]
        self.rows += rows.shape[0]
        self.held_rows += held_rows.shape[0]

    def grams(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """(fitting, held-out) Gram matrices; None if the layer saw no rows."""
        if not self.rows or self.rows == self.held_rows:
            return None
        return self.fit, (self.held if self.held_rows else None)


def check_calibration(calibration: Any) -> None:
    if calibration is None:
        return
    if isinstance(calibration, (torch.Tensor, dict, str, bytes)) or not hasattr(
        calibration, "__iter__"
    ):
        raise TypeError(
            "calibration: expected an iterable of batches (each a tensor, a dict of keyword "
            f"arguments or a tuple of arguments of model), got {type(calibration).__name__}; "
            "wrap a single batch in a list"
        )


def run_batch(model: nn.Module, batch: Any, index: int) -> None:
    """``model`` on one calibration batch: ``model(**batch)``, ``model(*batch)`` or
    ``model(batch)``."""
    if isinstance(batch, dict):
        model(**batch)
    elif isinstance(batch, (tuple, list)):
        model(*batch)
    elif isinstance(batch, torch.Tensor):
        model(batch)
    else:
        raise TypeError(
            f"calibration: batch {index}: expected a tensor, a dict or a tuple, "
            f"got {type(batch).__name__}"
        )


def gather(model: nn.Module, targets: dict[str, tuple], calibration: Any) -> dict:
    """Run ``model`` on every batch of ``calibration`` (no gradients) with hooks on the
    ``targets`` (name: module, in_features); the ``Gatherer`` of each name. Hooks are
    removed even on error."""
    gatherers, handles = {}, []
    try:
        for name, (module, in_features) in targets.items():
            gatherers[name] = Gatherer(name, in_features)
            handles.append(module.register_forward_hook(gatherers[name], with_kwargs=True))
        batches = 0
        with torch.no_grad():
            for batch in calibration:
                run_batch(model, batch, batches)
                batches += 1
    finally:
        for handle in handles:
            handle.remove()
    if not batches:
        raise ValueError("calibration: no batches (an empty iterable)")
    return gatherers


def execution_order(model: nn.Module, modules: dict[str, nn.Module], batch: Any) -> list[str]:
    """The names of ``modules`` in the order ``model`` first calls them on ``batch``
    (modules it never calls last, in the given order)."""
    order: list[str] = []
    handles = []
    try:
        for name, module in modules.items():

            def seen(module: nn.Module, args: tuple, name: str = name) -> None:
                if name not in order:
                    order.append(name)

            handles.append(module.register_forward_pre_hook(seen))
        with torch.no_grad():
            run_batch(model, batch, 0)
    finally:
        for handle in handles:
            handle.remove()
    return order + [name for name in modules if name not in order]


def paired_grams(
    original: tuple[nn.Module, nn.Module],
    current: tuple[nn.Module, nn.Module],
    name: str,
    in_features: int,
    batches: list,
) -> Gatherer:
    """The Gram matrices of one layer's inputs X̃ in the ``current`` (model, layer) and the
    cross term ``X̃ᵀX`` with its inputs X in the ``original`` (model, layer), batch by batch
    over the same ``batches``. Each forward pass stops at the layer, so a layer that a
    forward pass calls several times contributes the inputs of its first call."""
    gatherer = Gatherer(name, in_features)
    for index, batch in enumerate(batches):
        reference = _inputs_of(original, batch, index, name, in_features)
        rows = _inputs_of(current, batch, index, name, in_features)
        if rows is None or reference is None:
            continue
        if rows.shape != reference.shape:
            raise ValueError(
                f"calibration: {name} got {tuple(rows.shape)} input rows in the compressed "
                f"model and {tuple(reference.shape)} in the original on batch {index}"
            )
        gatherer.add(rows, paired=reference)
    return gatherer


def corrected_weight(weight: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor) -> Any:
    """W' = (W·Cᵀ + λW)·(Σ̃ + λ)⁻¹ (float64): the weight whose outputs on the compressed
    model's inputs come closest to the original outputs, held near W by λ = ``RIDGE``
    times Σ̃'s mean eigenvalue (module docstring)."""
    ridge = RIDGE * float(torch.trace(gram)) / gram.shape[0] + 1e-300
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    w = weight.detach().to(torch.float64)
    target = cross @ w.mT + ridge * w.mT  # C·Wᵀ + λWᵀ = X̃ᵀ X Wᵀ + λWᵀ
    return torch.linalg.solve(gram + ridge * eye, target).mT.contiguous()


class _Reached(Exception):
    """Raised by a pre-hook to end a forward pass at the layer whose inputs it took."""


def _inputs_of(
    pair: tuple[nn.Module, nn.Module], batch: Any, index: int, name: str, in_features: int
) -> torch.Tensor | None:
    """The input rows of ``pair``'s layer when its model runs ``batch`` (None: not reached);
    the forward pass stops at the layer."""
    model, layer = pair
    taken: list[torch.Tensor] = []

    def take(module: nn.Module, args: tuple, kwargs: dict) -> None:
        taken.append(_input_rows(name, in_features, args, kwargs))
        raise _Reached

    handle = layer.register_forward_pre_hook(take, with_kwargs=True)
    try:
        with torch.no_grad():
            run_batch(model, batch, index)
    except _Reached:
        pass
    finally:
        handle.remove()
    return taken[0] if taken else None


def _input_rows(name: str, in_features: int, args: tuple, kwargs: dict) -> torch.Tensor:
    given = args[0] if args else next(iter(kwargs.values()))  # forward(input=x) too
    rows = given.detach().reshape(-1, in_features)
    if not bool(torch.isfinite(rows).all()):
        raise ValueError(f"calibration: the inputs of {name} contain NaN or Inf")
    return rows.to(torch.float64)
