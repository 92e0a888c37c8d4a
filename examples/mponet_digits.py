"""MPO-Net on scikit-learn's digits: dense layers against MPO layers, trained from scratch.

Reproduces the shape of MPO-Net's MNIST experiments (Gao et al., Phys. Rev. Research 2,
023300 (2020)) on the 8x8 digits that ship with scikit-learn (1797 images; nothing is
downloaded), for two networks:

- FC2, the two-layer perceptron 64 -> 256 -> 10 (MPO-Net's FC2 is 784 -> 256 -> 10). The MPO
  version replaces both weights: 64 = (4,4,4) -> 256 = (8,4,8), then (8,4,8) -> 10 = (1,10,1),
  every bond capped at D.
- LeNet-5 scaled to 8x8: conv 1->6 3x3 + pool, conv 6->16 3x3 + pool (2x2 map), then, as in
  MPO-Net's LeNet-5 code, the last three layers as MPOs: conv 16->120 2x2 (a 64 -> 120
  matrix, (2,4,4,2) -> (2,5,6,2)), FC 120->84 ((2,5,6,2) -> (2,3,7,2)), FC 84->10
  ((2,3,7,2) -> (1,5,2,1)); bonds D, D and D // 2, the paper's (4, 4, 2) at D = 4.

Each network trains from the layers' default (variance-exact) init with Adam for a fixed
number of epochs, on a stratified 70/30 split (seed 0) of standardised pixels, over several
seeds. It prints a markdown table of test accuracy (mean ± std over seeds), the weight count
of the MPO'd layers (biases not counted, as MPO-Net counts) and their compression ratio, and
with ``--plot PATH`` draws accuracy against that weight count.

    python examples/mponet_digits.py                # 5 seeds, the full sweep (~5 min, 1 thread)
    python examples/mponet_digits.py --quick        # 1 seed, bond 4 only, few epochs
    python examples/mponet_digits.py --plot docs/img/mponet_digits.png
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from tnkit.torch import MPOConv2d, MPOLinear

SPLIT_SEED = 0
TEST_FRACTION = 0.3
BATCH_SIZE = 64


# ---------------------------------------------------------------------- data and training


def load_split() -> dict[str, torch.Tensor]:
    """Digits as float32 rows of 64 pixels, split 70/30 stratified with a fixed seed: keys
    ``x_train``, ``y_train``, ``x_test``, ``y_test``. Standardised by one mean and one standard
    deviation over all training pixels: per-pixel scaling would blow up the near-constant
    border pixels, which costs the conv net 3 points."""
    X, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    mean, std = x_train.mean(), x_train.std()
    return {
        "x_train": torch.tensor((x_train - mean) / std, dtype=torch.float32),
        "y_train": torch.tensor(y_train),
        "x_test": torch.tensor((x_test - mean) / std, dtype=torch.float32),
        "y_test": torch.tensor(y_test),
    }


def train(
    model: nn.Module,
    data: dict[str, torch.Tensor],
    *,
    epochs: int,
    lr: float,
    seed: int,
    after_step: Callable[[], None] | None = None,
) -> float:
    """Adam on cross-entropy, mini-batches of ``BATCH_SIZE`` shuffled by ``seed``; returns the
    test accuracy. The model reshapes the rows of 64 pixels itself."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = data["x_train"], data["y_train"]
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x), generator=generator).split(BATCH_SIZE):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
            if after_step is not None:
                after_step()
    return accuracy(model, data["x_test"], data["y_test"])


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(dim=1) == y).float().mean())


def weight_count(layers: Sequence[nn.Module]) -> int:
    """Weights of the layers that MPO-Net replaces: cores, or the dense weight."""
    return sum(
        sum(p.numel() for p in layer.cores) if hasattr(layer, "cores") else layer.weight.numel()
        for layer in layers
    )


# ---------------------------------------------------------------------- networks


def fc2(bond: int | None) -> tuple[nn.Module, list[nn.Module]]:
    """64 -> 256 -> 10 with ReLU; ``bond=None`` is dense. Returns the model and the layers
    an MPO replaces."""
    if bond is None:
        hidden, head = nn.Linear(64, 256), nn.Linear(256, 10)
    else:
        hidden = MPOLinear(64, 256, in_dims=(4, 4, 4), out_dims=(8, 4, 8), max_bond=bond)
        head = MPOLinear(256, 10, in_dims=(8, 4, 8), out_dims=(1, 10, 1), max_bond=bond)
    return nn.Sequential(hidden, nn.ReLU(), head), [hidden, head]


def lenet5(bond: int | None) -> tuple[nn.Module, list[nn.Module]]:
    """LeNet-5 on 8x8 inputs (rows of 64 pixels); ``bond=None`` is dense. The last three
    layers are MPOs at bonds ``bond``, ``bond``, ``bond // 2`` (MPO-Net's 4, 4, 2)."""
    if bond is None:
        conv3, fc1, fc2 = nn.Conv2d(16, 120, 2), nn.Linear(120, 84), nn.Linear(84, 10)
    else:
        last = max(1, bond // 2)
        conv3 = MPOConv2d(16, 120, 2, in_dims=(2, 4, 4, 2), out_dims=(2, 5, 6, 2), max_bond=bond)
        fc1 = MPOLinear(120, 84, in_dims=(2, 5, 6, 2), out_dims=(2, 3, 7, 2), max_bond=bond)
        fc2 = MPOLinear(84, 10, in_dims=(2, 3, 7, 2), out_dims=(1, 5, 2, 1), max_bond=last)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        conv3,
        nn.ReLU(),
        nn.Flatten(),
        fc1,
        nn.ReLU(),
        fc2,
    )
    return model, [conv3, fc1, fc2]


NETWORKS = {"FC2": fc2, "LeNet-5": lenet5}


# ---------------------------------------------------------------------- experiment


def sweep(
    name: str, bonds: Sequence[int | None], seeds: Sequence[int], epochs: int, lr: float
) -> list[dict]:
    """One row per bond (None: dense): weights, compression, accuracies over seeds."""
    build, data, rows = NETWORKS[name], load_split(), []
    dense_weights = weight_count(build(None)[1])
    for bond in bonds:
        accuracies = []
        for seed in seeds:
            torch.manual_seed(seed)
            model, layers = build(bond)
            accuracies.append(train(model, data, epochs=epochs, lr=lr, seed=seed))
        weights = weight_count(layers)
        rows.append(
            {
                "network": name,
                "bond": bond,
                "bond_dims": [layer.bond_dims for layer in layers] if bond else None,
                "weights": weights,
                "compression": dense_weights / weights,
                "accuracies": accuracies,
            }
        )
    return rows


def spread(values: Sequence[float]) -> float:
    """Sample standard deviation; 0 for one value."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std(values: Sequence[float]) -> str:
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread(values):.1f}"


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| network | D | bond dims | weights (MPO'd layers) | compression | test accuracy % |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        bonds = "dense" if row["bond"] is None else " / ".join(map(str, row["bond_dims"]))
        lines.append(
            f"| {row['network']} | {row['bond'] or '-'} | {bonds} | {row['weights']:,} | "
            f"{row['compression']:.1f}× | {mean_std(row['accuracies'])} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(NETWORKS), figsize=(10, 4), sharey=True)
    for ax, name in zip(axes, NETWORKS, strict=True):
        mine = [row for row in rows if row["network"] == name]
        dense = [row for row in mine if row["bond"] is None]
        mpo = sorted((row for row in mine if row["bond"] is not None), key=lambda r: r["weights"])
        means = [100 * np.mean(row["accuracies"]) for row in mpo]
        stds = [100 * spread(row["accuracies"]) for row in mpo]
        ax.errorbar([r["weights"] for r in mpo], means, yerr=stds, marker="o", capsize=3,
                    label="MPO")  # fmt: skip
        for row in mpo:
            ax.annotate(f"D={row['bond']}", (row["weights"], 100 * np.mean(row["accuracies"])),
                        textcoords="offset points", xytext=(4, -12), fontsize=8)  # fmt: skip
        for row in dense:
            mean = 100 * np.mean(row["accuracies"])
            ax.axhline(mean, color="grey", linestyle="--", label=f"dense ({row['weights']:,})")
            ax.plot(row["weights"], mean, marker="s", color="grey")
        ax.set_xscale("log")
        ax.set_xlabel("weights of the MPO'd layers")
        ax.set_title(f"{name} on digits")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, D = 4, 15 epochs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--bonds", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--plot", metavar="PATH", help="write accuracy vs weights as a PNG")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.bonds = 1, 15, [4]
    return args


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start, rows = time.perf_counter(), []
    for name in args.networks:
        rows += sweep(name, [None, *args.bonds], range(args.seeds), args.epochs, args.lr)
    header = (
        f"digits, 70/30 split; Adam lr {args.lr}, batch {BATCH_SIZE}, {args.epochs} epochs; "
        f"mean ± std over {args.seeds} seed(s)"
    )
    draw = (lambda: plot(rows, args.plot)) if args.plot else None
    return finish(rows, header, markdown_table(rows), start, draw)


def finish(rows: list[dict], header: str, table: str, start: float, draw) -> list[dict]:
    """Print a sweep's header, table and wall time, then ``draw()`` the plot (None: no plot)."""
    print(header + "\n")
    print(table)
    print(f"\n{time.perf_counter() - start:.0f} s")
    if draw is not None:
        draw()
    return rows


if __name__ == "__main__":
    main()
