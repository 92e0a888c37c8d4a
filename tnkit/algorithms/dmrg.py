"""Ground states and low excited states of an MPO Hamiltonian by DMRG (two-site), and the
energy variance of a state.

Sweeps of local Lanczos solves on cached environments; the state stays normalised and in
mixed-canonical form. Every reported energy is ⟨H⟩ of a returned state (never a penalised
functional); excited states are solved on the complement of the lower ones.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import _backend as backend
from .._checks import check_int, check_number
from .._progress import logger
from ..contract import expectation, inner
from ..mpo import MPO
from ..mps import MPS
from ..truncation import Truncation
from .checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from .checks import check_hamiltonian
from .engines import BlockEngine, DenseEngine, choose_engine
from .estimates import Extrapolation, energy_and_two_site_variance, extrapolate

__all__ = ["DMRGResult", "SweepRecord", "dmrg", "variance"]

METHODS = ("two-site", "one-site")
# Local solves stop at a residual of this much of max(1, |E|): the energy error goes as the
# residual squared over the local gap, far below the sweep's tolerance; later sweeps start
# from the converged tensor and need only a few matvecs.
_LOCAL_TOL = 1e-7
_LOCAL_ITERATIONS = 20
# Early sweeps solve more loosely: the residual may be as large as the last sweep's relative
# energy change (at most this), since the environments themselves are still that far off.
_LOOSE_TOL = 1e-4
# One-site solves cost less than the expansion and growth around them, so they are never
# as loose: a 1e-4 start left solves of one matvec that gained nothing. Near-degenerate
# local spectra (the edge states of spin-1 chains) need more than 8 Lanczos steps to turn
# the state: 8 took 2× the sweeps.
_ONE_SITE_LOOSE_TOL = 1e-6
_ONE_SITE_ITERATIONS = 16
# One-site sweeps stop expanding once a sweep changes the energy by less than this (relative):
# the bond has grown and the basis found; plain one-site sweeps converge the rest, cheaper.
_EXPANSION_DONE = 1e-8


@dataclass(frozen=True)
class SweepRecord:
    """One sweep (both directions) of one state: what it reached, cut and cost."""

    state: int
    sweep: int
    energy: float
    energy_change: float
    max_discarded: float
    max_bond: int
    matvecs: int
    seconds: float
    #: At the end of each bond stage (the last sweep at a given ``max_bond``): ⟨H⟩ of the
    #: state and its two-site variance (``tn.two_site_variance``); ``None`` otherwise.
    state_energy: float | None = None
    two_site_variance: float | None = None


@dataclass(frozen=True)
class DMRGResult:
    """What ``dmrg`` found: the states in ascending energy, ⟨H⟩ of each, the sweep log, and
    (computed on first access: it costs an application of H) the variance of the lowest.

    Error estimates: ``two_site_variance`` of each state after its last sweep (cheap, close
    to the variance for a converged state), and with a bond schedule of two or more stages,
    ``extrapolation``: the energy extrapolated linearly to zero two-site variance through the
    ends of the stages, with an error bar (Hubig, Haegeman & Schollwöck, PRB 97, 045125)."""

    energies: tuple[float, ...]
    states: tuple[MPS, ...]
    sweeps: tuple[SweepRecord, ...] = field(repr=False)
    hamiltonian: MPO = field(repr=False, compare=False)
    two_site_variances: tuple[float, ...] = ()
    extrapolations: tuple[Extrapolation | None, ...] = field(default=(), repr=False)

    @functools.cached_property
    def variance(self) -> float:
        """⟨H²⟩ − ⟨H⟩² of ``state`` ([variance][tnkit.algorithms.dmrg.variance])."""
        return variance(self.hamiltonian, self.states[0])

    @property
    def energy(self) -> float:
        """The lowest energy, ⟨H⟩ of ``state``."""
        return self.energies[0]

    @property
    def two_site_variance(self) -> float:
        """The two-site variance of ``state`` after its last sweep."""
        return self.two_site_variances[0]

    @property
    def extrapolation(self) -> Extrapolation | None:
        """The lowest energy extrapolated to zero variance through the ends of the bond
        stages (``None`` with fewer than two stages)."""
        return self.extrapolations[0]

    @property
    def state(self) -> MPS:
        """The lowest state (normalised, right-canonical: centre 0)."""
        return self.states[0]


def dmrg(
    H: MPO,
    *,
    max_bond: int | Sequence[int],
    sweeps: int = 10,
    tol: float = 1e-10,
    method: str = "two-site",
    rtol: float | None = None,
    nstates: int = 1,
    init: MPS | Sequence[MPS] | None = None,
    seed: Any = None,
    progress: bool = False,
    callback: Callable[[SweepRecord], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
) -> DMRGResult:
    """Lowest ``nstates`` eigenstates of the Hermitian MPO ``H`` by DMRG.

    ``method="two-site"`` (default): each sweep goes left to right and back; at every bond
    the two-site tensor is replaced
    by the lowest eigenvector of the effective Hamiltonian (Lanczos, warm-started from the
    current tensor) and split by a truncated SVD: at most ``max_bond`` (an int, or one per
    sweep — the last repeats), and with ``rtol`` each split drops at most ``rtol²`` of the
    (unit) state's weight. A state is done when its energy changes by less than
    ``tol·max(1, |E|)`` over a sweep, or after ``sweeps``. ``method="one-site"``: one-site
    sweeps with subspace expansion (Hubig et al., PRB 91, 155115; each expanded bond is cut
    back after the next site's optimisation, by its singular values), switched off once
    the energy settles and in the last sweep, so the state returned is one-site optimal;
    it can grow the bond from any start. Excited states
    (``nstates > 1``) are found one after another, each solved on the orthogonal complement
    of the states
    below (a projection, not a penalty: no weight to tune, and the energy solved for is ⟨H⟩).
    ``init``: a start state (or one per state); else a random state of bond 8 from ``seed``.
    ``callback`` gets every ``SweepRecord``; ``progress`` logs each at INFO level.
    ``checkpoint``: a ``.safetensors`` path written atomically after every sweep (states,
    sweep log, where the sweeps stood); ``resume``: such a file, to continue a killed run of
    the same request to the same result.

    Returns a [DMRGResult][tnkit.algorithms.dmrg.DMRGResult]: ``energies`` are ⟨H⟩ of the
    returned ``states`` (normalised, centre 0), ascending; ``variance`` is ⟨H²⟩ − ⟨H⟩² of
    the lowest.

    Example:
        >>> import tnkit as tn
        >>> r = tn.dmrg(tn.models.heisenberg(10), max_bond=32, seed=0)
        >>> round(r.energy, 9), r.variance < 1e-9
        (-4.258035207, True)
    """
    schedule = _check_request(H, max_bond, sweeps, tol, method, nstates)
    truncation = Truncation(rtol=rtol)
    starts = _starts(H, init, nstates, seed)
    request = {
        "dims": list(H.in_dims),
        "schedule": schedule,
        "method": method,
        "nstates": nstates,
        "tol": tol,
        "rtol": rtol,
    }
    found: list[MPS] = []
    log: list[SweepRecord] = []
    first, where = 0, None
    if resume is not None:
        point = read_checkpoint(resume, like=H._first_array())
        if point.request != request:
            raise ValueError(f"resume: {resume} was written by another run ({point.request})")
        found, log = list(point.done), [SweepRecord(**record) for record in point.log]
        first = point.state
        if point.current is not None:
            starts[first] = point.current
            where = point.position

    def save(index: int, current: MPS | None, position: dict | None) -> None:
        if checkpoint is not None:
            records = tuple(dataclasses.asdict(r) for r in log)
            point = Checkpoint(tuple(found), current, index, position, records, request)
            write_checkpoint(checkpoint, point)

    engine = choose_engine(H, starts)
    run = Request(H, schedule, tol, truncation, method, progress, callback, engine)
    for n in range(first, nstates):
        state = _optimise(
            run,
            starts[n],
            found,
            n,
            log,
            resume=where if n == first else None,
            on_sweep=None
            if checkpoint is None
            else lambda state, position, n=n: save(n, state, position),
        )
        found.append(state)
        save(n + 1, None, None)
    energies = [_final_energy(log, k, state, H) for k, state in enumerate(found)]
    order = sorted(range(len(found)), key=energies.__getitem__)
    stages = [[r for r in log if r.state == k and r.two_site_variance is not None] for k in order]
    return DMRGResult(
        energies=tuple(energies[k] for k in order),
        states=tuple(found[k] for k in order),
        sweeps=tuple(log),
        hamiltonian=H,
        two_site_variances=tuple(ends[-1].two_site_variance for ends in stages),
        extrapolations=tuple(
            extrapolate([(r.two_site_variance, r.state_energy) for r in ends]) for ends in stages
        ),
    )


def _final_energy(log: list, index: int, state: MPS, H: MPO) -> float:
    """⟨H⟩ of a returned state: measured at its last sweep (a sweep that ends a state
    always ends a bond stage), else computed."""
    ends = [r.state_energy for r in log if r.state == index and r.state_energy is not None]
    return ends[-1] if ends else float(expectation(state, H, normalize=True).real)


def variance(H: MPO, psi: MPS) -> float:
    """⟨H²⟩ − ⟨H⟩² of the normalised ``psi``, as ‖(H − E)ψ‖²/‖ψ‖², without forming H².

    The difference is taken as a train and its norm from the canonical form, so a variance
    of 1e-12 next to ⟨H²⟩ ~ 10³ is not lost to cancellation.

    Example:
        >>> import tnkit as tn
        >>> psi = tn.MPS.random([2] * 6, 4, seed=1)
        >>> h = tn.models.ising(6)
        >>> W, v = h.to_matrix(), psi.to_dense().ravel() / psi.norm()
        >>> bool(abs(tn.variance(h, psi) - (v @ W @ W @ v - (v @ W @ v) ** 2)) < 1e-10)
        True
    """
    if not isinstance(H, MPO) or not isinstance(psi, MPS):
        raise TypeError(
            f"variance: expected (MPO, MPS), got ({type(H).__name__}, {type(psi).__name__})"
        )
    norm_sq = float(abs(inner(psi, psi)))
    if norm_sq == 0:
        raise ValueError("psi: the zero state has no variance")
    energy = complex(expectation(psi, H, normalize=True))  # 0-d arrays of any library
    shift = energy.real if abs(energy.imag) <= 1e-12 * max(1.0, abs(energy)) else energy
    residual = (H @ psi) - shift * psi
    return float(residual.norm()) ** 2 / norm_sq


# ---------------------------------------------------------------------- one state


def _optimise(
    run: Request,
    start: MPS,
    lower: list,
    index: int,
    log: list,
    resume: dict | None = None,
    on_sweep: Callable | None = None,
) -> MPS:
    """Sweep one state to convergence (orthogonal to ``lower``).

    One-site sweeps expand each bond they pass (``expansion``) while the bond may still
    grow and the energy moves; once a sweep changes it by less than ``tol`` the expansion
    is switched off and the next sweeps are plain one-site ones, so the state returned is
    one-site optimal (the last sweep of the schedule never expands either).
    """
    H, schedule, tol, truncation, engine = run.H, run.schedule, run.tol, run.truncation, run.engine
    cores, ops = engine.start(start, H)
    xp = backend.namespace(H._first_array())
    n = len(cores)
    lower_cores = [c for c in (engine.lower(s) for s in lower) if c is not None]
    chain = _Chain(
        cores,
        ops,
        left=[],
        right=engine.right_environments(cores, ops),
        lower=lower_cores,
        left_overlaps=[],
        right_overlaps=[_right_overlaps(engine, cores, other) for other in lower_cores],
        engine=engine,
    )
    one_site = run.method == "one-site"
    update = _update_one_site if one_site else _update
    settled_cap, energy, change, first = 0, math.inf, math.inf, 0
    if resume is not None:  # checkpoints before the deferred cut also hold "alpha", "seen"
        settled_cap, energy = resume["settled"], resume["energy"]
        change, first = resume["change"], resume["sweep"] + 1
    for sweep, cap in enumerate(schedule):
        if sweep < first:
            continue
        started = time.perf_counter()
        expanding = one_site and cap > settled_cap and sweep < len(schedule) - 1
        settled = abs(change) / max(1.0, abs(energy)) if math.isfinite(energy) else math.inf
        stats = {
            "tol": min(_ONE_SITE_LOOSE_TOL if one_site else _LOOSE_TOL, max(_LOCAL_TOL, settled)),
            "discarded": 0.0,
            "matvecs": 0,
            "energy": energy,
            "expanding": expanding,
        }
        chain.left = [engine.edge(cores)] + [None] * n
        chain.left_overlaps = [[engine.overlap_edges(cores)[0]] + [None] * n for _ in lower_cores]
        # Small matrices (χ²·d·w entries up to 2^20) run faster on one BLAS thread.
        largest = max(cap * cap * max(shape[1] * shape[3] for shape in H._shapes), 1)
        with backend.blas_threads(backend.small_work_threads(largest, backend.is_numpy(xp))):
            for i, direction in _steps(n, one_site):
                update(chain, i, direction, cap, truncation, stats)
        change = stats["energy"] - energy
        energy = stats["energy"]
        settling = expanding and abs(change) < max(tol, _EXPANSION_DONE) * max(1.0, abs(energy))
        converged = (
            not settling
            and abs(change) < tol * max(1.0, abs(energy))
            and stats["tol"] <= _LOCAL_TOL
            and cap >= max(schedule[sweep:])  # a larger bond ahead may still lower it
        )
        stage_end = converged or sweep == len(schedule) - 1 or schedule[sweep + 1] != cap
        measured = {}
        if stage_end:
            with backend.blas_threads(backend.small_work_threads(largest, backend.is_numpy(xp))):
                exact, spread = energy_and_two_site_variance(cores, ops, engine)
            measured = {"state_energy": exact, "two_site_variance": spread}
        record = SweepRecord(
            state=index,
            sweep=sweep,
            energy=energy,
            energy_change=change,
            max_discarded=stats["discarded"],
            max_bond=max([engine.bond(c) for c in cores[:-1]], default=1),
            matvecs=stats["matvecs"],
            seconds=time.perf_counter() - started,
            **measured,
        )
        log.append(record)
        if run.progress:
            logger.info(
                "dmrg state %d sweep %d: E=%.12g dE=%.2e cut=%.1e bond=%d %.2fs",
                index,
                sweep,
                energy,
                change,
                record.max_discarded,
                record.max_bond,
                record.seconds,
            )
        if settling:
            settled_cap = cap
        elif converged:
            if run.callback is not None:
                run.callback(record)
            break
        if on_sweep is not None:
            position = {
                "sweep": sweep,
                "energy": energy,
                "change": change if math.isfinite(change) else 1e300,
                "settled": settled_cap,
            }
            on_sweep(engine.finish(cores, start), position)
        if run.callback is not None:
            run.callback(record)
    return engine.finish(cores, start)


@dataclass(frozen=True)
class Request:
    """What one ``dmrg`` call asked for, as every state's sweeps need it."""

    H: MPO
    schedule: list
    tol: float
    truncation: Truncation
    method: str
    progress: bool
    callback: Callable[[SweepRecord], None] | None
    engine: DenseEngine | BlockEngine = field(default_factory=DenseEngine)


@dataclass
class _Chain:
    """What the sweeps of one state update in place: its cores, the environments, and the
    overlap environments with each lower state (``lower`` holds their cores)."""

    cores: list
    ops: list
    left: list
    right: list
    lower: list
    left_overlaps: list
    right_overlaps: list
    engine: DenseEngine | BlockEngine


def _steps(n: int, one_site: bool) -> list[tuple[int, str]]:
    """The sites of one sweep, right and back: two-site steps name the left site of the pair,
    one-site steps the site optimised before the centre moves on."""
    back = range(n - 1, 0, -1) if one_site else range(n - 2, -1, -1)
    return [(i, "right") for i in range(n - 1)] + [(i, "left") for i in back]


def _update(chain, i, direction, cap, truncation, stats) -> None:
    """Optimise sites (i, i+1), split them, and grow the environment in ``direction``."""
    cores, ops, left, right, engine = chain.cores, chain.ops, chain.left, chain.right, chain.engine
    theta = engine.merge(cores[i], cores[i + 1])
    images = [
        engine.local_image(chain.left_overlaps[k][i], [other[i], other[i + 1]], right_ov[i + 2])
        for k, (other, right_ov) in enumerate(zip(chain.lower, chain.right_overlaps, strict=True))
    ]
    matvec = engine.two_site_matvec(left[i], ops[i], ops[i + 1], right[i + 2])
    pair = engine.lowest(
        matvec, theta, tol=stats["tol"], max_iter=_LOCAL_ITERATIONS, orthogonal_to=images
    )
    stats["energy"], stats["matvecs"] = pair.value, stats["matvecs"] + pair.matvecs
    budget = truncation.total_budget(1.0)
    cores[i], cores[i + 1], discarded = engine.split(pair.vector, cap, budget, direction, bond=i)
    stats["discarded"] = max(stats["discarded"], discarded)
    _grow(chain, i if direction == "right" else i + 1, direction)


def _update_one_site(chain, i, direction, cap, truncation, stats) -> None:
    """Optimise site i, cut the bond behind it back (it was enlarged when the centre came
    in), then move the centre to its neighbour in ``direction``, enlarging the bond
    between them while the sweep expands. The move onto the chain's end is plain (but on a
    chain of two sites), so every bond is within ``cap`` at the end of each half-sweep."""
    cores, engine, n = chain.cores, chain.engine, len(chain.cores)
    rightward = direction == "right"
    images = [
        engine.local_image(chain.left_overlaps[k][i], [other[i]], right_ov[i + 1])
        for k, (other, right_ov) in enumerate(zip(chain.lower, chain.right_overlaps, strict=True))
    ]
    matvec = engine.one_site_matvec(chain.left[i], chain.ops[i], chain.right[i + 1])
    pair = engine.lowest(
        matvec, cores[i], tol=stats["tol"], max_iter=_ONE_SITE_ITERATIONS, orthogonal_to=images
    )
    stats["energy"], stats["matvecs"] = pair.value, stats["matvecs"] + pair.matvecs
    budget, centre = truncation.total_budget(1.0), pair.vector
    behind = i - 1 if rightward else i + 1
    if 0 <= behind < n and (stats["expanding"] or _bond_behind(centre, rightward) > cap):
        cut = engine.trim(centre, cores[behind], direction=direction, max_bond=cap, budget=budget)
        centre, cores[behind] = cut.centre, cut.behind
        _regrow(chain, i, direction)
        stats["discarded"] = max(stats["discarded"], cut.discarded)
    j = i + 1 if rightward else i - 1
    step = engine.move(
        centre,
        cores[j],
        chain.left[i] if rightward else chain.right[i + 1],
        chain.ops[i],
        grow=stats["expanding"] and (0 < j < n - 1 or n == 2),
        direction=direction,
        max_bond=cap,
        budget=budget,
    )
    stats["discarded"] = max(stats["discarded"], step.discarded)
    cores[i], cores[j] = step.isometry, step.centre
    _grow(chain, i, direction)


def _bond_behind(centre: Any, rightward: bool) -> int:
    return int(centre.shape[0] if rightward else centre.shape[-1])


def _regrow(chain, i, direction) -> None:
    """Grow the environments (and overlaps) that end at site ``i`` again, past the core
    behind it that a cut just changed (as a fresh build would: a resumed run repeats the
    same numbers)."""
    _grow(chain, i - 1 if direction == "right" else i + 1, direction)


def _grow(chain, i, direction) -> None:
    """Extend the environments (and overlaps) past site ``i``, now an isometry."""
    core, op = chain.cores[i], chain.ops[i]
    if direction == "right":
        chain.left[i + 1] = chain.engine.grow_left(chain.left[i], core, op)
        for other, left_ov in zip(chain.lower, chain.left_overlaps, strict=True):
            left_ov[i + 1] = chain.engine.overlap_left(left_ov[i], core, other[i])
    else:
        chain.right[i] = chain.engine.grow_right(chain.right[i + 1], core, op)
        for other, right_ov in zip(chain.lower, chain.right_overlaps, strict=True):
            right_ov[i] = chain.engine.overlap_right(right_ov[i + 1], core, other[i])


def _right_overlaps(engine: Any, cores: list, other: list) -> list:
    n = len(cores)
    right = [None] * (n + 1)
    right[n] = engine.overlap_edges(cores)[1]
    for k in range(n - 1, 0, -1):
        right[k] = engine.overlap_right(right[k + 1], cores[k], other[k])
    return right


# ---------------------------------------------------------------------- checks


def _check_request(H, max_bond, sweeps, tol, method, nstates) -> list[int]:
    check_hamiltonian(H)
    if len(H) < 2:
        raise ValueError("H: DMRG needs at least two sites")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    sweeps = check_int(sweeps, "sweeps", minimum=1)
    check_number(tol, "tol", minimum=0.0)
    check_int(nstates, "nstates", minimum=1)
    if isinstance(max_bond, (str, bytes)) or not (
        isinstance(max_bond, Sequence) or check_int(max_bond, "max_bond", minimum=1)
    ):
        raise TypeError(f"max_bond: expected an int or a list of ints, got {max_bond!r}")
    caps = list(max_bond) if isinstance(max_bond, Sequence) else [max_bond]
    if not caps:
        raise ValueError("max_bond: the schedule is empty")
    caps = [check_int(cap, "max_bond", minimum=1) for cap in caps]
    return [caps[min(k, len(caps) - 1)] for k in range(sweeps)]


def _starts(H: MPO, init: Any, nstates: int, seed: Any) -> list[MPS]:
    if init is None:
        return [
            MPS.random(
                H.in_dims,
                8,
                seed=None if seed is None else (seed, k),
                dtype=H.dtype,
                like=H._first_array(),
            )
            for k in range(nstates)
        ]
    starts = [init] if isinstance(init, MPS) else list(init)
    if len(starts) != nstates:
        raise ValueError(f"init: need {nstates} start states, got {len(starts)}")
    for k, state in enumerate(starts):
        if not isinstance(state, MPS):
            raise TypeError(f"init: expected MPS start states, got {type(state).__name__}")
        if state.phys_dims != H.in_dims:
            raise ValueError(
                f"init: state {k} has phys_dims {state.phys_dims}, but H acts on {H.in_dims}"
            )
    return starts
