"""Bond bases that keep a given state's (tdvp's ``keep``, the exact form of Mendl's
augmentation): the kept split, the start on wider bases, and overlaps with an eigenstate
that evolve exactly under truncated TDVP."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import random_array, stopped_and_resumed

import tnkit as tn
from tnkit.algorithms.kept_bases import kept_split, with_kept_bases


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(2, 12),
    n=st.integers(1, 12),
    w=st.integers(0, 4),
    cap=st.one_of(st.none(), st.integers(0, 8)),
    complex_=st.booleans(),
    isometry=st.sampled_from(["left", "right"]),
    seed=st.integers(0, 2**16),
)
def test_kept_split_keeps_the_space_and_cuts_no_more_than_a_plain_truncation(
    m, n, w, cap, complex_, isometry, seed
):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (m, n), complex_)
    keep = random_array(rng, (m, w) if isometry == "left" else (w, n), complex_)
    left, right, cut = kept_split(a, keep, cap=cap, budget=None, isometry=isometry)
    basis = left if isometry == "left" else right.conj().T
    kept = keep if isometry == "left" else keep.conj().T
    assert np.allclose(basis.conj().T @ basis, np.eye(basis.shape[1]), atol=1e-12)
    assert np.linalg.norm(kept - basis @ (basis.conj().T @ kept)) <= 1e-10 * max(
        1.0, np.linalg.norm(kept)
    )
    residual = np.linalg.norm(a - left @ right) ** 2
    assert residual == pytest.approx(cut, abs=1e-10 * np.linalg.norm(a) ** 2)
    if cap is not None:
        s = np.linalg.svd(a, compute_uv=False)
        assert cut <= np.sum(s[cap:] ** 2) + 1e-10 * np.sum(s**2)  # interlacing
        assert basis.shape[1] <= cap + min(w, min(m, n) if isometry == "left" else n)


def test_kept_split_with_nothing_to_keep_is_a_plain_split():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 6))
    left, right, cut = kept_split(a, np.zeros((20, 1)), cap=None, budget=None)
    assert left.shape == (20, 6) and cut == pytest.approx(0.0, abs=1e-20)
    assert np.allclose(left @ right, a)


@settings(max_examples=20, deadline=None)
@given(
    dims=st.lists(st.integers(1, 3), min_size=1, max_size=5),
    bonds=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dtype=st.sampled_from([np.float64, np.complex128]),
    seed=st.integers(0, 2**16),
)
def test_with_kept_bases_is_the_same_vector_on_bases_containing_the_kept_state(
    dims, bonds, dtype, seed
):
    psi = tn.MPS.random(dims, bonds[0], seed=seed, dtype=dtype)
    keep = tn.MPS.random(dims, bonds[1], seed=seed + 1, dtype=dtype)
    wide = with_kept_bases(psi, keep)
    assert np.allclose(wide.to_dense(), psi.to_dense(), atol=1e-12)
    assert wide.is_canonical(0)
    right = np.ones((1, 1))
    for k in range(len(wide.cores) - 1, 0, -1):  # keep's right vectors in wide's basis
        core, other = wide.cores[k], keep.cores[k]
        vectors = np.einsum("bsd,cd->bsc", other, right).reshape(other.shape[0], -1)
        rows = core.reshape(core.shape[0], -1)
        assert np.allclose(vectors @ rows.conj().T @ rows, vectors, atol=1e-10)
        right = np.einsum("asc,bsd,cd->ab", core.conj(), other, right)


def eigenstate_and_start(L: int):
    H = tn.models.heisenberg(L)
    values, vectors = scipy.linalg.eigh(H.to_matrix())
    excited = tn.tt_svd(vectors[:, 3].reshape([2] * L), rtol=1e-13)
    psi = tn.MPS.random([2] * L, 3, seed=4)
    return H, values[3], excited, psi * (1 / psi.norm())


@pytest.mark.parametrize("method", ["two-site", "one-site"])
def test_overlap_with_a_kept_eigenstate_evolves_exactly_under_truncation(method):
    L, t = 8, 1.0
    H, energy, eigen, psi = eigenstate_and_start(L)
    start = complex(tn.inner(eigen, psi))
    errors = {}
    for keep in (None, eigen):
        r = tn.tdvp(
            H, psi, t, dt=0.1, method=method, max_bond=4, keep=keep,
            observables={"overlap": lambda s, e=eigen: complex(tn.inner(e, s))},
        )  # fmt: skip
        expected = start * np.exp(-1j * energy * r.times)
        errors[keep is None] = np.max(np.abs(r.values["overlap"] - expected))
        if keep is not None:
            assert max(r.state.bond_dims) <= 4 + max(eigen.bond_dims)
    assert errors[False] < 1e-9 * abs(start)
    assert errors[True] > 1e3 * errors[False]  # truncation matters without keep


def test_kept_helpers_refuse_bad_input():
    a = np.ones((4, 3))
    with pytest.raises(ValueError, match="isometry"):
        kept_split(a, a[:, :1], cap=None, budget=None, isometry="both")
    psi = tn.MPS.random([2] * 3, 2, seed=0)
    with pytest.raises(ValueError, match="keep"):
        with_kept_bases(psi, tn.MPS.random([3] * 3, 2, seed=0))


def test_keep_is_refused_where_it_cannot_work():
    H, psi = tn.models.heisenberg(4), tn.MPS.random([2] * 4, 2, seed=0)
    with pytest.raises(TypeError, match="keep"):
        tn.tdvp(H, psi, 0.1, dt=0.05, keep=H)
    with pytest.raises(ValueError, match="keep"):
        tn.tdvp(H, psi, 0.1, dt=0.05, keep=tn.MPS.random([2] * 5, 2, seed=0))
    Hs = tn.models.heisenberg(4, conserve="Sz")
    up_down = tn.MPS.product_state(["up", "dn"] * 2, site="spin-half", conserve="Sz")
    with pytest.raises(ValueError, match="keep"):
        tn.tdvp(Hs, up_down, 0.1, dt=0.05, keep=psi)


def test_a_stopped_run_with_keep_resumes_to_the_same_result(tmp_path):
    path = tmp_path / "run.safetensors"
    H, _, eigen, psi = eigenstate_and_start(6)
    run = functools.partial(tn.tdvp, H, psi, 0.4)
    resumed, straight = stopped_and_resumed(run, path, 1, dt=0.1, max_bond=3, keep=eigen)
    assert np.allclose(resumed.state.to_dense(), straight.state.to_dense(), atol=1e-10)
    with pytest.raises(ValueError, match="resume"):
        tn.tdvp(H, psi, 0.4, resume=path, dt=0.1, max_bond=3)  # without keep: another run
