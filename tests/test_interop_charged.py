"""tnkit.interop with TeNPy's charges: trains that declare charges become TeNPy MPS on
charge-conserving sites (np_conserved arrays), and TeNPy MPS with charges come back with them.

Every check compares with code that is not the converter's: TeNPy's own densification
(``get_theta``), expectation values and correlations (``expectation_value``,
``correlation_function``), TeNPy's product states, and tnkit's named charges, sectors and
measurements. Basis states are matched by TeNPy's own state labels.
"""

from __future__ import annotations

import numpy as np
import pytest

import tnkit as tn
from tnkit import interop
from tnkit.sectors import resolve_charges
from tnkit.symmetry import Charges, sector, site_charges

npc = pytest.importorskip("tenpy.linalg.np_conserved")
MPS = pytest.importorskip("tenpy.networks.mps").MPS
_sites = pytest.importorskip("tenpy.networks.site")
FermionSite = _sites.FermionSite
Site = _sites.Site
SpinHalfFermionSite = _sites.SpinHalfFermionSite
SpinHalfSite = _sites.SpinHalfSite
SpinSite = _sites.SpinSite
set_common_charges = _sites.set_common_charges

Z3 = Charges([0, 1, 2], moduli=3, names="Z3")

# tnkit's label -> TeNPy's state label of the same physical state, per site type
TENPY_LABELS = {
    "spin-half": {"up": "up", "dn": "down"},
    "spin-one": {"+1": "1.0", "0": "0.0", "-1": "-1.0"},
    "fermion": {"0": "empty", "1": "full"},
    "electron": {"0": "empty", "up": "up", "dn": "down", "updn": "full"},
}

# (site type or dims, conserve, sector, dims, TeNPy site class, its ChargeInfo names)
CASES = {
    "spin-half Sz": ("spin-half", "Sz", (2,), [2] * 6, SpinHalfSite, ["2*Sz"]),
    "spin-half parity": ("spin-half", "parity", (1,), [2] * 6, SpinHalfSite, ["parity_Sz"]),
    "spin-one Sz": ("spin-one", "Sz", (-2,), [3] * 5, SpinSite, ["2*Sz"]),
    "fermion N": ("fermion", "N", (3,), [2] * 6, FermionSite, ["N"]),
    "electron N Sz": ("electron", ("N", "Sz"), (4, 2), [4] * 4, SpinHalfFermionSite, ["N", "2*Sz"]),
    "electron parity": ("electron", "parity", (1,), [4] * 4, SpinHalfFermionSite, ["parity_N"]),
    "Z3": (None, Z3, (1,), [3] * 5, Site, ["Z3"]),
}


def _random(case, *, seed=0, dtype="float64", max_bond=6):
    site, conserve, target, dims, _, _ = CASES[case]
    return tn.MPS.random(
        dims,
        max_bond,
        site=dims if site is None else site,
        conserve=conserve,
        sector=target,
        seed=seed,
        dtype=dtype,
    )


def _stored_index(site, site_type, k):
    """TeNPy's stored (sorted) index of tnkit's basis state k of ``site_type`` (by label)."""
    if site_type is None:
        return int(np.argsort(site.perm)[k])
    label = tn.symmetry.SITE_BASES[site_type][k]
    return site.state_labels[TENPY_LABELS[site_type][label]]


def _tenpy_dense(psi, site_type):
    """TeNPy's own densification (``get_theta`` times ``norm``) in tnkit's basis."""
    theta = psi.get_theta(0, n=psi.L).to_ndarray() * psi.norm
    theta = theta.reshape(theta.shape[1:-1])
    for k, site in enumerate(psi.sites):
        order = [_stored_index(site, site_type, i) for i in range(site.dim)]
        theta = np.take(theta, order, axis=k)
    return theta


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    return np.linalg.norm(a - b) <= tol * max(np.linalg.norm(b), 1.0)


def _sector_of(m):
    return resolve_charges([np.asarray(c) for c in m.canonicalize(0).cores], m.charges).sector


# ============================================================================ tnkit -> TeNPy


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_round_trip_keeps_state_and_charges(case, dtype):
    m = 2.5 * _random(case, dtype=dtype)
    psi = interop.to_tenpy(m)
    psi.test_sanity()
    site_type, _, _, _, cls, names = CASES[case]
    assert all(type(s) is cls for s in psi.sites)
    assert list(psi.chinfo.names) == names
    assert np.isclose(psi.norm, m.norm(), rtol=1e-13)
    assert _close(_tenpy_dense(psi, site_type), m.to_dense())
    back = interop.from_tenpy(psi)
    assert back.charges == m.charges
    assert back.dtype == np.dtype(dtype)
    assert _close(back.to_dense(), m.to_dense())
    assert _sector_of(back) == CASES[case][2]


@pytest.mark.parametrize("case", list(CASES))
def test_arrays_are_block_sparse_with_tenpy_legs(case):
    m = _random(case, seed=1)
    psi = interop.to_tenpy(m)
    assert psi.form == [(0.0, 1.0)] * psi.L  # TeNPy's 'B' form
    blocks = 0
    for k in range(psi.L):
        b = psi.get_B(k)
        assert isinstance(b, npc.Array)
        assert b.get_leg_labels() == ["vL", "p", "vR"]
        assert b.get_leg("vL").qconj == 1 and b.get_leg("vR").qconj == -1
        assert b.get_leg("p") is psi.sites[k].leg
        assert not np.any(b.qtotal)
        blocks += b.stored_blocks
        if k:
            psi.get_B(k - 1).get_leg("vR").test_contractible(b.get_leg("vL"))
    assert blocks > psi.L  # more than one charge block per site: charges are used
    assert not np.any(psi.get_B(0).get_leg("vL").to_qflat())  # total charge on the right
    # TeNPy's Schmidt values are the state's
    for bond in range(1, psi.L):
        ref = m.singular_values(bond - 1) / m.norm()
        ref = ref[ref > 1e-12]
        assert _close(np.sort(psi.get_SL(bond))[::-1], ref)


@pytest.mark.parametrize(
    ("case", "op", "tenpy_op"),
    [
        ("spin-half Sz", "Sz", "Sz"),
        ("spin-half parity", "Sz", "Sz"),
        ("spin-one Sz", "Sz", "Sz"),
        ("fermion N", "N", "N"),
        ("electron N Sz", "Sz", "Sz"),
        ("electron N Sz", "Nup", "Nu"),
        ("electron parity", "NupNdn", "NuNd"),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_tenpy_expectation_values_match(case, op, tenpy_op, seed):
    """A random state of a sector: TeNPy's ⟨op⟩ of a diagonal operator is tnkit's."""
    m = 0.3 * _random(case, seed=seed)
    psi = interop.to_tenpy(m)
    site_type = CASES[case][0]
    ref = [
        float(np.real(tn.local_expectation(m, op, k, normalize=True, site_type=site_type)))
        for k in range(len(m))
    ]
    assert _close(psi.expectation_value(tenpy_op), ref)


def test_tenpy_expectation_value_on_a_user_site():
    m = _random("Z3", seed=2)
    psi = interop.to_tenpy(m)
    site = psi.sites[0]
    assert all(s is site for s in psi.sites)  # one Site per distinct Charges
    clock = np.diag([0.0, 1.0, 2.0])  # the Z3 charge, diagonal: in the stored order
    site.add_op("Q", clock[np.ix_(site.perm, site.perm)])
    ref = [float(np.real(tn.local_expectation(m, clock, k, normalize=True))) for k in range(len(m))]
    assert _close(psi.expectation_value("Q"), ref)


@pytest.mark.parametrize(
    ("case", "ops", "tenpy_ops"),
    [
        ("spin-one Sz", ("S+", "S-"), ("Sp", "Sm")),
        ("fermion N", ("Cdag", "C"), ("Cd", "C")),
        ("electron N Sz", ("Cdagup", "Cup"), ("Cdu", "Cu")),
        ("electron N Sz", ("Cdagdn", "Cdn"), ("Cdd", "Cd")),
        ("electron N Sz", ("S+", "S-"), ("Sp", "Sm")),
    ],
)
def test_tenpy_correlations_match(case, ops, tenpy_ops):
    """Off-diagonal operators (Jordan–Wigner strings included) see the same basis."""
    m = _random(case, seed=3)
    psi = interop.to_tenpy(m)
    site_type = CASES[case][0]
    got = psi.correlation_function(*tenpy_ops)
    for i in range(len(m)):
        for j in range(i + 1, len(m)):
            value = tn.correlation(m, ops[0], i, ops[1], j, normalize=True, site_type=site_type)
            assert abs(got[i, j] - complex(value)) < 1e-12, (i, j)


def test_single_site_and_product_states():
    one = tn.MPS.product_state(["dn"], conserve="Sz")
    psi = interop.to_tenpy(one)
    psi.test_sanity()
    assert psi.expectation_value("Sz").tolist() == [-0.5]
    neel = tn.MPS.product_state(["up", "dn"] * 3, conserve="Sz")
    psi = interop.to_tenpy(neel)
    ref = MPS.from_product_state([SpinHalfSite("Sz")] * 6, ["up", "down"] * 3, unit_cell_width=6)
    assert abs(psi.overlap(ref) - 1) < 1e-14
    assert interop.from_tenpy(psi).charges == neel.charges


def test_given_sites():
    """Fermion parity has the Charges of spin-half parity (SpinHalfSite by default): pass
    FermionSite sites. Named sites given for a train with their charges get tnkit's basis."""
    m = _random("fermion N", seed=4).with_charges("parity", site="fermion")
    assert type(interop.to_tenpy(m).sites[0]) is SpinHalfSite
    psi = interop.to_tenpy(m, sites=[FermionSite("parity")] * len(m))
    assert list(psi.chinfo.names) == ["parity_N"]
    assert _close(_tenpy_dense(psi, "fermion"), m.to_dense())
    back = interop.from_tenpy(psi)
    assert back.charges == m.charges and _close(back.to_dense(), m.to_dense())

    spin_one = _random("spin-one Sz", seed=4)
    psi = interop.to_tenpy(spin_one, sites=[SpinSite(S=1, conserve="Sz")] * len(spin_one))
    assert _close(_tenpy_dense(psi, "spin-one"), spin_one.to_dense())

    plain = tn.MPS.product_state(["up", "dn", "dn"])  # no charges: the sites' original basis
    psi = interop.to_tenpy(plain, sites=[SpinHalfSite("Sz")] * 3)
    assert psi.chinfo.qnumber == 1 and _close(_tenpy_dense(psi, "spin-half"), plain.to_dense())


def test_state_in_no_sector_is_refused():
    mixed = tn.MPS.random([2] * 4, 3, seed=0)
    with pytest.raises(ValueError, match=r"m: not in one sector of the TeNPy sites' charges"):
        interop.to_tenpy(mixed, sites=[SpinHalfSite("Sz")] * 4)
    with pytest.raises(ValueError, match="more than one total charge"):
        interop.to_tenpy(mixed.with_charges("Sz"))


def test_charges_without_a_tenpy_site_are_generic():
    """Components in another order than TeNPy's, or sites of different named types whose
    ChargeInfos differ, go to generic Sites with tnkit's names; the round trip keeps them."""
    m = tn.MPS.random([4] * 4, 4, site="electron", conserve=("Sz", "N"), sector=(0, 4), seed=5)
    psi = interop.to_tenpy(m)
    assert all(type(s) is Site for s in psi.sites)
    assert list(psi.chinfo.names) == ["2Sz", "N"]
    back = interop.from_tenpy(psi)
    assert back.charges == m.charges and _close(back.to_dense(), m.to_dense())

    mixed = [site_charges("spin-half", "Sz"), site_charges("spin-one", "Sz")] * 2
    m = tn.MPS.random([2, 3, 2, 3], 4, site=[2, 3, 2, 3], conserve=mixed, sector=(2,), seed=5)
    psi = interop.to_tenpy(m)  # both TeNPy sites have ChargeInfo '2*Sz': kept named
    assert [type(s) for s in psi.sites] == [SpinHalfSite, SpinSite] * 2
    back = interop.from_tenpy(psi)
    assert back.charges == m.charges and _close(back.to_dense(), m.to_dense())


# ============================================================================ TeNPy -> tnkit


PRODUCT_STATES = [
    (SpinHalfSite("Sz"), None, "Sz", ["up", "dn", "up", "up"]),
    (SpinHalfSite("parity"), None, "parity", ["up", "dn", "dn", "dn"]),
    (SpinSite(S=1, conserve="Sz"), "spin-one", "Sz", ["+1", "0", "-1", "+1"]),
    (FermionSite("N"), "fermion", "N", ["1", "0", "1", "1"]),
    (FermionSite("parity"), "fermion", "parity", ["1", "0", "1", "1"]),
    (SpinHalfFermionSite("N", "Sz"), "electron", ("N", "Sz"), ["up", "updn", "0", "dn"]),
    (SpinHalfFermionSite("N", None), "electron", "N", ["up", "updn", "0", "up"]),
    (SpinHalfFermionSite(None, "Sz"), "electron", "Sz", ["up", "updn", "0", "up"]),
    (SpinHalfFermionSite("parity", None), "electron", "parity", ["up", "updn", "0", "up"]),
    (SpinHalfFermionSite("parity", "Sz"), "electron", ("parity", "Sz"), ["up", "dn", "up", "0"]),
]


@pytest.mark.parametrize(("site", "site_type", "conserve", "labels"), PRODUCT_STATES)
def test_from_tenpy_product_state_charges_and_sector(site, site_type, conserve, labels):
    table = TENPY_LABELS[site_type or "spin-half"]
    psi = MPS.from_product_state(
        [site] * len(labels), [table[x] for x in labels], unit_cell_width=len(labels)
    )
    m = interop.from_tenpy(psi)
    ref = tn.MPS.product_state(labels, site=site_type, conserve=conserve)
    assert m.charges == ref.charges  # exactly tnkit's named charges
    np.testing.assert_array_equal(m.to_dense(), ref.to_dense())  # tnkit's basis order
    assert _sector_of(m) == sector(labels, site_type, conserve=conserve)
    # without permute: TeNPy's sorted basis, with the charges of its states
    raw = interop.from_tenpy(psi, permute=False)
    assert raw.charges[0].same_group(ref.charges[0])
    assert _sector_of(raw) == _sector_of(m)
    stored = tuple(site.state_labels[table[label]] for label in labels)
    assert raw.to_dense()[stored] == 1


@pytest.mark.parametrize(
    ("model", "site", "labels"),
    [
        (tn.models.heisenberg, SpinHalfSite("Sz"), ["up", "down"] * 3),
        (tn.models.hubbard, SpinHalfFermionSite("N", "Sz"), ["up", "down", "full", "empty"]),
    ],
)
def test_tenpy_state_meets_tnkit_model(model, site, labels):
    conserve = "Sz" if isinstance(site, SpinHalfSite) else ("N", "Sz")
    h = model(len(labels), conserve=conserve)
    psi = MPS.from_product_state([site] * len(labels), labels, unit_cell_width=len(labels))
    m = interop.from_tenpy(psi)
    assert h.charges == m.charges
    dense = m.to_dense().ravel()
    energy = np.vdot(dense, h.to_matrix() @ dense)
    assert np.isclose(tn.expectation(m, h), energy)


def test_tenpy_state_starts_tnkit_dmrg():
    neel = MPS.from_product_state([SpinHalfSite("Sz")] * 6, ["up", "down"] * 3, unit_cell_width=6)
    init = interop.from_tenpy(neel)
    h = tn.models.heisenberg(6, conserve="Sz")
    result = tn.dmrg(h, max_bond=8, init=init)
    exact = np.linalg.eigvalsh(h.to_matrix())
    assert abs(result.energy - exact[0]) < 1e-8  # the ground state is in 2Sz = 0
    assert result.state.charges == init.charges


def test_from_tenpy_user_and_combined_charges():
    """Sites outside the table keep TeNPy's charges: its names and moduli (mod 1 is U(1)),
    values read from the legs in the original basis."""
    chinfo = npc.ChargeInfo([3], ["Z3"])
    clock = Site(npc.LegCharge.from_qflat(chinfo, [[2], [0], [1]]))
    assert clock.perm.tolist() == [1, 2, 0]  # TeNPy sorts its basis by charge
    psi = MPS.from_product_state([clock] * 3, [0, 2, 2], unit_cell_width=3)  # original basis
    m = interop.from_tenpy(psi)
    assert m.charges == (Charges([2, 0, 1], moduli=3, names="Z3"),) * 3
    assert m.to_dense()[0, 2, 2] == 1
    assert _sector_of(m) == ((2 + 1 + 1) % 3,)

    spin, fermion = SpinHalfSite("Sz"), FermionSite("N")
    set_common_charges([spin, fermion], "independent")  # ChargeInfo ['2*Sz', 'N']
    psi = MPS.from_product_state(
        [spin, fermion] * 2, ["up", "full", "down", "full"], unit_cell_width=4
    )
    m = interop.from_tenpy(psi)
    assert m.charges[0] == Charges([[1, 0], [-1, 0]], names=("2*Sz", "N"))
    assert m.charges[1] == Charges([[0, 0], [0, 1]], names=("2*Sz", "N"))
    assert _sector_of(m) == (0, 2)
    again = interop.to_tenpy(m)
    assert abs(again.overlap(psi) - 1) < 1e-14


def test_plain_tenpy_state_stays_plain():
    psi = MPS.from_product_state([SpinHalfSite(None)] * 3, ["up"] * 3, unit_cell_width=3)
    assert interop.from_tenpy(psi).charges is None
    assert interop.to_tenpy(tn.MPS.random([2] * 3, 2, seed=0)).chinfo.qnumber == 0
