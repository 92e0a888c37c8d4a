"""Two-dimensional models on cylinders (issue 17): dense equality with hand-built
Hamiltonians, the lattice's bonds, MPO bond dimensions, DMRG against ED, and bad input."""

from __future__ import annotations

import itertools
from functools import reduce

import numpy as np
import pytest

import tnkit as tn
from tnkit.operators.models import cylinder_bonds

SX = np.array([[0.0, 0.5], [0.5, 0.0]])
SY = np.array([[0.0, -0.5j], [0.5j, 0.0]])
SZ = np.diag([0.5, -0.5])


def site_op(op: np.ndarray, i: int, L: int) -> np.ndarray:
    d = op.shape[0]
    return reduce(np.kron, [op if k == i else np.eye(d) for k in range(L)])


def lattice_bonds(Lx: int, Ly: int) -> set[tuple[int, int]]:
    """Nearest neighbours of the cylinder from coordinates (x open, y periodic)."""
    index = {(x, y): x * Ly + y for x in range(Lx) for y in range(Ly)}
    bonds = set()
    for (x, y), i in index.items():
        for other in ((x + 1, y), (x, (y + 1) % Ly)):
            if other in index and index[other] != i:
                bonds.add(tuple(sorted((i, index[other]))))
    return bonds


def heisenberg_dense(Lx, Ly, J, Jz, h) -> np.ndarray:
    L = Lx * Ly
    H = np.zeros((2**L, 2**L), dtype=complex)
    for i, j in lattice_bonds(Lx, Ly):
        for op, coupling in ((SX, J), (SY, J), (SZ, Jz)):
            H += coupling * site_op(op, i, L) @ site_op(op, j, L)
    for i in range(L):
        H -= h * site_op(SZ, i, L)
    return H.real


def hubbard_dense(Lx, Ly, t, U, mu) -> np.ndarray:
    """Second quantisation on 2L modes (mode 2i = i↑, 2i+1 = i↓, Jordan–Wigner in that
    order), reordered to the electron basis |0⟩, |↑⟩, |↓⟩, |↑↓⟩ of each site."""
    L = Lx * Ly
    lower, string = np.array([[0.0, 1.0], [0.0, 0.0]]), np.diag([1.0, -1.0])
    c = [
        reduce(np.kron, [string] * m + [lower] + [np.eye(2)] * (2 * L - m - 1))
        for m in range(2 * L)
    ]
    n = [mode.T @ mode for mode in c]
    H = 0.0
    for i, j in lattice_bonds(Lx, Ly):
        for s in (0, 1):
            H = H - t * (c[2 * i + s].T @ c[2 * j + s] + c[2 * j + s].T @ c[2 * i + s])
    for i in range(L):
        H = H + U * n[2 * i] @ n[2 * i + 1] - mu * (n[2 * i] + n[2 * i + 1])
    local = [0, 2, 1, 3]  # electron basis index -> (2·n↑ + n↓) of the mode basis
    order = [
        sum(local[k] * 4 ** (L - 1 - p) for p, k in enumerate(ks))
        for ks in itertools.product(range(4), repeat=L)
    ]
    return H[np.ix_(order, order)]


@pytest.mark.parametrize(("Lx", "Ly"), [(3, 2), (2, 3), (2, 4), (4, 1)])
def test_heisenberg_cylinder_equals_the_dense_hamiltonian(Lx, Ly):
    H = tn.models.heisenberg_cylinder(Lx, Ly, J=0.8, Jz=1.3, h=0.4)
    assert np.allclose(H.to_matrix(), heisenberg_dense(Lx, Ly, 0.8, 1.3, 0.4), atol=1e-12)


@pytest.mark.parametrize(("Lx", "Ly"), [(2, 2), (1, 3), (3, 1)])
def test_hubbard_cylinder_equals_the_dense_hamiltonian(Lx, Ly):
    H = tn.models.hubbard_cylinder(Lx, Ly, t=0.7, U=3.0, mu=0.4)
    assert np.allclose(H.to_matrix(), hubbard_dense(Lx, Ly, 0.7, 3.0, 0.4), atol=1e-12)


def test_one_leg_cylinders_are_the_chains():
    chain, leg = (
        tn.models.heisenberg(5, J=0.5, h=0.2),
        tn.models.heisenberg_cylinder(5, 1, 0.5, h=0.2),
    )
    assert np.allclose(chain.to_matrix(), leg.to_matrix())
    assert np.allclose(
        tn.models.hubbard(3, U=2.0).to_matrix(), tn.models.hubbard_cylinder(3, 1, U=2.0).to_matrix()
    )


@pytest.mark.parametrize(("Lx", "Ly"), [(1, 2), (3, 2), (4, 3), (3, 4), (5, 5), (2, 1)])
def test_cylinder_bonds(Lx, Ly):
    bonds = cylinder_bonds(Lx, Ly)
    assert len(bonds) == len(set(bonds)) and all(i < j for i, j in bonds)
    assert set(bonds) == lattice_bonds(Lx, Ly)
    around = Lx * (Ly if Ly > 2 else Ly - 1)
    assert len(bonds) == (Lx - 1) * Ly + around
    assert max(j - i for i, j in bonds) == (Ly if Lx > 1 else Ly - 1)


@pytest.mark.parametrize(("Lx", "Ly"), [(6, 2), (6, 3), (5, 4)])
def test_bond_dimensions(Lx, Ly):
    spins = tn.models.heisenberg_cylinder(Lx, Ly)
    assert max(spins.bond_dims) == 2 + 3 * Ly  # S+, S-, Sz waiting on each of Ly sites
    assert max(tn.models.heisenberg_cylinder(Lx, Ly, h=0.3).bond_dims) == 2 + 3 * Ly
    electrons = tn.models.hubbard_cylinder(Lx, Ly, U=4.0)
    assert max(electrons.bond_dims) == 2 + 4 * Ly  # c†↑, c↑, c†↓, c↓ on each of Ly sites
    assert electrons.out_dims == (4,) * (Lx * Ly)


@pytest.mark.parametrize("method", ["two-site", "one-site"])
def test_dmrg_on_a_3x3_cylinder_matches_exact_diagonalisation(method):
    H = tn.models.heisenberg_cylinder(3, 3)
    exact = float(np.linalg.eigvalsh(H.to_matrix())[0])
    result = tn.dmrg(H, max_bond=32, seed=0, sweeps=20, tol=1e-13, method=method)
    assert result.energy == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: tn.models.heisenberg_cylinder(0, 3), "Lx"),
        (lambda: tn.models.heisenberg_cylinder(3, 0), "Ly"),
        (lambda: tn.models.hubbard_cylinder(1, 1), "Lx, Ly"),
        (lambda: tn.models.heisenberg_cylinder(2.5, 2), "Lx"),
        (lambda: tn.models.hubbard_cylinder(2, 2, t=1j), "t"),
        (lambda: tn.models.heisenberg_cylinder(2, 2, Jz=float("nan")), "Jz"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
