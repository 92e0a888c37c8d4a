"""Hypothesis strategies shared by every test module: trains, dense tensors, truncation rules.

Also the tolerance helpers that turn "up to rounding" into numbers per dtype.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume
from hypothesis import strategies as st

import tnkit as tn
from tnkit.sectors import allowed_entries, channel_charges, site_flows

DTYPES = ("float32", "float64", "complex64", "complex128")
dtypes = st.sampled_from(DTYPES)
double_dtypes = st.sampled_from(("float64", "complex128"))
METHODS = ("auto", "exact", "qr", "gram", "randomized")
methods = st.sampled_from(METHODS)


def eps(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps)


def roundoff(dtype, norm: float, size: int = 1) -> float:
    """Slack for "up to rounding": c·ε·‖x‖ with c growing mildly with the size."""
    return 200.0 * math.sqrt(max(size, 1)) * eps(dtype) * norm


def exact_rtol(dtype) -> float:
    """Relative accuracy of an exact round trip (issue: 1e-12 double, 1e-5 single)."""
    return 1e-12 if eps(dtype) < 1e-10 else 1e-5


def rel_error(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    norm = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (norm if norm > 0 else 1.0))


@st.composite
def site_dims(draw, min_len: int = 1, max_len: int = 8, max_dim: int = 5, max_size: int = 4096):
    """Physical dims (L 1..8, each 1..5) whose product stays small enough to densify."""
    dims = draw(st.lists(st.integers(1, max_dim), min_size=min_len, max_size=max_len))
    while math.prod(dims) > max_size:
        dims = dims[:-1]
    return dims or [2]


@st.composite
def mps_trains(draw, dtype=None, min_len: int = 1, max_len: int = 8, max_bond: int = 8):
    dims = draw(site_dims(min_len=min_len, max_len=max_len))
    bond = draw(st.integers(1, max_bond))
    seed = draw(st.integers(0, 2**31))
    dtype = draw(dtypes) if dtype is None else dtype
    return tn.MPS.random(dims, bond, seed=seed, dtype=dtype)


# (site, conserve, sector) of random states in a charge sector
SECTOR_CASES = (
    ("spin-half", "Sz", (0,)),
    ("spin-half", "parity", (1,)),
    ("spin-one", "Sz", (2,)),
    ("electron", ("N", "Sz"), (4, 0)),
    ("electron", ("N", "parity"), (3, 1)),
)
SITE_DIMS = {"spin-half": 2, "spin-one": 3, "electron": 4}


@st.composite
def sector_states(draw, min_len: int = 2, max_len: int = 7, max_bond: int = 12):
    """A random MPS in a charge sector (``MPS.random(…, conserve=, sector=)``); sectors
    that no basis state of the drawn length reaches are skipped."""
    site, conserve, target = draw(st.sampled_from(SECTOR_CASES))
    L = draw(st.integers(min_len, max_len))
    bond = draw(st.integers(1, max_bond))
    seed = draw(st.integers(0, 2**31))
    try:
        return tn.MPS.random(
            [SITE_DIMS[site]] * L, bond, site=site, conserve=conserve, sector=target, seed=seed
        )
    except ValueError as error:  # a sector no basis state of L sites reaches
        assert "no basis state" in str(error)
        assume(False)


def charge_masks(train) -> list | None:
    """Per core the entries that conserve its charges (None if its cores mix charges)."""
    cores = [np.asarray(c) for c in train.cores]
    group, flows = train.charges[0], site_flows(train.charges, operator=isinstance(train, tn.MPO))
    bonds = channel_charges(cores, flows, group)
    if bonds is None:
        return None
    return [allowed_entries(bonds[k], flows[k], bonds[k + 1], group) for k in range(len(cores))]


@st.composite
def mpo_trains(draw, dtype=None, max_len: int = 5, max_bond: int = 8):
    outs = draw(site_dims(max_len=max_len, max_dim=4, max_size=64))
    ins = [draw(st.integers(1, 4)) for _ in outs]
    bond = draw(st.integers(1, max_bond))
    seed = draw(st.integers(0, 2**31))
    dtype = draw(dtypes) if dtype is None else dtype
    return tn.MPO.random(outs, ins, bond, seed=seed, dtype=dtype)


@st.composite
def dense_tensors(draw, dtype=None, max_size: int = 4096):
    """Random tensors, either full-rank noise or low-rank structure plus a little noise."""
    dims = draw(site_dims(max_size=max_size))
    dtype = draw(dtypes) if dtype is None else dtype
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        x = rng.standard_normal(dims)
        if np.issubdtype(np.dtype(dtype), np.complexfloating):
            x = x + 1j * rng.standard_normal(dims)
    else:
        bond = draw(st.integers(1, 4))
        x = tn.MPS.random(dims, bond, seed=seed, dtype="complex128").to_dense()
        x = x + draw(st.sampled_from([0.0, 1e-3, 1e-8])) * rng.standard_normal(dims)
        if not np.issubdtype(np.dtype(dtype), np.complexfloating):
            x = x.real
    return np.asarray(x, dtype=dtype)


@st.composite
def truncations(draw):
    """Keyword arguments of a truncating call: exact, max_bond, rtol, atol, or combinations."""
    kind = draw(st.sampled_from(["exact", "max_bond", "rtol", "atol", "max_bond+rtol"]))
    kwargs = {}
    if "max_bond" in kind:
        kwargs["max_bond"] = draw(st.integers(1, 6))
    if "rtol" in kind:
        kwargs["rtol"] = draw(st.sampled_from([1e-6, 1e-3, 0.05, 0.3, 0.9]))
    if kind == "atol":
        kwargs["atol"] = draw(st.sampled_from([1e-6, 1e-2, 0.5]))
    return kwargs


# ---------------------------------------------------------------------- Hamiltonians


def complex_chain(L: int) -> tn.MPO:
    """Spin-half XX chain with a complex phase on the hopping plus Ising terms (Hermitian)."""
    ops = tn.OpSum(L, site="spin-half")
    phase = np.exp(0.7j)
    for i in range(L - 1):
        ops.add(phase, "S+", i, "S-", i + 1).add(np.conj(phase), "S-", i, "S+", i + 1)
        ops.add(0.3, "Sz", i, "Sz", i + 1)
    for i in range(L):
        ops.add(0.2, "Sx", i)
    return ops.to_mpo()


def random_array(rng, shape, complex_: bool):
    """Standard normal entries, complex (both parts normal) when ``complex_``."""
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if complex_ else x


class Stop(Exception):
    """Raised by a callback to stop a run at a chosen step."""


def stopped_and_resumed(run, path, stop_at: int, **options):
    """``run(**options)`` stopped after step ``stop_at`` with a checkpoint at ``path``, then
    resumed from it; and the same run straight through: ``(resumed, straight)``."""

    def stop(record):
        if record.step == stop_at:
            raise Stop

    with pytest.raises(Stop):
        run(checkpoint=path, callback=stop, **options)
    return run(resume=path, **options), run(**options)
