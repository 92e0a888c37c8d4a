"""Oracle tests: tnkit against TensorLy, quimb and TeNPy on the same inputs.

Each peer is optional; its tests are skipped when it is not installed. Truncated SVDs are
unique where the kept and cut singular values are separated (always, for these random
inputs), so the peers' reconstructions must equal tnkit's up to rounding, not only their
errors.

Peer conventions these tests rely on (and pin down):

* TensorLy ``tensor_train(x, rank=[1, r, ..., r, 1])`` keeps ``min(r, rows, cols)`` of every
  unfolding, zero singular values included; tnkit drops numerically zero ones, so on
  low-rank input tnkit's bonds are the true TT-ranks and TensorLy's the clipped full ones.
* TensorLy ``tensor_train_matrix`` takes the tensorised matrix ``(o_1..o_N, i_1..i_N)`` and
  returns factors ``(r, o_k, i_k, r)``: tnkit's MPO core layout.
* quimb ``MatrixProductState.from_dense`` and ``.compress`` default to ``cutoff=1e-10`` with
  ``cutoff_mode='rsum2'`` (discarded weight ≤ 1e-10 of the total per bond: lossy, up to
  ~1e-5 relative error per bond); ``cutoff=0.0`` truncates by ``max_bond`` only and keeps zero
  singular values. quimb's default array layout is ``shape='lrp'`` with 2-D boundary tensors
  (first ``(r, p)``, last ``(l, p)``).
* TeNPy ``MPS.from_full`` normalises: its Schmidt values have unit 2-norm and the norm is
  kept in ``psi.norm``; tnkit's Schmidt values are those of the train as it is.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tnkit as tn

SHAPES = [(4, 5, 6, 3), (3, 3, 3, 3, 3), (2, 7, 4), (10, 12)]
RANKS = [1, 2, 3, 5, 8]


def _gaussian(shape, seed, complex_=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if complex_:
        x = x + 1j * rng.standard_normal(shape)
    return x


def _full_ranks(dims):
    return tuple(
        min(math.prod(dims[: k + 1]), math.prod(dims[k + 1 :])) for k in range(len(dims) - 1)
    )


def _rel(a, b):
    """‖a − b‖ / ‖b‖ for arrays of the same size (shapes may differ)."""
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _low_rank(dims, bond, seed):
    """A dense tensor whose TT-ranks are min(bond, full ranks), and those ranks."""
    m = tn.MPS.random(dims, bond, seed=seed)
    return np.asarray(m.to_dense()), m.bond_dims


# ============================================================================== TensorLy


class TestTensorLy:
    @pytest.fixture(autouse=True)
    def _peer(self):
        self.tl = pytest.importorskip("tensorly")
        self.tl.set_backend("numpy")
        from tensorly.decomposition import tensor_train, tensor_train_matrix

        self.tensor_train = tensor_train
        self.tensor_train_matrix = tensor_train_matrix

    def _tl_tt(self, x, r):
        tt = self.tensor_train(x, rank=[1] + [r] * (x.ndim - 1) + [1])
        bonds = tuple(int(f.shape[-1]) for f in tt.factors[:-1])
        return tt, bonds, np.asarray(self.tl.tt_to_tensor(tt))

    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    def test_tt_svd_random(self, shape):
        x = _gaussian(shape, seed=sum(shape))
        full = _full_ranks(shape)
        for r in RANKS:
            m = tn.tt_svd(x, max_bond=r)
            tt, tl_bonds, tl_dense = self._tl_tt(x, r)
            expected = tuple(min(r, f) for f in full)
            assert m.bond_dims == expected, r
            assert tl_bonds == expected, r
            ours = np.asarray(m.to_dense())
            err_tn, err_tl = _rel(ours, x), _rel(tl_dense, x)
            assert err_tn == pytest.approx(err_tl, abs=1e-10), r
            # Orthogonal cuts: the bound is the error itself, not only an upper bound.
            assert m.report.rel_error_bound == pytest.approx(err_tl, abs=1e-10), r
            # The truncation is unique (separated singular values): same tensor, not only
            # the same error.
            assert np.linalg.norm(ours - tl_dense) <= 1e-10 * np.linalg.norm(x), r

    @pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
    def test_tt_svd_low_rank(self, shape):
        x, true_ranks = _low_rank(shape, 2, seed=len(shape))
        full = _full_ranks(shape)
        for r in RANKS:
            m = tn.tt_svd(x, max_bond=r)
            _, tl_bonds, tl_dense = self._tl_tt(x, r)
            # TensorLy keeps zero singular values up to the clipped full rank; tnkit drops them.
            assert tl_bonds == tuple(min(r, f) for f in full), r
            assert m.bond_dims == tuple(min(r, t) for t in true_ranks), r
            err_tn, err_tl = _rel(m.to_dense(), x), _rel(tl_dense, x)
            assert err_tn == pytest.approx(err_tl, abs=1e-10), r
            assert m.report.rel_error_bound == pytest.approx(err_tl, abs=1e-10), r
        # r >= true rank: both exact.
        assert _rel(tn.tt_svd(x, max_bond=8).to_dense(), x) < 1e-12

    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    def test_full_rank_is_exact_and_equal(self, shape):
        x = _gaussian(shape, seed=7)
        r = max(_full_ranks(shape))
        m = tn.tt_svd(x)
        _, tl_bonds, tl_dense = self._tl_tt(x, r)
        assert m.bond_dims == tl_bonds == _full_ranks(shape)
        ours = np.asarray(m.to_dense())
        scale = np.linalg.norm(x)
        assert np.linalg.norm(ours - tl_dense) <= 1e-12 * scale
        assert np.linalg.norm(ours - x) <= 1e-12 * scale
        assert m.report.rel_error_bound == 0.0

    def test_tt_svd_complex(self):
        x = _gaussian((3, 4, 5, 2), seed=11, complex_=True)
        for r in (1, 2, 4, 20):
            m = tn.tt_svd(x, max_bond=r)
            _, tl_bonds, tl_dense = self._tl_tt(x, r)
            assert m.bond_dims == tl_bonds
            assert np.linalg.norm(np.asarray(m.to_dense()) - tl_dense) <= 1e-10 * np.linalg.norm(x)

    @pytest.mark.parametrize(
        ("outs", "ins"),
        [((2, 3, 4), (3, 2, 2)), ((4, 4), (4, 4)), ((2, 2, 2, 2), (3, 3, 2, 2))],
        ids=str,
    )
    def test_tt_matrix(self, outs, ins):
        rows, cols = math.prod(outs), math.prod(ins)
        W = _gaussian((rows, cols), seed=rows + cols)
        n = len(outs)
        full = _full_ranks(tuple(o * i for o, i in zip(outs, ins, strict=True)))
        for r in (1, 2, 4, 7, 1000):
            o = tn.MPO.from_matrix(W, outs, ins, max_bond=r)
            ttm = self.tensor_train_matrix(W.reshape(*outs, *ins), rank=[1] + [r] * (n - 1) + [1])
            # TT-matrix factors are (r, o_k, i_k, r): the MPO core layout.
            assert [tuple(f.shape[1:3]) for f in ttm.factors] == list(zip(outs, ins, strict=True))
            tl_bonds = tuple(int(f.shape[-1]) for f in ttm.factors[:-1])
            assert o.bond_dims == tl_bonds == tuple(min(r, f) for f in full), r
            tl_W = np.asarray(self.tl.tt_matrix_to_tensor(ttm)).reshape(rows, cols)
            ours = np.asarray(o.to_matrix())
            assert _rel(ours, W) == pytest.approx(_rel(tl_W, W), abs=1e-10), r
            assert o.report.rel_error_bound == pytest.approx(_rel(tl_W, W), abs=1e-10), r
            assert np.linalg.norm(ours - tl_W) <= 1e-10 * np.linalg.norm(W), r
            # Core by core the layouts agree: contracting TensorLy's factors as tnkit cores
            # gives TensorLy's matrix.
            as_mpo = tn.MPO([np.asarray(f) for f in ttm.factors])
            assert np.linalg.norm(np.asarray(as_mpo.to_matrix()) - tl_W) <= 1e-12 * np.linalg.norm(
                W
            )
        assert np.linalg.norm(ours - W) <= 1e-12 * np.linalg.norm(W)


# ============================================================================== quimb


def _to_quimb(qtn, m, shape="lpr"):
    """A quimb MPS with tnkit's cores: boundary tensors squeezed to 2-D."""
    cores = [np.asarray(c) for c in m.cores]
    arrays = [cores[0][0]] + cores[1:-1] + [cores[-1][..., 0]]  # (p, r), (l, p, r)..., (l, p)
    if shape == "lrp":
        arrays = [arrays[0].T] + [a.transpose(0, 2, 1) for a in arrays[1:-1]] + [arrays[-1]]
    return qtn.MatrixProductState(arrays, shape=shape)


def _quimb_dense(q):
    return np.asarray(q.to_dense()).reshape(-1)


class TestQuimb:
    @pytest.fixture(autouse=True)
    def _peer(self):
        self.qtn = pytest.importorskip("quimb.tensor")

    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    def test_from_dense_vs_tt_svd(self, shape):
        x = _gaussian(shape, seed=3 + len(shape))
        for r in RANKS:
            m = tn.tt_svd(x, max_bond=r)
            q = self.qtn.MatrixProductState.from_dense(x, dims=shape, max_bond=r, cutoff=0.0)
            assert m.bond_dims == tuple(q.bond_sizes()), r
            ours, theirs = np.asarray(m.to_dense()).reshape(-1), _quimb_dense(q)
            assert _rel(ours, x) == pytest.approx(_rel(theirs, x), abs=1e-10), r
            assert np.linalg.norm(ours - theirs) <= 1e-10 * np.linalg.norm(x), r

    def test_from_dense_low_rank_cutoff(self):
        shape = (3, 4, 5, 2)
        x, true_ranks = _low_rank(shape, 2, seed=5)
        # cutoff=0 keeps the zero singular values; a tiny relative cutoff drops them as tnkit does.
        keep = self.qtn.MatrixProductState.from_dense(x, dims=shape, max_bond=6, cutoff=0.0)
        drop = self.qtn.MatrixProductState.from_dense(
            x, dims=shape, max_bond=6, cutoff=1e-12, cutoff_mode="rel"
        )
        m = tn.tt_svd(x, max_bond=6)
        assert tuple(keep.bond_sizes()) == tuple(min(6, f) for f in _full_ranks(shape))
        assert m.bond_dims == tuple(drop.bond_sizes()) == true_ranks
        assert _rel(m.to_dense(), x) < 1e-12

    @pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
    @pytest.mark.parametrize("dims", [[2] * 10, [3, 2, 4, 2, 3, 2, 2, 3]], ids=["qubits", "mixed"])
    def test_compress_vs_quimb(self, dims, complex_):
        m = tn.MPS.random(dims, 12, seed=len(dims), dtype="complex128" if complex_ else "float64")
        x = np.asarray(m.to_dense()).reshape(-1)
        q = _to_quimb(self.qtn, m)
        assert np.linalg.norm(_quimb_dense(q) - x) <= 1e-13 * np.linalg.norm(x)
        for D in (1, 2, 3, 5, 8):
            c = m.compress(max_bond=D)
            qc = q.copy()
            qc.compress(max_bond=D, cutoff=0.0)
            assert c.bond_dims == tuple(qc.bond_sizes()), D
            ours, theirs = np.asarray(c.to_dense()).reshape(-1), _quimb_dense(qc)
            err_tn, err_q = np.linalg.norm(ours - x), np.linalg.norm(theirs - x)
            assert err_tn <= err_q * (1 + 1e-8) + 1e-12, D
            assert err_q <= err_tn * (1 + 1e-8) + 1e-12, D
            # Bond-by-bond cuts are orthogonal in canonical form: the bound is the error.
            assert c.report.abs_error_bound == pytest.approx(err_tn, rel=1e-8, abs=1e-12), D
            assert np.linalg.norm(ours - theirs) <= 1e-10 * np.linalg.norm(x), D

    @pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
    @pytest.mark.parametrize("dims", [[2] * 9, [3, 4, 2, 5], [2], [4, 3]], ids=str)
    def test_norm(self, dims, complex_):
        dtype = "complex128" if complex_ else "float64"
        for seed in range(3):
            m = tn.MPS.random(dims, 7, seed=seed, dtype=dtype)
            if len(dims) == 1:
                q_norm = float(np.linalg.norm(np.asarray(m.cores[0])))
            else:
                q_norm = float(_to_quimb(self.qtn, m).norm())
            assert m.norm() == pytest.approx(q_norm, rel=1e-12)
            assert m.canonicalize(len(dims) // 2).norm() == pytest.approx(q_norm, rel=1e-12)

    def test_layouts_lpr_and_lrp_agree(self):
        m = tn.MPS.random([2, 3, 4, 2], 5, seed=9)
        x = np.asarray(m.to_dense()).reshape(-1)
        for shape in ("lpr", "lrp"):
            q = _to_quimb(self.qtn, m, shape=shape)
            assert np.linalg.norm(_quimb_dense(q) - x) <= 1e-13 * np.linalg.norm(x), shape


# ============================================================================== TeNPy


class TestTeNPy:
    @pytest.fixture(autouse=True)
    def _peer(self):
        pytest.importorskip("tenpy")
        import tenpy.linalg.np_conserved as npc
        from tenpy.networks.mps import MPS as TenpyMPS
        from tenpy.networks.site import Site

        self.npc, self.TenpyMPS, self.Site = npc, TenpyMPS, Site

    def _from_full(self, x):
        npc = self.npc
        sites = [self.Site(npc.LegCharge.from_trivial(d)) for d in x.shape]
        psi = npc.Array.from_ndarray_trivial(x, labels=[f"p{i}" for i in range(x.ndim)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # unit_cell_width notice
            return self.TenpyMPS.from_full(sites, psi, form="B", cutoff=1e-14, normalize=False)

    @pytest.mark.parametrize("dims", [[2, 3, 2, 4, 2], [2] * 7, [3, 3, 3]], ids=str)
    def test_canonical_form_and_schmidt_values(self, dims):
        m = tn.MPS.random(dims, 3, seed=len(dims))
        x = np.asarray(m.to_dense())
        tp = self._from_full(x)
        norm = m.norm()
        assert float(tp.norm) == pytest.approx(norm, rel=1e-12)
        chi = [int(c) for c in tp.chi]
        inner = chi[1:-1] if len(chi) == len(dims) + 1 else chi  # with or without the ends
        assert tuple(inner) == m.bond_dims
        for k in range(len(dims) - 1):
            c = m.canonicalize(k)
            assert c.is_canonical(k)
            core = np.asarray(c.cores[k])
            s = np.linalg.svd(core.reshape(-1, core.shape[-1]), compute_uv=False)
            # TeNPy's S to the right of site k, normalised to unit 2-norm.
            np.testing.assert_allclose(s / norm, np.sort(tp.get_SR(k))[::-1], atol=1e-12)
        # TeNPy's B form is right-canonical by tnkit's check, and represents x / ‖x‖.
        b_cores = [
            tp.get_B(i, "B").itranspose(["vL", "p", "vR"]).to_ndarray() for i in range(len(dims))
        ]
        b = tn.MPS(b_cores)
        assert b.is_canonical(0)
        np.testing.assert_allclose(np.asarray(b.to_dense()) * norm, x, atol=1e-12 * norm)


class TestQuimbContraction:
    """Overlap and expectation against quimb on the same cores (NumPy and kernel paths)."""

    @pytest.fixture(autouse=True)
    def _peer(self):
        self.qtn = pytest.importorskip("quimb.tensor")

    @pytest.mark.parametrize(("length", "bond"), [(6, 4), (300, 3)])
    @pytest.mark.parametrize("dtype", ["float64", "complex128"])
    def test_overlap(self, length, bond, dtype):
        a = tn.MPS.random([2] * length, bond, seed=1, dtype=dtype)
        b = tn.MPS.random([2] * length, bond, seed=2, dtype=dtype)
        theirs = _to_quimb(self.qtn, a).H @ _to_quimb(self.qtn, b)
        ours = complex(tn.inner(a, b))
        assert abs(ours - theirs) <= 1e-10 * a.norm() * b.norm()

    @pytest.mark.parametrize("length", [5, 40])
    def test_heisenberg_expectation(self, length):
        q_mpo = self.qtn.MPO_ham_heis(length, cyclic=False)
        # quimb's MPO tensors: first (r, out, in), middle (l, r, out, in), last (l, out, in).
        arrays = [np.asarray(t.data) for t in q_mpo.tensors]
        first, *middle, last = arrays
        cores = [first.transpose(1, 2, 0)[None], *(a.transpose(0, 2, 3, 1) for a in middle)]
        cores.append(last[..., None])
        o = tn.MPO(cores)
        m = tn.MPS.random([2] * length, 4, seed=3)
        q_m = _to_quimb(self.qtn, m)
        theirs = q_m.H @ q_mpo.apply(q_m)
        assert float(tn.expectation(m, o)) == pytest.approx(float(np.real(theirs)), rel=1e-10)
