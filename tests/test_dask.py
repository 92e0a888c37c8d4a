"""Scale-out with Dask: ``compress_model(executor=client)`` and ``tnkit compress --scheduler``
on a 2-worker ``LocalCluster`` (worker processes) give what the serial runs give, report
progress as layers finish, and fail as the serial runs fail; the job runner's order rules."""

from __future__ import annotations

import concurrent.futures
import copy
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from tnkit import cli, codec  # noqa: E402
from tnkit._executor import Jobs  # noqa: E402
from tnkit.cli import main  # noqa: E402
from tnkit.torch import compress_model  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, as a real cluster has (pickling both ways)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as dask_client,
    ):
        yield dask_client


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Embedding(64, 32),
        nn.Linear(32, 64),
        nn.Linear(64, 64),
        nn.Linear(64, 32),
        nn.Linear(32, 2),  # kept: no MPO is smaller
        nn.Conv2d(4, 16, 3),
    )


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if isinstance(sa[key], torch.Tensor):
            assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key
        else:
            assert sa[key] == sb[key], key
    assert [type(m) for m in a] == [type(m) for m in b]


# ============================================================================ compress_model


def test_compress_model_on_the_cluster_is_the_serial_run(client):
    model = make_model()
    serial, spread = copy.deepcopy(model), copy.deepcopy(model)
    report = compress_model(serial, max_bond=4)
    with distributed.get_task_stream(client) as tasks:
        spread_report = compress_model(spread, max_bond=4, executor=client)
    ran = [t for t in tasks.data if t["key"].startswith("_convert_job")]
    assert len(ran) == len(report) == 6  # every layer ran on a worker
    assert spread_report.rows == report.rows  # bonds, params, measured errors, bounds
    assert (spread_report.model_params_before, spread_report.model_params_after) == (
        report.model_params_before,
        report.model_params_after,
    )
    assert len(report.replaced) == 5
    assert_same_state(serial, spread)


def test_progress_on_the_cluster(client, capsys):
    pytest.importorskip("tqdm")
    compress_model(make_model(), max_bond=4, executor=client, progress=True)
    err = capsys.readouterr().err
    assert "compress_model: 100%" in err and "6/6" in err


def test_a_failing_layer_fails_as_serially(client):
    model = make_model()
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    with pytest.raises(ValueError) as serial:
        compress_model(copy.deepcopy(model), max_bond=4)
    spread = copy.deepcopy(model)
    with pytest.raises(ValueError) as remote:
        compress_model(spread, max_bond=4, executor=client)
    assert str(remote.value) == str(serial.value)
    assert not any("MPO" in type(m).__name__ for m in spread)  # nothing installed


# ============================================================================ job runner


def test_jobs_report_as_they_finish_and_return_in_order():
    first_may_finish = threading.Event()

    def job(k):
        if k == 0:  # starts first, finishes well after job 1 (which it waits for)
            assert first_may_finish.wait(10)
            time.sleep(0.3)
        else:
            first_may_finish.set()
        return k * 10

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        run = Jobs(job, [(0,), (1,)], pool, labels=["a", "b"])
        assert len(run) == 2
        assert list(run) == ["b", "a"]  # b finished first
    assert run.results == [0, 10]
    serial = Jobs(job, [(1,), (0,)])
    assert list(serial) == [0, 1] and serial.results == [10, 0]


def test_jobs_raise_the_first_failure_in_order_and_cancel_the_rest():
    started, release = [], threading.Event()

    def job(k):
        started.append(k)
        if k == 1:  # fails last...
            assert release.wait(10)
            raise KeyError("first in order")
        if k == 2:  # ...after this one failed first
            release.set()
            raise ValueError("second in order")
        time.sleep(0.1)  # the later jobs are slow: time to cancel them
        return k

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        run = Jobs(job, [(k,) for k in range(40)], pool)
        with pytest.raises(KeyError, match="first in order"):
            list(run)
    assert len(started) < 10  # the jobs after the failure were cancelled
    with pytest.raises(RuntimeError, match="iterate"):
        _ = run.results


# ============================================================ tnkit compress --scheduler


def weights_file(path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "layer1.weight": rng.standard_normal((64, 48)).astype(np.float32),
        "layer1.bias": rng.standard_normal(64).astype(np.float32),
        "layer2.weight": rng.standard_normal((97, 40)),
        "conv.weight": rng.standard_normal((16, 8, 3, 3)).astype(np.float32),
        "half.weight": rng.standard_normal((60, 50)).astype(np.float16),
        "small": rng.standard_normal((3, 4)).astype(np.float32),
        "step": np.arange(3, dtype=np.int64),
    }
    code = {"float16": "F16", "float32": "F32", "float64": "F64", "int64": "I64"}
    tensors = {
        name: codec.RawTensor(code[a.dtype.name], a.shape, a.tobytes())
        for name, a in arrays.items()
    }
    codec.write_safetensors(path, tensors, {"author": "test"})


def test_cli_scheduler_writes_the_serial_file(client, tmp_path, capsys):
    source, serial, spread = (tmp_path / f"{n}.safetensors" for n in ("in", "serial", "spread"))
    weights_file(source)
    assert main(["compress", str(source), str(serial), "--max-bond", "4"]) == 0
    serial_out = capsys.readouterr().out
    address = client.scheduler.address
    with distributed.get_task_stream(client) as tasks:
        status = main(
            ["compress", str(source), str(spread), "--max-bond", "4", "--scheduler", address]
        )
    assert status == 0
    spread_out = capsys.readouterr().out
    assert spread.read_bytes() == serial.read_bytes()
    assert spread_out.replace("spread", "serial") == serial_out
    assert sum(t["key"].startswith("_compress_one") for t in tasks.data) == 5  # candidates


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("tcp://127.0.0.1:1", "tcp://127.0.0.1:1: cannot connect"),  # nobody listens
        ("127.0.0.1", "'127.0.0.1': not a scheduler address"),  # no port
    ],
)
def test_cli_scheduler_unreachable_is_one_line(address, says, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "SCHEDULER_TIMEOUT_S", 1.0)
    source, target = tmp_path / "in.safetensors", tmp_path / "out.safetensors"
    weights_file(source)
    status = main(["compress", str(source), str(target), "--scheduler", address])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith(f"tnkit: error: --scheduler {says}")
    assert not target.exists()


def test_cli_scheduler_without_dask(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    source, target = tmp_path / "in.safetensors", tmp_path / "out.safetensors"
    weights_file(source)
    status = main(["compress", str(source), str(target), "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "--scheduler needs dask.distributed" in err[0] and "tnkit[dask]" in err[0]
    assert not target.exists()
