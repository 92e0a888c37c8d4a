"""Dynamical correlation functions ⟨A_i(t) B_j(0)⟩ = ⟨ψ₀|e^{iHt} A_i e^{−iHt} B_j|ψ₀⟩ of a
state, in one call: B_j|ψ₀⟩ (and ψ₀ unless it is an eigenstate) evolved by ``tdvp``.

The evolution is ``tdvp``'s and the transfer matrices are ``environments``'s; this module
only chooses what to evolve and sweeps one mixed overlap per time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _backend as backend
from .._checks import is_int
from .._einsum import contract
from ..contract import expectation
from ..mpo import MPO
from ..mps import MPS
from ..sites import SITE_TYPES, jordan_wigner_pieces, parity, resolve_op
from . import environments as env
from .checks import check_hamiltonian, check_state
from .dmrg import variance
from .tdvp import tdvp
from .tdvp_expansion import KrylovExpansion

__all__ = ["CorrelationResult", "correlation_function"]

# ψ₀ counts as an eigenstate when its energy variance is below this fraction of max(1, E²).
EIGENSTATE_VARIANCE = 1e-8


@dataclass(frozen=True)
class CorrelationResult:
    """⟨A_i(t) B_j(0)⟩ at ``times`` (0, dt, …, t) and ``sites`` i: ``values[n, k]`` is the
    value at ``times[n]`` and ``sites[k]`` (complex). ``energy`` is E₀ when ψ₀ was taken as
    an eigenstate (its bra then evolves by the phase e^{−iE₀t}), None when ψ₀ was evolved."""

    times: np.ndarray
    sites: tuple[int, ...]
    values: np.ndarray
    energy: float | None


def correlation_function(
    H: MPO,
    psi0: MPS,
    A: Any,
    B: Any,
    j: int,
    t: float,
    *,
    dt: float,
    sites: Sequence[int] | None = None,
    site_type: str | None = None,
    eigenstate: bool | None = None,
    method: str = "two-site",
    order: int = 2,
    max_bond: int | None = None,
    rtol: float | None = None,
    expand: str | KrylovExpansion | None = None,
) -> CorrelationResult:
    """⟨A_i(t) B_j(0)⟩ = ⟨ψ₀|e^{iHt} A_i e^{−iHt} B_j|ψ₀⟩ for every i in ``sites`` (all by
    default) at the times 0, dt, …, ``t`` (ħ = 1; ψ₀ normalised first, as in ``tdvp``).

    |φ⟩ = B_j|ψ₀⟩ is evolved by ``tn.tdvp`` (``method``, ``order``, ``max_bond``,
    ``rtol`` and ``expand`` are passed on), and at every step ⟨ψ(t)|A_i|φ(t)⟩ is read for
    all i by one sweep of mixed transfer matrices (O(L·χ³·d)). If ψ₀ is an eigenstate of
    energy E₀, ψ(t) = e^{−iE₀t}ψ₀ and only φ is evolved: half the work, and the usual case
    (ground-state correlations). ``eigenstate=None`` decides by the variance (an
    eigenstate when ⟨H²⟩ − ⟨H⟩² ≤ 1e-8·max(1, E₀²)); ``True`` takes ψ₀ as one anyway (a
    DMRG state whose variance is only small), ``False`` evolves ψ₀ too and keeps its
    states at every time (memory: the number of times × the state's size).

    ``sites`` are sorted. ``A`` and ``B`` are (d, d) arrays, or names with ``site_type`` as in
    ``tn.correlation``; fermion-odd ones carry their Jordan–Wigner strings (both must be
    odd, or both even).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.algorithms import correlation_function
        >>> H = tn.models.heisenberg(6)
        >>> ground = tn.dmrg(H, max_bond=8, seed=0).state
        >>> c = correlation_function(H, ground, "Sz", "Sz", 2, 0.2, dt=0.1,
        ...                          site_type="spin-half", eigenstate=True)
        >>> c.values.shape, c.energy is not None
        ((3, 6), True)
        >>> bool(np.isclose(c.values[0, 2], 0.25))  # t = 0: ⟨(Sz)²⟩ = 1/4
        True
    """
    check_hamiltonian(H)
    check_state(psi0, H, "psi0")
    if site_type is not None and site_type not in SITE_TYPES:
        raise ValueError(f"site_type: expected one of {SITE_TYPES}, got {site_type!r}")
    if eigenstate is not None and not isinstance(eigenstate, bool):
        raise TypeError(f"eigenstate: expected None or a bool, got {eigenstate!r}")
    dims, n = psi0.phys_dims, len(psi0)
    if not is_int(j) or not 0 <= j < n:
        raise ValueError(f"j: expected a site in 0..{n - 1}, got {j!r}")
    sites = tuple(range(n)) if sites is None else _check_sites(sites, n)
    b_factor = _factor(B, j, site_type, dims, "B")
    a_factors = [_factor(A, i, site_type, dims, "A") for i in sites]
    if a_factors[0].odd != b_factor.odd:
        raise ValueError("A, B: one is fermion-odd and the other even; the correlation vanishes")
    string = parity(site_type) if b_factor.odd else None

    ground = _unit(psi0)
    like = ground._first_array()
    phi = _applied(ground, jordan_wigner_pieces([b_factor], [parity(site_type)] * n))
    phi_norm = float(phi.norm())
    if phi_norm == 0.0:
        raise ValueError(f"B: B_{j}|psi0⟩ = 0, so every ⟨A_i(t) B_{j}⟩ vanishes")
    energy = float(complex(expectation(ground, H, normalize=True)).real)
    if eigenstate is None:
        eigenstate = variance(H, ground) <= EIGENSTATE_VARIANCE * max(1.0, energy**2)
    ops = {
        i: backend.from_numpy(np.asarray(f.matrix), like)
        for i, f in zip(sites, a_factors, strict=True)
    }
    string = None if string is None else backend.from_numpy(np.asarray(string), like)
    options = {"method": method, "order": order, "max_bond": max_bond, "rtol": rtol}
    options["expand"] = expand

    if eigenstate:
        row = _Row(ground, ops, string, phi_norm)
        run = tdvp(H, phi, t, dt=dt, observables={"C": row}, **options)
        phases = np.exp(1j * energy * run.times)
        return CorrelationResult(run.times, sites, phases[:, None] * run.values["C"], energy)

    kept = _Kept()
    tdvp(H, ground, t, dt=dt, observables={"kept": kept}, **options)
    row = _Row(kept, ops, string, phi_norm)
    run = tdvp(H, phi, t, dt=dt, observables={"C": row}, **options)
    return CorrelationResult(run.times, sites, np.asarray(run.values["C"]), None)


def mixed_row(bra: MPS, ket: MPS, ops: dict, string: Any = None) -> np.ndarray:
    """⟨bra|S_{<i} op_i|ket⟩ for every site i of ``ops`` ({site: (d, d) array}), in site
    order, by one sweep of mixed transfer matrices from each end; ``string`` (a (d, d)
    array, e.g. the fermion parity) stands on every site left of i (Jordan–Wigner).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> a, b = tn.MPS.random([2] * 4, 2, seed=0), tn.MPS.random([2] * 4, 2, seed=1)
        >>> z = np.diag([1.0, -1.0])
        >>> ref = np.vdot(a.to_dense(), np.einsum("st,atbc->asbc", z, b.to_dense()))
        >>> bool(np.isclose(mixed_row(a, b, {1: z})[0], ref))
        True
    """
    xp = ket.xp
    dtype = xp.result_type(bra.dtype, ket.dtype)
    bra_cores = [xp.astype(c, dtype) for c in _plain(bra)._arrays()]
    ket_cores = [xp.astype(c, dtype) for c in _plain(ket)._arrays()]
    n, first, last = len(ket_cores), min(ops), max(ops)
    right = [None] * (n + 1)
    right[n] = xp.ones((1, 1), dtype=dtype, device=backend.device(ket_cores[0]))
    for k in range(n - 1, first, -1):
        right[k] = env.overlap_right(right[k + 1], bra_cores[k], ket_cores[k])
    left, values = xp.ones((1, 1), dtype=dtype, device=backend.device(ket_cores[0])), []
    for k in range(last + 1):
        if k in ops:
            acted = contract("st,atb->asb", xp.astype(ops[k], dtype), ket_cores[k])
            values.append(xp.sum(env.overlap_left(left, bra_cores[k], acted) * right[k + 1]))
        ket_k = ket_cores[k]
        if string is not None:
            ket_k = contract("st,atb->asb", xp.astype(string, dtype), ket_k)
        left = env.overlap_left(left, bra_cores[k], ket_k)
    return np.asarray([complex(backend.to_numpy(v)) for v in values])


@dataclass
class _Row:
    """The observable ``tdvp`` measures on φ(t): ‖φ₀‖·⟨ψ(t)|A_i|φ(t)⟩ for all i, with ψ(t)
    a fixed state (an eigenstate: the phase is added later) or the kept states in turn."""

    bra: Any
    ops: dict
    string: Any
    scale: float
    calls: int = 0

    def __call__(self, state: MPS) -> np.ndarray:
        bra = self.bra if isinstance(self.bra, MPS) else self.bra.states[self.calls]
        self.calls += 1
        return self.scale * mixed_row(bra, state, self.ops, self.string)


@dataclass
class _Kept:
    """An observable that measures nothing and keeps every state ``tdvp`` shows it."""

    states: list = field(default_factory=list)

    def __call__(self, state: MPS) -> float:
        self.states.append(state)
        return 0.0


def _unit(psi: MPS) -> MPS:
    """``psi/‖psi‖`` with its scale exponent dropped (as ``tdvp`` does)."""
    cores = list(psi.canonicalize(0)._arrays())
    cores[0] = cores[0] / backend.frob_sq(cores[0]) ** 0.5
    return MPS(cores).canonicalize(0)


def _plain(psi: MPS) -> MPS:
    """The same vector with a zero scale exponent (the cores carry the scale)."""
    if not psi.scale_exponent:
        return psi
    cores = list(psi._arrays())
    cores[0] = cores[0] * 2.0**psi.scale_exponent
    return MPS(cores)


def _applied(psi: MPS, pieces: list) -> MPS:
    """``psi`` with a local matrix applied on each site of ``pieces`` ((site, matrix))."""
    xp, cores = psi.xp, list(psi._arrays())
    for k, matrix in pieces:
        op = backend.from_numpy(np.asarray(matrix), cores[k])
        dtype = xp.result_type(op.dtype, cores[k].dtype)
        cores[k] = contract("st,atb->asb", xp.astype(op, dtype), xp.astype(cores[k], dtype))
    dtype = xp.result_type(*(c.dtype for c in cores))
    return MPS([xp.astype(c, dtype) for c in cores])


def _factor(op: Any, site: int, site_type: str | None, dims: tuple, name: str) -> Any:
    try:
        return resolve_op(op, site, site_type, dims)
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc).replace("op:", f"{name}:", 1)) from None


def _check_sites(sites: Any, n: int) -> tuple[int, ...]:
    if isinstance(sites, (str, bytes)) or not isinstance(sites, Sequence) or not sites:
        raise TypeError(f"sites: expected a non-empty sequence of sites, got {sites!r}")
    for i in sites:
        if not is_int(i) or not 0 <= i < n:
            raise ValueError(f"sites: expected sites in 0..{n - 1}, got {i!r}")
    if len(set(sites)) != len(sites):
        raise ValueError(f"sites: repeated sites in {sites!r}")
    return tuple(sorted(int(i) for i in sites))
