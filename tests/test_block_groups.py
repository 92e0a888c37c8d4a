"""Charge groups of the block engine (``tnkit.algorithms.block_groups``): symmray's named
groups where one fits, ``ProductGroup`` for any other product of U(1) and Z_n."""

from __future__ import annotations

import numpy as np
import pytest
import symmray as sr
from hypothesis import given, settings
from hypothesis import strategies as st

from tnkit.algorithms.block_groups import ProductGroup, moduli, symmetry
from tnkit.symmetry import Charges

MODULI = st.lists(st.sampled_from([0, 2, 3, 5]), min_size=2, max_size=3).map(tuple)


def _charge(group: ProductGroup, draw_values: list[int]) -> tuple[int, ...]:
    return group.combine(tuple(draw_values))  # reduced into the group's range


@pytest.mark.parametrize(
    ("found", "expected"),
    [((0,), "U1"), ((2,), "Z2"), ((3,), "Z3"), ((0, 0), "U1U1"), ((2, 2), "Z2Z2")],
)
def test_named_groups_keep_their_symmray_names(found, expected):
    values = np.zeros((2, len(found)), dtype=int)
    assert symmetry(Charges(values, moduli=found)) == expected


def test_other_products_get_a_product_group():
    group = symmetry(Charges([[0, 0], [1, 1], [2, 0]], moduli=(0, 2)))
    assert isinstance(group, ProductGroup) and group.moduli == (0, 2)
    assert str(group) == "U1xZ2" and group == "U1xZ2" and group == ProductGroup((0, 2))
    assert group != ProductGroup((2, 0)) and hash(group) == hash(ProductGroup((0, 2)))
    assert str(ProductGroup((3, 0, 2))) == "Z3xU1xZ2"


@pytest.mark.parametrize("bad", [(0,), (0, 1), (0, -2), ()])
def test_product_group_refuses_bad_moduli(bad):
    with pytest.raises(ValueError, match="moduli"):
        ProductGroup(bad)


@settings(max_examples=50, deadline=None)
@given(found=MODULI, data=st.data())
def test_product_group_is_an_abelian_group(found, data):
    group = ProductGroup(found)
    values = st.lists(st.integers(-7, 7), min_size=len(found), max_size=len(found))
    a, b, c = (_charge(group, data.draw(values)) for _ in range(3))
    assert group.valid(a, b, c)
    assert group.combine(a, b) == group.combine(b, a)
    assert group.combine(group.combine(a, b), c) == group.combine(a, group.combine(b, c))
    zero = tuple(0 for _ in found)
    assert group.combine(a, group.sign(a)) == zero and group.sign(a, dual=False) == a
    array = np.array([a, b, c])
    assert group.combine_array(array[None], axis=1).tolist() == [list(group.combine(a, b, c))]
    flipped = group.sign_array(array, np.array([True, False, True]))
    assert [tuple(r) for r in flipped.tolist()] == [group.sign(a), b, group.sign(c)]
    assert group.parity_array(array).tolist() == [group.parity(q) for q in (a, b, c)]


def test_symmray_arrays_of_a_product_group_contract_as_dense_ones():
    group = ProductGroup((0, 2))
    left = sr.BlockIndex({(0, 0): 2, (1, 1): 1, (2, 0): 2}, dual=False)
    right = sr.BlockIndex({(1, 1): 2, (2, 0): 1, (3, 1): 1}, dual=True)
    x = sr.AbelianArray.random([left, right], charge=(-1, 1), seed=0, symmetry=group)
    y = sr.AbelianArray.random([right.conj(), left.conj()], charge=(1, 1), seed=1, symmetry=group)
    product = sr.tensordot(x, y, axes=1)
    assert product.charge == (0, 0) and moduli(product) == (0, 2)
    np.testing.assert_allclose(product.to_dense(), x.to_dense() @ y.to_dense(), atol=1e-12)
