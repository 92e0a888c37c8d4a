"""Whole models: every dense layer to an MPO layer and back, and the layouts to rebuild them.

Edits models in place, as torch's own module utilities do; no math of its own (the
decompositions are the layers' ``from_*`` conversions and ``tn.MPO.compress``).
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import check_int
from .._executor import Jobs, check_executor
from ..truncation import Truncation
from ._common import MPOMatrix, convert
from .conv import MPOConv2d
from .embedding import MPOEmbedding
from .linear import MPOLinear
from .lstm import MPOLSTM

__all__ = [
    "CompressionReport",
    "LayerCompression",
    "apply_structure",
    "compress_model",
    "densify_model",
    "mpo_structure",
]

logger = logging.getLogger(__name__)

STRUCTURE_FORMAT = "tnkit.mpo_structure"
_STRUCTURE_VERSION = 1
MPO_LAYERS = (MPOLinear, MPOConv2d, MPOEmbedding, MPOLSTM)


# ====================================================================== reports


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> str:
    """A plain-text table, columns padded to their widest cell; ``align`` has one ``<``
    (left) or ``>`` (right) per column."""
    cells = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = zip(row, widths, align, strict=True)
        return "  ".join(c.ljust(w) if a == "<" else c.rjust(w) for c, w, a in parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


@dataclass(frozen=True)
class LayerCompression:
    """One row of a [CompressionReport][tnkit.torch.CompressionReport]: one module (or one
    group of modules sharing a weight) and what ``compress_model`` did to it.

    Attributes:
        name: the first qualified name of the module.
        aliases: its other names (a shared module, or modules tied to the same weight).
        kind: ``"Linear"``, ``"Conv1D"``, ``"Conv2d"``, ``"Embedding"``, ``"LSTM"``, or
            kinds joined by ``+`` for tied modules (``"Embedding+Linear"``).
        shape: the shape of the (first) dense weight.
        params_before: parameters of the module(s), weights and biases, counted once.
        params_after: the same after the call (``params_before`` if not replaced).
        replaced: whether the module(s) are now MPO layers.
        rel_error: measured ``‖W̃ − W‖_F / ‖W‖_F`` (over all weights of the row), or None.
        rel_error_bound: the truncation reports' rigorous bound on it, or None.
        bond_dims: the MPO's bonds (for an LSTM the largest over its weights).
        note: why a module was kept.
    """

    name: str
    aliases: tuple[str, ...]
    kind: str
    shape: tuple[int, ...]
    params_before: int
    params_after: int
    replaced: bool
    rel_error: float | None = None
    rel_error_bound: float | None = None
    bond_dims: tuple[int, ...] = ()
    note: str = ""


@dataclass(frozen=True, repr=False)
class CompressionReport(Sequence):
    """What [compress_model][tnkit.torch.compress_model] did: a sequence of
    [LayerCompression][tnkit.torch.model.LayerCompression] rows (one per convertible module
    it considered) and totals; ``str(report)`` is a table.

    ``params_before``/``params_after`` sum the rows; ``model_params_before``/``after``
    count every parameter of the model once.
    """

    rows: tuple[LayerCompression, ...]
    model_params_before: int
    model_params_after: int

    def __getitem__(self, index: Any) -> Any:
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def replaced(self) -> tuple[LayerCompression, ...]:
        """The rows whose modules were replaced by MPO layers."""
        return tuple(r for r in self.rows if r.replaced)

    @property
    def params_before(self) -> int:
        return sum(r.params_before for r in self.rows)

    @property
    def params_after(self) -> int:
        return sum(r.params_after for r in self.rows)

    @property
    def compression_ratio(self) -> float:
        """``params_before / params_after`` of the rows."""
        return self.params_before / self.params_after if self.params_after else math.inf

    def __repr__(self) -> str:
        return (
            f"CompressionReport({len(self.replaced)} of {len(self)} layers replaced, params "
            f"{self.params_before} -> {self.params_after}, model {self.model_params_before} "
            f"-> {self.model_params_after})"
        )

    def __str__(self) -> str:
        headers = ("layer", "kind", "shape", "before", "after", "rel error", "bound", "bonds")
        body = []
        for r in self.rows:
            name = r.name + (f" (= {', '.join(r.aliases)})" if r.aliases else "")
            bonds = ",".join(map(str, r.bond_dims)) if r.replaced else f"kept: {r.note}"
            body.append(
                (
                    name,
                    r.kind,
                    "x".join(map(str, r.shape)),
                    str(r.params_before),
                    str(r.params_after),
                    _fmt(r.rel_error),
                    _fmt(r.rel_error_bound),
                    bonds,
                )
            )
        total = (
            f"layers: {self.params_before} -> {self.params_after} parameters "
            f"({self.compression_ratio:.3g}x), {len(self.replaced)} of {len(self)} replaced; "
            f"model: {self.model_params_before} -> {self.model_params_after}"
        )
        return format_table(headers, body, "<<>>>>><") + "\n" + total


# ====================================================================== module kinds
#
# A "kind" is a dense module type compress_model converts. Per kind: its dense weight
# matrices (out, in), an MPO skeleton on the meta device (layout only), the conversion, and
# the parameters (biases) carried over unchanged.


def _kind_of(module: nn.Module) -> str | None:
    """The kind of a dense module (exact types: subclasses may change ``forward``)."""
    kinds = {nn.Linear: "Linear", nn.Conv2d: "Conv2d", nn.Embedding: "Embedding", nn.LSTM: "LSTM"}
    kind = kinds.get(type(module))
    if kind is None and type(module).__name__ == "Conv1D":
        weight, nf = getattr(module, "weight", None), getattr(module, "nf", None)
        # Hugging Face's GPT-2 Conv1D: y = x @ weight + bias, weight (in, out), nf = out.
        if isinstance(weight, torch.Tensor) and weight.ndim == 2 and weight.shape[1] == nf:
            kind = "Conv1D"
    return kind


def _kind_of_mpo(layer: nn.Module) -> str:
    if isinstance(layer, MPOLinear):
        return "Conv1D" if getattr(layer, "_dense_type", None) is not None else "Linear"
    names = {MPOConv2d: "Conv2d", MPOEmbedding: "Embedding", MPOLSTM: "LSTM"}
    return next(name for cls, name in names.items() if isinstance(layer, cls))


def _unsupported(kind: str, module: nn.Module) -> str:
    """Why a module of a known kind cannot be converted ('' if it can)."""
    if kind == "Conv2d" and (module.groups != 1 or module.padding_mode != "zeros"):
        return f"groups={module.groups}, padding_mode={module.padding_mode!r} unsupported"
    if kind == "Embedding":
        for name in ("max_norm", "scale_grad_by_freq", "sparse"):
            if getattr(module, name):
                return f"{name}={getattr(module, name)!r} unsupported"
    if kind == "LSTM" and module.proj_size:
        return f"proj_size={module.proj_size} unsupported"
    return ""


def _dense_weights(kind: str, module: nn.Module) -> dict[str, nn.Parameter]:
    """The weight parameters, keyed as ``_mpo_matrices`` keys the MPOs."""
    if kind == "LSTM":
        names = [n for n in module._flat_weights_names if n.startswith("weight_")]
        return {name: getattr(module, name) for name in names}
    return {"": module.weight}


def _dense_matrices(kind: str, module: nn.Module) -> dict[str, torch.Tensor]:
    """The weights as matrices ``(out, in)``, keyed as ``_mpo_matrices`` keys the MPOs."""
    if kind == "LSTM":
        return _dense_weights(kind, module)
    weight = module.weight
    if kind == "Conv1D":
        return {"": weight.mT}
    return {"": weight.reshape(weight.shape[0], -1)}


def _mpo_matrices(layer: nn.Module) -> dict[str, MPOMatrix]:
    return layer.mpo_weights() if isinstance(layer, MPOLSTM) else {"": layer}


def _carried(kind: str, module: nn.Module) -> list[str]:
    """Parameters kept as they are (the same ``Parameter`` objects): the biases."""
    if kind == "LSTM":
        return [n for n, _ in module.named_parameters(recurse=False) if n.startswith("bias_")]
    return [] if kind == "Embedding" else ["bias"]


def _skeleton(kind: str, module: nn.Module, **layout: Any) -> nn.Module:
    """An MPO layer for ``module`` on the meta device: the layout (``n_cores``,
    ``max_bond``, dims, bonds) without values."""
    matrices = _dense_matrices(kind, module)
    factory = {"device": "meta", "dtype": next(iter(matrices.values())).dtype}
    m = module
    if kind in ("Linear", "Conv1D"):
        rows, cols = matrices[""].shape
        return MPOLinear(cols, rows, bias=m.bias is not None, **factory, **layout)
    if kind == "Conv2d":
        geometry = (m.kernel_size, m.stride, m.padding, m.dilation)
        bias = m.bias is not None
        return MPOConv2d(m.in_channels, m.out_channels, *geometry, bias=bias, **factory, **layout)
    if kind == "Embedding":
        return MPOEmbedding(m.num_embeddings, m.embedding_dim, m.padding_idx, **factory, **layout)
    sizes = (m.input_size, m.hidden_size, m.num_layers, m.bias, m.batch_first, m.dropout)
    return MPOLSTM(*sizes, m.bidirectional, **factory, **layout)


def _convert_job(kind: str, module: nn.Module, options: dict) -> nn.Module:
    """The decomposition of one module (what an executor runs)."""
    if kind == "Linear":
        return MPOLinear.from_linear(module, **options)
    if kind == "Conv2d":
        return MPOConv2d.from_conv(module, **options)
    if kind == "Embedding":
        return MPOEmbedding.from_embedding(module, **options)
    if kind == "LSTM":
        return MPOLSTM.from_lstm(module, **options)
    cols, rows = module.weight.shape
    build = functools.partial(MPOLinear, cols, rows, bias=module.bias is not None)
    return convert(build, module.weight.mT, **options)


def num_params(modules: Iterable[nn.Module]) -> int:
    """Parameters of ``modules``, each tensor counted once."""
    seen = {id(p): p.numel() for m in modules for p in m.parameters()}
    return sum(seen.values())


def _core_entries(layer: nn.Module) -> int:
    return sum(c.numel() for m in _mpo_matrices(layer).values() for c in m.cores)


# ====================================================================== model traversal


@dataclass
class _Member:
    kind: str
    module: nn.Module
    names: list[str]


@dataclass
class _Group:
    """Modules converted together: one module (maybe under several names), or modules
    sharing one weight ``Parameter`` (tied), which get MPO layers sharing one ``cores``."""

    members: list[_Member]
    reason: str = ""
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = [n for m in self.members for n in m.names]


def _module_names(model: nn.Module) -> dict[int, tuple[nn.Module, list[str]]]:
    """``id(module) -> (module, all its qualified names)`` in traversal order."""
    entries: dict[int, tuple[nn.Module, list[str]]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        entries.setdefault(id(module), (module, []))[1].append(name)
    return entries


def check_model(model: Any) -> None:
    """A TypeError naming ``model`` unless it is an ``nn.Module``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")


def _check_root(model: Any, what: str) -> None:
    check_model(model)
    if isinstance(model, MPO_LAYERS) or _kind_of(model):
        raise ValueError(
            f"model: the model itself is a {type(model).__name__}; {what} replaces submodules "
            "in place, so wrap it (torch.nn.Sequential(model)) or convert it directly"
        )


def _groups(model: nn.Module) -> list[_Group]:
    """Convertible modules grouped by shared weights, with the reason a group cannot be
    converted (unsupported options, or a parameter used by a module outside the group)."""
    entries = _module_names(model)
    owners: dict[int, set[int]] = {}
    for key, (module, _) in entries.items():
        for param in module.parameters(recurse=False):
            owners.setdefault(id(param), set()).add(key)
    groups: dict[int, list[int]] = {}
    for key, (module, names) in entries.items():
        kind = _kind_of(module)
        if kind is None or names == [""]:
            continue
        shared = key if kind == "LSTM" else id(module.weight)
        groups.setdefault(shared, []).append(key)
    result = []
    for keys in groups.values():
        members = [_Member(_kind_of(entries[k][0]), *entries[k]) for k in keys]
        reason = next((r for m in members if (r := _unsupported(m.kind, m.module))), "")
        params = {id(p) for m in members for p in m.module.parameters(recurse=False)}
        if not reason and any(owners[p] - set(keys) for p in params):
            reason = "shares a parameter with a module that is not converted"
        if not reason and len({m.kind == "Conv1D" for m in members}) > 1:
            reason = "weight tied to a Conv1D, which uses it transposed"
        result.append(_Group(members, reason))
    return result


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent), attr, module)


def _install(model: nn.Module, kind: str, old: nn.Module, new: nn.Module, names: list) -> None:
    """Put ``new`` in place of ``old`` at every name, with ``old``'s biases (the same
    ``Parameter`` objects), training mode and frozen weights."""
    for name in _carried(kind, old):
        if getattr(old, name, None) is not None:
            setattr(new, name, getattr(old, name))
    frozen = not any(w.requires_grad for w in _dense_weights(kind, old).values())
    if kind == "Conv1D":
        new._dense_type = type(old)
    for matrix in _mpo_matrices(new).values():
        for core in matrix.cores:
            core.requires_grad_(not frozen)
    new.train(old.training)
    for name in names:
        _set_module(model, name, new)


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


# ====================================================================== compress_model


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


def _ratio_bond(kind: str, module: nn.Module, n_cores: int, ratio: float) -> int:
    """The largest ``max_bond`` whose layout has ``dense / MPO parameters >= ratio``
    (1 if none has), counted on meta layouts by bisection."""
    dense = sum(w.numel() for w in _dense_matrices(kind, module).values())

    def reaches(bond: int) -> bool:
        return dense >= ratio * _core_entries(
            _skeleton(kind, module, n_cores=n_cores, max_bond=bond)
        )

    full = _skeleton(kind, module, n_cores=n_cores)
    low, high = 1, max(max(m.bond_dims, default=1) for m in _mpo_matrices(full).values())
    if not reaches(low):
        return 1
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if reaches(middle) else (low, middle - 1)
    return low


def _errors(dense: dict, layer: nn.Module) -> tuple[float, float]:
    """Measured relative error of the MPO weights and the reports' bound on it."""
    mpos = _mpo_matrices(layer)
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


def _row(group: _Group, **fields: Any) -> LayerCompression:
    first = group.members[0]
    kinds = "+".join(dict.fromkeys(m.kind for m in group.members))
    before = num_params(m.module for m in group.members)
    shape = tuple(next(iter(_dense_weights(first.kind, first.module).values())).shape)
    fields.setdefault("params_after", before)
    return LayerCompression(
        name=group.names[0],
        aliases=tuple(group.names[1:]),
        kind=kinds,
        shape=shape,
        params_before=before,
        **fields,
    )


def _run(jobs: list, labels: list[str], executor: Any, progress: bool) -> list:
    """``_convert_job`` of every job, through ``executor`` if given; results in order, the
    bar advancing as jobs finish."""
    run = Jobs(_convert_job, jobs, executor, labels)
    if not progress:
        for _ in run:
            pass
        return run.results
    try:
        from tqdm import tqdm
    except ImportError as exc:  # pragma: no cover - tqdm comes with tnkit[torch]
        raise ImportError("progress: progress=True needs tqdm (pip install tnkit[torch])") from exc
    with tqdm(run, desc="compress_model", unit="layer") as bar:
        for name in bar:
            bar.set_postfix_str(name, refresh=False)
    return run.results


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
    _check_root(model, "compress_model")
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
    choose = _name_filter(include, exclude)

    params_before = num_params([model])
    rows: list[LayerCompression | None] = []
    jobs, todo, labels = [], [], []
    for group in _groups(model):
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
        jobs.append(
            (first.kind, first.module, {"n_cores": n_cores, "max_bond": bond, "rtol": rtol})
        )
        todo.append((len(rows), group))
        labels.append(group.names[0])
        rows.append(None)
    for (index, group), layer in zip(todo, _run(jobs, labels, executor, progress), strict=True):
        rows[index] = _replace_group(model, group, layer)
    report = CompressionReport(tuple(rows), params_before, num_params([model]))
    logger.info("compress_model: %r", report)
    return report


def _replace_group(model: nn.Module, group: _Group, layer: nn.Module) -> LayerCompression:
    """Install ``layer`` (and layers tied to it) if it is smaller; the row saying so."""
    first = group.members[0]
    dense = _dense_matrices(first.kind, first.module)
    entries = sum(w.numel() for w in dense.values())
    mpo_entries = _core_entries(layer)
    if mpo_entries >= entries:
        note = f"MPO {mpo_entries} >= dense {entries}"
        logger.debug("compress_model: %s kept (%s)", group.names[0], note)
        return _row(group, replaced=False, note=note)
    rel_error, bound = _errors(dense, layer)
    bonds = [m.bond_dims for m in _mpo_matrices(layer).values()]
    bond_dims = tuple(max(b) for b in zip(*bonds, strict=True))
    layers = [layer]
    for member in group.members[1:]:
        device = member.module.weight.device
        tied = _skeleton(
            member.kind,
            member.module,
            in_dims=layer.in_dims,
            out_dims=layer.out_dims,
            bond_dims=layer.bond_dims,
        )
        tied = tied.to_empty(device=device)
        tie(tied, layer)
        layers.append(tied)
    for member, new in zip(group.members, layers, strict=True):
        _install(model, member.kind, member.module, new, member.names)
    row = _row(
        group,
        replaced=True,
        params_after=num_params(layers),
        rel_error=rel_error,
        rel_error_bound=bound,
        bond_dims=bond_dims,
    )
    logger.info(
        "compress_model: %s (%s %s) -> bonds %s, params %d -> %d, rel error %.3e <= %.3e",
        row.name, row.kind, row.shape, row.bond_dims, row.params_before, row.params_after,
        row.rel_error, row.rel_error_bound,
    )  # fmt: skip
    return row


# ====================================================================== densify_model


def _to_dense(layer: nn.Module) -> nn.Module:
    if isinstance(layer, MPOLSTM):
        return layer.to_lstm()
    if isinstance(layer, MPOConv2d):
        return layer.to_conv()
    if isinstance(layer, MPOEmbedding):
        return layer.to_embedding()
    dense_type = getattr(layer, "_dense_type", None)
    if dense_type is None:
        return layer.to_linear()
    weight = layer.weight.detach().mT
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
    _check_root(model, "densify_model")
    shared: dict[int, nn.Parameter] = {}
    replaced = []
    for module, names in list(_module_names(model).values()):
        if not isinstance(module, MPO_LAYERS):
            continue
        kind = _kind_of_mpo(module)
        dense = _to_dense(module)
        if kind != "LSTM":
            weight = shared.setdefault(id(module.cores), dense.weight)
            if weight is not dense.weight and weight.shape == dense.weight.shape:
                dense.weight = weight
        for name in _carried(kind, module):
            if getattr(module, name, None) is not None:
                setattr(dense, name, getattr(module, name))
        trainable = any(c.requires_grad for m in _mpo_matrices(module).values() for c in m.cores)
        for weight in _dense_weights("LSTM" if kind == "LSTM" else "", dense).values():
            weight.requires_grad_(trainable)
        dense.train(module.training)
        for name in names:
            _set_module(model, name, dense)
        replaced += names
    return replaced


# ====================================================================== structure


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
    for module, names in _module_names(model).values():
        if not isinstance(module, MPO_LAYERS):
            continue
        kind = _kind_of_mpo(module)
        weights = {key: m.get_extra_state() for key, m in _mpo_matrices(module).items()}
        entry = {"names": names, "kind": kind, "weights": weights}
        if kind != "LSTM":
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
            names, kind, weights = entry["names"], entry["kind"], entry["weights"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"structure: malformed layer entry {_short(entry)}") from exc
        module = _lookup(model, names[0])
        if any(_lookup(model, name) is not module for name in names[1:]):
            raise ValueError(f"structure: {names} are not one shared module in this model")
        if _kind_of(module) != kind:
            raise ValueError(
                f"structure: {names[0]!r} is a {type(module).__name__} here, the structure "
                f"records a {kind}"
            )
        first = next(iter(weights.values()))
        layer = _skeleton(kind, module, n_cores=len(first["in_dims"]))
        matrices = _mpo_matrices(layer)
        if set(weights) != set(matrices):
            raise ValueError(f"structure: {names[0]!r} records weights {sorted(weights)}")
        for key, matrix in matrices.items():
            matrix.set_extra_state(weights[key])
        device = next(iter(_dense_matrices(kind, module).values())).device
        layer = layer.to_empty(device=device)
        layer.reset_parameters()
        if "cores_of" in entry:
            if entry["cores_of"] not in built:
                raise ValueError(f"structure: {names[0]!r} ties to unknown {entry['cores_of']!r}")
            tie(layer, built[entry["cores_of"]])
        _install(model, kind, module, layer, names)
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
