"""Converters between tnkit trains and quimb, TensorLy, TensorLy-Torch and TeNPy objects.

Layout only (index orders, boundary legs, TeNPy's canonical form); each peer is imported lazily
by the converter that needs it, never at ``import tnkit``. See docs/interop.md for the table.
The TeNPy converters (with charges: ``np_conserved`` arrays) are in ``tnkit.interop_tenpy``.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import numpy as np

from . import _backend as backend
from .interop_tenpy import from_tenpy, to_tenpy
from .mpo import MPO
from .mps import MPS

__all__ = [
    "from_quimb",
    "from_tenpy",
    "from_tensorly",
    "from_tltorch",
    "to_quimb",
    "to_tenpy",
    "to_tensorly",
    "to_tltorch",
]

# module to import -> (pip package, what the error message names)
_PEERS = {
    "quimb": "quimb",
    "tensorly": "tensorly",
    "tltorch": "tensorly-torch",
    "tenpy": "physics-tenpy",
    "torch": "torch",
}


def _require(module: str, caller: str) -> Any:
    """Import ``module`` (top-level package first, so a blocked parent is noticed)."""
    package = _PEERS[module.split(".")[0]]
    try:
        importlib.import_module(module.split(".")[0])
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"tnkit.interop.{caller} needs {package}: install tnkit[interop] "
            f"or pip install {package}"
        ) from exc


def _check_train(x: Any, name: str, caller: str) -> MPS | MPO:
    if not isinstance(x, (MPS, MPO)):
        raise TypeError(f"{name}: {caller} expects a tnkit MPS or MPO, got {type(x).__name__}")
    return x


def _copy(array: Any) -> Any:
    """A copy, so that neither object shares a buffer with the other (quimb and TeNPy modify
    some arrays in place; tnkit's NumPy cores are read-only views)."""
    if isinstance(array, np.ndarray):
        return np.array(array, copy=True)
    if type(array).__module__.split(".")[0] == "torch":
        return array.detach().clone()
    xp = backend.namespace(array, name="array")
    return xp.asarray(array, copy=True)


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__name__}"


# ---------------------------------------------------------------------- quimb


def to_quimb(x: MPS | MPO) -> Any:
    """A quimb ``MatrixProductState`` (from an MPS) or ``MatrixProductOperator`` (from an MPO).

    quimb drops the size-1 boundary legs and stores ``'lrp'`` / ``'lrud'`` order; the MPO's
    out legs become quimb's upper (``k{}``) indices and its in legs the lower (``b{}``) ones,
    so ``to_quimb(o).to_dense()`` equals ``o.to_matrix()``. The arrays are copies of the
    cores, on the cores' library (quimb dispatches through autoray).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.interop import to_quimb
        >>> m = tn.MPS.random([2, 3, 2], 2, seed=0)
        >>> q = to_quimb(m)
        >>> [t.shape for t in q], bool(np.allclose(q.to_dense().ravel(), m.to_dense().ravel()))
        ([(2, 2), (2, 2, 3), (2, 2)], True)
    """
    x = _check_train(x, "x", "to_quimb")
    qtn = _require("quimb.tensor", "to_quimb")
    xp = x.xp
    cores = [_copy(c) for c in x._folded_cores()]
    last = len(cores) - 1
    arrays = []
    for k, core in enumerate(cores):
        shape = tuple(core.shape)
        if k == 0:
            shape = shape[1:]
        if k == last:
            shape = shape[:-1]
        arrays.append(xp.reshape(core, shape))
    if isinstance(x, MPS):
        return qtn.MatrixProductState(arrays, shape="lpr")
    return qtn.MatrixProductOperator(arrays, shape="ludr")


def from_quimb(q: Any) -> MPS | MPO:
    """An MPS from a quimb ``MatrixProductState``, an MPO from a ``MatrixProductOperator``.

    Every site tensor is transposed to tnkit's order by index name (whatever ``shape`` it
    was built with) and gets its boundary legs back; an MPO takes quimb's upper indices as
    out legs. The cores are copies (same library and dtype as quimb's arrays). Periodic
    (cyclic) networks are refused.

    Example:
        >>> import numpy as np, quimb.tensor as qtn
        >>> from tnkit.interop import from_quimb
        >>> q = qtn.MPS_rand_state(5, bond_dim=3, dtype="complex128", seed=0)
        >>> m = from_quimb(q)
        >>> m.bond_dims, bool(np.allclose(m.to_dense().ravel(), q.to_dense().ravel()))
        ((3, 3, 3, 3), True)
    """
    qtn = _require("quimb.tensor", "from_quimb")
    if isinstance(q, qtn.MatrixProductOperator):
        cls, phys = MPO, lambda i: (q.upper_ind(i), q.lower_ind(i))
    elif isinstance(q, qtn.MatrixProductState):
        cls, phys = MPS, lambda i: (q.site_ind(i),)
    else:
        raise TypeError(
            f"q: expected a quimb MatrixProductState or MatrixProductOperator, got {_type_name(q)}"
        )
    if getattr(q, "cyclic", False):
        raise ValueError("q: periodic (cyclic) quimb networks have no open-boundary train")
    n = q.L
    cores = []
    for i in range(n):
        tensor = q[q.site_tag(i)]
        left = (q.bond(i - 1, i),) if i > 0 else ()
        right = (q.bond(i, i + 1),) if i < n - 1 else ()
        order = (*left, *phys(i), *right)
        if set(order) != set(tensor.inds) or len(order) != len(tensor.inds):
            raise ValueError(
                f"q: site {i} has indices {tensor.inds}, expected {order} (one bond per "
                "neighbour and the site's physical indices)"
            )
        data = tensor.transpose(*order).data
        shape = tuple(int(s) for s in data.shape)
        full = ((1,) if not left else ()) + shape + ((1,) if not right else ())
        xp = backend.namespace(data, name="q")
        cores.append(_copy(xp.reshape(data, full)))
    return cls(cores)


# ---------------------------------------------------------------------- TensorLy


def to_tensorly(x: MPS | MPO) -> Any:
    """A TensorLy ``TTTensor`` (from an MPS) or ``TTMatrix`` (from an MPO).

    Both layouts are tnkit's: TT cores ``(r, n, r')`` and TT-matrix cores
    ``(r, out, in, r')`` with boundary ranks 1, so the cores are copied unchanged (on their
    own library: pick the matching TensorLy backend before densifying). An MPO's
    ``matrix_shape`` (padding from ``from_matrix``) is not kept.

    Example:
        >>> import tnkit as tn
        >>> from tnkit.interop import to_tensorly
        >>> tt = to_tensorly(tn.MPO.random([2, 3], [4, 5], 3, seed=0))
        >>> type(tt).__name__, tt.shape, tt.rank
        ('TTMatrix', (2, 3, 4, 5), (1, 3, 1))
    """
    x = _check_train(x, "x", "to_tensorly")
    tl = _require("tensorly", "to_tensorly")
    from tensorly.tt_matrix import TTMatrix
    from tensorly.tt_tensor import TTTensor

    cores = [_copy(c) for c in x._folded_cores()]
    with _tensorly_backend_of(tl, cores[0]):  # TensorLy validates with its active backend
        return TTTensor(cores) if isinstance(x, MPS) else TTMatrix(cores)


def from_tensorly(t: Any) -> MPS | MPO:
    """An MPS from a TensorLy ``TTTensor``, an MPO from a ``TTMatrix`` (cores copied as they
    are; see [to_tensorly][tnkit.interop.to_tensorly]).

    Example:
        >>> import numpy as np, tensorly as tl
        >>> from tensorly.decomposition import tensor_train
        >>> from tnkit.interop import from_tensorly
        >>> x = np.random.default_rng(0).standard_normal((3, 4, 5))
        >>> with tl.backend_context("numpy"):
        ...     m = from_tensorly(tensor_train(x, rank=[1, 3, 5, 1]))
        >>> m.bond_dims, bool(np.allclose(m.to_dense(), x))
        ((3, 5), True)
    """
    _require("tensorly", "from_tensorly")
    from tensorly.tt_matrix import TTMatrix
    from tensorly.tt_tensor import TTTensor

    if isinstance(t, TTMatrix):
        return MPO([_copy(c) for c in t.factors])
    if isinstance(t, TTTensor):
        return MPS([_copy(c) for c in t.factors])
    raise TypeError(f"t: expected a TensorLy TTTensor or TTMatrix, got {_type_name(t)}")


_TENSORLY_BACKENDS = {"numpy": "numpy", "torch": "pytorch", "jax": "jax", "cupy": "cupy"}


def _tensorly_backend_of(tl: Any, array: Any) -> Any:
    """TensorLy's backend for ``array``'s library (the active one for any other library).

    Importing tltorch switches TensorLy to its PyTorch backend for the whole process, which
    would then refuse NumPy cores."""
    backend = _TENSORLY_BACKENDS.get(type(array).__module__.split(".")[0])
    if backend is None or backend == tl.get_backend():
        return contextlib.nullcontext()
    return tl.backend_context(backend)


# ---------------------------------------------------------------------- TensorLy-Torch


def to_tltorch(x: MPS | MPO) -> Any:
    """A TensorLy-Torch ``TTTensor`` (from an MPS) or ``BlockTT`` (from an MPO).

    ``BlockTT`` is the TT-matrix that ``tltorch.FactorizedLinear(..., factorization='blocktt')``
    keeps as ``.weight``: tensorized shape ``(out_dims, in_dims)``, factors
    ``(r, out, in, r')`` (tnkit's MPO layout), ``to_matrix()`` of shape ``(out, in)``. The
    factors become new ``torch.nn.Parameter`` leaves (copies; NumPy cores go through
    ``torch.from_numpy``), so gradients do not flow back into the train.

    Example:
        >>> import tnkit as tn
        >>> from tnkit.interop import to_tltorch
        >>> w = to_tltorch(tn.MPO.random([4, 5], [2, 3], 3, seed=0))
        >>> type(w).__name__, w.tensorized_shape, tuple(w.to_matrix().shape)
        ('BlockTT', ((4, 5), (2, 3)), (20, 6))
    """
    x = _check_train(x, "x", "to_tltorch")
    torch = _require("torch", "to_tltorch")
    tltorch = _require("tltorch", "to_tltorch")
    cores = [
        _copy(c)
        if isinstance(c, torch.Tensor)
        else torch.from_numpy(np.array(backend.to_numpy(c), copy=True))
        for c in x._folded_cores()
    ]
    rank = (1, *x.bond_dims, 1)
    if isinstance(x, MPS):
        return tltorch.TTTensor(cores, shape=x.phys_dims, rank=rank)
    return tltorch.BlockTT(cores, tensorized_shape=(x.out_dims, x.in_dims), rank=rank)


def from_tltorch(f: Any) -> MPS | MPO:
    """An MPS from a TensorLy-Torch ``TTTensor``, an MPO from a ``BlockTT`` (e.g. the
    ``.weight`` of a ``FactorizedLinear`` with ``factorization='blocktt'``, or that layer
    itself; its bias is not part of the MPO).

    The cores are detached copies of the factors (torch tensors on the factors' device).
    Batched factorisations (``n_layers > 1``) are refused.

    Example:
        >>> import tltorch
        >>> from tnkit.interop import from_tltorch
        >>> layer = tltorch.FactorizedLinear((2, 3), (4, 5), factorization="blocktt", rank=3)
        >>> o = from_tltorch(layer.weight)
        >>> o.out_dims, o.in_dims, o.bond_dims
        ((4, 5), (2, 3), (3,))
    """
    _require("torch", "from_tltorch")
    tltorch = _require("tltorch", "from_tltorch")
    if isinstance(f, tltorch.FactorizedLinear):
        f = f.weight
    if isinstance(f, tltorch.BlockTT):
        shape = f.tensorized_shape
        if len(shape) != 2 or any(isinstance(s, (int, np.integer)) for s in shape):
            raise ValueError(
                f"f: batched BlockTT (tensorized_shape {shape}) has no single MPO; "
                "convert one layer's factors at a time"
            )
        return MPO([_copy(c) for c in f.factors])
    if isinstance(f, tltorch.TTTensor):
        return MPS([_copy(c) for c in f.factors])
    raise TypeError(
        f"f: expected a tltorch TTTensor, BlockTT or FactorizedLinear, got {_type_name(f)}"
    )


# ---------------------------------------------------------------------- TeNPy
# to_tenpy and from_tenpy (plain and charged trains) live in interop_tenpy.
