"""tt_svd of dask arrays: same result as in memory, error within the bound, never a block
larger than dask's chunk size read or built."""

import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tnkit as tn

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

SMALL_BLOCKS = {"array.chunk-size": "2KiB"}


class Reader:
    """An array-like that dask reads slice by slice, recording each slice's size."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.largest = 0

    def __getitem__(self, index):
        piece = self.data[index]
        self.largest = max(self.largest, piece.size)
        return piece


def lazy(x, chunks=2):
    return da.from_array(x, chunks=chunks)


@settings(max_examples=20, deadline=None)
@given(
    dims=st.lists(st.integers(1, 4), min_size=2, max_size=7).filter(
        lambda d: 300 <= math.prod(d) <= 2000
    ),
    chunk=st.integers(2, 4),
    rule=st.sampled_from([{}, {"max_bond": 3}, {"rtol": 0.2}, {"atol": 1.0}]),
    seed=st.integers(0, 2**16),
)
def test_matches_the_in_memory_sweep_and_bound(dims, chunk, rule, seed):
    x = np.random.default_rng(seed).standard_normal(dims)
    with dask.config.set(SMALL_BLOCKS):
        m = tn.tt_svd(lazy(x, chunk), **rule)
    reference = tn.tt_svd(x, **rule)
    assert m.bond_dims == reference.bond_dims
    error = np.linalg.norm(m.to_dense() - x)
    assert error <= m.report.abs_error_bound * (1 + 1e-7) + 1e-12 * np.linalg.norm(x)
    assert m.report.abs_error_bound == pytest.approx(reference.report.abs_error_bound, abs=1e-9)
    assert m.report.norm == pytest.approx(np.linalg.norm(x))
    if not rule:
        assert error <= 1e-12 * np.linalg.norm(x)


def test_the_largest_piece_read_is_one_block_and_the_sweep_runs_out_of_core(caplog):
    dims = (2,) * 12
    x = np.random.default_rng(1).standard_normal(dims)
    reader = Reader(x)
    with dask.config.set(SMALL_BLOCKS), caplog.at_level(logging.DEBUG, logger="tnkit"):
        m = tn.tt_svd(da.from_array(reader, chunks=(2,) * 6 + (1,) * 6), max_bond=6)
    assert reader.largest <= 2048 // 8  # no read beyond one block of the chunk size
    assert m.bond_dims == tn.tt_svd(x, max_bond=6).bond_dims
    bonds = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tt_svd bond")]
    assert len(bonds) == len(dims) - 1


def test_memmap_backed_array(tmp_path):
    dims = (3, 4, 5, 4, 3)
    x = np.random.default_rng(2).standard_normal(dims)
    path = tmp_path / "x.f64"
    x.tofile(path)
    mapped = np.memmap(path, dtype=np.float64, mode="r", shape=dims)
    with dask.config.set(SMALL_BLOCKS):
        m = tn.tt_svd(da.from_array(mapped, chunks=(3, 4, 5, 1, 1)), rtol=1e-10)
    assert np.allclose(m.to_dense(), x, atol=1e-9)


def test_dims_reshape_the_dask_array():
    x = np.random.default_rng(3).standard_normal((16, 64))
    with dask.config.set(SMALL_BLOCKS):
        m = tn.tt_svd(lazy(x, (4, 16)), (4, 4, 4, 4, 4))
    assert np.allclose(m.to_dense().reshape(16, 64), x)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_complex_at_extreme_scales_keeps_relative_accuracy(scale):
    rng = np.random.default_rng(4)
    unit = rng.standard_normal((4, 3, 4, 3, 4)) + 1j * rng.standard_normal((4, 3, 4, 3, 4))
    with dask.config.set(SMALL_BLOCKS):
        m = tn.tt_svd(lazy(unit * scale), rtol=1e-12)
    reconstructed = m.to_dense() / scale
    assert np.linalg.norm(reconstructed - unit) <= 1e-11 * np.linalg.norm(unit)
    assert m.report.norm / scale == pytest.approx(np.linalg.norm(unit))


def test_small_arrays_are_decomposed_in_memory():
    x = np.random.default_rng(5).standard_normal((3, 4, 5))
    m = tn.tt_svd(lazy(x), rtol=0.1)  # 480 bytes: fits one block of the default chunk size
    assert m.bond_dims == tn.tt_svd(x, rtol=0.1).bond_dims


def test_progress_bar_shows_the_out_of_core_bonds(capsys):
    x = np.random.default_rng(6).standard_normal((2,) * 10)
    with dask.config.set(SMALL_BLOCKS):
        tn.tt_svd(lazy(x, (2,) * 5 + (1,) * 5), max_bond=4, progress=True)
    assert "tt_svd out of core" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (np.full((8, 8, 8), np.nan), {}, ValueError, "NaN"),
        (np.ones((8, 8, 8), dtype=np.int64), {}, TypeError, "floating"),
        (np.ones((8, 8, 8)), {"dims": (8, 8, 7)}, ValueError, "dims"),
        (np.ones((8, 8, 8)), {"method": "bogus"}, ValueError, "method"),
        (np.ones((8, 8, 8)), {"max_bond": 0}, ValueError, "max_bond"),
    ],
)
def test_bad_input_is_refused_before_any_pass(x, kwargs, error, match):
    with dask.config.set(SMALL_BLOCKS), pytest.raises(error, match=match):
        tn.tt_svd(lazy(x, 4), **kwargs)


def test_unknown_shape_is_refused():
    x = lazy(np.arange(64.0), 8)
    unknown = x[x > -1]  # boolean mask: dask does not know the size
    with pytest.raises(ValueError, match="unknown shape"):
        tn.tt_svd(unknown)


def test_the_input_is_not_modified():
    x = np.random.default_rng(7).standard_normal((4, 4, 4, 4))
    before = x.copy()
    with dask.config.set(SMALL_BLOCKS):
        tn.tt_svd(lazy(x), rtol=0.3)
    assert np.array_equal(x, before)
