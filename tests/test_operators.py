"""OpSum and models: dense oracles written here with kron products, exact bond dimensions,
Jordan–Wigner signs, and bad input.

The oracles never use tnkit's operator tables: spins are built from Pauli matrices, fermions
as Fock-space mode operators (c_i = F⊗…⊗F⊗c⊗I⊗…), electrons as 2L spinless modes in the
order 0↑, 0↓, 1↑, … permuted into the site basis |0⟩, |↑⟩, |↓⟩, |↑↓⟩. The automaton's
bond dimensions are checked against a minimum vertex cover counted here with SciPy's
bipartite matching (König: cover size = matching size) on the raw cut graphs, and those of
to_mpo against the operator Schmidt ranks of the dense sum (SVD of every unfolding).
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tnkit as tn
from tnkit.operators import automaton, min_vertex_cover

# ====================================================================== dense oracles

PAULI = {
    "Id": np.eye(2),
    "X": np.array([[0.0, 1.0], [1.0, 0.0]]),
    "Y": np.array([[0.0, -1j], [1j, 0.0]]),
    "Z": np.diag([1.0, -1.0]),
}
SPIN_HALF = {
    "Id": PAULI["Id"],
    "Sx": PAULI["X"] / 2,
    "Sy": PAULI["Y"] / 2,
    "Sz": PAULI["Z"] / 2,
    "S+": (PAULI["X"] + 1j * PAULI["Y"]).real / 2,
    "S-": (PAULI["X"] - 1j * PAULI["Y"]).real / 2,
}
_SP1 = np.sqrt(2.0) * np.array([[0.0, 1, 0], [0, 0, 1], [0, 0, 0]])  # ⟨m+1|S+|m⟩ = √2
SPIN_ONE = {
    "Id": np.eye(3),
    "Sx": (_SP1 + _SP1.T) / 2,
    "Sy": (_SP1 - _SP1.T) / 2j,
    "Sz": np.diag([1.0, 0.0, -1.0]),
    "S+": _SP1,
    "S-": _SP1.T,
}
ANNIHILATE = np.array([[0.0, 1.0], [0.0, 0.0]])  # c|1⟩ = |0⟩
PARITY = np.diag([1.0, -1.0])


def kron_all(mats):
    return reduce(np.kron, mats, np.eye(1))


def embed(op, i, dims):
    """``op`` on site i, identities elsewhere."""
    return kron_all([op if k == i else np.eye(d) for k, d in enumerate(dims)])


def modes(n):
    """Annihilators c_0..c_{n-1} of n spinless modes: F on the modes before, c on the mode."""
    return [kron_all([PARITY] * i + [ANNIHILATE] + [np.eye(2)] * (n - i - 1)) for i in range(n)]


def _to_site_basis(L):
    """Row/column index map from the site basis (|0⟩,|↑⟩,|↓⟩,|↑↓⟩ per site) to 2L modes."""
    per_site = np.array([0, 2, 1, 3])  # mode-pair index 2·n↑ + n↓ of each site state
    grid = np.indices((4,) * L).reshape(L, -1)
    return sum(per_site[grid[k]] * 4 ** (L - 1 - k) for k in range(L))


def electron_ops(L):
    """{(name, site): dense operator} for a chain of L electron sites, from 2L modes."""
    idx = _to_site_basis(L)
    c = [m[np.ix_(idx, idx)] for m in modes(2 * L)]
    ops = {}
    for i in range(L):
        up, dn = c[2 * i], c[2 * i + 1]
        n_up, n_dn = up.T @ up, dn.T @ dn
        eye = np.eye(4**L)
        named = {
            "Id": eye,
            "Cup": up,
            "Cdagup": up.T,
            "Cdn": dn,
            "Cdagdn": dn.T,
            "Nup": n_up,
            "Ndn": n_dn,
            "N": n_up + n_dn,
            "NupNdn": n_up @ n_dn,
            "F": (eye - 2 * n_up) @ (eye - 2 * n_dn),
            "Sz": (n_up - n_dn) / 2,
            "S+": up.T @ dn,
            "S-": dn.T @ up,
        }
        ops.update({(name, i): op for name, op in named.items()})
    return ops


def fermion_ops(L):
    ops = {}
    for i, c in enumerate(modes(L)):
        eye = np.eye(2**L)
        named = {"Id": eye, "C": c, "Cdag": c.T, "N": c.T @ c, "F": eye - 2 * c.T @ c}
        ops.update({(name, i): op for name, op in named.items()})
    return ops


def site_op(site, L, dims):
    """A function (op, i) -> dense operator on the whole chain, for one site type."""
    if site in ("fermion", "electron"):
        table = fermion_ops(L) if site == "fermion" else electron_ops(L)
        return lambda op, i: table[op, i] if isinstance(op, str) else embed(op, i, dims)
    named = {"spin-half": SPIN_HALF, "spin-one": SPIN_ONE}.get(site, {"Id": None})
    return lambda op, i: embed(named[op] if isinstance(op, str) else op, i, dims)


def dense_sum(terms, site, dims):
    """Σ coef · (written-order product of the factors' full operators)."""
    L, size = len(dims), math.prod(dims)
    op_of = site_op(site, L, dims)
    total = np.zeros((size, size), dtype=complex)
    for coef, factors in terms:
        product = np.eye(size)
        for op, i in factors:
            product = product @ (
                np.eye(size) if isinstance(op, str) and op == "Id" else op_of(op, i)
            )
        total += coef * product
    return total


# ====================================================================== independent cover counts


def cover_sizes(strings, L):
    """Per cut, the minimum vertex cover of (distinct left parts) × (distinct right parts),
    counted as a maximum matching by SciPy (König)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    sizes = []
    for k in range(L - 1):
        lefts, rights, edges = {}, {}, set()
        for string in strings:
            left = tuple(x for x in string if x[0] <= k)
            right = tuple(x for x in string if x[0] > k)
            edges.add((lefts.setdefault(left, len(lefts)), rights.setdefault(right, len(rights))))
        rows, cols = zip(*sorted(edges), strict=True)
        graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(lefts), len(rights)))
        sizes.append(int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum()))
    return tuple(sizes)


def operator_ranks(matrix, dims):
    """Per cut, the operator Schmidt rank of a dense operator on sites of dims ``dims``:
    the numerical rank of its unfolding (rows: the left sites' (out, in) pairs), with the
    SVD's zero of DESIGN §1 (σ ≤ 10·max(m, n)·ε·σ_max; 1 for the zero operator)."""
    L = len(dims)
    tensor = np.asarray(matrix).reshape(*dims, *dims)
    order = [k for i in range(L) for k in (i, L + i)]
    paired = tensor.transpose(order)
    ranks = []
    for cut in range(1, L):
        rows = math.prod(d * d for d in dims[:cut])
        s = np.linalg.svd(paired.reshape(rows, -1), compute_uv=False)
        zero = 10 * max(rows, s.size and paired.size // rows) * np.finfo(float).eps * s[0]
        ranks.append(max(1, int((s > zero).sum())))
    return tuple(ranks)


def heisenberg_strings(L, h):
    strings = [((i, a), (i + 1, b)) for i in range(L - 1) for a, b in ("+-", "-+", "zz")]
    return strings + ([((i, "z"),) for i in range(L)] if h else [])


def hubbard_strings(L):
    """Jordan–Wigner strings of the Hubbard terms, by label (a piece per site)."""
    strings = []
    for i in range(L - 1):
        for s in ("up", "dn"):
            strings += [
                ((i, f"Cdag{s}·F"), (i + 1, f"C{s}")),
                ((i, f"F·C{s}"), (i + 1, f"Cdag{s}")),
            ]
    return strings + [((i, "NupNdn"),) for i in range(L)]


def hopping_strings(L):
    return [((i, a), (j, b)) for i in range(L) for j in range(i + 1, L) for a, b in ("+-", "-+")]


# ====================================================================== local tables


@pytest.mark.parametrize("site", ["spin-half", "spin-one"])
def test_spin_tables_satisfy_the_algebra(site):
    ops = tn.operators.local_operators(site)
    sx, sy, sz = ops["Sx"], ops["Sy"], ops["Sz"]
    spin = (sx.shape[0] - 1) / 2
    assert np.allclose(sx @ sy - sy @ sx, 1j * sz)
    assert np.allclose(sx @ sx + sy @ sy + sz @ sz, spin * (spin + 1) * np.eye(sx.shape[0]))
    assert np.allclose(ops["S+"], sx + 1j * sy) and np.allclose(ops["S-"], sx - 1j * sy)
    assert sz[0, 0] == spin  # basis 0 is the highest Sz
    reference = SPIN_HALF if site == "spin-half" else SPIN_ONE
    assert all(np.allclose(ops[name], reference[name]) for name in reference)


def test_electron_table_matches_the_two_mode_oracle():
    table = tn.operators.local_operators("electron")
    oracle = electron_ops(1)
    assert set(table) == {name for name, _ in oracle}
    for name, matrix in table.items():
        assert np.array_equal(matrix, oracle[name, 0]), name


def test_local_operators_returns_copies():
    tn.operators.local_operators("fermion")["C"][0, 1] = 7.0
    assert tn.operators.local_operators("fermion")["C"][0, 1] == 1.0


# ====================================================================== models vs oracles


def _heisenberg_oracle(L, J, Jz, h):
    dims = [2] * L
    H = (
        sum(
            J * (embed(PAULI["X"], i, dims) @ embed(PAULI["X"], i + 1, dims))
            + J * (embed(PAULI["Y"], i, dims) @ embed(PAULI["Y"], i + 1, dims))
            + Jz * (embed(PAULI["Z"], i, dims) @ embed(PAULI["Z"], i + 1, dims))
            for i in range(L - 1)
        )
        / 4
        - h * sum(embed(PAULI["Z"], i, dims) for i in range(L)) / 2
    )
    return H.real


@pytest.mark.parametrize(
    ("L", "J", "Jz", "h"), [(2, 1.0, 1.0, 0.0), (5, 0.7, -1.3, 0.4), (8, -1, 2, 1)]
)
def test_heisenberg_equals_kron_oracle(L, J, Jz, h):
    H = tn.models.heisenberg(L, J, Jz, h)
    assert H.dtype == np.float64
    np.testing.assert_allclose(H.to_matrix(), _heisenberg_oracle(L, J, Jz, h), atol=1e-13)


@pytest.mark.parametrize(
    ("L", "J", "Jz", "h"), [(2, 1.0, 1.0, 0.0), (4, 0.7, -1.3, 0.4), (7, 1, 2, -1)]
)
def test_heisenberg_equals_quimb(L, J, Jz, h):
    qtn = pytest.importorskip("quimb.tensor")
    reference = qtn.MPO_ham_heis(L, j=(J, J, Jz), bz=h, cyclic=False).to_dense()
    np.testing.assert_allclose(tn.models.heisenberg(L, J, Jz, h).to_matrix(), reference, atol=1e-13)


@pytest.mark.parametrize(("L", "J", "g"), [(2, 1.0, 1.0), (6, 0.3, -1.7), (8, -1.0, 0.5)])
def test_ising_equals_kron_oracle(L, J, g):
    dims = [2] * L
    zz = sum(embed(PAULI["Z"], i, dims) @ embed(PAULI["Z"], i + 1, dims) for i in range(L - 1))
    oracle = -J * zz - g * sum(embed(PAULI["X"], i, dims) for i in range(L))
    H = tn.models.ising(L, J, g)
    np.testing.assert_allclose(H.to_matrix(), oracle, atol=1e-13)
    assert H.bond_dims == (3,) * (L - 1)


def _hubbard_oracle(L, t, U, mu):
    ops = electron_ops(L)
    hop = sum(
        ops[f"Cdag{s}", i] @ ops[f"C{s}", i + 1] + ops[f"Cdag{s}", i + 1] @ ops[f"C{s}", i]
        for i in range(L - 1)
        for s in ("up", "dn")
    )
    local = sum(U * ops["Nup", i] @ ops["Ndn", i] - mu * ops["N", i] for i in range(L))
    return -t * hop + local


@pytest.mark.parametrize(
    ("L", "t", "U", "mu"), [(2, 1.0, 4.0, 0.0), (3, 0.6, -2.0, 0.3), (4, 1, 8, 1)]
)
def test_hubbard_equals_mode_oracle(L, t, U, mu):
    H = tn.models.hubbard(L, t, U, mu)
    np.testing.assert_allclose(H.to_matrix(), _hubbard_oracle(L, t, U, mu), atol=1e-13)
    assert H.bond_dims == (6,) * (L - 1)


def test_hubbard_is_hermitian_and_conserves_particles_and_spin():
    H = tn.models.hubbard(4, t=0.8, U=3.0, mu=0.2).to_matrix()
    ops = electron_ops(4)
    n_up = sum(ops["Nup", i] for i in range(4))
    n_dn = sum(ops["Ndn", i] for i in range(4))
    assert np.array_equal(H, H.T)
    assert np.allclose(H @ n_up, n_up @ H) and np.allclose(H @ n_dn, n_dn @ H)


@pytest.mark.parametrize("L", [2, 3, 4])
def test_hubbard_equals_tenpy(L):
    """TeNPy's SpinHalfFermionSite uses the same basis and signs (its Cd holds JWu), so the
    dense Hamiltonians agree elementwise without any permutation."""
    pytest.importorskip("tenpy")
    import warnings

    from tenpy.models.hubbard import FermiHubbardChain

    params = {"L": L, "t": 0.7, "U": 3.0, "mu": 0.4, "bc_MPS": "finite"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        H = FermiHubbardChain({**params, "cons_N": None, "cons_Sz": None}).H_MPO
    env = np.eye(H.get_W(0).shape[0])[H.IdL[0]][None, :]  # rows: dense row/col pairs so far
    for i in range(L):
        W = H.get_W(i).itranspose(["wL", "p", "p*", "wR"]).to_ndarray()
        env = np.einsum("xa,apqb->xpqb", env.reshape(-1, W.shape[0]), W)
        env = env.reshape(-1, W.shape[-1])
    dense = env[:, H.IdR[L]].reshape([4] * 2 * L)
    dense = dense.transpose([*range(0, 2 * L, 2), *range(1, 2 * L, 2)]).reshape(4**L, 4**L)
    ours = tn.models.hubbard(L, t=0.7, U=3.0, mu=0.4).to_matrix()
    np.testing.assert_allclose(ours, dense, atol=1e-13)


def _long_range_oracle(L, terms, site):
    if site == "fermion":
        ops = fermion_ops(L)
        first, second = (lambda i: ops["Cdag", i]), (lambda j: ops["C", j])
    else:
        first = second = lambda i: embed(SPIN_HALF["Sz"], i, [2] * L)  # noqa: E731
    return sum(
        sum(c * lam ** (j - i) for c, lam in terms) * first(i) @ second(j)
        for i in range(L)
        for j in range(i + 1, L)
    )


@pytest.mark.parametrize("K", [1, 2, 3])
@pytest.mark.parametrize("L", [2, 3, 7])
def test_long_range_exp_equals_oracle_with_bond_two_plus_k(L, K):
    terms = [(1.0 + k, 0.9 / (k + 1)) for k in range(K)]
    H = tn.models.long_range_exp(L, terms)
    np.testing.assert_allclose(H.to_matrix(), _long_range_oracle(L, terms, "spin"), atol=1e-13)
    inner = [K + 2] * (L - 1)
    inner[0], inner[-1] = K + 1, K + 1
    assert H.bond_dims == (tuple(inner) if L > 2 else (K,))


def test_long_range_exp_fermions_carry_the_string_and_complex_decays():
    terms = [(0.5, 0.7 + 0.2j), (-1.0, -0.4)]
    H = tn.models.long_range_exp(5, terms, "Cdag", "C", site="fermion")
    assert H.dtype == np.complex128
    np.testing.assert_allclose(H.to_matrix(), _long_range_oracle(5, terms, "fermion"), atol=1e-13)


# ====================================================================== bond dimensions


def test_bond_dims_of_the_models_match_independent_cover_counts():
    for L in (2, 3, 6, 9):
        for h in (0.0, 0.5):
            expected = cover_sizes(heisenberg_strings(L, h), L)
            assert tn.models.heisenberg(L, h=h).bond_dims == expected
        assert tn.models.hubbard(L, U=2.0).bond_dims == cover_sizes(hubbard_strings(L), L)
    assert tn.models.heisenberg(9, h=0.5).bond_dims == (4,) + (5,) * 6 + (4,)  # 4 = d² at ends
    assert tn.models.hubbard(9, U=2.0).bond_dims == (6,) * 8


@pytest.mark.parametrize("L", [2, 3, 6, 10])
def test_long_range_hopping_bond_dims(L):
    rng = np.random.default_rng(L)
    ops = tn.OpSum(L)
    for i in range(L):
        for j in range(i + 1, L):
            t = float(rng.uniform(0.5, 1.5))
            ops.add(t, "S+", i, "S-", j).add(t, "S-", i, "S+", j)
    expected = [2 + 2 * min(k + 1, L - 1 - k) for k in range(L - 1)]
    expected[0] = expected[-1] = 3 if L > 2 else 2  # one side holds no term of its own
    mpo = ops.to_mpo()
    assert mpo.bond_dims == tuple(expected) == cover_sizes(hopping_strings(L), L)
    dense = dense_sum(ops.terms, "spin-half", [2] * L) if L <= 6 else None
    if dense is not None:
        np.testing.assert_allclose(mpo.to_matrix(), dense, atol=1e-12)


_XXZ = [(0.5, "S+", "S-"), (0.5, "S-", "S+"), (1.0, "Sz", "Sz")]


def test_square_of_heisenberg_as_an_op_sum():
    """H² written as products of terms (same-site factors multiply) is exact; the symbolic
    automaton cannot see that S+S- = 1/2 + Sz, so its centre bond (19) exceeds the operator
    Schmidt rank (9), which the rank reduction of to_mpo reaches at every cut."""
    L = 8
    pairs = [(c, (a, i, b, i + 1)) for i in range(L - 1) for c, a, b in _XXZ]
    ops = tn.OpSum(L)
    for c1, f1 in pairs:
        for c2, f2 in pairs:
            ops.add(c1 * c2, *f1, *f2)
    H = tn.models.heisenberg(L).to_matrix()
    square = ops.to_mpo()
    np.testing.assert_allclose(square.to_matrix(), H @ H, atol=1e-12)
    plan = automaton(ops._strings()[0], L)
    assert plan.bond_dims == cover_sizes(ops._strings()[0], L)
    assert plan.bond_dims[L // 2 - 1] == 19
    assert _operator_rank(H @ H, L, L // 2) == 9
    assert square.bond_dims == operator_ranks(H @ H, [2] * L)
    assert square.bond_dims[L // 2 - 1] == 9


def _operator_rank(matrix, L, left_sites):
    """Rank of the operator across the cut after ``left_sites`` sites."""
    tensor = matrix.reshape([2] * 2 * L)
    order = [k for i in range(left_sites) for k in (i, L + i)]
    order += [k for i in range(left_sites, L) for k in (i, L + i)]
    unfolded = tensor.transpose(order).reshape(4**left_sites, -1)
    s = np.linalg.svd(unfolded, compute_uv=False)
    return int((s > 1e-10 * s[0]).sum())


# ====================================================================== Jordan–Wigner


@pytest.mark.parametrize(
    ("site", "L", "names"), [("fermion", 4, ["C"]), ("electron", 3, ["Cup", "Cdn"])]
)
def test_anticommutation_relations(site, L, names):
    def mode(name, i):
        return tn.OpSum(L, site=site).add(1.0, name, i).to_mpo().to_matrix()

    cs = [mode(name, i) for i in range(L) for name in names]
    cdags = [mode(name.replace("C", "Cdag"), i) for i in range(L) for name in names]
    eye = np.eye(cs[0].shape[0])
    for a, (c, cdag_a) in enumerate(zip(cs, cdags, strict=True)):
        assert np.array_equal(cdag_a, c.T)
        for b, (c_b, cdag) in enumerate(zip(cs, cdags, strict=True)):
            assert np.array_equal(c @ cdag + cdag @ c, eye if a == b else 0 * eye)
            assert not np.any(c @ c_b + c_b @ c)


def test_single_mode_is_the_jordan_wigner_image():
    c = tn.OpSum(3, site="fermion").add(1.0, "C", 2).to_mpo()
    np.testing.assert_array_equal(c.to_matrix(), kron_all([PARITY, PARITY, ANNIHILATE]))
    assert c.bond_dims == (1, 1)


def test_fermion_terms_in_any_written_order():
    """c†_3 c_1 written either way round differs by the sign the algebra says."""
    a = tn.OpSum(4, site="fermion").add(1.0, "Cdag", 3, "C", 1).to_mpo().to_matrix()
    b = tn.OpSum(4, site="fermion").add(1.0, "C", 1, "Cdag", 3).to_mpo().to_matrix()
    np.testing.assert_array_equal(a, -b)
    ops = fermion_ops(4)
    np.testing.assert_array_equal(a, ops["Cdag", 3] @ ops["C", 1])


# ====================================================================== random OpSums


@st.composite
def op_sums(draw):
    """Random OpSums (L ≤ 6, dense size ≤ 256): 1–6 terms of 1–4 factors, names or arrays."""
    site = draw(st.sampled_from(["spin-half", "spin-one", "fermion", "electron", "dims"]))
    max_len = {"spin-half": 6, "spin-one": 5, "fermion": 6, "electron": 4, "dims": 4}[site]
    L = draw(st.integers(1, max_len))
    if site == "dims":
        dims = draw(st.lists(st.integers(1, 3), min_size=L, max_size=L))
        names, ops = ["Id"], tn.OpSum(L, site=dims)
    else:
        ops = tn.OpSum(L, site=site)
        dims, names = list(ops.local_dims), sorted(tn.operators.local_operators(site))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 6))):
        factors = []
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, L - 1))
            op = draw(st.sampled_from(names))
            if site == "dims" or draw(st.integers(0, 5)) == 0:  # an (even) array
                op = rng.integers(-1, 2, size=(dims[i], dims[i])).astype(float)
            factors += [op, i]
        coef = draw(st.sampled_from([1.0, -0.5, 2.5, 1j, 0.3 - 0.7j, 3]))
        ops.add(coef, *factors)
    return site, dims, ops


@given(op_sums())
def test_random_op_sums_equal_the_dense_sum(drawn):
    site, dims, ops = drawn
    mpo = ops.to_mpo()
    oracle = dense_sum(ops.terms, site, dims)
    np.testing.assert_allclose(mpo.to_matrix(), oracle, atol=1e-12)
    assert mpo.dtype in (np.float64, np.complex128)
    assert mpo.out_dims == mpo.in_dims == tuple(dims)
    assert all(1 <= b <= max(1, len(ops)) for b in mpo.bond_dims)
    strings, _ = ops._strings()
    if strings:
        assert automaton(strings, len(dims)).bond_dims == cover_sizes(strings, len(dims))
    assert mpo.bond_dims == operator_ranks(oracle, dims)


@given(st.data())
def test_min_vertex_cover_covers_every_edge_with_a_maximum_matching_size(data):
    n_left, n_right = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    adjacency = [
        sorted(data.draw(st.sets(st.integers(0, n_right - 1), max_size=n_right)))
        for _ in range(n_left)
    ]
    left, right = min_vertex_cover(adjacency, n_right)
    assert all(u in left or v in right for u, vs in enumerate(adjacency) for v in vs)
    edges = [(u, v) for u, vs in enumerate(adjacency) for v in vs]
    expected = cover_sizes([((0, "u", u), (1, "v", v)) for u, v in edges], 2)[0] if edges else 0
    assert len(left) + len(right) == expected


def test_min_vertex_cover_on_a_long_path_needs_no_recursion():
    n = 5000  # a path u0-v0-u1-v1-...: augmenting paths as long as the graph
    adjacency = [[i - 1, i] if i else [0] for i in range(n)]
    left, right = min_vertex_cover(adjacency, n)
    assert len(left) + len(right) == n


# ====================================================================== merging, dtypes, builder


def test_same_matrix_under_two_names_merges_and_cancelling_terms_vanish():
    ops = tn.OpSum(3).add(1.0, "Sz", 0, "Sz", 2).add(0.5, np.diag([1, -1]), 0, "Sz", 2)
    assert ops.to_mpo().bond_dims == (1, 1)
    zero = tn.OpSum(3).add(1.0, "Sz", 0, "Sz", 1).add(-1.0, "Sz", 1, "Sz", 0).to_mpo()
    assert zero.bond_dims == (1, 1) and not np.any(zero.to_matrix())
    constant = tn.OpSum(2).add(3.0, "Id", 1).add(1.0, "Sx", 0, "Sx", 0).to_mpo()
    np.testing.assert_array_equal(constant.to_matrix(), 3.25 * np.eye(4))
    assert constant.bond_dims == (1,)
    assert tn.OpSum(2).to_mpo().bond_dims == (1,)


def test_dtype_rules():
    real = tn.OpSum(2).add(1.0, "Sy", 0, "Sy", 1).to_mpo()  # the i's cancel
    assert real.dtype == np.float64
    complex_ = tn.OpSum(2).add(1.0, "Sy", 0).to_mpo()
    assert complex_.dtype == np.complex128
    np.testing.assert_allclose(complex_.to_matrix(), embed(SPIN_HALF["Sy"], 0, [2, 2]))
    single = tn.OpSum(2).add(0.5, "Sz", 0).to_mpo(dtype="float32")
    assert single.dtype == np.float32
    assert tn.OpSum(2).add(0.5, "Sz", 0).to_mpo(dtype="complex64").dtype == np.complex64


def test_builder_semantics():
    a = tn.OpSum(3, site="spin-one")
    assert a.add(1.0, "Sz", 0) is a and len(a) == 1
    b = tn.OpSum(3, site="spin-one").add(2.0, "S+", 1, "S-", 2)
    total = a + 2 * b
    assert len(total) == 2 and len(a) == 1 and len(b) == 1
    expected = a.to_mpo().to_matrix() + 2 * b.to_mpo().to_matrix()
    np.testing.assert_allclose(total.to_mpo().to_matrix(), expected)
    assert total.terms[1][0] == 4.0 and total.terms[1][1] == (("S+", 1), ("S-", 2))
    assert repr(total) == "OpSum(L=3, site='spin-one', terms=2)"
    assert tn.OpSum(2, site=[2, 3]).site == (2, 3)


# ====================================================================== bad input


@pytest.mark.parametrize(
    ("make", "error", "name"),
    [
        (lambda: tn.OpSum(0), ValueError, "L"),
        (lambda: tn.OpSum(2.0), TypeError, "L"),
        (lambda: tn.OpSum(3, site="qubit"), ValueError, "site"),
        (lambda: tn.OpSum(3, site=[2, 2]), ValueError, "site"),
        (lambda: tn.OpSum(2, site=[2, 0]), ValueError, "site"),
        (lambda: tn.OpSum(2, site=[2, "a"]), TypeError, "site"),
        (lambda: tn.OpSum(2, site=5), TypeError, "site"),
        (lambda: tn.OpSum(3).add("a", "Sz", 0), TypeError, "coef"),
        (lambda: tn.OpSum(3).add(True, "Sz", 0), TypeError, "coef"),
        (lambda: tn.OpSum(3).add(float("nan"), "Sz", 0), ValueError, "coef"),
        (lambda: tn.OpSum(3).add(complex(1, float("inf")), "Sz", 0), ValueError, "coef"),
        (lambda: tn.OpSum(3).add(1.0), ValueError, "factors"),
        (lambda: tn.OpSum(3).add(1.0, "Sz", 0, "Sz"), ValueError, "factors"),
        (lambda: tn.OpSum(3).add(1.0, "Sq", 0), ValueError, "op"),
        (lambda: tn.OpSum(3).add(1.0, "C", 0), ValueError, "valid names: Id, Sx"),
        (lambda: tn.OpSum(3, site="electron").add(1.0, "Cdag_up", 0), ValueError, "Cdagup"),
        (lambda: tn.OpSum(3, site=[2, 2, 2]).add(1.0, "Sz", 0), ValueError, "op"),
        (lambda: tn.OpSum(3).add(1.0, "Sz", 3), ValueError, "site"),
        (lambda: tn.OpSum(3).add(1.0, "Sz", -1), ValueError, "site"),
        (lambda: tn.OpSum(3).add(1.0, "Sz", 1.0), TypeError, "site"),
        (lambda: tn.OpSum(3).add(1.0, np.eye(3), 0), ValueError, "op"),
        (lambda: tn.OpSum(3).add(1.0, np.array([[np.nan, 0], [0, 1]]), 0), ValueError, "op"),
        (lambda: tn.OpSum(3).add(1.0, np.array([["a", "b"], ["c", "d"]]), 0), TypeError, "op"),
        (lambda: tn.OpSum(3).add(1.0, "Sz", 0).to_mpo(dtype="int32"), TypeError, "dtype"),
        (lambda: tn.OpSum(3).add(1.0, "Sy", 0).to_mpo(dtype="float64"), ValueError, "dtype"),
        (lambda: tn.OpSum(3) + tn.OpSum(4), ValueError, "other"),
        (lambda: tn.OpSum(3) + 1, TypeError, "other"),
        (lambda: tn.OpSum(3) * "a", TypeError, "scale"),
        (lambda: tn.models.heisenberg(1), ValueError, "L"),
        (lambda: tn.models.heisenberg(3, J="a"), TypeError, "J"),
        (lambda: tn.models.heisenberg(3, Jz=1j), TypeError, "Jz"),
        (lambda: tn.models.ising(3, g=float("nan")), ValueError, "g"),
        (lambda: tn.models.hubbard(2.0), TypeError, "L"),
        (lambda: tn.models.hubbard(3, mu=float("inf")), ValueError, "mu"),
        (lambda: tn.models.long_range_exp(4, []), ValueError, "terms"),
        (lambda: tn.models.long_range_exp(4, 5), TypeError, "terms"),
        (lambda: tn.models.long_range_exp(4, [(1.0,)]), ValueError, "terms"),
        (lambda: tn.models.long_range_exp(4, [(1.0, 0.0)]), ValueError, "terms"),
        (lambda: tn.models.long_range_exp(4, [(1.0, 0.5)], "Sq"), ValueError, "op"),
        (
            lambda: tn.models.long_range_exp(4, [(1, 0.5)], "C", "N", site="fermion"),
            ValueError,
            "op2",
        ),
        (lambda: tn.models.long_range_exp(3, [(1, 0.5)], site=[2, 3, 2]), ValueError, "site"),
    ],
)
def test_bad_input_names_the_parameter(make, error, name):
    with pytest.raises(error, match=name):
        make()
