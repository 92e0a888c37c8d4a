"""Model Hamiltonians as MPOs: Heisenberg, Ising and Hubbard chains, Heisenberg and Hubbard
cylinders, long-range couplings.

Each model is an OpSum (or, for exponential couplings, a hand-written automaton) with its
formula and signs in the docstring; nothing here contracts, truncates or measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import MAX_SITES, check_int
from ..mpo import MPO
from ..sites import check_coef, check_site_type, resolve_op
from .opsum import OpSum

__all__ = [
    "cylinder_bonds",
    "heisenberg",
    "heisenberg_cylinder",
    "hubbard",
    "hubbard_cylinder",
    "ising",
    "long_range_exp",
]


def _check_real(value: Any, name: str) -> float:
    number = check_coef(value, name)
    if isinstance(number, complex):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    return float(number)


def _check_length(L: Any) -> int:
    return check_int(L, "L", minimum=2, maximum=MAX_SITES)


def _on_cylinder(build: Any, Lx: Any, Ly: Any, conserve: Any, **couplings: Any) -> MPO:
    """``build(L, bonds, **couplings, conserve=conserve)`` for the checked cylinder and
    real couplings."""
    Lx = check_int(Lx, "Lx", minimum=1, maximum=MAX_SITES)
    Ly = check_int(Ly, "Ly", minimum=1, maximum=MAX_SITES)
    if Lx * Ly < 2 or Lx * Ly > MAX_SITES:
        raise ValueError(f"Lx, Ly: need 2 ≤ Lx·Ly ≤ {MAX_SITES} sites, got {Lx}×{Ly}")
    checked = {name: _check_real(value, name) for name, value in couplings.items()}
    return build(Lx * Ly, cylinder_bonds(Lx, Ly), **checked, conserve=conserve)


def heisenberg(
    L: int, J: float = 1.0, Jz: float = 1.0, h: float = 0.0, *, conserve: Any = None
) -> MPO:
    """Open XXZ chain ``H = Σ_i [J(Sx Sx + Sy Sy) + Jz Sz Sz]_{i,i+1} − h Σ_i Sz_i``.

    Spin-half sites, S = σ/2, basis 0 = ↑; equal to quimb's ``MPO_ham_heis(L, j=(J, J, Jz),
    bz=h, cyclic=False)``. Bond dimension 5 (4 at the end bonds when h = 0). ``conserve``
    (``"Sz"`` or ``"parity"``, as in [OpSum][tnkit.OpSum]) gives the same MPO with every
    channel in one charge sector ([bond_charges][tnkit.operators.charges.bond_charges]).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H = tn.models.heisenberg(6)
        >>> H.bond_dims, round(float(np.linalg.eigvalsh(H.to_matrix())[0]), 6)
        ((4, 5, 5, 5, 4), -2.493577)
    """
    L, J, Jz, h = _check_length(L), _check_real(J, "J"), _check_real(Jz, "Jz"), _check_real(h, "h")
    return _xxz(L, [(i, i + 1) for i in range(L - 1)], J, Jz, h, conserve)


def heisenberg_cylinder(
    Lx: int, Ly: int, J: float = 1.0, Jz: float = 1.0, h: float = 0.0, *, conserve: Any = None
) -> MPO:
    """XXZ model on an ``Lx × Ly`` square-lattice cylinder (open in x, periodic in y),
    ``H = Σ_⟨ij⟩ [J(Sx Sx + Sy Sy) + Jz Sz Sz]_{ij} − h Σ_i Sz_i``.

    Site ``(x, y)`` is number ``x·Ly + y`` (column by column: the usual DMRG order on a
    cylinder, each bond at most ``Ly`` sites long); each nearest-neighbour pair counts once,
    so ``Ly = 2`` has one bond per rung (not two) and ``Ly = 1`` is the open chain. Spin-half
    sites and ``conserve`` as in [heisenberg][tnkit.operators.models.heisenberg]; built by
    OpSum, bond dimension at most ``2 + 3·Ly``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H = tn.models.heisenberg_cylinder(3, 3)
        >>> max(H.bond_dims), round(float(np.linalg.eigvalsh(H.to_matrix())[0]), 6)
        (11, -4.393657)
    """
    return _on_cylinder(_xxz, Lx, Ly, conserve, J=J, Jz=Jz, h=h)


def _xxz(
    L: int, bonds: list[tuple[int, int]], J: float, Jz: float, h: float, conserve: Any = None
) -> MPO:
    ops = OpSum(L, site="spin-half", conserve=conserve)
    for i, j in bonds:
        ops.add(J / 2, "S+", i, "S-", j).add(J / 2, "S-", i, "S+", j)
        ops.add(Jz, "Sz", i, "Sz", j)
    for i in range(L):
        ops.add(-h, "Sz", i)
    return ops.to_mpo()


def ising(L: int, J: float = 1.0, g: float = 1.0, *, conserve: Any = None) -> MPO:
    """Open transverse-field Ising chain ``H = −J Σ_i σz_i σz_{i+1} − g Σ_i σx_i``.

    Pauli matrices (not S = σ/2), basis 0 = ↑. Bond dimension 3. Its symmetry is the
    parity ∏σx, which is not diagonal in this basis: ``conserve`` (``"Sz"`` or
    ``"parity"``, the Z_2 of ∏σz) only holds for ``g = 0``, and is a ValueError otherwise.
    For the Z_2 sectors, build the rotated chain ``−J Σ σx σx − g Σ σz`` (same spectrum)
    with ``OpSum(L, conserve="parity")``; see the symmetries page of the docs.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H = tn.models.ising(4, J=1.0, g=0.5)
        >>> H.bond_dims, round(float(np.linalg.eigvalsh(H.to_matrix())[0]), 6)
        ((3, 3, 3), -3.427034)
    """
    L, J, g = _check_length(L), _check_real(J, "J"), _check_real(g, "g")
    ops = OpSum(L, site="spin-half", conserve=conserve)
    for i in range(L - 1):
        ops.add(-4 * J, "Sz", i, "Sz", i + 1)
    if conserve is not None and g != 0:
        raise ValueError(
            f"conserve: the transverse field g={g} (σx) breaks {conserve!r}; the Ising "
            "chain conserves ∏σx, which is not diagonal in the σz basis: use g=0, or build "
            "−J Σ σx σx − g Σ σz with OpSum(L, conserve='parity')"
        )
    for i in range(L if g else 0):  # g = 0: no field terms (a zero sum either way)
        ops.add(-2 * g, "Sx", i)
    return ops.to_mpo()


def hubbard(
    L: int, t: float = 1.0, U: float = 1.0, mu: float = 0.0, *, conserve: Any = None
) -> MPO:
    """Open Fermi–Hubbard chain
    ``H = −t Σ_{i,σ} (c†_{iσ} c_{i+1,σ} + h.c.) + U Σ_i n_{i↑} n_{i↓} − μ Σ_i n_i``.

    Electron sites, basis |0⟩, |↑⟩, |↓⟩, |↑↓⟩ with ↑ before ↓ in the Jordan–Wigner order.
    Bond dimension 6 when U ≠ 0. ``conserve``: ``"N"``, ``"Sz"``, ``"parity"`` or a tuple
    such as ``("N", "Sz")``, as in [OpSum][tnkit.OpSum] (same MPO, channels in sectors).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H = tn.models.hubbard(3, t=1.0, U=4.0)
        >>> H.bond_dims, H.out_dims
        ((6, 6), (4, 4, 4))
    """
    L, t, U, mu = _check_length(L), _check_real(t, "t"), _check_real(U, "U"), _check_real(mu, "mu")
    return _hubbard(L, [(i, i + 1) for i in range(L - 1)], t, U, mu, conserve)


def hubbard_cylinder(
    Lx: int, Ly: int, t: float = 1.0, U: float = 1.0, mu: float = 0.0, *, conserve: Any = None
) -> MPO:
    """Fermi–Hubbard model on an ``Lx × Ly`` square-lattice cylinder (open in x, periodic
    in y), ``H = −t Σ_{⟨ij⟩,σ} (c†_{iσ} c_{jσ} + h.c.) + U Σ_i n_{i↑} n_{i↓} − μ Σ_i n_i``.

    Sites numbered ``x·Ly + y`` and bonds counted as in
    [heisenberg_cylinder][tnkit.operators.models.heisenberg_cylinder]; the Jordan–Wigner
    order is that numbering (↑ before ↓ on each site), and OpSum puts the strings on the
    sites between the two ends of each hop. Bond dimension at most ``2 + 4·Ly``.
    ``conserve`` as in [hubbard][tnkit.operators.models.hubbard].

    Example:
        >>> import tnkit as tn
        >>> H = tn.models.hubbard_cylinder(2, 2, U=4.0)
        >>> H.bond_dims, H.out_dims
        ((6, 10, 6), (4, 4, 4, 4))
    """
    return _on_cylinder(_hubbard, Lx, Ly, conserve, t=t, U=U, mu=mu)


def _hubbard(
    L: int, bonds: list[tuple[int, int]], t: float, U: float, mu: float, conserve: Any = None
) -> MPO:
    ops = OpSum(L, site="electron", conserve=conserve)
    for i, j in bonds:
        for spin in ("up", "dn"):
            ops.add(-t, f"Cdag{spin}", i, f"C{spin}", j)
            ops.add(-t, f"Cdag{spin}", j, f"C{spin}", i)
    for i in range(L):
        ops.add(U, "NupNdn", i).add(-mu, "N", i)
    return ops.to_mpo()


def cylinder_bonds(Lx: int, Ly: int) -> list[tuple[int, int]]:
    """Nearest-neighbour pairs ``(i, j)``, ``i < j``, of an ``Lx × Ly`` cylinder with site
    ``(x, y)`` numbered ``x·Ly + y``: along x (open), then around y (periodic; for ``Ly = 2``
    the two ways round are one bond, for ``Ly = 1`` there is none).

    Example:
        >>> cylinder_bonds(2, 3)
        [(0, 3), (1, 4), (2, 5), (0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]
    """
    along = [(x * Ly + y, (x + 1) * Ly + y) for x in range(Lx - 1) for y in range(Ly)]
    around = []
    for x in range(Lx):
        around += [(x * Ly + y, x * Ly + y + 1) for y in range(Ly - 1)]
        if Ly > 2:  # the bond that closes the column
            around.append((x * Ly, x * Ly + Ly - 1))
    return along + around


def long_range_exp(
    L: int,
    terms: Sequence[tuple[Any, Any]],
    op1: Any = "Sz",
    op2: Any = "Sz",
    *,
    site: str | Sequence[int] = "spin-half",
) -> MPO:
    """``H = Σ_{i<j} (Σ_k c_k λ_k^{j−i}) op1_i op2_j`` from ``terms = [(c_k, λ_k), ...]``.

    Built directly as an automaton, without the L(L−1)/2 strings that [OpSum][tnkit.OpSum]
    would need (its rank reduction reaches the same bonds): a "nothing placed yet" channel,
    one channel per exponential that multiplies by λ_k at every site it crosses, and a
    "finished" channel. Bond dimension 2 + K inside, K + 1 at the end bonds (K when L = 2).
    ``op1``/``op2`` are names or arrays as in [OpSum.add][tnkit.OpSum.add]; two fermion-odd
    operators (e.g. ``"Cdag"``, ``"C"``) get the Jordan–Wigner string F between them (op1·F
    on site i, F in between, op2 on site j), as OpSum would.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H = tn.models.long_range_exp(6, [(1.0, 0.5), (-2.0, 0.25)])
        >>> H.bond_dims
        (3, 4, 4, 4, 3)
    """
    L = _check_length(L)
    site_type, dims = check_site_type(site, L)
    if len(set(dims)) != 1:
        raise ValueError(f"site: long_range_exp needs equal local dims, got {list(dims)}")
    coefs, decays = _check_exponentials(terms)
    first, second = resolve_op(op1, 0, site_type, dims), resolve_op(op2, 0, site_type, dims)
    if first.odd != second.odd:
        raise ValueError("op2: op1 and op2 must both be fermion-odd or both even")
    string = resolve_op("F", 0, site_type, dims).matrix if first.odd else np.eye(dims[0])
    bulk = _exponential_bulk(coefs, decays, first.matrix @ string, second.matrix, string)
    K = len(coefs)
    # channels 0 = nothing placed yet, 1..K = decaying, K+1 = finished; a cut keeps "nothing
    # placed" only if a term can still start and end right of it, "finished" only if one fits left
    kept = [[0]] + [
        [c for c in range(K + 2) if (c != 0 or k < L - 2) and (c != K + 1 or k > 0)]
        for k in range(L - 1)
    ]
    kept.append([K + 1])
    cores = [bulk[np.ix_(kept[k], range(dims[0]), range(dims[0]), kept[k + 1])] for k in range(L)]
    return MPO(cores)


def _check_exponentials(terms: Any) -> tuple[list, list]:
    try:
        pairs = [tuple(pair) for pair in terms]
    except TypeError as exc:
        raise TypeError(f"terms: expected a list of (coef, decay) pairs, got {terms!r}") from exc
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"terms: expected a non-empty list of (coef, decay) pairs, got {terms!r}")
    coefs = [check_coef(c, "terms") for c, _ in pairs]
    decays = [check_coef(lam, "terms") for _, lam in pairs]
    if 0 in coefs or 0 in decays:
        raise ValueError(f"terms: coefficients and decays must be nonzero, got {terms!r}")
    return coefs, decays


def _exponential_bulk(coefs, decays, start, finish, string) -> np.ndarray:
    """The (K+2, d, d, K+2) bulk tensor of the exponential automaton."""
    K, d = len(coefs), start.shape[0]
    complex_ = any(isinstance(x, complex) for x in (*coefs, *decays))
    dtype = np.result_type(start, finish, string, complex if complex_ else float)
    bulk = np.zeros((K + 2, d, d, K + 2), dtype=dtype)
    bulk[0, :, :, 0] = bulk[K + 1, :, :, K + 1] = np.eye(d)
    for k, (coef, decay) in enumerate(zip(coefs, decays, strict=True), start=1):
        bulk[0, :, :, k] = coef * decay * start
        bulk[k, :, :, k] = decay * string
        bulk[k, :, :, K + 1] = finish
    return bulk
