"""Smoke test of the benchmark entry point: ``benchmarks/run.py --smoke`` (smallest sizes, one
run each) writes well-formed results.json and results.md. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
GROUPS = ["long_chains", "apply", "mpo_compress", "torch_linear"]

pytestmark = pytest.mark.skipif(not RUN.is_file(), reason="benchmarks/ is not in this checkout")


def run_smoke(out: Path, *only: str) -> tuple[dict, str]:
    args = [sys.executable, str(RUN), "--smoke", "--out", str(out)]
    if only:
        args += ["--only", ",".join(only)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())  # strict JSON: no NaN
    text = (out / "results.md").read_text()
    assert text.strip() in done.stdout  # the markdown is also printed
    return results, text


def check_tables(text: str) -> None:
    """Every markdown table has a separator row and the same number of cells on each row."""
    lines = text.splitlines()
    tables: list[list[str]] = []
    for prev, line in zip(["", *lines], lines, strict=False):
        if line.startswith("|"):
            if not prev.startswith("|"):
                tables.append([])
            tables[-1].append(line)
    assert tables
    for table in tables:
        assert len(table) >= 3, table
        assert set(table[1]) <= set("|-:"), table
        widths = {row.count("|") for row in table}
        assert len(widths) == 1, table


def check_machine(results: dict) -> None:
    machine = results["machine"]
    for key in ("cpu_model", "cpu_count", "blas", "versions", "python", "platform"):
        assert key in machine
    assert machine["versions"]["tnkit"]
    assert results["config"]["mode"] == "smoke"


def test_smoke_core_and_one_group(tmp_path: Path) -> None:
    results, text = run_smoke(tmp_path, "overlap", "mpo_compress")
    check_machine(results)
    assert [c["workload"] for c in results["cases"]] == ["overlap"]
    case = results["cases"][0]
    assert case["measurements"]["tnkit"]["status"] == "ok"
    assert case["measurements"]["tnkit"]["rel_error"] < 1e-10
    assert "speedup_vs_lapack" in case["ratios"]
    (group,) = results["groups"]
    assert group["name"] == "mpo_compress"
    assert {row["library"] for row in group["rows"]} >= {"tnkit"}
    assert all(row["time_s"] > 0 for row in group["rows"])
    assert text.startswith("# tnkit benchmarks")
    assert "## core: ratios" in text and "## mpo_compress" in text
    check_tables(text)


@pytest.mark.slow
def test_smoke_everything(tmp_path: Path) -> None:
    results, text = run_smoke(tmp_path)
    check_machine(results)
    workloads = {c["workload"] for c in results["cases"]}
    assert workloads == {"tt_svd", "from_matrix", "canonicalize", "compress", "overlap"}
    assert [g["name"] for g in results["groups"]] == GROUPS
    for group in results["groups"]:
        assert "error" not in group["config"], group["notes"]
        if group["config"].get("skipped"):  # torch missing: a note, never a crash
            assert group["notes"]
            continue
        assert group["rows"], group["name"]
        assert any(row["library"] == "tnkit" for row in group["rows"])
        for row in group["rows"]:
            assert row["group"] == group["name"]
            assert row["time_s"] is None or row["time_s"] > 0
        assert f"## {group['name']}" in text
    check_tables(text)
    png = tmp_path / "results.png"
    assert png.is_file() or "results.png skipped" in text


def test_only_rejects_unknown_names(tmp_path: Path) -> None:
    args = [sys.executable, str(RUN), "--smoke", "--only", "nope", "--out", str(tmp_path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown" in done.stderr
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["bench_dmrg_symmetric.py", "--quick"],
        ["bench_charged_sweeps.py", "--quick", "--repeats", "1"],
        ["sector_runs.py", "spin-gap", "--lengths", "6,8", "--bond", "8"],
        ["sector_runs.py", "hubbard", "--L", "6", "--bonds", "16"],
    ],
)
def test_sector_benchmarks_run(args: list[str]) -> None:
    run_script(args)


@pytest.mark.slow
def test_tdvp_benchmark_runs() -> None:
    run_script(["bench_tdvp.py", "--quick"])


def run_script(args: list[str]) -> None:
    script = RUN.parent / args[0]
    done = subprocess.run(
        [sys.executable, str(script), *args[1:]], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    check_tables(done.stdout)
