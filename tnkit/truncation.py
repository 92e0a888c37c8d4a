"""Truncation rules (max_bond, rtol, atol), the error budget per bond, and TruncationReport.

Plain data and arithmetic on host floats only: no factorisation here, and no array library
(``Compressed`` holds cores but never touches them).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import check_int
from ._scaling import ldexp

__all__ = ["TruncationReport", "Truncation"]


@dataclass(frozen=True)
class TruncationReport:
    """What a truncating call cut, with a rigorous Frobenius error bound.

    ``discarded[k]`` is the squared weight removed at bond ``k`` (measured from exact norms);
    the pieces are orthogonal, so ``abs_error_bound = sqrt(sum(discarded))`` bounds
    ``‖x − x̃‖_F`` up to rounding, and ``rel_error_bound`` is that relative to ``‖x‖_F``.

    Attributes:
        discarded: squared Frobenius weight cut at each bond (``discarded[k]``: bond k).
        abs_error_bound: rigorous bound on ``‖x − x̃‖_F``.
        rel_error_bound: ``abs_error_bound / ‖x‖_F`` (0 for a zero input).
        bond_dims_before: bonds of the input (for a dense input: the full TT ranks).
        bond_dims_after: bonds of the result.
        params_before: entries of the input (``x.size``/``W.size`` for dense inputs).
        params_after: entries of the result's cores.
        compression_ratio: ``params_before / params_after``.
        method: the scheme and the factorisations that actually ran, e.g. ``"svd/gram"``.
        tolerance_met: False only when ``max_bond`` stopped ``rtol``/``atol`` from being met.
        norm: ``‖x‖_F`` of the input, the reference of ``rel_error_bound``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> m = tn.tt_svd(np.arange(16.0), (2, 2, 2, 2), max_bond=1)
        >>> r = m.report
        >>> r.bond_dims_after, r.tolerance_met
        ((1, 1, 1), True)
        >>> err = np.linalg.norm(m.to_dense().ravel() - np.arange(16.0))
        >>> bool(err <= r.abs_error_bound + 1e-12)
        True
    """

    discarded: tuple[float, ...]
    abs_error_bound: float
    rel_error_bound: float
    bond_dims_before: tuple[int, ...]
    bond_dims_after: tuple[int, ...]
    params_before: int
    params_after: int
    compression_ratio: float
    method: str
    tolerance_met: bool = True
    norm: float = float("nan")

    @classmethod
    def from_discarded(
        cls,
        discarded: list[float],
        *,
        norm: float,
        bond_dims_before: tuple[int, ...],
        bond_dims_after: tuple[int, ...],
        params_before: int,
        params_after: int,
        method: str,
        tolerance_met: bool,
        rel_error: float | None = None,
    ) -> TruncationReport:
        """The report of a truncation that cut ``discarded[k]`` (squared weight) at bond k.

        The bound is ``sqrt(Σ discarded)``, relative to ``norm``. ``rel_error`` replaces the
        relative bound where it was computed more accurately than from these (absolute,
        possibly infinite) numbers — in scaled units, or as an estimate of an exact method;
        the absolute bound is then ``rel_error · norm``.

        Example:
            >>> r = TruncationReport.from_discarded(
            ...     [0.09, 0.16], norm=5.0, bond_dims_before=(4, 4), bond_dims_after=(2, 2),
            ...     params_before=32, params_after=16, method="svd", tolerance_met=True)
            >>> r.abs_error_bound, r.rel_error_bound, r.compression_ratio
            (0.5, 0.1, 2.0)
        """
        abs_bound = math.sqrt(max(sum(discarded), 0.0))
        rel_bound = abs_bound / norm if norm > 0 else 0.0
        if rel_error is not None:
            rel_bound = rel_error
            abs_bound = rel_error * norm if rel_error > 0 else 0.0
        return cls(
            discarded=tuple(float(d) for d in discarded),
            abs_error_bound=abs_bound,
            rel_error_bound=rel_bound,
            bond_dims_before=tuple(bond_dims_before),
            bond_dims_after=tuple(bond_dims_after),
            params_before=int(params_before),
            params_after=int(params_after),
            compression_ratio=_ratio(params_before, params_after),
            method=method,
            tolerance_met=tolerance_met,
            norm=float(norm),
        )

    def scaled(self, exponent: int) -> TruncationReport:
        """The same cut of the input times ``2**exponent``: weights, bound and norm scale,
        the relative bound does not (inf where a number leaves the double range).

        Example:
            >>> r = TruncationReport.from_discarded(
            ...     [1.0], norm=4.0, bond_dims_before=(2,), bond_dims_after=(1,),
            ...     params_before=8, params_after=4, method="svd", tolerance_met=True)
            >>> s = r.scaled(3)
            >>> s.discarded, s.abs_error_bound, s.norm, s.rel_error_bound == r.rel_error_bound
            ((64.0,), 8.0, 32.0, True)
        """
        return dataclasses.replace(
            self,
            discarded=tuple(ldexp(d, 2 * exponent) for d in self.discarded),
            abs_error_bound=ldexp(self.abs_error_bound, exponent),
            norm=ldexp(self.norm, exponent),
        )

    def with_bound(self, abs_error_bound: float) -> TruncationReport:
        """The same cut with a wider rigorous bound (e.g. one that adds rounding of a
        contraction to the discarded weights); the relative bound follows."""
        rel = abs_error_bound / self.norm if self.norm > 0 else 0.0
        return dataclasses.replace(self, abs_error_bound=abs_error_bound, rel_error_bound=rel)

    def counting_input(self, params_before: int) -> TruncationReport:
        """The same cut, with ``params_before`` the entries of the original input (a dense
        matrix's size rather than its full-rank train's) and the ratio to match."""
        return dataclasses.replace(
            self,
            params_before=int(params_before),
            compression_ratio=_ratio(params_before, self.params_after),
        )

    def followed_by(
        self, second: TruncationReport | None, truncation: Truncation, *, rounding: float = 0.0
    ) -> TruncationReport:
        """This cut, then ``rounding`` (a change of its result relative to that result's
        norm), then a ``second`` cut of what came of it (None: none), as ``truncation``
        asked for all: the errors add (triangle inequality), each relative one carried over
        to this input's norm (a result is at most ``1 + rel_error_bound`` times the input),
        so the bound holds whatever the scale. Bonds and parameters are the second's, and
        the method gains the last part of its name (``"zipup"`` then ``"svd/charges"``:
        ``"zipup+charges"``).

        Example:
            >>> first = TruncationReport.from_discarded(
            ...     [1.0], norm=10.0, bond_dims_before=(4,), bond_dims_after=(2,),
            ...     params_before=16, params_after=8, method="zipup", tolerance_met=True)
            >>> second = first.renamed("svd/charges").with_bound(0.5)
            >>> both = first.followed_by(second, Truncation(rtol=0.12))
            >>> round(both.rel_error_bound, 6), both.method, both.tolerance_met
            (0.155, 'zipup+charges', False)
        """
        growth = 1.0 + self.rel_error_bound  # ‖result‖ ≤ growth · ‖input‖
        rel = self.rel_error_bound + rounding * growth
        if second is not None:
            rel += second.rel_error_bound * (1.0 + rounding) * growth
        bound = rel * self.norm if rel > 0 else 0.0  # (0 · inf is no bound)
        met = self.tolerance_met
        if truncation.rtol is not None:
            met = met and rel <= truncation.rtol * (1 + 1e-9)
        if truncation.atol is not None:
            met = met and bound <= truncation.atol * (1 + 1e-9)
        last = self if second is None else second
        return dataclasses.replace(
            self,
            abs_error_bound=bound,
            rel_error_bound=rel,
            bond_dims_after=last.bond_dims_after,
            params_after=last.params_after,
            compression_ratio=_ratio(self.params_before, last.params_after),
            method=f"{self.method}+{(second.method if second else 'charges').split('/')[-1]}",
            tolerance_met=met,
        )

    def counting_output(self, after: Any) -> TruncationReport:
        """The same cut, with bonds and parameters those of the train ``after`` (the result
        once a later, exact step changed its bonds)."""
        return dataclasses.replace(
            self,
            bond_dims_after=tuple(after.bond_dims),
            params_after=int(after.num_params),
            compression_ratio=_ratio(self.params_before, after.num_params),
        )

    def renamed(self, method: str) -> TruncationReport:
        """The same cut, reported under another method name (e.g. ``"exact/svd"``)."""
        return dataclasses.replace(self, method=method)

    def __str__(self) -> str:
        return (
            f"TruncationReport(method={self.method!r}, bonds {list(self.bond_dims_before)} -> "
            f"{list(self.bond_dims_after)}, params {self.params_before} -> {self.params_after} "
            f"({self.compression_ratio:.3g}x), rel_error <= {self.rel_error_bound:.3e}"
            f"{'' if self.tolerance_met else ', tolerance NOT met (max_bond binds)'})"
        )


@dataclass(frozen=True)
class Truncation:
    """A validated truncation request: hard cap ``max_bond`` and tolerances ``rtol``/``atol``.

    ``Truncation()`` is the exact request: only numerically zero singular values go.

    Example:
        >>> Truncation(rtol=1e-3).total_budget(norm=2.0)
        4e-06
    """

    max_bond: int | None = None
    rtol: float | None = None
    atol: float | None = None

    def __post_init__(self) -> None:
        if self.max_bond is not None:
            object.__setattr__(self, "max_bond", check_int(self.max_bond, "max_bond", minimum=1))
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"{name}: expected a float, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: must be a finite number >= 0, got {value}")
            object.__setattr__(self, name, float(value))

    @property
    def has_tolerance(self) -> bool:
        """Whether ``rtol`` or ``atol`` was given."""
        return self.rtol is not None or self.atol is not None

    @property
    def is_exact(self) -> bool:
        """Whether nothing was asked for: only numerically zero singular values may go."""
        return self.max_bond is None and not self.has_tolerance

    def total_budget(self, norm: float) -> float | None:
        """Allowed squared error for the whole train (None: no tolerance was given)."""
        if not self.has_tolerance:
            return None
        limits = []
        # x * x, not x ** 2: a float power raises OverflowError where a product gives inf
        if self.rtol is not None:
            limits.append((self.rtol * norm) * (self.rtol * norm))
        if self.atol is not None:
            limits.append(self.atol * self.atol)
        return min(limits)


def zero_cutoff(singular_values: np.ndarray, shape: tuple[int, int], eps: float) -> float:
    """Singular values at or below this are numerically zero (DESIGN §1)."""
    if singular_values.size == 0:
        return 0.0
    return 10.0 * max(shape) * eps * float(singular_values[0])


def choose_rank(
    singular_values: np.ndarray,
    *,
    shape: tuple[int, int],
    eps: float,
    max_bond: int | None,
    budget: float | None,
    floor: float = 0.0,
) -> int:
    """Smallest rank whose discarded weight ``floor + Σ s[r:]²`` fits ``budget``, capped.

    ``singular_values`` are descending; ``floor`` is weight already lost outside them (e.g.
    a randomized sketch's residual). With no budget only numerically zero values are cut;
    with a budget the budget alone decides (a tolerance below rounding keeps every nonzero
    value, as asked).
    """
    s = np.asarray(singular_values, dtype=np.float64)
    n = s.size
    if budget is None:
        rank = int(np.count_nonzero(s > zero_cutoff(s, shape, eps)))
    else:  # the tolerance decides alone, even below the numerical-zero level it asks for
        tail = np.concatenate([np.cumsum((s**2)[::-1])[::-1], [0.0]]) + floor
        fitting = np.nonzero(tail <= budget)[0]
        rank = int(fitting[0]) if fitting.size else n
    if max_bond is not None:
        rank = min(rank, max_bond)
    return max(1, min(rank, n))


class Budget:
    """Splits a total squared-error budget across bonds, passing unspent budget forward.

    Each bond may spend ``remaining / bonds_left``, so the sum never exceeds the total
    (Oseledets' even split, made adaptive).
    """

    def __init__(self, total: float | None, n_bonds: int) -> None:
        self.total = total
        self.remaining = total
        self.bonds_left = max(n_bonds, 1)

    def allowance(self) -> float | None:
        if self.remaining is None:
            return None
        return max(self.remaining, 0.0) / self.bonds_left

    def spend(self, discarded: float) -> None:
        if self.remaining is not None:
            self.remaining -= discarded
        self.bonds_left = max(self.bonds_left - 1, 1)

    def met(self, discarded: list[float]) -> bool:
        """Whether the whole train's discarded weight fits the total (up to rounding)."""
        return self.total is None or sum(discarded) <= self.total * (1 + 1e-9)


def _ratio(params_before: int, params_after: int) -> float:
    return params_before / params_after if params_after else math.inf


@dataclass(frozen=True)
class Compressed:
    """A compression's raw result, before it becomes a train and a report.

    ``norm`` and ``discarded`` are in absolute units (inf where they leave double range);
    ``rel_error`` is the relative bound (or estimate) computed in scaled units, always finite.
    The result is ``2**exponent`` times the train of ``cores``.
    """

    cores: tuple
    centre: int | None
    norm: float
    discarded: list
    rel_error: float
    tolerance_met: bool
    method: str
    exponent: int = 0

    def report(self, before: Any, cores: tuple, *, norm: float, scaled: bool) -> TruncationReport:
        """The report of this result (new ``cores``) against the train ``before`` (its
        bonds and parameters) of norm ``norm``. ``scaled``: the relative bound is
        ``rel_error`` as computed in scaled units (or estimated), not the absolute weights'."""
        return TruncationReport.from_discarded(
            self.discarded,
            norm=norm,
            bond_dims_before=before.bond_dims,
            bond_dims_after=tuple(int(c.shape[-1]) for c in cores[:-1]),
            params_before=before.num_params,
            params_after=sum(math.prod(c.shape) for c in cores),
            method=self.method,
            tolerance_met=self.tolerance_met,
            rel_error=self.rel_error if scaled else None,
        )
