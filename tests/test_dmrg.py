"""DMRG (issue 17): exact diagonalisation agreement, excited states, variance, monotone
sweeps, the critical Ising chain against free fermions, bad input, and peers (slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import complex_chain

import tnkit as tn


def lowest(H: tn.MPO, k: int = 1) -> np.ndarray:
    return np.linalg.eigvalsh(H.to_matrix())[:k]


def heisenberg_on(site: str, L: int) -> tn.MPO:
    ops = tn.OpSum(L, site=site)
    for i in range(L - 1):
        ops.add(0.5, "S+", i, "S-", i + 1).add(0.5, "S-", i, "S+", i + 1).add(
            1.0, "Sz", i, "Sz", i + 1
        )
    return ops.to_mpo()


@pytest.mark.parametrize(
    "H",
    [
        tn.models.heisenberg(10),
        heisenberg_on("spin-one", 6),
        tn.models.hubbard(4, t=1.0, U=4.0, mu=0.5),
        complex_chain(8),
    ],
    ids=["spin-half", "spin-one", "electrons", "complex"],
)
def test_exact_diagonalisation_agreement(H):
    result = tn.dmrg(H, max_bond=64, seed=1, sweeps=12, tol=1e-13)
    assert result.energy == pytest.approx(float(lowest(H)[0]), abs=1e-10)
    state = result.state
    assert state.centre == 0 and state.is_canonical(0)
    assert abs(float(tn.inner(state, state).real) - 1.0) < 1e-12
    assert result.variance < 1e-9
    assert all(record.matvecs > 0 and record.seconds >= 0 for record in result.sweeps)


def test_excited_states_are_ordered_orthogonal_and_exact():
    H = tn.models.ising(10, J=1.0, g=1.5)  # gapped paramagnet
    result = tn.dmrg(H, max_bond=48, nstates=3, seed=2, sweeps=12, tol=1e-13)
    W = scipy.sparse.csr_matrix(H.to_matrix())
    exact = np.sort(scipy.sparse.linalg.eigsh(W, k=3, which="SA")[0])
    assert np.allclose(result.energies, exact, atol=1e-8, rtol=0)
    assert list(result.energies) == sorted(result.energies)
    for i, a in enumerate(result.states):
        for j, b in enumerate(result.states):
            expected = 1.0 if i == j else 0.0
            assert abs(complex(tn.inner(a, b)) - expected) < 1e-8
    for energy, state in zip(result.energies, result.states, strict=True):
        assert energy == pytest.approx(float(tn.expectation(state, H, normalize=True).real))


@pytest.mark.parametrize("L", [40, pytest.param(100, marks=pytest.mark.slow)])
def test_critical_ising_matches_free_fermions(L):
    result = tn.dmrg(tn.models.ising(L, J=1.0, g=1.0), max_bond=[16, 32, 64], sweeps=8, seed=0)
    assert result.energy == pytest.approx(free_fermion_ising(L), rel=1e-8)


def free_fermion_ising(L: int) -> float:
    """Ground energy of H = −Σ σzσz − Σ σx (open) from the BdG matrix of its Jordan–Wigner
    fermions; checked against the closed form 1 − 1/sin(π/(2(2L+1)))."""
    a = (
        np.diag(np.full(L, -2.0))
        + np.diag(np.full(L - 1, 1.0), 1)
        + np.diag(np.full(L - 1, 1.0), -1)
    )
    b = np.diag(np.full(L - 1, 1.0), 1) - np.diag(np.full(L - 1, 1.0), -1)
    bdg = np.block([[a, b], [-b, -a]])
    energies = np.linalg.eigvalsh(bdg)
    value = -0.5 * float(np.sum(energies[energies > 0]))
    assert value == pytest.approx(1 - 1 / math.sin(math.pi / (2 * (2 * L + 1))), rel=1e-12)
    return value


def test_variance_matches_the_dense_value():
    H = tn.models.heisenberg(6, Jz=0.7, h=0.3)
    psi = tn.MPS.random([2] * 6, 3, seed=5)
    v = psi.to_dense().ravel()
    v = v / np.linalg.norm(v)
    W = H.to_matrix()
    assert tn.variance(H, psi) == pytest.approx(v @ W @ W @ v - (v @ W @ v) ** 2, abs=1e-12)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10**6), L=st.integers(3, 6))
def test_untruncated_two_site_sweeps_never_raise_the_energy(seed, L):
    o = tn.MPO.random([2] * L, [2] * L, 3, seed=seed)
    H = o + o.H
    result = tn.dmrg(H, max_bond=64, sweeps=4, tol=0.0, seed=seed)
    energies = [record.energy for record in result.sweeps]
    assert all(
        b <= a + 1e-10 * max(1.0, abs(a)) for a, b in zip(energies, energies[1:], strict=False)
    )
    assert result.energy == pytest.approx(float(lowest(H)[0]), abs=1e-9)


def test_bond_schedule_and_callback():
    seen = []
    result = tn.dmrg(
        tn.models.heisenberg(12),
        max_bond=[2, 4, 8],
        sweeps=3,
        tol=0.0,
        seed=0,
        callback=seen.append,
    )
    assert [record.max_bond for record in result.sweeps] == [2, 4, 8]
    assert seen == list(result.sweeps)
    assert result.sweeps[0].max_discarded > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"H": tn.MPO.random([2] * 4, [2] * 4, 2, seed=0)}, ValueError, "Hermitian"),
        ({"init": tn.MPS.random([3] * 4, 2, seed=0)}, ValueError, "init"),
        ({"max_bond": 0}, ValueError, "max_bond"),
        ({"nstates": 0}, ValueError, "nstates"),
        ({"H": tn.MPS.random([2] * 4, 2, seed=0)}, TypeError, "H"),
        ({"method": "three-site"}, ValueError, "method"),
        ({"max_bond": 2.5}, TypeError, "max_bond"),
    ],
)
def test_bad_input(kwargs, error, match):
    request = {"H": tn.models.heisenberg(4), "max_bond": 4, **kwargs}
    H = request.pop("H")
    with pytest.raises(error, match=match):
        tn.dmrg(H, **request)


@pytest.mark.slow
def test_heisenberg_100_agrees_with_quimb():
    qtn = pytest.importorskip("quimb.tensor")
    L, chi = 100, 32
    ours = tn.dmrg(tn.models.heisenberg(L), max_bond=chi, sweeps=6, tol=0.0, seed=0)
    solver = qtn.DMRG2(qtn.MPO_ham_heis(L, cyclic=False), bond_dims=[chi], cutoffs=1e-12)
    solver.solve(max_sweeps=12, tol=1e-14, verbosity=0)
    assert ours.energy == pytest.approx(float(solver.energy), abs=1e-6)


def test_scan_serial_and_through_a_process_pool_agree():
    from concurrent.futures import ProcessPoolExecutor

    from tnkit.algorithms import scan

    family = [tn.models.ising(8, J=1.0, g=g) for g in (0.5, 1.5)]
    serial = scan(family, max_bond=16, seed=0)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = scan(family, max_bond=16, seed=0, executor=pool)
    for a, b in zip(serial, parallel, strict=True):
        assert a.energy == pytest.approx(b.energy, abs=1e-12)
        assert a.energy == pytest.approx(float(lowest(family[serial.index(a)])[0]), abs=1e-10)
    with pytest.raises(TypeError, match="hamiltonians"):
        scan([tn.MPS.random([2] * 4, 2, seed=0)], max_bond=4)


def test_results_pickle():
    import pickle

    result = tn.dmrg(tn.models.heisenberg(6), max_bond=8, seed=0)
    back = pickle.loads(pickle.dumps(result))
    assert back.energy == result.energy and back.variance == pytest.approx(result.variance)
    assert np.array_equal(back.state.to_dense(), result.state.to_dense())


@pytest.mark.parametrize("method", ["two-site", "one-site"])
def test_torch_hamiltonians_give_torch_states(method):
    torch = pytest.importorskip("torch")
    h = tn.models.heisenberg(8)
    ht = tn.MPO([torch.from_numpy(np.array(c)) for c in h.cores])
    result = tn.dmrg(ht, max_bond=16, seed=0, method=method)
    assert isinstance(result.state.cores[0], torch.Tensor)
    assert result.energy == pytest.approx(float(lowest(h)[0]), abs=1e-10)
    assert result.variance < 1e-9


KILLED_RUN = """
import os, sys
import tnkit as tn

def stop(record):
    if record.state == 1 and record.sweep == 1:
        os._exit(3)  # killed mid-run, after state 1's sweep 1 was checkpointed

tn.dmrg(tn.models.heisenberg(10), max_bond=[4, 8, 16], sweeps=5, tol=0.0, nstates=2, seed=3,
        checkpoint=sys.argv[1], callback=stop)
"""


@pytest.mark.parametrize("method", ["two-site", "one-site"])
def test_a_killed_run_resumes_to_the_same_result(tmp_path, method):
    import subprocess
    import sys

    path = tmp_path / "run.safetensors"
    script = KILLED_RUN.replace("seed=3,", f"seed=3, method={method!r},")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True)
    assert done.returncode == 3, done.stderr.decode()[-2000:]
    options = dict(max_bond=[4, 8, 16], sweeps=5, tol=0.0, nstates=2, seed=3, method=method)
    resumed = tn.dmrg(tn.models.heisenberg(10), resume=path, **options)
    straight = tn.dmrg(tn.models.heisenberg(10), **options)
    assert np.allclose(resumed.energies, straight.energies, atol=1e-10, rtol=0)
    assert len(resumed.sweeps) == len(straight.sweeps)
    for a, b in zip(resumed.states, straight.states, strict=True):
        assert abs(abs(complex(tn.inner(a, b))) - 1) < 1e-8
    with pytest.raises(ValueError, match="resume"):
        tn.dmrg(tn.models.heisenberg(10), resume=path, **{**options, "max_bond": 8})


@pytest.mark.slow
def test_heisenberg_agrees_with_tenpy():
    pytest.importorskip("tenpy")
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "benchmarks"))
    from bench_dmrg import run_tenpy

    L, chi = 40, 32
    ours = tn.dmrg(tn.models.heisenberg(L), max_bond=chi, sweeps=6, tol=0.0, seed=0)
    _, theirs = run_tenpy(L, chi, 6)
    assert ours.energy == pytest.approx(theirs, abs=1e-7)  # TeNPy's E is before the last cut
