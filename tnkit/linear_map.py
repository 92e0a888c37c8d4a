"""An MPO as a linear map on a batch of vectors: layout, FLOP-count planning and contraction.

Pure functions on cores ``(Dl, d_out, d_in, Dr)`` and any array-API library; the adapters'
layers (``tnkit.torch.MPOLinear``) call them. Nothing here validates values or syncs a device:
these run inside training steps, ``torch.compile`` and ``jax.jit``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import array_api_compat as aac

from . import _backend as backend
from ._checks import check_dims, check_int
from ._factorize import factorize_dims
from .canonical import move_centre
from .ttsvd import full_rank_bonds

__all__ = [
    "Contraction",
    "LinearMapPlan",
    "dense_matrix",
    "linear_layout",
    "linear_map",
    "plan_linear_map",
    "rescale_cores",
]

# ---------------------------------------------------------------------- layout


def linear_layout(
    in_features: int,
    out_features: int,
    *,
    n_cores: int | None = None,
    in_dims: Any = None,
    out_dims: Any = None,
    max_bond: int | None = None,
    bond_dims: Any = None,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(out_dims, in_dims, bond_dims)`` of an MPO layer for an ``(out, in)`` weight.

    Dims not given come from ``factorize_dims(size, n_cores, pad=True)`` (``n_cores``
    defaults to 4, or to the length of the dims given); dims whose product exceeds the
    size mean zero padding. Bonds are the full TT ranks, capped by ``max_bond``, unless
    ``bond_dims`` gives them (each between 1 and the full rank).

    Example:
        >>> linear_layout(784, 256, in_dims=(4, 7, 7, 4), max_bond=4)
        ((4, 4, 4, 4), (4, 7, 7, 4), (4, 4, 4))
        >>> linear_layout(97, 10, n_cores=2)  # 97 is prime: padded to 100
        ((2, 5), (10, 10), (20,))
    """
    in_features = check_int(in_features, "in_features", minimum=1)
    out_features = check_int(out_features, "out_features", minimum=1)
    given = {
        name: check_dims(dims, name)
        for name, dims in (("in_dims", in_dims), ("out_dims", out_dims))
        if dims is not None
    }
    if n_cores is not None:
        n_cores = check_int(n_cores, "n_cores", minimum=1)
    for name, dims in given.items():
        if n_cores is not None and len(dims) != n_cores:
            raise ValueError(f"{name}: {dims} has {len(dims)} sites, but n_cores is {n_cores}")
    if len(given) == 2 and len(given["in_dims"]) != len(given["out_dims"]):
        raise ValueError(
            f"out_dims: {given['out_dims']} has {len(given['out_dims'])} sites, but in_dims "
            f"{given['in_dims']} has {len(given['in_dims'])}"
        )
    if n_cores is None:
        n_cores = len(next(iter(given.values()))) if given else 4
    dims = {}
    for name, size, feature in (
        ("in_dims", in_features, "in_features"),
        ("out_dims", out_features, "out_features"),
    ):
        dims[name] = given.get(name) or factorize_dims(size, n_cores, pad=True)
        if math.prod(dims[name]) < size:
            raise ValueError(
                f"{name}: product {math.prod(dims[name])} of {dims[name]} is smaller than "
                f"{feature} {size}"
            )
    outs, ins = dims["out_dims"], dims["in_dims"]
    full = full_rank_bonds(tuple(o * i for o, i in zip(outs, ins, strict=True)))
    if bond_dims is not None and max_bond is not None:
        raise ValueError(
            f"bond_dims and max_bond: give one of them, got bond_dims={bond_dims!r} "
            f"and max_bond={max_bond!r}"
        )
    if bond_dims is None:
        if max_bond is not None:
            max_bond = check_int(max_bond, "max_bond", minimum=1)
            full = tuple(min(b, max_bond) for b in full)
        return outs, ins, full
    bonds = _check_bonds(bond_dims)
    if len(bonds) != len(full):
        raise ValueError(
            f"bond_dims: need n_cores - 1 = {len(full)} bonds, got {len(bonds)} in {bonds}"
        )
    for k, (bond, limit) in enumerate(zip(bonds, full, strict=True)):
        if bond > limit:
            raise ValueError(
                f"bond_dims: bond_dims[{k}] = {bond} exceeds the full rank {limit} of that cut "
                f"(full ranks {full})"
            )
    return outs, ins, bonds


def _check_bonds(bond_dims: Any) -> tuple[int, ...]:
    """Bonds as checked ints; an empty sequence is fine (one core has no bonds)."""
    if isinstance(bond_dims, (tuple, list)) and len(bond_dims) == 0:
        return ()
    return check_dims(bond_dims, "bond_dims")


# ---------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Contraction:
    """One contraction order: merge runs of neighbouring cores, then sweep through the input.

    ``groups`` are the run lengths (all 1: the plain core-by-core ``"sweep"``; one run of
    all cores: ``"dense"``, build ``W`` and multiply). Each run is merged into one core,
    its two halves meeting at inner bond ``splits[g]`` (the cheapest); then the merged cores
    are contracted one by one into the input. All counts are 2·(multiply-adds).

    Attributes:
        groups: run lengths, summing to the number of cores.
        splits: per run, where its left and right halves meet (0 for a single core).
        group_out, group_in: fused output and input dims of each run (padded).
        merge_flops: flops of merging the runs (independent of the batch).
        flops_per_row: flops of the sweep per input row.
    """

    groups: tuple[int, ...]
    splits: tuple[int, ...]
    group_out: tuple[int, ...]
    group_in: tuple[int, ...]
    merge_flops: int
    flops_per_row: int

    @property
    def name(self) -> str:
        """``"sweep"``, ``"dense"`` or the run lengths, e.g. ``"2+2"``."""
        if len(self.groups) == 1:
            return "dense"
        if max(self.groups) == 1:
            return "sweep"
        return "+".join(str(g) for g in self.groups)

    def flops(self, batch: int) -> int:
        return self.merge_flops + batch * self.flops_per_row


@dataclass(frozen=True)
class LinearMapPlan:
    """FLOP counts of the contraction orders of ``y = x @ W.T`` and the cheapest per batch.

    Every [Contraction][tnkit.linear_map.Contraction] costs ``merge + B·per_row`` flops for
    ``B`` rows, a line in ``B``; ``segments`` is their lower envelope: ``(start, name)``
    pairs, the order ``name`` being the cheapest from ``start`` rows on (ties go to the
    order found first, the one with fewer merge flops). The plain sweep costs
    ``2·B·(Π_{m>k} in_m)(Π_{m<k} out_m)·D_{k-1}·in_k·out_k·D_k`` for core k; the dense
    order ``2·B·rows·cols`` plus building ``W``. Memory traffic is not counted.

    Attributes:
        out_dims, in_dims, bond_dims: the MPO's shape.
        matrix_shape: ``(rows, cols)`` of the map (smaller than the dims' product if padded).
        contractions: every order considered, by name (all merges of neighbouring runs for up
            to 10 cores; only ``"sweep"`` and ``"dense"`` beyond).
        segments: ``((0, name0), (start1, name1), ...)``: the cheapest order by batch size.

    Example:
        >>> p = plan_linear_map((8, 8, 8, 8), (8, 8, 8, 8), (8, 8, 8))
        >>> p.segments
        ((0, 'sweep'), (2, '2+2'))
        >>> p.order(64), p.flops(64) < p.flops(64, "dense")
        ('2+2', True)
    """

    out_dims: tuple[int, ...]
    in_dims: tuple[int, ...]
    bond_dims: tuple[int, ...]
    matrix_shape: tuple[int, int]
    contractions: dict
    segments: tuple[tuple[int, str], ...]

    def order(self, batch: Any) -> str:
        """The name of the cheapest order for ``batch`` rows (a comparison of ints only)."""
        for start, name in reversed(self.segments[1:]):
            if batch >= start:
                return name
        return self.segments[0][1]

    def flops(self, batch: int, order: str = "auto") -> int:
        """Forward flops for ``batch`` rows in ``order`` (``"auto"``: the chosen one)."""
        return self.contraction(self.order(batch) if order == "auto" else order).flops(batch)

    def contraction(self, order: Any) -> Contraction:
        """The [Contraction][tnkit.linear_map.Contraction] of a name or of run lengths."""
        if isinstance(order, tuple):
            order = Contraction(order, (), (), (), 0, 0).name
        if order == "sweep" and len(self.out_dims) == 1:  # one core: sweep is dense
            order = "dense"
        try:
            return self.contractions[order]
        except (KeyError, TypeError):
            raise ValueError(
                f"order: expected 'auto' or one of {sorted(self.contractions)}, got {order!r}"
            ) from None


MAX_PARTITIONED = 10


def plan_linear_map(
    out_dims: Any, in_dims: Any, bond_dims: Any, *, matrix_shape: Any = None
) -> LinearMapPlan:
    """The [LinearMapPlan][tnkit.linear_map.LinearMapPlan] of an MPO of this shape.

    Plain integer arithmetic on shapes (cached), so a traced forward pass sees a static
    branch: ``torch.compile`` guards on ``batch >= start`` of the plan's segments only.

    Example:
        >>> p = plan_linear_map((8, 8, 8, 8), (8, 8, 8, 8), (64, 64, 64))
        >>> p.segments  # from 65 rows on, building W is cheapest
        ((0, 'sweep'), (1, '2+2'), (65, 'dense'))
        >>> p.flops(64) == p.contractions["2+2"].flops(64)
        True
    """
    outs, ins = check_dims(out_dims, "out_dims"), check_dims(in_dims, "in_dims")
    bonds = tuple(int(b) for b in bond_dims)
    full = (math.prod(outs), math.prod(ins))
    shape = full if matrix_shape is None else tuple(int(s) for s in matrix_shape)
    return _plan(outs, ins, bonds, shape)


@functools.lru_cache(maxsize=1024)
def _plan(outs: tuple, ins: tuple, bonds: tuple, shape: tuple) -> LinearMapPlan:
    n = len(outs)
    if not (n == len(ins) == len(bonds) + 1):
        raise ValueError(
            f"bond_dims: need len(out_dims) - 1 = {n - 1} bonds for dims {outs} and {ins}, "
            f"got {bonds}"
        )
    edges = (1, *bonds, 1)
    if n <= MAX_PARTITIONED:
        partitions = [_runs(mask, n) for mask in range(2 ** (n - 1))]
    else:
        partitions = [(1,) * n, (n,)]
    contractions = {}
    for groups in partitions:
        c = _contraction(groups, outs, ins, edges, shape)
        contractions[c.name] = c
    return LinearMapPlan(outs, ins, bonds, shape, contractions, _envelope(contractions))


def _runs(mask: int, n: int) -> tuple[int, ...]:
    """Run lengths of ``n`` cores cut after core k wherever bit k of ``mask`` is 0."""
    groups, length = [], 1
    for k in range(n - 1):
        if mask >> k & 1:
            length += 1
        else:
            groups.append(length)
            length = 1
    return (*groups, length)


def _contraction(groups, outs, ins, edges, shape) -> Contraction:
    splits, group_out, group_in, group_edges = [], [], [], [edges[0]]
    merge, start = 0, 0
    for size in groups:
        stop = start + size
        sites = [o * i for o, i in zip(outs[start:stop], ins[start:stop], strict=True)]
        flops, split = _merge_flops(sites, edges[start : stop + 1])
        merge += flops
        splits.append(split)
        group_out.append(math.prod(outs[start:stop]))
        group_in.append(math.prod(ins[start:stop]))
        group_edges.append(edges[stop])
        start = stop
    if len(groups) == 1:  # W is cropped before the one matmul
        per_row = 2 * shape[0] * shape[1]
    else:
        per_row = 0
        for g in range(len(groups)):
            rows = math.prod(group_in[g + 1 :]) * math.prod(group_out[:g])
            per_row += 2 * rows * group_edges[g] * group_in[g] * group_out[g] * group_edges[g + 1]
    return Contraction(
        tuple(groups), tuple(splits), tuple(group_out), tuple(group_in), merge, per_row
    )


def _merge_flops(sites: list[int], edges: tuple[int, ...]) -> tuple[int, int]:
    """Cheapest merge of a run of cores (fused site sizes, bonds ``edges``): left part
    contracted left to right, right part right to left, one product where they meet."""
    m = len(sites)
    if m == 1:
        return 0, 0
    best = None
    for split in range(1, m):
        left = sum(
            2 * edges[0] * math.prod(sites[:k]) * edges[k] * sites[k] * edges[k + 1]
            for k in range(1, split)
        )
        right = sum(
            2 * edges[k] * sites[k] * edges[k + 1] * math.prod(sites[k + 1 :]) * edges[m]
            for k in range(split, m - 1)
        )
        meet = 2 * edges[0] * math.prod(sites[:split]) * edges[split]
        meet *= math.prod(sites[split:]) * edges[m]
        if best is None or left + right + meet < best[0]:
            best = (left + right + meet, split)
    return best


def _envelope(contractions: dict) -> tuple[tuple[int, str], ...]:
    """Lower envelope of the lines ``merge + B·per_row`` over integer ``B >= 0``."""
    lines = list(contractions.values())
    # Lines no cheaper anywhere than another one (both costs >=) never win: drop them.
    lines = [
        c
        for c in lines
        if not any(
            (d.merge_flops, d.flops_per_row) < (c.merge_flops, c.flops_per_row)
            and d.merge_flops <= c.merge_flops
            and d.flops_per_row <= c.flops_per_row
            for d in lines
        )
    ]
    # The cheapest line only changes where two lines cross: the first integer B at which
    # the flatter one is strictly cheaper. Between those points the minimum is constant.
    starts = {0}
    for c in lines:
        for d in lines:
            if c.flops_per_row < d.flops_per_row and c.merge_flops > d.merge_flops:
                starts.add(
                    (c.merge_flops - d.merge_flops) // (d.flops_per_row - c.flops_per_row) + 1
                )
    segments: list[tuple[int, str]] = []
    for start in sorted(starts):
        best = min(lines, key=lambda c: (c.flops(start), c.merge_flops, c.flops_per_row))
        if not segments or segments[-1][1] != best.name:
            segments.append((start, best.name))
    return tuple(segments)


# ---------------------------------------------------------------------- contraction


def linear_map(
    cores: Any,
    x: Any,
    *,
    bias: Any = None,
    matrix_shape: Any = None,
    order: Any = "auto",
    plan: LinearMapPlan | None = None,
    xp: Any = None,
) -> Any:
    """``y = x @ W.T (+ bias)`` for the MPO ``W (out, in)`` with the given cores.

    ``x`` has shape ``(..., cols)`` and ``y`` has ``(..., rows)``, where ``(rows, cols)`` is
    ``matrix_shape`` (default: the products of the dims; smaller means zero padding, as
    ``MPO.from_matrix(pad=True)`` makes: the input is padded, the output cropped). ``order``
    is ``"sweep"`` (core by core through the input), ``"dense"`` (build ``W``, one matmul),
    run lengths such as ``"2+2"`` (merge neighbouring cores first) or ``"auto"`` (fewest
    flops for this batch, see [plan_linear_map][tnkit.linear_map.plan_linear_map]). Pass
    ``plan`` to skip re-planning and ``xp``, the array namespace, to skip finding it, as
    the adapters do inside traced code. ``cores`` may also be an MPO. Only shapes are
    checked, never values.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.linear_map import linear_map
        >>> o = tn.MPO.random((2, 3), (4, 5), 3, seed=0)
        >>> x = np.random.default_rng(1).standard_normal((7, 20))
        >>> y = linear_map(o.cores, x)
        >>> y.shape, bool(np.allclose(y, x @ o.to_matrix().T))
        ((7, 6), True)
    """
    if hasattr(cores, "cores") and hasattr(cores, "matrix_shape"):  # an MPO
        matrix_shape = cores.matrix_shape if matrix_shape is None else matrix_shape
        cores = cores.cores
    cores = list(cores)
    if plan is None:
        plan = _plan_of(cores, matrix_shape)
    rows, cols = plan.matrix_shape
    if x.ndim < 1 or x.shape[-1] != cols:
        raise ValueError(f"x: expected shape (..., {cols}), got {tuple(x.shape)}")
    xp = aac.array_namespace(x, *cores) if xp is None else xp
    flat = xp.reshape(x, (-1, cols))
    contraction = plan.contraction(plan.order(flat.shape[0]) if order == "auto" else order)
    matrices = _merged(xp, cores, contraction)
    if len(matrices) == 1:  # dense: crop W^T instead of padding x
        matrix = matrices[0]
        if tuple(matrix.shape) != (cols, rows):
            matrix = matrix[:cols, :rows]
        y = flat @ matrix
    else:
        y = _sweep(xp, matrices, contraction, flat, plan)
    if bias is not None:
        y = y + (bias if bias.dtype == y.dtype else xp.astype(bias, y.dtype))
    return xp.reshape(y, (*x.shape[:-1], rows))


def _plan_of(cores: list, matrix_shape: Any) -> LinearMapPlan:
    for k, core in enumerate(cores):
        if core.ndim != 4:
            raise ValueError(
                f"cores[{k}]: MPO cores have 4 dimensions (Dl, d_out, d_in, Dr), got shape "
                f"{tuple(core.shape)}"
            )
    return plan_linear_map(
        [c.shape[1] for c in cores],
        [c.shape[2] for c in cores],
        [c.shape[3] for c in cores[:-1]],
        matrix_shape=matrix_shape,
    )


def _merged(xp: Any, cores: list, contraction: Contraction) -> list:
    """Each run of cores merged into one matrix ``(Dl·in_run, out_run·Dr)``."""
    matrices, start = [], 0
    for size, split in zip(contraction.groups, contraction.splits, strict=True):
        matrices.append(_merge(xp, cores[start : start + size], split))
        start += size
    return matrices


def _merge(xp: Any, cores: list, split: int) -> Any:
    """Contract a run of cores (halves meeting at inner bond ``split``) into the matrix
    ``(Dl·i_1..i_m, o_1..o_m·Dr)`` that the sweep multiplies by."""
    m = len(cores)
    left_bond, right_bond = cores[0].shape[0], cores[-1].shape[3]
    if m == 1:
        left, out, inp, right = cores[0].shape
        return xp.reshape(xp.permute_dims(cores[0], (0, 2, 1, 3)), (left * inp, out * right))
    head = xp.reshape(cores[0], (-1, cores[0].shape[3]))
    for core in cores[1:split]:
        head = xp.reshape(head @ xp.reshape(core, (core.shape[0], -1)), (-1, core.shape[3]))
    tail = xp.reshape(cores[-1], (cores[-1].shape[0], -1))
    for core in cores[split:-1][::-1]:
        tail = xp.reshape(xp.reshape(core, (-1, core.shape[3])) @ tail, (core.shape[0], -1))
    legs, outs, ins = [left_bond], 1, 1
    for core in cores:
        legs += [core.shape[1], core.shape[2]]
        outs, ins = outs * core.shape[1], ins * core.shape[2]
    legs.append(right_bond)
    # (Dl, o_1, i_1, ..., o_m, i_m, Dr) -> (Dl, i_1..i_m, o_1..o_m, Dr)
    order = [0] + [2 + 2 * k for k in range(m)] + [1 + 2 * k for k in range(m)] + [2 * m + 1]
    merged = xp.permute_dims(xp.reshape(head @ tail, tuple(legs)), tuple(order))
    return xp.reshape(merged, (left_bond * ins, outs * right_bond))


def _sweep(xp: Any, matrices: list, contraction: Contraction, flat: Any, plan) -> Any:
    """Merged cores one by one through the input: reshapes, 2-D transposes and matmuls.

    Before core k the state is ``(j_{k+1}..j_N, batch, i_1..i_{k-1}, D_{k-1}, j_k)`` in C
    order (j: input legs, i: output legs), so core k is one matmul over its trailing pair;
    then the next input leg rotates from the front to the back. The last state is
    ``(batch, i_1..i_N)``.
    """
    rows, cols = plan.matrix_shape
    outs, ins = contraction.group_out, contraction.group_in
    padded_cols, batch = math.prod(ins), flat.shape[0]
    if padded_cols > cols:
        # zeros_like keeps the device without asking for it (a lookup traced code avoids)
        zeros = xp.broadcast_to(xp.zeros_like(flat[:, :1]), (batch, padded_cols - cols))
        flat = xp.concat([flat, zeros], axis=1)
    state = xp.reshape(flat, (batch, ins[0], padded_cols // ins[0]))
    state = xp.permute_dims(state, (2, 0, 1))
    # Sizes are spelled out (no -1): an empty batch must reshape too.
    for k, matrix in enumerate(matrices):
        pending, done = math.prod(ins[k + 1 :]), math.prod(outs[:k])
        state = xp.reshape(state, (pending * batch * done, matrix.shape[0])) @ matrix
        if k + 1 < len(matrices):
            rest = (pending // ins[k + 1]) * batch * done * matrix.shape[1]
            state = xp.matrix_transpose(xp.reshape(state, (ins[k + 1], rest)))
    y = xp.reshape(state, (batch, math.prod(outs)))
    return y[:, :rows] if y.shape[1] > rows else y


def dense_matrix(
    cores: Any,
    matrix_shape: Any = None,
    *,
    plan: LinearMapPlan | None = None,
    xp: Any = None,
) -> Any:
    """The matrix ``W (out, in)`` of MPO cores, cropped to ``matrix_shape`` if given.

    The same matrix as ``MPO.to_matrix()`` (here a transposed view), built in the plan's
    cheapest order and written so that ``torch.compile`` traces it in one graph (pass
    ``plan`` there: planning itself is not traced).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> o = tn.MPO.random((2, 3), (4, 5), 3, seed=0)
        >>> bool(np.allclose(dense_matrix(o.cores), o.to_matrix()))
        True
    """
    cores = list(cores)
    xp = aac.array_namespace(*cores) if xp is None else xp
    plan = _plan_of(cores, matrix_shape) if plan is None else plan
    (matrix,) = _merged(xp, cores, plan.contraction("dense"))
    rows, cols = plan.matrix_shape
    if tuple(matrix.shape) != (cols, rows):
        matrix = matrix[:cols, :rows]
    return xp.matrix_transpose(matrix)


# ---------------------------------------------------------------------- initialisation


def rescale_cores(cores: Any, norm: float, *, matrix_shape: Any = None) -> tuple:
    """Cores canonicalised about the middle site, rescaled so ``‖W‖_F == norm`` exactly.

    With ``matrix_shape`` smaller than the dims' product the norm is that of the cropped
    (unpadded) matrix, which is densified to measure it; otherwise the canonical centre
    core carries the norm and nothing is densified. Used for variance-exact initialisation.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> o = tn.MPO.random((2, 2, 2), (3, 3, 3), 4, seed=0)
        >>> cores = rescale_cores(o.cores, 2.0)
        >>> round(float(np.linalg.norm(dense_matrix(cores))), 12)
        2.0
    """
    cores = list(cores)
    xp = aac.array_namespace(*cores)
    centre = len(cores) // 2
    fused = tuple(xp.reshape(c, (c.shape[0], -1, c.shape[-1])) for c in cores)
    canonical = move_centre(fused, None, centre)
    # A thin QR shrinks a bond that exceeds what its neighbours can carry (bond_dims
    # (1, 16, ..) on sites of size 4); zero rows/columns restore the shape, W is unchanged.
    cores = [
        _zero_pad(xp, xp.reshape(c, (c.shape[0], o.shape[1], o.shape[2], c.shape[-1])), o.shape)
        for c, o in zip(canonical, cores, strict=True)
    ]
    full = (math.prod(c.shape[1] for c in cores), math.prod(c.shape[2] for c in cores))
    if matrix_shape is None or tuple(matrix_shape) == full:
        current = backend.frob_sq(cores[centre]) ** 0.5
    else:
        current = backend.frob_sq(dense_matrix(cores, matrix_shape)) ** 0.5
    if backend.has_values(current) and current == 0:  # traced (jit/eval_shape init): no value
        raise ValueError("cores: the matrix is zero, it cannot be rescaled to a norm")
    cores[centre] = cores[centre] * (float(norm) / current)
    return tuple(cores)


def _zero_pad(xp: Any, core: Any, shape: Any) -> Any:
    for axis in (0, 3):
        missing = shape[axis] - core.shape[axis]
        if missing > 0:
            pad_shape = list(core.shape)
            pad_shape[axis] = missing
            zeros = xp.zeros(tuple(pad_shape), dtype=core.dtype, device=backend.device(core))
            core = xp.concat([core, zeros], axis=axis)
    return core
