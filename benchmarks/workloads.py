"""The five benchmark workloads: inputs, the implementations compared on them, and their error.

Inputs (fixed seeds, identical for every library):

- ``tt_svd``: a smooth signal on a 2^n grid (damped sine + Runge bump + chirp, all of low QTT
  rank) plus Gaussian noise of 1e-3 of its RMS. The noise makes every unfolding full-rank, so each
  SVD does full work, while max_bond 64 keeps all of the signal: the optimal error is ~1e-3, the
  same order for every method, so errors are comparable.
- ``from_matrix``: W = dense MPO of random cores with bond 16 (8 in quick mode), normalised, plus
  Gaussian noise of 1e-2 of its Frobenius norm: low TT-matrix rank plus a full-rank floor.
- ``canonicalize``, ``compress``, ``overlap``: Gaussian MPS cores (Dl, 2, Dr) scaled by
  1/sqrt(2 Dl), bonds min(2^k, 2^(L-k), chi); tnkit gets them through ``tn.MPS(cores)``.

Errors are measured here, against the original object, never read from a library.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import peers
import tt_numpy
from harness import Case, Impl
from tt_numpy import Cores

SIGNAL_NOISE = 1e-3
MATRIX_NOISE = 1e-2
TENPY_TRUNCATION = {"svd_min": 1e-300, "trunc_cut": None}


@dataclass(frozen=True)
class Workload:
    """A named family of cases at three sizes: tiny (warm-up), quick and full."""

    name: str
    build: Callable[[dict[str, Any]], list[Case]]
    sizes: dict[str, dict[str, Any]]


# -- tnkit glue -------------------------------------------------------------------------------


def _tn() -> Any:
    return peers.load("tnkit")


def tnkit_cores(train: Any) -> Cores:
    return [np.asarray(core) for core in train.cores]


def tnkit_bound(train: Any) -> float | None:
    report = getattr(train, "report", None)
    return None if report is None else float(report.rel_error_bound)


def _tnkit_impl(prepare: Callable[[], Any], run: Callable[[Any], Any]) -> Impl:
    return Impl("tnkit", prepare, run, extract=tnkit_cores, bound=tnkit_bound)


def _fresh_copy(value: Any) -> Callable[[], Any]:
    """A ``prepare`` that hands every run a fresh copy, so no library sees another's edits."""
    return lambda: value.copy()


def _mutated(operation: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap an in-place method call (quimb, TeNPy) so that the run returns the object."""

    def run(obj: Any) -> Any:
        operation(obj)
        return obj

    return run


def _capped(error: Callable[[Cores], float], max_bond: int) -> Callable[[Cores], float]:
    """Refuse (as an error in the table) a result whose bonds exceed the requested cap."""

    def checked(cores: Cores) -> float:
        bond = tt_numpy.max_bond_dim(cores)
        if bond > max_bond:
            raise ValueError(f"result has bond dimension {bond} > max_bond={max_bond}")
        return error(cores)

    return checked


# -- tt_svd -----------------------------------------------------------------------------------


def smooth_signal(sites: int, seed: int = 0) -> np.ndarray:
    """Low-QTT-rank signal on a 2^sites grid plus white noise of SIGNAL_NOISE times its RMS."""
    t = np.arange(2**sites) / 2**sites
    clean = (
        np.sin(2 * np.pi * 37 * t) * np.exp(-3 * t)
        + 1 / (1 + 100 * (t - 0.4) ** 2)
        + 0.5 * np.cos(2 * np.pi * 5 * t**2)
    )
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return clean + SIGNAL_NOISE * np.sqrt(np.mean(clean**2)) * noise


def _vector_error(x: np.ndarray, cores: Cores) -> float:
    return tt_numpy.rel_error(x, tt_numpy.mps_to_dense(cores))


def build_tt_svd(size: dict[str, Any]) -> list[Case]:
    sites, max_bond = size["sites"], size["max_bond"]
    x = smooth_signal(sites)
    dims = (2,) * sites
    ranks = [1] + [max_bond] * (sites - 1) + [1]

    def quimb_run(v: np.ndarray) -> Any:
        qtn = peers.load("quimb")
        return qtn.MatrixProductState.from_dense(v, dims=list(dims), max_bond=max_bond, cutoff=0.0)

    def tensorly_run(v: np.ndarray) -> Any:
        from tensorly.decomposition import tensor_train

        return tensor_train(v.reshape(dims), rank=list(ranks))

    impls = [
        _tnkit_impl(_fresh_copy(x), lambda v: _tn().tt_svd(v, dims=dims, max_bond=max_bond)),
        Impl("quimb", _fresh_copy(x), quimb_run, peers.quimb_mps_cores, note="cutoff=0"),
        Impl("tensorly", _fresh_copy(x), tensorly_run, peers.tensorly_cores),
        Impl("lapack", _fresh_copy(x), lambda v: tt_numpy.tt_svd(v, dims, max_bond), list),
    ]
    name = f"tt_svd 2^{sites} chi={max_bond}"
    error = _capped(partial(_vector_error, x), max_bond)
    return [Case("tt_svd", name, size, impls, error, "||x - x~|| / ||x|| against dense x")]


# -- from_matrix ------------------------------------------------------------------------------


def structured_matrix(
    out_dims: Sequence[int], in_dims: Sequence[int], structure_bond: int, seed: int = 0
) -> np.ndarray:
    """Dense MPO of bond ``structure_bond`` (unit Frobenius norm) plus MATRIX_NOISE of noise."""
    rng = np.random.default_rng(seed)
    w = tt_numpy.mpo_to_matrix(tt_numpy.random_mpo(rng, out_dims, in_dims, structure_bond))
    w /= np.linalg.norm(w)
    return w + MATRIX_NOISE / math.sqrt(w.size) * rng.standard_normal(w.shape)


def _matrix_error(w: np.ndarray, cores: Cores) -> float:
    return tt_numpy.rel_error(w, tt_numpy.mpo_to_matrix(cores))


def build_from_matrix(size: dict[str, Any]) -> list[Case]:
    out_dims = in_dims = tuple(size["dims"])
    max_bond = size["max_bond"]
    w = structured_matrix(out_dims, in_dims, size["structure_bond"])
    ranks = [1] + [max_bond] * (len(out_dims) - 1) + [1]

    def tnkit_run(m: np.ndarray) -> Any:
        return _tn().MPO.from_matrix(m, out_dims, in_dims, max_bond=max_bond)

    def quimb_run(m: np.ndarray) -> Any:
        qtn = peers.load("quimb")
        tensor = m.reshape(*out_dims, *in_dims)
        return qtn.MatrixProductOperator.from_dense(
            tensor, dims=list(out_dims), max_bond=max_bond, cutoff=0.0
        )

    def tensorly_run(m: np.ndarray) -> Any:
        from tensorly.decomposition import tensor_train_matrix

        return tensor_train_matrix(m.reshape(*out_dims, *in_dims), rank=list(ranks))

    def lapack_run(m: np.ndarray) -> Cores:
        return tt_numpy.mpo_from_matrix(m, out_dims, in_dims, max_bond)

    impls = [
        _tnkit_impl(_fresh_copy(w), tnkit_run),
        Impl("quimb", _fresh_copy(w), quimb_run, peers.quimb_mpo_cores, note="cutoff=0"),
        Impl("tensorly", _fresh_copy(w), tensorly_run, peers.tensorly_cores),
        Impl("lapack", _fresh_copy(w), lapack_run, list),
    ]
    name = f"from_matrix {w.shape[0]}x{w.shape[1]} {out_dims} chi={max_bond}"
    error = _capped(partial(_matrix_error, w), max_bond)
    return [Case("from_matrix", name, size, impls, error, "||W - W~|| / ||W|| against dense W")]


# -- canonicalize, compress, overlap ------------------------------------------------------------


def _random_state(size: dict[str, Any], seed: int) -> Cores:
    rng = np.random.default_rng(seed)
    return tt_numpy.random_mps(rng, size["length"], 2, size["chi"])


def _cores_copy(cores: Cores) -> Callable[[], Cores]:
    return lambda: [c.copy() for c in cores]


def _state_label(size: dict[str, Any]) -> str:
    return f"L={size['length']} chi={size['chi']}"


STATE_ERROR_NOTE = "||a - a~|| / ||a|| from MPS overlaps (floor ~1e-7 from cancellation)"
CANONICAL_NOTE = "max(state error as for compress, isometry defect max|A^T A - I| of the result)"


def _canonical_error(cores: Cores, centre: int, result: Cores) -> float:
    """A canonicalisation must keep the state and make the result canonical about ``centre``."""
    state_error = tt_numpy.mps_rel_error(cores, result)
    return max(state_error, tt_numpy.isometry_defect(result, centre))


def _canonicalize_case(size: dict[str, Any], cores: Cores, centre: int) -> Case:
    last = len(cores) - 1
    quimb_sweep = "left_canonize" if centre == last else "right_canonize"
    impls = [
        _tnkit_impl(lambda: _tn().MPS(cores), lambda m: m.canonicalize(centre)),
        Impl(
            "quimb",
            lambda: peers.quimb_mps(cores),
            _mutated(lambda m: getattr(m, quimb_sweep)()),
            peers.quimb_mps_cores,
            note=quimb_sweep,
        ),
        Impl("lapack", _cores_copy(cores), lambda c: tt_numpy.canonicalize(c, centre), list),
    ]
    if centre == 0:
        impls.insert(
            2,
            Impl(
                "tenpy",
                lambda: peers.tenpy_mps(cores, form=None),
                _mutated(lambda m: m.canonical_form(renormalize=False)),
                peers.tenpy_mps_cores,
                note="canonical_form: QR sweep + SVD sweep",
            ),
        )
    centre_label = "L-1" if centre == last else str(centre)
    name = f"canonicalize {_state_label(size)} centre={centre_label}"
    error = partial(_canonical_error, cores, centre)
    return Case("canonicalize", name, size, impls, error, CANONICAL_NOTE)


def build_canonicalize(size: dict[str, Any]) -> list[Case]:
    cores = _random_state(size, seed=0)
    return [_canonicalize_case(size, cores, centre) for centre in (len(cores) - 1, 0)]


def build_compress(size: dict[str, Any]) -> list[Case]:
    cores = _random_state(size, seed=0)
    max_bond = size["max_bond"]
    trunc_par = {"chi_max": max_bond, **TENPY_TRUNCATION}
    impls = [
        _tnkit_impl(lambda: _tn().MPS(cores), lambda m: m.compress(max_bond=max_bond)),
        Impl(
            "quimb",
            lambda: peers.quimb_mps(cores),
            _mutated(lambda m: m.compress(max_bond=max_bond, cutoff=0.0)),
            peers.quimb_mps_cores,
            note="cutoff=0",
        ),
        Impl(
            "tenpy",
            lambda: peers.tenpy_mps(cores, form="B"),
            _mutated(lambda m: m.compress_svd(trunc_par)),
            peers.tenpy_mps_cores,
            note="compress_svd, svd_min=1e-300",
        ),
        Impl("lapack", _cores_copy(cores), lambda c: tt_numpy.compress(c, max_bond), list),
    ]
    name = f"compress {_state_label(size)} -> {max_bond}"
    error = _capped(partial(tt_numpy.mps_rel_error, cores), max_bond)
    return [Case("compress", name, size, impls, error, STATE_ERROR_NOTE)]


OVERLAP_NOTE = "|v - v_ref| / |v_ref|, v_ref from rescaled NumPy transfer matrices"


def _overlap_error(a: Cores, b: Cores) -> Callable[[complex], float]:
    """|v - <a|b>| / |<a|b>| against the rescaled NumPy transfer-matrix contraction."""
    mantissa, log_scale = tt_numpy.overlap_log(a, b)

    def error(value: complex) -> float:
        return abs(value * math.exp(-log_scale) - mantissa) / abs(mantissa)

    return error


def build_overlap(size: dict[str, Any]) -> list[Case]:
    a, b = _random_state(size, seed=0), _random_state(size, seed=1)
    impls = [
        Impl("tnkit", lambda: (_tn().MPS(a), _tn().MPS(b)), lambda p: _tn().inner(*p), complex),
        Impl(
            "quimb",
            lambda: (peers.quimb_mps(a), peers.quimb_mps(b)),
            lambda p: p[0].H @ p[1],
            complex,
            note="a.H @ b",
        ),
        Impl("lapack", lambda: (a, b), lambda p: tt_numpy.overlap(*p), complex),
    ]
    name = f"overlap {_state_label(size)}"
    error = _overlap_error(a, b)
    return [Case("overlap", name, size, impls, error, OVERLAP_NOTE)]


# -- registry -----------------------------------------------------------------------------------

_STATE_SIZES = {
    "tiny": {"length": 6, "chi": 4, "max_bond": 2},
    "quick": {"length": 32, "chi": 128, "max_bond": 32},
    "full": {"length": 64, "chi": 256, "max_bond": 64},
}

WORKLOADS = [
    Workload(
        "tt_svd",
        build_tt_svd,
        {
            "tiny": {"sites": 8, "max_bond": 4},
            "quick": {"sites": 18, "max_bond": 64},
            "full": {"sites": 22, "max_bond": 64},
        },
    ),
    Workload(
        "from_matrix",
        build_from_matrix,
        {
            "tiny": {"dims": (2, 2, 2), "max_bond": 2, "structure_bond": 2},
            "quick": {"dims": (4, 8, 8, 4), "max_bond": 32, "structure_bond": 8},
            "full": {"dims": (8, 8, 8, 8), "max_bond": 64, "structure_bond": 16},
        },
    ),
    Workload("canonicalize", build_canonicalize, _STATE_SIZES),
    Workload("compress", build_compress, _STATE_SIZES),
    Workload("overlap", build_overlap, _STATE_SIZES),
]
