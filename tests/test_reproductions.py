"""The PyTorch papers' experiments in miniature, on scikit-learn's digits (no download).

MPO-Net's FC2 and MPO-LSTM trained for a few epochs reach set accuracies at >= 10x
compression of the MPO'd weights; the example scripts run end to end (table and plot).
"""

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def scripts():
    """The two example modules (``mpolstm_digits`` imports ``mponet_digits`` by name)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import mpolstm_digits
        import mponet_digits

        yield mponet_digits, mpolstm_digits
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(scope="module")
def data(scripts):
    return scripts[0].load_split()


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fc2_bond4_accuracy_at_15x(scripts, data):
    """FC2 64 -> 256 -> 10 with both weights MPOs at D = 4: 18,944 -> 1,216 weights."""
    mponet, _ = scripts
    torch.manual_seed(0)
    model, layers = mponet.fc2(4)
    assert mponet.weight_count(mponet.fc2(None)[1]) / mponet.weight_count(layers) >= 15
    assert mponet.train(model, data, epochs=10, lr=3e-3, seed=0) >= 0.94


def test_mpolstm_digit_rows_accuracy_at_21x(scripts, data):
    """MPOLSTM(8, 64) at D = 4 over the image rows: LSTM weights 18,432 -> 864."""
    _, mpolstm = scripts
    torch.manual_seed(0)
    model = mpolstm.RowReader(mpolstm.mpo_lstm(4))
    assert sum(mpolstm.mpo_counts(model.lstm).values()) == 864
    assert mpolstm.train(model, data, epochs=8, lr=3e-3, seed=0) >= 0.85


def test_pruning_keeps_the_mpo_count(scripts, data):
    """The baseline has exactly the MPO's weight count in nonzeros after masked training."""
    _, mpolstm = scripts
    keep = mpolstm.mpo_counts(mpolstm.mpo_lstm(2))
    _, nonzeros = mpolstm.run_pruned(keep, data, epochs=2, prune_at=1, lr=3e-3, seed=0)
    assert nonzeros == sum(keep.values()) == 336


def test_scripts_end_to_end(scripts, tmp_path, capsys):
    """Both sweeps with 1 epoch: markdown table and PNG."""
    mponet, mpolstm = scripts
    rows = mponet.main(["--seeds", "1", "--epochs", "1", "--bonds", "2", "--plot",
                        str(tmp_path / "net.png")])  # fmt: skip
    assert [(row["network"], row["bond"]) for row in rows] == [
        ("FC2", None),
        ("FC2", 2),
        ("LeNet-5", None),
        ("LeNet-5", 2),
    ]
    rows = mpolstm.main(["--seeds", "1", "--epochs", "1", "--prune-at", "0", "--bonds", "1",
                         "--plot", str(tmp_path / "lstm.png")])  # fmt: skip
    assert [row["weights"] for row in rows] == [18432, 144, 144]
    out = capsys.readouterr().out
    assert "| FC2 | 2 |" in out and "| 1 | 144 | 128.0× |" in out
    assert (tmp_path / "net.png").stat().st_size > 0 and (tmp_path / "lstm.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("script", ["mponet_digits.py", "mpolstm_digits.py"])
def test_script_quick(script):
    """``--quick`` as a user runs it."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| dense |" in result.stdout or "| FC2 | - | dense |" in result.stdout
