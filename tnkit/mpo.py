"""MPO: a tensor train with two physical legs per core, layout (Dl, d_out, d_in, Dr).

Index layout, the matrix round trip (MPO-Net interleaving, ``from_matrix``), the identity and
the exact products; the algorithms are inherited from TensorTrain or live in ``arithmetic``.
"""

from __future__ import annotations

import math
from typing import Any

from . import _backend as backend
from . import arithmetic
from ._checks import check_dim_pair, check_dims, check_entries, is_int
from ._scaling import times_pow2
from .charged import Charged
from .cores import random_cores
from .decompose import decompose_matrix
from .mps import MPS
from .tensortrain import TensorTrain


class MPO(Charged, TensorTrain):
    """Matrix product operator: cores ``(Dl, d_out, d_in, Dr)``.

    The matrix ``W = o.to_matrix()`` has rows indexed by ``(i_1..i_L)`` and columns by
    ``(j_1..j_L)``, both in C order; core k holds ``(i_k, j_k)``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> o = tn.MPO.identity([2, 3])
        >>> o.out_dims, o.in_dims, bool(np.array_equal(o.to_matrix(), np.eye(6)))
        ((2, 3), (2, 3), True)
    """

    _n_phys_legs = 2
    _layout = "(Dl, d_out, d_in, Dr)"
    __slots__ = ("_matrix_shape", "_charges")

    def __init__(self, cores: Any, *, matrix_shape: tuple[int, int] | None = None) -> None:
        super().__init__(cores)
        object.__setattr__(self, "_matrix_shape", None)
        if matrix_shape is not None:
            object.__setattr__(self, "_matrix_shape", _check_matrix_shape(self, matrix_shape))

    @property
    def out_dims(self) -> tuple[int, ...]:
        """Output (row) dimension of every site."""
        return tuple(shape[1] for shape in self._shapes)

    @property
    def in_dims(self) -> tuple[int, ...]:
        """Input (column) dimension of every site."""
        return tuple(shape[2] for shape in self._shapes)

    @property
    def phys_dims(self) -> tuple[tuple[int, int], ...]:
        """``(d_out, d_in)`` of every site."""
        return tuple((shape[1], shape[2]) for shape in self._shapes)

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """Shape of the matrix this MPO represents (smaller than the dims' product if padded)."""
        if self._matrix_shape is not None:
            return self._matrix_shape
        return (math.prod(self.out_dims), math.prod(self.in_dims))

    def __matmul__(self, other: Any) -> Any:
        """Exact product ``self @ other`` with an MPS or an MPO (bond dims multiply).

        Example:
            >>> import numpy as np, tnkit as tn
            >>> o = tn.MPO.random([2, 2], [2, 2], 2, seed=0)
            >>> m = tn.MPS.random([2, 2], 2, seed=1)
            >>> y = o @ m
            >>> dense = o.to_matrix() @ m.to_dense().ravel()
            >>> y.bond_dims, bool(np.allclose(y.to_dense().ravel(), dense))
            ((4,), True)
        """
        if not isinstance(other, (MPS, MPO)):
            raise TypeError(f"@: expected MPO @ MPS or MPO @ MPO, got MPO @ {type(other).__name__}")
        dims = other.phys_dims if isinstance(other, MPS) else other.out_dims
        if self.in_dims != dims or len(self) != len(other):
            raise ValueError(
                f"@: operator in_dims {self.in_dims} do not match the right side's dims {dims}"
            )
        a, b = self._unfused(self._fused()), other._unfused(other._fused())  # held: not kept
        backend.namespace(a[0], b[0], name="@")
        cores = arithmetic.product(a, b)
        kept = other.charges if other.charges == self.charges else None  # both conserve them
        return type(other)._trusted(
            cores, exponent=self.scale_exponent + other.scale_exponent, _charges=kept
        )

    @property
    def T(self) -> MPO:
        """Transpose: out and in legs swap."""
        return self._with_cores(arithmetic.transposed(self._unfused(self._fused())), None, None)

    @property
    def H(self) -> MPO:
        """Adjoint (conjugate transpose)."""
        return self.T.conj()

    def trace(self) -> Any:
        """Trace of the operator (needs out_dims == in_dims).

        Example:
            >>> import tnkit as tn
            >>> float(tn.MPO.identity([2, 3]).trace())
            6.0
        """
        if self.out_dims != self.in_dims:
            raise ValueError(
                f"trace: needs out_dims == in_dims, got {self.out_dims} and {self.in_dims}"
            )
        value = arithmetic.trace(self._arrays())
        return times_pow2(value, self.scale_exponent) if self.scale_exponent else value

    def _dims_repr(self) -> str:
        return f"out_dims={list(self.out_dims)}, in_dims={list(self.in_dims)}"

    def to_dense(self) -> Any:
        """The full tensor with legs interleaved: shape ``(o_1, i_1, ..., o_L, i_L)``."""
        shape = tuple(d for pair in self.phys_dims for d in pair)
        return self.xp.reshape(self._dense(), shape)

    def to_matrix(self, *, padded: bool = False) -> Any:
        """The matrix ``W (out, in)``; zero padding from ``from_matrix`` is cut unless ``padded``.

        Example:
            >>> import numpy as np, tnkit as tn
            >>> W = np.arange(35.0).reshape(5, 7)
            >>> o = tn.MPO.from_matrix(W, 2, 2)   # dims factorised with padding
            >>> o.to_matrix().shape, o.to_matrix(padded=True).shape
            ((5, 7), (6, 9))
        """
        xp = self.xp
        n = len(self)
        tensor = self.to_dense()
        order = [2 * k for k in range(n)] + [2 * k + 1 for k in range(n)]
        full = xp.reshape(
            xp.permute_dims(tensor, order), (math.prod(self.out_dims), math.prod(self.in_dims))
        )
        if padded:
            return full
        rows, cols = self.matrix_shape
        return full[:rows, :cols]

    @classmethod
    def random(
        cls,
        out_dims: Any,
        in_dims: Any,
        max_bond: int,
        *,
        seed: Any = None,
        dtype: Any = "float64",
        like: Any = None,
    ) -> MPO:
        """Gaussian random MPO with E‖W‖_F² = 1 (not canonical).

        Example:
            >>> import tnkit as tn
            >>> tn.MPO.random([2, 2, 2], [3, 3, 3], 5, seed=0).bond_dims
            (5, 5)
        """
        outs, ins = check_dim_pair(out_dims, in_dims)
        cores = random_cores(
            list(zip(outs, ins, strict=True)), max_bond, seed=seed, dtype=dtype, like=like
        )
        return cls._trusted(cores)

    @classmethod
    def identity(cls, dims: Any, *, dtype: Any = "float64", like: Any = None) -> MPO:
        """The identity operator on sites of the given dims (bond dimension 1).

        Example:
            >>> import tnkit as tn
            >>> tn.MPO.identity([2, 2, 2]).bond_dims
            (1, 1)
        """
        dims = check_dims(dims, "dims")
        check_entries(sum(d * d for d in dims), "dims")
        xp = backend.namespace(like, name="like") if like is not None else None
        import numpy as np

        target = backend.resolve_dtype(np, dtype)
        cores = tuple(
            backend.from_numpy(np.eye(d, dtype=target).reshape(1, d, d, 1), like, xp) for d in dims
        )
        return cls._trusted(cores)

    @classmethod
    def from_matrix(cls, W: Any, out_dims: Any, in_dims: Any, **kwargs: Any) -> MPO:
        """MPO of a matrix ``W (out, in)`` by TT-SVD in MPO-Net interleaving.

        See [from_matrix][tnkit.mpo.from_matrix] for the arguments.

        Example:
            >>> import numpy as np, tnkit as tn
            >>> W = np.random.default_rng(0).standard_normal((16, 16))
            >>> o = tn.MPO.from_matrix(W, (4, 4), (4, 4))
            >>> bool(np.allclose(o.to_matrix(), W))
            True
        """
        (cores, centre, report, exponent), matrix_shape = decompose_matrix(
            W, out_dims, in_dims, **kwargs
        )
        return cls._trusted(cores, centre, report, exponent, _matrix_shape=matrix_shape)


def _check_matrix_shape(mpo: MPO, shape: Any) -> tuple[int, int]:
    try:
        pair = tuple(shape)
    except TypeError as exc:
        raise TypeError(f"matrix_shape: expected a pair of ints, got {shape!r}") from exc
    if len(pair) != 2 or not all(is_int(s) for s in pair):
        raise TypeError(f"matrix_shape: expected a pair of ints, got {shape!r}")
    rows, cols = (int(s) for s in pair)
    full = (math.prod(mpo.out_dims), math.prod(mpo.in_dims))
    if not (1 <= rows <= full[0] and 1 <= cols <= full[1]):
        raise ValueError(f"matrix_shape: {shape} must fit inside the dims' product {full}")
    return rows, cols


def from_matrix(
    W: Any,
    out_dims: Any,
    in_dims: Any,
    *,
    max_bond: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    method: str = "auto",
    progress: bool = False,
    pad: bool | None = None,
) -> MPO:
    """MPO of a matrix ``W (out, in)``: core k holds ``(out_dims[k], in_dims[k])``.

    ``out_dims``/``in_dims`` are sequences of ints whose products equal ``W.shape``, or ints
    (a number of cores: dims from ``factorize_dims(n, k, pad=True)``). With ``pad=True``
    (the default when a dims argument is an int) products may exceed ``W.shape`` and ``W`` is
    zero-padded; ``to_matrix()`` then returns the unpadded matrix and
    ``to_matrix(padded=True)`` the full one. The report counts ``params_before`` as
    ``W.size``. Truncation, ``method`` and ``progress`` as in [tt_svd][tnkit.tt_svd].

    Example:
        >>> import numpy as np, tnkit as tn
        >>> W = np.random.default_rng(0).standard_normal((64, 64))
        >>> o = tn.MPO.from_matrix(W, (4, 4, 4), (4, 4, 4), rtol=0.5)
        >>> o.report.rel_error_bound <= 0.5
        True
    """
    request = {"max_bond": max_bond, "rtol": rtol, "atol": atol, "method": method}
    return MPO.from_matrix(W, out_dims, in_dims, progress=progress, pad=pad, **request)
