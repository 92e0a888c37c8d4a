"""Numerical robustness: the SVD fallback chain, very long chains, extreme scales, float32, BLAS
threads.

What these tests establish (issue 9, item 3):

- LAPACK failures: gesdd failing hands over to gesvd (the report's ``method`` names the
  splitter, ``"exact"``, not the driver); both failing hands over to Gram/eigh, and then
  ``report.method`` says ``"gram"``. All three failing raises ``LinAlgError``.
- L = 5000 chains: random trains keep finite cores through canonicalisation and the Numba
  kernel and its array-API twin agree on ``log_norm``. Product states with norm 2^±2000:
  ``log_norm`` is exact (kernel and twin); the canonical form cannot hold such a norm in one
  core, so ``canonicalize`` raises ValueError for 2^2000 and, where the centre core would
  underflow to zero, for 2^-2000 too (once a finding: it returned a silent zero).
- Inputs scaled by 1e±300 decompose with full relative accuracy (tt_svd and from_matrix
  rescale by a power of two internally).
- float32: the documented accuracy (exact round trips to 1e-5 relative; ``is_canonical``'s
  default tolerance 1000·ε) holds.
- BLAS thread count (threadpoolctl 1 vs 2): results agree to rounding, not bitwise — the
  tensors agree to ~1e-12 relative, while cores of truncated results may differ by a gauge
  (SVD sign choices), so they are compared as tensors.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import scipy.linalg
from strategies import exact_rtol, rel_error

import tnkit as tn
import tnkit._backend as backend
from tnkit import _kernels

RNG = np.random.default_rng(20240609)

# ---------------------------------------------------------------------- SVD fallback chain


def _driver_log(monkeypatch, failing: set[str]) -> list[str]:
    """Make scipy's SVD fail for the given LAPACK drivers; return the list of drivers asked."""
    original = scipy.linalg.svd
    calls: list[str] = []

    def svd(a, *args, lapack_driver="gesdd", **kwargs):
        calls.append(lapack_driver)
        if lapack_driver in failing:
            raise np.linalg.LinAlgError(f"{lapack_driver} did not converge (injected)")
        return original(a, *args, lapack_driver=lapack_driver, **kwargs)

    monkeypatch.setattr(scipy.linalg, "svd", svd)
    return calls


@pytest.mark.parametrize("method", ["exact", "qr", "auto"])
def test_gesdd_failure_falls_back_to_gesvd(monkeypatch, method):
    x = RNG.standard_normal((6, 5, 4))
    calls = _driver_log(monkeypatch, {"gesdd"})
    m = tn.tt_svd(x, method=method)
    assert rel_error(m.to_dense(), x) < 1e-13
    if "gesdd" in calls:  # auto may pick Gram, which needs no SVD at all
        assert calls.count("gesvd") == calls.count("gesdd")
    # the report names the splitter that ran, not the LAPACK driver under it
    assert m.report.method.startswith("tt_svd/")


SHAPES = [(6, 5, 4), (16, 2, 2), (2, 2, 16), (32, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", ["exact", "qr", "auto", "gram", "randomized"])
@pytest.mark.parametrize("rule", [{}, {"max_bond": 2}, {"rtol": 0.3}])
def test_lapack_failure_falls_back_to_gram(monkeypatch, shape, method, rule):
    x = RNG.standard_normal(shape)

    def fail(a):
        raise np.linalg.LinAlgError("gesdd and gesvd failed (injected)")

    monkeypatch.setattr(backend, "svd", fail)
    m = tn.tt_svd(x, method=method, **rule)
    assert m.report.method == "tt_svd/gram"
    err = np.linalg.norm(m.to_dense() - x)
    assert err <= m.report.abs_error_bound + 1e-12 * np.linalg.norm(x)
    if not rule:
        assert rel_error(m.to_dense(), x) < 1e-10
    assert m.is_canonical(len(m) - 1)


def test_every_factorisation_failing_raises_linalg_error(monkeypatch):
    def fail(*args, **kwargs):
        raise np.linalg.LinAlgError("injected")

    monkeypatch.setattr(backend, "svd", fail)
    monkeypatch.setattr(backend, "eigh", fail)
    for shape in [(6, 5, 4), (32, 3)]:
        with pytest.raises(np.linalg.LinAlgError, match="gesdd, gesvd and Gram/eigh"):
            tn.tt_svd(RNG.standard_normal(shape), method="exact")


def test_gesdd_failure_inside_compress_and_apply(monkeypatch):
    m = tn.MPS.random([3] * 6, 6, seed=1)
    o = tn.MPO.random([3] * 6, [3] * 6, 2, seed=2)
    expected_c = m.compress(max_bond=3).to_dense()
    expected_a = tn.apply(o, m, max_bond=4).to_dense()
    calls = _driver_log(monkeypatch, {"gesdd"})
    assert rel_error(m.compress(max_bond=3).to_dense(), expected_c) < 1e-12
    assert rel_error(tn.apply(o, m, max_bond=4).to_dense(), expected_a) < 1e-10
    assert "gesdd" not in calls or "gesvd" in calls


# ---------------------------------------------------------------------- very long chains

LONG = 5000


@pytest.fixture(scope="module")
def long_random():
    return tn.MPS.random([2] * LONG, 3, seed=7)


def test_long_random_chain_stays_finite_and_log_norms_agree(long_random):
    kernel = long_random.log_norm()
    with _kernels.disabled():
        twin = long_random.log_norm()
    assert math.isfinite(kernel)
    assert abs(kernel - twin) <= 1e-12 * LONG
    for centre in (0, LONG // 2, LONG - 1):
        c = long_random.canonicalize(centre)
        assert all(np.all(np.isfinite(core)) for core in c.cores)
        # the centre core carries the whole norm
        centre_norm = np.linalg.norm(c.cores[centre])
        assert centre_norm > 0
        assert abs(math.log(centre_norm) - kernel) <= 1e-12 * LONG
        assert abs(c.log_norm() - kernel) <= 1e-12 * LONG
    with _kernels.disabled():
        c = long_random.canonicalize(LONG // 3)
        assert all(np.all(np.isfinite(core)) for core in c.cores)
        assert abs(math.log(np.linalg.norm(c.cores[LONG // 3])) - kernel) <= 1e-12 * LONG


def _product_state(per_site: float, length: int = 4000) -> tn.MPS:
    core = np.zeros((1, 2, 1))
    core[0, 0, 0] = per_site
    return tn.MPS([core] * length)


@pytest.mark.parametrize("log2_norm", [2000, -2000])
def test_product_state_log_norm_is_exact(log2_norm):
    m = _product_state(2.0 ** (log2_norm / 4000))
    exact = log2_norm * math.log(2.0)
    assert abs(m.log_norm() - exact) <= 1e-13 * abs(exact)
    with _kernels.disabled():
        assert abs(m.log_norm() - exact) <= 1e-13 * abs(exact)


@pytest.mark.parametrize("kernels", [True, False])
def test_canonical_form_holds_a_norm_beyond_double_range(kernels):
    """Norm 2^2000: the cores are isometries, the centre core a mantissa, and the scale
    exponent the rest (it was refused before issue 16)."""
    m = _product_state(2.0**0.5)  # norm 2^2000
    context = _kernels.disabled() if not kernels else contextlib.nullcontext()
    with context:
        for centre in (0, 2000, 3999):
            c = m.canonicalize(centre)
            assert c.is_canonical(centre) and c.scale_exponent > 1000
            assert math.isclose(c.log_norm(), 2000 * math.log(2), rel_tol=1e-12)
            assert c.norm() == math.inf


def test_canonical_form_of_a_tiny_norm_is_not_silently_zero():
    m = _product_state(2.0**-0.5)  # norm 2^-2000
    try:
        c = m.canonicalize(2000)
    except ValueError:
        return  # refusing, as for 2^2000, would be fine
    assert math.isclose(c.log_norm(), m.log_norm(), rel_tol=1e-12)


# ---------------------------------------------------------------------- extreme scales


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e200, 1e300])
@pytest.mark.parametrize("method", ["auto", "exact", "qr", "gram"])
@pytest.mark.parametrize("rule", [{}, {"rtol": 1e-3}, {"max_bond": 2}, {"atol": 1e-3}])
def test_tt_svd_keeps_relative_accuracy_at_extreme_scales(scale, method, rule):
    x = np.random.default_rng(7).standard_normal((4, 4, 4, 4))  # not the order-dependent RNG
    rule = {k: v * scale if k == "atol" else v for k, v in rule.items()}
    reference = tn.tt_svd(
        x, method=method, **{k: v / scale if k == "atol" else v for k, v in rule.items()}
    )
    with np.errstate(all="raise"):  # no overflow or underflow anywhere on the way
        m = tn.tt_svd(x * scale, method=method, **rule)
        dense = m.to_dense()
    assert m.bond_dims == reference.bond_dims
    assert rel_error(dense / scale, reference.to_dense()) < 1e-12
    assert math.isclose(m.report.norm, np.linalg.norm(x) * scale, rel_tol=1e-12)
    # Gram matrices square the conditioning: their cut weights agree to ~1e-8 across scales
    # (some draws met 8e-9; "auto" may take them).
    agree = 1e-6 if method in ("gram", "auto") else 1e-9
    assert math.isclose(
        m.report.rel_error_bound, reference.report.rel_error_bound, rel_tol=agree, abs_tol=1e-15
    )
    err = np.linalg.norm(dense / scale - x)
    assert err <= m.report.abs_error_bound / scale + 1e-12 * np.linalg.norm(x)
    if not rule:
        assert rel_error(dense / scale, x) < exact_rtol("float64")


@pytest.mark.parametrize("scale", [1e-300, 1e300])
@pytest.mark.parametrize("rule", [{}, {"rtol": 0.2}, {"max_bond": 3}])
def test_from_matrix_keeps_relative_accuracy_at_extreme_scales(scale, rule):
    W = RNG.standard_normal((16, 27))
    reference = tn.MPO.from_matrix(W, (4, 4), (3, 9), **rule)
    with np.errstate(all="raise"):
        o = tn.MPO.from_matrix(W * scale, (4, 4), (3, 9), **rule)
        matrix = o.to_matrix()
    assert o.bond_dims == reference.bond_dims
    assert rel_error(matrix / scale, reference.to_matrix()) < 1e-12
    assert math.isclose(
        o.report.rel_error_bound, reference.report.rel_error_bound, rel_tol=1e-9, abs_tol=1e-15
    )


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_float32_keeps_relative_accuracy_at_extreme_scales(scale):
    x = RNG.standard_normal((4, 4, 4)).astype(np.float32)
    with np.errstate(all="raise"):
        m = tn.tt_svd(x * np.float32(scale))
        dense = m.to_dense()
    assert m.dtype == np.float32
    assert rel_error(dense.astype(np.float64) / scale, x) < exact_rtol("float32")


def test_subnormal_input_decomposes():
    x = RNG.standard_normal((3, 4, 5)) * 1e-310  # subnormal entries: few significant bits
    m = tn.tt_svd(x)
    assert rel_error(m.to_dense(), x) < 1e-8 * 1e5  # relative to what subnormals can hold


# ---------------------------------------------------------------------- float32


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_float32_paths_keep_documented_accuracy(dtype):
    """Docs (concepts.md, strategies.exact_rtol): exact round trips to 1e-5 in single precision,
    no silent upcast, canonical checks at 1000·ε of the dtype."""
    tol = exact_rtol(dtype)
    x = RNG.standard_normal((4, 3, 4, 3)).astype(dtype)
    m = tn.tt_svd(x)
    assert m.dtype == np.dtype(dtype)
    assert rel_error(m.to_dense(), x) < tol
    W = RNG.standard_normal((12, 12)).astype(dtype)
    o = tn.MPO.from_matrix(W, (3, 4), (4, 3))
    assert o.dtype == np.dtype(dtype) and rel_error(o.to_matrix(), W) < tol
    r = tn.MPS.random([2] * 8, 6, seed=3, dtype=dtype)
    for centre in (0, 4, 7):
        c = r.canonicalize(centre)
        assert c.dtype == np.dtype(dtype) and c.is_canonical(centre)
        assert rel_error(c.to_dense(), r.to_dense()) < tol
    assert math.isclose(r.norm(), np.linalg.norm(r.to_dense().astype(np.complex128)), rel_tol=tol)
    c = r.compress(rtol=0.1)
    err = np.linalg.norm((c.to_dense() - r.to_dense()).astype(np.complex128))
    assert err <= c.report.abs_error_bound + 1e3 * np.finfo(np.float32).eps * r.norm()
    op = tn.MPO.random([2] * 8, [2] * 8, 2, seed=4, dtype=dtype)
    exact = (op @ r).to_dense()
    for method in ("zipup", "density", "fit", "exact"):
        y = tn.apply(op, r, method=method)
        assert y.dtype == np.dtype(dtype)
        assert rel_error(y.to_dense(), exact) < 1e-3  # the apply bound's floor, sqrt(64·L·ε)


# ---------------------------------------------------------------------- BLAS threads


def _agree(a, b) -> float:
    return tn.distance(a, b) / max(a.norm(), 1e-300)


@pytest.mark.parametrize("name", ["tt_svd", "canonicalize", "compress", "apply", "apply-density"])
def test_results_do_not_depend_on_blas_threads(name):
    """Sizes just above the library's own one-thread limits (short side > 256 for splits,
    > 2**20 entries for sweeps), so that the BLAS thread count really changes."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(5)
    if name == "tt_svd":
        x = rng.standard_normal((260, 4, 260))

        def run():
            return tn.tt_svd(x, rtol=0.5)
    elif name in ("canonicalize", "compress"):
        m = tn.MPS.random([2**19 + 8, 3, 4], 12, seed=1)  # core 0: 2**19·12 entries

        def run():
            return m.canonicalize(1) if name == "canonicalize" else m.compress(max_bond=5)
    else:
        o = tn.MPO.random([4] * 5, [4] * 5, 3, seed=2)
        s = tn.MPS.random([4] * 5, 64, seed=3)
        method = "density" if name == "apply-density" else "zipup"

        def run():
            return tn.apply(o, s, max_bond=32, method=method)

    results = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads, user_api="blas"):
            results.append(run())
    one, two = results
    assert one.bond_dims == two.bond_dims
    assert _agree(one, two) < 1e-11


def test_rescaled_compress_spreads_a_large_norm_in_float32():
    m = tn.MPS(
        [c * np.float32(1e25) for c in tn.MPS.random([3, 2, 2], 2, seed=0, dtype="float32").cores]
    )
    c = m.compress(max_bond=2, method="rescaled")  # norm ~1e75: 1e25 per core fits float32
    assert all(np.all(np.isfinite(core)) for core in c.cores)
