"""tnkit.interop: round trips with quimb, TensorLy, TensorLy-Torch and TeNPy.

Layout-only conversions must round-trip bit for bit (same dtype, same bytes); the TeNPy one
goes through TeNPy's canonical form and must agree to rounding. Every converted object must
equal the train when densified by the peer's own code. Each peer is optional (skipped when
missing); the ImportError of a missing peer names the package to install.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import eps, mpo_trains, mps_trains, rel_error

import tnkit as tn
from tnkit import _backend, interop


def _same_cores(a, b):
    assert type(a) is type(b)
    assert len(a) == len(b)
    for x, y in zip(a.cores, b.cores, strict=True):
        x, y = np.asarray(_backend.to_numpy(x)), np.asarray(_backend.to_numpy(y))
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def _rounding(dtype, size=1) -> float:
    return 100 * math.sqrt(size) * eps(dtype)


@pytest.fixture(autouse=True)
def _keep_tensorly_backend():
    """Importing tltorch switches TensorLy to PyTorch for the whole process: undo it."""
    tl = sys.modules.get("tensorly")
    before = tl.get_backend() if tl is not None else None
    yield
    tl = sys.modules.get("tensorly")
    if tl is not None:
        tl.set_backend(before or "numpy")


# ============================================================================== quimb


@given(st.one_of(mps_trains(), mpo_trains()))
def test_quimb_round_trip_is_bitwise(train):
    pytest.importorskip("quimb")
    q = interop.to_quimb(train)
    _same_cores(interop.from_quimb(q), train)


@given(mps_trains(dtype="complex128", max_len=6))
def test_quimb_mps_densifies_like_tnkit(m):
    pytest.importorskip("quimb")
    q = interop.to_quimb(m)
    assert len(m) == q.L
    dense = np.asarray(q.to_dense()).reshape(-1)
    assert rel_error(dense, m.to_dense().reshape(-1)) <= _rounding("complex128", dense.size)


@given(mpo_trains(dtype="float64", max_len=4))
def test_quimb_mpo_upper_legs_are_out_legs(o):
    pytest.importorskip("quimb")
    matrix = np.asarray(interop.to_quimb(o).to_dense())
    assert matrix.shape == o.matrix_shape
    assert rel_error(matrix, o.to_matrix()) <= _rounding("float64", matrix.size)


@pytest.mark.parametrize("shape", ["lrp", "lpr", "plr"])
def test_from_quimb_reads_any_array_order(shape):
    qtn = pytest.importorskip("quimb.tensor")
    ref = qtn.MPS_rand_state(5, bond_dim=3, phys_dim=3, dtype="complex128", seed=2)
    perm = ["lrp".index(c) for c in shape]
    arrays = []
    for k, a in enumerate(ref.arrays):
        if k in (0, ref.L - 1):  # boundary tensors have no outer bond: drop that letter
            sub = [c for c in "lrp" if c != ("l" if k == 0 else "r")]
            arrays.append(np.transpose(a, [sub.index(c) for c in shape if c in sub]))
        else:
            arrays.append(np.transpose(a, perm))
    q = qtn.MatrixProductState(arrays, shape=shape)
    m = interop.from_quimb(q)
    assert m.bond_dims == (3, 3, 3, 3) and m.dtype == np.complex128
    assert rel_error(m.to_dense().reshape(-1), ref.to_dense().reshape(-1)) < 1e-14


def test_from_quimb_mpo_and_copies():
    qtn = pytest.importorskip("quimb.tensor")
    q = qtn.MPO_rand(4, 3, phys_dim=2, seed=1)
    o = interop.from_quimb(q)
    assert isinstance(o, tn.MPO) and o.bond_dims == (3, 3, 3)
    np.testing.assert_allclose(o.to_matrix(), q.to_dense(), rtol=1e-13, atol=1e-15)
    q[q.site_tag(1)].modify(data=np.zeros_like(q[q.site_tag(1)].data))
    assert o.norm() > 0  # the train does not share buffers with quimb


def test_from_quimb_refuses_cyclic_and_other_objects():
    qtn = pytest.importorskip("quimb.tensor")
    with pytest.raises(ValueError, match="q: periodic"):
        interop.from_quimb(qtn.MPS_rand_state(4, 2, cyclic=True, seed=0))
    with pytest.raises(TypeError, match="q: expected a quimb"):
        interop.from_quimb(tn.MPS.random([2, 2], 2, seed=0))


def test_to_quimb_keeps_the_library():
    torch = pytest.importorskip("torch")
    pytest.importorskip("quimb")
    m = tn.MPS.random([2, 3, 2], 2, seed=0, like=torch.zeros(1))
    q = interop.to_quimb(m)
    assert all(isinstance(a, torch.Tensor) for a in q.arrays)
    _same_cores(interop.from_quimb(q), m)


# ============================================================================== TensorLy


@given(st.one_of(mps_trains(), mpo_trains()))
def test_tensorly_round_trip_is_bitwise(train):
    pytest.importorskip("tensorly")
    _same_cores(interop.from_tensorly(interop.to_tensorly(train)), train)


@given(st.one_of(mps_trains(dtype="float64"), mpo_trains(dtype="complex128")))
def test_tensorly_densifies_like_tnkit(train):
    tl = pytest.importorskip("tensorly")
    t = interop.to_tensorly(train)
    with tl.backend_context("numpy"):
        dense = t.to_tensor()
    if isinstance(train, tn.MPO):
        # TensorLy's TT-matrix tensor is (o_1..o_N, i_1..i_N); its matrix is tnkit's.
        with tl.backend_context("numpy"):
            matrix = t.to_matrix()
        assert rel_error(matrix, train.to_matrix()) <= _rounding(train.dtype, matrix.size)
        assert dense.shape == (*train.out_dims, *train.in_dims)
    else:
        assert rel_error(dense, train.to_dense()) <= _rounding(train.dtype, dense.size)


def test_from_tensorly_decompositions():
    tl = pytest.importorskip("tensorly")
    from tensorly.decomposition import tensor_train, tensor_train_matrix

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5))
    with tl.backend_context("numpy"):
        m = interop.from_tensorly(tensor_train(x, rank=[1, 2, 12, 5, 1]))
        o = interop.from_tensorly(tensor_train_matrix(x, rank=[1, 8, 1]))
    np.testing.assert_allclose(m.to_dense(), x, atol=1e-12)
    assert o.out_dims == (2, 3) and o.in_dims == (4, 5)
    np.testing.assert_allclose(o.to_dense().transpose(0, 2, 1, 3), x, atol=1e-12)
    with pytest.raises(TypeError, match="t: expected a TensorLy"):
        interop.from_tensorly([np.ones((1, 2, 1))])


# ============================================================================== tltorch


def _tltorch():
    """tltorch with TensorLy on its PyTorch backend (the autouse fixture restores it)."""
    tltorch = pytest.importorskip("tltorch")
    sys.modules["tensorly"].set_backend("pytorch")
    return tltorch


@settings(max_examples=20)
@given(st.one_of(mps_trains(), mpo_trains()))
def test_tltorch_round_trip_is_bitwise(train):
    _tltorch()
    f = interop.to_tltorch(train)
    _same_cores(interop.from_tltorch(f), train)


@settings(max_examples=20)
@given(st.one_of(mps_trains(dtype="float64"), mpo_trains(dtype="float64")))
def test_tltorch_densifies_like_tnkit(train):
    _tltorch()
    f = interop.to_tltorch(train)
    if isinstance(train, tn.MPO):
        assert f.tensorized_shape == (train.out_dims, train.in_dims)
        dense, ref = f.to_matrix().detach().numpy(), train.to_matrix()
    else:
        dense, ref = f.to_tensor().detach().numpy(), train.to_dense()
    assert dense.shape == ref.shape
    assert rel_error(dense, ref) <= _rounding("float64", dense.size)


def test_tltorch_factorized_linear_weight():
    torch = pytest.importorskip("torch")
    tltorch = _tltorch()
    torch.manual_seed(0)
    layer = tltorch.FactorizedLinear((2, 3), (4, 5), factorization="blocktt", rank=3)
    o = interop.from_tltorch(layer.weight)
    assert (o.out_dims, o.in_dims) == ((4, 5), (2, 3))
    assert not o.cores[0].requires_grad
    W = o.to_matrix()
    torch.testing.assert_close(W, layer.weight.to_matrix().detach())
    x = torch.randn(7, 6)
    torch.testing.assert_close(layer(x).detach(), x @ W.T + layer.bias.detach())
    _same_cores(interop.from_tltorch(layer), o)  # the layer itself: its weight


def test_tltorch_refuses_batches_and_other_objects():
    tltorch = _tltorch()
    batched = tltorch.TensorizedTensor.new((2, (2, 3), (4, 5)), rank=2, factorization="blocktt")
    with pytest.raises(ValueError, match="f: batched"):
        interop.from_tltorch(batched)
    cp = tltorch.FactorizedTensor.new((3, 4), rank=2, factorization="cp")
    with pytest.raises(TypeError, match="f: expected a tltorch"):
        interop.from_tltorch(cp)


# ============================================================================== TeNPy


def _tenpy_dense(psi):
    """TeNPy's own densification: the L-site theta times ``psi.norm``, original basis."""
    theta = psi.get_theta(0, n=psi.L).to_ndarray() * psi.norm
    theta = theta.reshape(theta.shape[1:-1])
    for k, site in enumerate(psi.sites):
        theta = np.take(theta, np.argsort(site.perm), axis=k)
    return theta


@settings(max_examples=20)
@given(mps_trains(dtype=None, max_len=6), st.floats(1e-3, 1e3))
def test_tenpy_round_trip(m, scale):
    pytest.importorskip("tenpy")
    m = scale * m
    psi = interop.to_tenpy(m)
    # TeNPy's canonical form runs in double precision: single-precision trains come back double
    dtype = np.dtype(_backend.dtype_name(m.dtype))
    assert psi.dtype in (dtype, np.result_type(dtype, np.float64))
    ref = m.to_dense()
    tol = _rounding(m.dtype, ref.size)
    assert rel_error(_tenpy_dense(psi), ref) <= tol
    back = interop.from_tenpy(psi)
    assert back.dtype == psi.dtype
    assert rel_error(back.to_dense(), ref) <= tol


def test_tenpy_charge_sites_and_product_states():
    pytest.importorskip("tenpy")
    from tenpy.networks.mps import MPS
    from tenpy.networks.site import SpinHalfSite

    site = SpinHalfSite(conserve="Sz")  # perm [1, 0]: TeNPy sorts the basis by charge
    up_down = tn.MPS([np.array([1.0, 0.0]).reshape(1, 2, 1), np.array([0, 1.0]).reshape(1, 2, 1)])
    psi = interop.to_tenpy(up_down, sites=[site, site])
    ref = MPS.from_product_state([site, site], ["up", "down"], unit_cell_width=2)
    assert abs(psi.overlap(ref) - 1) < 1e-14
    np.testing.assert_array_equal(interop.from_tenpy(ref).to_dense(), up_down.to_dense())
    raw = interop.from_tenpy(ref, permute=False)
    assert raw.to_dense()[0, 1] == 0 and raw.to_dense()[1, 0] == 1


def test_tenpy_tnkit_tenpy():
    pytest.importorskip("tenpy")
    from tenpy.linalg import np_conserved as npc
    from tenpy.networks.mps import MPS
    from tenpy.networks.site import SpinHalfSite

    rng = np.random.default_rng(3)
    labels = [f"p{k}" for k in range(5)]
    full = npc.Array.from_ndarray_trivial(rng.standard_normal((2,) * 5), labels=labels)
    psi = MPS.from_full([SpinHalfSite(None)] * 5, full, normalize=False, unit_cell_width=5)
    again = interop.to_tenpy(interop.from_tenpy(psi), sites=psi.sites)
    assert np.isclose(again.norm, psi.norm, rtol=1e-13)
    assert abs(again.overlap(psi) / (again.norm * psi.norm) - 1) < 1e-13  # overlap has the norms


def test_tenpy_bad_input():
    pytest.importorskip("tenpy")
    with pytest.raises(TypeError, match="m: to_tenpy expects a tnkit MPS"):
        interop.to_tenpy(tn.MPO.identity([2, 2]))
    with pytest.raises(ValueError, match="sites: need 3"):
        interop.to_tenpy(tn.MPS.random([2] * 3, 2, seed=0), sites=[])
    with pytest.raises(ValueError, match="zero state"):
        interop.to_tenpy(0.0 * tn.MPS.random([2] * 3, 2, seed=0))
    with pytest.raises(TypeError, match="psi: expected a tenpy MPS"):
        interop.from_tenpy(tn.MPS.random([2] * 3, 2, seed=0))


# ============================================================================== errors


CONVERTERS = [
    ("to_quimb", "quimb", "quimb"),
    ("from_quimb", "quimb", "quimb"),
    ("to_tensorly", "tensorly", "tensorly"),
    ("from_tensorly", "tensorly", "tensorly"),
    ("to_tltorch", "tltorch", "tensorly-torch"),
    ("from_tltorch", "tltorch", "tensorly-torch"),
    ("to_tenpy", "tenpy", "physics-tenpy"),
    ("from_tenpy", "tenpy", "physics-tenpy"),
]


@pytest.mark.parametrize(("name", "module", "package"), CONVERTERS)
def test_missing_library_names_the_extra(monkeypatch, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf"install tnkit\[interop\] or pip install {package}"):
        getattr(interop, name)(tn.MPS.random([2, 2], 2, seed=0))


@pytest.mark.parametrize("name", ["to_quimb", "to_tensorly", "to_tltorch"])
def test_to_converters_refuse_non_trains(name):
    with pytest.raises(TypeError, match="x: .* expects a tnkit MPS or MPO, got ndarray"):
        getattr(interop, name)(np.ones((1, 2, 1)))
