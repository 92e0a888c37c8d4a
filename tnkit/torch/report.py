"""The reports of the model-level functions: per-layer rows, totals and plain-text tables.

Plain data (frozen dataclasses) and formatting; nothing here touches a model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CompressionReport", "LayerCompression", "format_table"]


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
        output_error: with ``calibration``, the relative output error
            ‖(W − W̃)Xᵀ‖_F / ‖W Xᵀ‖_F on the held-out calibration rows (bias excluded: it
            is kept exactly), or None.
        calibration: the layer's ``tnkit.calibration.CalibrationReport``
            (the candidates tried, plain TT-SVD's held-out error), or None.
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
    output_error: float | None = None
    calibration: Any = None


@dataclass(frozen=True, repr=False)
class CompressionReport(Sequence):
    """What [compress_model][tnkit.torch.compress_model] did: a sequence of
    [LayerCompression][tnkit.torch.report.LayerCompression] rows (one per convertible module
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
        headers = ["layer", "kind", "shape", "before", "after", "rel error", "bound", "bonds"]
        calibrated = any(r.calibration is not None for r in self.rows)
        if calibrated:  # the output error beside the weight error
            headers.insert(7, "out error")
        body = []
        for r in self.rows:
            name = r.name + (f" (= {', '.join(r.aliases)})" if r.aliases else "")
            bonds = ",".join(map(str, r.bond_dims)) if r.replaced else f"kept: {r.note}"
            cells = [
                name,
                r.kind,
                "x".join(map(str, r.shape)),
                str(r.params_before),
                str(r.params_after),
                _fmt(r.rel_error),
                _fmt(r.rel_error_bound),
                bonds,
            ]
            if calibrated:
                cells.insert(7, _fmt(r.output_error))
            body.append(cells)
        total = (
            f"layers: {self.params_before} -> {self.params_after} parameters "
            f"({self.compression_ratio:.3g}x), {len(self.replaced)} of {len(self)} replaced; "
            f"model: {self.model_params_before} -> {self.model_params_after}"
        )
        align = "<<>>>>>" + (">" if calibrated else "") + "<"
        return format_table(headers, body, align) + "\n" + total
