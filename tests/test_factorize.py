"""factorize_dims' number theory: prime factors, divisors, the balanced split against a
brute-force reference, and huge sizes answered at once."""

import itertools
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tnkit as tn
from tnkit import _factorize as F


def best_key(n, k):
    """The least (largest factor, spread) over every ascending k-tuple with product n."""
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    tuples = itertools.combinations_with_replacement(divisors, k)
    return min((t[-1], t[-1] - t[0]) for t in tuples if math.prod(t) == n)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.integers(1, 5))
def test_balanced_is_optimal(n, k):
    dims = F.balanced(n, k)
    assert math.prod(dims) == n and list(dims) == sorted(dims) and len(dims) == k
    assert (dims[-1], dims[-1] - dims[0]) == best_key(n, k)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**63 - 1))
def test_prime_factors_multiply_back_and_are_prime(n):
    primes = F.prime_factors(n)
    assert math.prod(primes) == n
    assert all(F.is_prime(p) for p in primes)
    assert list(primes) == sorted(primes)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, ()), (2**61 - 1, (2**61 - 1,)), (999999999989 * 1000000007, (1000000007, 999999999989))],
)
def test_prime_factors_known(n, expected):
    assert F.prime_factors(n) == expected


def test_divisors_are_all_divisors():
    assert F.divisors(360) == tuple(d for d in range(1, 361) if 360 % d == 0)


@pytest.mark.parametrize(("n", "k"), [(10**18, 3), (2**63 - 25, 2), (6, 10), (1, 4)])
def test_huge_sizes_and_counts_answer_at_once(n, k):
    start = time.perf_counter()
    for pad in (False, True):
        dims = tn.factorize_dims(n, k, pad=pad)
        assert len(dims) == k and list(dims) == sorted(dims)
        assert math.prod(dims) == n if not pad else math.prod(dims) >= n
    assert time.perf_counter() - start < 5  # a hang guard, not a benchmark


def test_padding_large_sizes_reaches_the_least_largest_factor():
    n = 10**12 + 39  # prime
    dims = tn.factorize_dims(n, 3, pad=True)
    assert dims[-1] == F.ceil_root(n, 3) and n <= math.prod(dims) <= 1.1 * n


@pytest.mark.parametrize(("n", "k"), [(10**18, 7), (2**40, 3), (7, 3), (1, 1)])
def test_ceil_root(n, k):
    a = F.ceil_root(n, k)
    assert a**k >= n and (a == 1 or (a - 1) ** k < n)


@pytest.mark.parametrize(
    ("args", "match"), [((2**63, 2), "n: must be <="), ((6, 4097), "k: must be <=")]
)
def test_limits_name_the_parameter(args, match):
    with pytest.raises(ValueError, match=match):
        tn.factorize_dims(*args)
