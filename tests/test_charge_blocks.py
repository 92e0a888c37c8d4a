"""The block-by-charge factorisations (``tnkit.charge_sweeps``, ``tnkit.apply_density``):
on random matrices that are zero between rows and columns of different charges, each one
equals its dense counterpart and keeps every vector to one charge."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tnkit.apply_density import eigh_by_charge
from tnkit.charge_sweeps import qr_by_charges, split_by_charges
from tnkit.symmetry import Charges

FAST = settings(max_examples=40, deadline=None)


@st.composite
def charged_matrices(draw, square: bool = False):
    """``(matrix, row charges, column charges)`` with entries only where the charges agree."""
    rows = draw(st.integers(1, 12))
    cols = rows if square else draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    row_charges = rng.integers(-2, 3, size=(rows, 1))
    col_charges = row_charges if square else rng.integers(-2, 3, size=(cols, 1))
    matrix = rng.standard_normal((rows, cols))
    if draw(st.booleans()):
        matrix = matrix + 1j * rng.standard_normal((rows, cols))
    matrix[row_charges[:, 0][:, None] != col_charges[:, 0][None, :]] = 0
    if square:
        matrix = matrix @ matrix.conj().T  # Hermitian, still block-diagonal
    return matrix, row_charges, col_charges


def one_charge_each(vectors: np.ndarray, index_charges: np.ndarray, charges: np.ndarray) -> bool:
    """Whether every column of ``vectors`` is zero off the indices of its own charge."""
    return not np.any(vectors[index_charges[:, 0][:, None] != charges[:, 0][None, :]])


@FAST
@given(data=charged_matrices(), keep=st.one_of(st.none(), st.integers(1, 8)))
def test_split_by_charges_is_the_truncated_svd(data, keep):
    matrix, rows, cols = data
    split = split_by_charges(matrix, rows, cols, max_bond=keep, budget=None)
    dense = np.linalg.svd(matrix, compute_uv=False)
    rank = split.right.shape[0]
    assert rank >= 1
    kept = np.linalg.svd(split.left, compute_uv=False)  # left = U·S: its values are the kept σ
    np.testing.assert_allclose(np.sort(kept)[::-1][:rank], dense[:rank], atol=1e-10)
    np.testing.assert_allclose(split.right @ split.right.conj().T, np.eye(rank), atol=1e-10)
    residual = np.linalg.norm(matrix - split.left @ split.right) ** 2
    assert np.isclose(residual, split.discarded, rtol=1e-8, atol=1e-10)
    assert one_charge_each(split.right.T, cols, split.charges)
    assert one_charge_each(split.left, rows, split.charges)


@FAST
@given(data=charged_matrices())
def test_qr_by_charges_is_a_thin_qr(data):
    matrix, rows, cols = data
    q, r, charges = qr_by_charges(matrix, rows, cols)
    np.testing.assert_allclose(q @ r, matrix, atol=1e-10)
    assert q.shape[1] >= 1  # a bond never vanishes, even for a zero matrix
    np.testing.assert_allclose(q.conj().T @ q, np.eye(q.shape[1]), atol=1e-10)
    assert one_charge_each(q, rows, charges)
    assert one_charge_each(r.T, cols, charges)


@FAST
@given(data=charged_matrices(square=True))
def test_eigh_by_charge_is_eigh(data):
    rho, rows, _ = data
    values, vectors, charges = eigh_by_charge(rho, rows)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(rho), atol=1e-9)
    assert np.all(np.diff(values) >= -1e-12)  # ascending, as eigh
    np.testing.assert_allclose(rho @ vectors, vectors * values, atol=1e-8)
    np.testing.assert_allclose(vectors.conj().T @ vectors, np.eye(len(values)), atol=1e-10)
    assert one_charge_each(vectors, rows, charges)


@FAST
@given(
    values=st.lists(st.lists(st.integers(-3, 3), min_size=2, max_size=2), min_size=1, max_size=5),
    moduli=st.sampled_from([(0, 0), (0, 2), (3, 0)]),
)
def test_charges_json_round_trip(values, moduli):
    charges = Charges(values, moduli=moduli, names=("a", "b"))
    assert Charges.from_json(charges.to_json()) == charges


def test_charges_from_bad_json_is_refused():
    for bad in ({"values": [[0]], "moduli": [0]}, {"values": "x", "moduli": [0], "names": ["q"]}):
        try:
            Charges.from_json(bad)
        except (KeyError, TypeError, ValueError):
            continue
        raise AssertionError(f"accepted {bad!r}")
