"""Measurements: Schmidt values, entropies, local observables, correlations and sampling.

References are dense: SVDs of unfoldings, operators applied to the dense tensor with
``tensordot``/``moveaxis``, exact probabilities |x|²/‖x‖². Oracles against quimb when installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import dtypes, exact_rtol, mpo_trains, mps_trains

import tnkit as tn
from tnkit import measure

ALPHAS = (1, 2, 0.5, math.inf)


def tol(dtype) -> float:
    """Accuracy relative to the train's norm: rounding of the dtype, a little amplified."""
    return 1e3 * exact_rtol(dtype)


def fused_dense(t) -> np.ndarray:
    """The train's tensor in double precision, one fused physical leg per site."""
    result = np.ones((1, 1), dtype=complex)
    for core in t.cores:
        core = np.asarray(core).astype(complex)
        core = core.reshape(core.shape[0], -1, core.shape[-1])
        result = np.tensordot(result, core, axes=(-1, 0))
    return result.reshape(result.shape[1:-1])


def dense_singular_values(t, bond: int) -> np.ndarray:
    x = fused_dense(t)
    rows = math.prod(x.shape[: bond + 1])
    return np.linalg.svd(x.reshape(rows, -1), compute_uv=False)


def entropy_of(s: np.ndarray, alpha: float) -> float:
    p = s**2 / np.sum(s**2)
    p = p[p > 0]
    if alpha == 1:
        return float(-np.sum(p * np.log(p)))
    if math.isinf(alpha):
        return float(-np.log(p.max()))
    return float(np.log(np.sum(p**alpha)) / (1 - alpha))


def apply_at(op, site: int, x: np.ndarray) -> np.ndarray:
    """``op`` acting on leg ``site`` of the dense tensor ``x``."""
    return np.moveaxis(np.tensordot(op, x, axes=(1, site)), 0, site)


def random_op(d: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    op = rng.standard_normal((d, d))
    if "complex" in str(dtype):
        op = op + 1j * rng.standard_normal((d, d))
    return op.astype(dtype)


def maybe_canonical(t, draw):
    """The train as drawn, or canonicalised about a drawn site (both code paths)."""
    centre = draw(st.one_of(st.none(), st.integers(0, len(t) - 1)))
    return t if centre is None else t.canonicalize(centre)


# ============================================================================== Schmidt values


@given(st.data(), st.booleans())
def test_singular_values_match_dense_unfoldings(data, is_mpo):
    t = data.draw(mpo_trains(max_bond=6) if is_mpo else mps_trains(min_len=2, max_bond=6))
    if len(t) < 2:
        return
    t = maybe_canonical(t, data.draw)
    norm = np.linalg.norm(fused_dense(t))
    for k in range(len(t) - 1):
        s = t.singular_values(k)
        ref = dense_singular_values(t, k)
        assert isinstance(s, np.ndarray) and s.dtype == np.float64 and s.ndim == 1
        sizes = [math.prod(c.shape[1:-1]) for c in t.cores]
        expected = min(t.bond_dims[k], math.prod(sizes[: k + 1]), math.prod(sizes[k + 1 :]))
        assert s.size == expected
        assert np.all(np.diff(s) <= 0)
        assert np.max(np.abs(s - ref[: s.size])) <= tol(t.dtype) * norm
        assert np.all(ref[s.size :] <= tol(t.dtype) * norm)  # the rank fits in the bond


def test_singular_values_are_not_normalised_and_accept_negative_bonds():
    m = tn.MPS.random([2, 3, 2, 2], 4, seed=3)
    s = m.singular_values(1)
    assert np.allclose((3.0 * m).singular_values(1), 3.0 * s)
    assert np.isclose(np.sum(s**2), m.norm() ** 2)
    assert np.array_equal(m.singular_values(-2), s)
    assert np.allclose(m.canonicalize(3).singular_values(1), s)  # centre right of the bond


# ============================================================================== entropies


@given(st.data(), st.booleans(), st.sampled_from(ALPHAS))
def test_entropies_match_dense_and_entropy(data, is_mpo, alpha):
    t = data.draw(mpo_trains(max_bond=6) if is_mpo else mps_trains(max_bond=6))
    t = maybe_canonical(t, data.draw)
    all_bonds = t.entropies(alpha)
    assert isinstance(all_bonds, np.ndarray) and all_bonds.dtype == np.float64
    assert all_bonds.shape == (len(t) - 1,)
    atol = 1e-3 if tol(t.dtype) > 1e-6 else 1e-8
    for k in range(len(t) - 1):
        ref = entropy_of(dense_singular_values(t, k), alpha)
        assert abs(t.entropy(k, alpha) - ref) <= atol
        assert abs(all_bonds[k] - t.entropy(k, alpha=alpha)) <= atol


def test_entropy_special_cases():
    bell = tn.tt_svd(np.array([[3.0, 0.0], [0.0, 3.0]]))  # not normalised: p = (1/2, 1/2)
    for alpha in ALPHAS:
        assert math.isclose(bell.entropy(0, alpha), math.log(2), rel_tol=1e-12)
    product = tn.MPS([np.array([[[1.0], [0.0]]]), np.array([[[0.0], [2.0]]])])
    assert product.singular_values(0).tolist() == [2.0]
    assert product.entropies(1).tolist() == [0.0]  # one zero probability (0·log 0 = 0)
    padded = tn.MPS([np.array([[[1.0, 0.0]]]), np.array([[[1.0]], [[0.0]]])])
    assert padded.singular_values(0).tolist() == [1.0]
    assert padded.entropy(0) == 0.0
    assert tn.MPS([np.ones((1, 2, 1))]).entropies().shape == (0,)


def test_entropies_canonicalise_once(monkeypatch):
    calls = []
    original = tn.TensorTrain.canonicalize

    def counting(self, centre):
        calls.append((self.centre, centre))
        return original(self, centre)

    monkeypatch.setattr(tn.TensorTrain, "canonicalize", counting)
    tn.MPS.random([2] * 12, 8, seed=0).entropies()
    assert calls == [(None, 0)]


# ============================================================================== local observables


@given(st.data(), dtypes, st.booleans())
def test_local_expectation_matches_dense(data, dtype, normalize):
    m = maybe_canonical(data.draw(mps_trains(dtype=dtype, max_bond=6)), data.draw)
    site = data.draw(st.integers(0, len(m) - 1))
    op = random_op(m.phys_dims[site], dtype, data.draw(st.integers(0, 2**31)))
    x = np.asarray(m.to_dense()).astype(complex)
    ref = np.vdot(x, apply_at(op.astype(complex), site, x))
    norm_sq = np.vdot(x, x).real
    if normalize:
        ref = ref / norm_sq
    got = tn.local_expectation(m, op, site, normalize=normalize)
    assert isinstance(got, (np.ndarray, np.generic)) and got.dtype == np.dtype(dtype)
    scale = np.linalg.norm(op, 2) * (1.0 if normalize else norm_sq)
    assert abs(complex(got) - ref) <= tol(dtype) * scale


@given(st.data(), dtypes, st.booleans())
def test_correlation_matches_dense_in_any_order(data, dtype, normalize):
    m = maybe_canonical(data.draw(mps_trains(dtype=dtype, max_bond=6)), data.draw)
    i = data.draw(st.integers(0, len(m) - 1))
    j = data.draw(st.integers(0, len(m) - 1))
    op1 = random_op(m.phys_dims[i], dtype, data.draw(st.integers(0, 2**31)))
    op2 = random_op(m.phys_dims[j], dtype, data.draw(st.integers(0, 2**31)))
    x = np.asarray(m.to_dense()).astype(complex)
    ref = np.vdot(x, apply_at(op1.astype(complex), i, apply_at(op2.astype(complex), j, x)))
    norm_sq = np.vdot(x, x).real
    if normalize:
        ref = ref / norm_sq
    got = tn.correlation(m, op1, i, op2, j, normalize=normalize)
    assert got.dtype == np.dtype(dtype)
    scale = np.linalg.norm(op1, 2) * np.linalg.norm(op2, 2) * (1.0 if normalize else norm_sq)
    assert abs(complex(got) - ref) <= tol(dtype) * scale


def test_correlation_same_site_is_the_product_in_written_order():
    m = tn.MPS.random([2, 3, 2], 3, seed=5, dtype="complex128")
    a, b = random_op(3, "complex128", 1), random_op(3, "complex128", 2)
    assert np.isclose(tn.correlation(m, a, 1, b, 1), tn.local_expectation(m, a @ b, 1))
    assert not np.isclose(tn.correlation(m, a, 1, b, 1), tn.correlation(m, b, 1, a, 1))
    z = np.diag([1.0, -1.0])
    assert np.isclose(tn.correlation(m, z, 0, z, 2), tn.correlation(m, z, 2, z, 0))


def test_local_expectation_is_unnormalised_and_mixes_dtypes():
    m = tn.MPS.random([2] * 5, 4, seed=2)
    sy = np.array([[0.0, -0.5j], [0.5j, 0.0]])
    z = np.array([[1, 0], [0, -1]])  # integer operators take the train's dtype
    for state in (m, m.canonicalize(4)):
        value = tn.local_expectation(3.0 * state, z, 1)
        assert value.dtype == np.float64
        assert np.isclose(value, 9.0 * tn.local_expectation(state, z, 1))
        assert np.isclose(
            tn.local_expectation(3.0 * state, z, 1, normalize=True),
            tn.local_expectation(state, z, 1) / state.norm() ** 2,
        )
        assert tn.local_expectation(state, sy, 2).dtype == np.complex128
    assert np.isclose(tn.local_expectation(m, np.eye(2), 0), m.norm() ** 2)


def test_local_expectation_matches_expectation_of_an_mpo():
    m = tn.MPS.random([2, 3, 2, 2], 3, seed=4, dtype="complex128")
    op = random_op(3, "complex128", 7)
    cores = [np.eye(d, dtype=complex).reshape(1, d, d, 1) for d in m.phys_dims]
    cores[1] = op.reshape(1, 3, 3, 1)
    assert np.isclose(tn.local_expectation(m, op, 1), tn.expectation(m, tn.MPO(cores)))


# ============================================================================== sampling


def exact_probabilities(m) -> np.ndarray:
    x = np.asarray(m.to_dense()).astype(complex)
    p = np.abs(x) ** 2
    return p / p.sum()


@pytest.mark.parametrize(
    ("dims", "dtype", "centre"),
    [([2] * 4, "float64", None), ([2] * 4, "complex128", 3), ([3, 2, 2], "float32", 1)],
)
def test_sample_frequencies_follow_the_probabilities(dims, dtype, centre):
    from scipy.stats import chisquare

    m = tn.MPS.random(dims, 3, seed=11, dtype=dtype)
    if centre is not None:
        m = m.canonicalize(centre)
    n = 20_000
    samples = m.sample(n, seed=123)
    counts = np.zeros(dims)
    np.add.at(counts, tuple(samples.T), 1)
    expected = n * exact_probabilities(m).astype(np.float64)
    expected *= n / expected.sum()
    assert chisquare(counts.ravel(), expected.ravel()).pvalue > 1e-3


def test_sample_never_draws_zero_probability_outcomes():
    ghz = np.zeros((2, 3, 2))
    ghz[0, 0, 0], ghz[1, 2, 1] = 1.0, 2.0
    samples = tn.tt_svd(ghz).sample(4000, seed=0)
    rows = {tuple(r) for r in samples.tolist()}
    assert rows == {(0, 0, 0), (1, 2, 1)}
    assert abs(np.mean(samples[:, 0]) - 0.8) < 0.03


def test_sample_shape_dtype_and_reproducibility():
    m = tn.MPS.random([2, 3, 4, 2, 2], 4, seed=1, dtype="complex64")
    a = m.sample(50, seed=7)
    assert a.shape == (50, 5) and a.dtype == np.int64
    assert np.all((a >= 0) & (a < np.array(m.phys_dims)))
    assert np.array_equal(a, m.sample(50, seed=7))
    assert np.array_equal(a, measure.sample(m, 50, seed=np.random.default_rng(7)))
    assert not np.array_equal(a, m.sample(50, seed=8))
    assert m.sample(0).shape == (0, 5)


def test_probabilities_sum_to_one_and_match_dense():
    for dtype in ("float32", "complex128"):
        m = tn.MPS.random([2, 3, 2, 2], 3, seed=2, dtype=dtype) * 1e3
        p = m.probabilities()
        assert p.shape == m.phys_dims
        assert p.dtype == np.dtype("float32" if dtype == "float32" else "float64")
        assert np.isclose(p.sum(), 1.0, atol=10 * exact_rtol(dtype))
        assert np.allclose(p, exact_probabilities(m), atol=10 * exact_rtol(dtype))


# ============================================================================== bad input

M = tn.MPS.random([2, 3, 2], 2, seed=0)
O = tn.MPO.random([2, 2], [2, 2], 2, seed=0)
Z = np.diag([1.0, -1.0])


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: M.singular_values(2), ValueError, "bond"),
        (lambda: M.singular_values(-3), ValueError, "bond"),
        (lambda: M.singular_values(1.0), TypeError, "bond"),
        (lambda: tn.MPS([np.ones((1, 2, 1))]).singular_values(0), ValueError, "bond"),
        (lambda: measure.singular_values(Z, 0), TypeError, "t"),
        (lambda: M.entropy(0, alpha=0), ValueError, "alpha"),
        (lambda: M.entropy(0, alpha=-1.0), ValueError, "alpha"),
        (lambda: M.entropy(0, alpha=float("nan")), ValueError, "alpha"),
        (lambda: M.entropy(0, alpha="2"), TypeError, "alpha"),
        (lambda: M.entropies(alpha=0.0), ValueError, "alpha"),
        (lambda: (0.0 * M).entropy(0), ValueError, "t"),
        (lambda: tn.local_expectation(M, Z, 3), ValueError, "site"),
        (lambda: tn.local_expectation(M, Z, 1), ValueError, "op"),
        (lambda: tn.local_expectation(M, np.ones((2, 2, 1)), 0), ValueError, "op"),
        (lambda: tn.local_expectation(M, [[1.0, 0.0], [0.0, 1.0]], 0), TypeError, "op"),
        (lambda: tn.local_expectation(M, np.array([[np.nan, 0], [0, 1]]), 0), ValueError, "op"),
        (lambda: tn.local_expectation(O, Z, 0), TypeError, "m"),
        (lambda: tn.local_expectation(M, Z, 0.0), TypeError, "site"),
        (lambda: tn.correlation(M, Z, 0, Z, 1), ValueError, "op2"),
        (lambda: tn.correlation(M, np.eye(3), 0, Z, 2), ValueError, "op1"),
        (lambda: tn.correlation(M, Z, 0, Z, 5), ValueError, "j"),
        (lambda: tn.correlation(M, Z, -4, Z, 0), ValueError, "i"),
        (lambda: tn.correlation(O, Z, 0, Z, 1), TypeError, "m"),
        (lambda: M.sample(-1), ValueError, "n"),
        (lambda: M.sample(2.0), TypeError, "n"),
        (lambda: M.sample(True), TypeError, "n"),
        (lambda: measure.sample(O, 3), TypeError, "m"),
        (lambda: (0.0 * M).sample(3), ValueError, "m"),
        (lambda: measure.probabilities(O), TypeError, "m"),
        (lambda: tn.MPS.random([2] * 25, 1, seed=0).probabilities(), ValueError, "m"),
    ],
)
def test_bad_input(call, error, name):
    with pytest.raises(error, match=rf"^{name}:"):
        call()


def test_mixed_libraries_are_rejected():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="op"):
        tn.local_expectation(M, torch.eye(2, dtype=torch.float64), 0)


# ============================================================================== backends


def test_torch_trains():
    torch = pytest.importorskip("torch")
    m = tn.MPS.random([2, 3, 2, 2], 3, seed=6, dtype="complex64")
    t = tn.MPS([torch.from_numpy(np.array(c)) for c in m.cores])
    s = t.singular_values(1)
    assert isinstance(s, np.ndarray) and s.dtype == np.float64
    assert np.allclose(s, m.singular_values(1), atol=1e-5)
    assert math.isclose(t.entropy(1, alpha=2), m.entropy(1, alpha=2), abs_tol=1e-5)
    assert np.allclose(t.entropies(), m.entropies(), atol=1e-5)
    samples = t.sample(100, seed=3)
    assert samples.dtype == np.int64 and np.array_equal(samples, m.sample(100, seed=3))
    z = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.complex64)
    value = tn.local_expectation(t, z, 2, normalize=True)
    assert isinstance(value, torch.Tensor) and value.dtype == torch.complex64
    assert np.isclose(value.item(), tn.local_expectation(m, z.numpy(), 2, normalize=True))
    corr = tn.correlation(t, z, 3, z, 0)
    assert isinstance(corr, torch.Tensor)
    assert np.isclose(corr.item(), tn.correlation(m, z.numpy(), 3, z.numpy(), 0), atol=1e-5)
    real = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float32)
    same_site = tn.correlation(t, real, 2, z, 2)
    assert same_site.dtype == torch.complex64
    assert np.isclose(same_site.item(), tn.local_expectation(m, real.numpy() @ z.numpy(), 2))
    assert isinstance(t.probabilities(), torch.Tensor)


# ============================================================================== quimb oracle


def test_against_quimb():
    qtn = pytest.importorskip("quimb.tensor")
    m = tn.MPS.random([2, 3, 2, 2, 3], 4, seed=9, dtype="complex128")
    m = m / m.norm()  # quimb's entropies assume a normalised state
    cores = [np.asarray(c) for c in m.cores]
    q = qtn.MatrixProductState([cores[0][0], *cores[1:-1], cores[-1][..., 0]], shape="lpr")
    for k in range(len(m) - 1):
        theirs = np.asarray(q.singular_values(k + 1))
        assert np.allclose(m.singular_values(k)[: theirs.size], theirs, atol=1e-12)
        assert math.isclose(m.entropy(k), float(q.entropy(k + 1)) * math.log(2), abs_tol=1e-10)
    op1, op2 = random_op(2, "complex128", 1), random_op(3, "complex128", 2)
    gated = q.gate(op1, 3, contract=True).gate(op2, 1, contract=True)
    assert np.isclose(tn.correlation(m, op1, 3, op2, 1), q.H @ gated)
    assert np.isclose(tn.local_expectation(m, op2, 4), q.H @ q.gate(op2, 4, contract=True))


# ============================================================================== Jordan–Wigner


@given(
    st.sampled_from(
        [
            ("fermion", "Cdag", "C"),
            ("fermion", "C", "Cdag"),
            ("fermion", "N", "Cdag"),
            ("electron", "Cdagup", "Cdn"),
            ("electron", "Cdagdn", "Cup"),
            ("electron", "Nup", "Cdagdn"),
            ("spin-half", "S+", "Sz"),
        ]
    ),
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(0, 2**31),
)
def test_named_correlations_carry_jordan_wigner_strings(case, i, j, seed):
    site_type, a, b = case
    d = 4 if site_type == "electron" else 2
    m = tn.MPS.random([d] * 5, 3, seed=seed, dtype="complex128")
    mpo = tn.OpSum(5, site=site_type).add(1.0, a, i, b, j).to_mpo(dtype="complex128")
    got = tn.correlation(m, a, i, b, j, site_type=site_type)
    assert complex(got) == pytest.approx(complex(tn.expectation(m, mpo)), abs=1e-12)
    single = tn.OpSum(5, site=site_type).add(1.0, a, i).to_mpo(dtype="complex128")
    got = tn.local_expectation(m, a, i, site_type=site_type, normalize=True)
    want = tn.expectation(m, single) / tn.inner(m, m)
    assert complex(got) == pytest.approx(complex(want), abs=1e-12)


def test_named_operators_need_a_matching_site_type():
    m = tn.MPS.random([2] * 4, 2, seed=0)
    with pytest.raises(ValueError, match="site_type"):
        tn.correlation(m, "Cdag", 0, "C", 2, site_type="fermions")
    with pytest.raises(ValueError, match="site_type"):
        tn.local_expectation(m, "Cdagup", 0, site_type="electron")  # d = 4 sites
    with pytest.raises(ValueError, match="op2"):
        tn.correlation(m, "Cdag", 0, "Cup", 2, site_type="fermion")
    single = tn.MPS.random([2] * 4, 2, seed=0, dtype="float32")
    assert tn.local_expectation(single, "N", 1, site_type="fermion").dtype == single.dtype
