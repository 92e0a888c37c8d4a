"""Turn measurements into ratios and write them: markdown table, results.json, results.png.

Ratios: speed-up = peer_time / tnkit_time (> 1: tnkit faster); floor ratio = tnkit_time /
lapack_time (> 1: tnkit slower than the bare NumPy/LAPACK loop). Also records the machine.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from harness import CaseResult, Measurement

PEERS = {"quimb": "quimb", "tensorly": "TensorLy", "tenpy": "TeNPy"}
DISTRIBUTIONS = ["tnkit", "numpy", "scipy", "numba", "quimb", "tensorly", "physics-tenpy"]


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


def _blas_info() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return threadpool_info()


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
        "blas": _blas_info(),
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
            f"- BLAS: {_blas_summary(machine)}",
            f"- OPENBLAS_CORETYPE: {machine['OPENBLAS_CORETYPE'] or 'unset'}",
            f"- Python {machine['python']} on {machine['platform']}; git {machine['git']}",
            f"- Versions: {versions}",
            _load_line(machine, config),
            f"- Mode: {'quick' if config['quick'] else 'full'}; best of {config['repeats']} "
            f"runs (fewer once {config['budget_s']} s are spent); tnkit warmed up at full size, "
            "every library on a tiny instance; BLAS threads "
            + (f"capped at {config['blas_threads']}" if config.get("blas_threads") else "as found"),
        ]
    )


def markdown(records: list[CaseResult], machine: dict[str, Any], config: dict[str, Any]) -> str:
    notes = sorted({f"- {r.workload}: error = {r.error_note}" for r in records})
    return "\n\n".join(
        [
            "# tnkit benchmarks",
            machine_markdown(machine, config),
            "## Ratios (speed-up = peer time / tnkit time; floor = tnkit time / LAPACK time)",
            ratio_table(records),
            "## Measurements (times are for this machine only; compare ratios)",
            detail_table(records),
            "## Error measures\n" + "\n".join(notes),
        ]
    )


# -- files ----------------------------------------------------------------------------------------


def to_json(records: list[CaseResult], machine: dict[str, Any], config: dict[str, Any]) -> str:
    cases = [{**dataclasses.asdict(record), "ratios": ratios(record)} for record in records]
    return json.dumps({"machine": machine, "config": config, "cases": cases}, indent=2, default=str)


def plot(records: list[CaseResult], path: Path) -> bool:
    """Log-scale grouped bars of tnkit's speed-up against each peer and the floor."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed: results.png skipped", stacklevel=2)
        return False
    series = {**PEERS, "lapack": "LAPACK floor"}
    table = [ratios(r) for r in records]
    if not any(row[f"speedup_vs_{key}"] for row in table for key in series):
        warnings.warn("no tnkit timings to plot: results.png skipped", stacklevel=2)
        return False
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(records)), 5))
    for i, (key, label) in enumerate(series.items()):
        values = [row[f"speedup_vs_{key}"] for row in table]
        xs = [k + (i - (len(series) - 1) / 2) * width for k, v in enumerate(values) if v]
        ax.bar(xs, [v for v in values if v], width, label=label)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("speed-up of tnkit (other time / tnkit time)")
    ax.set_xticks(range(len(records)), [r.name for r in records], rotation=20, ha="right")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write(
    records: list[CaseResult], machine: dict[str, Any], config: dict[str, Any], out: Path
) -> str:
    """Write results.json, results.md and results.png under ``out``; return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(records, machine, config)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(to_json(records, machine, config) + "\n")
    plot(records, out / "results.png")
    return text
