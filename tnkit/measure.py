"""Measurements on trains: Schmidt values, entanglement entropies, local observables, sampling.

Pure functions through the canonical form (the spectra and sampling are the trains' own
methods, documented here); they never change a train, and never build an MPO or a dense
tensor (except ``probabilities``, which is the dense distribution by definition).
"""

from __future__ import annotations

from typing import Any

import array_api_compat as aac
import numpy as np

from . import _backend as backend
from ._checks import check_array
from ._einsum import contract
from ._scaling import over_largest, times_pow2
from .contract import nonzero_norm_sq
from .mps import MPS
from .sites import SITE_TYPES, dimension, jordan_wigner_pieces, parity, resolve_op
from .tensortrain import TensorTrain

__all__ = [
    "correlation",
    "entropies",
    "entropy",
    "local_expectation",
    "probabilities",
    "sample",
    "singular_values",
]


# ---------------------------------------------------------------------- Schmidt values


def singular_values(t: TensorTrain, bond: int) -> np.ndarray:
    """Schmidt coefficients of the train as it is (not normalised) across ``bond``.

    ``bond`` k is the cut after site k (``0 <= k < len - 1``; negative values count from the
    end). Returns a host NumPy float64 array, descending, of length ``min(bond_dims[k], left
    size, right size)`` (zeros where the rank is lower), whatever the train's library.
    For an MPO the physical legs are fused: these are the operator Schmidt values.

    Only the sites between the known centre and the bond are swept, so calls on a
    canonical train are cheap; ``entropies`` does all bonds in one sweep.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> m = tn.MPS.random([2] * 6, 4, seed=0)
        >>> s = tn.measure.singular_values(m, 2)
        >>> x = m.to_dense().reshape(8, 8)
        >>> bool(np.allclose(s, np.linalg.svd(x, compute_uv=False)[:4]))
        True
    """
    check_train(t, "t")
    return t.singular_values(bond)


def entropy(t: TensorTrain, bond: int, alpha: float = 1) -> float:
    """Entanglement entropy across ``bond`` with p = s²/Σs² and the natural log.

    ``alpha=1``: von Neumann, −Σ p log p; ``alpha`` ≠ 1: Rényi, log(Σ p^α)/(1 − α);
    ``alpha=math.inf``: min-entropy, −log max p. Zero probabilities add nothing (0·log 0 = 0).
    ValueError for a zero train, whose distribution is undefined.

    Example:
        >>> import math, numpy as np, tnkit as tn
        >>> bell = np.array([1.0, 0.0, 0.0, 1.0])        # |00> + |11>, not normalised
        >>> m = tn.tt_svd(bell, (2, 2))
        >>> math.isclose(tn.measure.entropy(m, 0), math.log(2))
        True
    """
    check_train(t, "t")
    return t.entropy(bond, alpha)


def entropies(t: TensorTrain, alpha: float = 1) -> np.ndarray:
    """The entropies of all ``len - 1`` bonds (as ``entropy``), in one canonical sweep.

    The train is right-canonicalised once; the centre then moves left to right by the SVD
    taken at each bond. Returns a NumPy float64 array of length ``len - 1``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> m = tn.MPS.random([2] * 6, 4, seed=0)
        >>> bool(np.allclose(tn.measure.entropies(m), [m.entropy(k) for k in range(5)]))
        True
    """
    check_train(t, "t")
    return t.entropies(alpha)


# ---------------------------------------------------------------------- local observables


def local_expectation(
    m: MPS, op: Any, site: int, *, normalize: bool = False, site_type: str | None = None
) -> Any:
    """⟨m|op_site|m⟩ for a d×d array ``op`` at one site (÷ ⟨m|m⟩ if ``normalize``).

    Un-normalised by default (the dense value ``x^H (op ⊗ 1) x``). ``op`` is an array of the
    train's library (an integer array is cast to the train's dtype); the result is a 0-d
    array of that library, of the promoted dtype of ``m`` and ``op``. A canonical train (or
    ``normalize=True``) is centred at ``site`` and only the centre core is contracted; a
    train without a known centre is contracted end to end (two products per site).

    With ``site_type`` (``"spin-half"``, ``"spin-one"``, ``"fermion"``, ``"electron"``, as
    in [OpSum][tnkit.OpSum]) ``op`` may be a name, and a fermion-odd operator carries its
    Jordan–Wigner string (the parity F on every site to its left), as in ``OpSum``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> m = tn.MPS.random([2] * 5, 3, seed=0)
        >>> z = np.diag([1.0, -1.0])
        >>> x = m.to_dense()
        >>> ref = np.vdot(x, np.moveaxis(np.tensordot(z, x, axes=(1, 2)), 0, 2))
        >>> bool(np.isclose(tn.local_expectation(m, z, 2), ref))
        True
        >>> bool(np.isclose(tn.local_expectation(m, "Sz", 2, site_type="spin-half"), ref / 2))
        True
    """
    check_mps(m, "m")
    site = m._check_site(site, "site")
    if site_type is not None:
        return _measure(m, _string_ops(m, [(op, site, "op")], site_type), normalize)
    op = _check_op(m, op, site, "op")
    return _measure(m, {site: op}, normalize)


def correlation(
    m: MPS,
    op1: Any,
    i: int,
    op2: Any,
    j: int,
    *,
    normalize: bool = False,
    site_type: str | None = None,
) -> Any:
    """⟨m|op1_i op2_j|m⟩ (÷ ⟨m|m⟩ if ``normalize``), operators in the order written.

    Any order of ``i`` and ``j``; ``i == j`` measures ``op1 @ op2`` at that site. Transfer
    matrices run between the two sites only when the train is canonical (cost
    O(|i − j|·χ³·d) plus the centre move); see ``local_expectation`` for dtypes, the
    un-normalised default and ``site_type``: with it, operators may be names and fermionic
    ones carry their Jordan–Wigner strings (⟨c†_i c_j⟩ gets F on the sites between).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> m = tn.MPS.random([2] * 5, 3, seed=0)
        >>> z = np.diag([1.0, -1.0])
        >>> x = m.to_dense()
        >>> zz = np.einsum("ab,cd,ebgdh->eagch", z, z, x)      # z at sites 1 and 3
        >>> bool(np.isclose(tn.correlation(m, z, 3, z, 1), np.vdot(x, zz)))
        True
        >>> hop = tn.OpSum(5, site="fermion").add(1.0, "Cdag", 1, "C", 3).to_mpo()
        >>> value = tn.correlation(m, "Cdag", 1, "C", 3, site_type="fermion")
        >>> bool(np.isclose(value, tn.expectation(m, hop)))
        True
    """
    check_mps(m, "m")
    i = m._check_site(i, "i")
    j = m._check_site(j, "j")
    if site_type is not None:
        factors = [(op1, i, "op1"), (op2, j, "op2")]
        return _measure(m, _string_ops(m, factors, site_type), normalize)
    op1 = _check_op(m, op1, i, "op1")
    op2 = _check_op(m, op2, j, "op2")
    if i == j:
        xp = m.xp
        dtype = xp.result_type(op1.dtype, op2.dtype)  # torch's @ does not promote
        return _measure(m, {i: xp.astype(op1, dtype) @ xp.astype(op2, dtype)}, normalize)
    return _measure(m, {i: op1, j: op2}, normalize)  # distinct sites commute


def _string_ops(m: MPS, factors: list, site_type: str) -> dict:
    """{site: local matrix} of the written-order product of named (or array) factors with
    their Jordan–Wigner strings, as ``OpSum`` builds a term; matrices in m's library."""
    if site_type not in SITE_TYPES:
        raise ValueError(f"site_type: expected one of {SITE_TYPES}, got {site_type!r}")
    d = dimension(site_type)
    if any(dim != d for dim in m.phys_dims):
        raise ValueError(
            f"site_type: {site_type!r} sites have dimension {d}, but m has phys_dims {m.phys_dims}"
        )
    resolved = []
    for op, site, name in factors:
        try:
            resolved.append(resolve_op(op, site, site_type, m.phys_dims))
        except (TypeError, ValueError) as exc:
            raise type(exc)(str(exc).replace("op:", f"{name}:", 1)) from None
    pieces = jordan_wigner_pieces(resolved, [parity(site_type)] * len(m))
    dtype = np.dtype(backend.dtype_name(m.dtype))  # the train's precision: no silent upcast
    if any(np.iscomplexobj(matrix) for _, matrix in pieces):
        dtype = np.result_type(dtype, np.complex64)
    like = m._first_array()
    return {k: backend.from_numpy(np.asarray(mat, dtype=dtype), like) for k, mat in pieces}


def _measure(m: MPS, ops: dict, normalize: bool) -> Any:
    """The sandwich ⟨m|Π ops|m⟩, through the canonical form when it is known or needed."""
    xp = m.xp
    dtype = xp.result_type(m.dtype, *(op.dtype for op in ops.values()))
    ops = {k: op if op.dtype == dtype else xp.astype(op, dtype) for k, op in ops.items()}
    cores = m._fused()
    if not normalize and m.centre is None and not m.scale_exponent:
        cores = [c if c.dtype == dtype else xp.astype(c, dtype) for c in cores]
        return _sandwich(xp, cores, ops, 0, len(cores) - 1)
    first, last = min(ops), max(ops)
    centre = first if m.centre is None else min(max(m.centre, first), last)
    canonical = m.canonicalize(centre)
    cores = list(canonical._fused())
    cores = [c if c.dtype == dtype else xp.astype(c, dtype) for c in cores]
    # With the centre between the operators, the cores left of them are left isometries and
    # those right of them right isometries: both environments are identities, and the centre
    # core carries the norm.
    if normalize:  # the scale cancels: divided out first, so no square under- or overflows
        cores[centre] = over_largest(cores[centre])[0]
        value = _sandwich(xp, cores, ops, first, last)
        return value / nonzero_norm_sq(xp.sum(xp.abs(cores[centre]) ** 2))
    value = _sandwich(xp, cores, ops, first, last)
    exponent = 2 * canonical.scale_exponent
    return times_pow2(value, exponent) if exponent else value


def _sandwich(xp: Any, cores: list, ops: dict, start: int, stop: int) -> Any:
    """Σ conj(bra)·ket over sites start..stop, identity environments at both open ends."""
    env = None
    for k in range(start, stop + 1):
        bra = cores[k]
        ket = contract("st,atb->asb", ops[k], bra) if k in ops else bra
        if env is not None:
            ket = contract("ab,bsc->asc", env, ket)
        if backend.is_complex(bra.dtype):
            bra = xp.conj(bra)
        if k == stop:
            return xp.sum(bra * ket)
        env = contract("asb,asc->bc", bra, ket)
    raise AssertionError("unreachable: start <= stop")


# ---------------------------------------------------------------------- sampling


def sample(m: MPS, n: int, *, seed: Any = None) -> np.ndarray:
    """``n`` exact samples of the distribution |x|²/‖x‖², an (n, len) int64 NumPy array.

    Perfect sampling: the train is right-canonicalised, then all samples go site by site
    together; each carries its left vector, and the conditional probabilities are the
    squared norms of the candidate vectors (the right part is an isometry). Cost
    O(n·L·χ²·d). ``seed`` goes to ``numpy.random.default_rng``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> ghz = np.zeros((2, 2, 2))
        >>> ghz[0, 0, 0] = ghz[1, 1, 1] = 1.0
        >>> samples = tn.tt_svd(ghz).sample(1000, seed=0)
        >>> samples.shape, samples.dtype, bool(np.all(samples == samples[:, :1]))
        ((1000, 3), dtype('int64'), True)
    """
    check_mps(m, "m")
    return m.sample(n, seed=seed)


def probabilities(m: MPS) -> Any:
    """The distribution |x|²/‖x‖² as a dense real array of shape ``phys_dims``.

    For small trains only: ValueError above 2**24 entries. The result is an array of the
    train's library, of the real dtype of the train's precision.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> p = tn.MPS.random([2, 3, 2], 2, seed=0).probabilities()
        >>> p.shape, bool(np.isclose(p.sum(), 1.0))
        ((2, 3, 2), True)
    """
    check_mps(m, "m")
    return m.probabilities()


# ---------------------------------------------------------------------- validation


def check_train(t: Any, name: str) -> None:
    """TypeError naming ``name`` unless ``t`` is an MPS or MPO."""
    if not isinstance(t, TensorTrain):
        raise TypeError(f"{name}: expected an MPS or MPO, got {type(t).__name__}")


def check_mps(m: Any, name: str) -> None:
    """TypeError naming ``name`` unless ``m`` is an MPS."""
    if not isinstance(m, MPS):
        raise TypeError(f"{name}: expected an MPS, got {type(m).__name__}")


def _check_op(m: MPS, op: Any, site: int, name: str) -> Any:
    """A (d, d) array of the train's library for ``site``; integer arrays take m's dtype."""
    if not aac.is_array_api_obj(op) or (isinstance(op, np.ndarray) and op.dtype == object):
        raise TypeError(f"{name}: expected a (d, d) array, got {type(op).__name__}")
    xp = backend.namespace(m._first_array(), op, name=name)
    if xp.isdtype(op.dtype, ("integral", "bool")):
        op = xp.astype(op, m.dtype)
    check_array(op, name)
    d = m.phys_dims[site]
    if tuple(op.shape) != (d, d):
        raise ValueError(
            f"{name}: expected shape ({d}, {d}) for site {site}, got {tuple(op.shape)}"
        )
    if backend.device(op) != backend.device(m._first_array()):
        raise ValueError(f"{name}: on device {backend.device(op)}, but the train is on another")
    return op
