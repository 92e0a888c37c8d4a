"""Turn measurements into ratios and write them: markdown tables, results.json, results.png.

Core workloads: speed-up = peer_time / tnkit_time (> 1: tnkit faster); floor ratio =
tnkit_time / lapack_time (> 1: tnkit slower than the bare NumPy/LAPACK loop). The other groups
carry their own ratios (``Row.ratios``), tabled per group. Also records the machine.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import CaseResult, GroupResult, Measurement


@dataclasses.dataclass
class Suite:
    """Everything one run of ``run.py`` measured, and where."""

    records: list[CaseResult]
    groups: list[GroupResult]
    machine: dict[str, Any]
    config: dict[str, Any]


PEERS = {"quimb": "quimb", "tensorly": "TensorLy", "tenpy": "TeNPy"}
DISTRIBUTIONS = [
    "tnkit",
    "numpy",
    "scipy",
    "numba",
    "quimb",
    "tensorly",
    "physics-tenpy",
    "torch",
    "tensorly-torch",
    "threadpoolctl",
    "matplotlib",
]


# -- machine --------------------------------------------------------------------------------------


def cpu_model() -> str:
    """CPU brand string: py-cpuinfo when installed, else /proc/cpuinfo, else platform."""
    try:
        import cpuinfo

        return str(cpuinfo.get_cpu_info().get("brand_raw", ""))
    except ImportError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def blas_info() -> list[dict[str, Any]]:
    """The BLAS/OpenMP libraries loaded now, with their thread counts (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return threadpool_info()


def numpy_blas() -> str | None:
    """The BLAS NumPy was built against, from its build configuration."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy before 1.25 has no mode="dicts"
        return None
    return f"{blas.get('name')} {blas.get('version')}"


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the box makes every timing noisy."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info() -> dict[str, Any]:
    """Everything needed to interpret the ratios: CPU, cores, BLAS, versions."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "blas": blas_info(),
        "numpy_blas": numpy_blas(),
        "versions": {name: _version(name) for name in DISTRIBUTIONS},
        "git": _git_revision(),
        "load_average_at_start": load_average(),
    }


# -- ratios ---------------------------------------------------------------------------------------


def _time(record: CaseResult, library: str) -> float | None:
    m = record.measurements.get(library)
    return m.time_s if m is not None and m.status == "ok" else None


def ratios(record: CaseResult) -> dict[str, float | None]:
    """speedup_vs_<peer> = peer / tnkit and tnkit_over_lapack = tnkit / lapack (None if missing)."""
    tnkit = _time(record, "tnkit")
    result: dict[str, float | None] = {}
    for peer in [*PEERS, "lapack"]:
        other = _time(record, peer)
        result[f"speedup_vs_{peer}"] = other / tnkit if tnkit and other else None
    lapack = _time(record, "lapack")
    result["tnkit_over_lapack"] = tnkit / lapack if tnkit and lapack else None
    return result


# -- markdown -------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _error_cell(m: Measurement | None) -> str:
    if m is None or m.status != "ok":
        return "n/a" if m is None else f"{m.status}"
    cell = _fmt(m.rel_error, ".2e")
    if m.bound is not None:
        cell += f" (bound {m.bound:.2e})"
    if m.bound_violated:
        cell += " **ABOVE BOUND**"
    return cell


def _ratio_cell(record: CaseResult, library: str, ratio: float | None) -> str:
    m = record.measurements.get(library)
    if m is None:
        return "—"
    if m.status != "ok":
        return "n/a" if m.status == "n/a" else "error"
    err = f" (err {m.rel_error:.1e})"
    return ("n/a" if ratio is None else f"{ratio:.2f}×") + err


def ratio_table(records: list[CaseResult]) -> str:
    """Main table: tnkit's error and its speed-up against each peer and the LAPACK floor."""
    head = ["case", "tnkit error", *(f"speed-up vs {label}" for label in PEERS.values())]
    head.append("tnkit / LAPACK floor")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for record in records:
        r = ratios(record)
        tnkit = record.measurements.get("tnkit")
        cells = [record.name, _error_cell(tnkit)]
        cells += [_ratio_cell(record, peer, r[f"speedup_vs_{peer}"]) for peer in PEERS]
        cells.append(_ratio_cell(record, "lapack", r["tnkit_over_lapack"]))
        if tnkit is not None and tnkit.status != "ok":
            cells[1] = f"tnkit {tnkit.status}: {tnkit.note}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detail_table(records: list[CaseResult]) -> str:
    """Every measurement: time (best of runs), runs, measured error, tnkit's bound, notes."""
    head = ["case", "library", "time (s)", "runs", "rel. error", "reported bound", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for record in records:
        for m in record.measurements.values():
            time_cell = _fmt(m.time_s, ".4g") if m.status == "ok" else m.status
            cells = [
                record.name,
                m.library,
                time_cell,
                str(m.repeats),
                _fmt(m.rel_error, ".3e"),
                _fmt(m.bound, ".3e") + (" **EXCEEDED**" if m.bound_violated else ""),
                m.note.replace("|", "/"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _blas_summary(machine: dict[str, Any]) -> str:
    parts = [
        f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture', '?')}, "
        f"{b.get('num_threads')} threads)"
        for b in machine["blas"]
    ]
    return "; ".join(parts) or "unknown"


def _load_line(machine: dict[str, Any], config: dict[str, Any]) -> str:
    start, end = machine["load_average_at_start"], config.get("load_average_at_end")
    line = f"- Load average (1/5/15 min): {start} at start, {end} at end"
    busiest = max((start or [0])[0], (end or [0])[0])
    if busiest > 0.5 * (machine["cpu_affinity"] or machine["cpu_count"] or 1):
        line += " — **the machine was busy with other work: timings are noisy**"
    return line


def machine_markdown(machine: dict[str, Any], config: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v or 'n/a'}" for k, v in machine["versions"].items())
    return "\n".join(
        [
            f"- CPU: {machine['cpu_model']} — {machine['cpu_count']} logical cores "
            f"({machine['cpu_affinity']} usable)",
            f"- BLAS: {_blas_summary(machine)}; NumPy built with {machine.get('numpy_blas')}",
            f"- OPENBLAS_CORETYPE: {machine['OPENBLAS_CORETYPE'] or 'unset'}",
            f"- Python {machine['python']} on {machine['platform']}; git {machine['git']}",
            f"- Versions: {versions}",
            _load_line(machine, config),
            f"- Mode: {config['mode']}; core: best of {config['repeats']} runs (fewer once "
            f"{config['budget_s']} s are spent), tnkit warmed up at full size, every library on "
            "a tiny instance; groups: their own repeats, warm-ups and interleaving; BLAS threads "
            + (f"capped at {config['blas_threads']}" if config.get("blas_threads") else "as found")
            + f"; wall time {config['wall_s']} s",
        ]
    )


def _time_cell(seconds: float | None) -> str:
    if seconds is None or not seconds < float("inf"):
        return "—"
    return f"{seconds * 1e3:.3g} ms" if seconds < 0.1 else f"{seconds:.3g} s"


def _ratio_keys(group: GroupResult) -> list[str]:
    return list(dict.fromkeys(key for row in group.rows for key in row.ratios))


def group_table(group: GroupResult) -> str:
    """A group's rows: time, error and bound where measured, its ratios, notes."""
    keys = _ratio_keys(group)
    has_error = any(row.rel_error is not None for row in group.rows)
    head = ["case", "library", "method", "time"]
    head += ["rel. error", "reported bound"] if has_error else []
    head += [f"speed-up {key}" if key.startswith("vs") else key for key in keys] + ["note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in group.rows:
        cells = [row.case, row.library, row.method, _time_cell(row.time_s)]
        if has_error:
            cells += [_fmt(row.rel_error, ".3e"), _fmt(row.bound, ".2e")]
        cells += [
            ""
            if key not in row.ratios
            else _fmt(row.ratios[key], ".2f") + "×" * bool(row.ratios[key])
            for key in keys
        ]
        cells.append(row.note.replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def group_markdown(group: GroupResult) -> str:
    parts = [f"## {group.name}"]
    if group.description:
        parts.append(group.description + ".")
    if group.rows:
        parts.append(group_table(group))
    if group.notes:
        parts.append("\n".join(f"- {note}" for note in group.notes))
    return "\n\n".join(parts)


def markdown(suite: Suite) -> str:
    records, groups = suite.records, suite.groups
    parts = ["# tnkit benchmarks", machine_markdown(suite.machine, suite.config)]
    if records:
        notes = sorted({f"- {r.workload}: error = {r.error_note}" for r in records})
        parts += [
            "## core: ratios (speed-up = peer time / tnkit time; floor = tnkit time / LAPACK time)",
            ratio_table(records),
        ]
    parts += [group_markdown(group) for group in groups]
    if records:
        parts += [
            "## core: measurements (times are for this machine only; compare ratios)",
            detail_table(records),
            "## core: error measures\n" + "\n".join(notes),
        ]
    return "\n\n".join(parts)


# -- files ----------------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (a run that did not happen) as None: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def to_json(suite: Suite) -> str:
    cases = [{**dataclasses.asdict(record), "ratios": ratios(record)} for record in suite.records]
    payload = {
        "machine": suite.machine,
        "config": suite.config,
        "cases": cases,
        "groups": [dataclasses.asdict(group) for group in suite.groups],
    }
    return json.dumps(_finite(payload), indent=2, default=str, allow_nan=False)


def _panels(
    records: list[CaseResult], groups: list[GroupResult]
) -> list[tuple[str, list[str], dict[str, list[float | None]]]]:
    """(title, bar labels, {series: values}) per plot panel: the core speed-ups, then each
    group's ratios of the rows that have any."""
    panels = []
    if records:
        table = [ratios(r) for r in records]
        series = {**PEERS, "lapack": "LAPACK floor"}
        values = {
            label: [row[f"speedup_vs_{key}"] for row in table] for key, label in series.items()
        }
        panels.append(("core", [r.name for r in records], values))
    for group in groups:
        rows = [row for row in group.rows if any(row.ratios.values())]
        keys = [key for key in _ratio_keys(group) if key.startswith("vs")]
        if rows and keys:
            labels = [f"{row.case} {row.method}" for row in rows]
            panels.append(
                (group.name, labels, {k: [row.ratios.get(k) for row in rows] for k in keys})
            )
    return [p for p in panels if any(v for values in p[2].values() for v in values)]


def plot(records: list[CaseResult], groups: list[GroupResult], path: Path) -> str | None:
    """Log-scale grouped bars of tnkit's speed-ups, one panel per group; a note if skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: results.png skipped"
    panels = _panels(records, groups)
    if not panels:
        return "no tnkit timings to plot: results.png skipped"
    heights = [max(3.0, 0.25 * len(labels) + 1.5) for _, labels, _ in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, sum(heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, (title, labels, series) in zip(axes[:, 0], panels, strict=True):
        height = 0.8 / len(series)
        for i, (label, values) in enumerate(series.items()):
            ys = [k + (i - (len(series) - 1) / 2) * height for k, v in enumerate(values) if v]
            ax.barh(ys, [v for v in values if v], height, label=label)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{title}: speed-up of tnkit (other time / tnkit time)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write(suite: Suite, out: Path) -> str:
    """Write results.json, results.md and results.png under ``out``; return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    png = out / "results.png"
    png.unlink(missing_ok=True)
    plot_note = plot(suite.records, suite.groups, png)
    suite.config["plot"] = plot_note or "results.png"
    text = markdown(suite)
    if plot_note:
        text += f"\n\nNote: {plot_note}."
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(to_json(suite) + "\n")
    return text
