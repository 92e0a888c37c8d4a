"""Abelian symmetries, first part: sites with charges, conserving OpSums and models whose MPO
channels each carry one charge, product states and their sectors (issue 19, items 1–2)."""

from __future__ import annotations

import pickle
from functools import reduce

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tnkit as tn
from tnkit.operators import Charges, bond_charges, local_charges, sector, site_charges
from tnkit.sites import local_operators

# (site type, conserve) pairs: every named charge and the usual product
CASES = [
    ("spin-half", "Sz"),
    ("spin-half", "parity"),
    ("spin-one", "Sz"),
    ("fermion", "N"),
    ("fermion", "parity"),
    ("electron", "N"),
    ("electron", "Sz"),
    ("electron", ("N", "Sz")),
    ("electron", "parity"),
]
CLOCK = Charges([0, 1, 2], moduli=3, names="Z3")  # a user-defined Z_3 site
SHIFT = np.eye(3, k=-1) + np.eye(3, k=2)  # |k> -> |k+1 mod 3>, charge 1
CLOCK_OPS = {
    "X": SHIFT,
    "Xdag": SHIFT.T.copy(),
    "Z": np.diag(np.exp(2j * np.pi * np.arange(3) / 3)),
}

FAST = settings(max_examples=25, deadline=None)


def _charged_ops(site, conserve):
    """{name: charge} of the named operators that have a charge."""
    if site == "clock":
        return {name: CLOCK.of(m) for name, m in CLOCK_OPS.items()}
    return {n: q for n, q in local_charges(site, conserve).items() if q is not None}


def _opsum(site, conserve, L):
    if site == "clock":
        return tn.OpSum(L, site=[3] * L, conserve=CLOCK), CLOCK, CLOCK_OPS
    return tn.OpSum(L, site=site, conserve=conserve), site_charges(site, conserve), None


@st.composite
def conserving_sums(draw):
    """A random OpSum of charge-conserving terms: random named factors, completed by a
    factor of the opposite charge (terms that cannot be completed are left out)."""
    site, conserve = draw(st.sampled_from([*CASES, ("clock", None)]))
    L = draw(st.integers(2, 5))
    ops, charges, arrays = _opsum(site, conserve, L)
    named = _charged_ops(site, conserve)
    names = sorted(named)
    for _ in range(draw(st.integers(1, 6))):
        factors = draw(
            st.lists(
                st.tuples(st.sampled_from(names), st.integers(0, L - 1)), min_size=1, max_size=3
            )
        )
        total = charges.reduce(np.sum([named[n] for n, _ in factors], axis=0))
        closing = [
            n for n in names if np.array_equal(charges.reduce(total + named[n]), charges.zero)
        ]
        if any(total):
            if not closing:
                continue
            factors.append((draw(st.sampled_from(closing)), draw(st.integers(0, L - 1))))
        coef = draw(st.sampled_from([1.0, -0.5, 2.0, 0.5j]))
        args = [x for name, k in factors for x in ((arrays[name] if arrays else name), k)]
        ops.add(coef, *args)
    return ops, charges


def _check_blocks(H, charges, bonds):
    """Every nonzero entry of every core: left charge + Q(out) − Q(in) = right charge."""
    zero = np.array([charges.zero])
    legs = [zero, *bonds, zero]
    for k, core in enumerate(H.cores):
        a, out, in_, b = np.nonzero(np.asarray(core))
        flow = charges.reduce(legs[k][a] + charges.values[out] - charges.values[in_])
        assert np.array_equal(flow, legs[k + 1][b]), f"core {k} breaks the charges"


@FAST
@given(conserving_sums())
def test_conserving_sums_have_charged_channels(case):
    ops, charges = case
    H = ops.to_mpo()
    bonds = bond_charges(
        H,
        site=ops.site if isinstance(ops.site, str) else None,
        conserve=ops.charges if not isinstance(ops.site, str) else charges,
    )
    assert [len(q) for q in bonds] == list(H.bond_dims)
    _check_blocks(H, charges, bonds)
    plain = tn.OpSum(ops.L, site=ops.site)
    for coef, factors in ops.terms:
        plain.add(coef, *[x for pair in factors for x in pair])
    reference = plain.to_mpo()
    assert H.bond_dims == reference.bond_dims
    np.testing.assert_allclose(H.to_matrix(), reference.to_matrix(), atol=1e-12)


def _total_charge_diagonal(charges, L, component=0):
    """The diagonal of Σ_i Q_i on L sites (U(1) component)."""
    values = charges.values[:, component].astype(float)
    ones = np.ones(charges.dim)
    return sum(reduce(np.kron, [values if j == i else ones for j in range(L)]) for i in range(L))


@pytest.mark.parametrize(
    "build, site, conserve",
    [
        (lambda c: tn.models.heisenberg(5, J=0.7, Jz=1.3, h=0.4, conserve=c), "spin-half", "Sz"),
        (lambda c: tn.models.heisenberg(5, h=0.2, conserve=c), "spin-half", "parity"),
        (lambda c: tn.models.heisenberg_cylinder(2, 3, h=0.1, conserve=c), "spin-half", "Sz"),
        (lambda c: tn.models.hubbard(4, t=1.0, U=8.0, mu=0.3, conserve=c), "electron", ("N", "Sz")),
        (lambda c: tn.models.hubbard(3, U=2.0, conserve=c), "electron", "parity"),
        (lambda c: tn.models.hubbard_cylinder(2, 2, U=4.0, conserve=c), "electron", "N"),
        (lambda c: tn.models.ising(5, J=1.0, g=0.0, conserve=c), "spin-half", "Sz"),
    ],
)
def test_models_with_conserve_equal_the_plain_models(build, site, conserve):
    H, plain = build(conserve), build(None)
    assert H.bond_dims == plain.bond_dims
    np.testing.assert_allclose(H.to_matrix(), plain.to_matrix(), atol=1e-12)
    charges = site_charges(site, conserve)
    bonds = bond_charges(H, site=site, conserve=conserve)
    _check_blocks(H, charges, bonds)
    if charges.moduli[0] == 0:  # the dense oracle: H commutes with the total charge
        q = _total_charge_diagonal(charges, len(H))
        W = H.to_matrix()
        np.testing.assert_allclose(q[:, None] * W - W * q[None, :], 0, atol=1e-12)


def test_heisenberg_bonds_carry_the_spin_flip_charges():
    bonds = bond_charges(tn.models.heisenberg(6, conserve="Sz"), conserve="Sz")
    assert sorted(bonds[2][:, 0].tolist()) == [-2, 0, 0, 0, 2]  # S-, S+ and three neutral ones


@pytest.mark.parametrize("conserve", ["Sz", "parity"])
def test_ising_field_breaks_the_declared_symmetry(conserve):
    with pytest.raises(ValueError, match="conserve: the transverse field"):
        tn.models.ising(4, J=1.0, g=0.5, conserve=conserve)


def test_rotated_ising_conserves_parity():
    """−J Σ σxσx − g Σ σz: the Ising chain in the basis where its Z_2 is diagonal."""
    L, J, g = 5, 1.0, 0.7
    ops = tn.OpSum(L, conserve="parity")
    for i in range(L - 1):
        ops.add(-4 * J, "Sx", i, "Sx", i + 1)
    for i in range(L):
        ops.add(-2 * g, "Sz", i)
    H = ops.to_mpo()
    _check_blocks(H, site_charges("spin-half", "parity"), bond_charges(H, conserve="parity"))
    energies = np.linalg.eigvalsh(H.to_matrix())
    plain = np.linalg.eigvalsh(tn.models.ising(L, J=J, g=g).to_matrix())
    np.testing.assert_allclose(energies, plain, atol=1e-10)


# ---------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "site, conserve, factors",
    [
        ("spin-half", "Sz", ("S+", 0)),
        ("spin-half", "Sz", ("S+", 0, "S+", 1)),
        ("spin-half", "parity", ("Sx", 1)),
        ("spin-one", "Sz", ("S+", 0, "Sz", 1)),
        ("fermion", "N", ("Cdag", 0, "Cdag", 1)),
        ("fermion", "parity", ("C", 1)),
        ("electron", ("N", "Sz"), ("Cdagup", 0, "Cdn", 1)),  # conserves N, not Sz
        ("electron", "N", ("S+", 0, "Cup", 1)),
    ],
)
def test_symmetry_breaking_terms_are_refused(site, conserve, factors):
    ops = tn.OpSum(3, site=site, conserve=conserve)
    with pytest.raises(ValueError, match=r"factors: the term .* breaks conserve"):
        ops.add(1.0, *factors)
    assert len(ops) == 0


def test_operators_without_a_charge_are_refused():
    with pytest.raises(ValueError, match="op 'Sx' on site 0: mixes charge changes"):
        tn.OpSum(2, conserve="Sz").add(1.0, "Sx", 0, "Sx", 1)
    with pytest.raises(ValueError, match=r"op \(an array\) on site 1"):
        tn.OpSum(2, conserve="Sz").add(1.0, np.array([[1.0, 1.0], [0.0, 1.0]]), 1)
    ops = tn.OpSum(2, conserve="Sz").add(1.0, np.diag([2.0, 3.0]), 1)  # charge 0: accepted
    with pytest.raises(ValueError, match="factors"):  # refused by its charge, whatever its coef
        ops.add(0.0, "S+", 0)
    assert len(ops) == 1


def test_zero_factor_makes_a_conserving_term():
    ops = tn.OpSum(2, conserve="Sz").add(1.0, np.zeros((2, 2)), 0, "S+", 1)
    assert len(ops) == 1
    assert not ops.to_mpo().to_matrix().any()


def test_conserve_must_match_to_combine():
    a, b = tn.OpSum(3, conserve="Sz"), tn.OpSum(3)
    with pytest.raises(ValueError, match="other"):
        a + b
    assert len((a + tn.OpSum(3, conserve="Sz")).add(1.0, "Sz", 0)) == 1
    assert "conserve='Sz'" in repr(a)


@pytest.mark.parametrize(
    "site, conserve",
    [
        ("spin-half", "N"),
        ("spin-one", "parity"),
        ("electron", ("N", "N")),
        ("electron", ()),
        ("fermion", 3),
        ("spin-half", Charges([0, 1, 2])),
        ([2, 2, 2], "Sz"),
        ([2, 2, 2], [Charges([0, 1])] * 2),
        ([2, 3, 2], Charges([0, 1])),
        ([2, 2, 2], [Charges([0, 1]), Charges([0, 1], moduli=2), Charges([0, 1])]),
    ],
)
def test_bad_conserve_is_a_value_error_naming_it(site, conserve):
    with pytest.raises(ValueError, match="conserve"):
        tn.OpSum(3, site=site, conserve=conserve)


def test_bond_charges_refuses_non_conserving_operators():
    with pytest.raises(ValueError, match="o: core"):
        bond_charges(tn.models.ising(4, g=0.5), conserve="Sz")
    with pytest.raises(ValueError, match="total charge"):
        bond_charges(tn.OpSum(3).add(1.0, "S+", 1).to_mpo(), conserve="Sz")
    with pytest.raises(ValueError, match="conserve"):
        bond_charges(tn.models.heisenberg(3), conserve=None)
    with pytest.raises(ValueError, match="site"):
        bond_charges(tn.models.heisenberg(3), site="electron", conserve="N")
    with pytest.raises(TypeError, match="o"):
        bond_charges(tn.MPS.random([2, 2], 2), conserve="Sz")


# ---------------------------------------------------------------------- charges


def test_local_charges_come_from_the_matrices():
    spin = local_charges("spin-half", "Sz")
    assert spin == {"Id": (0,), "Sx": None, "Sy": None, "Sz": (0,), "S+": (2,), "S-": (-2,)}
    assert local_charges("spin-one", "Sz")["S-"] == (-2,)
    electron = local_charges("electron", ("N", "Sz"))
    assert electron["Cdagup"] == (1, 1) and electron["Cdn"] == (-1, 1)
    assert electron["S+"] == (0, 2) and electron["F"] == (0, 0)
    assert local_charges("electron", "parity")["Cup"] == (1,)  # −1 ≡ 1 mod 2
    assert local_charges("spin-half", "parity")["Sx"] == (1,)
    for site, conserve in CASES:  # the charge of every operator, from its entries
        charges = site_charges(site, conserve)
        for name, matrix in local_operators(site).items():
            q = local_charges(site, conserve)[name]
            out, in_ = np.nonzero(matrix)
            steps = {tuple(x) for x in charges.reduce(charges.values[out] - charges.values[in_])}
            assert (steps == {q}) if q is not None else len(steps) > 1, (site, name)


def test_charges_value_semantics():
    q = Charges([[0, 1], [1, 0], [2, 1]], moduli=[0, 2], names=("N", "P"))
    assert q.values.tolist() == [[0, 1], [1, 0], [2, 1]] and q.groups == ("U(1)", "Z2")
    assert q == Charges(np.array([[0, 3], [1, 0], [2, -1]]), moduli=(0, 2), names=["N", "P"])
    assert hash(q) == hash(pickle.loads(pickle.dumps(q))) and pickle.loads(pickle.dumps(q)) == q
    assert q != Charges([[0, 1], [1, 0], [2, 1]], moduli=[0, 2])
    with pytest.raises(AttributeError):
        q.names = ("a", "b")
    with pytest.raises(ValueError):
        q.values[0, 0] = 5
    assert "moduli=(0, 2)" in repr(q)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"values": [0.5, 1.0]}, TypeError, "values"),
        ({"values": []}, TypeError, "values"),
        ({"values": np.zeros((2, 2, 2), dtype=int)}, ValueError, "values"),
        ({"values": [0, 1], "moduli": 1}, ValueError, "moduli"),
        ({"values": [0, 1], "moduli": [0, 2]}, ValueError, "moduli"),
        ({"values": [[0, 1], [1, 0]], "names": ("a", "a")}, ValueError, "names"),
        ({"values": [0, 1], "names": ""}, ValueError, "names"),
    ],
)
def test_bad_charges_name_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=name):
        Charges(**kwargs)


def test_operator_charge_is_exact_and_checked():
    q = Charges([1, -1])
    assert q.of(np.zeros((2, 2))) is None
    with pytest.raises(ValueError, match="op: shape"):
        q.of(np.eye(3))
    with pytest.raises(ValueError, match="mixes"):
        q.of(np.array([[0.0, 1.0], [1e-300, 0.0]]))


# ---------------------------------------------------------------------- product states

LABELLED = {
    "spin-half": ["up", "dn"],
    "spin-one": ["+1", "0", "-1"],
    "fermion": ["0", "1"],
    "electron": ["0", "up", "dn", "updn", "ud"],
}
UD = {"ud": 3}


@st.composite
def product_states(draw):
    site = draw(st.sampled_from(sorted(LABELLED)))
    labels = LABELLED[site]
    d = len(local_operators(site)["Id"])
    states = draw(
        st.lists(st.one_of(st.sampled_from(labels), st.integers(0, d - 1)), min_size=1, max_size=6)
    )
    return site, states


def _index(site, state):
    if isinstance(state, int):
        return state
    return UD.get(state, LABELLED[site].index(state))


@FAST
@given(product_states())
def test_product_state_round_trip_and_sector(case):
    site, states = case
    m = tn.MPS.product_state(states, site=site)
    d = len(local_operators(site)["Id"])
    basis = [np.eye(d)[_index(site, s)] for s in states]
    np.testing.assert_array_equal(m.to_dense().reshape(-1), reduce(np.kron, basis))
    assert m.bond_dims == (1,) * (len(states) - 1) and m.is_canonical(0)
    for s, conserve in CASES:
        if s != site:
            continue
        charges = site_charges(site, conserve)
        m_c = tn.MPS.product_state(states, site=site, conserve=conserve)
        np.testing.assert_array_equal(m_c.to_dense(), m.to_dense())
        got = sector(states, site, conserve=conserve)
        for c, modulus in enumerate(charges.moduli):  # the oracle: ⟨Σ Q_i⟩ of the dense state
            total = _total_charge_diagonal(charges, len(states), c) @ (
                m.to_dense().reshape(-1) ** 2
            )
            assert got[c] == (round(total) % modulus if modulus else round(total))


def test_product_state_on_user_sites_and_backends():
    m = tn.MPS.product_state([2, 0, 1], site=[3, 3, 3], conserve=CLOCK, dtype="complex64")
    assert m.dtype == np.complex64 and m.phys_dims == (3, 3, 3)
    assert sector([2, 0, 1], [3, 3, 3], conserve=CLOCK) == (0,)
    assert sector([2, 2], [3, 3], conserve=[CLOCK, CLOCK]) == (1,)
    neel = tn.MPS.product_state([0, 1, 0, 1])
    assert np.isclose(float(tn.expectation(neel, tn.models.heisenberg(4))), -0.75)
    torch = pytest.importorskip("torch")
    t = tn.MPS.product_state(["up", "dn"], like=torch.zeros(1))
    assert isinstance(t.cores[0], torch.Tensor)


@pytest.mark.parametrize(
    "states, kwargs, error, name",
    [
        (["up", "down"], {}, ValueError, "states: unknown label 'down'"),
        ([0, 2], {}, ValueError, "states: index 2"),
        (["up", 1.5], {}, TypeError, "states"),
        ("updn", {"site": "electron"}, TypeError, "states"),
        ([], {}, ValueError, "states"),
        (
            ["0", "1"],
            {"site": "electron", "conserve": "N"},
            ValueError,
            "states: unknown label '1'",
        ),
        ([0, 1], {"site": "bogus"}, ValueError, "site"),
        ([0, 1], {"site": [2]}, ValueError, "site"),
        (["up"], {"site": [2]}, ValueError, "states: unknown label"),
        ([0, 1], {"conserve": "N"}, ValueError, "conserve"),
        ([0, 1], {"site": [2, 2], "conserve": "Sz"}, ValueError, "conserve"),
        ([0, 1], {"dtype": "int8"}, TypeError, "dtype"),
    ],
)
def test_product_state_bad_input_names_the_parameter(states, kwargs, error, name):
    with pytest.raises(error, match=name):
        tn.MPS.product_state(states, **kwargs)


def test_sector_needs_charges():
    with pytest.raises(ValueError, match="conserve"):
        sector(["up"], conserve=None)
