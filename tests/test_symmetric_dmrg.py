"""Abelian symmetries, second part: trains that declare charges, the charge-resolved form
and Schmidt values by charge, the block-sparse local algebra, and DMRG in a sector equal to
the plain path (issue 19, items 2–4)."""

from __future__ import annotations

import dataclasses
import importlib
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tnkit as tn
from tnkit.algorithms import blocks
from tnkit.algorithms.checkpoint import read_checkpoint, write_checkpoint
from tnkit.algorithms.engines import BlockEngine, DenseEngine, choose_engine
from tnkit.sectors import resolve_charges, split_by_charge
from tnkit.symmetry import sector, site_charges
from tnkit.truncation import choose_rank

dmrg_module = importlib.import_module("tnkit.algorithms.dmrg")  # the package exports the function

FAST = settings(max_examples=20, deadline=None)
SZ = site_charges("spin-half", "Sz")


def random_symmetric_state(L: int, seed: int):
    """A Néel-like product state, then random conserving operators: a generic state of its
    Sz sector with bonds above 1, its cores in no particular gauge."""
    rng = np.random.default_rng(seed)
    psi = tn.MPS.product_state((["up", "dn"] * L)[:L], conserve="Sz")
    for _ in range(2):
        terms = tn.OpSum(L, conserve="Sz")
        for i in range(L - 1):
            a, b, c = rng.standard_normal(3)
            terms.add(a, "S+", i, "S-", i + 1).add(a, "S+", i + 1, "S-", i)
            terms.add(b, "Sz", i, "Sz", i + 1).add(c, "Sz", i)
        psi = (terms.to_mpo() @ psi).compress() + 0.5 * psi
    return psi


def test_charges_are_metadata_of_the_physical_legs():
    psi = tn.MPS.product_state(["up", "dn", "up"], conserve="Sz")
    assert psi.charges == (SZ,) * 3
    for kept in (psi.canonicalize(0), psi.compress(max_bond=1), 2.0 * psi, psi.conj(), psi + psi):
        assert kept.charges == psi.charges
    assert psi.to_plain().charges is None
    assert (psi + psi.to_plain()).charges is None  # declared on one side only
    assert psi.to_plain().with_charges("Sz").charges == psi.charges
    assert tn.MPS.random([2] * 3, 2, seed=0).charges is None
    H = tn.models.heisenberg(3, conserve="Sz")
    assert H.charges == (SZ,) * 3 and (H @ psi).charges == psi.charges
    assert (H.to_plain() @ psi).charges is None


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda m: m.with_charges("N"), ValueError, "conserve"),
        (lambda m: m.with_charges("Sz", site="electron"), ValueError, "site"),
        (lambda m: m.with_charges("Sz", site=2), TypeError, "site"),
        (lambda m: m.to_plain().singular_values(0, by_charge=True), ValueError, "by_charge"),
    ],
)
def test_bad_charges_name_the_parameter(call, error, name):
    psi = tn.MPS.product_state(["up", "dn"], conserve="Sz")
    with pytest.raises(error, match=name):
        call(psi)


@FAST
@given(st.integers(2, 7), st.integers(0, 2**31))
def test_resolved_form_is_the_same_state_in_blocks(L, seed):
    psi = random_symmetric_state(L, seed)
    resolved = resolve_charges([np.asarray(c) for c in psi.canonicalize(0).cores], psi.charges)
    dense = tn.MPS(list(resolved.cores)).to_dense()
    assert np.allclose(dense, psi.to_dense(), atol=1e-12 * psi.norm())
    assert resolved.sector == sector((["up", "dn"] * L)[:L], conserve="Sz")
    for k, core in enumerate(resolved.cores):  # every entry outside a block is exactly 0
        q_left, q_right = resolved.bonds[k][:, 0], resolved.bonds[k + 1][:, 0]
        outside = q_left[:, None, None] + SZ.values[None, :, 0, None] != q_right[None, None, :]
        assert not np.any(core[outside])
        assert core.shape[2] <= psi.bond_dims[k] if k < L - 1 else True
        if k < L - 1:  # left-canonical
            flat = core.reshape(-1, core.shape[2])
            assert np.allclose(flat.T @ flat, np.eye(flat.shape[1]), atol=1e-12)


@FAST
@given(st.integers(2, 7), st.integers(0, 2**31), st.data())
def test_schmidt_values_by_charge_are_the_schmidt_values(L, seed, data):
    psi = random_symmetric_state(L, seed)
    bond = data.draw(st.integers(0, L - 2))
    parts = psi.singular_values(bond, by_charge=True)
    joined = np.sort(np.concatenate(list(parts.values())))[::-1]
    plain = psi.singular_values(bond)
    plain = plain[plain > 1e-12 * plain[0]]
    assert np.allclose(joined[: len(plain)], plain, rtol=1e-10, atol=1e-12 * plain[0])
    assert np.all(joined[len(plain) :] <= 1e-10 * plain[0])
    half = np.array([int(q) for q in parts])  # 2·Sz of the left part: parity of bond + 1
    assert np.all((half - (bond + 1)) % 2 == 0)


def test_by_charge_refuses_a_state_in_no_sector():
    mixed = tn.MPS.product_state(["up", "up"]) + tn.MPS.product_state(["dn", "up"])
    with pytest.raises(ValueError, match="more than one total charge"):
        mixed.with_charges("Sz").singular_values(0, by_charge=True)


def test_split_by_charge_is_exact_and_keeps_charges_apart():
    rng = np.random.default_rng(0)
    rows = rng.integers(-2, 3, size=(9, 1))
    matrix = rng.standard_normal((9, 5))
    cut = split_by_charge(matrix, rows)
    assert np.allclose(cut.isometry @ cut.rest, matrix)
    assert np.allclose(cut.isometry.T @ cut.isometry, np.eye(cut.isometry.shape[1]))
    for j, charge in enumerate(cut.charges):
        assert np.all(cut.isometry[rows[:, 0] != charge[0], j] == 0)


def test_block_arrays_round_trip_and_refuse_broken_symmetry():
    H = tn.models.hubbard(4, U=8.0, conserve=("N", "Sz"))
    ops = blocks.operator_blocks(H)
    phys = [q.values for q in H.charges]
    for op, core in zip(ops, H.cores, strict=True):
        back = blocks.dense_core(op, [phys[0], phys[0]])
        # bond channels come back in sorted charge order: compare as operators
        assert np.isclose(np.linalg.norm(back), np.linalg.norm(core))
    assert np.allclose(
        tn.MPO([blocks.dense_core(o, [p, p]) for o, p in zip(ops, phys, strict=True)]).to_matrix(),
        H.to_matrix(),
    )
    broken = np.zeros((1, 2, 1))
    broken[0, :, 0] = 1.0  # up + dn: no single charge
    with pytest.raises(ValueError, match="outside its charge blocks"):
        blocks.from_dense(
            broken,
            [np.zeros((1, 1), int), SZ.values, np.zeros((1, 1), int)],
            (False, False, True),
            SZ,
        )


@FAST
@given(st.integers(0, 2**31), st.integers(1, 12), st.sampled_from([None, 1e-3]))
def test_block_split_truncates_like_a_dense_svd(seed, cap, budget):
    psi = random_symmetric_state(6, seed)
    engine = BlockEngine(tn.models.heisenberg(6, conserve="Sz"))
    cores, _ = engine.start(psi, engine.H)
    theta = blocks.merge(cores[2], cores[3])
    dense = blocks.dense_core(theta, [SZ.values, SZ.values])
    values = np.linalg.svd(dense.reshape(dense.shape[0] * 2, -1), compute_uv=False)
    cut = blocks.split(theta, max_bond=cap, budget=budget, isometry="left")
    shape = (dense.shape[0] * 2, dense.shape[3] * 2)
    kept = choose_rank(values, shape=shape, eps=2.0**-52, max_bond=cap, budget=budget)
    assert cut.rank == kept
    assert np.isclose(cut.discarded, float(values[kept:] @ values[kept:]), atol=1e-13)
    left, right = (blocks.dense_core(c, [SZ.values]) for c in (cut.left, cut.right))
    approx = np.tensordot(left, right, axes=(2, 0))
    error = np.linalg.norm(approx - dense) ** 2
    assert np.isclose(error, cut.discarded, atol=1e-12)


def exact_sector_energy(H: tn.MPO, labels: list[str], site: str, conserve) -> float:
    """The lowest eigenvalue of H in the sector of the product state ``labels``."""
    charges = H.charges
    target = np.array(sector(labels, site=site, conserve=conserve))
    total = 0
    for k, q in enumerate(charges):
        shape = [1] * len(charges) + [q.values.shape[1]]
        shape[k] = q.values.shape[0]
        total = total + q.values.reshape(shape)
    total = charges[0].reduce(np.asarray(total).reshape(-1, target.size))
    inside = np.all(total == target, axis=1)
    W = H.to_matrix()[np.ix_(inside, inside)]
    return float(np.linalg.eigvalsh(W)[0])


@pytest.mark.parametrize(
    ("build", "site", "conserve", "labels"),
    [
        (lambda: tn.models.heisenberg(10, conserve="Sz"), "spin-half", "Sz", ["up", "dn"] * 5),
        (
            lambda: tn.models.heisenberg(10, conserve="Sz"),
            "spin-half",
            "Sz",
            ["up"] * 6 + ["dn"] * 4,
        ),
        (
            lambda: tn.models.heisenberg(10, conserve="parity"),
            "spin-half",
            "parity",
            ["up", "dn"] * 4 + ["up", "up"],
        ),
        (
            lambda: tn.models.hubbard(6, U=8.0, conserve=("N", "Sz")),
            "electron",
            ("N", "Sz"),
            ["up", "dn"] * 3,
        ),
        (
            lambda: tn.models.hubbard(6, U=4.0, conserve="N"),
            "electron",
            "N",
            ["up", "0", "dn", "0", "up", "0"],
        ),
    ],
)
def test_dmrg_in_a_sector_finds_the_sector_ground_state(build, site, conserve, labels):
    H = build()
    start = tn.MPS.product_state(labels, site=site, conserve=conserve)
    assert isinstance(choose_engine(H, [start]), BlockEngine)
    r = tn.dmrg(H, max_bond=64, init=start, sweeps=8)
    assert abs(r.energy - exact_sector_energy(H, labels, site, conserve)) < 1e-9
    assert r.state.charges == H.charges
    assert r.state.singular_values(len(labels) // 2 - 1, by_charge=True)  # in one sector
    assert abs(r.variance) < 1e-8 and r.two_site_variance <= r.variance + 1e-12


def test_dmrg_blocks_equal_the_plain_path_at_equal_bond():
    L = 24
    H = tn.models.heisenberg(L, conserve="Sz")
    start = tn.MPS.product_state(["up", "dn"] * (L // 2), conserve="Sz")
    blocked = tn.dmrg(H, max_bond=[8, 16, 24], init=start, sweeps=6, tol=0)
    plain = tn.dmrg(H.to_plain(), max_bond=[8, 16, 24], init=start.to_plain(), sweeps=6, tol=0)
    assert abs(blocked.energy - plain.energy) < 1e-10
    assert abs(abs(complex(tn.inner(blocked.state, plain.state))) - 1) < 1e-8
    assert [r.max_bond for r in blocked.sweeps] == [r.max_bond for r in plain.sweeps]
    assert blocked.extrapolation is not None and plain.extrapolation is not None
    assert abs(blocked.extrapolation.energy - plain.extrapolation.energy) < 1e-8


def test_spin_gap_is_one_call_per_sector():
    L = 10
    H = tn.models.heisenberg(L, conserve="Sz")
    e0 = tn.dmrg(H, max_bond=32, init=tn.MPS.product_state(["up", "dn"] * 5, conserve="Sz"))
    wall = ["up"] * 6 + ["dn"] * 4  # 2Sz = 2: a domain wall, as a user might start
    e1 = tn.dmrg(H, max_bond=32, init=tn.MPS.product_state(wall, conserve="Sz"))
    levels = np.linalg.eigvalsh(H.to_matrix())
    assert abs(e0.energy - levels[0]) < 1e-9
    assert abs(e1.energy - exact_sector_energy(H, wall, "spin-half", "Sz")) < 1e-9
    assert e1.energy - e0.energy > 0.1


def test_plain_engine_where_blocks_do_not_apply():
    H = tn.models.heisenberg(6, conserve="Sz")
    start = tn.MPS.product_state(["up", "dn"] * 3, conserve="Sz")
    assert isinstance(choose_engine(H, [start, start.to_plain()]), DenseEngine)
    assert isinstance(choose_engine(H, [start.to_plain()]), DenseEngine)
    assert isinstance(choose_engine(H.to_plain(), [start]), DenseEngine)
    r = tn.dmrg(H.to_plain(), max_bond=16, init=start, method="one-site", sweeps=6)
    assert abs(r.energy - exact_sector_energy(H, ["up", "dn"] * 3, "spin-half", "Sz")) < 1e-9
    assert r.state.charges == H.charges


def test_dmrg_in_a_sector_refuses_a_start_in_no_sector():
    H = tn.models.heisenberg(4, conserve="Sz")
    with pytest.raises(ValueError, match="more than one total charge"):
        tn.dmrg(H, max_bond=4, init=tn.MPS.random([2] * 4, 2, seed=0).with_charges("Sz"))


def test_checkpoint_and_resume_in_a_sector(tmp_path):
    L = 10
    H = tn.models.heisenberg(L, conserve="Sz")
    start = tn.MPS.product_state(["up", "dn"] * (L // 2), conserve="Sz")
    path = tmp_path / "run.safetensors"
    full = tn.dmrg(H, max_bond=16, init=start, sweeps=4, tol=0, checkpoint=path)
    again = tn.dmrg(H, max_bond=16, init=start, sweeps=4, tol=0, resume=path)
    assert abs(full.energy - again.energy) < 1e-12


def test_a_resumed_run_stays_on_blocks_and_its_file_holds_blocks(tmp_path):
    """The checkpoint keeps the state's charges (so the resumed run picks the block engine
    again, and cannot leave the sector) and writes only the charge blocks."""
    L = 12
    H = tn.models.hubbard(L, U=8.0, conserve=("N", "Sz"))
    start = tn.MPS.random([4] * L, 16, site="electron", conserve=("N", "Sz"), sector=(L, 0))
    path = tmp_path / "run.safetensors"
    options = {"max_bond": 32, "init": start, "tol": 0}
    first = tn.dmrg(H, sweeps=2, checkpoint=path, **options)
    point = read_checkpoint(path)
    assert point.current is None and point.done[0].charges == H.charges
    for a, b in zip(point.done[0].cores, first.state.cores, strict=True):
        np.testing.assert_array_equal(a, b)
    dense = tmp_path / "dense.safetensors"
    write_checkpoint(dense, dataclasses.replace(point, done=(point.done[0].to_plain(),)))
    assert dense.stat().st_size > 3 * path.stat().st_size

    class Stop(Exception):
        pass

    def stop(record):
        if record.sweep == 1:
            raise Stop

    with pytest.raises(Stop):
        tn.dmrg(H, sweeps=3, checkpoint=path, callback=stop, **options)
    assert read_checkpoint(path).current.charges == H.charges
    chosen = []
    with patch.object(
        dmrg_module, "choose_engine", lambda *a: chosen.append(choose_engine(*a)) or chosen[-1]
    ):
        resumed = tn.dmrg(H, sweeps=3, resume=path, **options)
    assert len(chosen) == 1 and isinstance(chosen[0], BlockEngine)
    straight = tn.dmrg(H, sweeps=3, **options)
    assert abs(resumed.energy - straight.energy) < 1e-12


def test_charges_survive_save_and_load(tmp_path):
    H = tn.models.hubbard(4, U=8.0, conserve=("N", "Sz"))
    psi = tn.MPS.product_state(["up", "dn", "0", "updn"], site="electron", conserve=("N", "Sz"))
    for k, train in enumerate((H, psi, psi.to_plain())):
        path = tmp_path / f"train{k}.safetensors"
        tn.save(path, train)
        back = tn.load(path)
        assert back.charges == train.charges
        assert np.allclose(back.to_dense(), train.to_dense())


@FAST
@given(
    st.sampled_from(
        [
            ("spin-half", "Sz", (0,)),
            ("spin-half", "Sz", (2,)),
            ("spin-half", "parity", (1,)),
            ("spin-one", "Sz", (-2,)),
            ("electron", ("N", "Sz"), (4, 0)),
            ("electron", "N", (3,)),
        ]
    ),
    st.integers(2, 6),
    st.integers(1, 9),
    st.integers(0, 2**31),
)
def test_random_states_in_a_sector(case, L, cap, seed):
    site, conserve, target = case
    d = {"spin-half": 2, "spin-one": 3, "electron": 4}[site]
    try:
        psi = tn.MPS.random([d] * L, cap, site=site, conserve=conserve, sector=target, seed=seed)
    except ValueError as error:  # a sector no basis state of L sites reaches
        assert "no basis state" in str(error)
        return
    assert max(psi.bond_dims) <= cap and psi.norm() > 0
    assert psi.charges == tn.MPS.product_state([0] * L, site=site, conserve=conserve).charges
    cores = [np.asarray(c) for c in psi.canonicalize(0).cores]
    assert resolve_charges(cores, psi.charges).sector == target


def test_random_sector_state_bad_input():
    with pytest.raises(ValueError, match="sector"):
        tn.MPS.random([2] * 4, 4, sector=(0,))
    with pytest.raises(ValueError, match="sector"):
        tn.MPS.random([2] * 4, 4, conserve="Sz", sector=(1,))  # odd 2·Sz on 4 sites
    with pytest.raises(ValueError, match="phys_dims"):
        tn.MPS.random([3] * 4, 4, conserve="Sz", sector=(0,))


def test_dmrg_from_a_random_sector_state_equals_the_plain_path():
    L = 16
    H = tn.models.heisenberg(L, conserve="Sz")
    start = tn.MPS.random([2] * L, 16, conserve="Sz", sector=(0,), seed=3)
    blocked = tn.dmrg(H, max_bond=20, init=start, sweeps=5, tol=0)
    plain = tn.dmrg(H.to_plain(), max_bond=20, init=start.to_plain(), sweeps=5, tol=0)
    assert abs(blocked.energy - plain.energy) < 1e-10
    assert set(blocked.state.singular_values(7, by_charge=True)) <= {-6, -4, -2, 0, 2, 4, 6}
    # in a sector above the lowest, rounding carries the plain path down; blocks stay put
    higher = tn.MPS.random([2] * L, 16, conserve="Sz", sector=(2,), seed=3)
    blocked_higher = tn.dmrg(H, max_bond=20, init=higher, sweeps=5, tol=0)
    assert blocked_higher.energy > blocked.energy + 0.1
    assert set(blocked_higher.state.singular_values(7, by_charge=True)) <= {-4, -2, 0, 2, 4, 6, 8}


def test_block_two_site_variance_equals_the_dense_one():
    L = 14
    H = tn.models.heisenberg(L, conserve="Sz")
    r = tn.dmrg(H, max_bond=[6, 10], init=tn.MPS.random([2] * L, 8, conserve="Sz", sector=(0,)))
    ends = [s for s in r.sweeps if s.two_site_variance is not None]
    assert len(ends) == 2
    dense = tn.two_site_variance(H.to_plain(), r.state.to_plain())
    assert np.isclose(r.two_site_variance, dense, rtol=1e-8, atol=1e-14)
    assert np.isclose(ends[-1].state_energy, r.energy, atol=1e-10)


# ---------------------------------------------------------------------- TDVP in a sector


def test_tdvp_quench_in_a_sector_equals_the_plain_path():
    L = 12
    H = tn.models.heisenberg(L, conserve="Sz")
    neel = tn.MPS.product_state(["up", "dn"] * (L // 2), conserve="Sz")
    options = {"dt": 0.05, "observables": ["energy", "norm"]}
    blocked = tn.tdvp(H, neel, 0.5, **options)
    plain = tn.tdvp(H.to_plain(), neel.to_plain(), 0.5, **options)
    assert blocked.state.charges == H.charges and plain.state.charges is None
    assert float((blocked.state - plain.state).norm()) < 1e-8
    # a Schmidt value at the truncation threshold may be kept by one path only (rounding)
    pairs = zip(blocked.state.bond_dims, plain.state.bond_dims, strict=True)
    assert max(abs(a - b) for a, b in pairs) <= 1
    assert np.allclose(blocked.values["energy"], plain.values["energy"], atol=1e-10)
    assert np.allclose(blocked.values["norm"], 1.0, atol=1e-10)


def test_tdvp_with_a_mixed_group_equals_the_plain_path():
    """U(1) × Z2 on blocks (tnkit's ProductGroup) evolves as the plain path does."""
    labels = ["up", "dn", "updn", "0", "up", "dn"]
    H = tn.models.hubbard(6, U=4.0, conserve=("N", "parity"))
    start = tn.MPS.product_state(labels, site="electron", conserve=("N", "parity"))
    assert isinstance(choose_engine(H, [start]), BlockEngine)
    blocked = tn.tdvp(H, start, 0.5, dt=0.05)
    plain = tn.tdvp(H.to_plain(), start.to_plain(), 0.5, dt=0.05)
    assert blocked.state.charges == H.charges
    assert float((blocked.state - plain.state).norm()) < 1e-8


@pytest.mark.parametrize("method", ["two-site", "one-site"])
def test_tdvp_in_a_sector_one_site_and_imaginary_time(method):
    L = 8
    H = tn.models.heisenberg(L, conserve="Sz")
    start = tn.MPS.random([2] * L, 8, conserve="Sz", sector=(2,), seed=0)
    blocked = tn.tdvp(H, start, 0.2, dt=0.05, method=method, max_bond=8)
    plain = tn.tdvp(H.to_plain(), start.to_plain(), 0.2, dt=0.05, method=method, max_bond=8)
    # truncating to 8: the dense split may take the Gram route (accurate to ~1e-8 on the
    # values it cuts), the blocks an exact SVD per block
    assert abs(abs(complex(tn.inner(blocked.state, plain.state))) - 1) < 1e-6
    cooled = tn.tdvp(H, start, 4.0, dt=0.1, method=method, max_bond=8, imaginary=True)
    exact = exact_sector_energy(H, ["up"] * 5 + ["dn"] * 3, "spin-half", "Sz")
    assert float(tn.expectation(cooled.state, H, normalize=True).real) < exact + 0.05
    assert set(cooled.state.singular_values(3, by_charge=True)) <= {-2, 0, 2, 4}


# ---------------------------------------------------------------------- core operations


def sector_of(m: tn.MPS) -> tuple:
    return resolve_charges([np.asarray(c) for c in m.canonicalize(0).cores], m.charges).sector


@FAST
@given(st.integers(3, 7), st.integers(0, 2**31), st.integers(0, 3))
def test_core_operations_keep_charges_and_sector(L, seed, flips):
    labels = ["up"] * (L // 2 + flips % 2) + ["dn"] * (L - L // 2 - flips % 2)
    target = sector(labels, conserve="Sz")
    psi = tn.MPS.random([2] * L, 6, conserve="Sz", sector=target, seed=seed)
    H = tn.models.heisenberg(L, conserve="Sz")
    results = {
        "canonicalize": psi.canonicalize(L // 2),
        "compress": psi.compress(max_bond=3),
        "scale": -2.5 * psi,
        "sum": psi + psi.canonicalize(0),
        "apply": H @ psi,
        "apply zip-up": tn.apply(H, psi, method="zipup", max_bond=4),
        "apply density": tn.apply(H, psi, method="density", max_bond=4),
    }
    for name, result in results.items():
        assert result.charges == psi.charges, name
        assert sector_of(result) == target, name
    dense = psi.to_dense().ravel()
    W = H.to_plain().to_matrix()
    assert np.allclose((H @ psi).to_dense().ravel(), W @ dense)
    assert np.isclose(float(tn.expectation(psi, H).real), dense @ W @ dense)


def test_block_engine_stores_only_conserving_blocks():
    L = 10
    H = tn.models.hubbard(L, U=8.0, conserve=("N", "Sz"))
    psi = tn.MPS.random([4] * L, 24, site="electron", conserve=("N", "Sz"), sector=(L, 0), seed=0)
    engine = BlockEngine(H)
    cores, ops = engine.start(psi, H)
    stored = dense = 0
    for array in [*cores, *ops]:
        duals = [index.dual for index in array.indices]
        for key, block in array.blocks.items():
            total = sum((-1 if d else 1) * np.array(k) for k, d in zip(key, duals, strict=True))
            assert not np.any(total), key  # every stored block conserves (N, 2Sz)
            stored += block.size
        dense += int(np.prod(array.shape))
    assert stored < dense / 4


def test_dmrg_in_a_sector_against_tenpy_with_the_same_charges():
    pytest.importorskip("tenpy")
    import logging

    from tenpy.algorithms import dmrg as tenpy_dmrg
    from tenpy.models.spins import SpinChain
    from tenpy.networks.mps import MPS as TenpyMPS

    logging.getLogger("tenpy").setLevel(logging.WARNING)
    L, chi = 24, 20
    model = SpinChain({"L": L, "S": 0.5, "Jz": 1.0, "conserve": "Sz", "bc_MPS": "finite"})
    sites = model.lat.mps_sites()
    start = TenpyMPS.from_product_state(sites, ["up", "down"] * (L // 2), bc="finite")
    options = {"trunc_params": {"chi_max": chi, "svd_min": 1e-12}, "max_sweeps": 20}
    peer = tenpy_dmrg.run(start, model, options)["E"]
    H = tn.models.heisenberg(L, conserve="Sz")
    neel = tn.MPS.product_state(["up", "dn"] * (L // 2), conserve="Sz")
    ours = tn.dmrg(H, max_bond=chi, init=neel, sweeps=20, tol=1e-12)
    assert abs(ours.energy - peer) < 1e-7


@pytest.mark.parametrize("method", ["two-site", "one-site"])
def test_mixed_groups_run_on_blocks(method):
    """U(1) × Z2 (no named symmray group) runs on blocks and finds the sector's energy."""
    labels = ["up", "dn", "0", "updn", "up", "0"]
    H = tn.models.hubbard(6, U=4.0, conserve=("N", "parity"))
    start = tn.MPS.product_state(labels, site="electron", conserve=("N", "parity"))
    assert isinstance(choose_engine(H, [start]), BlockEngine)
    r = tn.dmrg(H, max_bond=64, init=start, method=method, sweeps=12)
    exact = exact_sector_energy(H, labels, "electron", ("N", "parity"))
    assert abs(r.energy - exact) < 1e-9
    assert r.state.charges == start.charges


def test_excited_states_in_a_sector_on_blocks():
    L = 10
    H = tn.models.heisenberg(L, conserve="Sz")
    starts = [tn.MPS.random([2] * L, 8, conserve="Sz", sector=(0,), seed=k) for k in range(3)]
    assert isinstance(choose_engine(H, starts), BlockEngine)
    r = tn.dmrg(H, max_bond=32, init=starts, nstates=3, sweeps=12)
    W = H.to_plain().to_matrix()
    labels = ["up", "dn"] * (L // 2)
    exact = exact_sector_levels(W, H, labels, 3)
    assert np.allclose(r.energies, exact, atol=1e-8)
    for k in range(3):  # orthogonal, and every one in 2Sz = 0
        assert sector_of(r.states[k]) == (0,)
        for j in range(k):
            assert abs(complex(tn.inner(r.states[j], r.states[k]))) < 1e-6
    # states of different sectors are not orthogonalised against each other
    mixed = [starts[0], tn.MPS.random([2] * L, 8, conserve="Sz", sector=(2,), seed=5)]
    both = tn.dmrg(H, max_bond=32, init=mixed, nstates=2, sweeps=10)
    higher = exact_sector_energy(H, ["up"] * 6 + ["dn"] * 4, "spin-half", "Sz")
    assert np.allclose(both.energies, [exact[0], higher], atol=1e-8)


def exact_sector_levels(W: np.ndarray, H: tn.MPO, labels: list[str], count: int) -> np.ndarray:
    """The ``count`` lowest eigenvalues of ``W`` in the sector of the product state."""
    q = H.charges[0].values[:, 0]
    total = sum(np.meshgrid(*[q] * len(labels), indexing="ij")).ravel()
    inside = total == sector(labels, conserve="Sz")[0]
    return np.linalg.eigvalsh(W[np.ix_(inside, inside)])[:count]
