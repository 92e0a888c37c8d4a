"""Bad input: clear ValueError/TypeError naming the parameter, before any work is done."""

from __future__ import annotations

import numpy as np
import pytest

import tnkit as tn

GOOD = np.ones((2, 3, 4))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"max_bond": 0}, ValueError, "max_bond"),
        ({"max_bond": -3}, ValueError, "max_bond"),
        ({"max_bond": 2.5}, TypeError, "max_bond"),
        ({"max_bond": True}, TypeError, "max_bond"),
        ({"rtol": -1e-3}, ValueError, "rtol"),
        ({"rtol": float("nan")}, ValueError, "rtol"),
        ({"atol": -1.0}, ValueError, "atol"),
        ({"atol": "small"}, TypeError, "atol"),
        ({"method": "magic"}, ValueError, "method"),
    ],
)
def test_tt_svd_rejects_bad_options(kwargs, error, name):
    with pytest.raises(error, match=name):
        tn.tt_svd(GOOD, **kwargs)


@pytest.mark.parametrize(
    ("x", "dims", "error", "name"),
    [
        (np.ones((2, 3)), (5,), ValueError, "dims"),
        (np.ones((2, 3)), (2, 0, 3), ValueError, "dims"),
        (np.ones((2, 3)), 6, TypeError, "dims"),
        (np.ones((2, 3)), (2.0, 3), TypeError, "dims"),
        (np.ones((0, 3)), None, ValueError, "x"),
        (np.array(1.0), None, ValueError, "x"),
        (np.array([[1.0, np.nan]]), None, ValueError, "NaN"),
        (np.array([[1.0, np.inf]]), None, ValueError, "NaN or Inf"),
        (np.array([[1, 2]], dtype=object), None, TypeError, "object"),
        (np.array([[1, 2]], dtype=np.int64), None, TypeError, "dtype"),
        ([[1.0, 2.0]], None, TypeError, "x"),
    ],
)
def test_tt_svd_rejects_bad_tensors(x, dims, error, name):
    with pytest.raises(error, match=name):
        tn.tt_svd(x, dims)


def test_nan_is_rejected_before_any_lapack_call(monkeypatch):
    import tnkit._backend as backend

    def fail(*args, **kwargs):
        raise AssertionError("LAPACK was called")

    monkeypatch.setattr(backend, "svd", fail)
    with pytest.raises(ValueError, match="NaN"):
        tn.tt_svd(np.array([[1.0, np.nan], [0.0, 1.0]]))


@pytest.mark.parametrize(
    ("cores", "error", "match"),
    [
        ([], ValueError, "at least one"),
        (np.ones((1, 2, 1)), TypeError, "sequence"),
        (5, TypeError, "sequence"),
        ([np.ones((1, 2))], ValueError, r"cores\[0\].*3 dimensions"),
        ([np.ones((2, 2, 1))], ValueError, r"cores\[0\]: left boundary"),
        ([np.ones((1, 2, 2))], ValueError, r"cores\[0\]: right boundary"),
        ([np.ones((1, 2, 3)), np.ones((2, 2, 1))], ValueError, r"cores\[1\].*\(1, 2, 3\)"),
        ([np.ones((1, 2, 1)), np.ones((1, 2, 1), dtype=np.float32)], TypeError, "mixed dtypes"),
        ([np.full((1, 2, 1), np.nan)], ValueError, r"cores\[0\].*NaN"),
        ([np.ones((1, 0, 1))], ValueError, r"cores\[0\].*empty"),
    ],
)
def test_mps_constructor_validates(cores, error, match):
    with pytest.raises(error, match=match):
        tn.MPS(cores)


def test_mpo_constructor_wants_four_legs():
    with pytest.raises(ValueError, match=r"cores\[0\].*\(Dl, d_out, d_in, Dr\)"):
        tn.MPO([np.ones((1, 2, 1))])


def test_mixing_libraries_raises_type_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="one array library"):
        tn.MPS([np.ones((1, 2, 1)), torch.ones((1, 2, 1), dtype=torch.float64)])


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        ((np.ones((4, 4)), (2, 2), (2, 3)), ValueError, "in_dims"),
        ((np.ones((4, 4)), (2, 2), (2,)), ValueError, "same number of sites"),
        ((np.ones((4, 4)), (1, 2), (2, 2)), ValueError, "out_dims: product 2"),
        ((np.ones((4, 4, 1)), (2, 2), (2, 2)), ValueError, "W"),
        ((np.ones(4), (2, 2), (2, 2)), ValueError, "W"),
    ],
)
def test_from_matrix_rejects_bad_input(args, error, name):
    with pytest.raises(error, match=name):
        tn.MPO.from_matrix(*args)


def test_from_matrix_pads_explicit_dims_only_when_asked():
    W = np.ones((4, 5))
    with pytest.raises(ValueError, match="pad=True"):
        tn.MPO.from_matrix(W, (2, 2), (2, 3))
    o = tn.MPO.from_matrix(W, (2, 2), (2, 3), pad=True)
    assert o.matrix_shape == (4, 5) and o.to_matrix().shape == (4, 5)


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda m: m.canonicalize(7), ValueError, "centre"),
        (lambda m: m.canonicalize(1.0), TypeError, "centre"),
        (lambda m: m.is_canonical(-9), ValueError, "centre"),
        (lambda m: m.compress(max_bond=0), ValueError, "max_bond"),
        (lambda m: m.compress(rtol=-1), ValueError, "rtol"),
        (lambda m: m.compress(method="rescaled-typo"), ValueError, "method"),
        (lambda m: m.compress(svd_method="nope"), ValueError, "method"),
    ],
)
def test_train_methods_reject_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call(tn.MPS.random([2] * 4, 3, seed=0))


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: tn.MPS.random([2, 0], 2), ValueError, "phys_dims"),
        (lambda: tn.MPS.random([2, 2], 0), ValueError, "max_bond"),
        (lambda: tn.MPS.random([2, 2], 2, dtype="int32"), TypeError, "dtype"),
        (lambda: tn.MPO.random([2, 2], [2], 2), ValueError, "same number"),
        (lambda: tn.MPO.identity([]), ValueError, "dims"),
        (lambda: tn.factorize_dims(0, 2), ValueError, "n"),
        (lambda: tn.factorize_dims(8, 0), ValueError, "k"),
        (lambda: tn.factorize_dims(8.0, 2), TypeError, "n"),
        (lambda: tn.MPS.random([2, 2], 2, seed="abc"), TypeError, "seed"),
        (lambda: tn.MPS.random([2, 2], 2, seed=-1), ValueError, "seed"),
        (lambda: tn.MPO.random([2, 2], [2, 2], 2, seed=1.5), TypeError, "seed"),
        (lambda: tn.MPS.random([2, 2], 2, seed=0).sample(3, seed=-1), ValueError, "seed"),
        (lambda: tn.OpSum(10**18), ValueError, "L"),
        (lambda: tn.models.heisenberg(10**8), ValueError, "L"),
    ],
)
def test_constructors_reject_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_trains_are_immutable():
    m = tn.MPS.random([2] * 3, 2, seed=0)
    with pytest.raises(AttributeError, match="immutable"):
        m.centre = 1
    with pytest.raises(ValueError, match="read-only"):
        m.cores[0][0, 0, 0] = 5.0


def test_cores_on_different_devices_are_rejected():
    xps = pytest.importorskip("array_api_strict")
    a = xps.ones((1, 2, 1), dtype=xps.float64)
    b = xps.asarray(a, device=xps.Device("device1"))
    with pytest.raises(ValueError, match=r"cores\[1\]: on device"):
        tn.MPS([a, b])


@pytest.mark.parametrize(
    "call",
    [
        lambda z: tn.expectation(z, tn.MPO.identity([2] * 4), normalize=True),
        lambda z: tn.local_expectation(z, np.eye(2), 1, normalize=True),
        lambda z: tn.correlation(z, np.eye(2), 0, np.eye(2), 2, normalize=True),
    ],
    ids=["expectation", "local_expectation", "correlation"],
)
def test_normalizing_the_zero_state_is_a_value_error(call):
    """0/0 is undefined: a ValueError naming the state, never a silent NaN."""
    zero = tn.MPS.random([2] * 4, 2, seed=0) * 0
    with np.errstate(all="raise"), pytest.raises(ValueError, match="state is zero"):
        call(zero)
