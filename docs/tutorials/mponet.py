"""MPO-Net on digits: the networks' weight counts, computed now, next to the accuracies
measured by examples/mponet_digits.py (read from docs/reproductions.md; nothing is trained).

Run by docs/hooks.py at every docs build; writes mponet.md into the folder given as the first
argument (the current folder by default). Needs PyTorch and scikit-learn.
"""

import re
import sys
from pathlib import Path

import torch

root = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(root / "examples"))
from mponet_digits import NETWORKS, weight_count  # noqa: E402  (the reproduction's own models)

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")

# The measured rows of the reproduction: | network | D | bond dims | weights | ratio | acc. |
measured = {}
for line in (root / "docs" / "reproductions.md").read_text(encoding="utf-8").splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 6 and cells[0] in NETWORKS and re.fullmatch(r"-|\d+", cells[1]):
        bond = None if cells[1] == "-" else int(cells[1])
        measured[cells[0], bond] = {"weights": int(cells[3].replace(",", "")), "accuracy": cells[5]}

rows, mismatches = [], []
x = torch.randn(5, 64)
for name, build in NETWORKS.items():
    dense_weights = weight_count(build(None)[1])
    for bond in (None, 1, 2, 3, 4, 6, 8):
        torch.manual_seed(0)
        model, layers = build(bond)
        assert model(x).shape == (5, 10)  # the untrained network runs
        weights = weight_count(layers)
        params = sum(p.numel() for p in model.parameters())
        bonds = "dense" if bond is None else " / ".join(str(layer.bond_dims) for layer in layers)
        row = measured.get((name, bond))
        if row is None:
            accuracy = "not measured"
        else:
            accuracy = row["accuracy"]
            if row["weights"] != weights:
                mismatches.append(f"{name} D={bond}: {weights} now, {row['weights']} measured")
        rows.append(
            f"| {name} | {bond or '-'} | {bonds} | {weights:,} | {dense_weights / weights:.1f}× "
            f"| {params:,} | {accuracy} |"
        )

lines = [
    "Weight counts computed at this build from `examples/mponet_digits.py`'s own model "
    "definitions; accuracies (5 seeds, 40 epochs) as measured for "
    "[Reproductions](reproductions.md#mpo-net-fc2-and-lenet-5).",
    "",
    "| network | D | bond dims | weights (MPO'd layers) | compression | all parameters "
    "| test accuracy % |",
    "|---|---|---|---|---|---|---|",
    *rows,
    "",
]
if mismatches:
    lines += [
        '!!! warning "The measured table is out of date"',
        "    The models now have other weight counts than when the accuracies were measured: "
        + "; ".join(mismatches)
        + ". Rerun `python examples/mponet_digits.py`.",
        "",
    ]
(out / "mponet.md").write_text("\n".join(lines), encoding="utf-8")
