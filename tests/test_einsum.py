"""``tnkit._einsum.contract`` against ``numpy.einsum`` on random plain contractions (every
index in at most two operands), whatever the operands' memory layout."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from tnkit._einsum import contract

LETTERS = "abcdefg"


@st.composite
def contractions(draw):
    """Two or three operands over up to 7 indices, each index in at most two of them, with
    sizes 0–3 and operands C-ordered, transposed (F-ordered) or strided."""
    n_ops = draw(st.integers(2, 3))
    letters = draw(st.permutations(LETTERS))[: draw(st.integers(1, 7))]
    terms: list[list[str]] = [[] for _ in range(n_ops)]
    for letter in letters:
        for op in draw(st.lists(st.integers(0, n_ops - 1), min_size=1, max_size=2, unique=True)):
            terms[op].append(letter)
    assume(all(terms))  # every operand has a leg (asfortranarray makes 0-d arrays 1-d)
    for term in terms:
        draw(st.randoms()).shuffle(term)
    counts = {c: sum(c in t for t in terms) for c in letters}
    output = [c for c in letters if counts[c] == 1 and draw(st.booleans())]
    output += [c for c in letters if counts[c] == 1 and c not in output]  # open legs stay
    sizes = {c: draw(st.integers(0 if draw(st.booleans()) else 1, 3)) for c in letters}
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    operands = []
    for term in terms:
        x = rng.standard_normal([sizes[c] for c in term])
        layout = draw(st.sampled_from(["c", "f", "strided"]))
        if layout == "f":
            x = np.asfortranarray(x)
        elif layout == "strided":
            x = np.repeat(x, 2, axis=-1)[..., ::2]
        operands.append(x)
    spec = ",".join("".join(t) for t in terms) + "->" + "".join(output)
    return spec, operands


@given(contractions())
def test_contract_matches_einsum(case):
    spec, operands = case
    np.testing.assert_allclose(contract(spec, *operands), np.einsum(spec, *operands), atol=1e-12)
