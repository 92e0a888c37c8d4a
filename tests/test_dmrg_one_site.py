"""One-site DMRG with subspace expansion (issue 17): exact diagonalisation, excited states,
agreement with two-site DMRG, bond growth from a product state, and the expansion's pieces."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import complex_chain

import tnkit as tn
from tnkit.algorithms import environments as env
from tnkit.algorithms.expansion import expand, offered, trim


def lowest(H: tn.MPO) -> float:
    return float(np.linalg.eigvalsh(H.to_matrix())[0])


def neel(L: int) -> tn.MPS:
    """The bond-1 Néel product state ↑↓↑↓…"""
    return tn.MPS([np.eye(2)[i % 2].reshape(1, 2, 1) for i in range(L)])


@pytest.mark.parametrize(
    "H",
    [tn.models.heisenberg(10), complex_chain(8), tn.models.hubbard(4, t=1.0, U=4.0, mu=0.5)],
    ids=["spin-half", "complex", "electrons"],
)
def test_exact_diagonalisation_agreement(H):
    result = tn.dmrg(H, max_bond=64, method="one-site", seed=1, sweeps=16, tol=1e-13)
    assert result.energy == pytest.approx(lowest(H), abs=1e-10)
    state = result.state
    assert state.centre == 0 and state.is_canonical(0)
    assert abs(float(tn.inner(state, state).real) - 1.0) < 1e-12
    assert result.variance < 1e-9


def test_two_states_match_two_site_and_eigsh():
    H = tn.models.ising(10, J=1.0, g=1.5)
    one = tn.dmrg(H, max_bond=48, method="one-site", nstates=2, seed=2, sweeps=16, tol=1e-13)
    two = tn.dmrg(H, max_bond=48, nstates=2, seed=2, sweeps=12, tol=1e-13)
    exact = np.sort(scipy.sparse.linalg.eigsh(H.to_matrix(), k=2, which="SA")[0])
    assert np.allclose(one.energies, exact, atol=1e-8, rtol=0)
    assert np.allclose(one.energies, two.energies, atol=1e-8, rtol=0)
    assert abs(complex(tn.inner(one.states[0], one.states[1]))) < 1e-8


@pytest.mark.parametrize(("L", "chi"), [(20, 24), pytest.param(40, 32, marks=pytest.mark.slow)])
def test_converged_energy_equals_two_site_at_equal_bond(L, chi):
    H = tn.models.heisenberg(L)
    one = tn.dmrg(H, max_bond=chi, method="one-site", seed=0, sweeps=40)
    two = tn.dmrg(H, max_bond=chi, seed=0, sweeps=40)
    assert max(one.state.bond_dims) == max(two.state.bond_dims) == chi
    assert one.energy == pytest.approx(two.energy, rel=1e-9)


def test_one_site_sweeps_lower_the_energy_on_a_longer_chain():
    """A regression: a looser Lanczos reorthogonalisation (one pass unless the norm fell
    below 1/100) let the sweeps climb to -17.12 here."""
    H = tn.models.heisenberg(40)
    start = tn.MPS.random([2] * 40, 16, seed=0)
    one = tn.dmrg(H, max_bond=24, init=start, method="one-site", sweeps=20)
    assert one.energy == pytest.approx(-17.5414664, abs=1e-6)
    energies = [record.energy for record in one.sweeps]
    assert all(b <= a + 1e-9 for a, b in zip(energies[1:], energies[2:], strict=False))


def test_expansion_grows_the_bond_from_a_product_state():
    """Without expansion a one-site sweep can never leave bond 1; with it the bond grows
    (each half-sweep by up to d: the cut keeps only what the other side supports) and
    reaches the cap in the second sweep, below the two-site energy from the same start."""
    H = tn.models.heisenberg(16)
    result = tn.dmrg(H, max_bond=16, method="one-site", init=neel(16), sweeps=20)
    assert [record.max_bond for record in result.sweeps[:2]] == [4, 16]
    assert max(result.state.bond_dims) == 16
    two = tn.dmrg(H, max_bond=16, init=neel(16), sweeps=20)
    assert result.energy <= two.energy + 1e-9 * abs(two.energy)
    plain = tn.dmrg(H, max_bond=16, init=neel(16), sweeps=1, method="one-site")
    assert plain.sweeps[0].max_bond == 1  # a single sweep never expands: stuck at bond 1


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("conserve", [None, "Sz"])
def test_short_chains_grow_from_a_product_state(L, conserve):
    """The moves onto the chain's ends do not expand (the bond there could not be cut back
    before the sweep ends), except on two sites, where nothing else could."""
    H = tn.models.heisenberg(L, conserve=conserve)
    start = tn.MPS.product_state(["up", "dn", "up", "dn"][:L], conserve=conserve)
    result = tn.dmrg(H, max_bond=8, method="one-site", init=start, sweeps=10)
    assert result.energy == pytest.approx(lowest(H.to_plain()), abs=1e-12)
    assert max(result.state.bond_dims) == 2 ** (L // 2)


def test_the_result_is_one_site_optimal():
    """The last sweep runs without expansion: one more plain sweep changes nothing."""
    H = tn.models.heisenberg(16, Jz=0.8)
    first = tn.dmrg(H, max_bond=10, method="one-site", seed=3, sweeps=30, tol=1e-13)
    again = tn.dmrg(H, max_bond=10, method="one-site", init=first.state, sweeps=1)
    assert again.sweeps[0].max_discarded == 0.0
    assert again.energy == pytest.approx(first.energy, abs=1e-10)
    assert [r.max_bond for r in again.sweeps] == [max(first.state.bond_dims)]


def test_bond_schedule_and_records():
    seen = []
    result = tn.dmrg(
        tn.models.heisenberg(12),
        max_bond=[2, 4, 8],
        sweeps=4,
        tol=0.0,
        seed=0,
        method="one-site",
        callback=seen.append,
    )
    # the bond grows only while expanding, and the last sweep never expands
    assert [record.max_bond for record in result.sweeps] == [2, 4, 8, 8]
    assert seen == list(result.sweeps)
    assert all(record.matvecs > 0 and record.seconds >= 0 for record in result.sweeps)


def two_site(a, b):
    return np.einsum("asb,btc->astc", a, b)


def flat_isometry(iso, direction):
    """The isometry as a matrix with orthonormal columns (its bond last)."""
    if direction == "right":
        return iso.reshape(-1, iso.shape[2])
    return iso.reshape(iso.shape[0], -1).T


def random_setting(rng, direction, dl=3, d=2, dr=3):
    op = tn.models.heisenberg(4).cores[1]
    centre = rng.standard_normal((dl, d, dr)) + 1j * rng.standard_normal((dl, d, dr))
    centre /= np.linalg.norm(centre)
    near = dl if direction == "right" else dr
    environment = rng.standard_normal((near, op.shape[0 if direction == "right" else 3], near))
    environment = environment + environment.transpose(2, 1, 0)  # Hermitian in the bra/ket
    neighbour = rng.standard_normal((dr, d, 2))
    if direction == "left":
        neighbour = rng.standard_normal((2, d, dl))
    return centre, neighbour, environment, op


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    direction=st.sampled_from(["right", "left"]),
    shape=st.sampled_from([(3, 2, 3), (8, 2, 8), (12, 2, 10), (4, 2, 8)]),
    cap=st.sampled_from([2, 8, 16]),
)
def test_expand_keeps_the_state_and_its_span(seed, direction, shape, cap):
    """Growing: the centre's whole span stays on the bond, the new directions are
    orthonormal to it, and the state is unchanged; plain: at most ``cap`` channels and
    the state kept up to the reported cut."""
    rng = np.random.default_rng(seed)
    centre, neighbour, environment, op = random_setting(rng, direction, *shape)
    dl, d, dr = centre.shape
    before = two_site(centre, neighbour) if direction == "right" else two_site(neighbour, centre)
    for grow in (True, False):
        step = expand(
            centre, neighbour, environment, op, direction=direction, max_bond=cap, grow=grow
        )
        u = flat_isometry(step.isometry, direction)
        assert np.allclose(u.conj().T @ u, np.eye(u.shape[1]), atol=1e-12)
        assert np.linalg.norm(step.centre) == pytest.approx(1.0)
        after = (
            two_site(step.isometry, step.centre)
            if direction == "right"
            else two_site(step.centre, step.isometry)
        )
        overlap = abs(np.vdot(before, after)) / np.linalg.norm(before)
        local, bond = (dl * d, dr) if direction == "right" else (dr * d, dl)
        if grow:
            own = centre.reshape(dl * d, dr) if direction == "right" else centre.reshape(dl, -1).T
            assert np.allclose(u @ (u.conj().T @ own), own, atol=1e-12)  # the span is kept
            assert u.shape[1] == min(local, bond + offered(bond, cap))
            assert step.discarded == 0.0
            assert overlap == pytest.approx(1.0, abs=1e-12)
        else:
            assert u.shape[1] <= cap
            assert 1.0 - overlap**2 <= 10 * step.discarded + 1e-12


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    direction=st.sampled_from(["right", "left"]),
    cap=st.integers(1, 9),
)
def test_trim_cuts_by_the_centres_singular_values(seed, direction, cap):
    """The bond behind the centre keeps its ``cap`` leading singular directions: the core
    behind stays an isometry, and the state loses exactly the reported weight."""
    rng = np.random.default_rng(seed)
    if direction == "right":  # behind: left-canonical (4, 2, 8); centre (8, 2, 3)
        behind = np.linalg.qr(rng.standard_normal((8, 8)) + 1j * rng.standard_normal((8, 8)))[0]
        behind = behind.reshape(4, 2, 8)
        centre = rng.standard_normal((8, 2, 3)) + 1j * rng.standard_normal((8, 2, 3))
    else:  # behind: right-canonical (8, 2, 4); centre (3, 2, 8)
        behind = np.linalg.qr(rng.standard_normal((8, 8)) + 1j * rng.standard_normal((8, 8)))[0]
        behind = behind.T.reshape(8, 2, 4)
        centre = rng.standard_normal((3, 2, 8)) + 1j * rng.standard_normal((3, 2, 8))
    centre /= np.linalg.norm(centre)
    cut = trim(centre, behind, direction=direction, max_bond=cap)
    bond = centre.shape[0] if direction == "right" else centre.shape[2]
    flat = centre.reshape(bond, -1) if direction == "right" else centre.reshape(-1, bond).T
    s = np.linalg.svd(flat, compute_uv=False)
    k = min(cap, int(np.sum(s > 1e-14 * s[0])))
    assert cut.discarded == pytest.approx(float(np.sum(s[k:] ** 2)), abs=1e-12)
    u = flat_isometry(cut.behind, direction)
    assert u.shape[1] == k and np.allclose(u.conj().T @ u, np.eye(k), atol=1e-12)
    before = two_site(behind, centre) if direction == "right" else two_site(centre, behind)
    after = (
        two_site(cut.behind, cut.centre)
        if direction == "right"
        else two_site(cut.centre, cut.behind)
    )
    assert np.linalg.norm(cut.centre) == pytest.approx(1.0)
    overlap = abs(np.vdot(before, after))
    assert overlap**2 == pytest.approx(1.0 - cut.discarded, abs=1e-12)


def test_environment_products_match_einsum():
    rng = np.random.default_rng(7)
    op = tn.models.hubbard(3, U=2.0).cores[1]
    w_left, w_right = op.shape[0], op.shape[3]
    core = rng.standard_normal((3, 4, 5)) + 1j * rng.standard_normal((3, 4, 5))
    left = rng.standard_normal((3, w_left, 3))
    right = rng.standard_normal((5, w_right, 5))
    product = env.left_product(left, op)(core)
    reference = np.einsum("awb,btc,wstv->asvc", left, core, op).reshape(3 * 4, w_right * 5)
    assert np.allclose(product, reference)
    grown = np.einsum("awb,asc,wstv,btd->cvd", left, core.conj(), op, core)
    assert np.allclose(env.grow_left(left, core, op), grown)
    grown = np.einsum("asc,wstv,btd,cvd->awb", core.conj(), op, core, right)
    assert np.allclose(env.grow_right(right, core, op), grown)
    applied = np.einsum("awb,btc,wstv,evc->ase", left, core, op, right)
    assert np.allclose(env.one_site_matvec(left, op, right)(core), applied)


def test_spin_one_edge_states_converge():
    """The spin-1 chain's edge states make the local spectra nearly degenerate; the one-site
    sweeps still reach the two-site energy (they stalled at 8 Lanczos steps per site)."""
    L = 16
    ops = tn.OpSum(L, site="spin-one")
    for i in range(L - 1):
        ops.add(1.0, "Sz", i, "Sz", i + 1).add(0.5, "S+", i, "S-", i + 1)
        ops.add(0.5, "S-", i, "S+", i + 1)
    H = ops.to_mpo()
    one = tn.dmrg(H, max_bond=24, method="one-site", seed=0, sweeps=30)
    two = tn.dmrg(H, max_bond=24, seed=0, sweeps=30)
    assert one.energy <= two.energy + 1e-9 * abs(two.energy)
