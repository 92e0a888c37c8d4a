"""Row (c) of issue 20 on all-MiniLM-L6-v2: data-aware MPO compression, then auxiliary-only
fine-tuning (distillation) under a fixed CPU budget; and the data-aware SVD low-rank
baseline fine-tuned with the same budget.

Usage::

    python benchmarks/bench_calibration_finetune.py --rows c --out c.json       # (c)
    python benchmarks/bench_calibration_finetune.py --rows d --out d.json       # (d) + FT
    python benchmarks/bench_calibration_finetune.py --merge c.json d.json \\
        --plot docs/img/calibration_minilm.png                                 # table, plot
    python benchmarks/bench_calibration_finetune.py --quick                     # smoke test

The measured runs are in ``benchmarks/data/`` (``--merge`` them for the docs' table and
plot): ``calibration_minilm_layerwise.json`` (rows (a)-(d) and (d) + FT, transcribed from
the earlier table) and ``calibration_minilm_sequential_<ratio>.json`` (``--rows c
--sequential --decay``, budget 600 CPU s at 1.5× and 2×, 300 at 1.25× and 3×); the
``_n512`` and ``_n1228`` files are the same with ``--n-calibration 512`` and ``1228``. Row
(c) as it stands: ``calibration_minilm_extra_<ratio>.json`` (``--sequential --decay
--n-calibration 1228 --lr 2e-4 --extra-text``, budget 1200 CPU s at 1.5×, 300 at 2×, 150
at 1.25× and 3×).

Model, sentences, held-out set, embedding and calibration batches are those of
``benchmarks/bench_calibration.py`` (256 held-out sentences, 128 calibration sentences, 16
to a batch); the training (distillation) sentences are all the non-held-out ones (1,228 on
Python 3.11), so the held-out sentences are never trained or tuned on. ``--validation N``
instead evaluates on the first N training sentences and calibrates and trains on the others
(to choose settings without touching the held-out set). ``--extra-text`` adds the first
docstring lines of more modules (``EXTRA_MODULES`` of ``examples/mpop_minilm.py``: 75 more
standard-library modules and parts of NumPy and SciPy, 1,907 sentences, none of them a
held-out one) to the distillation text only.

- (c): ``compress_model(target_ratio=r, calibration=batches)`` (row (b)), then every
  parameter frozen except the MPO cores, and ``freeze_central``: only the auxiliary tensors
  train (``examples/mpop_minilm.py``'s ``freeze_to_auxiliary``). ``--sequential`` starts
  from ``compress_model(..., sequential=True)`` instead; ``--decay`` lowers the rate along
  a cosine to zero over the budget.
- (d) + FT: the data-aware truncated SVD of ``bench_calibration.py`` (row (d), two
  ``nn.Linear`` per layer at the MPO's parameter count), then both factors of every layer
  train (biases, embeddings, LayerNorms frozen).

Distillation: the training sentences in fixed length-sorted batches of ``--batch`` (little
padding), visited in a seeded random order each epoch; the original model's outputs are
computed once (``teacher`` CPU seconds, reported apart). Loss ``--loss sentence``:
``1 - cos`` of the sentence embeddings (as in ``examples/mpop_minilm.py``); ``--loss
hidden`` adds the mean over the 6 blocks of the relative squared error of the token-level
hidden states, ‖h − h₀‖² / ‖h₀‖² over the non-padding tokens (layer-wise distillation).
Adam, ``--lr`` after a linear warm-up of ``--warmup`` steps. Each run trains until its
training CPU time (``time.process_time`` of the optimisation steps: one torch thread, one
BLAS thread) reaches ``--budget`` seconds; the held-out cosine is measured at 4 points of
the budget (not counted).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits
from torch import nn

from tnkit.torch import compress_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_calibration as calib  # noqa: E402  (batches, Gram matrices, low-rank baseline)

minilm = calib.minilm
EVAL_POINTS = 4


def teacher_batches(tokenizer, original: nn.Module, sentences: list[str], batch: int) -> list:
    """Length-sorted batches of ``sentences`` with the original model's targets: the
    tokenised inputs, the unit sentence embeddings and the 6 blocks' hidden states."""
    ordered = sorted(sentences, key=lambda s: len(tokenizer.tokenize(s)))
    out = []
    with torch.no_grad():
        for k in range(0, len(ordered), batch):
            tokens = dict(
                tokenizer(
                    ordered[k : k + batch],
                    padding=True,
                    truncation=True,
                    max_length=minilm.MAX_TOKENS,
                    return_tensors="pt",
                )
            )
            result = original(**tokens, output_hidden_states=True)
            out.append(
                {
                    "tokens": tokens,
                    "sentence": pooled(result.last_hidden_state, tokens["attention_mask"]),
                    "hidden": [h.clone() for h in result.hidden_states[1:]],
                }
            )
    return out


def pooled(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The masked mean over tokens, L2-normalised (``mpop_minilm.embed``'s recipe)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def distillation_loss(student: nn.Module, entry: dict, kind: str) -> torch.Tensor:
    tokens = entry["tokens"]
    result = student(**tokens, output_hidden_states=kind == "hidden")
    sentence = pooled(result.last_hidden_state, tokens["attention_mask"])
    loss = (1 - (sentence * entry["sentence"]).sum(-1)).mean()
    if kind == "hidden":
        mask = tokens["attention_mask"].unsqueeze(-1).to(sentence.dtype)
        errors = [
            (((h - h0) ** 2) * mask).sum() / ((h0**2) * mask).sum()
            for h, h0 in zip(result.hidden_states[1:], entry["hidden"], strict=True)
        ]
        loss = loss + sum(errors) / len(errors)
    return loss


def finetune(
    student: nn.Module, batches: list, evaluate, args: argparse.Namespace, lr: float, loss: str
) -> list:
    """Adam on the trainable parameters until ``args.budget`` training CPU seconds; the curve
    (step, held-out cosine, mean loss since the last point, training wall / CPU s)."""
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)

    def rate(step: int, cpu: float) -> float:  # linear warm-up, then constant or cosine decay
        warm = min(1.0, (step + 1) / (args.warmup + 1))
        decay = 0.5 * (1.0 + math.cos(math.pi * min(1.0, cpu / args.budget))) if args.decay else 1
        return lr * warm * decay

    curve = [{"step": 0, "cosine": evaluate(student), "loss": None, "wall": 0.0, "cpu": 0.0}]
    order: list[int] = []
    step, wall, cpu, losses = 0, 0.0, 0.0, []
    next_point = args.budget / EVAL_POINTS
    while cpu < args.budget and (args.max_steps is None or step < args.max_steps):
        if not order:
            order = torch.randperm(len(batches), generator=generator).tolist()
        entry = batches[order.pop()]
        start, cpu_start = time.perf_counter(), time.process_time()
        for group in optimizer.param_groups:
            group["lr"] = rate(step, cpu)
        value = distillation_loss(student, entry, loss)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        wall += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        step += 1
        losses.append(value.item())
        done = cpu >= args.budget or step == args.max_steps
        if cpu >= next_point or done:
            point = {
                "step": step,
                "cosine": evaluate(student),
                "loss": sum(losses) / len(losses),
                "wall": wall,
                "cpu": cpu,
            }
            curve.append(point)
            print(
                f"  step {step}: cosine {point['cosine']:.4f}, loss {point['loss']:.4f}, "
                f"{cpu:.0f} CPU s / {wall:.0f} s",
                flush=True,
            )
            losses = []
            while next_point <= cpu:
                next_point += args.budget / EVAL_POINTS
    return curve


def trainable_low_rank(model: nn.Module) -> int:
    """Only the factors' weights of the low-rank layers train; their count. First each rank
    component is balanced (the same norm in both factors; the function is unchanged): the
    data-aware factors ``V·Σ^{-1/2}`` and ``U·S`` differ in scale by orders of magnitude,
    and Adam's per-entry steps of one learning rate wreck the small factor."""
    model.requires_grad_(False)
    for first, second in minilm.compressed_layers(model).values():
        with torch.no_grad():
            scale = (second.weight.norm(dim=0) / first.weight.norm(dim=1)).sqrt()
            first.weight.mul_(scale[:, None])
            second.weight.div_(scale[None, :])
        first.weight.requires_grad_(True)
        second.weight.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def run(args: argparse.Namespace) -> dict:
    tokenizer, original = minilm.load_minilm()
    held_out, train = minilm.split_sentences(minilm.stdlib_sentences(), args.n_eval)
    if args.validation:  # calibration and training both from the other training sentences
        held_out, train = train[: args.validation], train[args.validation :]
        print(f"validation mode: evaluating on {len(held_out)} training sentences")
    calibration = calib.calibration_batches(tokenizer, train[: args.n_calibration])
    if args.extra_text:  # distillation text only: never calibrated on or evaluated
        train = train + minilm.extra_sentences()
    if args.quick:
        train = train[:32]
    reference = minilm.encode(original, tokenizer, held_out)

    def evaluate(model: nn.Module) -> float:
        return minilm.mean_cosine(minilm.encode(model, tokenizer, held_out), reference)

    start, cpu_start = time.perf_counter(), time.process_time()
    batches = teacher_batches(tokenizer, original, train, args.batch)
    teacher = {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu_start}
    print(
        f"{len(held_out)} evaluation sentences, {len(train)} training sentences in "
        f"{len(batches)} batches; teacher targets {teacher['cpu']:.0f} CPU s",
        flush=True,
    )
    grams = calib.input_grams(original, calibration) if "d" in args.rows else None
    results = {"args": vars(args), "teacher": teacher, "entries": []}
    for ratio in args.ratios:
        for row in args.rows:
            entry = {"ratio": ratio, "row": row}
            if row == "c":
                model = copy.deepcopy(original)
                cpu_start = time.process_time()
                report = compress_model(
                    model,
                    target_ratio=ratio,
                    include=minilm.COMPRESSED,
                    calibration=calibration,
                    sequential=args.sequential,
                )
                entry["compress cpu"] = time.process_time() - cpu_start
                entry["params after"] = report.params_after
                entry["trainable"] = minilm.freeze_to_auxiliary(model)
                if args.train_central:  # an ablation: every MPO core trains
                    for layer in minilm.compressed_layers(model).values():
                        layer.central_tensor.requires_grad_(True)
                    entry["trainable"] = sum(
                        p.numel() for p in model.parameters() if p.requires_grad
                    )
                entry["train central"] = args.train_central
                entry["sequential"] = args.sequential
            else:
                like = copy.deepcopy(original)  # plain MPO: same bonds as (b), row (a)
                report = compress_model(like, target_ratio=ratio, include=minilm.COMPRESSED)
                entry["params after"] = report.params_after
                entry["plain mpo"] = evaluate(like)
                model = copy.deepcopy(original)
                entry["svd params"] = calib.compress_low_rank(model, like, grams)
                entry["trainable"] = trainable_low_rank(model)
            for lr in args.lr:
                for loss in args.loss:
                    run_entry = dict(entry, lr=lr, loss=loss)
                    print(
                        f"{ratio:g}x ({row}), lr {lr:g}, loss {loss}: "
                        f"{entry['trainable']:,} trainable parameters",
                        flush=True,
                    )
                    student = copy.deepcopy(model)
                    run_entry["curve"] = finetune(student, batches, evaluate, args, lr, loss)
                    results["entries"].append(run_entry)
    return results


# ---------------------------------------------------------------------- table and plot


def merged(paths: list[str]) -> dict:
    """ratio -> {(a), (b), (c), (d), (d) + FT, trainable, CPU/wall} from the runs' JSON."""
    rows: dict[float, dict] = {}
    for path in paths:
        for entry in json.loads(Path(path).read_text())["entries"]:
            row = rows.setdefault(entry["ratio"], {})
            first, last = entry["curve"][0], entry["curve"][-1]
            tuned = len(entry["curve"]) > 1  # --budget 0: the rows before fine-tuning only
            if entry.get("train central"):
                row.update(c_all=last["cosine"], c_all_trainable=entry["trainable"])
                continue
            if entry["row"] == "c" and entry.get("sequential"):
                row.update(bs=first["cosine"], params=entry["params after"])
                if tuned:
                    row.update(cs=last["cosine"], cs_steps=last["step"], cs_cpu=last["cpu"])
            elif entry["row"] == "c":
                row.update(b=first["cosine"], params=entry["params after"])
                if tuned:
                    row.update(c=last["cosine"], c_trainable=entry["trainable"])
                    row.update(c_steps=last["step"], c_cpu=last["cpu"], c_wall=last["wall"])
            else:
                row.update(a=entry["plain mpo"], d=first["cosine"])
                if tuned:
                    row.update(dft=last["cosine"], d_trainable=entry["trainable"])
                    row.update(d_steps=last["step"], d_cpu=last["cpu"], d_wall=last["wall"])
    return dict(sorted(rows.items()))


def table(rows: dict) -> str:
    def cell(row, key, fmt="{:.4f}"):
        return fmt.format(row[key]) if key in row else "–"

    headers = [
        "ratio",
        "(a) plain MPO",
        "(b) data-aware MPO",
        "(c) (b) + aux-only FT",
        "(b) sequential",
        "(c) sequential + aux-only FT",
        "(d) data-aware SVD",
        "(d) + FT",
        "trainable (c) / (d)+FT",
        "steps (c) / (c) seq. / (d)+FT",
        "FT CPU min (c) seq.",
        "FT CPU / wall min (c) / (d)+FT",
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for ratio, row in rows.items():
        minutes = "{:.1f} / {:.1f}"
        cells = [
            f"{ratio:g}x",
            cell(row, "a"),
            cell(row, "b"),
            cell(row, "c"),
            cell(row, "bs"),
            cell(row, "cs", "**{:.4f}**"),
            cell(row, "d"),
            cell(row, "dft"),
            f"{cell(row, 'c_trainable', '{:,}')} / {cell(row, 'd_trainable', '{:,}')}",
            f"{cell(row, 'c_steps', '{}')} / {cell(row, 'cs_steps', '{}')} / "
            f"{cell(row, 'd_steps', '{}')}",
            f"{row['cs_cpu'] / 60:.1f}" if "cs_cpu" in row else "–",
            (
                (minutes.format(row["c_cpu"] / 60, row["c_wall"] / 60) if "c_cpu" in row else "–")
                + " ; "
                + (minutes.format(row["d_cpu"] / 60, row["d_wall"] / 60) if "d_cpu" in row else "–")
            ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [
        ("a", "(a) plain MPO", "o", "tab:gray"),
        ("b", "(b) data-aware MPO", "s", "tab:blue"),
        ("c", "(c) data-aware MPO + auxiliary-only FT", "s", "tab:blue"),
        ("bs", "(b) sequential data-aware MPO", "D", "tab:green"),
        ("cs", "(c) sequential + auxiliary-only FT", "D", "tab:green"),
        ("d", "(d) data-aware SVD", "^", "tab:orange"),
        ("dft", "(d) data-aware SVD + FT", "^", "tab:orange"),
    ]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for key, label, marker, color in series:
        points = [(r, row[key]) for r, row in rows.items() if key in row]
        if points:
            x, y = zip(*points, strict=True)
            style = {"a": ":", "b": "--", "bs": "--", "d": "--"}.get(key, "-")
            ax.plot(x, y, marker=marker, color=color, ls=style, label=label)
    ax.plot([1.5, 2.0], [0.95, 0.90], "k*", ms=10, ls="none", label="targets for (c)")
    ax.set_xlabel("compression ratio of the 36 attention + FFN layers")
    ax.set_ylabel("mean cosine to the original embeddings\n(256 held-out sentences)")
    ax.set_xticks(list(rows))
    ax.set_xticklabels([f"{r:g}×" for r in rows])
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("all-MiniLM-L6-v2: compression and fine-tuning")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2x, (c) and (d), a few steps")
    parser.add_argument("--rows", nargs="+", choices=["c", "d"], default=["c", "d"])
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.25, 1.5, 2.0, 3.0])
    parser.add_argument("--budget", type=float, default=300.0, help="training CPU s per run")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument(
        "--loss", nargs="+", choices=["sentence", "hidden"], default=["hidden"], help="each"
    )
    parser.add_argument("--lr", type=float, nargs="+", default=[5e-4], help="each, Adam")
    parser.add_argument(
        "--train-central", action="store_true", help="(c): train the central tensors too"
    )
    parser.add_argument("--warmup", type=int, default=20, help="linear warm-up steps")
    parser.add_argument(
        "--decay", action="store_true", help="cosine decay of the rate over the CPU budget"
    )
    parser.add_argument(
        "--sequential", action="store_true", help="(c): from compress_model(sequential=True)"
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n-eval", type=int, default=256)
    parser.add_argument("--n-calibration", type=int, default=128)
    parser.add_argument("--validation", type=int, default=0, help="evaluate on N train sentences")
    parser.add_argument("--seed", type=int, default=0, help="torch and batch-order seed")
    parser.add_argument(
        "--extra-text",
        action="store_true",
        help="also distil on the sentences of examples/mpop_minilm.py's EXTRA_MODULES",
    )
    parser.add_argument("--out", help="write the results as JSON")
    parser.add_argument("--merge", nargs="+", help="JSON files of earlier runs: table (and plot)")
    parser.add_argument("--plot", help="with --merge: save the plot here")
    args = parser.parse_args(argv)
    if args.quick:
        args.ratios, args.n_eval, args.n_calibration = [2.0], 16, 16
        args.budget, args.max_steps = 1e9, 2
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.merge:
        rows = merged(args.merge)
        print(table(rows))
        if args.plot:
            plot(rows, args.plot)
        return rows
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    with threadpool_limits(1):
        results = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"results: {args.out}")
    return results


if __name__ == "__main__":
    main()
