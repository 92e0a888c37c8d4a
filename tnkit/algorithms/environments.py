"""Environments of a state and an operator, grown one site at a time, and the effective
operators they define on one or two sites (the matvecs of DMRG and TDVP).

Conventions: MPS cores ``(Dl, d, Dr)``, MPO cores ``(Dl, d_out, d_in, Dr)``; a left
environment ``E[a, w, b]`` holds bra bond a (conjugated), operator bond w, ket bond b, and a
right one the same for the bonds on its left. Pure functions on arrays; no sweeps here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _backend as backend
from .._einsum import contract


def edge(like: Any) -> Any:
    """The 1×1×1 environment beyond either end of the chain, in ``like``'s library."""
    xp = backend.namespace(like)
    return xp.ones((1, 1, 1), dtype=like.dtype, device=backend.device(like))


def grow_left(env: Any, core: Any, op: Any) -> Any:
    """The left environment one site further: Σ E[a,w,b] conj(A)[a,s,c] W[w,s,t,v] A[b,t,d].

    Formed as ``conj(A)ᵀ`` (flattened) times
    [left_product][tnkit.algorithms.environments.left_product] of ``A``: three matrix
    products, O(χ³·d·w).

    Example:
        >>> import numpy as np
        >>> a = np.eye(2).reshape(1, 2, 2) / np.sqrt(2)
        >>> w = np.eye(2).reshape(1, 2, 2, 1)
        >>> grow_left(np.ones((1, 1, 1)), a, w)[:, 0, :]
        array([[0.5, 0. ],
               [0. , 0.5]])
    """
    xp = backend.namespace(core)
    dl, d, dr = core.shape
    product = left_product(env, op)(core)  # (a s, v d)
    grown = backend.conj_t(xp.reshape(core, (dl * d, dr))) @ product
    return xp.reshape(grown, (dr, op.shape[3], dr))


def grow_right(env: Any, core: Any, op: Any) -> Any:
    """The right environment one site further left: Σ conj(B)[a,s,c] W[w,s,t,v] B[b,t,d]
    E[c,v,d] (the left growth on the mirrored chain)."""
    return grow_left(env, mirror(core), mirror_op(op))


def mirror(core: Any) -> Any:
    """The core of the reflected chain, bond legs swapped: (Dl, d, Dr) -> (Dr, d, Dl)."""
    return backend.namespace(core).permute_dims(core, (2, 1, 0))


def mirror_op(op: Any) -> Any:
    """The MPO core of the reflected chain: (Dl, d_out, d_in, Dr) -> (Dr, d_out, d_in, Dl)."""
    return backend.namespace(op).permute_dims(op, (3, 1, 2, 0))


def two_site_matvec(left: Any, op1: Any, op2: Any, right: Any) -> Any:
    """``theta -> H_eff theta`` for a two-site tensor ``theta[b, t1, t2, d]``.

    The two operators are merged first (w·d⁴·w entries: tiny). Then the left environment
    (one matrix product), the merged operator (a batch of small products, one per left
    bond index) and the right environment (one matrix product), in an order that needs no
    transposition in between: O(χ³·d²·w) for the environments and O(χ²·d⁴·w²) for the
    operator. On NumPy the intermediates go to buffers kept between calls.

    Example:
        >>> import numpy as np
        >>> left = right = np.ones((1, 1, 1))
        >>> w = np.eye(2).reshape(1, 2, 2, 1)  # identities: H_eff is the identity
        >>> theta = np.arange(4.0).reshape(1, 2, 2, 1)
        >>> bool(np.array_equal(two_site_matvec(left, w, w, right)(theta), theta))
        True
    """
    xp = backend.namespace(left)
    chi_l, w, _ = left.shape
    chi_r, wr, _ = right.shape
    d1, d2 = op1.shape[1], op2.shape[1]
    pair = contract("wstx,xruy->srywtu", op1, op2)  # out legs and right bond | left bond, in
    pair = real_if_real(xp.reshape(pair, (d1 * d2 * wr, w * op1.shape[2] * op2.shape[2])))
    flat_left = xp.reshape(left, (chi_l * w, left.shape[2]))
    flat_right = xp.matrix_transpose(xp.reshape(right, (chi_r, wr * right.shape[2])))
    work = Workspace(xp)

    def matvec(theta: Any) -> Any:
        b, t, u, c = theta.shape
        x = work.matmul(flat_left, xp.reshape(theta, (b, t * u * c)), slot=0)  # (a w, t u c)
        x = work.matmul(pair, xp.reshape(x, (chi_l, w * t * u, c)), slot=1)  # (a, s r y, c)
        x = xp.reshape(x, (chi_l * d1 * d2, wr * c)) @ flat_right  # (a s r, e)
        return xp.reshape(x, (chi_l, d1, d2, chi_r))

    return matvec


def one_site_matvec(left: Any, op: Any, right: Any) -> Any:
    """``A -> H_eff A`` for a one-site tensor ``A[b, t, d]`` (the same order as two sites):
    [left_product][tnkit.algorithms.environments.left_product], then one matrix product
    with the right environment."""
    xp = backend.namespace(left)
    chi_l, chi_r, wr = left.shape[0], right.shape[0], right.shape[1]
    times_left = left_product(left, op)
    flat_right = xp.reshape(xp.permute_dims(right, (1, 2, 0)), (wr * right.shape[2], chi_r))

    def matvec(core: Any) -> Any:
        return xp.reshape(times_left(core) @ flat_right, (chi_l, op.shape[1], chi_r))

    return matvec


def left_product(left: Any, op: Any) -> Any:
    """``A -> Σ E[a,w,b] A[b,t,c] W[w,s,t,v]``, flattened to the matrix ``(a s, v c)``: the
    left half of the one-site effective operator, and the perturbation of the subspace
    expansion. One matrix product and a batch of small ones (one per left bond index), no
    transposition: O(χ³·d·w + χ²·d²·w²). The result is a fresh array.

    Example:
        >>> import numpy as np
        >>> a = np.arange(4.0).reshape(1, 2, 2)
        >>> w = np.eye(2).reshape(1, 2, 2, 1)  # the identity: the product is A itself
        >>> left_product(np.ones((1, 1, 1)), w)(a)
        array([[0., 1.],
               [2., 3.]])
    """
    xp = backend.namespace(left)
    chi_l, w, _ = left.shape
    d_out, d_in, wr = op.shape[1], op.shape[2], op.shape[3]
    flat_left = xp.reshape(left, (chi_l * w, left.shape[2]))
    flat_op = real_if_real(xp.reshape(xp.permute_dims(op, (1, 3, 0, 2)), (d_out * wr, w * d_in)))
    work = Workspace(xp)

    def product(core: Any) -> Any:
        b, t, c = core.shape
        x = work.matmul(flat_left, xp.reshape(core, (b, t * c)), slot=0)  # (a w, t c)
        x = work.matmul(flat_op, xp.reshape(x, (chi_l, w * t, c)), slot=None)  # (a, s v, c)
        return xp.reshape(x, (chi_l * d_out, wr * c))

    return product


class Workspace:
    """Matrix products written into buffers that are kept between calls, on NumPy (other
    libraries allocate as usual). A matvec is called a few dozen times on arrays of the
    same shapes; fresh arrays of that size come from the operating system each time, and
    their page faults cost as much as the products themselves below χ ≈ 128.

    A buffer is overwritten by the next product into the same ``slot``: only for
    intermediates that do not outlive the call; ``slot=None`` gives a fresh array. A real
    matrix times a complex one runs as a real product on the complex array's float view
    (half the arithmetic of promoting the real one to complex).

    Example:
        >>> import numpy as np
        >>> work = Workspace(np)
        >>> x = work.matmul(np.eye(2), np.ones((2, 3)), slot=0)
        >>> x is work.matmul(np.eye(2), np.zeros((2, 3)), slot=0), float(x.sum())
        (True, 0.0)
    """

    def __init__(self, xp: Any) -> None:
        self._numpy = backend.is_numpy(xp)
        self._buffers: dict[int, Any] = {}

    def matmul(self, a: Any, b: Any, *, slot: int | None) -> Any:
        if not self._numpy:
            return a @ b
        shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
        dtype = np.result_type(a, b)
        buffer = self._buffers.get(slot) if slot is not None else None
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
            buffer = np.empty(shape, dtype=dtype)
            if slot is not None:
                self._buffers[slot] = buffer
        if _real_times_complex(a, b):
            np.matmul(a, b.view(a.dtype), out=buffer.view(a.dtype))
            return buffer
        return np.matmul(a, b, out=buffer)


def _real_times_complex(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a @ b`` can run on ``b``'s float view: ``a`` real, ``b`` complex of the same
    precision and contiguous (its last axis becomes interleaved real and imaginary parts)."""
    return (
        a.dtype.kind == "f"
        and b.dtype.kind == "c"
        and b.dtype.itemsize == 2 * a.dtype.itemsize
        and b.flags.c_contiguous
    )


def real_if_real(a: Any) -> Any:
    """``a``'s real part when ``a`` is a complex NumPy array whose imaginary part is zero
    (a real operator cast to complex), else ``a``: small operator matrices, checked once
    per effective operator, so that the products run in real arithmetic."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "c" and not a.imag.any():
        return np.ascontiguousarray(a.real)
    return a


def overlap_left(env: Any, core: Any, other: Any) -> Any:
    """Left overlap environment one site further: Σ F[a,b] conj(A)[a,s,c] B[b,s,d]."""
    return contract("ab,asc,bsd->cd", env, _conj(core), other)


def overlap_right(env: Any, core: Any, other: Any) -> Any:
    """Right overlap environment one site further left: Σ conj(A)[a,s,c] B[b,s,d] F[c,d]."""
    return contract("cd,asc,bsd->ab", env, _conj(core), other)


def local_image(left: Any, cores: list, right: Any) -> Any:
    """The image of another state on the local sites of this one: Σ F_L[a,b] B...[b,..,d]
    F_R[c,d], shaped like the local tensor (one or two sites)."""
    x = contract("ab,bsd->asd", left, cores[0])
    if len(cores) == 2:
        x = contract("asd,dte->aste", x, cores[1])
        return contract("aste,ce->astc", x, right)
    return contract("asd,cd->asc", x, right)


def _conj(core: Any) -> Any:
    return backend.namespace(core).conj(core) if backend.is_complex(core.dtype) else core


def zero_site_matvec(left: Any, right: Any) -> Any:
    """``C -> H_eff C`` for a bond matrix ``C[b, d]`` between two sites (the zero-site
    effective operator of TDVP's backward steps): Σ E_L[a,w,b] C[b,d] E_R[c,w,d], with the
    left environment of the bond (all sites to its left) and the right one. Two matrix
    products: O(χ³·w).

    Example:
        >>> import numpy as np
        >>> edge = np.ones((1, 1, 1))
        >>> zero_site_matvec(edge, edge)(np.array([[2.0]]))  # no sites: the identity
        array([[2.]])
    """
    xp = backend.namespace(left)
    chi_l, w, _ = left.shape
    chi_r = right.shape[0]
    flat_left = xp.reshape(left, (chi_l * w, left.shape[2]))
    flat_right = xp.reshape(xp.permute_dims(right, (1, 2, 0)), (w * right.shape[2], chi_r))

    def matvec(bond: Any) -> Any:
        x = xp.reshape(flat_left @ bond, (chi_l, w * bond.shape[1]))  # (a, w d)
        return x @ flat_right  # (a, c)

    return matvec


def right_environments(cores: list, ops: list, *, far_edge: Any = None, grow: Any = None) -> list:
    """Every right environment of a right-canonical state: entry ``k`` covers sites k..n−1
    (entry n is the edge; entry 0, the whole chain, is left None, as no sweep needs it).
    ``far_edge`` and ``grow`` default to the dense ones ([edge][tnkit.algorithms.environments.edge],
    [grow_right][tnkit.algorithms.environments.grow_right]); other arrays pass their own.

    Example:
        >>> import tnkit as tn
        >>> psi = tn.MPS.random([2] * 4, 2, seed=0).canonicalize(0)
        >>> [None if e is None else e.shape for e in
        ...  right_environments(psi.cores, tn.models.heisenberg(4).cores)]
        [None, (2, 4, 2), (2, 5, 2), (2, 4, 2), (1, 1, 1)]
    """
    n = len(cores)
    right = [None] * (n + 1)
    right[n] = edge(cores[0]) if far_edge is None else far_edge
    grow = grow_right if grow is None else grow
    for k in range(n - 1, 0, -1):
        right[k] = grow(right[k + 1], cores[k], ops[k])
    return right
