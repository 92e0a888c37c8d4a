"""Gram rounding of trains (compress with a small cap on large bonds): bound, canonical form.

The trains are long enough to take the path (bonds ≥ 64, cap ≤ half) but small to build.
"""

from __future__ import annotations

import numpy as np
import pytest

import tnkit as tn
from tnkit.compress import gram_rounding, rounds_by_gram
from tnkit.truncation import Truncation


def random_state(length: int, bond: int, dtype: str, seed: int) -> tn.MPS:
    rng = np.random.default_rng(seed)
    dims = [min(2 ** min(k, length - k), bond) for k in range(length + 1)]
    cores = []
    for k in range(length):
        shape = (dims[k], 2, dims[k + 1])
        core = rng.standard_normal(shape)
        if dtype.startswith("complex"):
            core = core + 1j * rng.standard_normal(shape)
        cores.append((core / np.sqrt(2 * dims[k])).astype(dtype))
    return tn.MPS(cores)


@pytest.mark.parametrize("dtype", ["float64", "complex128", "float32"])
@pytest.mark.parametrize("centre", [None, 0, 5, 13])
def test_gram_rounding_matches_the_svd_sweep(dtype, centre):
    m = random_state(14, 64, dtype, seed=3)
    if centre is not None:
        m = m.canonicalize(centre)
    c = m.compress(max_bond=16)
    ref = m.compress(max_bond=16, svd_method="qr")
    # float32: the allowance for rounding (64·L·ε per ‖x‖²) is too large to measure this cut
    assert (c.report.method == "gram-rounding") == (dtype != "float32")
    assert c.centre == 0 and c.is_canonical(0, tol=1e-4 if dtype == "float32" else None)
    assert c.bond_dims == ref.bond_dims
    norm = m.norm()
    err = tn.distance(m, c)
    ref_err = tn.distance(m, ref)
    eps = np.finfo(dtype).eps
    assert err <= c.report.abs_error_bound + 1e3 * eps * norm
    assert err == pytest.approx(ref_err, rel=1e-3 if dtype == "float32" else 1e-8)
    assert c.report.abs_error_bound <= ref_err * (1 + 1e-3) + np.sqrt(1e4 * eps) * norm
    assert c.report.norm == pytest.approx(norm, rel=1e-4)


def test_gram_rounding_hands_over_when_nothing_is_cut():
    m = random_state(12, 8, "float64", seed=1)
    inflated = m + 0 * m  # bonds doubled, same rank: a cap above the rank cuts nothing
    big = inflated + inflated + inflated + inflated  # bonds 64, rank 8
    assert max(big.bond_dims) >= 64
    c = big.compress(max_bond=16)
    assert c.report.method != "gram-rounding"  # a cut at rounding level is left to QR + SVD
    assert tn.distance(c, big) <= 1e-10 * big.norm()


def test_rounds_by_gram_only_for_cap_only_requests_far_below():
    cores = tuple(random_state(14, 64, "float64", seed=0).cores)
    assert rounds_by_gram(cores, Truncation(max_bond=16))
    assert not rounds_by_gram(cores, Truncation(max_bond=48))
    assert not rounds_by_gram(cores, Truncation(max_bond=16, rtol=0.5))
    small = tuple(random_state(10, 16, "float64", seed=0).cores)
    assert not rounds_by_gram(small, Truncation(max_bond=4))
    assert gram_rounding(cores, None, 16) is not None
