"""Fuzzing: every public function and method, driven with random, invalid and edge arguments.

Only the documented exceptions may escape: ``ValueError`` and ``TypeError`` of exactly those
types (not subclasses such as ``LinAlgError``, ``AxisError`` or NumPy's ``UFuncTypeError``),
and ``ImportError`` for missing extras. Two documented exceptions of Python's own are also
accepted where Python raises them: ``ZeroDivisionError`` for ``train / 0`` (tested in
test_properties_contract.py) and ``OSError`` from ``save``/``load`` on paths that do not exist.
Anything else (IndexError, AttributeError, LinAlgError, MemoryError, RecursionError,
OverflowError, KeyError, ...) fails. A call that succeeds must not return a train with
non-finite cores (inputs are finite, so NaN/Inf out means a silent overflow).

The call table is built from (callable, argument strategies) rows (``CALLS``): each argument
is mostly a valid value, sometimes junk (``JUNK``: wrong types, empty, zero-size and object
arrays, NaN/Inf, negative and huge sizes such as 10**18, wrong ndim, bad method names and
tolerances). Inputs are cheap (L ≤ 4, bonds ≤ 3) so that one example takes milliseconds.

Example counts: ``test_fuzz_public_api`` runs 500 examples in the default suite (~30-60 s on
the 2-core box); ``test_fuzz_public_api_long`` (``-m slow``) runs 10,000.

The fuzzer's findings are pinned by tests at the end: huge factor counts, sizes and chain
lengths (once brute force, recursion and per-site allocation; now ValueErrors and a Pollard
rho factorisation).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tnkit as tn
from tnkit import interop

# ---------------------------------------------------------------------- values

_DIR = Path(tempfile.mkdtemp(prefix="tnkit-fuzz-"))


@pytest.fixture(scope="module", autouse=True)
def _cleanup_dir():
    yield
    shutil.rmtree(_DIR, ignore_errors=True)


NAN, INF = float("nan"), float("inf")
HUGE = (10**18, -(10**18), 2**63, 2**64 + 1)

JUNK = [
    None,
    "",
    "x",
    "auto",
    [],
    {},
    (),
    [1, 2],
    {"a": 1},
    True,
    False,
    object(),
    1 + 2j,
    NAN,
    INF,
    -INF,
    -1,
    0,
    2.5,
    -0.5,
    1e300,
    *HUGE,
    np.float64(NAN),
    np.int64(-3),
    np.float32(1.5),
    np.array([]),
    np.zeros((0, 3)),
    np.zeros((1, 0, 1)),
    np.array([1, 2], dtype=object),
    np.array([[None, 1.0]], dtype=object),
    np.ones((2, 2), dtype=np.float16),
    np.ones((2, 2), dtype=bool),
    np.ones((2, 2), dtype=np.int64),
    np.array(np.nan),
    np.array(1.0),
    np.full((2, 2), np.inf),
    np.ones((2, 2, 2, 2, 2)),
    np.ones((1, 2, 1)),
    np.ones((1, 2, 2, 1)),
]
junk = st.sampled_from(JUNK)

DTYPES = ("float32", "float64", "complex64", "complex128")
METHODS_SVD = ("auto", "exact", "qr", "gram", "randomized")
METHODS_COMPRESS = ("svd", "rescaled", "deparallelise", "delinearise", "parker")
METHODS_APPLY = ("zipup", "density", "fit", "exact")
SITE_TYPES = ("spin-half", "spin-one", "fermion", "electron")
OP_NAMES = ("Sz", "Sx", "Sy", "S+", "S-", "Id", "C", "Cdag", "N", "F", "Cup", "Nup", "Sz2", "bogus")
STATE_LABELS = ("up", "dn", "0", "1", "+1", "-1", "updn", "ud", "bogus")
CONSERVE = ("Sz", "N", "parity", ("N", "Sz"), None, "bogus", ("Sz", "Sz"))
CONSERVING_MPOS = (
    tn.models.heisenberg(3, conserve="Sz"),
    tn.models.hubbard(2, conserve=("N", "Sz")),
    tn.models.ising(3, g=0.5),
)

# Sizes for factorize_dims: anything up to and beyond int64 (Pollard's rho factorises them);
# factor counts small (a count in the thousands is valid but slow to pad), or junk.
FACTORIZE_N = st.one_of(st.integers(-2, 10**5), st.integers(10**5, 2**64))
FACTORIZE_MAX_K = 64


def mostly(valid: st.SearchStrategy, bad: st.SearchStrategy = junk) -> st.SearchStrategy:
    """``valid`` three times in four, else ``bad``."""
    return st.integers(0, 3).flatmap(lambda i: bad if i == 0 else valid)


small_ints = st.integers(-2, 6)
sizes = st.one_of(st.integers(-1, 4), st.sampled_from(HUGE))
bonds = st.one_of(st.integers(-1, 4), st.sampled_from(HUGE))
tolerances = st.one_of(
    st.sampled_from([None, 0.0, 1e-12, 1e-3, 0.3, 0.999, 1.0, 1.5, 1e300, -1e-3, NAN, INF]),
    st.floats(allow_nan=True, allow_infinity=True),
)
reals = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e-300, 1e300, NAN, INF, 1j, 1 + 1j]),
    st.floats(-10, 10),
)
dtypes = st.sampled_from(DTYPES)
seeds = st.one_of(st.integers(0, 2**32), st.sampled_from([None, -1, 1.5, "s"]))


@st.composite
def dims_lists(draw, max_len: int = 4, max_dim: int = 3) -> list:
    return draw(st.lists(st.integers(1, max_dim), min_size=1, max_size=max_len))


@st.composite
def arrays(draw, shape=None, dtype=None) -> np.ndarray:
    """Finite random arrays of a valid dtype, now and then with NaN/Inf, scaled or zero."""
    if shape is None:
        shape = draw(st.lists(st.integers(0, 3), min_size=0, max_size=5))
    dtype = draw(dtypes) if dtype is None else dtype
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    kind = draw(st.sampled_from(["plain"] * 6 + ["zero", "tiny", "huge", "nan", "inf"]))
    if kind == "zero":
        x = 0 * x
    elif kind == "tiny":
        x = x * 1e-300
    elif kind == "huge":
        x = x * (1e300 if dtype in ("float64", "complex128") else 1e30)
    elif kind in ("nan", "inf") and x.size:
        x.flat[0] = NAN if kind == "nan" else INF
    with np.errstate(all="ignore"):
        return np.asarray(x, dtype=dtype)


@st.composite
def mps(draw, dims=None, dtype=None) -> tn.MPS:
    dims = draw(dims_lists()) if dims is None else dims
    dtype = draw(dtypes) if dtype is None else dtype
    kind = draw(st.sampled_from(["random"] * 5 + ["zero", "product", "tiny", "huge"]))
    m = tn.MPS.random(dims, draw(st.integers(1, 3)), seed=draw(st.integers(0, 99)), dtype=dtype)
    if kind == "zero":
        return m * 0
    if kind == "product":
        return tn.MPS([np.ones((1, d, 1), dtype=dtype) for d in dims])
    if kind in ("tiny", "huge"):
        scale = {"tiny": 1e-30, "huge": 1e30}[kind]
        return tn.MPS([c * scale for c in m.cores])
    if draw(st.booleans()):
        return m.canonicalize(draw(st.integers(0, len(dims) - 1)))
    return m


@st.composite
def mpo(draw, outs=None, ins=None, dtype=None) -> tn.MPO:
    outs = draw(dims_lists()) if outs is None else outs
    ins = [draw(st.integers(1, 3)) for _ in outs] if ins is None else ins
    dtype = draw(dtypes) if dtype is None else dtype
    kind = draw(st.sampled_from(["random"] * 4 + ["identity", "zero"]))
    if kind == "identity" and list(outs) == list(ins):
        return tn.MPO.identity(outs, dtype=dtype)
    o = tn.MPO.random(
        outs, ins, draw(st.integers(1, 3)), seed=draw(st.integers(0, 99)), dtype=dtype
    )
    return o * 0 if kind == "zero" else o


trains = st.one_of(mps(), mpo())


def _matrix(shape: tuple[int, int]) -> st.SearchStrategy:
    return arrays(shape=shape)


@st.composite
def matched(draw):
    """An MPS and a square MPO on the same dims (or, now and then, mismatched ones)."""
    dims = draw(dims_lists())
    dtype = draw(dtypes)
    state = draw(mps(dims=dims, dtype=draw(st.sampled_from([dtype, dtype, draw(dtypes)]))))
    other = dims if draw(st.integers(0, 5)) else draw(dims_lists())
    return state, draw(mpo(outs=other, ins=other, dtype=dtype))


def any_value() -> st.SearchStrategy:
    return st.one_of(junk, sizes, reals, arrays(), trains)


# ---------------------------------------------------------------------- the call table


@dataclass
class Call:
    name: str
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    allowed: tuple = ()

    def __repr__(self) -> str:
        return f"{self.name}(*{self.args!r}, **{self.kwargs!r})"


ROW_NAMES: list[str] = []


def row(name: str, fn: Callable, *args: st.SearchStrategy, allowed=(), **kwargs):
    """One row of the table: ``fn`` with positional and keyword argument strategies. Keyword
    strategies may draw ``OMIT`` to leave the argument out."""
    ROW_NAMES.append(name)
    return st.builds(
        lambda a, k: Call(
            name, fn, tuple(a), {n: v for n, v in k.items() if v is not OMIT}, allowed
        ),
        st.tuples(*args),
        st.fixed_dictionaries(kwargs),
    )


OMIT = object()


def opt(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """A keyword argument: left out, valid, or junk."""
    return st.one_of(st.just(OMIT), mostly(strategy))


def method(name: str) -> Callable:
    return lambda obj, *a, **k: getattr(obj, name)(*a, **k)


truncation_kwargs = {
    "max_bond": opt(bonds),
    "rtol": opt(tolerances),
    "atol": opt(tolerances),
}


@st.composite
def cores_lists(draw, legs: int):
    """Lists of cores: valid chains, broken bonds, wrong ndim, mixed dtypes, junk entries."""
    L = draw(st.integers(0, 4))
    bond = [1] + [draw(st.integers(1, 3)) for _ in range(L - 1)] + [1]
    dtype = draw(dtypes)
    cores = []
    for k in range(L):
        phys = [draw(st.integers(0 if draw(st.integers(0, 9)) == 0 else 1, 3)) for _ in range(legs)]
        core = draw(arrays(shape=(bond[k], *phys, bond[k + 1]), dtype=dtype))
        cores.append(core)
    if cores and draw(st.integers(0, 3)) == 0:
        k = draw(st.integers(0, len(cores) - 1))
        cores[k] = draw(st.one_of(junk, arrays()))
    return draw(st.sampled_from([cores, tuple(cores), iter(cores)])) if cores else cores


CALLS = [
    # construction
    row("MPS", tn.MPS, mostly(cores_lists(1))),
    row("MPO", tn.MPO, mostly(cores_lists(2)), matrix_shape=opt(st.tuples(sizes, sizes))),
    row(
        "MPS.random",
        tn.MPS.random,
        mostly(st.one_of(dims_lists(), st.lists(sizes, max_size=3))),
        mostly(bonds),
        seed=opt(seeds),
        dtype=opt(st.one_of(dtypes, st.sampled_from(["int32", "float16", np.float64, None]))),
        like=opt(st.one_of(arrays(shape=(2,)), junk)),
    ),
    row(
        "MPO.random",
        tn.MPO.random,
        mostly(st.one_of(dims_lists(), st.lists(sizes, max_size=3))),
        mostly(st.one_of(dims_lists(), st.lists(sizes, max_size=3))),
        mostly(bonds),
        seed=opt(seeds),
        dtype=opt(dtypes),
    ),
    row(
        "MPO.identity",
        tn.MPO.identity,
        mostly(st.one_of(dims_lists(), st.lists(sizes, max_size=3))),
        dtype=opt(dtypes),
        like=opt(arrays(shape=(2,))),
    ),
    row(
        "factorize_dims",
        tn.factorize_dims,
        mostly(st.one_of(FACTORIZE_N, st.sampled_from([1.0, True, "4"]))),
        mostly(st.one_of(st.integers(-2, FACTORIZE_MAX_K), st.sampled_from([2.0, None]))),
        pad=opt(st.booleans()),
    ),
    # decomposition
    row(
        "tt_svd",
        tn.tt_svd,
        mostly(arrays()),
        mostly(st.one_of(st.none(), dims_lists(max_len=5, max_dim=4), st.lists(sizes, max_size=3))),
        method=opt(st.sampled_from(METHODS_SVD)),
        **truncation_kwargs,
    ),
    row(
        "from_matrix",
        tn.from_matrix,
        mostly(
            st.one_of(st.tuples(st.integers(0, 9), st.integers(0, 9)).flatmap(_matrix), arrays())
        ),
        mostly(st.one_of(st.integers(1, 3), dims_lists(max_len=3)), junk),
        mostly(st.one_of(st.integers(1, 3), dims_lists(max_len=3)), junk),
        method=opt(st.sampled_from(METHODS_SVD)),
        pad=opt(st.booleans()),
        **truncation_kwargs,
    ),
    # canonical forms, norms
    row("canonicalize", method("canonicalize"), trains, mostly(small_ints)),
    row("is_canonical", method("is_canonical"), trains, mostly(small_ints), tol=opt(tolerances)),
    row(
        "compress",
        method("compress"),
        trains,
        method=opt(st.sampled_from(METHODS_COMPRESS)),
        svd_method=opt(st.sampled_from(METHODS_SVD)),
        tol=opt(tolerances),
        **truncation_kwargs,
    ),
    row("norm", method("norm"), trains),
    row("log_norm", method("log_norm"), trains),
    row("to_dense", method("to_dense"), trains),
    row("repr", repr, trains),
    row("num_params", lambda t: (t.num_params, t.bond_dims, t.phys_dims, len(t), t.dtype), trains),
    # contraction and arithmetic
    row("inner", tn.inner, mostly(trains, any_value()), mostly(trains, any_value())),
    row("inner-matched", lambda p: tn.inner(p[0], p[0].conj()), matched()),
    row("distance", tn.distance, mostly(trains, any_value()), mostly(trains, any_value())),
    row(
        "expectation",
        lambda p, n: tn.expectation(*p, normalize=n),
        mostly(matched(), st.tuples(any_value(), any_value())),
        mostly(st.booleans()),
    ),
    row(
        "variance",
        lambda p: tn.variance(p[1], p[0]),
        mostly(matched(), st.tuples(any_value(), any_value())),
    ),
    row(
        "tdvp",
        lambda p, n, m: tn.tdvp(
            _hermitian(p[1]) if n else p[1], p[0], 0.1, dt=0.05, method=m, max_bond=4
        ),
        mostly(matched(), st.tuples(any_value(), any_value())),
        st.booleans(),
        st.sampled_from(["two-site", "one-site"]),
    ),
    row(
        "tdvp_operator",
        lambda p, a: tn.tdvp_operator(p[1], p[1], 0.1, dt=0.05, max_bond=4, augment=a),
        mostly(matched(), st.tuples(any_value(), any_value())),
        st.booleans(),
    ),
    row(
        "two_site_variance",
        lambda p: tn.two_site_variance(p[1], p[0]),
        mostly(matched(), st.tuples(any_value(), any_value())),
    ),
    row(
        "dmrg",
        lambda p, b, n: tn.dmrg(_hermitian(p[1]) if n else p[1], max_bond=b, sweeps=1),
        mostly(matched(), st.tuples(any_value(), any_value())),
        mostly(bonds),
        st.booleans(),
    ),
    row(
        "apply",
        lambda p, k: tn.apply(p[1], p[0], **k),
        mostly(matched(), st.tuples(any_value(), any_value())),
        st.fixed_dictionaries(
            {},
            optional={
                "method": mostly(st.sampled_from(METHODS_APPLY)),
                "max_bond": mostly(bonds),
                "rtol": tolerances,
                "atol": tolerances,
                "return_info": mostly(st.booleans()),
                "oversample": mostly(st.floats(0, 5)),
                "relax": mostly(st.floats(0, 20)),
                "tol": tolerances,
                "max_sweeps": mostly(st.integers(-1, 3)),
                "two_site_sweeps": mostly(st.integers(-1, 2)),
                "guess_bond": mostly(st.one_of(st.none(), bonds)),
                "bogus": junk,
            },
        ),
    ),
    row(
        "apply-mpo",
        lambda a, b, k: tn.apply(a, b, **k),
        mpo(),
        mostly(trains, any_value()),
        st.fixed_dictionaries(
            {}, optional={"method": st.sampled_from(METHODS_APPLY), "max_bond": bonds}
        ),
    ),
    row("+", lambda a, b: a + b, trains, mostly(trains, any_value())),
    row("-", lambda a, b: a - b, trains, mostly(trains, any_value())),
    row("+matched", lambda p: (p[0] + p[0], p[1] - p[1]), matched()),
    row("*", lambda a, c: a * c, trains, mostly(reals, any_value())),
    row("r*", lambda a, c: c * a, trains, mostly(reals, any_value())),
    row("/", lambda a, c: a / c, trains, mostly(reals, any_value()), allowed=(ZeroDivisionError,)),
    row("neg-conj", lambda a: (-a, a.conj()), trains),
    row("@", lambda a, b: a @ b, mostly(mpo(), trains), mostly(trains, any_value())),
    row("@matched", lambda p: (p[1] @ p[0], p[1] @ p[1]), matched()),
    row("T-H-trace", lambda o: (o.T, o.H, o.trace()), mpo()),
    row("to_matrix", lambda o, padded: o.to_matrix(padded=padded), mpo(), mostly(st.booleans())),
    # measurements
    row("singular_values", method("singular_values"), trains, mostly(small_ints)),
    row(
        "measure.singular_values",
        tn.measure.singular_values,
        mostly(trains, any_value()),
        mostly(small_ints),
    ),
    row("entropy", method("entropy"), trains, mostly(small_ints), mostly(reals)),
    row(
        "measure.entropy",
        tn.measure.entropy,
        mostly(trains, any_value()),
        mostly(small_ints),
        alpha=opt(reals),
    ),
    row("entropies", method("entropies"), trains, mostly(reals)),
    row("measure.entropies", tn.measure.entropies, mostly(trains, any_value()), alpha=opt(reals)),
    row(
        "sample",
        method("sample"),
        mps(),
        mostly(st.one_of(st.integers(-1, 5), st.sampled_from(HUGE))),
        seed=opt(seeds),
    ),
    row(
        "measure.sample",
        tn.measure.sample,
        mostly(mps(), any_value()),
        mostly(st.integers(-1, 5)),
        seed=opt(seeds),
    ),
    row("probabilities", method("probabilities"), mps()),
    row("measure.probabilities", tn.measure.probabilities, mostly(mps(), any_value())),
    row(
        "local_expectation",
        tn.local_expectation,
        mostly(mps(), any_value()),
        mostly(st.one_of(arrays(shape=(2, 2)), arrays(shape=(3, 3)), st.sampled_from(OP_NAMES))),
        mostly(small_ints),
        normalize=opt(st.booleans()),
        site_type=opt(st.sampled_from(SITE_TYPES)),
    ),
    row(
        "correlation",
        tn.correlation,
        mostly(mps(), any_value()),
        mostly(st.one_of(arrays(shape=(2, 2)), st.sampled_from(OP_NAMES))),
        mostly(small_ints),
        mostly(st.one_of(arrays(shape=(2, 2)), st.sampled_from(OP_NAMES))),
        mostly(small_ints),
        normalize=opt(st.booleans()),
        site_type=opt(st.sampled_from(SITE_TYPES)),
    ),
    # operators and models
    row(
        "OpSum",
        lambda L, site, terms, dtype: _opsum(L, site, terms, dtype),
        mostly(st.integers(-1, 5), junk),
        mostly(st.one_of(st.sampled_from(SITE_TYPES), dims_lists(max_len=5))),
        st.lists(
            st.lists(
                st.one_of(st.sampled_from(OP_NAMES), small_ints, reals, arrays(shape=(2, 2)), junk),
                max_size=5,
            ),
            max_size=4,
        ),
        mostly(st.one_of(st.none(), dtypes)),
    ),
    row(
        "heisenberg",
        tn.models.heisenberg,
        mostly(st.integers(-1, 6), junk),
        J=opt(reals),
        Jz=opt(reals),
        h=opt(reals),
    ),
    row("ising", tn.models.ising, mostly(st.integers(-1, 6), junk), J=opt(reals), g=opt(reals)),
    row(
        "hubbard",
        tn.models.hubbard,
        mostly(st.integers(-1, 5), junk),
        t=opt(reals),
        U=opt(reals),
        mu=opt(reals),
    ),
    row(
        "heisenberg_cylinder",
        tn.models.heisenberg_cylinder,
        mostly(st.integers(-1, 3), junk),
        mostly(st.integers(-1, 3), junk),
        J=opt(reals),
        Jz=opt(reals),
        h=opt(reals),
    ),
    row(
        "hubbard_cylinder",
        tn.models.hubbard_cylinder,
        mostly(st.integers(-1, 2), junk),
        mostly(st.integers(-1, 2), junk),
        t=opt(reals),
        U=opt(reals),
        mu=opt(reals),
    ),
    row(
        "long_range_exp",
        tn.models.long_range_exp,
        mostly(st.integers(-1, 6), junk),
        mostly(st.lists(st.tuples(reals, reals), max_size=3)),
        opt(st.sampled_from(OP_NAMES)),
        opt(st.sampled_from(OP_NAMES)),
        site=opt(st.sampled_from(SITE_TYPES)),
    ),
    # symmetries (issue 19)
    row(
        "product_state",
        lambda states, **k: tn.MPS.product_state(states, **k),
        mostly(st.lists(st.one_of(small_ints, st.sampled_from(STATE_LABELS)), max_size=5)),
        site=opt(st.one_of(st.sampled_from(SITE_TYPES), dims_lists(max_len=5))),
        conserve=opt(st.sampled_from(CONSERVE)),
        dtype=opt(dtypes),
    ),
    row(
        "OpSum-conserve",
        lambda L, site, conserve, terms: _opsum_conserving(L, site, conserve, terms),
        mostly(st.integers(-1, 4), junk),
        mostly(st.sampled_from(SITE_TYPES)),
        mostly(st.sampled_from(CONSERVE)),
        st.lists(
            st.lists(st.one_of(st.sampled_from(OP_NAMES), small_ints, reals, junk), max_size=5),
            max_size=4,
        ),
    ),
    row(
        "bond_charges",
        lambda o, site, conserve: tn.operators.bond_charges(o, site=site, conserve=conserve),
        mostly(st.one_of(mpo(), st.sampled_from(CONSERVING_MPOS)), any_value()),
        mostly(st.one_of(st.none(), st.sampled_from(SITE_TYPES))),
        mostly(st.sampled_from(CONSERVE)),
    ),
    # storage
    row(
        "save-load",
        lambda obj, name, like: _save_load(obj, name, like),
        mostly(
            st.one_of(trains, mps(dtype="float64").map(lambda t: t.compress(max_bond=1).report))
        ),
        mostly(
            st.sampled_from(
                ["a.npz", "b.safetensors", "c.txt", "noext", "missing/d.npz", ".npz", ""]
            )
        ),
        opt(arrays(shape=(2,))),
        allowed=(OSError,),
    ),
    row(
        "load-garbage",
        lambda data, name: _load_garbage(data, name),
        st.binary(max_size=200),
        st.sampled_from(["g.npz", "g.safetensors"]),
    ),
    row("load-junk", tn.load, junk, allowed=(OSError,)),
    row("save-junk", tn.save, junk, mostly(trains, any_value()), allowed=(OSError,)),
    # truncation rules
    row(
        "Truncation",
        lambda norm, **k: _truncation(tn.Truncation(**k), norm),
        st.sampled_from([0.0, 1.0, 1e300, 1e-300]),
        max_bond=opt(st.one_of(st.none(), bonds)),
        rtol=opt(st.one_of(st.none(), tolerances)),
        atol=opt(st.one_of(st.none(), tolerances)),
    ),
    # interop (ImportError when the peer library is missing)
    row("to_quimb", interop.to_quimb, mostly(trains, any_value())),
    row("to_tensorly", interop.to_tensorly, mostly(trains, any_value())),
    row("to_tenpy", interop.to_tenpy, mostly(mps(dims=[2, 2, 2]), any_value())),
    row("from_quimb", interop.from_quimb, any_value()),
    row("from_tensorly", interop.from_tensorly, any_value()),
    row("from_tenpy", interop.from_tenpy, any_value()),
    row("from_tltorch", interop.from_tltorch, any_value()),
    row("to_tltorch", interop.to_tltorch, mostly(mpo(), any_value())),
]


def _truncation(rule, norm):
    return rule.total_budget(norm), rule.is_exact, rule.has_tolerance


def _hermitian(o):
    """``o + o†`` for an MPO (a Hermitian operator to hand the solvers), anything else as is."""
    return o + o.H if isinstance(o, tn.MPO) else o


def _opsum(L, site, terms, dtype):
    ops = tn.OpSum(L, site)
    for term in terms:
        if term:
            ops.add(*term)
        else:
            ops.add(1.0, "Id", 0)
    ops = (ops + ops) * 0.5
    return ops.to_mpo(dtype=dtype)


def _opsum_conserving(L, site, conserve, terms):
    ops = tn.OpSum(L, site, conserve=conserve)
    for term in terms:
        ops.add(*term)
    return ops.to_mpo()


def _save_load(obj, name, like):
    path = _DIR / name
    tn.save(str(path), obj)
    back = tn.load(path) if like is None else tn.load(path, like=like)
    if isinstance(obj, tn.TensorTrain):
        assert type(back) is type(obj) and len(back) == len(obj)
    return back


def _load_garbage(data: bytes, name: str):
    path = _DIR / name
    path.write_bytes(data)
    return tn.load(path)


calls = st.one_of(CALLS)

# ---------------------------------------------------------------------- the check

DOCUMENTED = (ValueError, TypeError)


def check(call: Call) -> None:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            result = call.fn(*call.args, **call.kwargs)
        except Exception as exc:  # noqa: BLE001 - sorting the escaping exceptions is the test
            if type(exc) in DOCUMENTED or isinstance(exc, ImportError):
                return
            if call.allowed and isinstance(exc, call.allowed):
                return
            raise AssertionError(
                f"{call.name}: undocumented {type(exc).__module__}.{type(exc).__name__} "
                f"escaped: {exc}\n  call: {call!r}"
            ) from exc
    for value in result if isinstance(result, tuple) else (result,):
        if isinstance(value, tn.TensorTrain):
            bad = [k for k, c in enumerate(value.cores) if not np.all(np.isfinite(np.asarray(c)))]
            assert not bad, f"{call.name}: result has non-finite cores {bad}\n  call: {call!r}"


FUZZ_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    database=None,
)


@settings(max_examples=500, **FUZZ_SETTINGS)
@given(call=calls)
def test_fuzz_public_api(call):
    check(call)


@pytest.mark.slow
@settings(max_examples=10_000, **FUZZ_SETTINGS)
@given(call=calls)
def test_fuzz_public_api_long(call):
    check(call)


def test_every_public_name_is_in_the_table():
    rows = set(ROW_NAMES) | {part for name in ROW_NAMES for part in name.split("-")}
    public = set(tn.__all__) - {"TensorTrain", "TruncationReport", "models"}
    public |= {f"{name}" for name in tn.models.__all__}
    public |= {name for name in interop.__all__} if hasattr(interop, "__all__") else set()
    missing = sorted(name for name in public if name not in rows)
    assert not missing, f"public names without a fuzz row: {missing}"


# ---------------------------------------------------------------------- findings, fixed


@pytest.mark.parametrize(
    "call",
    [lambda: tn.factorize_dims(6, 10**18), lambda: tn.MPO.from_matrix(np.ones((4, 4)), 10**18, 2)],
    ids=["factorize_dims", "from_matrix"],
)
def test_factorize_dims_huge_k_is_a_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_factorize_dims_huge_n_returns_quickly():
    import subprocess
    import sys

    code = "import tnkit as tn; tn.factorize_dims(10**18, 2)"
    try:
        subprocess.run([sys.executable, "-c", code], timeout=3, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("factorize_dims(10**18, 2) did not return within 3 s")


@pytest.mark.parametrize(
    "build",
    [lambda: tn.OpSum(10**18), lambda: tn.models.ising(10**18), lambda: tn.OpSum(2**63)],
    ids=["OpSum-MemoryError", "ising-MemoryError", "OpSum-OverflowError"],
)
def test_huge_chain_length_is_a_value_error(build):
    try:
        build()
    except (ValueError, TypeError):
        return
    except (MemoryError, OverflowError) as exc:
        pytest.fail(f"{type(exc).__name__} instead of a ValueError naming L")
