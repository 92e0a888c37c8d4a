"""Sweeps over charged trains keep the charges exactly (issue 19): ``canonicalize`` and
``compress`` zero the rounding their dense QR/SVD leaves outside the charge blocks, so the
results are block-sparse (and are saved as blocks), equal to the plain path to rounding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import charge_masks, sector_states

import tnkit as tn
from tnkit.sectors import snap_to_charges


def conserves(train) -> bool:
    """Whether every core entry outside the charge blocks is exactly zero."""
    return charge_masks(train) is not None


def close(a, b, rtol=1e-12) -> bool:
    return float(tn.distance(a.to_plain(), b)) <= rtol * float(b.norm())


@settings(max_examples=25, deadline=None)
@given(psi=sector_states(), data=st.data())
def test_canonical_forms_of_charged_states_conserve_exactly(psi, data):
    L = len(psi)
    centre = data.draw(st.integers(0, L - 1))
    out = psi.canonicalize(centre)
    assert out.charges == psi.charges and out.is_canonical(centre)
    assert conserves(out)
    assert close(out, psi.to_plain().canonicalize(centre))
    again = out.canonicalize(L - 1 - centre)
    assert conserves(again) and again.is_canonical(L - 1 - centre)


@settings(max_examples=20, deadline=None)
@given(
    psi=sector_states(max_len=8, max_bond=24),
    keep=st.one_of(st.none(), st.integers(1, 8)),
    rtol=st.sampled_from([None, 1e-1, 1e-8]),
)
def test_compress_of_a_charged_state_cuts_by_charge(psi, keep, rtol):
    """One SVD per charge block: the cores conserve exactly, the bound holds and is the
    plain path's (the same singular values are cut, up to ties between charges)."""
    out = psi.compress(max_bond=keep, rtol=rtol)
    plain = psi.to_plain().compress(max_bond=keep, rtol=rtol)
    assert out.report.method == "svd/charges" and out.charges == psi.charges
    assert conserves(out) and out.is_canonical(0)
    assert out.bond_dims == plain.bond_dims
    error = float(tn.distance(out.to_plain(), psi.to_plain()))
    assert error <= out.report.abs_error_bound * (1 + 1e-6) + 1e-12 * float(psi.norm())
    assert np.isclose(
        out.report.rel_error_bound, plain.report.rel_error_bound, rtol=1e-6, atol=1e-12
    )


def test_a_cut_between_degenerate_charges_stays_in_the_sector():
    """The Heisenberg ground state at Sz = 0 has equal Schmidt values in the sectors ±q. A
    dense SVD rotates them together and a cut between them leaves the sector; by charge,
    whole charge-definite vectors go."""
    H = tn.models.heisenberg(16, conserve="Sz")
    start = tn.MPS.random([2] * 16, 16, conserve="Sz", sector=(0,), seed=0)
    state = tn.dmrg(H, max_bond=24, init=start, sweeps=3).state
    out = state.compress(max_bond=10)
    assert conserves(out)
    assert set(out.singular_values(7, by_charge=True)) <= {-6, -4, -2, 0, 2, 4, 6}
    plain = state.to_plain().compress(max_bond=10)
    assert np.isclose(out.report.rel_error_bound, plain.report.rel_error_bound, rtol=1e-6)


def test_charged_operators_keep_their_blocks_through_sweeps():
    H = tn.models.hubbard(6, U=4.0, conserve=("N", "Sz"))
    for out in (H.canonicalize(3), H.canonicalize(0), (H @ H).compress()):
        assert out.charges == H.charges and conserves(out)
    assert close((H @ H).compress(), (H @ H).to_plain().compress(), rtol=1e-11)


def test_snap_refuses_more_than_rounding():
    from tnkit.symmetry import site_charges

    q = site_charges("spin-half", "Sz")
    mixed = np.array([1.0, 1e-6]).reshape(1, 2, 1)
    assert snap_to_charges([mixed], [q.values], q, 1e-13) is None
    tiny = np.array([1.0, 1e-17]).reshape(1, 2, 1)
    assert snap_to_charges([tiny], [q.values], q, 1e-13)[0].ravel().tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    "build",
    [
        lambda: tn.MPS.random([2] * 14, 80, conserve="Sz", sector=(2,), seed=5),
        lambda: tn.MPS.random(
            [4] * 8, 70, site="electron", conserve=("N", "Sz"), sector=(8, 0), seed=6
        ),
    ],
)
def test_large_bonds_are_swept_by_charge_block(build):
    psi = build()
    assert max(psi.bond_dims) >= 64  # the block sweep's range
    L = len(psi)
    for centre in (0, L // 2, L - 1):
        out = psi.canonicalize(centre)
        assert out.is_canonical(centre) and conserves(out) and out.charges == psi.charges
        assert close(out, psi.to_plain().canonicalize(centre))
        moved = out.canonicalize(L - 1 - centre)  # from a known centre: only what lies between
        assert moved.is_canonical(L - 1 - centre) and conserves(moved)
        assert close(moved, psi.to_plain())


def test_null_channels_of_rank_deficient_operators_keep_their_charges():
    """H³ of the Hubbard chain has raw bonds of 216 and rank 36: the QR per charge leaves
    null channels, whose charges come from their entries on the right."""
    H = tn.models.hubbard(6, U=4.0, conserve=("N", "Sz"))
    cube = H @ (H @ H)
    assert max(cube.bond_dims) >= 64
    for centre in (0, 3, 5):
        out = cube.canonicalize(centre)
        assert out.is_canonical(centre) and conserves(out)
        assert close(out, cube.to_plain(), rtol=1e-13)
    assert conserves(cube.compress()) and close(cube.compress(), cube.to_plain(), rtol=1e-12)
    square = H @ H  # bonds below 64: the dense sweep, then by charge where it mixed
    for centre in (0, 3, 5):
        out = square.canonicalize(centre)
        assert out.is_canonical(centre) and conserves(out)
        assert close(out, square.to_plain(), rtol=1e-13)


MODELS = {  # a Hamiltonian and a random state of a sector for each kind of site
    "heisenberg": (lambda L: tn.models.heisenberg(L, h=0.3, conserve="Sz"), 2, "spin-half", "Sz"),
    "hubbard": (
        lambda L: tn.models.hubbard(L, U=4.0, conserve=("N", "Sz")),
        4,
        "electron",
        ("N", "Sz"),
    ),
}


@settings(max_examples=15, deadline=None)
@given(
    model=st.sampled_from(sorted(MODELS)),
    L=st.integers(3, 7),
    bond=st.integers(2, 16),
    keep=st.integers(1, 12),
    seed=st.integers(0, 2**31),
)
def test_density_application_by_charge_conserves_and_matches_the_plain_path(
    model, L, bond, keep, seed
):
    build, d, site, conserve = MODELS[model]
    H = build(L)
    sector = (L % 2,) if model == "heisenberg" else (L, L % 2)
    psi = tn.MPS.random([d] * L, bond, site=site, conserve=conserve, sector=sector, seed=seed)
    out = tn.apply(H, psi, method="density", max_bond=keep)
    plain = tn.apply(H.to_plain(), psi.to_plain(), method="density", max_bond=keep)
    assert out.charges == psi.charges and conserves(out)
    assert out.bond_dims == plain.bond_dims
    exact = (H @ psi).to_plain()
    error = float(tn.distance(out.to_plain(), exact))
    assert error <= out.report.abs_error_bound * (1 + 1e-6) + 1e-10 * float(exact.norm())
    assert np.isclose(
        out.report.rel_error_bound, plain.report.rel_error_bound, rtol=1e-4, atol=1e-7
    )


def test_density_application_cut_between_degenerate_charges_stays_in_the_sector():
    H = tn.models.heisenberg(16, conserve="Sz")
    start = tn.MPS.random([2] * 16, 16, conserve="Sz", sector=(0,), seed=0)
    state = tn.dmrg(H, max_bond=24, init=start, sweeps=3).state
    out = tn.apply(H, state, method="density", max_bond=10)
    assert conserves(out)
    assert set(out.singular_values(7, by_charge=True)) <= {-6, -4, -2, 0, 2, 4, 6}


def test_density_application_to_an_operator_by_charge():
    H = tn.models.hubbard(6, U=4.0, conserve=("N", "Sz"))
    out = tn.apply(H, H, method="density", max_bond=20)
    plain = tn.apply(H.to_plain(), H.to_plain(), method="density", max_bond=20)
    assert conserves(out) and out.bond_dims == plain.bond_dims
    error = float(tn.distance(out.to_plain(), (H @ H).to_plain()))
    assert error <= out.report.abs_error_bound * (1 + 1e-6) + 1e-12 * float((H @ H).norm())


@pytest.mark.parametrize("method", ["zipup", "fit", "exact"])
def test_other_application_methods_keep_the_blocks(method):
    """zip-up and fit leave rounding outside the blocks, which is zeroed; exact compresses
    by charge."""
    H = tn.models.heisenberg(12, conserve="Sz")
    psi = tn.MPS.random([2] * 12, 16, conserve="Sz", sector=(0,), seed=0)
    out = tn.apply(H, psi, method=method, max_bond=8)
    plain = tn.apply(H.to_plain(), psi.to_plain(), method=method, max_bond=8)
    assert out.charges == psi.charges and conserves(out)
    assert close(out, plain, rtol=1e-10)


@pytest.mark.parametrize("method", ["zipup", "fit"])
def test_zipup_and_fit_cut_between_degenerate_charges_stay_in_the_sector(method):
    """On a ground state with degenerate Schmidt values in ±q, the dense SVDs of zip-up and
    fit rotate charges together, and a cut between them leaks ~1e-10 of the weight out of
    the sector; the result is projected back onto it by charge block, which only brings it
    closer to H·ψ: it conserves exactly, keeps its bound, and its bonds are at most the
    plain path's."""
    H = tn.models.heisenberg(12, conserve="Sz")
    start = tn.MPS.random([2] * 12, 16, conserve="Sz", sector=(0,), seed=0)
    state = tn.dmrg(H, max_bond=24, init=start, sweeps=3).state
    exact = (H @ state).to_plain()
    for bond in (6, 8, 10):
        out = tn.apply(H, state, method=method, max_bond=bond)
        plain = tn.apply(H.to_plain(), state.to_plain(), method=method, max_bond=bond)
        assert conserves(out) and out.charges == state.charges and out.centre == plain.centre
        assert all(a <= b for a, b in zip(out.bond_dims, plain.bond_dims, strict=True))
        assert float(tn.distance(out.to_plain(), exact)) <= out.report.abs_error_bound * (1 + 1e-9)
        assert close(out, plain, rtol=1e-7)


@pytest.mark.parametrize("method", ["zipup", "fit"])
def test_zipup_and_fit_of_operators_keep_the_blocks(method):
    """H·H of the Hubbard chain: degenerate values across charges at most cuts. The result
    is projected onto the neutral sector as the state of its fused legs and cut by charge
    block: it conserves, its bound holds, and its error stays close to the dense one's
    (a conserving result keeps or drops whole charge-definite vectors)."""
    H = tn.models.hubbard(8, U=4.0, conserve=("N", "Sz"))
    exact = (H @ H).to_plain()
    for bond in (4, 8, 12):
        out = tn.apply(H, H, method=method, max_bond=bond)
        plain = tn.apply(H.to_plain(), H.to_plain(), method=method, max_bond=bond)
        assert conserves(out) and out.charges == H.charges and out.bond_dims == plain.bond_dims
        error = float(tn.distance(out.to_plain(), exact))
        assert error <= out.report.abs_error_bound * (1 + 1e-9)
        assert error <= 1.05 * float(tn.distance(plain, exact))


@pytest.mark.parametrize("bond", [8, 64])
def test_charged_sweeps_beyond_the_float_range_stay_exact_and_by_charge(bond):
    """Cores of 1e3 on 120 sites (norm ~1e360 and more): the svd compression hands over to
    the rescaled sweep by charge block, ``method="rescaled"`` runs by charge block too, and
    canonical forms keep the whole scale; every result conserves exactly (holds its
    blocks) and matches the plain path's log-norm and bound."""
    seed_state = tn.MPS.random([2] * 120, bond, conserve="Sz", sector=0, seed=4)
    huge = tn.MPS([np.array(c) * 1e3 for c in seed_state.cores]).with_charges("Sz")
    assert huge._held is not None and not np.isfinite(huge.norm())
    plain = huge.to_plain()
    for method in ("svd", "rescaled"):
        out = huge.compress(max_bond=bond // 2, method=method)
        ref = plain.compress(max_bond=bond // 2, method="rescaled")
        assert out.report.method == "rescaled/charges" and out._held is not None
        assert np.isclose(out.log_norm(), ref.log_norm(), rtol=1e-12)
        assert np.isclose(out.report.rel_error_bound, ref.report.rel_error_bound, rtol=1e-6)
        assert out.is_canonical(0) and out.scale_exponent != 0
    for centre in (0, 119):
        c = huge.canonicalize(centre)
        assert c._held is not None and c.is_canonical(centre)
        assert np.isclose(c.log_norm(), huge.log_norm(), rtol=1e-12)


@pytest.mark.parametrize("method", ["parker", "deparallelise", "delinearise", "rescaled"])
@pytest.mark.parametrize("power", [2, 3])
@pytest.mark.parametrize("max_bond", [None, 6])
def test_every_compression_of_a_charged_operator_conserves(method, power, max_bond):
    """Powers of charged Hamiltonians, whose intensive blocks have degenerate values across
    charges: every method's result conserves exactly (Parker's factorisations mix charges,
    and a truncated Parker result even leaves the sector by ~8 %: it is projected back and
    cut by charge block), and its error stays within its bound and within rounding of the
    plain path's, never far above it."""
    if max_bond is not None and method in ("deparallelise", "delinearise"):
        pytest.skip("exact methods take no max_bond")
    for H in (
        tn.models.heisenberg(8, conserve="Sz"),
        tn.models.hubbard(6, U=4.0, conserve=("N", "Sz")),
    ):
        source = H
        for _ in range(power - 1):
            source = source @ H
        reference = source.to_plain()
        out = source.compress(method=method, max_bond=max_bond)
        plain = reference.compress(method=method, max_bond=max_bond)
        assert conserves(out) and out.charges == H.charges
        norm = float(reference.norm())
        error = float(tn.distance(out.to_plain(), reference))
        assert error <= out.report.abs_error_bound * (1 + 1e-9) + 1e-13 * norm
        assert error <= 1.05 * float(tn.distance(plain, reference)) + 1e-13 * norm


@pytest.mark.parametrize("charged", [True, False])
@pytest.mark.parametrize("factor", [1e-170, 1e170])
@pytest.mark.parametrize("request_", [{"rtol": 0.05}, {"max_bond": 4}])
def test_compress_hands_over_before_squared_weights_leave_the_range(charged, factor, request_):
    """A train whose norm's square under- or overflows (cores of 1e-170): the svd sweep's
    discarded weights would round to zero and a report of bound 0 would hide a cut of 90 %
    of the state. The sweep hands over to the rescaled one, by charge block for a charged
    train, and the bound holds."""
    psi = tn.MPS.random([2] * 10, 16, conserve="Sz", sector=(0,), seed=1)
    x = (psi if charged else tn.MPS([np.array(c) for c in psi.cores])) * factor
    out = x.compress(**request_)
    assert out.report.method.startswith("rescaled")
    assert out.report.method.endswith("charges") == charged
    error = float(tn.distance(out.to_plain(), x.to_plain())) / float(x.norm())
    assert error <= out.report.rel_error_bound * (1 + 1e-9) + 1e-12
    assert out.report.tolerance_met and 0 < out.report.rel_error_bound < 1


@pytest.mark.parametrize("dtype", ["float32", "complex128"])
@pytest.mark.parametrize("scale_exponent", [0, -1100, 1100])
def test_projected_results_keep_dtype_scale_and_a_true_relative_bound(dtype, scale_exponent):
    """The projection back onto the sector keeps the dtype and the exact scale, and its
    relative bound is computed without the (saturating) absolute norms."""
    H = tn.models.hubbard(8, U=4.0, conserve=("N", "Sz"))
    square = H @ H
    cast = tn.MPO([np.asarray(c).astype(dtype) for c in square.cores])
    source = cast.with_charges(("N", "Sz"), site="electron")
    half = scale_exponent // 2
    scaled = source * 2.0**half * 2.0 ** (scale_exponent - half)
    out = scaled.compress(method="parker", max_bond=6)
    assert out.dtype == source.dtype and conserves(out)
    assert out.report.method == "parker+charges" and out.scale_exponent - scale_exponent in range(
        -64, 65
    )
    mantissa = out * 2.0**-half * 2.0 ** (half - scale_exponent)  # unscaled again, exactly
    error = float(tn.distance(mantissa.to_plain(), source.to_plain())) / float(source.norm())
    slack = 1e-5 if dtype == "float32" else 1e-12
    assert error <= out.report.rel_error_bound * (1 + 1e-6) + slack
    assert 0.1 < out.report.rel_error_bound < 0.5
