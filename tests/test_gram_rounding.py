"""Gram rounding of trains (compress with a small cap on large bonds): bound, canonical form.

The trains are long enough to take the path (bonds ≥ 64, cap ≤ half) but small to build.
"""

from __future__ import annotations

import numpy as np
import pytest

import tnkit as tn
from tnkit.compress import gram_rounding, rounds_by_gram
from tnkit.truncation import Truncation


def random_state(length: int, bond: int, dtype: str, seed: int) -> tn.MPS:
    rng = np.random.default_rng(seed)
    dims = [min(2 ** min(k, length - k), bond) for k in range(length + 1)]
    cores = []
    for k in range(length):
        shape = (dims[k], 2, dims[k + 1])
        core = rng.standard_normal(shape)
        if dtype.startswith("complex"):
            core = core + 1j * rng.standard_normal(shape)
        cores.append((core / np.sqrt(2 * dims[k])).astype(dtype))
    return tn.MPS(cores)


@pytest.mark.parametrize("dtype", ["float64", "complex128", "float32"])
@pytest.mark.parametrize("centre", [None, 0, 5, 13])
def test_gram_rounding_matches_the_svd_sweep(dtype, centre):
    m = random_state(14, 64, dtype, seed=3)
    if centre is not None:
        m = m.canonicalize(centre)
    c = m.compress(max_bond=16)
    ref = m.compress(max_bond=16, svd_method="qr")
    # float32: the allowance for rounding (64·L·ε per ‖x‖²) is too large to measure this cut
    assert (c.report.method == "gram-rounding") == (dtype != "float32")
    assert c.centre == 0 and c.is_canonical(0, tol=1e-4 if dtype == "float32" else None)
    assert c.bond_dims == ref.bond_dims
    norm = m.norm()
    err = tn.distance(m, c)
    ref_err = tn.distance(m, ref)
    eps = np.finfo(dtype).eps
    assert err <= c.report.abs_error_bound + 1e3 * eps * norm
    assert err == pytest.approx(ref_err, rel=1e-3 if dtype == "float32" else 1e-8)
    assert c.report.abs_error_bound <= ref_err * (1 + 1e-3) + np.sqrt(1e4 * eps) * norm
    assert c.report.norm == pytest.approx(norm, rel=1e-4)


def test_gram_rounding_hands_over_when_nothing_is_cut():
    m = random_state(12, 8, "float64", seed=1)
    inflated = m + 0 * m  # bonds doubled, same rank: a cap above the rank cuts nothing
    big = inflated + inflated + inflated + inflated  # bonds 64, rank 8
    assert max(big.bond_dims) >= 64
    c = big.compress(max_bond=16)
    assert c.report.method != "gram-rounding"  # a cut at rounding level is left to QR + SVD
    assert tn.distance(c, big) <= 1e-10 * big.norm()


def test_rounds_by_gram_only_for_cap_only_requests_far_below():
    cores = tuple(random_state(14, 64, "float64", seed=0).cores)
    assert rounds_by_gram(cores, Truncation(max_bond=16))
    assert not rounds_by_gram(cores, Truncation(max_bond=48))
    assert not rounds_by_gram(cores, Truncation(max_bond=16, rtol=0.5))
    small = tuple(random_state(10, 16, "float64", seed=0).cores)
    assert not rounds_by_gram(small, Truncation(max_bond=4))
    assert gram_rounding(cores, None, 16) is not None


def _spy(monkeypatch, name: str) -> list:
    """Count the calls of ``tnkit.compress.<name>`` (still running the original)."""
    import tnkit.compress as compress_module

    calls: list = []
    original = getattr(compress_module, name)

    def spied(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(compress_module, name, spied)
    return calls


def _near_bond(length: int, bond: int, noise: float, seed: int) -> tn.MPS:
    """A bond-``bond`` state plus ``noise`` of its norm in a bond-64 state."""
    exact = random_state(length, bond, "float64", seed)
    extra = random_state(length, 64, "float64", seed + 1)
    return exact + (noise * exact.norm() / extra.norm()) * extra


@pytest.mark.parametrize("noise", [1.0, 5e-5])
def test_gram_rounding_error_by_pythagoras_or_by_overlap(monkeypatch, noise):
    """A large cut is measured as ‖x‖² − ‖z‖² (z projects x), a small one by an overlap
    sweep; either way the bound covers the error and is tight."""
    m = _near_bond(14, 16, noise, seed=5)
    overlaps = _spy(monkeypatch, "_overlap_real")
    c = m.compress(max_bond=16)
    assert c.report.method == "gram-rounding"
    assert bool(overlaps) == (noise < 1e-3)
    ref = m.compress(max_bond=16, svd_method="qr")
    err, ref_err = tn.distance(m, c), tn.distance(m, ref)
    assert err == pytest.approx(ref_err, rel=1e-6)
    assert err <= c.report.abs_error_bound
    assert c.report.abs_error_bound <= ref_err * (1 + 1e-3)


def test_gram_rounding_through_rank_deficient_left_parts(monkeypatch):
    """Where a left Gram matrix is singular (a sum with repeated terms), Cholesky fails and
    that bond keeps the Gram matrix itself: the result is the same truncation."""
    m = random_state(14, 64, "complex128", seed=2)
    other = random_state(14, 32, "complex128", seed=3)
    big = m + 0.5 * m + other  # bonds up to 160, left parts of rank ≤ 96
    full_grams = _spy(monkeypatch, "_hermitian_from_upper")
    c = big.compress(max_bond=16)
    ref = big.compress(max_bond=16, svd_method="qr")
    assert c.report.method == "gram-rounding" and full_grams
    assert c.bond_dims == ref.bond_dims and c.is_canonical(0)
    assert tn.distance(big, c) == pytest.approx(tn.distance(big, ref), rel=1e-8)
    assert tn.distance(big, c) <= c.report.abs_error_bound


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128", "complex64"])
def test_left_gram_factor_and_full_forms_agree(dtype):
    """``_LeftGram`` weighs a matrix alike whether it holds Cholesky's R or H itself, and
    keeps H when H is singular; the triangular product never reads the lower triangle."""
    from tnkit import _backend as backend
    from tnkit.compress import _LeftGram

    rng = np.random.default_rng(0)
    complex_ = dtype.startswith("complex")

    def sample(*shape):
        x = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if complex_ else 0)
        return x.astype(dtype)

    x, mat = sample(40, 12), sample(12, 7)
    gram = (x.conj().T @ x).astype(dtype)
    singular = gram.copy()
    singular[:, -1] = 0  # a direction the left part does not reach
    singular[-1, :] = 0
    factored = _LeftGram.from_upper(np.triu(gram) + np.tril(np.full_like(gram, 7.0), -1))
    full = _LeftGram.from_upper(np.triu(singular))
    assert factored.factored and not full.factored
    np.testing.assert_allclose(full.matrix, singular, rtol=1e-6)
    tol = 1e-4 if dtype in ("float32", "complex64") else 1e-10
    want = mat.conj().T @ gram @ mat
    np.testing.assert_allclose(np.triu(factored.weighted(mat)), np.triu(want), rtol=tol, atol=tol)
    want_full = mat.conj().T @ singular @ mat
    np.testing.assert_allclose(full.weighted(mat), want_full, rtol=tol, atol=tol)
    r = np.triu(sample(12, 12))
    garbage = r + np.tril(np.full_like(r, 99.0), -1)
    for order in (np.ascontiguousarray, np.asfortranarray):
        np.testing.assert_allclose(backend.upper_times(garbage, order(mat)), r @ mat, rtol=tol)


@pytest.mark.parametrize("library", ["torch", "jax.numpy"])
def test_gram_rounding_on_other_array_libraries(library):
    """Without gradients, torch and JAX trains take Gram rounding through their own
    Cholesky and products (no trmm/syrk) and agree with NumPy's result."""
    xp = pytest.importorskip(library)
    m = random_state(14, 64, "float64", seed=4)
    ref = m.compress(max_bond=16)
    x64 = None
    if library == "jax.numpy":
        import jax

        x64 = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
    try:
        other = tn.MPS([xp.asarray(np.array(c)) for c in m.cores])
        c = other.compress(max_bond=16)
        back = tn.MPS([np.asarray(x) for x in c.cores])
    finally:
        if x64 is not None:
            jax.config.update("jax_enable_x64", x64)
    assert c.report.method == ref.report.method == "gram-rounding"
    assert c.bond_dims == ref.bond_dims
    assert c.report.rel_error_bound == pytest.approx(ref.report.rel_error_bound, rel=1e-10)
    assert tn.distance(back, ref) <= 1e-10 * m.norm()
