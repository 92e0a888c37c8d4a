"""Compiled block contractions (``tnkit.algorithms.block_plans``): every compiled chain
equals the symmray contractions it replaces, for every supported symmetry, random block
structures, charged tensors, real and complex vectors."""

from __future__ import annotations

import numpy as np
import pytest
import symmray as sr
from hypothesis import given, settings
from hypothesis import strategies as st
from symmray import utils

import tnkit as tn
from tnkit.algorithms import block_plans, blocks, engines
from tnkit.algorithms.block_groups import ProductGroup
from tnkit.algorithms.engines import BlockEngine

FAST = settings(max_examples=25, deadline=None)
SYMMETRIES = {
    "U1": (0,),
    "Z2": (2,),
    "Z3": (3,),
    "U1U1": (0, 0),
    "Z2Z2": (2, 2),
    "U1xZ2": (0, 2),
    "Z3xU1": (3, 0),
}


def _group(symmetry: str):
    """symmray's name for its own groups, tnkit's ProductGroup for the others."""
    return ProductGroup(SYMMETRIES[symmetry]) if "x" in symmetry else symmetry


def _index(symmetry: str, size: int, seed: int, dual: bool) -> sr.BlockIndex:
    if "x" not in symmetry:
        return utils.rand_index(symmetry, size, dual=dual, seed=seed)
    group, rng = _group(symmetry), np.random.default_rng(seed)
    chargemap: dict = {}
    for _ in range(size):  # channels spread over a few random charges
        charge = group.random_charge(rng)
        chargemap[charge] = chargemap.get(charge, 0) + 1
    return sr.BlockIndex(chargemap, dual=dual)


def _random(symmetry: str, indices: list, charge, seed: int) -> sr.AbelianArray:
    return sr.AbelianArray.random(indices, charge=charge, seed=seed, symmetry=_group(symmetry))


def _charge(symmetry: str, rng: np.random.Generator):
    moduli = SYMMETRIES[symmetry]
    values = [int(rng.integers(0, m)) if m else int(rng.integers(-1, 2)) for m in moduli]
    return values[0] if len(values) == 1 else tuple(values)


@FAST
@given(
    symmetry=st.sampled_from(sorted(SYMMETRIES)),
    seed=st.integers(0, 10_000),
    complex_vector=st.booleans(),
)
def test_compiled_chain_equals_symmray_tensordots(symmetry, seed, complex_vector):
    """x(a, b, c) · F(b*, c*, d) over two legs, then G(e, a*) · (a, d) with the running
    tensor second: every way a step can be set up, on charged random tensors."""
    rng = np.random.default_rng(seed)
    a, b, c, d, e = (
        _index(symmetry, int(rng.integers(2, 7)), seed + k, bool(rng.integers(2))) for k in range(5)
    )
    x = _random(symmetry, [a, b, c], _charge(symmetry, rng), seed)
    first = _random(symmetry, [b.conj(), c.conj(), d], _charge(symmetry, rng), seed + 1)
    second = _random(symmetry, [e, a.conj()], _charge(symmetry, rng), seed + 2)
    expected = sr.tensordot(
        second, sr.tensordot(x, first, axes=((1, 2), (0, 1))), axes=((1,), (0,))
    )
    start = blocks.layout(x.indices, x)
    target = blocks.layout(expected.indices, expected)
    chain = block_plans.compile_chain(
        block_plans.placed_layout(start),
        [(first, (1, 2), (0, 1), True), (second, (0,), (1,), False)],
        block_plans.placed_layout(target),
        SYMMETRIES[symmetry],
    )
    vector = blocks.flat(x, start)
    if complex_vector:
        vector = vector * np.exp(0.3j)
        expected = expected * np.exp(0.3j)
    got = chain(vector)
    assert got.dtype == vector.dtype
    np.testing.assert_allclose(got, blocks.flat(expected, target), atol=1e-12, rtol=1e-12)
    again = chain(vector)  # reused buffers give the same result and a new array
    assert again is not got
    np.testing.assert_array_equal(again, got)


def _local_problem(kind: str, model: str):
    L = 8
    if model == "hubbard":
        H = tn.models.hubbard(L, U=4.0, conserve=("N", "Sz"))
        psi = tn.MPS.random(
            [4] * L, 12, site="electron", conserve=("N", "Sz"), sector=(L, 0), seed=1
        )
    else:
        H = tn.models.heisenberg(L, conserve="Sz")
        psi = tn.MPS.random([2] * L, 10, site="spin-half", conserve="Sz", sector=(2,), seed=2)
    engine = BlockEngine(H)
    cores, ops = engine.start(psi, H)
    right = engine.right_environments(cores, ops)
    left = engine.edge(cores)
    for k in range(3):
        left = blocks.grow_left(left, cores[k], ops[k])
    i = 3
    if kind == "two":
        return blocks.merge(cores[i], cores[i + 1]), blocks.two_site_matvec(
            left, ops[i], ops[i + 1], right[i + 2]
        )
    if kind == "one":
        return cores[i], blocks.one_site_matvec(left, ops[i], right[i + 1])
    isometry, x = engine.orthonormal_left(cores[i])
    left = blocks.grow_left(left, isometry, ops[i])
    return x, blocks.zero_site_matvec(left, right[i + 1])


@pytest.mark.parametrize("model", ["hubbard", "heisenberg"])
@pytest.mark.parametrize("kind", ["two", "one", "zero"])
def test_compiled_matvecs_equal_the_symmray_ones(kind, model):
    x, matvec = _local_problem(kind, model)
    where = blocks.layout(matvec.indices, x)
    compiled = matvec.compile(where)
    rng = np.random.default_rng(0)
    for vector in (
        rng.standard_normal(where.size),
        rng.standard_normal(where.size) + 1j * rng.standard_normal(where.size),
    ):
        expected = blocks.flat(matvec(blocks.unflat(vector, where)), where)
        np.testing.assert_allclose(compiled(vector), expected, atol=1e-12, rtol=1e-12)


def test_products_are_one_per_charge_group():
    """The plan is plain data: one matrix product per charge through the contracted legs,
    each operand gathered to exactly rows × inner (or inner × cols) entries."""
    x, matvec = _local_problem("two", "heisenberg")
    compiled = matvec.compile(blocks.layout(matvec.indices, x))
    for step in compiled.steps:
        assert step.products
        fixed_total = sum((k * c if step.running_first else r * k) for r, k, c, *_ in step.products)
        running_total = sum(
            (r * k if step.running_first else k * c) for r, k, c, *_ in step.products
        )
        assert step.fixed.size == fixed_total
        assert step.gather.size == running_total
        assert step.size == sum(r * c for r, _, c, *_ in step.products)


@pytest.mark.parametrize("kind", ["two", "one", "zero"])
def test_dense_local_matvec_equals_the_block_one(kind):
    x, matvec = _local_problem(kind, "hubbard")
    where = blocks.layout(matvec.indices, x)
    expected = blocks.flat(matvec(x), where)
    shape = tuple(sum(index.chargemap.values()) for index in where.indices)
    full = np.zeros(int(np.prod(shape)))
    positions = blocks.dense_positions(where)
    full[positions] = blocks.flat(x, where)
    got = matvec.dense()(full.reshape(shape)).reshape(-1)
    assert np.allclose(got[positions], expected, atol=1e-12)
    outside = np.ones(got.size, dtype=bool)
    outside[positions] = False
    assert np.allclose(got[outside], 0.0, atol=1e-12)  # the dense matvec keeps the sector


def test_dmrg_is_the_same_on_every_local_path(monkeypatch):
    """Dense local problems, compiled block chains and symmray per call: one answer."""
    L = 6
    H = tn.models.hubbard(L, U=4.0, conserve=("N", "Sz"))
    start = tn.MPS.product_state(["up", "dn"] * (L // 2), site="electron", conserve=("N", "Sz"))
    energies = [tn.dmrg(H, max_bond=16, init=start, sweeps=3, tol=0).energy]
    monkeypatch.setattr(engines, "DENSE_LOCAL", 0)
    for mean_block in (10**9, 0):  # every problem compiled; none
        monkeypatch.setattr(engines, "COMPILE_BELOW_MEAN_BLOCK", mean_block)
        energies.append(tn.dmrg(H, max_bond=16, init=start, sweeps=3, tol=0).energy)
    assert max(energies) - min(energies) < 1e-10


def test_unique_rows_is_numpys_unique_either_way():
    rng = np.random.default_rng(3)
    small = rng.integers(-3, 4, size=(50, 3))
    wide = np.concatenate([small, rng.integers(0, 2**40, size=(50, 2))], axis=1)  # > 62 bits
    wide[25:] = wide[:25]
    for rows in (small, wide):
        found, first, inverse = block_plans._unique_rows(rows)
        expected, expected_first, expected_inverse = np.unique(
            rows, axis=0, return_index=True, return_inverse=True
        )
        np.testing.assert_array_equal(found, expected)
        np.testing.assert_array_equal(first, expected_first)
        np.testing.assert_array_equal(inverse, expected_inverse.reshape(-1))
