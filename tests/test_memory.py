"""Peak memory of tt_svd and from_matrix on NumPy input (tracemalloc: every NumPy buffer
allocated during the call, the result included, the caller's input excluded).

Documented in docs/benchmarks.md (peak memory): at most 3× the input for requests that compress, and
at most 3× the input plus the result's own size for exact ones (an exact decomposition of a
full-rank tensor returns cores up to ~2.7× the input).
"""

import math
import tracemalloc

import numpy as np
import pytest

import tnkit as tn


def peak_ratio(call, x):
    """(peak bytes allocated by ``call(x)``, bytes the result holds), both over ``x.nbytes``."""
    call(x)  # imports and JIT compilation before measuring
    tracemalloc.start()
    try:
        result = call(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    held = sum(c.nbytes for c in result.cores)
    return peak / x.nbytes, held / x.nbytes


RNG = np.random.default_rng(0)
# A smooth signal plus 0.1% noise: tolerances of 1e-2 compress it, as they do real data.
SMOOTH = np.sin(np.arange(2**18) * 1e-3) + 1e-3 * RNG.standard_normal(2**18)
LOW_RANK = np.einsum("ia,ja,ka,la->ijkl", *RNG.standard_normal((4, 16, 3)))
CASES = {
    "tt_svd max_bond (4,)^9": (lambda x: tn.tt_svd(x, max_bond=32), RNG.standard_normal((4,) * 9)),
    "tt_svd rtol (4,)^9": (lambda x: tn.tt_svd(x, rtol=1e-2), SMOOTH.reshape((4,) * 9)),
    "tt_svd rtol (2,)^18": (lambda x: tn.tt_svd(x, rtol=1e-2), SMOOTH.reshape((2,) * 18)),
    "tt_svd exact, low rank": (tn.tt_svd, np.tile(LOW_RANK, (4, 4, 4, 1))),
    "from_matrix max_bond": (
        lambda w: tn.MPO.from_matrix(w, (4,) * 5, (4,) * 5, max_bond=32),
        RNG.standard_normal((1024, 1024)),
    ),
    "from_matrix rtol": (
        lambda w: tn.MPO.from_matrix(w, (8, 8, 8), (8, 8, 4), rtol=1e-2),
        SMOOTH[: 512 * 256].reshape(512, 256),
    ),
}
EXACT = {
    "tt_svd exact (2,)^18": (tn.tt_svd, RNG.standard_normal((2,) * 18)),
    "tt_svd exact (4,)^9": (tn.tt_svd, RNG.standard_normal((4,) * 9)),
    "tt_svd exact (16,)^4": (tn.tt_svd, RNG.standard_normal((16,) * 4)),
    "from_matrix exact": (
        lambda w: tn.MPO.from_matrix(w, (8, 8, 8), (8, 8, 4)),
        RNG.standard_normal((512, 256)),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_compressing_requests_stay_within_three_times_the_input(name):
    call, x = CASES[name]
    peak, held = peak_ratio(call, x)
    assert held < 1.0, "the case should compress"
    assert peak <= 3.0, f"{name}: peak {peak:.2f}× the input"


@pytest.mark.parametrize("name", EXACT)
def test_exact_requests_stay_within_three_times_the_input_plus_the_result(name):
    call, x = EXACT[name]
    peak, held = peak_ratio(call, x)
    assert peak <= 3.0 + held, f"{name}: peak {peak:.2f}× the input, result {held:.2f}×"


def test_the_measurement_sees_numpy_buffers():
    """tracemalloc must see NumPy's allocations, or the tests above would pass vacuously."""
    peak, held = peak_ratio(lambda a: _Held(np.concatenate([a, a])), np.ones(2**18))
    assert math.isclose(peak, 2.0, rel_tol=0.05) and held == 2.0


class _Held:
    """A result holding one array, like a train holding its cores."""

    def __init__(self, array):
        self.cores = (array,)


@pytest.mark.parametrize(
    ("shape", "expected"), [((256, 300), "gram"), ((255, 300), "exact"), ((300, 256), "exact")]
)
def test_large_near_square_exact_splits_go_through_gram(shape, expected):
    """From GRAM_EXACT_MIN_ROWS rows, a tolerance-free wide split uses Gram (one matrix-sized
    temporary, exact when nothing is cut); below it, and for tall matrices, LAPACK's SVD."""
    from tnkit.linalg import GRAM_EXACT_MIN_ROWS, _choose_method, truncated_split

    assert GRAM_EXACT_MIN_ROWS == 256
    a = np.random.default_rng(1).standard_normal(shape)
    assert _choose_method(a, None, None) == expected
    split = truncated_split(a)
    assert np.linalg.norm(split.left @ split.right - a) <= 1e-13 * np.linalg.norm(a)
