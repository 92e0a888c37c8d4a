"""Files of charged trains hold only the entries that conserve charge (issue 19): round
trips are exact, structurally zero entries are never written, trains whose gauge mixes
charges are written dense, and damaged block files are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import charge_masks, sector_states

import tnkit as tn
from tnkit import storage

SUFFIXES = (".safetensors", ".npz")


def round_trip(tmp_path, train, suffix):
    path = tmp_path / f"train{suffix}"
    tn.save(path, train)
    back = tn.load(path)
    assert type(back) is type(train) and back.charges == train.charges
    assert back.centre == train.centre and back.scale_exponent == train.scale_exponent
    for a, b in zip(train.cores, back.cores, strict=True):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    return storage._encode_train(train)


@settings(max_examples=20, deadline=None)
@given(
    psi=sector_states(max_len=6, max_bond=9),
    suffix=st.sampled_from(SUFFIXES),
    complex_=st.booleans(),
)
def test_charged_states_are_written_as_their_blocks(tmp_path_factory, psi, suffix, complex_):
    if complex_:
        psi = psi * np.exp(0.4j)
    meta, tensors = round_trip(tmp_path_factory.mktemp("blocks"), psi, suffix)
    assert meta["blocks"] is True and meta["format_version"] == storage.BLOCKS_FORMAT_VERSION
    for k, (core, mask) in enumerate(zip(psi.cores, charge_masks(psi), strict=True)):
        core = np.asarray(core)
        assert not np.any(core[~mask])  # everything left out is zero ...
        stored = tensors[f"core_{k}"]
        assert stored.shape[0] == int(mask.sum())  # ... and nothing else is written
        assert stored.shape[1:] == ((2,) if complex_ else ())


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(
    "build",
    [
        lambda: tn.models.heisenberg(8, h=0.3, conserve="Sz"),
        lambda: tn.models.hubbard(6, U=4.0, conserve=("N", "Sz")),
        lambda: tn.models.hubbard(4, U=2.0, conserve=("N", "parity")),
    ],
)
def test_charged_operators_are_written_as_their_blocks(tmp_path, build, suffix):
    H = build()
    meta, tensors = round_trip(tmp_path, H, suffix)
    assert meta["blocks"] is True
    stored = sum(tensors[f"core_{k}"].size for k in range(len(H)))
    assert stored < sum(np.asarray(c).size for c in H.cores)


def test_dmrg_and_tdvp_results_are_written_as_blocks_and_shrink(tmp_path):
    L = 12
    H = tn.models.hubbard(L, U=8.0, conserve=("N", "Sz"))
    start = tn.MPS.random([4] * L, 16, site="electron", conserve=("N", "Sz"), sector=(L, 0))
    state = tn.dmrg(H, max_bond=32, init=start, sweeps=2, tol=0).state
    for train in (state, tn.tdvp(H, state, 0.1, dt=0.05).state):
        tn.save(tmp_path / "blocks.safetensors", train)
        tn.save(tmp_path / "dense.safetensors", train.to_plain())
        ratio = (tmp_path / "dense.safetensors").stat().st_size / (
            tmp_path / "blocks.safetensors"
        ).stat().st_size
        assert ratio > 3  # (N, Sz) leaves a small fraction of each core's entries
        back = tn.load(tmp_path / "blocks.safetensors")
        for a, b in zip(train.cores, back.cores, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_gauge_that_mixes_charges_is_written_dense(tmp_path):
    psi = tn.MPS.product_state(["up", "dn", "up", "dn"], conserve="Sz")
    grown = psi + psi  # bond 2, both channels of one charge
    cores = [np.asarray(c) for c in grown.cores]
    rotation = np.array([[0.6, 0.8], [-0.8, 0.6]])
    cores[1] = np.tensordot(cores[1], rotation, axes=(2, 0))  # fine: same charges ...
    cores[2] = np.tensordot(rotation.T, cores[2], axes=(1, 0))
    plain = tn.MPS(cores)
    mixed = plain.with_charges("Sz")
    meta, _ = round_trip(tmp_path, mixed, ".safetensors")
    assert meta["blocks"] is True
    broken = [c.copy() for c in cores]  # a channel fed from up and from down
    broken[0] = np.ones_like(broken[0])
    odd = tn.MPS(broken).with_charges("Sz")
    meta, tensors = round_trip(tmp_path, odd, ".npz")
    assert "blocks" not in meta and not any(name.startswith("bond") for name in tensors)


def test_plain_trains_and_earlier_files_are_unchanged(tmp_path):
    m = tn.MPS.random([2] * 4, 3, seed=0)
    meta, tensors = round_trip(tmp_path, m, ".safetensors")
    assert "blocks" not in meta and meta["format_version"] == storage.FORMAT_VERSION
    assert sorted(tensors) == [f"core_{k}" for k in range(4)]
    # a charged train written dense (as before this format) still loads
    psi = tn.MPS.random([2] * 4, 4, conserve="Sz", sector=(0,), seed=1)
    meta, tensors = storage._encode_train(psi.to_plain())
    meta["charges"] = storage._encode_train(psi)[0]["charges"]
    path = tmp_path / "old.npz"
    with open(path, "wb") as handle:
        storage._WRITERS[".npz"](handle, tensors, meta)
    assert tn.load(path).charges == psi.charges


def _block_file(tmp_path, damage):
    psi = tn.MPS.random([2] * 4, 4, conserve="Sz", sector=(0,), seed=2)
    meta, tensors = storage._encode_train(psi)
    damage(meta, tensors)
    path = tmp_path / "bad.safetensors"
    with open(path, "wb") as handle:
        storage._WRITERS[".safetensors"](handle, tensors, meta)
    return path


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda m, t: m.__setitem__("blocks", 1), "blocks must be true"),
        (lambda m, t: m.__setitem__("format_version", 1), "do not hold charge blocks"),
        (lambda m, t: m.pop("charges"), "must declare the charges"),
        (lambda m, t: t.pop("bond_charges_2"), r"missing \['bond_charges_2'\]"),
        (lambda m, t: t.__setitem__("bond_charges_1", t["bond_charges_1"] + 0.5), "whole"),
        (lambda m, t: t.__setitem__("bond_charges_0", np.ones((1, 1))), "neutral"),
        (lambda m, t: t.__setitem__("bond_charges_2", np.zeros((4, 2))), "whole"),
        (lambda m, t: t.__setitem__("core_1", t["core_1"][:-1]), "charge blocks have"),
        (lambda m, t: t.__setitem__("core_1", np.full_like(t["core_1"], np.nan)), "NaN"),
    ],
)
def test_damaged_block_files_are_refused(tmp_path, damage, match):
    with pytest.raises(ValueError, match=match):
        tn.load(_block_file(tmp_path, damage))
