"""MPO adapters against PEFT's LoRA at equal trainable parameters, on an offline task.

Usage: ``python benchmarks/bench_adapters.py [--quick] [--seeds N] [--steps S]``.

Task: scikit-learn's ``load_digits`` (8x8 images, 64 features scaled to [0, 1]). An MLP
64 -> 128 -> 128 -> 10 is trained on classes 0-4 (all parameters, Adam, full batch), then
adapted to classes 5-9 with the base frozen and adapters on its three ``nn.Linear`` layers
only: tnkit's MPO adapter (``add_adapters``, 2 to 4 cores) or PEFT's LoRA (``LoraConfig``,
``lora_alpha = r``: scaling 1, as the MPO's default). Both are trained by the same Adam
loop, full batch, on half of the 5-9 images, and scored on the other half (argmax over all
10 classes). For each LoRA rank ``r``, the MPO's ``n_cores`` and ``max_bond`` are those
whose trainable count is nearest (both counts printed). For each learning rate of a small
grid the table gives the mean ± std accuracy over the seeds (each seed: its own base
model, split and adapter init) and the adapter file size (``save_adapters`` / PEFT's
``adapter_model.safetensors``). Without PEFT the LoRA baseline is a hand-written ``B·A``
beside each layer (said in the output). One BLAS thread, one torch thread. ``--quick``:
2 seeds, fewer steps (a smoke run).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits
from torch import nn

from tnkit.torch import add_adapters, parameter_counts, save_adapters

TARGETS = ["0", "2", "4"]
LEARNING_RATES = (3e-3, 1e-2, 3e-2, 1e-1)
N_CORES = (2, 3, 4)

try:
    import peft
except ImportError:  # the hand-written baseline below stands in
    peft = None


def data(seed: int) -> dict[str, torch.Tensor]:
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    old, new = y < 5, y >= 5
    split = train_test_split(np.flatnonzero(new.numpy()), test_size=0.5, random_state=seed)
    return {
        "x_old": x[old],
        "y_old": y[old],
        "x_train": x[split[0]],
        "y_train": y[split[0]],
        "x_test": x[split[1]],
        "y_test": y[split[1]],
    }


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))  # fmt: skip


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


class HandLoRA(nn.Module):
    """``W x + b + B A x``, B = 0 and A kaiming-uniform as PEFT draws them (no-PEFT fallback)."""

    def __init__(self, base: nn.Linear, r: int) -> None:
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=5**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T) @ self.lora_B.T


def with_lora(base: nn.Module, r: int) -> tuple[nn.Module, Callable[[str], None]]:
    model = copy.deepcopy(base)
    if peft is not None:
        config = peft.LoraConfig(target_modules=TARGETS, r=r, lora_alpha=r)
        model = peft.get_peft_model(model, config)
        return model, model.save_pretrained
    for param in model.parameters():
        param.requires_grad_(False)
    for name in TARGETS:
        model[int(name)] = HandLoRA(model[int(name)], r)

    def save(folder: str) -> None:
        tensors = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        torch.save(tensors, os.path.join(folder, "adapter_model.safetensors"))

    return model, save


def with_mpo(base: nn.Module, shape: tuple[int, int]) -> tuple[nn.Module, Callable[[str], None]]:
    n_cores, bond = shape
    model = add_adapters(copy.deepcopy(base), TARGETS, max_bond=bond, n_cores=n_cores)

    def save(folder: str) -> None:
        save_adapters(os.path.join(folder, "adapter_model.safetensors"), model)

    return model, save


def matched_sizes(base: nn.Module, ranks: tuple[int, ...]) -> list[tuple]:
    """``(r, LoRA count, (n_cores, bond), MPO count)``: for each LoRA rank, the MPO shape
    (2 to 4 cores, any bond) whose trainable count is nearest."""
    lora = {r: parameter_counts(with_lora(base, r)[0])[0] for r in ranks}
    shapes = [(n, b) for n in N_CORES for b in range(1, 33)]
    mpo = {shape: parameter_counts(with_mpo(base, shape)[0])[0] for shape in shapes}
    rows = []
    for r, count in lora.items():
        shape = min(mpo, key=lambda s: (abs(mpo[s] - count), -s[0]))
        rows.append((r, count, shape, mpo[shape]))
    return rows


def run(seeds: int, steps: int, pretrain_steps: int, ranks: tuple[int, ...]) -> str:
    bases, sets = [], []
    for seed in range(seeds):
        torch.manual_seed(seed)
        sets.append(data(seed))
        base = mlp()
        train(base, sets[-1]["x_old"], sets[-1]["y_old"], pretrain_steps, 1e-2)
        bases.append(base)
    old = [accuracy(b, s["x_old"], s["y_old"]) for b, s in zip(bases, sets, strict=True)]
    new = [accuracy(b, s["x_test"], s["y_test"]) for b, s in zip(bases, sets, strict=True)]
    lines = [
        f"base MLP 64-128-128-10 ({parameter_counts(bases[0])[1]} parameters): "
        f"accuracy on classes 0-4 {statistics.mean(old):.3f}, on 5-9 before adapting "
        f"{statistics.mean(new):.3f}",
        f"LoRA: {'peft ' + peft.__version__ if peft else 'hand-written B·A (peft not installed)'}"
        f"; MPO: tnkit add_adapters; {seeds} seeds, {steps} Adam steps",
        "",
        "| adapter | trainable | file (bytes) | "
        + " | ".join(f"acc. lr={lr:g}" for lr in LEARNING_RATES)
        + " |",
        "|---|---:|---:|" + "---:|" * len(LEARNING_RATES),
    ]
    for r, lora_count, shape, mpo_count in matched_sizes(bases[0], ranks):
        for label, make, size, count in (
            (f"LoRA r={r}", with_lora, r, lora_count),
            (f"MPO {shape[0]} cores, bond {shape[1]}", with_mpo, shape, mpo_count),
        ):
            cells = []
            for lr in LEARNING_RATES:
                scores = []
                for seed, (base, split) in enumerate(zip(bases, sets, strict=True)):
                    torch.manual_seed(1000 + seed)
                    model, _ = make(base, size)
                    train(model, split["x_train"], split["y_train"], steps, lr)
                    scores.append(accuracy(model, split["x_test"], split["y_test"]))
                spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
                cells.append(f"{statistics.mean(scores):.3f} ± {spread:.3f}")
            with tempfile.TemporaryDirectory() as folder:
                make(bases[0], size)[1](folder)
                file_size = os.path.getsize(os.path.join(folder, "adapter_model.safetensors"))
            lines.append(f"| {label} | {count} | {file_size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 60 steps")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    seeds, steps = (2, 60) if args.quick else (args.seeds, args.steps)
    ranks = (1, 4) if args.quick else (1, 2, 4, 8)
    torch.set_num_threads(1)
    start = time.perf_counter()
    with threadpool_limits(limits=1):
        table = run(seeds, steps, 300 if not args.quick else 100, ranks)
    print(table)
    print(f"\n({time.perf_counter() - start:.0f} s, one thread)")


if __name__ == "__main__":
    main()
