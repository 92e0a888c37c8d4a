"""The layer picture of tnkit, generated from the code: import-linter's layers contract in
pyproject.toml, every module's docstring, and the import graph that grimp reads.

Run by docs/hooks.py at every docs build; writes architecture.md and architecture.png into
the folder given as the first argument (the current folder by default). Nothing is drawn by
hand: a module added to tnkit shows up here at the next build.
"""

import ast
import sys
from pathlib import Path

import grimp

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
config = tomllib.loads((ROOT / "pyproject.toml").read_text())
contracts = config["tool"]["importlinter"]["contracts"]
layers = next(c for c in contracts if c["type"] == "layers")["layers"]
layers = [[name.strip() for name in layer.split("|")] for layer in layers]  # top first

# The floors named in the contract's comments (a comment line before a group of layers).
floors, floor = {}, None
text = (ROOT / "pyproject.toml").read_text()
block = text[text.index("layers = [") : text.index("]", text.index("layers = ["))]
for line in block.splitlines()[1:]:
    line = line.strip()
    if line.startswith("#"):
        floor = line.lstrip("# ")
    elif line:
        floors[line.strip('",').split("|")[0].strip()] = floor


def summary(module: str) -> str:
    path = ROOT / "tnkit" / module.replace(".", "/")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split("\n\n")[0].split())


graph = grimp.build_graph("tnkit")
level = {name: i for i, layer in enumerate(layers) for name in layer}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in level else None


edges: dict[tuple[str, str], int] = {}
upward = []
for importer in graph.modules:
    for imported in graph.find_modules_directly_imported_by(importer):
        a, b = layer_of(importer), layer_of(imported)
        if a and b and a != b:
            edges[(a, b)] = edges.get((a, b), 0) + 1
            if level[b] <= level[a]:
                upward.append(f"{importer} → {imported}")

rows = ["| floor | layer (top to bottom) | module | what it does |", "|---|---|---|---|"]
shown = None
for i, layer in enumerate(layers):
    for name in layer:
        floor = floors.get(layer[0])
        rows.append(f"| {floor if floor != shown else ''} | {i + 1} | `{name}` | {summary(name)} |")
        shown = floor
md = [
    f"{len(level)} modules and packages in {len(layers)} layers; "
    f"{sum(edges.values())} imports between them, **{len(upward)} upward** "
    "(a module importing one of its own layer or above).",
    "",
    "![tnkit's layers and the imports between them](generated/architecture.png)",
    "",
    *rows,
]
if upward:
    md += ["", "Upward imports:", "", *[f"- `{edge}`" for edge in sorted(upward)]]
(out / "architecture.md").write_text("\n".join(md) + "\n", encoding="utf-8")

try:
    import matplotlib.pyplot as plt
except ImportError:  # the table above is the picture's content; the plot is optional
    sys.exit(0)

fig, ax = plt.subplots(figsize=(11, 0.42 * len(layers) + 1))
colours = plt.get_cmap("tab10")
floor_names = list(dict.fromkeys(floors.get(layer[0]) for layer in layers))
x_of = {}
for i, layer in enumerate(layers):
    y = len(layers) - i
    colour = colours(floor_names.index(floors.get(layer[0])) % 10)
    width = 10 / max(len(layer), 1)
    for j, name in enumerate(layer):
        x = j * width + width / 2
        x_of[name] = (x, y)
        ax.text(
            x,
            y,
            name,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "fc": colour, "alpha": 0.35, "ec": colour},
        )
for (a, b), count in edges.items():
    (xa, ya), (xb, yb) = x_of[a], x_of[b]
    ax.annotate(
        "",
        xy=(xb, yb + 0.25),
        xytext=(xa, ya - 0.25),
        arrowprops={"arrowstyle": "->", "alpha": 0.15 + min(count, 10) * 0.03, "lw": 0.6},
    )
for k, name in enumerate(floor_names):
    ax.text(
        10.3,
        len(layers) - next(i for i, l in enumerate(layers) if floors.get(l[0]) == name),
        name,
        fontsize=9,
        color=colours(k % 10),
        va="center",
    )
ax.set_xlim(-0.2, 12.5)
ax.set_ylim(0.3, len(layers) + 0.7)
ax.axis("off")
ax.set_title("tnkit: layers (top imports bottom only), from pyproject.toml and grimp")
fig.tight_layout()
fig.savefig(out / "architecture.png", dpi=110)
