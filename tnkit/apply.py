"""Truncated application of an MPO to an MPS or MPO: exact + compress, zip-up, density, fit.

Pure functions on trains (inputs are never modified). Every report bounds the error of the whole
application by a measured distance to ``o @ t``, never by per-bond weights that need not add up.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from . import _backend as backend
from ._checks import check_int, check_number
from ._einsum import contract
from ._progress import logger, steps
from ._scaling import exponent_for, largest_entry, ldexp, times_pow2
from .apply_density import density, product_charges
from .apply_parts import NORM, Operands, Run
from .charge_sweeps import conserving
from .compress import restore_scale, svd_sweep
from .cores import common_dtype
from .linalg import orthonormalize, truncated_split
from .mpo import MPO
from .mps import MPS
from .sectors import site_flows
from .truncation import Budget, Truncation, TruncationReport
from .ttsvd import scaled_truncation

__all__ = ["apply", "APPLY_METHODS"]

APPLY_METHODS = ("zipup", "density", "fit", "exact")

_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "exact": {},
    "zipup": {"oversample": 2.0, "relax": 10.0},
    "density": {},
    "fit": {"tol": 1e-3, "max_sweeps": 10, "two_site_sweeps": 1, "guess_bond": None},
}

# The measured squared error is a difference of sums of size ~‖Ot‖², so it carries rounding of a
# few ε·‖Ot‖² per site; this many ε·L·‖Ot‖² are added before the square root (see ``apply``).
_ROUNDING_ALLOWANCE = 64.0

# Subscripts: O[a, s, t, b] (out s, in t), T[x, t, u, z] (phys t, spectator u: 1 for an MPS,
# the in-leg of an MPO), result Y[r, s, u, q]; environments keep that order.
_ZIP = "rax,astb,xtuz->rsubz"  # carried matrix · O · T
_LEFT_ENV = "rax,rsuq,astb,xtuz->qbz"  # ⟨y|O|t⟩ left environment, conj(y) second
_RIGHT_ENV = "qbz,rsuq,astb,xtuz->rax"  # ⟨y|O|t⟩ right environment, conj(y) second
_ONE_SITE = "rax,astb,xtuz,qbz->rsuq"
_TWO_SITE = "rax,astb,xtuz,bkpc,zpmw,qcw->rsukmq"


def apply(
    o: Any,
    t: Any,
    *,
    method: str = "zipup",
    max_bond: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    return_info: bool = False,
    progress: bool = False,
    **options: Any,
) -> Any:
    """``o @ t`` truncated on the fly: an MPO ``o`` applied to an MPS or MPO ``t``.

    ``max_bond``/``rtol``/``atol`` follow the library's truncation rules (DESIGN §1) for the
    whole application: ``‖y − o @ t‖ ≤ rtol·‖o @ t‖`` unless ``max_bond`` binds. Methods:

    - ``"exact"``: ``(o @ t).compress(...)``; bond dims multiply first, cost (χ·D)³ per site.
    - ``"zipup"`` (Stoudenmire & White 2010): ``t`` right-canonical, then one left-to-right
      sweep of truncated SVDs of ``carried · O_k · T_k`` with a relaxed cap
      (``oversample·max_bond``, default 2×) and a relaxed tolerance (``relax``: 10× tighter),
      then a right-to-left SVD sweep with the real request. Fastest; near optimal when ``o``
      is close to unitary.
    - ``"density"``: density-matrix algorithm: left environments of ⟨Ot|Ot⟩, then a
      right-to-left sweep that diagonalises (eigh) the reduced density matrix of every bond
      and keeps its top eigenvectors. Optimal truncation for a right-to-left sweep; eigh
      cannot resolve weights below ~ε·‖Ot‖², so exact requests keep every direction.
    - ``"fit"``: variational fit of ``y`` to ``o @ t`` from the zip-up result: sweeps of
      2-site updates (bonds adapt to the request) then 1-site updates. Options ``tol``
      (stop when the distance changes by less than ``tol`` relative over a sweep; default
      1e-3: 1-site sweeps then gain < 0.1 % per sweep, and a much smaller default would
      run every sweep on hard inputs), ``max_sweeps`` (default 10; a sweep is left-to-right
      and back), ``two_site_sweeps`` (default 1) and ``guess_bond`` (default: ``max_bond``;
      a smaller value starts from a zip-up of that bond and doubles the cap on every 2-site
      pass up to ``max_bond``, which can find a better optimum when the product is far from
      low rank, at the price of more sweeps). If it misses ``rtol``/``atol`` that the zip-up
      guess met, the guess is returned.

    Cost of zip-up, density and fit: O(L·χ³·D²·d) for bond χ of ``t``, D of ``o`` and physical
    dim d (the ⟨Ot|Ot⟩ environments; the rest is O(L·χ³·D·d²)), never (χ·D)³. The result
    is right-canonical (centre 0); a real operator on a complex train (or the reverse) gives
    a complex result; different precisions are refused.

    ``report.abs_error_bound`` is rigorous: ``err² = ‖Ot‖² − 2·Re⟨y, Ot⟩ + ‖y‖²`` is measured
    by transfer-matrix sweeps (the 3-layer overlap comes out of the algorithms' own carried
    environments), and ``64·L·ε·‖Ot‖²`` is added before the square root to cover rounding, so
    the bound has a floor of about ``sqrt(64·L·ε)·‖Ot‖`` (~1e-6 relative in double precision)
    even when the application is exact. ``report.discarded`` holds the last truncating
    sweep's per-bond weights (for ``"exact"`` the report is the compression's own, with its
    usual bound). ``tolerance_met`` is False only when ``max_bond`` stopped the tolerance (it
    is judged on the measured error, up to the rounding allowance). With ``return_info`` the
    call returns ``(result, info)``, a dict with ``"method"`` and ``"error"`` (the measured
    error, without allowance; NaN for ``"exact"``), plus for ``"fit"``: ``"sweeps"``,
    ``"converged"``, ``"history"`` (distance after the guess and after each sweep) and
    ``"fallback"``; for ``"zipup"``: ``"intermediate_bond_dims"``. ``progress=True`` shows a
    tqdm bar over the fit's sweeps; each sweep's distance is logged (DEBUG, ``tnkit`` logger).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> o = tn.MPO.random([2] * 8, [2] * 8, 3, seed=0)
        >>> t = tn.MPS.random([2] * 8, 8, seed=1)
        >>> y = tn.apply(o, t, max_bond=8)
        >>> max(y.bond_dims), y.report.method
        (8, 'zipup')
        >>> exact = (o @ t).to_dense()
        >>> err = np.linalg.norm(y.to_dense() - exact)
        >>> bool(err <= y.report.abs_error_bound)
        True
    """
    _check_operands(o, t)
    if not isinstance(method, str) or method not in APPLY_METHODS:
        raise ValueError(f"method: expected one of {APPLY_METHODS}, got {method!r}")
    truncation = Truncation(max_bond=max_bond, rtol=rtol, atol=atol)
    opts = _check_options(method, options)
    if not isinstance(progress, bool):
        raise TypeError(f"progress: expected a bool, got {progress!r}")
    if method == "fit":
        opts["progress"] = progress
    if not isinstance(return_info, bool):
        raise TypeError(f"return_info: expected a bool, got {return_info!r}")
    o, t = common_dtype(o, t)
    if method == "exact":
        result, info = _exact(o, t, truncation)
    else:
        # Powers of two out of the cores into the exact scales (the centre only where the
        # sweeps need the canonical form), so that no squared weight under- or overflows.
        source = _pulled(t.canonicalize(0), [0]) if method in ("zipup", "fit") else _pulled(t)
        o = _pulled(o)
        ops = Operands.build(o, source)
        shift = o.scale_exponent + source.scale_exponent  # the sweeps see the cores only
        request = scaled_truncation(truncation, shift) if shift else truncation
        with backend.blas_threads(_thread_limit(ops)):
            if method == "zipup":
                run = _zipup(ops, request, **opts)
            elif method == "density":
                run = density(ops, request, product_charges(o, source))
            else:
                run = _fit(ops, request, **opts)
        result = _assemble(t, ops, run, request)
        if shift:  # core 0 (the centre) takes the scale back where it holds it
            cores, kept = restore_scale(tuple(result._arrays()), shift)
            result = result._with_cores(cores, 0, result.report.scaled(shift), kept)
        error = ldexp(math.sqrt(max(run.err_sq, 0.0)), shift)
        info = {"method": method, "error": error, **run.info}
    if getattr(o, "charges", None) is not None and o.charges == t.charges != result.charges:
        result = result.with_charges(t.charges, site=None)  # o conserves t's charges
    along = product_charges(o, t) if method in ("zipup", "fit") else None
    if along is not None:
        result = _in_charge_blocks(result, along.total[0], truncation)
    return (result, info) if return_info else result


def _pulled(train: Any, sites: Any = None) -> Any:
    """``train`` with a power of two pulled out of those cores at ``sites`` (all: None)
    whose entries are far enough from 1 that squares would over- or underflow
    (``exponent_for``) into its exact scale: the same tensor; ordinary cores untouched."""
    cores = list(train._arrays())
    if not all(backend.has_values(c) for c in cores):
        return train
    shift = 0
    for k in range(len(cores)) if sites is None else sites:
        pulled = exponent_for(largest_entry(cores[k]), cores[k].dtype)
        if pulled:
            cores[k], shift = times_pow2(cores[k], -pulled), shift + pulled
    if not shift:
        return train
    exponent = train.scale_exponent + shift
    return train._with_cores(tuple(cores), train.centre, train.report, exponent)


def _in_charge_blocks(result: Any, sector: np.ndarray, truncation: Truncation) -> Any:
    """The result of a zip-up or fit of charged operands with cores block-sparse in its
    charges: the rounding their dense SVDs left outside the blocks zeroed, or, where an SVD
    rotated degenerate vectors of different charges together (its truncation then leaks a
    little weight, ~1e-10, out of the product's ``sector``), projected back onto ``sector``
    and cut by charge block (``_projected``: the bounds add). An operator is projected as
    the state of its fused legs, which add ``Q(out) − Q(in)``.
    """
    cores = [backend.to_numpy(c) for c in result._arrays()]
    flows = site_flows(result.charges, operator=isinstance(result, MPO))
    snapped = conserving(cores, flows, result.charges[0])
    if snapped is not None:
        return result._with_cores(tuple(snapped), result.centre, result.report)
    return result._projected(sector, truncation) or result


# ---------------------------------------------------------------------- inputs


def _check_operands(o: Any, t: Any) -> None:
    if not isinstance(o, MPO):
        raise TypeError(f"o: expected an MPO, got {type(o).__name__}")
    if not isinstance(t, (MPS, MPO)):
        raise TypeError(f"t: expected an MPS or an MPO, got {type(t).__name__}")
    dims = t.phys_dims if isinstance(t, MPS) else t.out_dims
    if len(o) != len(t):
        raise ValueError(f"t: has {len(t)} sites but o has {len(o)}")
    if o.in_dims != dims:
        raise ValueError(
            f"t: dims {dims} do not match the operator's in_dims {o.in_dims} (o.in_dims must "
            f"equal t.phys_dims for an MPS, t.out_dims for an MPO)"
        )
    backend.namespace(o._first_array(), t._first_array(), name="apply")


def _check_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    defaults = _DEFAULT_OPTIONS[method]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise TypeError(
            f"options: unknown option(s) {unknown} for method {method!r} (accepted: {accepted})"
        )
    opts = {**defaults, **options}
    for name, minimum in (("oversample", 1.0), ("relax", 1.0), ("tol", 0.0)):
        if name in opts:
            check_number(opts[name], name, minimum=minimum)
    guess_bond = opts.get("guess_bond")
    if guess_bond is not None:
        check_int(guess_bond, "guess_bond", minimum=1)
    for name in ("max_sweeps", "two_site_sweeps"):
        if name in opts:
            check_int(opts[name], name, minimum=0)
    return opts


def _thread_limit(ops: Operands) -> int | None:
    """One BLAS thread when the sweeps' matrices are small, as ``_backend.sweep_threads``
    decides for canonical sweeps; the largest is about a core of the exact product."""
    pairs = zip(ops.ops, ops.states, strict=True)
    largest = max((w.shape[0] * c.shape[0]) ** 2 * w.shape[1] * c.shape[2] for w, c in pairs)
    return backend.small_work_threads(largest, backend.is_numpy(ops.xp))


# ---------------------------------------------------------------------- results


def _assemble(t: Any, ops: Operands, run: Run, truncation: Truncation) -> Any:
    xp = ops.xp
    if t._n_phys_legs == 1:  # an MPS: the runs carry a unit input leg
        cores = tuple(xp.reshape(c, (c.shape[0], c.shape[1], c.shape[3])) for c in run.cores)
    else:
        cores = tuple(run.cores)
    norm = math.sqrt(max(run.norm_sq, 0.0))
    y_norm_sq = backend.frob_sq(run.cores[0])
    allowance = _allowance(ops, max(run.norm_sq, y_norm_sq))
    bound = math.sqrt(max(run.err_sq, 0.0) + allowance)
    total = truncation.total_budget(norm)
    met = total is None or run.err_sq <= total * (1 + 1e-9) + allowance
    report = TruncationReport.from_discarded(
        run.discarded,
        norm=norm,
        bond_dims_before=ops.bond_dims(),
        bond_dims_after=tuple(int(c.shape[-1]) for c in cores[:-1]),
        params_before=ops.params(),
        params_after=sum(math.prod(c.shape) for c in cores),
        method=run.method,
        tolerance_met=met,
    )
    return type(t)._trusted(cores, 0, report.with_bound(bound))


def _exact(o: Any, t: Any, truncation: Truncation) -> tuple[Any, dict]:
    compressed = (o @ t).compress(
        max_bond=truncation.max_bond, rtol=truncation.rtol, atol=truncation.atol
    )
    report = compressed.report.renamed(f"exact/{compressed.report.method}")
    result = compressed._with_cores(compressed.cores, compressed.centre, report)
    return result, {"method": "exact", "error": math.nan}


def _allowance(ops: Operands, norm_sq: float) -> float:
    return _ROUNDING_ALLOWANCE * ops.length * ops.eps * norm_sq


# ---------------------------------------------------------------------- ‖Ot‖²


def _norm_sq(ops: Operands) -> float:
    """⟨t|O^H O|t⟩ by one 4-layer transfer sweep, O(χ³·D²·d) per site."""
    env = ops.ones(4)
    for w, c in zip(ops.ops, ops.states, strict=True):
        env = contract(NORM, env, c, ops.conj(c), w, ops.conj(w))
    return float(np.real(backend.to_numpy(env)).reshape(-1)[0])


def _overlap(ops: Operands, cores: list) -> complex:
    """⟨y, Ot⟩ by one 3-layer transfer sweep from the right, O(χ³·D·d) per site."""
    env = ops.ones(3)
    for k in range(ops.length - 1, -1, -1):
        env = contract(_RIGHT_ENV, env, ops.conj(cores[k]), ops.ops[k], ops.states[k])
    return complex(backend.to_numpy(env).reshape(-1)[0])


# ---------------------------------------------------------------------- zip-up


def _zipup(
    ops: Operands,
    truncation: Truncation,
    *,
    oversample: float,
    relax: float,
    measure: bool = True,
) -> Run:
    norm_sq = _norm_sq(ops)
    total = truncation.total_budget(math.sqrt(max(norm_sq, 0.0)))
    cap = None if truncation.max_bond is None else math.ceil(oversample * truncation.max_bond)
    relaxed = None if total is None else total / relax**2
    cores, last_sq, cut_by_tolerance = _zip(ops, cap, relaxed)
    stage1_err_sq = norm_sq - last_sq
    if total is not None and stage1_err_sq > total and cut_by_tolerance:
        # The relaxed tolerance was spent on Θ's weights, which O's right part can amplify.
        cores, last_sq, _ = _zip(ops, cap, None)
        stage1_err_sq = norm_sq - last_sq
    # ‖Ot − y‖ ≤ ‖Ot − y1‖ + ‖y1 − y‖: the final sweep may spend what the zip left over.
    final = Truncation(max_bond=truncation.max_bond)
    if total is not None:
        spare = math.sqrt(max(total, 0.0)) - math.sqrt(max(stage1_err_sq, 0.0))
        final = Truncation(max_bond=truncation.max_bond, atol=max(spare, 0.0))
    intermediate = tuple(int(c.shape[-1]) for c in cores[:-1])
    shapes = [c.shape for c in cores]
    fused = tuple(
        ops.xp.reshape(c, (c.shape[0], c.shape[1] * c.shape[2], c.shape[3])) for c in cores
    )
    compressed, _, discarded, _, _ = svd_sweep(fused, len(fused) - 1, truncation=final)
    result = [
        ops.xp.reshape(c, (c.shape[0], s[1], s[2], c.shape[2]))
        for c, s in zip(compressed, shapes, strict=True)
    ]
    # The final sweep leaves the range of the zip's projector, so the cross term
    # ⟨Ot − y1, y1 − y⟩ need not vanish: measure ⟨y, Ot⟩ by a 3-layer sweep (unless the
    # caller measures it from environments of its own).
    err_sq = math.nan
    if measure:
        err_sq = norm_sq - 2 * _overlap(ops, result).real + backend.frob_sq(result[0])
    return Run(
        result, norm_sq, err_sq, list(discarded), "zipup", {"intermediate_bond_dims": intermediate}
    )


def _zip(ops: Operands, cap: int | None, total: float | None) -> tuple[list, float, bool]:
    """One left-to-right zip: cores (left isometries, centre last), ‖last core‖², and whether
    the tolerance (rather than the cap) cut somewhere. The carried matrix is exactly the
    left environment of ⟨y1|Ot⟩, so ⟨y1, Ot⟩ = ‖y1‖² = ‖last core‖²."""
    xp = ops.xp
    budget = Budget(total, ops.length - 1)
    carry = ops.ones(3)
    cores = []
    cut_by_tolerance = False
    for k, (w, c) in enumerate(zip(ops.ops, ops.states, strict=True)):
        theta = contract(_ZIP, carry, w, c)
        r, s, u, b, z = theta.shape
        if k == ops.length - 1:
            cores.append(xp.reshape(theta, (r, s, u, b * z)))
            break
        split = truncated_split(
            xp.reshape(theta, (r * s * u, b * z)), max_bond=cap, budget=budget.allowance()
        )
        budget.spend(split.discarded)
        if total is not None and split.discarded > 0 and (cap is None or split.rank < cap):
            cut_by_tolerance = True
        cores.append(xp.reshape(split.left, (r, s, u, split.rank)))
        carry = xp.reshape(split.right, (split.rank, b, z))
    return cores, backend.frob_sq(cores[-1]), cut_by_tolerance


# ---------------------------------------------------------------------- variational fit


def _fit(
    ops: Operands,
    truncation: Truncation,
    *,
    tol: float,
    max_sweeps: int,
    two_site_sweeps: int,
    guess_bond: int | None,
    progress: bool = False,
) -> Run:
    max_bond = truncation.max_bond
    if guess_bond is not None:
        if max_bond is None:
            raise ValueError("guess_bond: needs max_bond, the bond it grows to")
        guess_bond = min(int(guess_bond), max_bond)
    start = dataclasses.replace(truncation, max_bond=guess_bond or max_bond)
    guess = _zipup(ops, start, **_DEFAULT_OPTIONS["zipup"], measure=False)
    norm_sq = guess.norm_sq
    sweeper = _Fitter(ops, list(guess.cores))  # its right environments give ⟨guess, Ot⟩
    guess.err_sq = norm_sq - 2 * sweeper.overlap().real + backend.frob_sq(guess.cores[0])
    allowance = _allowance(ops, norm_sq)
    info = {"sweeps": 0, "converged": True, "history": [_dist(guess.err_sq)], "fallback": False}
    growing = guess_bond is not None and guess_bond != max_bond
    if ops.length == 1 or (guess.err_sq <= allowance and not growing):
        return Run(guess.cores, norm_sq, guess.err_sq, guess.discarded, "fit", info)
    total = truncation.total_budget(math.sqrt(max(norm_sq, 0.0)))
    per_bond = None if total is None else total / (ops.length - 1)
    err_sq, discarded = guess.err_sq, list(guess.discarded)
    cap = guess_bond if growing else max_bond
    info["converged"] = False
    for sweep in steps(range(max_sweeps), progress=progress, desc="fit sweeps"):
        previous = err_sq
        if sweep < two_site_sweeps or growing:
            for rightward in (True, False):  # from a smaller guess the cap doubles every pass
                cap = min(2 * cap, max_bond) if growing else cap
                kept_sq = sweeper.two_site_pass(cap, per_bond, discarded, rightward=rightward)
            growing = growing and cap != max_bond
            err_sq = norm_sq - kept_sq
        else:
            sweeper.one_site_pass(rightward=True)
            err_sq = norm_sq - sweeper.one_site_pass(rightward=False)
        info["sweeps"] = sweep + 1
        info["history"].append(_dist(err_sq))
        logger.debug("apply fit sweep %d: distance %.6e", sweep + 1, _dist(err_sq))
        if not growing and abs(previous - err_sq) <= 2 * tol * max(previous, 0.0) + allowance:
            info["converged"] = True
            break
    if total is not None and err_sq > total * (1 + 1e-9) + allowance >= guess.err_sq:
        info["fallback"] = True
        return Run(guess.cores, norm_sq, guess.err_sq, guess.discarded, "fit", info)
    return Run(sweeper.cores, norm_sq, err_sq, discarded, "fit", info)


def _dist(err_sq: float) -> float:
    return math.sqrt(max(err_sq, 0.0))


class _Fitter:
    """Sweeps of ``y`` against ``O·T`` with the environments of ⟨y|O|t⟩ kept up to date.

    ``left[k]`` contracts sites ``< k`` and ``right[k]`` sites ``> k``; ``cores`` starts
    right-canonical (centre 0), and every pass leaves it canonical about its last site.
    """

    def __init__(self, ops: Operands, cores: list) -> None:
        self.ops = ops
        self.cores = cores
        n_sites = ops.length
        self.left: list = [ops.ones(3)] + [None] * (n_sites - 1)
        self.right: list = [None] * (n_sites - 1) + [ops.ones(3)]
        for k in range(n_sites - 1, 0, -1):
            self._update_right(k)

    def overlap(self) -> complex:
        """⟨y, Ot⟩ from the right environment of site 0 (valid before any pass)."""
        ops = self.ops
        theta = contract(_ONE_SITE, self.left[0], ops.ops[0], ops.states[0], self.right[0])
        return complex(backend.to_numpy(ops.xp.sum(ops.conj(self.cores[0]) * theta)))

    def _update_left(self, k: int) -> None:
        ops = self.ops
        self.left[k + 1] = contract(
            _LEFT_ENV, self.left[k], ops.conj(self.cores[k]), ops.ops[k], ops.states[k]
        )

    def _update_right(self, k: int) -> None:
        ops = self.ops
        self.right[k - 1] = contract(
            _RIGHT_ENV, self.right[k], ops.conj(self.cores[k]), ops.ops[k], ops.states[k]
        )

    def two_site_pass(self, max_bond, per_bond, discarded: list, *, rightward: bool) -> float:
        """Optimise every neighbouring pair; returns ‖y‖² = ⟨y, Ot⟩ after the last pair."""
        ops, xp = self.ops, self.ops.xp
        pairs = range(ops.length - 1)
        kept_sq = 0.0
        for k in pairs if rightward else reversed(pairs):
            theta = contract(
                _TWO_SITE,
                self.left[k],
                ops.ops[k],
                ops.states[k],
                ops.ops[k + 1],
                ops.states[k + 1],
                self.right[k + 1],
            )
            r, s, u, s2, u2, q = theta.shape
            split = truncated_split(
                xp.reshape(theta, (r * s * u, s2 * u2 * q)),
                max_bond=max_bond,
                budget=per_bond,
                isometry="left" if rightward else "right",
            )
            discarded[k] = split.discarded
            self.cores[k] = xp.reshape(split.left, (r, s, u, split.rank))
            self.cores[k + 1] = xp.reshape(split.right, (split.rank, s2, u2, q))
            if rightward:
                self._update_left(k)
            else:
                self._update_right(k + 1)
            kept_sq = backend.frob_sq(split.right if rightward else split.left)
        return kept_sq

    def one_site_pass(self, *, rightward: bool) -> float:
        """Optimise every site at fixed bonds; returns ‖y‖² = ⟨y, Ot⟩ after the last site."""
        ops, xp = self.ops, self.ops.xp
        sites = range(ops.length)
        last = ops.length - 1 if rightward else 0
        for k in sites if rightward else reversed(sites):
            theta = contract(_ONE_SITE, self.left[k], ops.ops[k], ops.states[k], self.right[k])
            r, s, u, q = theta.shape
            if k == last:
                self.cores[k] = theta
                return backend.frob_sq(theta)
            if rightward:
                iso, _ = orthonormalize(xp.reshape(theta, (r * s * u, q)))
                self.cores[k] = xp.reshape(iso, (r, s, u, iso.shape[1]))
                self._update_left(k)
            else:
                iso, _ = orthonormalize(backend.conj_t(xp.reshape(theta, (r, s * u * q))))
                self.cores[k] = xp.reshape(backend.conj_t(iso), (iso.shape[1], s, u, q))
                self._update_right(k)
        raise AssertionError("unreachable")
