"""The package's structure (docs/architecture.md): no import cycles, no private names across
modules, no in-function imports of tnkit itself, no oversized files.

The layer order itself is import-linter's contract in pyproject.toml (``lint-imports``, run
by ``make test``); the checks here need no configuration and read the code as it is.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "tnkit"
MAX_LINES = 600


def sources() -> list[pathlib.Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("tnkit")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append(f"{module} <-> {imported}")
    assert not cycles, f"import cycles: {cycles}"


def imports(path: pathlib.Path) -> list[tuple[ast.ImportFrom, bool]]:
    """Every ``from ... import`` of the file, with whether it sits inside a function."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom):
                found.append((child, in_function))
            visit(child, inside)

    visit(tree, False)
    return found


def line(path: pathlib.Path, node: ast.AST) -> str:
    return path.read_text().splitlines()[node.lineno - 1]


def is_module(path: pathlib.Path, node: ast.ImportFrom, name: str) -> bool:
    """Whether ``from <node.module> import name`` names a module of tnkit (``_backend``)."""
    base = path.parent
    for _ in range(node.level - 1):
        base = base.parent
    if node.level == 0:
        base = PACKAGE.parent
    base = base.joinpath(*(node.module or "").split(".")) if node.module else base
    return (base / f"{name}.py").exists() or (base / name / "__init__.py").exists()


def is_tnkit(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == "tnkit"


def test_no_module_imports_another_modules_private_names():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {alias.name}"
        for path in sources()
        for node, _ in imports(path)
        if is_tnkit(node)
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
        if not is_module(path, node, alias.name)
    ]
    assert not offenders, offenders


def test_no_in_function_imports_of_tnkit():
    """In-function imports are for optional dependencies only (torch, dask, flax, ...); a
    tnkit module that needs one is imported late with a comment saying so."""
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in sources()
        for node, in_function in imports(path)
        if in_function and is_tnkit(node) and "optional dependency" not in line(path, node)
    ]
    assert not offenders, offenders


def test_no_file_over_the_size_limit():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in sources()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_layer_contract_names_every_module():
    """A module missing from the layers contract would escape it: every top-level module and
    package of tnkit is named in pyproject.toml's layers."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    top = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    top |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert top - named == set()


def test_lint_imports_passes():
    """The import-linter contracts hold (the same check ``make test`` runs), in a process of
    its own: import-linter reconfigures logging, which other tests read."""
    command = pathlib.Path(sys.executable).parent / "lint-imports"
    if not command.exists():
        pytest.skip("import-linter is not installed")
    done = subprocess.run([str(command)], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
