"""tn.apply: truncated MPO application by exact+compress, zip-up, density matrix and fit.

Every result is checked against the dense product ``W @ x`` computed in double precision:
the measured error never exceeds the reported bound, truncation requests are honoured, and
the truncated methods stay close to the optimal-ish exact-then-compress error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import mps_trains, roundoff, truncations

import tnkit as tn
from tnkit.apply import APPLY_METHODS

METHODS = list(APPLY_METHODS)
TRUNCATING = ["zipup", "density", "fit"]


# ============================================================================== helpers


def eps_of(dtype) -> float:
    return float(np.finfo(np.dtype(str(dtype).rsplit(".", 1)[-1])).eps)


def dense_product(o, t) -> np.ndarray:
    """``o @ t`` as a dense matrix/vector, contracted in double precision (the reference)."""
    kind = "complex128" if "complex" in str(o.dtype) + str(t.dtype) else "float64"
    o, t = (type(x)([np.asarray(c).astype(kind) for c in x.cores]) for x in (o, t))
    W = np.asarray(o.to_matrix())
    if isinstance(t, tn.MPS):
        return W @ np.asarray(t.to_dense()).reshape(-1)
    return W @ np.asarray(t.to_matrix())


def dense(y) -> np.ndarray:
    if isinstance(y, tn.MPS):
        return np.asarray(y.to_dense()).reshape(-1)
    return np.asarray(y.to_matrix())


def error(y, reference: np.ndarray) -> float:
    return float(np.linalg.norm(dense(y).astype(reference.dtype) - reference))


def heisenberg(L: int) -> tn.MPO:
    """H = Σ SxSx + SySy + SzSz (S = σ/2) as the standard bond-5 W-matrix MPO."""
    eye, sz = np.eye(2), np.diag([0.5, -0.5])
    sp = np.array([[0.0, 1.0], [0.0, 0.0]])
    w = np.zeros((5, 2, 2, 5))
    w[0, :, :, 0] = w[4, :, :, 4] = eye
    w[4, :, :, 1], w[1, :, :, 0] = sp, 0.5 * sp.T
    w[4, :, :, 2], w[2, :, :, 0] = sp.T, 0.5 * sp
    w[4, :, :, 3], w[3, :, :, 0] = sz, sz
    return tn.MPO([w[4:5]] + [w] * (L - 2) + [w[..., 0:1]])


def case(kind: str, L: int, seed: int) -> tuple[tn.MPO, tn.MPS]:
    """Realistic inputs: a bond-8 MPS and a bond-3 random (or Heisenberg) MPO, d = 2."""
    o = heisenberg(L) if kind == "heis" else tn.MPO.random([2] * L, [2] * L, 3, seed=seed)
    return o, tn.MPS.random([2] * L, 8, seed=seed + 100)


def slack(y, reference: np.ndarray) -> float:
    """Rounding slack of "measured ≤ bound" (the library's c·ε·‖x‖)."""
    dtype = str(y.dtype).rsplit(".", 1)[-1]  # torch.float32 -> float32
    return roundoff(dtype, float(np.linalg.norm(reference)), reference.size)


@st.composite
def operator_and_train(draw, max_len: int = 6):
    """An MPS (or MPO) ``t`` and a random MPO ``o`` whose in_dims are t's (out) dims."""
    t = draw(mps_trains(max_len=max_len, max_bond=6))
    dims = list(t.phys_dims)
    if draw(st.booleans()) and np.prod(dims) <= 256:
        ins = [draw(st.integers(1, 2)) for _ in dims]
        kind = str(t.dtype)
        t = tn.MPO.random(dims, ins, draw(st.integers(1, 4)), seed=draw(st.integers(0, 2**20)))
        t = tn.MPO([np.asarray(c).astype(kind) for c in t.cores])
    outs = [draw(st.integers(1, 3)) for _ in dims]
    double = eps_of(t.dtype) < 1e-10  # same precision; real with complex is promoted
    dtype = draw(st.sampled_from(["float64", "complex128"] if double else ["float32", "complex64"]))
    o = tn.MPO.random(outs, dims, draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**20)))
    o = tn.MPO([np.asarray(c).astype(dtype) for c in o.cores])
    return o, t


# ============================================================================== properties


@given(operator_and_train(), st.sampled_from(METHODS), truncations())
def test_error_never_above_the_reported_bound(pair, method, kwargs):
    o, t = pair
    reference = dense_product(o, t)
    y = tn.apply(o, t, method=method, **kwargs)
    assert type(y) is type(t)
    r = y.report
    assert error(y, reference) <= r.abs_error_bound + slack(y, reference)
    assert r.norm == pytest.approx(np.linalg.norm(reference), rel=1e-3, abs=1e-30)
    if kwargs.get("max_bond"):
        assert max(y.bond_dims, default=1) <= kwargs["max_bond"]
    assert r.bond_dims_after == y.bond_dims
    assert len(r.discarded) == len(t) - 1
    assert r.bond_dims_before == (o @ t).bond_dims
    assert r.method.startswith(method)
    if r.tolerance_met and ("rtol" in kwargs or "atol" in kwargs):
        limit = min(
            kwargs.get("rtol", math.inf) * np.linalg.norm(reference), kwargs.get("atol", math.inf)
        )
        floor = math.sqrt(64 * len(t) * np.finfo(y.cores[0].dtype).eps) * r.norm
        assert error(y, reference) <= limit + floor + slack(y, reference)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_no_truncation_arguments_give_the_exact_product(method, dtype):
    o = tn.MPO.random([2, 3, 2, 2, 3, 2], [2, 2, 3, 2, 2, 2], 3, seed=1, dtype=dtype)
    t = tn.MPS.random([2, 2, 3, 2, 2, 2], 5, seed=2, dtype=dtype)
    reference = dense_product(o, t)
    y = tn.apply(o, t, method=method)
    assert error(y, reference) <= 1e-10 * np.linalg.norm(reference)
    assert y.report.tolerance_met
    assert y.report.rel_error_bound < 1e-5  # only the rounding floor of the measured bound
    assert y.centre == 0 and y.is_canonical(0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rtol", [0.3, 0.05, 1e-3])
def test_rtol_is_honoured(method, rtol):
    o, t = case("rand", 8, seed=3)
    reference = dense_product(o, t)
    y = tn.apply(o, t, method=method, rtol=rtol)
    assert error(y, reference) <= rtol * np.linalg.norm(reference) * (1 + 1e-9)
    assert y.report.tolerance_met
    assert error(y, reference) <= y.report.abs_error_bound + slack(y, reference)
    looser = tn.apply(o, t, method=method, rtol=10 * rtol)
    assert sum(looser.bond_dims) <= sum(y.bond_dims)


@pytest.mark.parametrize("method", METHODS)
def test_atol_is_honoured_and_max_bond_wins(method):
    o, t = case("heis", 8, seed=4)
    reference = dense_product(o, t)
    atol = 0.01 * np.linalg.norm(reference)
    y = tn.apply(o, t, method=method, atol=atol)
    assert error(y, reference) <= atol * (1 + 1e-9) and y.report.tolerance_met
    capped = tn.apply(o, t, method=method, rtol=1e-8, max_bond=3)
    assert max(capped.bond_dims) <= 3
    assert not capped.report.tolerance_met
    assert capped.report.rel_error_bound > 1e-8
    assert error(capped, reference) <= capped.report.abs_error_bound + slack(y, reference)


@pytest.mark.parametrize(("kind", "L"), [("rand", 8), ("rand", 10), ("heis", 8), ("heis", 10)])
@pytest.mark.parametrize("max_bond", [6, 8, 10, 12])
def test_close_to_exact_then_compress(kind, L, max_bond):
    o, t = case(kind, L, seed=L)
    reference = dense_product(o, t)
    best = error((o @ t).compress(max_bond=max_bond), reference)
    assert best > 1e-8 * np.linalg.norm(reference)  # the cases truncate for real
    factors = {"zipup": 1.5, "density": 1.5, "fit": 1.2}
    for method, factor in factors.items():
        y = tn.apply(o, t, method=method, max_bond=max_bond)
        assert max(y.bond_dims) <= max_bond
        err = error(y, reference)
        assert err <= factor * best, (method, err / best)
        assert err <= y.report.abs_error_bound + slack(y, reference)


def test_relaxed_zipup_beats_the_textbook_single_pass():
    o, t = case("heis", 10, seed=10)
    reference = dense_product(o, t)
    relaxed = tn.apply(o, t, method="zipup", max_bond=6)
    textbook = tn.apply(o, t, method="zipup", max_bond=6, oversample=1.0, relax=1.0)
    assert error(relaxed, reference) < error(textbook, reference)
    for y in (relaxed, textbook):
        assert error(y, reference) <= y.report.abs_error_bound + slack(y, reference)


@pytest.mark.parametrize("method", METHODS)
def test_mpo_times_mpo(method):
    o = tn.MPO.random([2, 3, 2, 2], [3, 2, 2, 2], 3, seed=5)
    t = tn.MPO.random([3, 2, 2, 2], [2, 2, 3, 2], 4, seed=6)
    reference = dense_product(o, t)
    exact = tn.apply(o, t, method=method)
    assert isinstance(exact, tn.MPO)
    assert exact.out_dims == o.out_dims and exact.in_dims == t.in_dims
    assert error(exact, reference) <= 1e-10 * np.linalg.norm(reference)
    y = tn.apply(o, t, method=method, max_bond=4)
    assert max(y.bond_dims) <= 4
    assert error(y, reference) <= y.report.abs_error_bound + slack(y, reference)
    best = error((o @ t).compress(max_bond=4), reference)
    assert error(y, reference) <= 1.5 * best


def test_single_site_and_mixed_dtypes():
    o = tn.MPO.random([3], [2], 1, seed=7)
    t = tn.MPS.random([2], 1, seed=8, dtype="complex128")
    for method in METHODS:
        y = tn.apply(o, t, method=method, max_bond=1)
        assert y.dtype == np.complex128
        assert error(y, dense_product(o, t)) <= 1e-12


def test_zero_product_has_zero_bound():
    t = tn.MPS.random([2] * 4, 3, seed=9)
    o = tn.MPO([np.zeros((1, 2, 2, 1))] * 4)
    for method in METHODS:
        y = tn.apply(o, t, method=method, max_bond=2)
        assert y.report.norm == 0 and y.report.abs_error_bound == 0
        assert error(y, dense_product(o, t)) == 0


def test_fit_info_and_options():
    o, t = case("heis", 10, seed=11)
    reference = dense_product(o, t)
    y, info = tn.apply(o, t, method="fit", max_bond=6, return_info=True, tol=0.0, max_sweeps=3)
    assert set(info) >= {"method", "error", "sweeps", "converged", "history", "fallback"}
    assert info["sweeps"] == 3 and not info["converged"] and len(info["history"]) == 4
    assert info["history"][-1] <= info["history"][0] * (1 + 1e-9)  # improves on its guess
    assert info["error"] == pytest.approx(error(y, reference), rel=1e-6)
    guess = tn.apply(o, t, method="zipup", max_bond=6)
    none, info0 = tn.apply(o, t, method="fit", max_bond=6, max_sweeps=0, return_info=True)
    assert info0["sweeps"] == 0 and info0["history"] == [pytest.approx(info0["error"])]
    assert error(none, reference) == pytest.approx(error(guess, reference), rel=1e-9)
    one_site, _ = tn.apply(
        o, t, method="fit", max_bond=6, two_site_sweeps=0, max_sweeps=2, return_info=True
    )
    assert one_site.bond_dims == guess.bond_dims  # 1-site sweeps keep the guess's bonds
    grown, grow_info = tn.apply(o, t, method="fit", max_bond=6, guess_bond=1, return_info=True)
    assert max(grown.bond_dims) == 6 and grow_info["history"][0] > grow_info["history"][-1]
    assert error(grown, reference) <= 1.2 * error((o @ t).compress(max_bond=6), reference)
    _, zip_info = tn.apply(o, t, max_bond=6, return_info=True)
    assert max(zip_info["intermediate_bond_dims"]) <= 12


def test_inputs_are_not_modified():
    torch = pytest.importorskip("torch")
    o, t = case("rand", 6, seed=12)
    to = tn.MPO([torch.asarray(np.array(c)) for c in o.cores])
    tt = tn.MPS([torch.asarray(np.array(c)) for c in t.cores])
    before = [c.clone() for c in (*to.cores, *tt.cores)]
    for method in METHODS:
        tn.apply(to, tt, method=method, max_bond=4)
    assert all(torch.equal(a, b) for a, b in zip(before, (*to.cores, *tt.cores), strict=True))
    assert to.centre is None and tt.centre is None


# ============================================================================== backends


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["float64", "complex64"])
def test_torch_matches_numpy(method, dtype):
    torch = pytest.importorskip("torch")
    o = tn.MPO.random([2] * 6, [2] * 6, 3, seed=13, dtype=dtype)
    t = tn.MPS.random([2] * 6, 4, seed=14, dtype=dtype)
    ours = tn.apply(o, t, method=method, max_bond=5)
    to = tn.MPO([torch.asarray(np.array(c)) for c in o.cores])
    tt = tn.MPS([torch.asarray(np.array(c)) for c in t.cores])
    theirs = tn.apply(to, tt, method=method, max_bond=5)
    assert all(isinstance(c, torch.Tensor) for c in theirs.cores)
    assert theirs.dtype == getattr(torch, dtype)
    assert theirs.bond_dims == ours.bond_dims
    reference = dense_product(o, t)
    tol = 1e-10 if dtype == "float64" else 1e-4
    scale = np.linalg.norm(reference)
    assert np.linalg.norm(dense(theirs) - dense(ours)) <= tol * scale
    assert theirs.report.abs_error_bound == pytest.approx(ours.report.abs_error_bound, rel=1e-3)
    assert error(theirs, reference) <= theirs.report.abs_error_bound + slack(theirs, reference)


@pytest.mark.parametrize("method", METHODS)
def test_array_api_strict(method):
    xp = pytest.importorskip("array_api_strict")
    o, t = case("rand", 6, seed=15)
    so = tn.MPO([xp.asarray(np.array(c)) for c in o.cores])
    st_ = tn.MPS([xp.asarray(np.array(c)) for c in t.cores])
    theirs = tn.apply(so, st_, method=method, max_bond=5)
    assert all(type(c) is type(so.cores[0]) for c in theirs.cores)
    ours = tn.apply(o, t, method=method, max_bond=5)
    got = np.from_dlpack(xp.asarray(theirs.to_dense(), device=xp.Device("CPU_DEVICE")))
    assert np.linalg.norm(got.reshape(-1) - dense(ours)) <= 1e-10 * np.linalg.norm(dense(ours))


# ============================================================================== oracle


def _quimb_mps(qtn, t):
    c = [np.asarray(x) for x in t.cores]
    return qtn.MatrixProductState([c[0][0], *c[1:-1], c[-1][..., 0]], shape="lpr")


def _quimb_mpo(qtn, o):
    c = [np.asarray(x) for x in o.cores]
    return qtn.MatrixProductOperator([c[0][0], *c[1:-1], c[-1][..., 0]], shape="ludr")


QUIMB_METHOD = {"exact": "direct", "zipup": "zipup", "density": "dm", "fit": "fit"}


@pytest.mark.parametrize(("kind", "L"), [("rand", 8), ("heis", 10)])
@pytest.mark.parametrize("max_bond", [4, 8])
def test_oracle_quimb(kind, L, max_bond):
    qtn = pytest.importorskip("quimb.tensor")
    o, t = case(kind, L, seed=16)
    reference = dense_product(o, t)
    qo = _quimb_mpo(qtn, o)
    assert np.allclose(np.asarray(qo.to_dense()), o.to_matrix())
    for method, theirs in QUIMB_METHOD.items():
        q = _quimb_mps(qtn, t).gate_with_mpo(qo, method=theirs, max_bond=max_bond, cutoff=0.0)
        q_error = np.linalg.norm(np.asarray(q.to_dense()).reshape(-1) - reference)
        y = tn.apply(o, t, method=method, max_bond=max_bond)
        assert max(y.bond_dims) <= max_bond
        assert error(y, reference) <= 1.05 * q_error + 1e-12 * np.linalg.norm(reference), method


# ============================================================================== bad input


def test_bad_input():
    o, t = case("rand", 4, seed=17)
    with pytest.raises(TypeError, match="o:"):
        tn.apply(t, t)
    with pytest.raises(TypeError, match="t:"):
        tn.apply(o, np.ones(4))
    with pytest.raises(ValueError, match="t:.*in_dims"):
        tn.apply(o, tn.MPS.random([3] * 4, 2, seed=0))
    with pytest.raises(ValueError, match="t:.*sites"):
        tn.apply(o, tn.MPS.random([2] * 5, 2, seed=0))
    with pytest.raises(ValueError, match="t:.*in_dims"):
        tn.apply(o, tn.MPO.random([3] * 4, [2] * 4, 2, seed=0))
    with pytest.raises(ValueError, match="method"):
        tn.apply(o, t, method="svd")
    with pytest.raises(ValueError, match="max_bond"):
        tn.apply(o, t, max_bond=0)
    with pytest.raises(TypeError, match="max_bond"):
        tn.apply(o, t, max_bond=2.5)
    with pytest.raises(ValueError, match="rtol"):
        tn.apply(o, t, rtol=-1e-3)
    with pytest.raises(ValueError, match="atol"):
        tn.apply(o, t, method="density", atol=float("nan"))
    with pytest.raises(TypeError, match="options.*tol"):
        tn.apply(o, t, method="zipup", tol=1e-3)
    with pytest.raises(TypeError, match="max_sweeps"):
        tn.apply(o, t, method="fit", max_sweeps=2.0)
    with pytest.raises(ValueError, match="oversample"):
        tn.apply(o, t, oversample=0.5)
    with pytest.raises(ValueError, match="tol"):
        tn.apply(o, t, method="fit", tol=-1.0)
    with pytest.raises(ValueError, match="guess_bond"):
        tn.apply(o, t, method="fit", guess_bond=2)  # nothing to grow to without max_bond
    with pytest.raises(TypeError, match="guess_bond"):
        tn.apply(o, t, method="fit", max_bond=4, guess_bond=2.0)
    with pytest.raises(TypeError, match="precision"):
        tn.apply(o, tn.MPS.random([2] * 4, 2, seed=0, dtype="float32"))
    with pytest.raises(TypeError, match="return_info"):
        tn.apply(o, t, return_info=1)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="apply"):
        tn.apply(o, tn.MPS([torch.asarray(np.array(c)) for c in t.cores]))
