"""MPOP (Liu et al., ACL 2021): freeze the central tensors, squeeze the central bonds.

Edits models in place, as torch's own module utilities do; the truncations are
``tn.MPO.compress``'s, the central/auxiliary split is ``MPOMatrix``'s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._checks import check_int
from ._common import MPOMatrix
from .kinds import num_params
from .modules import check_model, mpo_groups, tie
from .report import format_table

__all__ = ["SqueezeReport", "SqueezeStep", "freeze_central", "squeeze"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqueezeStep:
    """One step of [squeeze][tnkit.torch.squeeze]: ``step`` 0 is the starting model.

    Attributes:
        step: how many truncations were applied.
        bond: the largest central bond of the model at this step.
        params: the model's parameters (each counted once).
        metric: ``metric(model)`` at this step.
        accepted: whether the metric stayed within the tolerance (the last step is the one
            that failed, and was undone, unless the bonds ran out first).
    """

    step: int
    bond: int
    params: int
    metric: float
    accepted: bool


@dataclass(frozen=True, repr=False)
class SqueezeReport(Sequence):
    """The steps of [squeeze][tnkit.torch.squeeze], as a sequence; ``str()`` is a table."""

    steps: tuple[SqueezeStep, ...]

    def __getitem__(self, index: Any) -> Any:
        return self.steps[index]

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def final(self) -> SqueezeStep:
        """The last accepted step: the state the model was left in."""
        return [s for s in self.steps if s.accepted][-1]

    def __repr__(self) -> str:
        final = self.final
        return f"SqueezeReport({len(self)} steps, kept step {final.step}: bond {final.bond})"

    def __str__(self) -> str:
        rows = [
            (
                str(s.step),
                str(s.bond),
                str(s.params),
                f"{s.metric:.6g}",
                "yes" if s.accepted else "no",
            )
            for s in self.steps
        ]
        return format_table(("step", "bond", "params", "metric", "accepted"), rows, ">>>><")


def freeze_central(model: nn.Module) -> int:
    """MPOP's lightweight fine-tuning: freeze, in place, every MPO weight's central tensor
    (``requires_grad=False``), leaving the auxiliary tensors (and all other parameters)
    trainable; returns the number of trainable parameters left.

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOLinear, freeze_central
        >>> layer = MPOLinear(64, 64, n_cores=3, bias=False)
        >>> freeze_central(layer), layer.central_tensor.numel()
        (512, 4096)
    """
    check_model(model)
    groups = mpo_groups(model)
    if not groups:
        raise ValueError("model: has no MPO layers (run compress_model first)")
    for group in groups:
        group[0].central_tensor.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _central_bonds(matrix: MPOMatrix) -> list[int]:
    central, bonds = matrix.central_index, matrix.bond_dims
    return [bonds[k] for k in (central - 1, central) if 0 <= k < len(bonds)]


def _largest_central(groups: list) -> int:
    return max((max(_central_bonds(g[0]), default=1) for g in groups), default=1)


def _snapshot(group: list) -> tuple:
    primary = group[0]
    layout = (primary.out_dims, primary.in_dims, primary.bond_dims)
    values = [c.detach().clone() for c in primary.cores]
    return layout, values, primary.report, [c.requires_grad for c in primary.cores]


def _load(group: list, layout: tuple, values: list, report: Any, flags: list) -> None:
    """Set a tied group's cores (re-shaped if the layout changed), keeping each core's
    ``requires_grad``."""
    primary = group[0]
    primary._reshape_cores(layout)
    with torch.no_grad():
        for param, value, flag in zip(primary.cores, values, flags, strict=True):
            param.copy_(value)
            param.requires_grad_(flag)
    primary.report = report
    for layer in group[1:]:
        tie(layer, primary)


def _score(metric: Callable, model: nn.Module) -> float:
    value = metric(model)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"metric: must return a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"metric: returned {value}")
    return float(value)


def squeeze(
    model: nn.Module,
    metric: Callable[[nn.Module], float],
    *,
    step: int = 1,
    tolerance: float = 0.01,
    mode: str = "max",
    max_steps: int | None = None,
    finetune: Callable[[nn.Module], Any] | None = None,
) -> SqueezeReport:
    """MPOP's dimension squeezing: lower the central bonds step by step while ``metric``
    holds, in place; the report of the steps.

    Each step truncates every MPO weight to ``max_bond = (its largest central bond) −
    step`` (the central bonds: those next to ``central_tensor``; a cap binds every bond,
    but in the default layouts the central ones are the largest) by ``tn.MPO.compress``,
    the best approximation the SVD sweep gives, then calls ``finetune(model)`` if given,
    then ``metric(model)``. ``mode="max"``: the metric may fall at most ``tolerance``
    (absolute) below its starting value; ``"min"`` (a loss): rise at most that much. The
    first step that violates it is undone (the last good cores restored, and with
    ``finetune`` every other parameter and buffer too) and the loop
    ends; it also ends when no central bond exceeds ``step`` or after ``max_steps``.
    Each core keeps its ``requires_grad``; re-shaped cores are new ``Parameter`` objects,
    so build optimizers afterwards.

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOLinear, squeeze
        >>> layer = MPOLinear(64, 64, n_cores=3)
        >>> report = squeeze(layer, lambda m: max(m.bond_dims), step=4, tolerance=8)
        >>> [s.bond for s in report], layer.bond_dims
        ([16, 12, 8, 4], (8, 8))
    """
    check_model(model)
    if not callable(metric):
        raise TypeError(f"metric: expected a callable metric(model) -> float, got {metric!r}")
    step = check_int(step, "step", minimum=1)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise TypeError(f"tolerance: expected a number, got {tolerance!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance: must be a finite number >= 0, got {tolerance!r}")
    if mode not in ("max", "min"):
        raise ValueError(f"mode: expected 'max' or 'min', got {mode!r}")
    if max_steps is not None:
        max_steps = check_int(max_steps, "max_steps", minimum=1)
    if finetune is not None and not callable(finetune):
        raise TypeError(f"finetune: expected a callable finetune(model), got {finetune!r}")
    groups = mpo_groups(model)
    if not groups:
        raise ValueError("model: has no MPO layers (run compress_model first)")

    def record(n: int, value: float, accepted: bool) -> SqueezeStep:
        params = num_params([model])
        return SqueezeStep(n, _largest_central(groups), params, value, accepted)

    # finetune may change any tensor: a rejected step restores the others' values too
    cores = {id(c) for g in groups for c in g[0].cores}
    others = [t for t in (*model.parameters(), *model.buffers()) if id(t) not in cores]

    def snapshot() -> tuple:
        values = [t.detach().clone() for t in others] if finetune is not None else []
        return [_snapshot(g) for g in groups], values

    start = _score(metric, model)
    steps = [record(0, start, True)]
    saved, saved_others = snapshot()
    while max_steps is None or len(steps) <= max_steps:
        changed = False
        for group, (_, _, _, flags) in zip(groups, saved, strict=True):
            cap = max(_central_bonds(group[0]), default=0) - step
            if cap >= 1:
                mpo = group[0].mpo.compress(max_bond=cap)
                layout = (mpo.out_dims, mpo.in_dims, mpo.bond_dims)
                _load(group, layout, list(mpo._folded_cores()), mpo.report, flags)
                changed = True
        if not changed:
            break
        if finetune is not None:
            finetune(model)
        value = _score(metric, model)
        drop = start - value if mode == "max" else value - start
        steps.append(record(len(steps), value, drop <= tolerance))
        if drop > tolerance:
            for group, state in zip(groups, saved, strict=True):
                _load(group, *state)
            with torch.no_grad():
                for tensor, value in zip(others, saved_others, strict=False):
                    tensor.copy_(value)
            break
        saved, saved_others = snapshot()
    report = SqueezeReport(tuple(steps))
    logger.info("squeeze: %d steps, kept step %d", len(steps) - 1, report.final.step)
    return report
