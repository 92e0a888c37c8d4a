"""MPO-LSTM against magnitude pruning on digit rows, at equal weight counts.

Reproduces the comparison of MPO-LSTM (Sun et al., 2020) with pruning on a sequence task that
needs no download: each 8x8 scikit-learn digit is read as 8 steps (its rows) of 8 pixels, an
LSTM with hidden size 64 runs over them and a dense head classifies its last hidden state.

- MPO: ``MPOLSTM(8, 64, input_dims=(2,2,2), hidden_dims=(4,4,4), max_bond=D)``, so
  ``weight_ih`` is (16,4,4) x (2,2,2) and ``weight_hh`` (16,4,4) x (4,4,4) (the four gates
  folded into the first output mode), trained from its default init.
- Pruning: an ``nn.LSTM(8, 64)`` trained dense, then ``weight_ih_l0`` and ``weight_hh_l0``
  each pruned to as many nonzeros as the MPO has in the same weight (smallest |w| first,
  ``torch.nn.utils.prune.l1_unstructured``), then fine-tuned with the masks kept. The two
  stages together take as many epochs as the MPO's training.

Both use the split, standardisation and Adam loop of ``mponet_digits.py``. The table gives
test accuracy (mean ± std over seeds) against the compression of the LSTM weights
(``weight_ih`` and ``weight_hh``, 18,432 dense; biases and the head are dense in both and not
counted); ``--plot PATH`` draws accuracy against compression for both methods.

    python examples/mpolstm_digits.py               # 3 seeds, the full sweep (~5 min, 1 thread)
    python examples/mpolstm_digits.py --quick       # 1 seed, D = 4 only, few epochs
    python examples/mpolstm_digits.py --plot docs/img/mpolstm_digits.png
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import torch
from mponet_digits import finish, load_split, mean_std, spread, train
from torch import nn
from torch.nn.utils import prune

from tnkit.torch import MPOLSTM

INPUT_DIMS, HIDDEN_DIMS = (2, 2, 2), (4, 4, 4)
STEPS, FEATURES, HIDDEN = 8, 8, 64
WEIGHTS = ("weight_ih_l0", "weight_hh_l0")


class RowReader(nn.Module):
    """Rows of 64 pixels -> 8 steps of 8 -> LSTM -> last hidden state -> 10 classes."""

    def __init__(self, lstm: nn.Module) -> None:
        super().__init__()
        self.lstm, self.head = lstm, nn.Linear(HIDDEN, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x.reshape(-1, STEPS, FEATURES))
        return self.head(h[-1])


def mpo_lstm(bond: int) -> MPOLSTM:
    return MPOLSTM(
        FEATURES,
        HIDDEN,
        batch_first=True,
        input_dims=INPUT_DIMS,
        hidden_dims=HIDDEN_DIMS,
        max_bond=bond,
    )


def mpo_counts(lstm: MPOLSTM) -> dict[str, int]:
    """Weights per LSTM weight matrix: the MPO's cores."""
    weights = lstm.mpo_weights()
    return {name: sum(p.numel() for p in weights[name].cores) for name in WEIGHTS}


def prune_to(lstm: nn.LSTM, keep: dict[str, int]) -> None:
    """Keep the ``keep[name]`` largest-|w| entries of each weight; the masks stay on."""
    for name, count in keep.items():
        prune.l1_unstructured(lstm, name, amount=getattr(lstm, name).numel() - count)


def nonzeros(lstm: nn.LSTM) -> int:
    return sum(int(torch.count_nonzero(getattr(lstm, name))) for name in WEIGHTS)


def run_mpo(bond: int, data: dict, *, epochs: int, lr: float, seed: int) -> tuple[float, int]:
    torch.manual_seed(seed)
    model = RowReader(mpo_lstm(bond))
    return train(model, data, epochs=epochs, lr=lr, seed=seed), sum(mpo_counts(model.lstm).values())


def run_pruned(
    keep: dict[str, int] | None, data: dict, *, epochs: int, prune_at: int, lr: float, seed: int
) -> tuple[float, int]:
    """Dense training for ``prune_at`` epochs, pruning to ``keep`` (None: no pruning), then
    the remaining epochs with the masks on (a fresh Adam)."""
    torch.manual_seed(seed)
    model = RowReader(nn.LSTM(FEATURES, HIDDEN, batch_first=True))
    if keep is None:
        return train(model, data, epochs=epochs, lr=lr, seed=seed), nonzeros(model.lstm)
    train(model, data, epochs=prune_at, lr=lr, seed=seed)
    prune_to(model.lstm, keep)
    score = train(model, data, epochs=epochs - prune_at, lr=lr, seed=seed + 1000)
    return score, nonzeros(model.lstm)


def sweep(
    bonds: Sequence[int], seeds: Sequence[int], epochs: int, prune_at: int, lr: float
) -> list[dict]:
    """Dense reference, then per bond: MPO and pruning at the MPO's weight counts."""
    data, dense_weights = load_split(), 4 * HIDDEN * (FEATURES + HIDDEN)
    runs = [run_pruned(None, data, epochs=epochs, prune_at=prune_at, lr=lr, seed=s) for s in seeds]
    rows = [{"method": "dense", "bond": None, "runs": runs}]
    for bond in bonds:
        keep = mpo_counts(mpo_lstm(bond))
        mpo = [run_mpo(bond, data, epochs=epochs, lr=lr, seed=s) for s in seeds]
        pruned = [
            run_pruned(keep, data, epochs=epochs, prune_at=prune_at, lr=lr, seed=s) for s in seeds
        ]
        rows.append({"method": "MPO", "bond": bond, "runs": mpo})
        rows.append({"method": "pruned", "bond": bond, "runs": pruned})
    for row in rows:
        weights = {count for _, count in row["runs"]}
        assert len(weights) == 1, f"weight count differs between seeds: {weights}"
        row["weights"] = weights.pop()
        row["compression"] = dense_weights / row["weights"]
        row["accuracies"] = [score for score, _ in row["runs"]]
    return rows


def markdown_table(rows: list[dict]) -> str:
    dense = mean_std(rows[0]["accuracies"])
    lines = [
        "| D | LSTM weights (nonzero) | compression | MPO-LSTM acc. % | pruned LSTM acc. % |",
        "|---|---|---|---|---|",
        f"| dense | {rows[0]['weights']:,} | 1.0× | {dense} | {dense} |",
    ]
    for mpo, pruned in zip(rows[1::2], rows[2::2], strict=True):
        assert mpo["weights"] == pruned["weights"]
        lines.append(
            f"| {mpo['bond']} | {mpo['weights']:,} | {mpo['compression']:.1f}× | "
            f"{mean_std(mpo['accuracies'])} | {mean_std(pruned['accuracies'])} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, marker in (("MPO", "o"), ("pruned", "^")):
        mine = [row for row in rows if row["method"] == method]
        ax.errorbar(
            [row["compression"] for row in mine],
            [100 * np.mean(row["accuracies"]) for row in mine],
            yerr=[100 * spread(row["accuracies"]) for row in mine],
            marker=marker,
            capsize=3,
            label="MPO-LSTM" if method == "MPO" else "magnitude-pruned LSTM",
        )
    dense = 100 * np.mean(rows[0]["accuracies"])
    ax.axhline(dense, color="grey", linestyle="--", label=f"dense LSTM ({dense:.1f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("compression of the LSTM weights (dense / nonzero)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("digit rows as sequences, hidden 64")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, D = 4, 10 epochs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--prune-at", type=int, default=20, help="epoch of one-shot pruning")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--bonds", type=int, nargs="+", default=[1, 2, 4, 6, 10])
    parser.add_argument("--plot", metavar="PATH", help="write accuracy vs compression as a PNG")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.prune_at, args.bonds = 1, 10, 5, [4]
    return args


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = sweep(args.bonds, range(args.seeds), args.epochs, args.prune_at, args.lr)
    header = (
        f"digit rows (8 steps x 8), hidden {HIDDEN}; Adam lr {args.lr}, {args.epochs} epochs "
        f"(pruning: dense {args.prune_at}, then masked); mean ± std over {args.seeds} seed(s)"
    )
    draw = (lambda: plot(rows, args.plot)) if args.plot else None
    return finish(rows, header, markdown_table(rows), start, draw)


if __name__ == "__main__":
    main()
