"""Charged NumPy trains hold only their charge blocks (issue 19): the entries that are
structurally zero are not stored, the dense cores are built when an operation without a
block path reads them, and every operation gives the numbers of the same train held dense."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import charge_masks, sector_states

import tnkit as tn
from tnkit.held_blocks import HeldBlocks
from tnkit.sectors import site_flows


def dense_twin(train):
    """The same train with dense cores and no charges (nothing shared with ``train``,
    which is left as it is: its held blocks are unpacked, not its ``cores`` read)."""
    cores = train._held.cores() if train._cores is None else train.cores
    return type(train)([np.array(c) for c in cores])


def holds_blocks(train) -> bool:
    """Whether ``train`` holds its charge blocks and has not built its dense cores."""
    return train._held is not None and train._cores is None


def stored_entries(train) -> int:
    return sum(v.size for v in train._held.values)


@settings(max_examples=30, deadline=None)
@given(psi=sector_states(max_bond=16))
def test_a_charged_state_holds_exactly_its_charge_blocks(psi):
    assert holds_blocks(psi)
    masks = charge_masks(psi)
    assert stored_entries(psi) == sum(int(m.sum()) for m in masks) <= psi.num_params
    cores = psi.cores  # built once, kept, and zero outside the blocks
    assert psi.cores is cores and not holds_blocks(psi)
    for core, mask in zip(cores, masks, strict=True):
        assert not np.any(core[~mask]) and not core.flags.writeable
    held = HeldBlocks.pack(cores, site_flows(psi.charges, operator=False), psi.charges[0])
    for a, b in zip(held.values, psi._held.values, strict=True):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=25, deadline=None)
@given(psi=sector_states(max_bond=12), data=st.data())
def test_operations_on_held_blocks_equal_the_dense_train(psi, data):
    """Every result equals the one of the same train held dense; results of the
    operations that keep the charges hold blocks again, and the input stays held."""
    plain = dense_twin(psi)
    centre = data.draw(st.integers(0, len(psi) - 1))
    keep = data.draw(st.integers(1, 6))
    norm = float(plain.norm())
    results = {
        "canonicalize": (psi.canonicalize(centre), plain.canonicalize(centre)),
        "compress": (psi.compress(max_bond=keep), plain.compress(max_bond=keep)),
        "times": (2.5 * psi, 2.5 * plain),
        "conj": ((1j * psi).conj(), (1j * plain).conj()),
        "neg": (-psi, -plain),
    }
    assert holds_blocks(psi)
    for name, (held, dense) in results.items():
        assert holds_blocks(held), name
        assert held.charges == psi.charges and held.bond_dims == dense.bond_dims, name
        assert float(tn.distance(held.to_plain(), dense)) <= 1e-12 * max(norm, 1.0), name
    assert np.isclose(psi.norm(), norm, rtol=1e-12)
    assert np.isclose(psi.log_norm(), plain.log_norm(), rtol=1e-12, atol=1e-12)
    assert np.isclose(tn.inner(psi, psi), tn.inner(plain, plain), rtol=1e-12)
    np.testing.assert_allclose(psi.to_dense(), plain.to_dense(), atol=1e-14 * norm)
    assert holds_blocks(psi)  # none of them kept a dense copy


def test_summary_properties_read_the_blocks_without_building_cores():
    psi = tn.MPS.random([2] * 10, 32, conserve="Sz", sector=0, seed=3)
    assert holds_blocks(psi)
    facts = (len(psi), psi.bond_dims, psi.phys_dims, psi.dtype, psi.num_params, repr(psi))
    assert holds_blocks(psi)
    assert facts[:2] == (10, dense_twin(psi).bond_dims) and "backend=numpy" in facts[-1]
    assert psi.num_params == dense_twin(psi).num_params  # the dense count, as documented


def test_models_and_ground_states_hold_blocks_at_rest():
    """A large charged state stores a fraction of its dense entries; DMRG and TDVP results,
    canonical forms and compressions hold blocks, and so do files read back."""
    h = tn.models.heisenberg(16, conserve="Sz")
    assert holds_blocks(h)
    neel = tn.MPS.product_state(["up", "dn"] * 8, conserve="Sz")
    psi = tn.dmrg(h, max_bond=24, init=neel, sweeps=3).state
    assert holds_blocks(psi) and psi.charges == neel.charges
    assert stored_entries(psi) < 0.5 * psi.num_params
    energy = tn.expectation(psi, h)
    evolved = tn.tdvp(h, psi, 0.1, dt=0.05, max_bond=24).state
    assert holds_blocks(evolved)
    assert holds_blocks(psi)  # measured and evolved from without keeping dense cores
    assert np.isclose(energy, tn.expectation(dense_twin(psi), dense_twin(h)), rtol=1e-12)
    big = tn.MPS.random([2] * 20, 128, conserve="Sz", sector=0, seed=0)
    assert stored_entries(big) < 0.25 * big.num_params
    assert holds_blocks(big.compress(max_bond=64)) and holds_blocks(big)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_files_and_pickles_of_held_trains(tmp_path, suffix):
    psi = tn.MPS.random([2] * 8, 16, conserve="Sz", sector=2, seed=1)
    tn.save(tmp_path / f"psi{suffix}", psi)
    assert holds_blocks(psi)  # written from the blocks it holds
    back = tn.load(tmp_path / f"psi{suffix}")
    again = pickle.loads(pickle.dumps(psi))
    for other in (back, again):
        assert holds_blocks(other) and other.charges == psi.charges
        for a, b in zip(other.cores, psi.cores, strict=True):
            np.testing.assert_array_equal(a, b)


def test_charges_change_or_go_without_copying_or_losing_the_cores():
    psi = tn.MPS.random([3] * 6, 10, site="spin-one", conserve="Sz", sector=0, seed=2)
    plain = psi.to_plain()
    assert plain.charges is None and plain._held is psi._held  # shared
    two = tn.symmetry.Charges(psi.charges[0].values % 2, moduli=(2,))
    parity = psi.with_charges(two, site=None)
    assert holds_blocks(parity) and parity._held.group.moduli == (2,)
    for a, b in zip(parity.cores, psi.cores, strict=True):
        np.testing.assert_array_equal(a, b)


def test_trains_that_do_not_conserve_their_charges_stay_dense():
    """Charges are labels until they matter: a state in no sector keeps its dense cores."""
    mixed = tn.MPS.random([2] * 5, 4, seed=0).with_charges("Sz")
    assert mixed._held is None and mixed._cores is not None
    assert tn.MPS.random([2] * 5, 4, seed=0)._held is None  # plain trains: dense, as always


def test_held_blocks_refuse_cores_that_mix_charges():
    q = tn.symmetry.site_charges("spin-half", "Sz")
    both = np.ones((1, 2, 1))
    assert HeldBlocks.pack([both], [q.values], q) is None
    with pytest.raises(ValueError, match="expected 2 bonds"):
        tn.sectors.unpack_blocks([np.ones(1)], [np.zeros((1, 1), np.int64)], [q.values], q)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 3),
    rows=st.integers(0, 30),
    reach=st.sampled_from([3, 1000, 2**40]),
)
def test_charge_labels_are_numpys_unique_rows(data, n, rows, reach):
    """One int key per row (or numpy's row-wise unique where the keys would not fit)."""
    values = data.draw(
        st.lists(
            st.lists(st.integers(-reach, reach), min_size=n, max_size=n),
            min_size=rows,
            max_size=rows,
        )
    )
    charges = np.array(values, dtype=np.int64).reshape(rows, n)
    keys, labels = tn.sectors.charge_labels(charges)
    expected, inverse = np.unique(charges, axis=0, return_inverse=True)
    np.testing.assert_array_equal(keys, expected.reshape(-1, n))
    np.testing.assert_array_equal(labels, np.ravel(inverse))


Z = np.diag([1.0, -1.0])
MEASUREMENTS = {
    "norm": lambda a, h: a.norm(),
    "log_norm": lambda a, h: a.log_norm(),
    "inner": lambda a, h: tn.inner(a, a),
    "distance": lambda a, h: tn.distance(a, 2 * a),
    "expectation": lambda a, h: tn.expectation(a, h),
    "variance": lambda a, h: tn.variance(h, a),
    "local_expectation": lambda a, h: tn.local_expectation(a, Z, 3),
    "correlation": lambda a, h: tn.correlation(a, Z, 2, Z, 5),
    "entropies": lambda a, h: a.entropies(),
    "by_charge": lambda a, h: np.sort(
        np.concatenate(list(a.with_charges("Sz").singular_values(4, by_charge=True).values()))
    ),
    "sample": lambda a, h: tn.measure.sample(a, 5, seed=0),
    "to_dense": lambda a, h: a.to_dense(),
    "is_canonical": lambda a, h: a.is_canonical(0),
}


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_measurements_leave_a_held_state_holding_its_blocks(name):
    """Each measurement builds the dense cores it needs for the call and drops them, and
    gives the dense twin's value."""
    h = tn.models.heisenberg(10, conserve="Sz")
    psi = tn.MPS.random([2] * 10, 40, conserve="Sz", sector=(0,), seed=1)
    twin = dense_twin(psi)
    value = MEASUREMENTS[name](psi, h)
    assert holds_blocks(psi)
    expected = MEASUREMENTS[name](twin, dense_twin(h))
    np.testing.assert_allclose(np.asarray(value), np.asarray(expected), rtol=1e-10, atol=1e-12)


def test_block_engines_start_from_held_blocks_as_from_resolved_cores():
    """A state holding its blocks enters DMRG and TDVP without the SVDs of charge
    resolution; the runs equal those from the same state held dense (rounding outside the
    blocks keeps it dense, and the engine resolves it by SVD)."""
    h = tn.models.heisenberg(12, conserve="Sz")
    psi = tn.MPS.random([2] * 12, 16, conserve="Sz", sector=(0,), seed=5)
    noise = [np.array(c) for c in psi._held.cores()]
    noise[3] = noise[3] + 1e-19 * np.ones_like(noise[3])  # rounding outside the blocks
    dense = tn.MPS(noise).with_charges("Sz")
    assert holds_blocks(psi) and dense._held is None
    for run in (
        lambda s: tn.dmrg(h, max_bond=16, init=s, sweeps=2).state,
        lambda s: tn.tdvp(h, s, 0.1, dt=0.05, max_bond=16).state,
    ):
        a, b = run(psi), run(dense)
        assert holds_blocks(a) and a.bond_dims == b.bond_dims
        assert float(tn.distance(a.to_plain(), b.to_plain())) <= 1e-9 * float(b.norm())
