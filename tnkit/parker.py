"""Parker canonical form and compression of local MPOs (Parker, Cao & Zaletel, PRB 102, 035147).

Pure functions on NumPy host copies of MPO cores ``(Dl, d, d, Dr)``; the identity channels
are kept exact and only the intensive block is truncated. No MPS, no contraction of trains.

Conventions. A local MPO is in *regular form* when every bond has, besides its *middle*
channels, a *start* channel (left operator exactly the identity: nothing placed yet) and a
*done* channel (right operator exactly the identity: the term is complete), each of which
may be absent where it would carry nothing (no term left of the cut, none right of it).
Ordered start, middle, done, a core is the upper triangular operator matrix of the paper,

    W = [[1, c, d],
         [0, A, b],
         [0, 0, 1]],

and the first core is its start row, the last its done column. The inner product is the
per-site normalised ``⟨X, Y⟩ = Tr(X†Y)/d`` (the identity has norm 1 on any number of sites),
which all singular values and errors here use: ``‖X‖_N = ‖X‖_F / sqrt(Π d)``. Internally
every core is divided by sqrt(d), so these are plain Frobenius norms of the scaled cores.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import _backend as backend
from .truncation import Budget, Compressed, Truncation

__all__ = [
    "RegularForm",
    "canonical",
    "parker_compress",
    "regular_form",
    "truncate_regular",
]

# An entry counts as zero, and a block as a multiple of the identity, up to this many ε
# times the largest entry of its core (structural zeros of OpSum, sums and products are
# exact; this only absorbs rounding from merged identity channels).
_STRUCTURE_FACTOR = 64.0
# Numerically zero intensive singular values: 10·max(m, n)·ε times the bond's scale, as the
# SVD's exact rule (DESIGN §1).
_ZERO_FACTOR = 10.0


@dataclasses.dataclass(frozen=True)
class RegularForm:
    """An MPO in regular form: host cores with, at every inner bond, the start channel first
    (where ``has_start[k]``) and the done channel last (where ``has_done[k]``), both carrying
    exactly the identity (``W[start, :, :, start] = W[done, :, :, done] = 1``)."""

    cores: tuple
    has_start: tuple[bool, ...]
    has_done: tuple[bool, ...]

    def flags(self, bond: int) -> tuple[bool, bool]:
        """``(has_start, has_done)`` of ``bond`` (−1 and L−1: the boundary bonds, whose one
        channel is the start on the left and the done channel on the right)."""
        if bond < 0:
            return True, False
        if bond >= len(self.cores) - 1:
            return False, True
        return self.has_start[bond], self.has_done[bond]


# ---------------------------------------------------------------------- regular form


def regular_form(cores) -> RegularForm:
    """Find the identity channels of an MPO and bring it to the regular form of the paper.

    Start channels are found left to right (a column whose only nonzero block is a multiple
    of the identity in the start row of the bond before), done channels right to left (a
    row whose only nonzero block is a multiple of the identity in the next done column).
    Several start (done) channels at one bond, as in ``h + h``, are merged into one with
    their coefficients pushed into the next (previous) core; an identity channel that
    carries exactly nothing is dropped; channels are then ordered start, middle, done, so
    upper and lower triangular conventions (any channel order) are accepted. Exact: the
    operator does not change.

    Raises ValueError naming ``o`` when no inner bond has an identity channel (e.g. a
    random MPO) or a site is not square.

    Example:
        >>> import tnkit as tn
        >>> form = regular_form(tn.models.ising(4).cores)
        >>> form.has_start, form.has_done, [c.shape[-1] for c in form.cores[:-1]]
        ((True, True, True), (True, True, True), [3, 3, 3])
    """
    host = [np.asarray(backend.to_numpy(c)) for c in cores]
    _check_cores(host)
    n = len(host)
    if n == 1:
        return RegularForm((host[0].copy(),), (), ())
    host = [c.copy() for c in host]
    start = _merge_starts(host)
    done = _merge_dones(host, start)
    _drop_empty(host, start, done)
    if not any(s is not None for s in start) and not any(f is not None for f in done):
        raise ValueError(
            "o: not in regular form: no bond has an identity channel (a column that is a "
            "multiple of the identity fed only by the identity channel before it, or such a "
            "row); Parker compression is for sums of local terms as built by OpSum/models"
        )
    for k in range(n - 1):
        order = _channel_order(host[k].shape[-1], start[k], done[k])
        host[k] = host[k][..., order]
        host[k + 1] = host[k + 1][order]
    return RegularForm(
        tuple(host), tuple(s is not None for s in start), tuple(f is not None for f in done)
    )


def _check_cores(host: list) -> None:
    if not host:
        raise ValueError("o: expected at least one core")
    for k, c in enumerate(host):
        if c.ndim != 4:
            raise ValueError(
                f"o: Parker compression needs MPO cores (Dl, d_out, d_in, Dr), got "
                f"shape {c.shape} at site {k}"
            )
        if c.shape[1] != c.shape[2]:
            raise ValueError(
                f"o: Parker compression needs square sites (d_out == d_in), got "
                f"{c.shape[1]}x{c.shape[2]} at site {k}"
            )
        if not np.all(np.isfinite(c)):
            raise ValueError(f"o: core {k} holds NaN or Inf")


def _zero_level(core: np.ndarray) -> float:
    largest = float(np.max(np.abs(core))) if core.size else 0.0
    return _STRUCTURE_FACTOR * float(np.finfo(core.dtype).eps) * largest


def _identity_multiple(block: np.ndarray, tiny: float):
    """``λ`` when ``block ≈ λ·1`` with ``λ`` clearly nonzero, else None."""
    value = block[0, 0]
    if abs(value) <= tiny:
        return None
    if np.max(np.abs(block - value * np.eye(block.shape[0], dtype=block.dtype))) > tiny:
        return None
    return value


def _merge_starts(host: list) -> list:
    """Left to right: ``start[k]`` is the start channel of bond k (None: absent), each bond's
    start channels merged into one carrying exactly the identity."""
    n = len(host)
    start: list = [None] * (n - 1)
    row = 0  # the start row of core k (the boundary's one channel for k = 0)
    for k in range(n - 1):
        core = host[k]
        if row is None:
            break
        tiny = _zero_level(core)
        others = np.delete(core, row, axis=0)
        found, coeffs = [], []
        for b in range(core.shape[-1]):
            if others.size and np.max(np.abs(others[..., b])) > tiny:
                continue
            value = _identity_multiple(core[row, :, :, b], tiny)
            if value is not None:
                found.append(b)
                coeffs.append(value)
        if not found:
            row = None
            continue
        keep = found[0]
        core[..., keep] = 0
        core[row, :, :, keep] = np.eye(core.shape[1], dtype=core.dtype)
        following = host[k + 1]
        following[keep] = np.tensordot(
            np.asarray(coeffs, dtype=following.dtype), following[found], axes=(0, 0)
        )
        host[k] = np.delete(core, found[1:], axis=-1)
        host[k + 1] = np.delete(following, found[1:], axis=0)
        start[k] = row = keep
    return start


def _merge_dones(host: list, start: list) -> list:
    """Right to left: ``done[k]`` is the done channel of bond k, merged as the starts were
    (a start channel is never taken for a done channel)."""
    n = len(host)
    done: list = [None] * (n - 1)
    column = 0  # the done column of core k (the boundary's one channel for k = n-1)
    for k in range(n - 1, 0, -1):
        core = host[k]
        if column is None:
            break
        tiny = _zero_level(core)
        others = np.delete(core, column, axis=-1)
        found, coeffs = [], []
        for a in range(core.shape[0]):
            if a == start[k - 1] or (others.size and np.max(np.abs(others[a])) > tiny):
                continue
            value = _identity_multiple(core[a, :, :, column], tiny)
            if value is not None:
                found.append(a)
                coeffs.append(value)
        if not found:
            column = None
            continue
        keep = found[0]
        core[keep] = 0
        core[keep, :, :, column] = np.eye(core.shape[1], dtype=core.dtype)
        previous = host[k - 1]
        previous[..., keep] = np.tensordot(
            previous[..., found], np.asarray(coeffs, dtype=previous.dtype), axes=(-1, 0)
        )
        host[k] = np.delete(core, found[1:], axis=0)
        host[k - 1] = np.delete(previous, found[1:], axis=-1)
        s = start[k - 1]
        if s is not None:
            start[k - 1] = s - sum(1 for a in found[1:] if a < s)
        done[k - 1] = column = keep
    return done


def _drop_empty(host: list, start: list, done: list) -> None:
    """Remove identity channels that carry nothing: a done channel whose column is zero with
    no done channel before it (no term ends left of the cut), a start channel whose row is
    zero with no start channel after it (no term starts right of it)."""
    n = len(host)
    for k in range(n - 1):
        f = done[k]
        if f is None or (k > 0 and done[k - 1] is not None):
            continue
        if np.max(np.abs(host[k][..., f])) <= _zero_level(host[k]):
            _remove_channel(host, k, f, start, done)
            done[k] = None
    for k in range(n - 2, -1, -1):
        s = start[k]
        if s is None or (k < n - 2 and start[k + 1] is not None):
            continue
        if np.max(np.abs(host[k + 1][s])) <= _zero_level(host[k + 1]):
            _remove_channel(host, k, s, start, done)
            start[k] = None


def _remove_channel(host: list, bond: int, channel: int, start: list, done: list) -> None:
    if host[bond].shape[-1] == 1:
        return  # a bond keeps one channel (the operator is zero there)
    host[bond] = np.delete(host[bond], channel, axis=-1)
    host[bond + 1] = np.delete(host[bond + 1], channel, axis=0)
    for marks in (start, done):
        if marks[bond] is not None and marks[bond] > channel:
            marks[bond] -= 1


def _channel_order(size: int, s, f) -> list:
    middle = [c for c in range(size) if c != s and c != f]
    return ([s] if s is not None else []) + middle + ([f] if f is not None else [])


# ---------------------------------------------------------------------- canonical forms


def canonical(form: RegularForm, side: str = "left") -> RegularForm:
    """The paper's left (right) canonical form by a block QR (LQ) sweep; exact.

    ``side="left"``: for every site but the last, the block ``V`` of core k without its done
    row and done column satisfies ``Σ_a ⟨V[a, b], V[a, c]⟩ = δ_bc`` and its start column
    is exactly the identity: start and middle left operators are orthonormal and the middle
    ones traceless. ``side="right"``: for every site but the first, the block without its
    start row and start column satisfies ``Σ_b ⟨V[a, b], V[c, b]⟩ = δ_ac`` with the done
    row exactly the identity. The gauge ends in the last (first) core.

    Example:
        >>> import tnkit as tn
        >>> left = canonical(regular_form(tn.models.heisenberg(6).cores), "left")
        >>> [c.shape[-1] for c in left.cores[:-1]]
        [4, 5, 5, 5, 4]
    """
    if side not in ("left", "right"):
        raise ValueError(f"side: expected 'left' or 'right', got {side!r}")
    scaled = _scaled(form)
    if side == "left":
        scaled = _left_sweep(scaled)
    else:
        scaled, _, _ = _right_sweep(scaled, truncation=None, norm=0.0)
    return _unscaled(scaled)


def _scaled(form: RegularForm) -> RegularForm:
    cores = tuple(c / math.sqrt(c.shape[1]) for c in form.cores)
    return dataclasses.replace(form, cores=cores)


def _unscaled(form: RegularForm) -> RegularForm:
    cores = tuple(c * math.sqrt(c.shape[1]) for c in form.cores)
    return dataclasses.replace(form, cores=cores)


def _identity_vector(rows: int, row: int, d: int, dtype) -> np.ndarray:
    """Flattened scaled block ``e_row ⊗ 1/sqrt(d)`` of shape ``(rows·d·d,)`` (unit norm)."""
    vector = np.zeros((rows, d, d), dtype=dtype)
    vector[row] = np.eye(d, dtype=dtype) / math.sqrt(d)
    return vector.reshape(-1)


def _left_sweep(form: RegularForm) -> RegularForm:
    """Block QR left to right: ``V = [[1, c], [0, A]] = Q R`` with Q's first column kept
    exactly the identity, R (with a 1 for the done channel) pushed into the next core."""
    cores = list(form.cores)
    for k in range(len(cores) - 1):
        has_start_left, has_done_left = form.flags(k - 1)
        has_start, has_done = form.flags(k)
        core = cores[k]
        dl, d, _, dr = core.shape
        rows, cols = dl - has_done_left, dr - has_done
        block = core[:rows, :, :, :cols].reshape(rows * d * d, cols)
        q, r = np.linalg.qr(block)
        if has_start:  # the start column is the unit vector e_0 ⊗ 1: keep it exactly
            if r[0, 0].real < 0:
                q[:, 0], r[0] = -q[:, 0], -r[0]
            q[:, 0] = _identity_vector(rows, 0, d, core.dtype)
            r[0, 0] = 1
        width = q.shape[1]
        new = np.zeros((dl, d, d, width + has_done), dtype=core.dtype)
        new[:rows, :, :, :width] = q.reshape(rows, d, d, width)
        if has_done:
            new[..., -1] = core[..., -1]
        gauge = np.zeros((width + has_done, dr), dtype=core.dtype)
        gauge[:width, :cols] = r
        if has_done:
            gauge[-1, -1] = 1
        cores[k] = new
        cores[k + 1] = np.tensordot(gauge, cores[k + 1], axes=(1, 0))
    return dataclasses.replace(form, cores=tuple(cores))


def _right_sweep(form: RegularForm, truncation: Truncation | None, norm: float):
    """Block LQ right to left: ``V = [[A, b], [0, 1]] = L Q`` with Q's last row kept exactly
    the identity. ``L = [[M, s], [0, 1]]``; with a truncation (the input left canonical),
    ``M = U S V†`` is cut by the rule and only ``V†`` stays in the core, ``U S`` and ``s``
    go left. Returns ``(form, discarded, tolerance_met)``, ``discarded[k]`` the squared
    normalised weight cut at bond k."""
    cores = list(form.cores)
    n = len(cores)
    discarded = [0.0] * (n - 1)
    budget = Budget(truncation.total_budget(norm) if truncation else None, n - 1)
    for k in range(n - 1, 0, -1):
        has_start_left, has_done_left = form.flags(k - 1)
        has_start, _ = form.flags(k)
        core = cores[k]
        dl, d, _, dr = core.shape
        top, first = int(has_start_left), int(has_start)
        rows = dl - top
        block = core[top:, :, :, first:].reshape(rows, d * d * (dr - first))
        if has_done_left:  # done row first, so QR keeps it as the first direction
            block = np.roll(block, 1, axis=0)
        q, r = np.linalg.qr(block.conj().T)
        if has_done_left:
            if r[0, 0].real < 0:
                q[:, 0], r[0] = -q[:, 0], -r[0]
            done_row = np.zeros((d, d, dr - first), dtype=core.dtype)
            done_row[..., -1] = np.eye(d, dtype=core.dtype) / math.sqrt(d)
            q[:, 0] = done_row.reshape(-1)
            r[0, 0] = 1
            q, r = np.roll(q, -1, axis=1), np.roll(np.roll(r, -1, axis=0), -1, axis=1)
        lower, upper = r.conj().T, q.conj().T  # block = lower @ upper
        width = upper.shape[0] - has_done_left
        middle, coupling = lower[: rows - has_done_left, :width], None
        if has_done_left:
            coupling = lower[: rows - has_done_left, width]
        if truncation is not None:
            u, s, vh = np.linalg.svd(middle, full_matrices=False)
            rank = _inner_rank(s, coupling, middle.shape, truncation, budget, form, k - 1)
            lost = float(np.sum(s[rank:] ** 2))
            discarded[k - 1] = lost
            budget.spend(lost)
            left_map = u[:, :rank] * s[:rank]
            upper = np.concatenate([vh[:rank] @ upper[:width], upper[width:]], axis=0)
            width = rank
        else:
            left_map = middle
        new = np.zeros((top + upper.shape[0], d, d, dr), dtype=core.dtype)
        if top:
            new[0] = core[0]
        new[top:, :, :, first:] = upper.reshape(upper.shape[0], d, d, dr - first)
        previous = cores[k - 1]
        pieces = [previous[..., :top]] if top else []
        pieces.append(np.tensordot(previous[..., top : dl - has_done_left], left_map, axes=(3, 0)))
        if has_done_left:
            mids = previous[..., top : dl - 1]
            pieces.append(
                (np.tensordot(mids, coupling, axes=(3, 0)) + previous[..., -1])[..., None]
            )
        cores[k] = new
        cores[k - 1] = np.concatenate(pieces, axis=-1)
    met = budget.met(discarded)
    return dataclasses.replace(form, cores=tuple(cores)), discarded, met


def _inner_rank(s, coupling, shape, truncation: Truncation, budget: Budget, form, bond) -> int:
    """Kept intensive singular values at ``bond``: the tolerance's allowance (or, with none,
    the numerically nonzero ones: ``s > 10·max(m, n)·ε·max(s_0, ‖s_done‖)``), capped so
    that the bond with its identity channels fits ``max_bond``; at least one channel."""
    identities = sum(form.flags(bond))
    allowance = budget.allowance()
    if allowance is None:
        eps = float(np.finfo(s.dtype).eps)
        scale = max(
            float(s[0]) if s.size else 0.0,
            float(np.linalg.norm(coupling)) if coupling is not None else 0.0,
        )
        rank = int(np.count_nonzero(s > _ZERO_FACTOR * max(shape) * eps * scale))
    else:
        tail = np.concatenate([np.cumsum((s.astype(np.float64) ** 2)[::-1])[::-1], [0.0]])
        rank = int(np.nonzero(tail <= allowance)[0][0])
    if truncation.max_bond is not None:
        rank = min(rank, truncation.max_bond - identities)
    if identities == 0:
        rank = max(rank, 1)
    return max(min(rank, s.size), 0) if s.size else 0


# ---------------------------------------------------------------------- compression


def normalised_norm(form: RegularForm) -> float:
    """``‖H‖_N = ‖H‖_F / sqrt(Π d)`` by a left environment sweep (finite for any length)."""
    env = np.ones((1, 1))
    for core in _scaled(form).cores:
        env = np.einsum("ab,apqc,bpqe->ce", env, core.conj(), core, optimize=True)
    return math.sqrt(max(float(env[0, 0].real), 0.0))


def truncate_regular(cores, truncation: Truncation, *, like=None) -> Compressed:
    """Parker compression of MPO cores ``(Dl, d, d, Dr)``: the work of
    ``MPO.compress(method="parker")`` (see [parker_compress][tnkit.parker.parker_compress]).

    The result has no canonical centre (``centre=None``), cores 1..L−1 right canonical in
    the paper's sense, the same library and device as the input. ``discarded`` and
    ``norm`` are in absolute Frobenius units (inf beyond double range); ``rel_error`` is
    ``sqrt(Σ discarded) / ‖H‖_F`` computed in normalised units, always finite.
    """
    like = cores[0] if like is None else like
    if truncation.max_bond is not None and truncation.max_bond < 2:
        raise ValueError(
            f"max_bond: 'parker' keeps both identity channels, so max_bond must be >= 2, "
            f"got {truncation.max_bond}"
        )
    form = regular_form(cores)
    log_dim = sum(math.log(c.shape[1]) for c in form.cores)  # log Π d
    if len(form.cores) == 1:
        norm = normalised_norm(form)
        new = tuple(backend.from_numpy(np.ascontiguousarray(c), like) for c in form.cores)
        return Compressed(new, None, _grow(norm, log_dim / 2), [], 0.0, True, "parker")
    norm = normalised_norm(form)
    request = truncation
    if truncation.atol is not None:  # absolute Frobenius → normalised units
        request = dataclasses.replace(truncation, atol=_grow(truncation.atol, -log_dim / 2))
    with backend.blas_threads(backend.sweep_threads(form.cores)):
        left = _left_sweep(_scaled(form))
        result, discarded, met = _right_sweep(left, request, norm)
    host = _unscaled(result).cores
    total = math.sqrt(max(sum(discarded), 0.0))
    rel = total / norm if norm > 0 else 0.0
    new = tuple(backend.from_numpy(np.ascontiguousarray(c), like) for c in host)
    absolute = [_grow(w, log_dim) for w in discarded]
    return Compressed(new, None, _grow(norm, log_dim / 2), absolute, rel, met, "parker")


def parker_compress(cores, *, max_bond=None, rtol=None, atol=None) -> tuple[tuple, list, float]:
    """Compress a local MPO keeping its regular form: ``(cores, discarded, rel_error)``.

    The MPO is brought to regular form, then left canonical by block QR; a right-to-left
    sweep of block LQ factorisations exposes at every bond ``H = H_L⊗1 + 1⊗H_R +
    Σ_ab M_ab O_a⊗O'_b`` with ``{1, O_a}`` and ``{O'_b, 1}`` orthonormal in the normalised
    inner product, and only the intensive block ``M`` is cut by its SVD (the identity
    channels, ``H_L``, ``H_R`` and the one-sided couplings are never touched). ``rtol``,
    ``atol`` and ``max_bond`` mean what they mean everywhere in tnkit (``‖H − H̃‖_F ≤
    rtol·‖H‖_F`` over the whole chain, budget split across bonds; ``max_bond`` counts the
    identity channels and must be ≥ 2); with none, only numerically zero intensive values
    go, which gives the optimal regular-form bonds.

    ``discarded[k]`` is the squared intensive singular values cut at bond k in normalised
    units ``‖·‖_N² = ‖·‖_F² / Π d``; the cut pieces are orthogonal, so
    ``‖H − H̃‖_N = sqrt(Σ discarded)`` (up to rounding) and ``rel_error`` is that over
    ``‖H‖_N`` — the relative Frobenius error, exactly what ``TruncationReport`` reports.
    For a random state ψ, E‖(H − H̃)ψ‖² = ‖H − H̃‖_N²·‖ψ‖².

    Example:
        >>> import tnkit as tn
        >>> h = tn.models.heisenberg(8)
        >>> cores, discarded, rel = parker_compress((h + h).cores)
        >>> [c.shape[-1] for c in cores[:-1]], rel < 1e-14
        ([4, 5, 5, 5, 5, 5, 4], True)
    """
    result = truncate_regular(cores, Truncation(max_bond=max_bond, rtol=rtol, atol=atol))
    log_dim = sum(math.log(c.shape[1]) for c in result.cores)
    return result.cores, [_grow(w, -log_dim) for w in result.discarded], result.rel_error


def _grow(value: float, log_factor: float) -> float:
    """``value · exp(log_factor)`` as a float (inf beyond the double range, 0 below it)."""
    if value == 0 or not math.isfinite(value):
        return value
    exponent = math.log(value) + log_factor
    return math.exp(exponent) if exponent < 709.7 else math.inf
