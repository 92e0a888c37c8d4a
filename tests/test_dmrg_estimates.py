"""Error estimates of ground-state energies: the two-site variance against a dense oracle and
the full variance, and the extrapolation in the variance reported by ``dmrg``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import complex_chain

import tnkit as tn
from tnkit.algorithms import Extrapolation, extrapolate


def _projector(matrix: np.ndarray) -> np.ndarray:
    """Orthogonal projector onto the column space of ``matrix``."""
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    u = u[:, s > 1e-10 * s[0]]
    return u @ u.conj().T


def _dense_two_site_variance(h: tn.MPO, psi: tn.MPS) -> float:
    """Σ_i ‖[(P_L(i−1) ⊗ 1) − P_L(i)] ⊗ [(1 ⊗ P_R(i+2)) − P_R(i+1)] H v‖² with P_L(k) the
    projector onto the left states of sites 0…k and P_R(k) onto the right states of k…n−1."""
    dims, n = psi.phys_dims, len(psi)
    v = psi.to_dense().ravel()
    v = v / np.linalg.norm(v)
    w = h.to_matrix() @ v

    def size(sites) -> int:
        return int(np.prod([dims[k] for k in sites], dtype=int))

    def left(k: int) -> np.ndarray:  # on sites 0..k
        return np.eye(1) if k < 0 else _projector(v.reshape(size(range(k + 1)), -1))

    def right(k: int) -> np.ndarray:  # on sites k..n-1
        return np.eye(1) if k >= n else _projector(v.reshape(-1, size(range(k, n))).T)

    total = 0.0
    for i in range(n - 1):
        pl = np.kron(left(i - 1), np.eye(dims[i])) - left(i)
        pr = np.kron(np.eye(dims[i + 1]), right(i + 2)) - right(i + 1)
        x = w.reshape(size(range(i + 1)), -1)
        total += np.linalg.norm(pl @ x @ pr.T) ** 2
    return total


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(3, 7),
    bond=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    model=st.sampled_from(["heisenberg", "ising", "complex"]),
)
def test_two_site_variance_equals_the_dense_projection_and_bounds_the_variance(
    n, bond, seed, model
):
    if model == "complex":
        h, dtype = complex_chain(n), np.complex128
    else:
        h, dtype = getattr(tn.models, model)(n), np.float64
    psi = tn.MPS.random([2] * n, bond, seed=seed, dtype=dtype)
    estimate = tn.two_site_variance(h, psi)
    assert estimate == pytest.approx(_dense_two_site_variance(h, psi), rel=1e-9, abs=1e-11)
    assert -1e-12 <= estimate <= tn.variance(h, psi) * (1 + 1e-9) + 1e-12


def test_two_site_variance_of_a_converged_state_is_close_to_the_variance():
    h = tn.models.heisenberg(20)
    for bond in (4, 8, 16):
        r = tn.dmrg(h, max_bond=bond, seed=0)
        assert 0.95 * r.variance <= r.two_site_variance <= r.variance * (1 + 1e-9)
        assert tn.two_site_variance(h, r.state) == pytest.approx(r.two_site_variance, rel=1e-6)


def test_an_eigenstate_has_no_two_site_variance():
    h = tn.models.heisenberg(8)
    r = tn.dmrg(h, max_bond=16, seed=1)  # exact bond
    assert r.two_site_variance < 1e-12 and tn.two_site_variance(h, r.state) < 1e-12


def test_a_bond_schedule_reports_stage_ends_and_an_extrapolation_that_brackets_the_energy():
    h = tn.models.heisenberg(24)
    r = tn.dmrg(h, max_bond=[6, 6, 8, 8, 10, 10, 12, 12], sweeps=8, seed=0)
    ends = [s for s in r.sweeps if s.two_site_variance is not None]
    assert [s.max_bond for s in ends] == [6, 8, 10, 12]
    assert all(s.state_energy is not None for s in ends)
    assert ends[-1].state_energy == pytest.approx(r.energy, abs=1e-10)
    e = r.extrapolation
    assert isinstance(e, Extrapolation) and len(e.points) == 3
    exact = tn.dmrg(h, max_bond=64, seed=0).energy
    assert e.energy < r.energy and abs(e.energy - exact) <= 3 * e.error
    assert abs(e.energy - exact) < abs(r.energy - exact)  # it beats the best state


def test_one_stage_has_no_extrapolation_and_every_state_gets_an_estimate():
    r = tn.dmrg(tn.models.ising(10), max_bond=8, nstates=2, seed=0)
    assert r.extrapolation is None and r.extrapolations == (None, None)
    assert len(r.two_site_variances) == 2 and all(v >= 0 for v in r.two_site_variances)


def test_convergence_does_not_stop_before_a_larger_bond_in_the_schedule():
    r = tn.dmrg(tn.models.heisenberg(16), max_bond=[4, 4, 4, 16], sweeps=4, tol=1e-2, seed=0)
    assert max(s.max_bond for s in r.sweeps) == 16


def test_extrapolate_fits_a_line_through_the_smallest_variances():
    e = extrapolate([(1e-3, -9.99), (4e-3, -9.96), (2e-3, -9.98), (5e-2, -8.0)])
    assert e.energy == pytest.approx(-10.0) and e.slope == pytest.approx(10.0)
    assert e.error == pytest.approx(0.2 * 0.01)
    assert [p[0] for p in e.points] == [1e-3, 2e-3, 4e-3]
    assert extrapolate([(1e-3, -1.0)]) is None
    assert extrapolate([(1e-3, -1.0), (1e-3, -1.1)]) is None


def test_extrapolation_error_grows_with_scatter():
    line = extrapolate([(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])
    noisy = extrapolate([(1.0, 1.0), (2.0, 2.3), (3.0, 3.0)])
    assert noisy.error > line.error


def test_two_site_variance_bad_input():
    h = tn.models.heisenberg(6)
    with pytest.raises(TypeError, match="two_site_variance"):
        tn.two_site_variance(h, h)
    with pytest.raises(ValueError, match="psi"):
        tn.two_site_variance(h, tn.MPS.random([3] * 6, 2, seed=0))
    with pytest.raises(ValueError, match="zero state"):
        tn.two_site_variance(h, 0.0 * tn.MPS.random([2] * 6, 2, seed=0))
