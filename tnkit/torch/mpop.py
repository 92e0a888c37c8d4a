"""MPOP (Liu et al., ACL 2021): freeze the central tensors, squeeze the central bonds.

Edits models in place, as torch's own module utilities do; the Schmidt values, canonical
forms and truncated splits are the core's (``tn.MPO``, ``tnkit.linalg``), the
central/auxiliary split is ``MPOMatrix``'s, the counts ``parameter_counts``'.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._checks import check_int
from ..linalg import truncated_split
from ..mpo import MPO
from ._common import MPOMatrix
from .adapters import MPOAdapter, parameter_counts
from .modules import check_model, module_names, mpo_groups, tie
from .report import format_table

__all__ = ["SqueezeReport", "SqueezeStep", "freeze_central", "squeeze"]

logger = logging.getLogger(__name__)

SELECTIONS = ("least_error", "all")


@dataclass(frozen=True)
class SqueezeStep:
    """One round of [squeeze][tnkit.torch.squeeze]: ``step`` 0 is the starting model.

    Attributes:
        step: how many rounds of truncation were applied.
        bond: the largest central bond of the model at this step.
        params: the model's parameters (each counted once).
        metric: ``metric(model)`` at this step (after the round's fine-tuning).
        accepted: whether the metric stayed within the tolerance (the last step is the one
            that failed, and was undone, unless the bonds ran out first).
        trainable: the parameters MPOP's local fine-tuning trains: those with
            ``requires_grad`` once the central tensors are frozen.
        layer: the qualified name of the MPO weight whose bond this round lowered (``""``:
            the model itself); None at step 0 and with ``select="all"`` (every weight).
        bond_index: which bond of that weight was lowered (bond k joins cores k and k+1).
        lowered: that bond's dimension ``(before, after)``.
        error: the estimated relative error ``‖W − W̃‖_F / ‖W‖_F`` of this round's
            truncation, from the discarded singular values (``select="all"``: the largest
            over the weights); 0 at step 0.
    """

    step: int
    bond: int
    params: int
    metric: float
    accepted: bool
    trainable: int = 0
    layer: str | None = None
    bond_index: int | None = None
    lowered: tuple[int, int] | None = None
    error: float = 0.0


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

    @property
    def rounds(self) -> int:
        """The rounds of truncation kept (``final.step``)."""
        return self.final.step

    @property
    def metrics(self) -> tuple[float, ...]:
        """The metric at every step, the rejected last one included."""
        return tuple(s.metric for s in self.steps)

    @property
    def params_before(self) -> int:
        """The model's parameters before squeezing."""
        return self.steps[0].params

    @property
    def params_after(self) -> int:
        """The model's parameters after squeezing (the final step's)."""
        return self.final.params

    def __repr__(self) -> str:
        final = self.final
        return (
            f"SqueezeReport({len(self)} steps, kept step {final.step}: bond {final.bond}, "
            f"params {self.params_before} -> {final.params}, trainable {final.trainable})"
        )

    def __str__(self) -> str:
        rows = [
            (
                str(s.step),
                "-" if s.layer is None else s.layer or "(model)",
                "-" if s.lowered is None else f"{s.bond_index}: {s.lowered[0]}->{s.lowered[1]}",
                f"{s.error:.3g}",
                str(s.bond),
                str(s.params),
                str(s.trainable),
                f"{s.metric:.6g}",
                "yes" if s.accepted else "no",
            )
            for s in self.steps
        ]
        headers = ("step", "layer", "lowered", "error", "bond", "params", "trainable")
        return format_table((*headers, "metric", "accepted"), rows, "><>>>>>><")


def _mpop_groups(model: nn.Module) -> list[list[MPOMatrix]]:
    """The model's MPO weights grouped by shared cores; PEFT-style adapters are not
    compressed weights (their zero centre core must train), so they are left out."""
    return [g for g in mpo_groups(model) if not isinstance(g[0], MPOAdapter)]


def freeze_central(model: nn.Module) -> int:
    """MPOP's lightweight fine-tuning: freeze, in place, every MPO weight's central tensor
    (``requires_grad=False``), leaving the auxiliary tensors (and all other parameters)
    trainable; returns the number of trainable parameters left.

    MPO adapters (``add_adapters``) are not compressed weights and stay as they are. Each
    tensor counts once (tied weights share their cores); ``parameter_counts(model)`` gives
    ``(trainable, total)`` afterwards.

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOLinear, freeze_central
        >>> layer = MPOLinear(64, 64, n_cores=3, bias=False)
        >>> freeze_central(layer), layer.central_tensor.numel()
        (512, 4096)
    """
    check_model(model)
    groups = _mpop_groups(model)
    if not groups:
        raise ValueError("model: has no MPO layers (run compress_model first)")
    for group in groups:
        group[0].central_tensor.requires_grad_(False)
    return parameter_counts(model)[0]


def _central_bonds(bond_dims: tuple, central: int) -> list[int]:
    """The bond indices next to core ``central``: ``central - 1`` and ``central``."""
    return [k for k in (central - 1, central) if 0 <= k < len(bond_dims)]


def _largest_central(groups: list, centrals: list[int]) -> int:
    bonds = [
        g[0].bond_dims[k]
        for g, c in zip(groups, centrals, strict=True)
        for k in _central_bonds(g[0].bond_dims, c)
    ]
    return max(bonds, default=1)


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


def _load_mpo(group: list, mpo: MPO) -> None:
    """Put ``mpo`` into a tied group, each core position keeping its ``requires_grad``."""
    flags = [c.requires_grad for c in group[0].cores]
    layout = (mpo.out_dims, mpo.in_dims, mpo.bond_dims)
    _load(group, layout, list(mpo._folded_cores()), mpo.report, flags)


def _score(metric: Callable, model: nn.Module) -> float:
    value = metric(model)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"metric: must return a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"metric: returned {value}")
    return float(value)


# ---------------------------------------------------------------------- one round


def _cut_fraction(singular_values: Any, keep: int) -> float:
    """The share ``Σ_{i≥keep} s_i² / Σ s_i²`` of the weight that keeping ``keep`` values
    cuts: the squared relative Frobenius error of that one truncation (MPOP's estimate)."""
    weights = singular_values.astype(float) ** 2
    total = float(weights.sum())
    return float(weights[keep:].sum()) / total if total > 0 else 0.0


def _candidates(groups: list, centrals: list[int], step: int) -> list[tuple]:
    """``(cut fraction, group, bond, canonical MPO)`` for every central bond above ``step``."""
    found = []
    for index, (group, central) in enumerate(zip(groups, centrals, strict=True)):
        bonds, mpo = group[0].bond_dims, None
        for bond in _central_bonds(bonds, central):
            if bonds[bond] - step < 1:
                continue
            if mpo is None:  # the centre at the central core exposes both its bonds
                mpo = group[0].mpo.canonicalize(central)
            fraction = _cut_fraction(mpo.singular_values(bond), bonds[bond] - step)
            found.append((fraction, index, bond, mpo))
    return found


def _lowered(mpo: MPO, bond: int, dim: int, central: int) -> MPO:
    """``mpo`` with bond ``bond`` alone cut to ``dim`` Schmidt values (the best such
    approximation, error the cut singular values), in mixed-canonical form about ``central``
    (auxiliary tensors isometric, the central tensor holding the norm)."""
    xp = mpo.xp
    cores = list(mpo.canonicalize(bond + 1)._folded_cores())
    rows, outs, ins, cols = cores[bond + 1].shape
    split = truncated_split(
        xp.reshape(cores[bond + 1], (rows, outs * ins * cols)), max_bond=dim, isometry="right"
    )
    cores[bond + 1] = xp.reshape(split.right, (split.rank, outs, ins, cols))
    cores[bond] = xp.tensordot(cores[bond], split.left, axes=1)
    return MPO(cores, matrix_shape=mpo.matrix_shape).canonicalize(central)


def _lower_least_error(groups: list, centrals: list, names: list, step: int) -> tuple | None:
    """Algorithm 2's move: lower by ``step`` the one central bond, over all weights, whose
    cut discards the least relative weight; ``(layer, bond, (before, after), error)``."""
    candidates = _candidates(groups, centrals, step)
    if not candidates:
        return None
    fraction, index, bond, mpo = min(candidates, key=lambda c: c[:3])
    group, before = groups[index], groups[index][0].bond_dims[bond]
    _load_mpo(group, _lowered(mpo, bond, before - step, centrals[index]))
    return names[index], bond, (before, group[0].bond_dims[bond]), math.sqrt(fraction)


def _lower_all(groups: list, centrals: list, step: int) -> tuple | None:
    """Every weight at once to ``max_bond = (its largest central bond) − step`` by
    ``tn.MPO.compress``; ``(None, None, None, largest relative error bound)``."""
    errors = []
    for group, central in zip(groups, centrals, strict=True):
        bonds = group[0].bond_dims
        cap = max((bonds[k] for k in _central_bonds(bonds, central)), default=0) - step
        if cap >= 1:
            mpo = group[0].mpo.compress(max_bond=cap)
            _load_mpo(group, mpo)
            errors.append(mpo.report.rel_error_bound)
    return (None, None, None, max(errors)) if errors else None


# ---------------------------------------------------------------------- local fine-tuning


@contextlib.contextmanager
def _centrals_frozen(groups: list, centrals: list) -> Iterator[list]:
    """The central cores with ``requires_grad=False`` inside, their own flags after."""
    cores = [g[0].cores[c] for g, c in zip(groups, centrals, strict=True)]
    flags = [c.requires_grad for c in cores]
    for core in cores:
        core.requires_grad_(False)
    try:
        yield cores
    finally:
        for core, flag in zip(cores, flags, strict=True):
            core.requires_grad_(flag)


def _local_finetune(tune: Callable, model: nn.Module, groups: list, centrals: list, names: list):
    """``tune(model)`` with the central tensors frozen; a RuntimeError if it changed one."""
    with _centrals_frozen(groups, centrals) as cores:
        kept = [c.detach().clone() for c in cores]
        tune(model)
    for group, central, value, name in zip(groups, centrals, kept, names, strict=True):
        if not torch.equal(group[0].cores[central].detach(), value):
            raise RuntimeError(
                f"finetune: changed the central tensor of {name or 'the model'!r}; MPOP trains "
                "the auxiliary tensors only (optimise the parameters with requires_grad)"
            )


def _adam_steps(loss: Callable, steps: int, lr: float) -> Callable[[nn.Module], None]:
    """``steps`` Adam steps on ``loss(model)`` over the trainable parameters (a fresh
    optimizer each round: truncated cores are new ``Parameter`` objects)."""

    def train(model: nn.Module) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            return
        optimizer = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            value = loss(model)
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise TypeError(f"loss: must return a scalar tensor, got {value!r}")
            value.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return train


# ---------------------------------------------------------------------- squeeze


def squeeze(
    model: nn.Module,
    metric: Callable[[nn.Module], float],
    *,
    step: int = 1,
    tolerance: float = 0.01,
    mode: str = "max",
    max_steps: int | None = None,
    finetune: Callable[[nn.Module], Any] | int | None = None,
    select: str = "least_error",
    loss: Callable[[nn.Module], torch.Tensor] | None = None,
    lr: float = 1e-3,
) -> SqueezeReport:
    """MPOP's dimension squeezing (Liu et al. 2021, Algorithm 2), in place: lower the
    central bonds one at a time, the cheapest first, fine-tuning the auxiliary tensors in
    between, while ``metric`` stays within ``tolerance`` (the paper's Δ) of its start.

    Every round:

    1. For every MPO weight and each of its central bonds (the two bonds of its
       ``central_tensor``, as found at the start), estimate the relative error of lowering
       that bond by ``step`` from the singular values it would cut
       (``tn.MPO.singular_values``): ``sqrt(Σ cut s² / Σ s²)``, exact for that one cut.
    2. Lower the bond with the least estimate, alone: the truncated SVD of the Schmidt form
       at that bond. The weight is left in mixed-canonical form about its central tensor
       (auxiliary tensors isometric); its ``report`` is cleared.
    3. Fine-tune with the central tensors frozen. ``finetune`` is a callable
       ``finetune(model)`` (build its optimizer inside: lowered cores are new ``Parameter``
       objects), or an int: that many Adam steps at learning rate ``lr`` on
       ``loss(model)``, a scalar tensor (draw the batch inside ``loss``). The central
       tensors must come out unchanged (RuntimeError otherwise).
    4. Evaluate ``metric(model)`` (validation data). ``mode="max"`` (an accuracy): the
       round fails if the metric fell more than ``tolerance`` (absolute) below its value
       at the start; ``"min"`` (a loss): if it rose more than that. A failing round is
       undone (the cores, and with ``finetune`` every other parameter and buffer, as after
       the previous round) and the loop ends.

    The loop also ends when no central bond exceeds ``step`` or after ``max_steps``
    rounds. ``select="all"`` makes rounds coarser (fewer evaluations): every weight at once
    to ``max_bond = (its largest central bond) − step`` by ``tn.MPO.compress``, which caps
    all its bonds. Each core keeps its ``requires_grad``; build optimizers afterwards.

    Example:
        >>> import torch
        >>> from tnkit.torch import MPOLinear, squeeze
        >>> layer = MPOLinear(64, 64, n_cores=3)
        >>> report = squeeze(layer, lambda m: max(m.bond_dims), step=4, tolerance=8)
        >>> report.metrics, report.rounds, sorted(layer.bond_dims)
        ((16.0, 16.0, 12.0, 12.0, 8.0, 8.0, 4.0), 5, [4, 8])
        >>> report.params_before, report.params_after, report.final.trainable
        (4672, 768, 256)
    """
    check_model(model)
    if not callable(metric):
        raise TypeError(f"metric: expected a callable metric(model) -> float, got {metric!r}")
    step = check_int(step, "step", minimum=1)
    tolerance = _check_number(tolerance, "tolerance", positive=False)
    if mode not in ("max", "min"):
        raise ValueError(f"mode: expected 'max' or 'min', got {mode!r}")
    if max_steps is not None:
        max_steps = check_int(max_steps, "max_steps", minimum=1)
    if select not in SELECTIONS:
        raise ValueError(f"select: expected one of {SELECTIONS}, got {select!r}")
    tune = _check_finetune(finetune, loss, lr)
    groups = _mpop_groups(model)
    if not groups:
        raise ValueError("model: has no MPO layers (run compress_model first)")
    entries = module_names(model)
    names = [entries[id(g[0])][1][0] for g in groups]
    centrals = [g[0].central_index for g in groups]

    def record(n: int, value: float, accepted: bool, change: tuple) -> SqueezeStep:
        with _centrals_frozen(groups, centrals):
            trainable, total = parameter_counts(model)
        bond = _largest_central(groups, centrals)
        return SqueezeStep(n, bond, total, value, accepted, trainable, *change)

    # finetune may change any tensor: a rejected round restores the others' values too
    cores = {id(c) for g in groups for c in g[0].cores}
    others = [t for t in (*model.parameters(), *model.buffers()) if id(t) not in cores]

    def snapshot() -> tuple:
        values = [t.detach().clone() for t in others] if tune is not None else []
        return [_snapshot(g) for g in groups], values

    def restore() -> None:
        for group, state in zip(groups, saved, strict=True):
            _load(group, *state)
        with torch.no_grad():
            for tensor, kept in zip(others, saved_others, strict=False):
                tensor.copy_(kept)

    def one_round() -> tuple | None:
        if select == "all":
            change = _lower_all(groups, centrals, step)
        else:
            change = _lower_least_error(groups, centrals, names, step)
        if change is not None and tune is not None:
            _local_finetune(tune, model, groups, centrals, names)
        return change and (change, _score(metric, model))

    start = _score(metric, model)
    steps = [record(0, start, True, (None, None, None, 0.0))]
    saved, saved_others = snapshot()
    while max_steps is None or len(steps) <= max_steps:
        try:
            outcome = one_round()
        except BaseException:  # nothing half-done: the model as after the last kept round
            restore()
            raise
        if outcome is None:
            break
        change, value = outcome
        drop = start - value if mode == "max" else value - start
        steps.append(record(len(steps), value, drop <= tolerance, change))
        if drop > tolerance:
            restore()
            break
        saved, saved_others = snapshot()
    report = SqueezeReport(tuple(steps))
    logger.info("squeeze: %d rounds, kept %d", len(steps) - 1, report.final.step)
    return report


def _check_number(value: Any, name: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}: must be a finite number {kind}, got {value!r}")
    return float(value)


def _check_finetune(finetune: Any, loss: Any, lr: Any) -> Callable | None:
    """The fine-tuning to run each round: ``finetune`` itself, Adam steps, or None."""
    lr = _check_number(lr, "lr", positive=True)
    if finetune is None or callable(finetune):
        if loss is not None:
            raise ValueError("loss: used only with finetune=<number of Adam steps>")
        return finetune
    if isinstance(finetune, bool) or not isinstance(finetune, int):
        raise TypeError(
            f"finetune: expected a callable finetune(model) or a number of steps, got {finetune!r}"
        )
    steps = check_int(finetune, "finetune", minimum=1)
    if not callable(loss):
        raise TypeError(f"loss: finetune={steps} needs a callable loss(model), got {loss!r}")
    return _adam_steps(loss, steps, lr)
