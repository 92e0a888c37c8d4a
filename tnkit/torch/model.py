"""Whole models: every dense layer to an MPO layer (``compress_model``) and back again.

Edits models in place, as torch's own module utilities do; no math of its own (the kinds'
table says how each layer converts: its ``from_*`` and ``to_*`` conversions; the data-aware
fit is ``calibrate_linear``'s, fed by the Gram matrices that forward hooks gather here).
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._checks import check_int
from .._executor import Jobs, check_executor
from ..truncation import Truncation
from .gathering import check_calibration, corrected_weight, execution_order, gather, paired_grams
from .kinds import LAYER_KINDS, MPO_LAYERS, LayerKind, core_entries, kind_of_mpo, num_params
from .linear import MPOLinear, calibrate_linear
from .modules import Group, check_root, convertible_groups, install, module_names, set_module, tie
from .report import CompressionReport, LayerCompression

__all__ = ["CompressionReport", "LayerCompression", "compress_model", "densify_model"]

logger = logging.getLogger(__name__)


def _name_filter(include: Any, exclude: Any) -> Callable[[list[str]], str | None]:
    """``None`` (leave the names' module alone), ``""`` (convert it), or why it is kept."""
    patterns = {}
    for arg, value in (("include", include), ("exclude", exclude)):
        if value is None:
            continue
        if not isinstance(value, (str, re.Pattern)):
            raise TypeError(f"{arg}: expected a regular expression (str), got {value!r}")
        try:
            patterns[arg] = re.compile(value)
        except re.error as exc:
            raise ValueError(f"{arg}: not a valid regular expression {value!r} ({exc})") from exc

    def choose(names: list[str]) -> str | None:
        included = [n for n in names if "include" not in patterns or patterns["include"].search(n)]
        excluded = {n for n in names if "exclude" in patterns and patterns["exclude"].search(n)}
        if not set(included) - excluded:
            return None
        return "shared with an excluded name" if excluded else ""

    return choose


def _ratio_bond(kind: LayerKind, module: nn.Module, n_cores: int, ratio: float) -> int:
    """The largest ``max_bond`` whose layout has ``dense / MPO parameters >= ratio``
    (1 if none has), counted on meta layouts by bisection."""
    dense = sum(w.numel() for w in kind.matrices(module).values())

    def reaches(bond: int) -> bool:
        return dense >= ratio * core_entries(kind.skeleton(module, n_cores=n_cores, max_bond=bond))

    full = kind.skeleton(module, n_cores=n_cores)
    low, high = 1, max(max(m.bond_dims, default=1) for m in kind.mpo_weights(full).values())
    if not reaches(low):
        return 1
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if reaches(middle) else (low, middle - 1)
    return low


def _errors(kind: LayerKind, dense: dict, layer: nn.Module) -> tuple[float, float]:
    """Measured relative error of the MPO weights and the reports' bound on it."""
    mpos = kind.mpo_weights(layer)
    error_sq = norm_sq = bound_sq = 0.0
    for key, matrix in dense.items():
        work = torch.promote_types(matrix.dtype, torch.float32)
        exact = matrix.detach().to(work)
        approx = mpos[key].matrix.detach().to(work)
        error_sq += float(torch.linalg.vector_norm(approx - exact)) ** 2
        norm_sq += float(torch.linalg.vector_norm(exact)) ** 2
        bound_sq += mpos[key].report.abs_error_bound ** 2
    if not norm_sq:
        return 0.0, 0.0
    error = math.sqrt(error_sq / norm_sq)
    if len(mpos) == 1:  # the report's own bound, relative to the norm it measured
        return error, next(iter(mpos.values())).report.rel_error_bound
    return error, math.sqrt(bound_sq / norm_sq)


def _row(group: Group, **fields: Any) -> LayerCompression:
    first = group.members[0]
    kinds = "+".join(dict.fromkeys(m.kind.name for m in group.members))
    before = num_params(m.module for m in group.members)
    shape = tuple(next(iter(first.kind.weights(first.module).values())).shape)
    fields.setdefault("params_after", before)
    return LayerCompression(
        name=group.names[0],
        aliases=tuple(group.names[1:]),
        kind=kinds,
        shape=shape,
        params_before=before,
        **fields,
    )


def _convert_job(name: str, module: nn.Module, options: dict) -> nn.Module:
    """The decomposition of one module of the kind ``name`` (what an executor runs: plain
    arguments, so it pickles); refit to the Gram matrices in ``options["calibration"]``
    (fit, held out, and for sequential calibration the corrected target weight) if given."""
    options = dict(options)
    grams = options.pop("calibration", None)
    kind = LAYER_KINDS[name]
    layer = kind.convert(module, options)
    if grams is not None:
        (weight,) = kind.matrices(module).values()
        target = grams[2] if len(grams) > 2 else weight
        rule = {"max_bond": options["max_bond"], "rtol": options["rtol"]}
        calibrate_linear(layer, target, grams[0], held_out=grams[1], **rule)
    return layer


def _run(jobs: list, labels: list[str], executor: Any, progress: bool) -> list:
    """``_convert_job`` of every job, through ``executor`` if given; results in order, the
    bar advancing as jobs finish."""
    run = Jobs(_convert_job, jobs, executor, labels)
    if not progress:
        for _ in run:
            pass
        return run.results
    with _progress_bar(run, "compress_model") as bar:
        for name in bar:
            bar.set_postfix_str(name, refresh=False)
    return run.results


def _progress_bar(items: Any, description: str) -> Any:
    """A tqdm bar over ``items``, one layer a step (``progress=True``)."""
    try:
        from tqdm import tqdm
    except ImportError as exc:  # pragma: no cover - tqdm comes with tnkit[torch]
        raise ImportError("progress: progress=True needs tqdm (pip install tnkit[torch])") from exc
    return tqdm(items, desc=description, unit="layer")


def compress_model(
    model: nn.Module,
    *,
    max_bond: int | None = None,
    rtol: float | None = None,
    target_ratio: float | None = None,
    n_cores: int = 4,
    include: str | None = None,
    exclude: str | None = None,
    progress: bool = False,
    executor: Any = None,
    calibration: Any = None,
    sequential: bool = False,
) -> CompressionReport:
    """Replace, in place, every dense layer of ``model`` whose MPO is smaller by that MPO.

    Converted: ``nn.Linear``, ``nn.Conv2d`` (``groups=1``, zero padding), ``nn.Embedding``,
    ``nn.LSTM`` (exact types, not subclasses) and Hugging Face GPT-2-style ``Conv1D``
    (a module of that class name with ``weight (in, out)`` and ``nf``; it becomes an
    ``MPOLinear`` of ``weight.T``, and ``densify_model`` gives a ``Conv1D`` back). Each is
    decomposed by its layer's ``from_*`` with ``n_cores`` and the truncation ``max_bond``/
    ``rtol`` (none: exact), and replaced only if the MPO has fewer weight entries than
    the dense weight. ``target_ratio`` instead picks, per layer, the largest ``max_bond``
    whose layout has ``dense entries / MPO entries >= target_ratio`` (bond 1 if none
    reaches it); ``rtol`` may then cut further.

    ``include``/``exclude``: regular expressions searched in qualified module names; a
    module is converted if one of its names matches ``include`` and none ``exclude``
    (a module with several names, or tied to others, counts all their names).
    A module at several names (shared) is converted once and the one new layer put at every
    name; modules that share one weight ``Parameter`` (an embedding tied to an ``lm_head``)
    become MPO layers sharing one ``cores`` list. Biases stay the same ``Parameter``
    objects; other references to the old modules (hooks, optimizers) are not updated.

    ``executor``: anything with ``.submit(fn, *args)`` returning futures (a
    ``concurrent.futures`` executor, a ``distributed.Client`` for a Dask cluster, whose
    workers need tnkit and torch); one decomposition per layer runs there, with the same
    results as serially, and a failing layer raises what a serial run raises.
    ``progress=True`` shows a tqdm bar on stderr that advances as layers finish; details go
    to the ``tnkit.torch.model`` logger.

    ``calibration``: an iterable of model inputs (each a tensor ``model(batch)``, a dict
    ``model(**batch)`` or a tuple ``model(*batch)``), run once without gradients before any
    change, with forward hooks (removed afterwards, also on error) gathering the input
    Gram matrix ``XᵀX`` of every layer that becomes an ``MPOLinear`` (``nn.Linear``,
    ``Conv1D``). Those layers are then fitted to their outputs rather than their weights
    (``MPOLinear.from_linear(..., inputs=)``, never worse than plain TT-SVD on the fitting
    rows); a seeded 20% of the rows is held out, and each row's ``output_error`` is the
    relative output error there. Memory: one ``in × in`` float64 matrix per layer and split,
    whatever the number of rows.

    ``sequential=True`` (with ``calibration``, no ``executor``) fits those layers one by one
    in the order the model calls them, each to the inputs it receives in the model as
    compressed so far, and to the original model's outputs on the same batches (the
    corrected target ``(W·Cᵀ + λW)·(Σ̃ + λ)⁻¹``: ``tnkit.torch.gathering``), so that later
    layers make up for what earlier ones cut instead of compounding it. It runs the batches
    through the original model (kept as a copy meanwhile: twice the memory) and the
    compressed one once per layer, each pass stopping at that layer; the batches are held
    in a list meanwhile. Each row's ``output_error`` is then the held-out error against the
    corrected target.

    Example:
        >>> import torch
        >>> from tnkit.torch import compress_model
        >>> model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 16),
        ...                             torch.nn.Linear(16, 16))
        >>> report = compress_model(model, max_bond=8)
        >>> kinds = [type(layer).__name__ for layer in model]
        >>> kinds
        ['MPOLinear', 'MPOLinear', 'Linear']
        >>> list(row.replaced for row in report), report.rows[2].note
        ([True, True, False], 'MPO 288 >= dense 256')
    """
    check_root(model, "compress_model")
    Truncation(max_bond=max_bond, rtol=rtol)
    n_cores = check_int(n_cores, "n_cores", minimum=2)
    if target_ratio is not None:
        if max_bond is not None:
            raise ValueError(
                f"target_ratio and max_bond: give one of them, got target_ratio={target_ratio!r} "
                f"and max_bond={max_bond!r}"
            )
        if isinstance(target_ratio, bool) or not isinstance(target_ratio, (int, float)):
            raise TypeError(f"target_ratio: expected a number, got {target_ratio!r}")
        if not (math.isfinite(target_ratio) and target_ratio > 1):
            raise ValueError(f"target_ratio: must be a finite number > 1, got {target_ratio!r}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress: expected a bool, got {progress!r}")
    check_executor(executor)
    check_calibration(calibration)
    if not isinstance(sequential, bool):
        raise TypeError(f"sequential: expected a bool, got {sequential!r}")
    if sequential and calibration is None:
        raise ValueError("sequential: needs calibration batches")
    if sequential and executor is not None:
        raise ValueError("sequential: fits layer by layer in order; it cannot use an executor")
    choose = _name_filter(include, exclude)

    params_before = num_params([model])
    rows: list[LayerCompression | None] = []
    jobs, todo, labels = [], [], []
    for group in convertible_groups(model):
        choice = choose(group.names)
        if choice is None:
            continue
        reason = group.reason or choice
        if reason:
            logger.debug("compress_model: %s kept (%s)", group.names[0], reason)
            rows.append(_row(group, replaced=False, note=reason))
            continue
        first = group.members[0]
        bond = max_bond
        if target_ratio is not None:
            bond = _ratio_bond(first.kind, first.module, n_cores, float(target_ratio))
        options = {"n_cores": n_cores, "max_bond": bond, "rtol": rtol}
        jobs.append((first.kind.name, first.module, options))
        todo.append((len(rows), group))
        labels.append(group.names[0])
        rows.append(None)
    if sequential:
        _sequential(model, jobs, todo, rows, calibration, progress)
    else:
        if calibration is not None:
            _calibrate_jobs(model, jobs, [group for _, group in todo], calibration)
        for (index, group), layer in zip(todo, _run(jobs, labels, executor, progress), strict=True):
            rows[index] = _replace_group(model, group, layer)
    report = CompressionReport(tuple(rows), params_before, num_params([model]))
    logger.info("compress_model: %r", report)
    return report


def _calibration_targets(jobs: list, groups: list[Group]) -> dict[str, tuple]:
    """name: (module, in_features) of the jobs whose layer becomes one ``MPOLinear`` (one
    module of one weight, not tied to others): the layers calibration refits."""
    targets = {}
    for (name, module, _), group in zip(jobs, groups, strict=True):
        kind = LAYER_KINDS[name]
        matrices = kind.matrices(module)
        if kind.mpo_type is MPOLinear and len(matrices) == 1 and len(group.members) == 1:
            targets[group.names[0]] = (module, int(next(iter(matrices.values())).shape[1]))
    return targets


def _calibrate_jobs(model: nn.Module, jobs: list, groups: list[Group], calibration: Any) -> None:
    """Add the gathered Gram matrices to the options of the jobs ``_calibration_targets``
    names."""
    gatherers = gather(model, _calibration_targets(jobs, groups), calibration)
    for (_, _, options), group in zip(jobs, groups, strict=True):
        gatherer = gatherers.get(group.names[0])
        grams = None if gatherer is None else gatherer.grams()
        if grams is not None:
            options["calibration"] = grams


def _sequential(
    model: nn.Module, jobs: list, todo: list, rows: list, calibration: Any, progress: bool
) -> None:
    """``compress_model``'s sequential calibration: the other layers first, as usual, then
    each target in execution order, fitted to its inputs in the model compressed so far and
    installed at once (``tnkit.torch.gathering``)."""
    batches = list(calibration)
    if not batches:
        raise ValueError("calibration: no batches (an empty iterable)")
    original = copy.deepcopy(model)  # before any change: the outputs every layer aims at
    targets = _calibration_targets(jobs, [group for _, group in todo])
    modules = {name: module for name, (module, _) in targets.items()}
    order = execution_order(model, modules, batches[0])
    by_name = {group.names[0]: k for k, (_, group) in enumerate(todo)}
    others = [k for k, (_, group) in enumerate(todo) if group.names[0] not in targets]
    steps = others + [by_name[name] for name in order]
    if progress:
        steps = _progress_bar(steps, "compress_model (sequential)")
    for k in steps:
        job, (index, group) = jobs[k], todo[k]
        name = group.names[0]
        if name in targets:
            module, in_features = targets[name]
            pairs = (original, original.get_submodule(name)), (model, module)
            grams = paired_grams(*pairs, name, in_features, batches)
            if grams.grams() is not None:
                (weight,) = LAYER_KINDS[job[0]].matrices(module).values()
                target = corrected_weight(weight, grams.fit, grams.cross)
                job[2]["calibration"] = (*grams.grams(), target)
        (layer,) = _run([job], [name], None, False)
        rows[index] = _replace_group(model, group, layer)


def _replace_group(model: nn.Module, group: Group, layer: nn.Module) -> LayerCompression:
    """Install ``layer`` (and layers tied to it) if it is smaller; the row saying so."""
    first = group.members[0]
    dense = first.kind.matrices(first.module)
    entries = sum(w.numel() for w in dense.values())
    mpo_entries = core_entries(layer)
    if mpo_entries >= entries:
        note = f"MPO {mpo_entries} >= dense {entries}"
        logger.debug("compress_model: %s kept (%s)", group.names[0], note)
        return _row(group, replaced=False, note=note)
    rel_error, bound = _errors(first.kind, dense, layer)
    bonds = [m.bond_dims for m in first.kind.mpo_weights(layer).values()]
    bond_dims = tuple(max(b) for b in zip(*bonds, strict=True))
    layers = [layer]
    for member in group.members[1:]:
        device = member.module.weight.device
        tied = member.kind.skeleton(
            member.module, in_dims=layer.in_dims, out_dims=layer.out_dims, bond_dims=layer.bond_dims
        )
        tied = tied.to_empty(device=device)
        tie(tied, layer)
        layers.append(tied)
    for member, new in zip(group.members, layers, strict=True):
        install(model, member.kind, member.module, new, member.names)
    calibrated = getattr(layer, "calibration", None)
    row = _row(
        group,
        replaced=True,
        params_after=num_params(layers),
        rel_error=rel_error,
        rel_error_bound=bound,
        bond_dims=bond_dims,
        output_error=None if calibrated is None else calibrated.held_out_error,
        calibration=calibrated,
    )
    logger.info(
        "compress_model: %s (%s %s) -> bonds %s, params %d -> %d, rel error %.3e <= %.3e",
        row.name, row.kind, row.shape, row.bond_dims, row.params_before, row.params_after,
        row.rel_error, row.rel_error_bound,
    )  # fmt: skip
    return row


# ====================================================================== densify_model


def densify_model(model: nn.Module) -> list[str]:
    """Replace, in place, every MPO layer of ``model`` by its dense module; the names replaced.

    ``MPOLinear`` -> ``nn.Linear`` (or the ``Conv1D`` it came from), ``MPOConv2d`` ->
    ``nn.Conv2d``, ``MPOEmbedding`` -> ``nn.Embedding``, ``MPOLSTM`` -> ``nn.LSTM``, with the
    same outputs. Shared modules stay shared, layers sharing ``cores`` get one shared dense
    weight (when its shapes agree), biases stay the same ``Parameter`` objects.

    Example:
        >>> import torch
        >>> from tnkit.torch import compress_model, densify_model
        >>> model = torch.nn.Sequential(torch.nn.Linear(64, 64))
        >>> _ = compress_model(model, max_bond=4)
        >>> densify_model(model), type(model[0]).__name__
        (['0'], 'Linear')
    """
    check_root(model, "densify_model")
    shared: dict[int, nn.Parameter] = {}
    replaced = []
    for module, names in list(module_names(model).values()):
        if not isinstance(module, MPO_LAYERS):
            continue
        kind = kind_of_mpo(module)
        dense = kind.densify(module)
        if kind.ties:
            weight = shared.setdefault(id(module.cores), dense.weight)
            if weight is not dense.weight and weight.shape == dense.weight.shape:
                dense.weight = weight
        for name in kind.carried(module):
            if getattr(module, name, None) is not None:
                setattr(dense, name, getattr(module, name))
        trainable = any(c.requires_grad for m in kind.mpo_weights(module).values() for c in m.cores)
        for weight in kind.weights(dense).values():
            weight.requires_grad_(trainable)
        dense.train(module.training)
        for name in names:
            set_module(model, name, dense)
        replaced += names
    return replaced
