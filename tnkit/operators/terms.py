"""Terms of an OpSum as merged operator strings: each term's Jordan–Wigner pieces, scaled
local matrices with integer ids, equal strings summed, all in NumPy arrays.

Host bookkeeping only: no automaton, no MPO, nothing contracted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..sites import Factor, jordan_wigner_layout
from .automaton import Strings

__all__ = ["MatrixTable", "encode_terms"]

# Two local matrices are the same operator when, scaled so that their first significant
# entry is 1, they agree to this many decimals (exact products agree to ~1e-16).
_KEY_DECIMALS = 12


class MatrixTable:
    """Distinct local matrices per site, up to a scalar; id 0 is the identity.

    Example:
        >>> import numpy as np
        >>> table = MatrixTable([2])
        >>> table.scaled_id(0, np.diag([0.5, -0.5])), table.scaled_id(0, np.diag([-2.0, 2.0]))
        ((0.5, 1), (-2.0, 1))
    """

    def __init__(self, dims: Sequence[int]) -> None:
        self.matrices = [[np.eye(d)] for d in dims]
        self._ids = [{_key(np.eye(d)): 0} for d in dims]

    def scaled_id(self, site: int, matrix: np.ndarray) -> tuple[complex | float, int]:
        """(scale, id) with ``matrix == scale · matrices[site][id]``; scale 0 for a zero matrix."""
        flat = matrix.ravel()
        size = np.abs(flat)
        if size.max() == 0:
            return 0.0, 0
        scale = flat[int(np.argmax(size > 1e-12 * size.max()))]
        scale = scale.real if scale.imag == 0 else complex(scale)
        normalized = matrix / scale
        if np.iscomplexobj(normalized) and not normalized.imag.any():
            normalized = normalized.real
        ids = self._ids[site]
        key = _key(normalized)
        if key not in ids:
            ids[key] = len(self.matrices[site])
            self.matrices[site].append(normalized)
        return float(scale) if isinstance(scale, float) else scale, ids[key]


def _key(matrix: np.ndarray) -> bytes:
    return (np.round(matrix.astype(np.complex128), _KEY_DECIMALS) + 0.0).tobytes()


def encode_terms(
    terms: Sequence[tuple[Any, tuple[Factor, ...]]],
    dims: Sequence[int],
    parity: np.ndarray | None,
) -> tuple[Strings, MatrixTable]:
    """The merged strings of ``Σ coef · Π factors`` (identities removed, zero sums dropped)
    and the table of their matrices; ``parity`` is the F of fermion-odd factors.

    A term whose factors sit on distinct sites and are all even (the usual case) is
    encoded in bulk: its factors' (scale, id) come from one table look-up per distinct
    factor object. Other terms go through their Jordan–Wigner layout, one product per
    site, looked up by the identities of the pieces multiplied.

    Example:
        >>> import numpy as np
        >>> from tnkit.sites import Factor
        >>> z = np.diag([1.0, -1.0])
        >>> terms = [(1.0, (Factor(0, z, False), Factor(1, z, False)))] * 2
        >>> encode_terms(terms, [2, 2], None)[0].as_dict()
        {((0, 1), (1, 1)): 2.0}
    """
    table = MatrixTable(dims)
    n = len(terms)
    index: dict[int, int] = {}
    distinct: list[Factor] = []
    codes = []
    for _, term_factors in terms:
        for factor in term_factors:
            code = index.get(id(factor))
            if code is None:
                code = index[id(factor)] = len(distinct)
                distinct.append(factor)
            codes.append(code)
    lengths = np.fromiter((len(t[1]) for t in terms), dtype=np.int64, count=n)
    scaled = [table.scaled_id(f.site, f.matrix) for f in distinct]
    scale_of = np.array([scale for scale, _ in scaled] or [1.0])
    mid_of = np.array([mid for _, mid in scaled] or [0], dtype=np.int64)
    site_of = np.array([f.site for f in distinct] or [0], dtype=np.int64)
    odd_of = np.array([f.odd for f in distinct] or [False])
    term = np.repeat(np.arange(n), lengths)
    code = np.array(codes, dtype=np.int64)
    order = np.lexsort((site_of[code], term))
    term, code = term[order], code[order]
    site, mid = site_of[code], mid_of[code]
    special = np.bincount(term[odd_of[code]], minlength=n) > 0
    special[term[1:][(term[1:] == term[:-1]) & (site[1:] == site[:-1])]] = True
    products: dict[tuple, tuple[complex | float, int]] = {}
    extra = {
        int(t): _layout_string(terms[t][1], table, parity, products)
        for t in np.flatnonzero(special)
    }
    scales = [scale_of] + [np.array([scale]) for scale, _ in extra.values()]
    coefs = np.array([t[0] for t in terms])
    weight = coefs.astype(np.result_type(coefs, *scales))
    if n:
        weight *= np.multiply.reduceat(scale_of[code], np.cumsum(lengths) - lengths)
    kept = ~special[term] & (mid != 0)
    pieces = [np.stack([term[kept], site[kept], mid[kept]])]
    for t, (scale, string) in extra.items():
        weight[t] = terms[t][0] * scale
        pieces.append(
            np.array([[t] * len(string), *zip(*string, strict=True)], dtype=np.int64).reshape(3, -1)
        )
    piece_term, piece_site, piece_mid = np.concatenate(pieces, axis=1)
    if extra:
        order = np.lexsort((piece_site, piece_term))
        piece_term, piece_site, piece_mid = piece_term[order], piece_site[order], piece_mid[order]
    return _merge(weight, piece_term, piece_site, piece_mid), table


def _layout_string(
    factors: Sequence[Factor], table: MatrixTable, parity: np.ndarray | None, products: dict
) -> tuple[complex | float, list[tuple[int, int]]]:
    """(scale, string) of one term through its Jordan–Wigner layout: a product per site,
    looked up in ``products`` by the identities of its pieces (alive during the call)."""
    scale: complex | float = 1.0
    string = []
    for site, pieces in jordan_wigner_layout(factors):
        key = (site, *(id(factors[i].matrix) if i >= 0 else 0 for i in pieces))
        if key not in products:
            used = [factors[i].matrix if i >= 0 else parity for i in pieces]
            product = used[0]
            for piece in used[1:]:
                product = product @ piece
            products[key] = table.scaled_id(site, product)
        factor, matrix_id = products[key]
        scale = scale * factor
        if matrix_id:
            string.append((site, matrix_id))
    return scale, string


def _merge(weight, piece_term, piece_site, piece_mid) -> Strings:
    """Equal strings summed, zero sums dropped: rows of (site, id) codes padded to the
    longest string, made unique as one int64 per row when the codes fit."""
    n = len(weight)
    count = np.bincount(piece_term, minlength=n)
    width = int(count.max(initial=0))
    base = int(piece_mid.max(initial=0)) + 1
    radix = (int(piece_site.max(initial=0)) + 1) * base + 1
    position = np.arange(len(piece_term)) - (np.cumsum(count) - count)[piece_term]
    rows = np.zeros((n, width), dtype=np.int64)  # 0 pads, a piece is site·base + id + 1
    rows[piece_term, position] = piece_site * base + piece_mid + 1
    live = weight != 0
    rows, weight = rows[live], weight[live]
    if radix**width < 2**62:
        keys = rows @ (radix ** np.arange(width - 1, -1, -1, dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    else:
        view = np.ascontiguousarray(rows).view(np.dtype((np.void, 8 * width))).reshape(-1)
        _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if np.iscomplexobj(weight):
        real = np.bincount(inverse, weight.real, minlength=len(first))
        summed = real + 1j * np.bincount(inverse, weight.imag, minlength=len(first))
    else:
        summed = np.bincount(inverse, weight, minlength=len(first))
    nonzero = summed != 0
    rows, summed = rows[first[nonzero]], summed[nonzero]
    pieces = rows[rows > 0] - 1
    return Strings(
        lengths=np.count_nonzero(rows, axis=1),
        sites=pieces // base,
        mids=pieces % base,
        coefs=summed,
    )
