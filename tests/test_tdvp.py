"""TDVP of states (issue 18): against exact evolution, the order of the integrators,
conservation by one-site steps, imaginary time to the DMRG ground state, the Lanczos
exponential against scipy, torch, observables, checkpoints, and bad input."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import complex_chain, stopped_and_resumed

import tnkit as tn
from tnkit.algorithms import TDVPResult
from tnkit.algorithms.krylov import expm_krylov
from tnkit.algorithms.tdvp_steps import COMPOSITIONS, bonds_saturated

SZ = np.diag([0.5, -0.5])


def neel(L: int) -> tn.MPS:
    return tn.MPS([np.eye(2)[k % 2].reshape(1, 2, 1) for k in range(L)])


def exact(H: tn.MPO, psi: tn.MPS, t: float) -> np.ndarray:
    v = psi.to_dense().ravel().astype(complex)
    return scipy.sparse.linalg.expm_multiply(-1j * t * H.to_matrix(), v / np.linalg.norm(v))


def infidelity(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.ravel(), y.ravel()
    return 1 - abs(np.vdot(x, y)) ** 2 / (np.vdot(x, x).real * np.vdot(y, y).real)


# ---------------------------------------------------------------------- against exact


def test_neel_quench_at_exact_bond_matches_exact_evolution():
    L = 10
    H = tn.models.heisenberg(L)
    result = tn.tdvp(H, neel(L), 2.0, dt=0.1)
    assert infidelity(result.state.to_dense(), exact(H, neel(L), 2.0)) < 1e-8
    assert result.times[-1] == 2.0 and len(result.steps) == 20
    assert result.steps[0].method == "two-site" and result.steps[-1].method == "one-site"
    assert max(result.state.bond_dims) == 2 ** (L // 2)


def test_complex_hamiltonian_and_real_state_match_exact_evolution():
    H = complex_chain(6)
    psi = tn.MPS.random([2] * 6, 2, seed=3)
    result = tn.tdvp(H, psi, 1.0, dt=0.05)
    assert result.state.dtype == np.complex128
    assert infidelity(result.state.to_dense(), exact(H, psi, 1.0)) < 1e-9


def test_order_four_is_more_accurate_than_order_two():
    L = 8
    H = tn.models.heisenberg(L)
    reference = exact(H, neel(L), 1.0)
    errors = [
        infidelity(tn.tdvp(H, neel(L), 1.0, dt=0.2, order=k).state.to_dense(), reference)
        for k in (2, 4)
    ]
    assert errors[1] < errors[0] / 10


@pytest.fixture(scope="module")
def fixed_bond_problem():
    """A state on a bond below the exact one, and the converged one-site TDVP solution."""
    H, psi = tn.models.heisenberg(8), tn.MPS.random([2] * 8, 4, seed=1)
    reference = tn.tdvp(H, psi, 0.5, dt=0.025, order=4, method="one-site").state.to_dense()
    return H, psi, reference


@pytest.mark.parametrize(("order", "dts"), [(2, [0.2, 0.1, 0.05]), (4, [0.25, 0.2, 0.125])])
def test_time_step_error_scales_with_the_order(fixed_bond_problem, order, dts):
    """The integrator's error against the converged solution of the same (one-site, fixed
    bond) TDVP equations. Against exact evolution the error is the projection's (a floor) or,
    at exact bond, none once the bond saturates (the splitting's exactness property): the
    dt-scaling shows on a bond below the exact one."""
    H, psi, reference = fixed_bond_problem
    errors = [
        np.linalg.norm(
            tn.tdvp(H, psi, 0.5, dt=dt, order=order, method="one-site").state.to_dense() - reference
        )
        for dt in dts
    ]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.1 * order


def test_fourth_order_composition_is_symmetric_and_consistent():
    weights = COMPOSITIONS[4]
    assert sum(weights) == pytest.approx(1.0, abs=1e-15)
    assert weights == tuple(reversed(weights))
    assert sum(w**3 for w in weights) == pytest.approx(0.0, abs=1e-14)


# ---------------------------------------------------------------------- conservation


def conservation(L: int, t: float) -> None:
    H = tn.models.heisenberg(L)
    grown = tn.tdvp(H, neel(L), 0.5, dt=0.1, max_bond=8).state
    result = tn.tdvp(H, grown, t, dt=0.1, method="one-site", observables=["energy", "norm"])
    energy, norm = result.values["energy"], result.values["norm"]
    assert np.max(np.abs(norm - 1)) < 1e-10
    assert np.max(np.abs(energy - energy[0])) < 1e-10
    assert result.state.bond_dims == grown.bond_dims
    assert all(record.method == "one-site" for record in result.steps)


def test_one_site_conserves_norm_and_energy():
    conservation(16, 1.0)


@pytest.mark.slow
def test_one_site_conserves_norm_and_energy_long():
    conservation(40, 5.0)


def test_imaginary_time_reaches_the_dmrg_ground_energy():
    H = tn.models.heisenberg(10)
    ground = tn.dmrg(H, max_bond=32, seed=0).energy
    result = tn.tdvp(H, neel(10), 40.0, dt=1.0, imaginary=True, max_bond=32,
                     observables=["energy", "norm"])  # fmt: skip
    assert result.values["energy"][-1] == pytest.approx(ground, abs=1e-10)
    assert np.all(np.diff(result.values["energy"]) < 1e-10)  # imaginary time only cools
    assert np.allclose(result.values["norm"], 1.0, atol=1e-12)
    assert result.state.dtype == np.float64


def test_two_site_bond_stops_at_max_bond_and_switches():
    L = 12
    result = tn.tdvp(tn.models.heisenberg(L), neel(L), 1.0, dt=0.1, max_bond=6)
    assert max(result.state.bond_dims) == 6
    assert bonds_saturated(result.state.bond_dims, result.state.phys_dims, 6)
    assert result.steps[-1].method == "one-site"
    assert max(r.max_discarded for r in result.steps) > 0


# ---------------------------------------------------------------------- the exponential


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30),
    complex_matrix=st.booleans(),
    imaginary=st.booleans(),
    size=st.floats(0.01, 3.0),
    seed=st.integers(0, 2**16),
)
def test_expm_krylov_matches_scipy(n, complex_matrix, imaginary, size, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    if complex_matrix:
        a = a + 1j * rng.standard_normal((n, n))
    a = (a + a.conj().T) / 2
    v = rng.standard_normal(n)
    t = -size if imaginary else -1j * size
    result = expm_krylov(lambda x: a @ x, v, t)
    expected = scipy.linalg.expm(t * a) @ v
    scale = np.linalg.norm(expected)
    assert np.linalg.norm(result.vector - expected) <= 1e-10 * max(scale, 1.0)
    assert result.error <= 1e-11 * max(np.linalg.norm(v), scale)
    if not imaginary:
        assert np.iscomplexobj(result.vector)
    assert result.matvecs >= 1


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(8, 60),
    shift=st.floats(-10.0, 10.0),
    width=st.floats(0.1, 5.0),
    imaginary=st.booleans(),
    size=st.floats(0.005, 1.0),
    tol=st.sampled_from([1e-4, 1e-7, 1e-10]),
    seed=st.integers(0, 2**16),
)
def test_expm_krylov_error_estimate_follows_the_error(n, shift, width, imaginary, size, tol, seed):
    """The reported error is never below the actual one (to 10 %), on spectra of any
    width and centre (the estimate is shifted to the centre of the Ritz values), and the
    actual error stays within the tolerance."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    a = width * (a + a.T) / (2 * np.sqrt(n)) + shift * np.eye(n)
    v = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    t = -size if imaginary else -1j * size
    result = expm_krylov(lambda x: a @ x, v, t, tol=tol)
    expected = scipy.linalg.expm(t * a) @ v
    actual = np.linalg.norm(result.vector - expected)
    floor = 1e-12 * max(np.linalg.norm(expected), np.linalg.norm(v))  # rounding
    assert actual <= 1.1 * result.error + floor
    assert actual <= 1.5 * tol * max(np.linalg.norm(expected), np.linalg.norm(v)) + floor


def test_expm_krylov_of_zero_and_with_few_vectors():
    a = np.diag(np.linspace(-5, 5, 60))
    v = np.ones(60)
    assert expm_krylov(lambda x: a @ x, 0 * v, -1j).matvecs == 0
    result = expm_krylov(lambda x: a @ x, v, -2j, max_iter=10)  # restarts on sub-steps
    assert np.allclose(result.vector, np.exp(-2j * np.diag(a)) * v, atol=1e-11)
    assert result.matvecs > 10 and result.error < 1e-11


def test_expm_krylov_on_torch():
    torch = pytest.importorskip("torch")
    a = torch.diag(torch.arange(4.0, dtype=torch.float64)).to(torch.complex128)
    result = expm_krylov(lambda x: a @ x, torch.ones(4, dtype=torch.float64), -0.5j)
    assert isinstance(result.vector, torch.Tensor) and result.vector.dtype == torch.complex128
    assert np.allclose(result.vector.numpy(), np.exp(-0.5j * np.arange(4.0)))


# ---------------------------------------------------------------------- the run


def test_torch_states_evolve_on_torch():
    torch = pytest.importorskip("torch")
    H = tn.models.heisenberg(4)
    Ht = tn.MPO([torch.from_numpy(np.array(c)) for c in H.cores])
    psi = neel(4)
    psit = tn.MPS([torch.from_numpy(np.array(c)) for c in psi.cores])
    result = tn.tdvp(Ht, psit, 0.3, dt=0.1, observables=["energy"])
    assert isinstance(result.state.cores[0], torch.Tensor)
    reference = tn.tdvp(H, psi, 0.3, dt=0.1).state.to_dense()
    assert np.allclose(result.state.to_dense().numpy(), reference, atol=1e-10)


def test_observables_are_recorded_at_every_time():
    L = 6
    H = tn.models.heisenberg(L)
    seen = []

    def sz(state):
        return [tn.local_expectation(state, SZ, i, normalize=True) for i in range(L)]

    observables = {"Sz": sz, "E": "energy", "S": "entropy", "n": "norm"}
    result = tn.tdvp(H, neel(L), 0.35, dt=0.1, callback=seen.append, observables=observables)
    assert isinstance(result, TDVPResult)
    assert np.allclose(result.times, [0.0, 0.1, 0.2, 0.3, 0.35])
    assert result.values["Sz"].shape == (5, L) and result.values["S"].shape == (5, L - 1)
    assert np.allclose(result.values["Sz"][0].real, [0.5, -0.5] * 3)
    for k, time in enumerate(result.times):
        x = exact(H, neel(L), time).reshape([2] * L)
        expected = np.vdot(x, np.moveaxis(np.tensordot(SZ, x, axes=(1, 2)), 0, 2)).real
        assert result.values["Sz"][k][2].real == pytest.approx(expected, abs=1e-5)
    assert np.allclose(result.values["E"], result.values["E"][0], atol=1e-8)
    assert seen == list(result.steps) and [r.step for r in seen] == [0, 1, 2, 3]
    assert result.steps[-1].time == 0.35 and all(r.krylov_error < 1e-10 for r in seen)


def test_input_is_not_modified_and_its_scale_is_dropped():
    psi = 3.0 * tn.MPS.random([2] * 5, 2, seed=0)
    before = [np.array(c) for c in psi.cores]
    result = tn.tdvp(tn.models.heisenberg(5), psi, 0.2, dt=0.1, observables=["norm"])
    assert all(np.array_equal(a, b) for a, b in zip(before, psi.cores, strict=True))
    assert np.allclose(result.values["norm"], 1.0)


def test_no_steps_for_zero_time():
    result = tn.tdvp(tn.models.heisenberg(4), neel(4), 0.0, dt=0.1, observables=["energy"])
    assert result.steps == () and result.times.tolist() == [0.0]


def test_a_stopped_run_resumes_to_the_same_result(tmp_path):
    path = tmp_path / "run.safetensors"
    H = tn.models.heisenberg(8)
    options = dict(dt=0.1, max_bond=8, observables=["energy", "entropy"])
    run = functools.partial(tn.tdvp, H, neel(8), 0.6)
    resumed, straight = stopped_and_resumed(run, path, 2, **options)
    assert np.allclose(resumed.state.to_dense(), straight.state.to_dense(), atol=1e-12)
    assert resumed.times.tolist() == straight.times.tolist()
    for name in straight.values:
        assert np.allclose(resumed.values[name], straight.values[name], atol=1e-12)
    assert [r.step for r in resumed.steps] == list(range(6))
    with pytest.raises(ValueError, match="resume"):
        tn.tdvp(H, neel(8), 0.6, resume=path, **{**options, "max_bond": 4})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dt": -0.1}, ValueError, "dt"),
        ({"dt": 0}, ValueError, "dt"),
        ({"dt": 0.1j}, TypeError, "imaginary=True"),
        ({"dt": "0.1"}, TypeError, "dt"),
        ({"t": -1.0}, ValueError, "t"),
        ({"H": tn.MPO.random([2] * 4, [2] * 4, 2, seed=0)}, ValueError, "Hermitian"),
        ({"H": tn.models.heisenberg(5)}, ValueError, "psi"),
        ({"psi": tn.MPS.random([3] * 4, 2, seed=0)}, ValueError, "psi"),
        ({"psi": np.ones(16)}, TypeError, "psi"),
        ({"method": "three-site"}, ValueError, "method"),
        ({"order": 3}, ValueError, "order"),
        ({"max_bond": 0}, ValueError, "max_bond"),
        ({"rtol": -1.0}, ValueError, "rtol"),
        ({"imaginary": 1}, TypeError, "imaginary"),
        ({"observables": ["Sz"]}, ValueError, "observables"),
        ({"observables": "energy"}, TypeError, "observables"),
    ],
)
def test_bad_input(kwargs, error, match):
    request = {"H": tn.models.heisenberg(4), "psi": neel(4), "t": 0.1, "dt": 0.05, **kwargs}
    H, psi, t = request.pop("H"), request.pop("psi"), request.pop("t")
    with pytest.raises(error, match=match):
        tn.tdvp(H, psi, t, **request)


def test_mixed_libraries_are_refused():
    torch = pytest.importorskip("torch")
    psit = tn.MPS([torch.from_numpy(np.array(c)) for c in neel(4).cores])
    with pytest.raises(TypeError, match="psi"):
        tn.tdvp(tn.models.heisenberg(4), psit, 0.1, dt=0.05)


def test_a_scaled_hamiltonian_is_a_scaled_time():
    H, psi = tn.models.heisenberg(6), tn.MPS.random([2] * 6, 2, seed=0)
    fast = tn.tdvp(2.0 * H, psi, 0.5, dt=0.05).state.to_dense()
    assert np.allclose(fast, tn.tdvp(H, psi, 1.0, dt=0.1).state.to_dense(), atol=1e-12)
