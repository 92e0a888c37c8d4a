"""Time evolution of a state under an MPO Hamiltonian by TDVP: ψ(t) = exp(−iHt)ψ, or
exp(−Hτ)ψ normalised in imaginary time, with observables measured after every step.

The run: checks, the time grid, switching from two-site to one-site, measurements, progress,
checkpoints. The sweeps themselves are ``tdvp_steps``'s; nothing here touches a core.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _backend as backend
from .._checks import check_number
from .._progress import logger
from ..contract import expectation
from ..mpo import MPO
from ..mps import MPS
from ..truncation import Truncation
from .checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from .checks import check_hamiltonian, check_state
from .engines import choose_engine
from .tdvp_expansion import KrylovExpansion, expand_basis, expansion_rule
from .tdvp_steps import Chain, Integrator, StepStats, bonds_saturated, composed_step

__all__ = ["StepRecord", "TDVPResult", "tdvp"]

METHODS = ("two-site", "one-site")
ORDERS = (2, 4)
BUILT_IN = ("energy", "norm", "entropy")
# A step count within this relative distance of t/dt is t/dt: 2.0/0.1 is 20 steps, not 21.
_GRID_SLACK = 1e-9


@dataclass(frozen=True)
class StepRecord:
    """One time step: where it ended, how (``method``: one-site after the switch), the
    largest weight one split discarded (relative), the largest bond, the Krylov matvecs and
    largest local error estimate (relative), and its wall time."""

    step: int
    time: float
    method: str
    max_discarded: float
    max_bond: int
    matvecs: int
    krylov_error: float
    seconds: float


@dataclass(frozen=True)
class TDVPResult:
    """What ``tdvp`` computed: the ``state`` at the final time (right-canonical, centre 0),
    the ``times`` (0, then after every step), each observable at those times (``values``:
    name → array, first axis time), and the per-step records."""

    state: MPS
    times: np.ndarray
    values: dict = field(repr=False)
    steps: tuple[StepRecord, ...] = field(repr=False)


def tdvp(
    H: MPO,
    psi: MPS,
    t: float,
    *,
    dt: float,
    method: str = "two-site",
    order: int = 2,
    max_bond: int | None = None,
    rtol: float | None = None,
    imaginary: bool = False,
    observables: Mapping[str, Any] | Sequence[str] | None = None,
    callback: Callable[[StepRecord], None] | None = None,
    progress: bool = False,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    expand: str | KrylovExpansion | None = None,
    keep: MPS | None = None,
) -> TDVPResult:
    """ψ(t) = exp(−iHt)·ψ by the time-dependent variational principle (ħ = 1).

    ``psi`` is normalised first (its scale is dropped, as in ``dmrg``); a real ``psi`` or
    ``H`` evolves as a complex state in real time. The run takes steps of ``dt`` (a real
    number > 0; the last step is shorter if ``t/dt`` is not an integer) with the symmetric
    second-order integrator of Haegeman et al. (PRB 94, 165116, 2016), or with ``order=4``
    Suzuki's fourth-order composition of five of them. ``method="two-site"`` evolves pairs
    of sites and splits them by a truncated SVD: the bond grows up to ``max_bond`` and with
    ``rtol`` each split drops at most ``rtol²`` of the weight (neither: only numerically
    zero singular values go); once every bond is saturated (at ``max_bond`` or the largest
    its cut allows) the run switches to ``"one-site"`` steps, which cannot grow the bond
    and are cheaper. One-site steps keep every bond as it is and conserve the norm and the
    energy (up to the Krylov tolerance). In real time nothing renormalises the state: its
    norm records what truncation cut. ``imaginary=True``: exp(−Hτ)·ψ normalised, τ = ``t``.

    ``observables``: names of built-ins (``"energy"``: ⟨H⟩/⟨ψ|ψ⟩, ``"norm"``: ‖ψ‖,
    ``"entropy"``: the entanglement entropy of every bond), or a dict of name → built-in
    name or ``callable(state) -> value`` (e.g. ``lambda s: [tn.local_expectation(s, "Sz",
    i, site_type="spin-half") for i in range(L)]``); each is measured at t = 0 and after
    every step. ``callback`` gets every ``StepRecord``; ``progress`` logs each at INFO
    level. ``checkpoint``: a ``.safetensors`` path written atomically after every step;
    ``resume``: such a file, to go on with the same request to the same result.

    ``expand="krylov"`` (or a ``KrylovExpansion`` with its parameters) enlarges every bond
    before a step with the directions of H|ψ⟩, H²|ψ⟩ at zero weight (Yang & White, PRB
    102, 094315, 2020; ``tdvp_expansion.krylov_expand``), within ``max_bond``: one-site
    steps can then grow the bond, from a product state or under a long-range H. The step's
    record counts what the expansion's truncation discarded.

    ``keep``: a state K whose bond spaces every basis of the run keeps, beyond ``max_bond``
    (the bond grows by at most K's). K then stays in the projection space, so ⟨K, ψ(t)⟩
    evolves exactly as it would without projection: it is conserved when HK = 0, which is
    how [tdvp_operator][tnkit.algorithms.operator_tdvp.tdvp_operator] conserves tr[H O(t)]
    (`tnkit.algorithms.kept_bases`). Every split then keeps K's directions and
    cuts only the rest of the state (one-site steps too: a bond may change there, up to
    ``max_bond`` plus K's), and the records count what was cut.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> H = tn.models.heisenberg(6)
        >>> neel = tn.MPS([np.eye(2)[k % 2].reshape(1, 2, 1) for k in range(6)])
        >>> r = tn.tdvp(H, neel, 0.5, dt=0.1, observables=["energy"])
        >>> r.times.round(2).tolist(), bool(np.allclose(r.values["energy"], -1.25))
        ([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], True)
    """
    plan = _check_request(H, psi, t, dt, method, order, imaginary, progress)
    truncation = Truncation(max_bond=max_bond, rtol=rtol)
    measures = _measures(observables)
    expansion = expansion_rule(expand)
    xp = backend.namespace(H._first_array(), psi._first_array(), name="psi")
    dtype = xp.result_type(H.dtype, psi.dtype, *([] if imaginary else [xp.complex64]))
    ops = [op if op.dtype == dtype else xp.astype(op, dtype) for op in H._arrays()]
    if H.scale_exponent:
        ops[0] = ops[0] * 2.0**H.scale_exponent
    hamiltonian = MPO._trusted(tuple(ops), _charges=H.charges)
    engine = choose_engine(hamiltonian, [psi])  # blocks when both declare the same charges
    _check_keep(keep, psi, engine)
    keep = None if keep is None else keep.canonicalize(0)  # once: every chain start reuses it
    request = {
        "dims": list(H.in_dims),
        "t": float(t),
        "dt": float(dt),
        "method": method,
        "order": order,
        "max_bond": max_bond,
        "rtol": rtol,
        "imaginary": imaginary,
        "observables": sorted(measures),
    }
    if expansion is not None:
        request["expand"] = dataclasses.asdict(expansion)
    if keep is not None:
        request["keep"] = list(keep.bond_dims)
    if resume is not None:
        run = _resumed(resume, request, hamiltonian, psi.charges)
    else:
        run = _Run(_normalised(psi, dtype), method, [0.0], {}, [])
        run.measure(measures, hamiltonian)
    chain = Chain.start(run.state, hamiltonian, engine, keep)
    threads = backend.small_work_threads(_largest_entries(ops, max_bond), backend.is_numpy(xp))
    for step in range(len(run.times) - 1, len(plan)):
        started = time.perf_counter()
        rule = Integrator(run.method == "two-site", truncation, normalise=imaginary)
        stats = StepStats()
        if expansion is not None and expansion.due(step):
            grown = expand_basis(hamiltonian, run.state, expansion, truncation)
            run.state, stats.discarded = grown.state, grown.discarded
            chain = Chain.start(run.state, hamiltonian, engine, keep)
        tau = -plan[step] if imaginary else -1j * plan[step]
        with backend.blas_threads(threads):
            composed_step(chain, tau, order, rule, stats)
        run.state = chain.state(run.state)
        record = StepRecord(
            step=step,
            time=float(t) if step == len(plan) - 1 else round((step + 1) * float(dt), 12),
            method=run.method,
            max_discarded=stats.discarded,
            max_bond=max(run.state.bond_dims, default=1),
            matvecs=stats.matvecs,
            krylov_error=stats.krylov_error,
            seconds=time.perf_counter() - started,
        )
        if run.method == "two-site" and bonds_saturated(
            run.state.bond_dims, run.state.phys_dims, _saturation_cap(truncation.max_bond, keep)
        ):
            run.method = "one-site"
        run.times.append(record.time)
        run.records.append(record)
        run.measure(measures, hamiltonian)
        if progress:
            _log(record)
        if checkpoint is not None:
            write_checkpoint(checkpoint, run.checkpoint(request))
        if callback is not None:
            callback(record)
    return TDVPResult(
        state=run.state,
        times=np.asarray(run.times),
        values={name: np.asarray(series) for name, series in run.values.items()},
        steps=tuple(run.records),
    )


@dataclass
class _Run:
    """Where a run stands: the state, the method of the next step, the times reached, the
    values measured at them, and the step records."""

    state: MPS
    method: str
    times: list
    values: dict
    records: list

    def measure(self, measures: dict, hamiltonian: MPO) -> None:
        for name, measure in measures.items():
            value = _BUILT_IN[measure] if isinstance(measure, str) else measure
            self.values.setdefault(name, []).append(_host(value(self.state, hamiltonian)))

    def checkpoint(self, request: dict) -> Checkpoint:
        position = {
            "method": self.method,
            "times": self.times,
            "values": {name: _encode(series) for name, series in self.values.items()},
        }
        records = tuple(dataclasses.asdict(r) for r in self.records)
        return Checkpoint((), self.state, 0, position, records, request)


def _resumed(path: str | os.PathLike, request: dict, hamiltonian: MPO, charges: Any) -> _Run:
    point = read_checkpoint(path, like=hamiltonian._first_array())
    if point.request != request:
        raise ValueError(f"resume: {path} was written by another run ({point.request})")
    position = point.position
    dtype = hamiltonian.dtype
    xp = backend.namespace(hamiltonian._first_array())
    cores = tuple(c if c.dtype == dtype else xp.astype(c, dtype) for c in point.current.cores)
    return _Run(
        state=MPS._trusted(cores, 0, _charges=charges),
        method=position["method"],
        times=list(position["times"]),
        values={name: _decode(series) for name, series in position["values"].items()},
        records=[StepRecord(**record) for record in point.log],
    )


def _saturation_cap(max_bond: int | None, keep: MPS | None) -> int | None:
    """The bond at which a two-site step can grow nothing more: ``max_bond``, plus the
    widest bond of a kept state (its directions come on top)."""
    if max_bond is None or keep is None:
        return max_bond
    return max_bond + max(keep.bond_dims, default=1)


def _largest_entries(ops: list, max_bond: int | None) -> int:
    """Entries of the largest matrix a step can multiply (χ²·d²·w at the widest bond)."""
    dims = [int(op.shape[1]) for op in ops]
    widest = max(min(math.prod(dims[: k + 1]), math.prod(dims[k + 1 :])) for k in range(len(dims)))
    widest = widest if max_bond is None else min(widest, max_bond)
    return widest * widest * max(op.shape[1] ** 2 * op.shape[3] for op in ops)


def _normalised(psi: MPS, dtype: Any) -> MPS:
    """``psi/‖psi‖`` right-canonical (centre 0) in ``dtype``; its scale exponent dropped."""
    xp = psi.xp
    cores = [c if c.dtype == dtype else xp.astype(c, dtype) for c in psi.canonicalize(0)._arrays()]
    norm = backend.frob_sq(cores[0]) ** 0.5
    if norm == 0.0 or not math.isfinite(norm):
        raise ValueError(f"psi: cannot normalise a state of norm {norm}")
    cores[0] = cores[0] / norm
    return MPS._trusted(tuple(cores), 0, _charges=psi.charges)


# ---------------------------------------------------------------------- observables


def _energy(state: MPS, hamiltonian: MPO) -> float:
    return float(complex(expectation(state, hamiltonian, normalize=True)).real)


def _norm(state: MPS, hamiltonian: MPO) -> float:
    return float(state.norm())


def _entropies(state: MPS, hamiltonian: MPO) -> np.ndarray:
    return np.asarray(state.entropies())


_BUILT_IN = {"energy": _energy, "norm": _norm, "entropy": _entropies}


def _measures(observables: Any) -> dict:
    """{name: built-in name or a callable of the state} from what the user passed."""
    if observables is None:
        return {}
    if isinstance(observables, str):
        raise TypeError(f"observables: expected a list of names or a dict, got {observables!r}")
    if not isinstance(observables, Mapping):
        observables = {name: name for name in observables}
    measures = {}
    for name, measure in observables.items():
        if not isinstance(name, str):
            raise TypeError(f"observables: names must be strings, got {name!r}")
        if isinstance(measure, str) and measure not in BUILT_IN:
            raise ValueError(
                f"observables: {measure!r} is not one of {BUILT_IN}; pass a callable instead"
            )
        if not (isinstance(measure, str) or callable(measure)):
            raise TypeError(f"observables: {name!r} is neither a built-in name nor a callable")
        measures[name] = measure if isinstance(measure, str) else _OneArgument(measure)
    return measures


@dataclass(frozen=True)
class _OneArgument:
    """A user's ``callable(state)`` in the built-ins' ``(state, hamiltonian)`` form."""

    function: Callable[[MPS], Any]

    def __call__(self, state: MPS, hamiltonian: MPO) -> Any:
        return self.function(state)


def _host(value: Any) -> Any:
    """A measured value as NumPy data (0-d arrays of any library, or lists of them)."""
    if isinstance(value, (list, tuple)):
        return np.asarray([_host(v) for v in value])
    if hasattr(value, "shape") and not isinstance(value, np.ndarray):
        return np.asarray(backend.to_numpy(value))
    return np.asarray(value)


def _encode(series: list) -> dict:
    """A series of values as JSON data (real and imaginary parts)."""
    array = np.asarray(series)
    encoded = {"real": np.real(array).tolist()}
    if np.iscomplexobj(array):
        encoded["imag"] = np.imag(array).tolist()
    return encoded


def _decode(encoded: dict) -> list:
    array = np.asarray(encoded["real"])
    if "imag" in encoded:
        array = array + 1j * np.asarray(encoded["imag"])
    return list(array)


def _log(record: StepRecord) -> None:
    logger.info(
        "tdvp step %d t=%.6g %s: bond=%d cut=%.1e matvecs=%d krylov=%.1e %.2fs",
        record.step,
        record.time,
        record.method,
        record.max_bond,
        record.max_discarded,
        record.matvecs,
        record.krylov_error,
        record.seconds,
    )


# ---------------------------------------------------------------------- checks


def _check_keep(keep: Any, psi: MPS, engine: Any) -> None:
    if keep is None:
        return
    if not isinstance(keep, MPS):
        raise TypeError(f"keep: expected an MPS, got {type(keep).__name__}")
    if keep.phys_dims != psi.phys_dims:
        raise ValueError(f"keep: phys_dims {keep.phys_dims} differ from psi's {psi.phys_dims}")
    if engine.name != "dense":
        raise ValueError("keep: not available on block-sparse (charge-conserving) runs yet")


def _check_request(H, psi, t, dt, method, order, imaginary, progress) -> list[float]:
    """Validate the request; return the step sizes (dt each, the last one landing on t)."""
    check_hamiltonian(H)
    check_state(psi, H)
    for name, value in (("imaginary", imaginary), ("progress", progress)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected a bool, got {value!r}")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if order not in ORDERS or isinstance(order, bool):
        raise ValueError(f"order: expected 2 or 4, got {order!r}")
    for name, value in (("dt", dt), ("t", t)):
        if isinstance(value, (complex, np.complexfloating)):
            raise TypeError(
                f"{name}: expected a real number, got {value!r} (for imaginary time pass a "
                "real dt with imaginary=True)"
            )
    check_number(dt, "dt", minimum=0.0)
    check_number(t, "t", minimum=0.0)
    if dt == 0:
        raise ValueError(f"dt: must be > 0, got {dt!r}")
    steps = max(0, math.ceil(t / dt - _GRID_SLACK))
    return [float(dt)] * (steps - 1) + [float(t) - (steps - 1) * float(dt)] if steps else []
