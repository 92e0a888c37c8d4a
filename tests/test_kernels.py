"""Numba kernels against their array-API twins: overlap, expectation, QR norm; dispatch and cache.

Each kernel is called directly on packed cores and compared with the twin run under
``_kernels.disabled()``, for every dtype, on the shared short-train strategies and on long
chains (L ≥ 200) whose bonds cover both the hand-loop and the BLAS sites of the kernels.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import dtypes, eps, mpo_trains, mps_trains

import tnkit as tn
from tnkit import _kernels


def twin(fn, *args):
    with _kernels.disabled():
        return fn(*args)


def pack(t):
    return _kernels.Packed(t.cores)


def assert_close(got, want, tol):
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert abs(complex(got) - complex(want)) <= tol, (got, want, tol)


# ---------------------------------------------------------------------- inputs


def _gaussian(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        x = (x + 1j * rng.standard_normal(shape)) / math.sqrt(2)
    return x


@st.composite
def long_isometric_cores(draw, min_len=200, max_len=320, max_bond=10, phys=((1,), (2,), (3,))):
    """Left-isometric cores of a norm-1 train and a perturbed copy (so ⟨a, b⟩ = O(1) however
    long the chain). Bonds vary site by site up to ``max_bond``, so hand-loop and BLAS sites
    both occur; ``phys`` holds the choices of a site's physical shape (two legs: an MPO).
    Returns (dtype, cores, perturbed cores)."""
    length = draw(st.integers(min_len, max_len))
    dtype = draw(dtypes)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    shapes = [draw(st.sampled_from(phys)) for _ in range(length)]
    bonds = [1]
    for shape in shapes[:-1]:
        bonds.append(min(draw(st.integers(1, max_bond)), bonds[-1] * math.prod(shape)))
    bonds.append(1)
    cores, noisy = [], []
    for k, shape in enumerate(shapes):
        rows, cols = bonds[k] * math.prod(shape), bonds[k + 1]
        q, _ = np.linalg.qr(_gaussian(rng, (rows, cols), dtype))  # q^H q = 1
        noise = 0.05 * _gaussian(rng, q.shape, dtype) / math.sqrt(q.size)
        full = (bonds[k], *shape, cols)
        cores.append(q.reshape(full).astype(dtype))
        noisy.append((q + noise).reshape(full).astype(dtype))
    return dtype, cores, noisy


def long_mps_pairs():
    return long_isometric_cores().map(lambda x: (x[0], tn.MPS(x[1]), tn.MPS(x[2])))


def long_mpo_pairs():
    shapes = st.sampled_from([(1, 2), (2, 2), (2, 1), (3, 2)])
    return shapes.flatmap(
        lambda shape: long_isometric_cores(max_bond=8, phys=(shape,)).map(
            lambda x: (x[0], tn.MPO(x[1]), tn.MPO(x[2]))
        )
    )


def near_identity_mpo(dims, bond, seed, dtype):
    rng = np.random.default_rng(seed)
    cores = []
    for k, d in enumerate(dims):
        left, right = (1 if k == 0 else bond), (1 if k == len(dims) - 1 else bond)
        core = 0.05 / bond * _gaussian(rng, (left, d, d, right), dtype)
        core[0, :, :, 0] += np.eye(d)
        cores.append(core.astype(dtype))
    return tn.MPO(cores)


# ---------------------------------------------------------------------- import and dispatch


def test_importing_tnkit_does_not_import_numba():
    code = "import sys, tnkit; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dispatch_needs_numpy_one_dtype_and_small_bonds():
    a = tn.MPS.random([2] * 6, 4, seed=0)
    assert _kernels.applies(pack(a), pack(a))
    assert not _kernels.applies(pack(a), pack(tn.MPS.random([2] * 6, 4, seed=0, dtype="float32")))
    for dtype in ("float32", "complex64"):  # single precision runs the twins
        single = pack(tn.MPS.random([2] * 6, 4, seed=0, dtype=dtype))
        assert not _kernels.applies(single, single)
    assert _kernels.applies(*[pack(tn.MPS.random([2] * 6, 4, seed=0, dtype="complex128"))] * 2)
    wide = tn.MPS.random([2] * 16, _kernels.KERNEL_MAX_BOND + 1, seed=0)
    assert not _kernels.applies(pack(a), pack(wide))
    with _kernels.disabled():
        assert not _kernels.applies(pack(a))
    assert _kernels.applies(pack(a))
    torch = pytest.importorskip("torch")
    t = tn.MPS([torch.asarray(np.array(c)) for c in a.cores])
    assert not _kernels.applies(pack(t))
    value = tn.inner(t, t)
    assert isinstance(value, torch.Tensor)
    assert float(value) == pytest.approx(float(tn.inner(a, a)), rel=1e-12)


def test_fast_dispatch_keeps_the_compatibility_errors():
    a = tn.MPS.random([2, 3, 2], 2, seed=0)
    with pytest.raises(ValueError, match="phys_dims"):
        tn.inner(a, tn.MPS.random([2, 2, 3], 2, seed=0))
    o = tn.MPO.random([2, 3], [3, 2], 2, seed=0)
    with pytest.raises(ValueError, match="phys_dims"):
        tn.inner(o, tn.MPO.random([3, 2], [2, 3], 2, seed=0))  # same fused dims, swapped legs
    with pytest.raises(ValueError, match="do not match"):
        tn.expectation(a, tn.MPO.random([2, 3, 2], [2, 2, 3], 2, seed=0))
    with pytest.raises(ValueError, match="cannot combine"):
        tn.inner(tn.MPS.random([4, 4], 2, seed=0), tn.MPO.random([2, 2], [2, 2], 2, seed=0))
    assert _kernels.kernel_packs(a, "not a train") is None


def test_packed_cores_are_cached_per_train_and_never_shared():
    a = tn.MPS.random([2] * 30, 3, seed=0)
    b = tn.MPS.random([2] * 30, 3, seed=1)
    assert a._packed is None
    first = tn.inner(a, b)
    packed = a._packed
    assert packed is not None and tn.inner(a, b) == first and a._packed is packed
    data, sites = packed.arrays
    assert not data.flags.writeable and not sites.flags.writeable
    derived = [2.0 * a, a.conj(), a.compress(max_bond=2), -a, a / 4]
    for d in derived:
        assert d._packed is None
    # The canonical sweep's own buffer becomes the new train's pack, never a's.
    moved = a.canonicalize(3)._packed
    assert moved is not None and moved is not packed
    assert not np.shares_memory(moved.arrays[0], data)
    doubled = tn.inner(2.0 * a, b)
    assert doubled == pytest.approx(2 * first, rel=1e-12)
    assert a._packed is packed
    with _kernels.disabled():
        assert tn.inner(a.canonicalize(3), b) == pytest.approx(first, rel=1e-10)


def test_large_trains_are_packed_per_call_not_cached(monkeypatch):
    monkeypatch.setattr(_kernels, "_CACHE_MAX_ENTRIES", 100)
    a = tn.MPS.random([2] * 30, 3, seed=0)
    packed = pack(a)
    data, _ = packed.arrays
    assert data.size > 100 and packed._arrays is None
    assert tn.inner(a, a) == pytest.approx(twin(tn.inner, a, a), rel=1e-12)
    assert a._packed._arrays is None


def test_pack_layout():
    o = tn.MPO.random([2, 3, 2], [1, 2, 2], 3, seed=0)
    data, sites = pack(o).arrays
    assert data.shape == (o.num_params,)
    for k, core in enumerate(o.cores):
        offset, left, phys, right = sites[k]
        assert (left, phys, right) == (core.shape[0], core.shape[1] * core.shape[2], core.shape[3])
        np.testing.assert_array_equal(data[offset : offset + core.size], np.ravel(core))


# ---------------------------------------------------------------------- overlap


@st.composite
def short_pairs(draw):
    if draw(st.booleans()):
        a = draw(mps_trains())
        b = tn.MPS.random(
            a.phys_dims, draw(st.integers(1, 8)), seed=draw(st.integers(0, 99)), dtype=a.dtype
        )
    else:
        a = draw(mpo_trains())
        b = tn.MPO.random(
            a.out_dims,
            a.in_dims,
            draw(st.integers(1, 8)),
            seed=draw(st.integers(0, 99)),
            dtype=a.dtype,
        )
    return a, b


@given(short_pairs())
def test_overlap_kernel_matches_twin_on_short_trains(pair):
    a, b = pair
    scale = twin(a.norm) * twin(b.norm)
    tol = 200 * math.sqrt(len(a)) * eps(a.dtype) * scale
    assert_close(_kernels.overlap(pack(a), pack(b)), twin(tn.inner, a, b), tol)
    assert_close(_kernels.overlap(pack(b), pack(a)), twin(tn.inner, b, a), tol)
    assert_close(tn.inner(a, b), twin(tn.inner, a, b), tol)


@given(st.one_of(long_mps_pairs(), long_mpo_pairs()))
def test_overlap_kernel_matches_twin_on_long_chains(case):
    dtype, a, b = case
    tol = 20 * len(a) * eps(dtype) * twin(b.norm)  # ‖a‖ = 1
    assert_close(_kernels.overlap(pack(a), pack(b)), twin(tn.inner, a, b), tol)
    assert_close(_kernels.overlap(pack(b), pack(b)), twin(tn.inner, b, b), tol * twin(b.norm))


def test_kernels_keep_subnormal_and_huge_entries_exact():
    for value in (2.225073858507e-311, 5e-324, 1.5e300):
        t = tn.MPS([np.full((1, 1, 1), value)])
        assert _kernels.overlap(pack(t), pack(tn.MPS([np.ones((1, 1, 1))]))) == value
        assert t.norm() == value
        assert t.log_norm() == pytest.approx(math.log(value), rel=1e-15)


def test_overlap_of_a_zero_train_and_beyond_the_double_range():
    zero = tn.MPS([np.zeros((1, 2, 1))] + [np.ones((1, 2, 1))] * 300)
    assert _kernels.overlap(pack(zero), pack(zero)) == 0.0
    big = tn.MPS([np.full((1, 2, 1), 2.0)] * 600)  # ⟨big, big⟩ = 8^600 overflows
    small = tn.MPS([np.full((1, 2, 1), 0.125)] * 600)  # ⟨big, small⟩ = 0.5^600, exact
    assert _kernels.overlap(pack(big), pack(small)) == 0.5**600
    assert _kernels.overlap(pack(big), pack(big)) == np.inf
    with np.errstate(over="ignore"):
        assert twin(tn.inner, big, big) == np.inf


# ---------------------------------------------------------------------- expectation


@st.composite
def short_expectations(draw):
    m = draw(mps_trains())
    o = tn.MPO.random(
        m.phys_dims,
        m.phys_dims,
        draw(st.integers(1, 6)),
        seed=draw(st.integers(0, 99)),
        dtype=m.dtype,
    )
    return m, o


@given(short_expectations())
def test_expectation_kernel_matches_twin_on_short_trains(pair):
    m, o = pair
    scale = twin(m.norm) ** 2 * twin(o.norm)  # ‖o‖_2 ≤ ‖o‖_F
    tol = 200 * math.sqrt(len(m)) * eps(m.dtype) * scale
    assert_close(_kernels.expectation(pack(m), pack(o)), twin(tn.expectation, m, o), tol)
    assert_close(tn.expectation(m, o), twin(tn.expectation, m, o), tol)
    normalized = twin(lambda: tn.expectation(m, o, normalize=True))
    assert_close(tn.expectation(m, o, normalize=True), normalized, tol / twin(m.norm) ** 2)


@given(long_mps_pairs(), st.integers(1, 7), st.integers(0, 99))
def test_expectation_kernel_matches_twin_on_long_chains(case, bond, seed):
    dtype, m, _ = case
    o = near_identity_mpo(m.phys_dims, bond, seed, dtype)
    tol = 50 * len(m) * eps(dtype)  # ‖m‖ = 1, o = identity + a small part
    assert_close(_kernels.expectation(pack(m), pack(o)), twin(tn.expectation, m, o), tol)


# ---------------------------------------------------------------------- norms


@st.composite
def wide_bond_trains(draw, max_len=60, max_bond=10):
    """Gaussian cores with arbitrary bonds (wider than the rank too)."""
    length = draw(st.integers(1, max_len))
    dtype = draw(dtypes)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    phys = [draw(st.integers(1, 3)) for _ in range(length)]
    bonds = [1] + [draw(st.integers(1, max_bond)) for _ in range(length - 1)] + [1]
    cores = [
        _gaussian(rng, (bonds[k], d, bonds[k + 1]), dtype) / math.sqrt(bonds[k] * d)
        for k, d in enumerate(phys)
    ]
    return tn.MPS([c.astype(dtype) for c in cores])


@given(
    st.one_of(
        mps_trains(),
        mpo_trains(),
        wide_bond_trains(),
        wide_bond_trains(max_len=8, max_bond=_kernels.KERNEL_MAX_BOND),  # LAPACK sites
        long_mps_pairs().map(lambda x: x[2]),
    )
)
def test_qr_norm_kernel_matches_twin(t):
    twin_norm, twin_log = twin(t.norm), twin(t.log_norm)
    mantissa, exponent = _kernels.qr_norm(pack(t))
    rtol = 50 * len(t) * eps(t.dtype)
    assert np.ldexp(mantissa, exponent) == pytest.approx(twin_norm, rel=rtol)
    assert t.norm() == pytest.approx(twin_norm, rel=rtol)
    assert t.log_norm() == pytest.approx(twin_log, rel=rtol, abs=rtol)
    assert tn.distance(t, t) == pytest.approx(0.0, abs=rtol * twin_norm)


def test_norm_kernel_edge_cases():
    assert tn.MPS([np.zeros((1, 2, 1))] * 5).norm() == 0.0
    assert tn.MPS([np.zeros((1, 2, 1))] * 5).log_norm() == -math.inf
    big = tn.MPS([np.full((1, 2, 1), 2.0)] * 3000)  # ‖big‖ = 2^4500
    assert big.norm() == np.inf
    assert big.log_norm() == pytest.approx(4500 * math.log(2), rel=1e-14)
    fits = tn.MPS([np.full((1, 2, 1), 1.5)] * 800)  # ‖fits‖² overflows, ‖fits‖ does not
    assert fits.norm() == pytest.approx(math.exp(800 * math.log(1.5 * math.sqrt(2))), rel=1e-12)
    centred = tn.MPS.random([2] * 40, 3, seed=0).canonicalize(5)
    assert centred.norm() == pytest.approx(twin(centred.norm), rel=1e-14)


@given(long_mps_pairs())
def test_distance_keeps_its_accuracy_through_the_kernel(case):
    dtype, a, b = case
    c = tn.MPS([*a.cores[:-1], a.cores[-1] * (1 + 1e-3)])  # ‖a − c‖ = 1e-3 exactly
    rtol = 1e-8 if eps(dtype) < 1e-10 else 0.05
    assert tn.distance(a, c) == pytest.approx(1e-3 * twin(a.norm), rel=rtol)


# ---------------------------------------------------------------------- canonical sweeps


def assert_same_canonical_form(got, want, centre):
    """Equal cores (a thin QR with a positive diagonal is unique at full rank; elsewhere the
    gauge may differ, so the tensor, the form and the centre's norm are compared instead)."""
    assert got.centre == want.centre == centre
    assert got.bond_dims == want.bond_dims
    tol = 100 * math.sqrt(len(got)) * eps(got.dtype)
    assert got.is_canonical(centre)
    scale = float(np.linalg.norm(want.cores[centre]))
    assert float(np.linalg.norm(got.cores[centre])) == pytest.approx(scale, rel=tol, abs=tol)
    if len(got) <= 8:
        np.testing.assert_allclose(got.to_dense(), want.to_dense(), atol=tol * max(scale, 1))


@st.composite
def canonical_moves(draw, trains):
    t = draw(trains)
    if draw(st.booleans()):
        t = twin(t.canonicalize, draw(st.integers(0, len(t) - 1)))
    return t, draw(st.integers(0, len(t) - 1))


@given(
    st.one_of(
        canonical_moves(mps_trains()),
        canonical_moves(mpo_trains()),
        canonical_moves(wide_bond_trains(max_len=8)),
        canonical_moves(long_mps_pairs().map(lambda x: x[2])),
    )
)
def test_canonicalize_kernel_matches_twin(move):
    t, centre = move
    got = t.canonicalize(centre)
    assert_same_canonical_form(got, twin(t.canonicalize, centre), centre)
    if got._packed is not None:  # the sweep's buffer is the new train's pack
        data, sites = got._packed.arrays
        for (offset, *_), core in zip(sites, got.cores, strict=True):
            np.testing.assert_array_equal(data[offset : offset + core.size], np.ravel(core))
    assert t.cores[0].flags.writeable is False  # the input is untouched


def test_canonicalize_kernel_gives_the_twins_cores_at_full_rank():
    t = tn.MPS.random([2] * 300, 6, seed=3, dtype="complex128")
    got, want = t.canonicalize(150), twin(t.canonicalize, 150)
    for a, b in zip(got.cores, want.cores, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)


# ---------------------------------------------------------------------- sampling


@given(
    st.one_of(
        mps_trains(),
        wide_bond_trains(max_len=8),
        long_mps_pairs().map(lambda x: x[2]),
    ),
    st.integers(1, 60),
    st.integers(0, 2**31),
)
def test_sample_kernel_draws_the_twins_samples(t, n, seed):
    # Both consume one (L, n) block of uniforms; a draw could differ only where a threshold
    # falls within rounding of a cumulative weight (probability ~1e-13 per draw).
    np.testing.assert_array_equal(t.sample(n, seed=seed), twin(lambda: t.sample(n, seed=seed)))


def test_sample_kernel_refuses_a_zero_state():
    zero = tn.MPS([np.zeros((1, 2, 1))] + [np.ones((1, 2, 1))] * 5)
    with pytest.raises(ValueError, match="zero state"):
        zero.sample(3)
    with pytest.raises(ValueError, match="zero state"):
        twin(zero.sample, 3)
