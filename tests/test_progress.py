"""progress=True (tqdm bars on stderr) and logging on the ``tnkit`` logger; no prints."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import tnkit as tn


def test_tt_svd_progress_and_bond_logging(capsys, caplog):
    x = np.random.default_rng(0).standard_normal((4, 4, 4, 4))
    with caplog.at_level(logging.DEBUG, logger="tnkit"):
        m = tn.tt_svd(x, progress=True)
    assert np.allclose(m.to_dense(), x)
    captured = capsys.readouterr()
    assert captured.out == ""  # the bar goes to stderr, nothing is printed
    assert "tt_svd" in captured.err
    assert [r.message.split(":")[0] for r in caplog.records] == [
        f"tt_svd bond {k}" for k in range(3)
    ]
    o = tn.MPO.from_matrix(x.reshape(16, 16), (4, 4), (4, 4), progress=True)
    assert np.allclose(o.to_matrix(), x.reshape(16, 16))


def test_fit_progress_and_sweep_logging(capsys, caplog):
    o = tn.MPO.random([2] * 6, [2] * 6, 3, seed=0)
    t = tn.MPS.random([2] * 6, 4, seed=1)
    with caplog.at_level(logging.DEBUG, logger="tnkit"):
        _, info = tn.apply(o, t, method="fit", max_bond=3, return_info=True, progress=True)
    sweeps = [r for r in caplog.records if r.message.startswith("apply fit sweep")]
    assert len(sweeps) == info["sweeps"]
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "call",
    [
        lambda: tn.tt_svd(np.ones((2, 2)), progress="yes"),
        lambda: tn.apply(tn.MPO.identity([2, 2]), tn.MPS.random([2, 2], 1, seed=0), progress=1),
    ],
)
def test_progress_must_be_a_bool(call):
    with pytest.raises(TypeError, match="progress"):
        call()
