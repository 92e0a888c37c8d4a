"""MkDocs hook: run the tutorial scripts of docs/tutorials/ and hand their outputs to the build.
It only runs scripts and collects files; what a tutorial measures lives in its script.

Each script ``docs/tutorials/NAME.py`` is run with this interpreter as
``python NAME.py build/docs_generated`` and writes ``NAME.md`` (a markdown snippet that the
page ``tutorial_NAME.md`` includes with ``pymdownx.snippets``) and any ``NAME*.png`` there.
The PNGs join the site as ``generated/NAME*.png``. The output folder is outside ``docs/``, so
``mkdocs serve`` does not rebuild when it changes.

- ``mkdocs build``: every script runs, two at a time, one BLAS thread each, Agg backend, with a
  time limit; the tables are measured at that build. A script that fails fails the build.
- A missing optional package (matplotlib, scikit-learn, torch) leaves a visible note in the
  page instead; the scripts themselves skip only the plots when matplotlib is missing.
- ``mkdocs serve``: a script reruns only when it, or tnkit's source, changed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "docs" / "tutorials"
OUT = ROOT / "build" / "docs_generated"
SITE_FOLDER = "generated"  # where the PNGs appear in the site
TIME_LIMIT_S = 180  # per script; the whole set takes 6-11 s on 2 cores
OPTIONAL = {"matplotlib": "matplotlib", "sklearn": "scikit-learn", "torch": "torch"}

log = logging.getLogger("mkdocs.hooks.tutorials")
_command = "build"
_stamps: dict[str, str] = {}  # script name -> the source hash its outputs were made from


def on_startup(command: str, dirty: bool) -> None:
    global _command
    _command = command


def _scripts() -> list[Path]:
    return sorted(p for p in SCRIPTS.glob("*.py") if not p.name.startswith("_"))


def _source_hash(script: Path) -> str:
    digest = hashlib.sha256(script.read_bytes())
    for path in sorted((ROOT / "tnkit").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _clear(name: str) -> None:
    for path in [OUT / f"{name}.md", *OUT.glob(f"{name}*.png")]:
        path.unlink(missing_ok=True)


def _run(script: Path) -> str:
    """Run one script; returns a log line. Raises PluginError when it fails."""
    name = script.stem
    stamp = _source_hash(script)
    if _command == "serve" and _stamps.get(name) == stamp and (OUT / f"{name}.md").exists():
        return f"{name}: unchanged, not rerun"
    _clear(name)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"  # two scripts at a time on two cores: oversubscribed BLAS is 5x slower
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(script), str(OUT)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S,
        )
    except subprocess.TimeoutExpired as error:
        raise PluginError(f"tutorial {script.name} ran past {TIME_LIMIT_S} s") from error
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        missing = re.search(r"No module named '([\w.]+)'", done.stderr)
        package = missing and OPTIONAL.get(missing.group(1).split(".")[0])
        if not package:
            raise PluginError(f"tutorial {script.name} failed:\n{done.stderr[-3000:]}")
        (OUT / f"{name}.md").write_text(
            f'!!! warning "Not run at this build"\n'
            f"    `{package}` is not installed where these docs were built, so "
            f"`docs/tutorials/{script.name}` did not run and its measurements are missing.\n",
            encoding="utf-8",
        )
        return f"{name}: skipped, {package} missing"
    if not (OUT / f"{name}.md").exists():
        raise PluginError(f"tutorial {script.name} wrote no {name}.md")
    _stamps[name] = stamp
    return f"{name}: {seconds:.1f} s"


def on_pre_build(config) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_run, _scripts()))
    log.info("tutorials (%.1f s): %s", time.perf_counter() - start, "; ".join(results))


def on_files(files, config):
    for png in sorted(OUT.glob("*.png")):
        files.append(File.generated(config, f"{SITE_FOLDER}/{png.name}", abs_src_path=str(png)))
    return files
