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
from tnkit.algorithms.expansion import MixingFactor, RecordingOperator, expand
from tnkit.algorithms.krylov import lowest_eigenpair


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
    """Without expansion a one-site sweep can never leave bond 1; with it the bond grows to
    the cap in the first sweep. (From the Néel state, which breaks the SU(2) symmetry of H,
    one-site sweeps leave the multiplets slightly split and stop ~2e-7 above two-site.)"""
    H = tn.models.heisenberg(16)
    result = tn.dmrg(H, max_bond=16, method="one-site", init=neel(16), sweeps=20)
    assert result.sweeps[0].max_bond == 16
    assert max(result.state.bond_dims) == 16
    two = tn.dmrg(H, max_bond=16, init=neel(16), sweeps=20)
    assert result.energy == pytest.approx(two.energy, rel=1e-6)
    plain = tn.dmrg(H, max_bond=16, init=neel(16), sweeps=1, method="one-site")
    assert plain.sweeps[0].max_bond == 1  # a single sweep never expands: stuck at bond 1


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


def test_mixing_factor_rule():
    start = MixingFactor(1e-3)
    assert start.adapted(truncated=0.0) == start  # nothing optimised yet: unchanged
    gained = start.optimised(before=-1.0, after=-2.0)
    assert gained.adapted(truncated=-1.0).alpha == pytest.approx(1e-3 / 1.2)  # gave it back
    assert gained.adapted(truncated=-1.9).alpha == pytest.approx(1e-3)  # 10 %: keep
    assert gained.adapted(truncated=-2.0).alpha == pytest.approx(1.2e-3)  # free: grow
    converged = start.optimised(before=-2.0, after=-2.0)
    assert converged.adapted(truncated=-2.0).alpha < 1e-3  # no gain: decay
    alpha = MixingFactor(1e-3)
    for _ in range(200):
        alpha = alpha.optimised(before=-2.0, after=-2.0).adapted(truncated=-2.0)
    assert alpha.alpha == pytest.approx(1e-9)  # the floor
    assert MixingFactor(0.0).optimised(before=0.0, after=-1.0).adapted(truncated=-1.0).alpha == 0


def two_site(a, b):
    return np.einsum("asb,btc->astc", a, b)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), direction=st.sampled_from(["right", "left"]))
def test_expand_keeps_the_state_up_to_the_cut(seed, direction):
    rng = np.random.default_rng(seed)
    H = tn.models.heisenberg(4)
    op = H.cores[1]
    centre = rng.standard_normal((3, 2, 3)) + 1j * rng.standard_normal((3, 2, 3))
    centre /= np.linalg.norm(centre)
    neighbour = rng.standard_normal((3, 2, 2))
    environment = rng.standard_normal((3, op.shape[0 if direction == "right" else 3], 3))
    environment = environment + environment.transpose(2, 1, 0)  # Hermitian in the bra/ket
    if direction == "left":
        neighbour = neighbour.transpose(2, 1, 0)
    for alpha, cap in [(0.0, 8), (1e-2, 8), (1e-2, 2)]:
        step = expand(
            centre, neighbour, environment, op, alpha=alpha, direction=direction, max_bond=cap
        )
        iso = step.isometry
        flat = (
            iso.reshape(-1, iso.shape[2])
            if direction == "right"
            else iso.reshape(iso.shape[0], -1).T
        )
        assert np.allclose(flat.conj().T @ flat, np.eye(flat.shape[1]), atol=1e-12)
        assert min(iso.shape[0], iso.shape[2]) <= cap
        assert np.linalg.norm(step.centre) == pytest.approx(1.0)
        before = (
            two_site(centre, neighbour) if direction == "right" else two_site(neighbour, centre)
        )
        after = two_site(iso, step.centre) if direction == "right" else two_site(step.centre, iso)
        before, after = before / np.linalg.norm(before), after / np.linalg.norm(after)
        overlap = abs(np.vdot(before, after))
        if cap == 8:  # the whole local space fits: nothing is lost
            assert overlap == pytest.approx(1.0, abs=1e-10)
            assert step.discarded < 1e-12
        else:
            assert 1.0 - overlap**2 <= 10 * step.discarded + 1e-10


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


@pytest.mark.parametrize("direction", ["right", "left"])
def test_recording_operator_reuses_its_products_for_the_perturbation(direction):
    """The operator equals the one-site matvec, and the expansion's perturbation of the
    Lanczos result, combined from the kept half products, equals the direct contraction."""
    rng = np.random.default_rng(3)
    op = tn.models.hubbard(3, U=2.0).cores[1]
    left = rng.standard_normal((5, op.shape[0], 5)) + 1j * rng.standard_normal((5, op.shape[0], 5))
    left = left + left.conj().transpose(2, 1, 0)
    right = rng.standard_normal((6, op.shape[3], 6)) + 1j * rng.standard_normal((6, op.shape[3], 6))
    right = right + right.conj().transpose(2, 1, 0)
    core = rng.standard_normal((5, 4, 6)) + 1j * rng.standard_normal((5, 4, 6))
    core /= np.linalg.norm(core)
    if direction == "right":
        near, side, far, direct = left, op, right, env.left_product(left, op)
    else:
        near, side, far = right, env.mirror_op(op), left
        direct = lambda x: env.left_product(right, side)(env.mirror(x))  # noqa: E731
    plain = env.one_site_matvec(left, op, right)
    first = RecordingOperator(near, side, far, mirrored=direction == "left", start=core)
    assert np.allclose(first(core), plain(core))  # the start's product, handed back
    assert np.allclose(first(2 * core), 2 * plain(core))
    assert first.energy == pytest.approx(np.vdot(core, plain(core)).real)
    recording = RecordingOperator(near, side, far, mirrored=direction == "left", start=core)
    pair = lowest_eigenpair(recording, core, tol=1e-12, max_iter=12)
    reference = lowest_eigenpair(plain, core, tol=1e-12, max_iter=12)
    assert pair.value == pytest.approx(reference.value, abs=1e-10)
    assert recording.applied == pair.matvecs  # the start's product was formed only once
    assert np.allclose(recording.perturbation(pair.vector), direct(pair.vector), atol=1e-12)
    other = rng.standard_normal(core.shape)  # outside the Krylov space: formed directly
    assert np.allclose(recording.perturbation(other), direct(other))


def test_expansion_with_a_given_perturbation_equals_the_formed_one():
    """At a full bond the expansion offers a sketch of P outside the centre's span: the
    result is an isometry, deterministic, and keeps the state up to the reported cut."""
    rng = np.random.default_rng(5)
    op = tn.models.heisenberg(6).cores[2]
    left = rng.standard_normal((16, op.shape[0], 16))
    left = left + left.transpose(2, 1, 0)
    centre = rng.standard_normal((16, 2, 16))
    centre /= np.linalg.norm(centre)
    neighbour = rng.standard_normal((16, 2, 8))
    perturbation = env.left_product(left, op)(centre)
    steps = [
        expand(centre, neighbour, left, op, alpha=0.05, direction="right", max_bond=16, **extra)
        for extra in ({}, {"perturbation": perturbation})
    ]
    assert np.allclose(steps[0].isometry, steps[1].isometry)
    flat = steps[0].isometry.reshape(32, -1)
    assert flat.shape[1] == 16 and np.allclose(flat.T @ flat, np.eye(16), atol=1e-12)
    before = two_site(centre, neighbour)
    after = two_site(steps[0].isometry, steps[0].centre)
    overlap = abs(np.vdot(before, after)) / np.linalg.norm(before)
    assert 1.0 - overlap**2 <= 10 * steps[0].discarded + 1e-12


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
