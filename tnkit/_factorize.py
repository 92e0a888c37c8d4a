"""``factorize_dims`` and the integer factorisation behind it: primes by Miller–Rabin and
Pollard's rho, divisors from them, the balanced ``k``-factor split searched over divisors only.
"""

from __future__ import annotations

import functools
import math
import random
from typing import Any

from ._checks import check_int, is_int

_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)


def is_prime(n: int) -> bool:
    """Miller–Rabin with the first 13 primes as bases (exact below 3.3·10²⁴)."""
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _SMALL_PRIMES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def prime_factors(n: int) -> tuple[int, ...]:
    """The primes of ``n >= 1`` with multiplicity, ascending.

    Example:
        >>> prime_factors(360), prime_factors(2**61 - 1)
        ((2, 2, 2, 3, 3, 5), (2305843009213693951,))
    """
    found: list[int] = []
    for p in _SMALL_PRIMES:
        while n % p == 0:
            found.append(p)
            n //= p
    pending = [n] if n > 1 else []
    while pending:
        m = pending.pop()
        if is_prime(m):
            found.append(m)
        else:
            d = _pollard_rho(m)
            pending += [d, m // d]
    return tuple(sorted(found))


def _pollard_rho(n: int) -> int:
    """A non-trivial factor of the odd composite ``n`` (Brent's variant, fixed seed)."""
    rng = random.Random(n)
    while True:
        c, y, m = rng.randrange(1, n), rng.randrange(1, n), 128
        g = r = q = 1
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                saved = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
        if g == n:
            g = 1
            while g == 1:
                saved = (saved * saved + c) % n
                g = math.gcd(abs(x - saved), n)
        if g != n:
            return g


@functools.lru_cache(maxsize=256)
def divisors(n: int) -> tuple[int, ...]:
    """All divisors of ``n >= 1``, ascending."""
    result = [1]
    primes = prime_factors(n)
    for p in sorted(set(primes)):
        powers = [p**e for e in range(1, primes.count(p) + 1)]
        result += [d * q for d in result for q in powers]
    return tuple(sorted(result))


@functools.lru_cache(maxsize=4096)
def balanced(n: int, k: int) -> tuple[int, ...]:
    """Ascending ``k`` factors of ``n`` minimising the largest factor, then the spread (the
    first such in ascending order of the smallest factor)."""
    if k == 1:
        return (n,)
    primes = len(prime_factors(n))
    if k > primes:  # more factors than primes: the extra ones are 1 (see the test of this)
        return (1,) * (k - primes) + (balanced(n, primes) if primes else ())
    best: tuple[int, ...] | None = None
    for first in divisors(n):
        if first**k > n:
            break
        rest = balanced(n // first, k - 1)
        if rest[0] < first:
            continue
        candidate = (first, *rest)
        if best is None or (candidate[-1], candidate[-1] - candidate[0]) < (
            best[-1],
            best[-1] - best[0],
        ):
            best = candidate
    return best  # first = 1 always divides, so best is set


def ceil_root(n: int, k: int) -> int:
    """The smallest ``a`` with ``a**k >= n``."""
    a = max(1, round(n ** (1.0 / k))) if n.bit_length() < 1000 else 1 << -(-n.bit_length() // k)
    while a**k < n:
        a += 1
    while a > 1 and (a - 1) ** k >= n:
        a -= 1
    return a


def factorize_dims(n: int, k: int, *, pad: bool = False) -> tuple[int, ...]:
    """``k`` factors of ``n`` as equal as possible (smallest largest factor), ascending.

    With ``pad=True`` an awkward ``n`` (largest factor above ``2·n**(1/k)``, e.g. a prime)
    is replaced by the size in ``[n, max(n + k, ceil(1.1·n))]`` with the smallest largest
    factor (the smallest such size on ties). Where that range holds more than 10⁴ sizes
    (``n`` above 10⁵) only the balanced sizes ``a**(k-j)·(a-1)**j`` in it are tried
    (``a = ceil(n**(1/k))``, the least largest factor any size ``>= n`` can have). ``n``
    must fit an int64 and ``k`` is at most 4096; factorisation is by Miller–Rabin and
    Pollard's rho, so any such ``n`` is quick.

    Example:
        >>> factorize_dims(4096, 4)
        (8, 8, 8, 8)
        >>> factorize_dims(784, 4)
        (4, 4, 7, 7)
        >>> factorize_dims(97, 2), factorize_dims(97, 2, pad=True)
        ((1, 97), (10, 10))
        >>> factorize_dims(10**18 + 9, 2, pad=True)
        (1000000000, 1000000001)
    """
    n = _check_count(n, "n", _MAX_SIZE)
    k = _check_count(k, "k", _MAX_FACTORS)
    exact = balanced(n, k)
    if not pad or exact[-1] <= 2 * n ** (1.0 / k):
        return exact
    # Awkward size (a prime, twice a prime, ...): pad by at most 10% to balance the factors.
    top = max(n + k, math.ceil(1.1 * n))
    sizes = range(n, top + 1) if top - n <= _PAD_SEARCH else _balanced_sizes(n, k, top)
    return min((balanced(size, k) for size in sizes), key=lambda f: (f[-1], math.prod(f)))


_MAX_SIZE = 2**63 - 1
_MAX_FACTORS = 4096
_PAD_SEARCH = 10**4


def _check_count(value: Any, name: str, maximum: int) -> int:
    if not is_int(value) and not (hasattr(value, "__index__") and not isinstance(value, bool)):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    return check_int(int(value), name, minimum=1, maximum=maximum)


def _balanced_sizes(n: int, k: int, top: int) -> list[int]:
    """Sizes ``a**(k-j)·(a-1)**j`` in ``[n, top]``: ``k`` factors no larger than the least
    possible largest factor ``a`` of any size ``>= n``."""
    a = ceil_root(n, k)
    sizes = (a ** (k - j) * (a - 1) ** j for j in range(k + 1))
    return [size for size in sizes if n <= size <= top]
