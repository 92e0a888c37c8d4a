"""One code path, several array libraries: NumPy, PyTorch (CPU), array-api-strict, CuPy.

Every result must be an array of the input's library (and device), of the input's dtype (no
silent upcast), and agree with NumPy in double precision on the same input values: bond
dimensions exactly; tensors, measured errors and reported bounds within the dtype's tolerance.
Optional libraries are skipped when missing; CuPy also when no CUDA device is usable.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat as aac
import numpy as np
import pytest
from strategies import roundoff

import tnkit as tn

DTYPES = ["float32", "float64", "complex64", "complex128"]
DOUBLE = {  # the double-precision dtype of the same kind: NumPy references run in it
    "float32": "float64",
    "float64": "float64",
    "complex64": "complex128",
    "complex128": "complex128",
}
METHODS = ["exact", "qr", "gram", "randomized", "auto"]


def tol(dtype: str) -> float:
    return 1e-4 if dtype in ("float32", "complex64") else 1e-10


# ============================================================================== backends


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[np.ndarray], Any]  # NumPy array -> backend array (copy)
    to_numpy: Callable[[Any], np.ndarray]  # backend array -> NumPy array
    array_type: type
    dtype_of: Callable[[str], Any]  # dtype name -> the library's dtype

    def namespace(self):
        return aac.array_namespace(self.make(np.zeros(1)))


def _numpy() -> Backend:
    return Backend("numpy", lambda a: np.array(a, copy=True), np.asarray, np.ndarray, np.dtype)


def _torch() -> Backend:
    torch = pytest.importorskip("torch")
    return Backend(
        "torch",
        lambda a: torch.from_numpy(np.array(a, copy=True)),
        lambda t: t.detach().cpu().numpy(),
        torch.Tensor,
        lambda name: getattr(torch, name),
    )


def _array_api_strict() -> Backend:
    xp = pytest.importorskip("array_api_strict")
    return Backend(
        "array_api_strict",
        lambda a: xp.asarray(np.array(a, copy=True)),
        lambda a: np.from_dlpack(xp.asarray(a, device=xp.Device("CPU_DEVICE"))),
        type(xp.asarray(0.0)),
        lambda name: getattr(xp, name),
    )


def _cupy() -> Backend:
    cupy = pytest.importorskip("cupy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - no driver, no runtime, no device: all mean skip
        pytest.skip(f"cupy: no usable CUDA device ({type(exc).__name__}: {exc})")
    if count == 0:
        pytest.skip("cupy: no CUDA device")
    return Backend("cupy", cupy.asarray, cupy.asnumpy, cupy.ndarray, np.dtype)


LOADERS = {
    "numpy": _numpy,
    "torch": _torch,
    "array_api_strict": _array_api_strict,
    "cupy": _cupy,
}


@pytest.fixture(
    scope="module",
    params=[
        "numpy",
        "torch",
        "array_api_strict",
        pytest.param("cupy", marks=pytest.mark.gpu),
    ],
)
def backend(request) -> Backend:
    return LOADERS[request.param]()


@pytest.fixture(params=DTYPES)
def dtype(request) -> str:
    return request.param


# ============================================================================== helpers


def gaussian(shape, dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def with_spectrum(rows: int, cols: int, s, dtype: str, seed: int) -> np.ndarray:
    """A matrix with the given singular values (random singular vectors)."""
    rng = np.random.default_rng(seed)
    n = min(rows, cols)
    cplx = dtype.startswith("complex")

    def isometry(m):
        g = rng.standard_normal((m, n))
        if cplx:
            g = g + 1j * rng.standard_normal((m, n))
        return np.linalg.qr(g)[0]

    u, v = isometry(rows), isometry(cols)
    return ((u * np.asarray(s, dtype=float)) @ v.conj().T).astype(dtype)


def decaying(rows: int, cols: int, dtype: str, seed: int, ratio: float = 0.9) -> np.ndarray:
    """A matrix with singular values ratio**k (separated, none numerically zero)."""
    return with_spectrum(rows, cols, ratio ** np.arange(min(rows, cols)), dtype, seed)


def check_native(backend: Backend, arrays, dtype: str, like=None) -> None:
    """Arrays of the backend's library, namespace, dtype (and device of ``like``)."""
    xp = backend.namespace()
    for a in arrays:
        assert type(a) is backend.array_type, (type(a), backend.name)
        assert aac.array_namespace(a) is xp
        assert a.dtype == backend.dtype_of(dtype), (a.dtype, dtype)
        if like is not None:
            assert aac.device(a) == aac.device(like)


def check_train(backend: Backend, train, dtype: str, like=None) -> None:
    check_native(backend, train.cores, dtype, like)


def dense(backend: Backend, train) -> np.ndarray:
    """The train's dense tensor in NumPy, checked to be native first."""
    d = train.to_dense()
    assert type(d) is backend.array_type
    return backend.to_numpy(d)


def rel(a, b) -> float:
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def np_cores(backend: Backend, train, dtype: str):
    """The train's cores as NumPy arrays in double precision (same values)."""
    return [backend.to_numpy(c).astype(DOUBLE[dtype]) for c in train.cores]


def check_against(backend, got, ref, x_ref, dtype: str) -> None:
    """``got`` (backend train, input precision) agrees with ``ref`` (NumPy, double)."""
    t = tol(dtype)
    assert got.bond_dims == ref.bond_dims
    got_dense, ref_dense = dense(backend, got), np.asarray(ref.to_dense())
    scale = float(np.linalg.norm(x_ref.astype(DOUBLE[dtype])))
    assert np.linalg.norm(got_dense - ref_dense) <= t * scale
    if ref.report is not None:
        r_got, r_ref = got.report, ref.report
        assert r_got.bond_dims_after == r_ref.bond_dims_after
        assert r_got.rel_error_bound == pytest.approx(r_ref.rel_error_bound, abs=t)
        assert r_got.abs_error_bound == pytest.approx(r_ref.abs_error_bound, abs=t * scale)
        assert r_got.tolerance_met == r_ref.tolerance_met
        # Rigorous bound, up to rounding in the input's precision.
        err = np.linalg.norm(got_dense.astype(ref_dense.dtype) - x_ref.astype(ref_dense.dtype))
        assert err <= r_got.abs_error_bound + t * scale


# ============================================================================== tt_svd


def test_tt_svd_exact(backend, dtype):
    x = gaussian((4, 5, 6, 3), dtype, seed=1)
    X = backend.make(x)
    m = tn.tt_svd(X)
    ref = tn.tt_svd(x.astype(DOUBLE[dtype]))
    check_train(backend, m, dtype, like=X)
    assert m.bond_dims == (4, 18, 3)
    assert m.centre == len(m) - 1
    assert m.report.method == ref.report.method
    assert m.report.rel_error_bound <= tol(dtype)
    assert rel(dense(backend, m), x) <= tol(dtype)
    check_against(backend, m, ref, x, dtype)
    assert m.is_canonical(len(m) - 1)


@pytest.mark.parametrize(
    "rule", [{"max_bond": 3}, {"rtol": 0.2}, {"atol": 0.5}, {"max_bond": 4, "rtol": 1e-3}], ids=str
)
def test_tt_svd_truncated(backend, dtype, rule):
    # Low rank plus noise: a spectrum the tolerances cut at different places.
    core = tn.MPS.random((4, 6, 5, 3), 3, seed=2, dtype=DOUBLE[dtype]).to_dense()
    x = (np.asarray(core) / np.linalg.norm(core) + 0.02 * gaussian(core.shape, dtype, 3)).astype(
        dtype
    )
    X = backend.make(x)
    m = tn.tt_svd(X, **rule)
    ref = tn.tt_svd(x.astype(DOUBLE[dtype]), **rule)
    check_train(backend, m, dtype, like=X)
    check_against(backend, m, ref, x, dtype)
    if "rtol" in rule and "max_bond" not in rule:
        assert m.report.tolerance_met
        assert rel(dense(backend, m), x) <= rule["rtol"] * (1 + tol(dtype))
    if "atol" in rule:
        err = np.linalg.norm(dense(backend, m) - x)
        assert err <= rule["atol"] * (1 + tol(dtype))


# auto: one unfolding (dims of two sites), sized so _choose_method picks each branch.
AUTO_CASES = [
    ("exact", (16, 24), None),  # near-square, nothing to cut (small: SVD's accuracy)
    ("qr", (64, 8), None),  # tall: long side >= 4x the short one
    ("gram", (8, 64), None),  # wide: Gram of the short side (nothing cut: still exact)
    ("gram", (64, 96), 24),  # cap only, too big a cap for randomized
    ("randomized", (64, 128), 4),  # >= 64 rows, max_bond + oversampling <= min side / 4
]


def _method_cases(method: str, dtype: str):
    """(x, dims, max_bond, expected report.method) for which ``method`` really runs."""
    if method != "auto":
        # Every unfolding wide ((8, 512) then (32, 64)) and cut hard: no Gram fallback.
        return [(gaussian((8, 8, 64), dtype, seed=4), None, 4, f"tt_svd/{method}")]
    return [
        (decaying(*shape, dtype, seed=5), shape, bond, f"tt_svd/{branch}")
        for branch, shape, bond in AUTO_CASES
    ]


@pytest.mark.parametrize("method", METHODS)
def test_tt_svd_methods(backend, dtype, method):
    for x, dims, max_bond, expected in _method_cases(method, dtype):
        X = backend.make(x)
        m = tn.tt_svd(X, dims, max_bond=max_bond, method=method)
        ref = tn.tt_svd(x.astype(DOUBLE[dtype]), dims, max_bond=max_bond, method=method)
        assert m.report.method == expected, (method, x.shape)
        assert ref.report.method == expected, (method, x.shape)
        check_train(backend, m, dtype, like=X)
        check_against(backend, m, ref, x, dtype)
        # Every method keeps the left-canonical form of TT-SVD.
        assert m.is_canonical(len(m) - 1)


def test_tt_svd_method_matches_exact_svd(backend):
    """Randomized and Gram runs reach the optimal truncation error on a decaying spectrum."""
    x = decaying(64, 128, "float64", seed=6, ratio=0.7)
    X = backend.make(x)
    best = tn.tt_svd(x, (64, 128), max_bond=4, method="exact").report.abs_error_bound
    for method in ("randomized", "gram", "qr"):
        m = tn.tt_svd(X, (64, 128), max_bond=4, method=method)
        assert m.report.method == f"tt_svd/{method}"
        assert m.report.abs_error_bound == pytest.approx(best, rel=1e-8)


def test_bound_rigorous_when_little_is_cut(backend, dtype):
    """measured ≤ bound + c·ε·‖x‖ (DESIGN §1) also when the cut is a tiny part of ‖x‖.

    Eight unit singular values and a flat tail holding 1e-5 or 1e-4 of the weight, cut at
    max_bond=8 by every method. The exact SVD's bound comes from the singular values and
    is tight (c < 1 measured); Gram and randomized take the cut from ‖a‖² − ‖Qᴴa‖² when
    that is above 1e-6·‖a‖², whose rounding (~ε‖a‖² summed) is amplified by ‖a‖/bound:
    up to ~700ε·‖x‖ measured, within the suite's ``roundoff`` slack.
    """
    eps = float(np.finfo(np.dtype(dtype)).eps)
    for tail in (1e-5, 1e-4):
        for seed in range(2):
            s = np.concatenate([np.ones(8), np.full(56, np.sqrt(tail / 56))])
            x = with_spectrum(64, 512, s, dtype, seed)
            x64 = x.astype(DOUBLE[dtype])
            norm = float(np.linalg.norm(x64))
            for method in ("exact", "gram", "randomized"):
                m = tn.tt_svd(backend.make(x), (64, 512), max_bond=8, method=method)
                assert m.report.method == f"tt_svd/{method}"
                err = np.linalg.norm(dense(backend, m).astype(DOUBLE[dtype]) - x64)
                slack = 100 * eps * norm if method == "exact" else roundoff(dtype, norm, x.size)
                assert err <= m.report.abs_error_bound + slack, (method, tail, seed)


# ============================================================================== MPO <-> matrix


def test_from_matrix_round_trip(backend, dtype):
    W = gaussian((12, 20), dtype, seed=7)
    Wb = backend.make(W)
    o = tn.MPO.from_matrix(Wb, (3, 4), (4, 5))
    check_train(backend, o, dtype, like=Wb)
    M = o.to_matrix()
    check_native(backend, [M], dtype, like=Wb)
    assert tuple(M.shape) == (12, 20)
    assert rel(backend.to_numpy(M), W) <= tol(dtype)
    assert (o.out_dims, o.in_dims) == ((3, 4), (4, 5))

    t = tn.MPO.from_matrix(Wb, (3, 4), (4, 5), max_bond=3)
    ref = tn.MPO.from_matrix(W.astype(DOUBLE[dtype]), (3, 4), (4, 5), max_bond=3)
    check_train(backend, t, dtype, like=Wb)
    assert t.bond_dims == ref.bond_dims == (3,)
    got, want = backend.to_numpy(t.to_matrix()), np.asarray(ref.to_matrix())
    assert np.linalg.norm(got - want) <= tol(dtype) * np.linalg.norm(W)
    assert t.report.rel_error_bound == pytest.approx(ref.report.rel_error_bound, abs=tol(dtype))
    assert t.report.params_before == W.size


def test_from_matrix_padded(backend, dtype):
    """Zero padding (concat + zeros on the input's device) on every backend."""
    W = gaussian((5, 7), dtype, seed=8)
    Wb = backend.make(W)
    o = tn.MPO.from_matrix(Wb, 2, 2)
    check_train(backend, o, dtype, like=Wb)
    M, P = o.to_matrix(), o.to_matrix(padded=True)
    check_native(backend, [M, P], dtype, like=Wb)
    assert tuple(M.shape) == (5, 7)
    assert tuple(P.shape) == (math.prod(o.out_dims), math.prod(o.in_dims))
    assert rel(backend.to_numpy(M), W) <= tol(dtype)
    P_np = backend.to_numpy(P)
    assert np.abs(P_np[5:, :]).max(initial=0.0) <= tol(dtype) * np.abs(W).max()
    assert np.abs(P_np[:, 7:]).max(initial=0.0) <= tol(dtype) * np.abs(W).max()


# ============================================================================== construction


def test_construction_from_cores(backend, dtype):
    ref = tn.MPS.random([2, 3, 4], 3, seed=9, dtype=dtype)
    cores = [backend.make(np.asarray(c)) for c in ref.cores]
    m = tn.MPS(cores)
    check_train(backend, m, dtype, like=cores[0])
    assert m.bond_dims == ref.bond_dims and m.phys_dims == (2, 3, 4)
    assert m.centre is None and m.report is None
    assert rel(dense(backend, m), ref.to_dense()) <= tol(dtype)

    ref_o = tn.MPO.random([2, 3], [3, 2], 4, seed=10, dtype=dtype)
    o = tn.MPO([backend.make(np.asarray(c)) for c in ref_o.cores])
    check_train(backend, o, dtype)
    M = o.to_matrix()
    check_native(backend, [M], dtype)
    assert rel(backend.to_numpy(M), ref_o.to_matrix()) <= tol(dtype)


def test_random_like(backend, dtype):
    like = backend.make(np.zeros(2, dtype=dtype))
    m = tn.MPS.random([2, 3, 2, 4], 3, seed=11, dtype=dtype, like=like)
    ref = tn.MPS.random([2, 3, 2, 4], 3, seed=11, dtype=dtype)
    check_train(backend, m, dtype, like=like)
    assert m.bond_dims == ref.bond_dims == (2, 3, 3)
    for got, want in zip(m.cores, ref.cores, strict=True):  # same seed, same numbers
        np.testing.assert_array_equal(backend.to_numpy(got), want)

    o = tn.MPO.random([2, 3], [3, 2], 4, seed=12, dtype=dtype, like=like)
    ref_o = tn.MPO.random([2, 3], [3, 2], 4, seed=12, dtype=dtype)
    check_train(backend, o, dtype, like=like)
    for got, want in zip(o.cores, ref_o.cores, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(got), want)


def test_identity_like(backend, dtype):
    like = backend.make(np.zeros(2, dtype=dtype))
    o = tn.MPO.identity([2, 3, 2], dtype=dtype, like=like)
    check_train(backend, o, dtype, like=like)
    assert o.bond_dims == (1, 1)
    M = o.to_matrix()
    check_native(backend, [M], dtype, like=like)
    np.testing.assert_array_equal(backend.to_numpy(M), np.eye(12))


# ============================================================================== canonical forms


def test_canonicalize(backend, dtype):
    like = backend.make(np.zeros(1, dtype=dtype))
    m = tn.MPS.random([2, 3, 4, 3, 2], 4, seed=13, dtype=dtype, like=like)
    x = dense(backend, m)
    assert not m.is_canonical(0)  # Gaussian cores are not isometries
    for centre in (0, 2, 4, -1):
        c = m.canonicalize(centre)
        check_train(backend, c, dtype, like=like)
        assert c.centre == centre % len(m)
        assert c.is_canonical(centre)
        assert rel(dense(backend, c), x) <= tol(dtype)
        # Moving a known centre sweeps only part of the chain: still canonical.
        assert c.canonicalize(1).is_canonical(1)

    o = tn.MPO.random([2, 3, 2], [2, 2, 3], 5, seed=14, dtype=dtype, like=like)
    W = backend.to_numpy(o.to_matrix())
    for centre in (0, 1, 2):
        c = o.canonicalize(centre)
        check_train(backend, c, dtype, like=like)
        assert c.is_canonical(centre)
        assert rel(backend.to_numpy(c.to_matrix()), W) <= tol(dtype)


# ============================================================================== compression


@pytest.mark.parametrize("rule", [{"max_bond": 3}, {"rtol": 0.3}, {}], ids=str)
def test_compress(backend, dtype, rule):
    like = backend.make(np.zeros(1, dtype=dtype))
    m = tn.MPS.random([2, 3, 2, 4, 2, 3], 8, seed=15, dtype=dtype, like=like)
    ref_in = tn.MPS(np_cores(backend, m, dtype))
    x = dense(backend, m)
    c = m.compress(**rule)
    ref = ref_in.compress(**rule)
    check_train(backend, c, dtype, like=like)
    check_against(backend, c, ref, x, dtype)
    assert c.centre == 0 and c.is_canonical(0)
    if "rtol" in rule:
        assert rel(dense(backend, c), x) <= rule["rtol"] * (1 + tol(dtype))
    if not rule:  # exact: nothing but numerical zeros cut
        assert rel(dense(backend, c), x) <= tol(dtype)


def test_compress_mpo(backend, dtype):
    like = backend.make(np.zeros(1, dtype=dtype))
    o = tn.MPO.random([2, 3, 2, 2], [3, 2, 2, 2], 9, seed=16, dtype=dtype, like=like)
    ref_in = tn.MPO(np_cores(backend, o, dtype))
    for rule in ({"max_bond": 2}, {"rtol": 0.4}):
        c = o.compress(**rule)
        ref = ref_in.compress(**rule)
        check_train(backend, c, dtype, like=like)
        assert c.bond_dims == ref.bond_dims
        got, want = backend.to_numpy(c.to_matrix()), np.asarray(ref.to_matrix())
        assert np.linalg.norm(got - want) <= tol(dtype) * np.linalg.norm(want)
        assert c.report.rel_error_bound == pytest.approx(ref.report.rel_error_bound, abs=tol(dtype))


def test_norm(backend, dtype):
    like = backend.make(np.zeros(1, dtype=dtype))
    m = tn.MPS.random([3, 2, 4, 2, 3], 5, seed=17, dtype=dtype, like=like)
    x = dense(backend, m).astype(DOUBLE[dtype])
    for train in (m, m.canonicalize(2), m.compress(max_bond=2)):
        n = train.norm()
        # a float for NumPy, a 0-d array of the train's library (with gradients) otherwise
        assert isinstance(n, float) if backend.name == "numpy" else n.shape == ()
        want = float(np.linalg.norm(dense(backend, train).astype(DOUBLE[dtype])))
        assert float(n) == pytest.approx(want, rel=tol(dtype))
    assert float(m.norm()) == pytest.approx(float(np.linalg.norm(x)), rel=tol(dtype))
    o = tn.MPO.random([2, 2], [3, 3], 4, seed=18, dtype=dtype, like=like)
    W = backend.to_numpy(o.to_matrix()).astype(DOUBLE[dtype])
    assert float(o.norm()) == pytest.approx(float(np.linalg.norm(W)), rel=tol(dtype))


# ============================================================================== devices


def test_results_stay_on_device():
    """array-api-strict has a second virtual device: nothing may move to the default one."""
    xp = pytest.importorskip("array_api_strict")
    dev = xp.Device("device1")
    x = xp.asarray(gaussian((4, 5, 6), "float64", seed=19), device=dev)
    results = [
        tn.tt_svd(x),
        tn.tt_svd(x, max_bond=2, method="randomized"),
        tn.tt_svd(x, max_bond=2, method="gram"),
        tn.MPO.from_matrix(xp.reshape(x, (10, 12)), 2, 2),  # padded
        tn.MPS.random([2, 3], 2, seed=0, like=x),
        tn.MPO.identity([2, 3], like=x),
    ]
    results += [results[0].compress(max_bond=2), results[0].canonicalize(0)]
    for train in results:
        for core in train.cores:
            assert core.device == dev
        assert train.to_dense().device == dev
    assert results[3].to_matrix().device == dev


# ============================================================================== mixing


@pytest.mark.parametrize(
    "pair", [("numpy", "torch"), ("numpy", "array_api_strict"), ("torch", "array_api_strict")]
)
def test_mixing_libraries_raises(pair):
    a, b = (LOADERS[name]() for name in pair)
    ref = tn.MPS.random([2, 3, 2], 2, seed=20)
    cores = [np.asarray(c) for c in ref.cores]
    with pytest.raises(TypeError, match="cores"):
        tn.MPS([a.make(cores[0]), b.make(cores[1]), a.make(cores[2])])
    ref_o = tn.MPO.random([2, 2], [2, 2], 2, seed=21)
    ocores = [np.asarray(c) for c in ref_o.cores]
    with pytest.raises(TypeError, match="cores"):
        tn.MPO([b.make(ocores[0]), a.make(ocores[1])])


# ============================================================================== torch extras


def _torch_param(torch, shape, dtype, seed):
    return torch.from_numpy(gaussian(shape, dtype, seed)).requires_grad_(True)


@pytest.mark.parametrize("dtype", ["float32", "complex128"])
def test_torch_requires_grad(dtype):
    """Parameters that require grad go through every host transfer (detach) without error."""
    torch = pytest.importorskip("torch")
    be = _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # see test_torch_requires_grad_no_warning
        x = _torch_param(torch, (4, 5, 6), dtype, seed=22)
        for method in METHODS:
            m = tn.tt_svd(x, max_bond=3, method=method)
            check_train(be, m, dtype)
        m = tn.tt_svd(x)
        assert rel(be.to_numpy(m.to_dense()), x.detach().numpy()) <= tol(dtype)
        cores = [
            _torch_param(torch, (1, 2, 3), dtype, 23),
            _torch_param(torch, (3, 2, 1), dtype, 24),
        ]
        p = tn.MPS(cores)
        for train in (m, p):
            assert train.norm() > 0
            assert train.canonicalize(0).is_canonical(0)
            c = train.compress(max_bond=2)
            check_train(be, c, dtype)
            train.compress(rtol=0.5)
            repr(train)
        W = _torch_param(torch, (12, 8), dtype, seed=25)
        o = tn.MPO.from_matrix(W, (3, 4), (2, 4), max_bond=3)
        check_train(be, o, dtype)
        assert tuple(o.to_matrix().shape) == (12, 8)
        tn.MPS.random([2, 2], 2, seed=0, dtype=dtype, like=W)
        tn.MPO.identity([2, 2], dtype=dtype, like=W)


def test_torch_requires_grad_no_warning():
    """Library internals should not leak torch's 'requires_grad to scalar' UserWarning."""
    torch = pytest.importorskip("torch")
    x = _torch_param(torch, (4, 5, 6), "float64", seed=26)
    # torch warns once per process unless told otherwise: make the test independent of order.
    always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m = tn.tt_svd(x, max_bond=3)
            m.norm()
            m.compress(rtol=0.1)
    finally:
        torch.set_warn_always(always)


def test_torch_outputs_are_plain_tensors():
    """No lazy conjugate bit on complex outputs: ``.numpy()`` works on every core."""
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(gaussian((4, 5, 6), "complex128", seed=27))
    m = tn.tt_svd(x, max_bond=3)
    for train in (m, m.compress(max_bond=2), m.canonicalize(0), m.canonicalize(1)):
        for core in train.cores:
            assert not core.is_conj()
            core.numpy()
        assert not train.to_dense().is_conj()
