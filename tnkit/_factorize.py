"""Integer factorisation for ``factorize_dims``: primes by Miller–Rabin and Pollard's rho,
divisors from them, and the balanced ``k``-factor split searched over divisors only.
"""

from __future__ import annotations

import functools
import math
import random

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
