"""Layer maps beyond ``x @ W.T``: embedding lookups, LSTM cells, ADTN weights, Taylor terms.

Pure functions on cores and any array-API library, shared by the torch and JAX adapters;
no parameters, no random draws, no value checks (they run inside training steps and traces).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat as aac

from . import _backend as backend
from ._checks import check_dims, check_int
from ._factorize import factorize_dims
from .linear_map import LinearMapPlan, dense_matrix, linear_map

__all__ = [
    "LSTMLayout",
    "adtn_bits",
    "adtn_initial",
    "adtn_matrix",
    "adtn_num_parameters",
    "brickwall_pairs",
    "cheapest_order",
    "contract_adtn",
    "embedding_lookup",
    "embedding_table",
    "gather_flops",
    "gather_rows",
    "leg_order",
    "lookup_order",
    "lstm_layout",
    "lstm_recurrence",
    "recurrent_map",
    "recurrent_order",
    "sigmoid",
    "taylor_bond_dims",
    "taylor_core_shapes",
    "taylor_init_stds",
    "taylor_map",
    "taylor_num_parameters",
    "taylor_term",
]

# ---------------------------------------------------------------------- contraction orders


def cheapest_order(plan: LinearMapPlan, batch: int, *, steps: int = 1, weight: int = 1) -> str:
    """The cheapest order of ``steps`` products of ``batch`` rows with one MPO: ``"dense"``
    (build ``W`` once, ``merge + steps·batch·per_row`` flops) or another order of the plan,
    whose merges are redone every step and whose flops count ``weight`` times (a measured
    penalty, e.g. a convolution's im2col). A loop of int comparisons: traced code sees a
    static branch.

    Example:
        >>> from tnkit.linear_map import plan_linear_map
        >>> plan = plan_linear_map((8, 8, 8, 8), (8, 8, 8, 8), (8, 8, 8))
        >>> cheapest_order(plan, 64), cheapest_order(plan, 64, weight=100)
        ('2+2', 'dense')
    """
    dense = plan.contraction("dense")
    best, best_flops = "dense", dense.merge_flops + steps * batch * dense.flops_per_row
    for contraction in plan.contractions.values():
        flops = weight * steps * contraction.flops(batch)
        if contraction.name != "dense" and flops < best_flops:
            best, best_flops = contraction.name, flops
    return best


def recurrent_order(plan: LinearMapPlan, steps: int, batch: int) -> str:
    """Cheapest order of ``h @ W.T`` over ``steps`` steps of ``batch`` rows: building ``W``
    once (``"dense"``), or any other order, whose merges are redone every step.

    Example:
        >>> from tnkit.linear_map import plan_linear_map
        >>> plan = plan_linear_map((32, 2, 2, 8), (8, 2, 2, 8), (16, 16, 16))
        >>> recurrent_order(plan, 1, 1), recurrent_order(plan, 100, 64)
        ('2+2', 'dense')
    """
    return cheapest_order(plan, batch, steps=steps)


# ---------------------------------------------------------------------- embedding lookup


def gather_flops(in_dims: Any, bond_dims: Any) -> int:
    """Flops of one row of an MPO table looked up core by core (2·multiply-adds).

    Example:
        >>> gather_flops((4, 4, 4, 4), (8, 8, 8))
        14400
    """
    edges, opened, flops = (1, *bond_dims, 1), 1, 0
    for k, dim in enumerate(in_dims):
        flops += 2 * opened * edges[k] * dim * edges[k + 1]
        opened *= dim
    return flops


def lookup_order(plan: LinearMapPlan, batch: int) -> str:
    """``"gather"`` (rows core by core) or ``"dense"`` (build the table) for ``batch``
    indices: the one with fewer flops.

    Example:
        >>> from tnkit.linear_map import plan_linear_map
        >>> plan = plan_linear_map((10, 10, 10, 10), (4, 4, 4, 4), (8, 8, 8))
        >>> lookup_order(plan, 3), lookup_order(plan, 10**6)
        ('gather', 'dense')
    """
    build = plan.contraction("dense").merge_flops
    return "gather" if batch * gather_flops(plan.in_dims, plan.bond_dims) < build else "dense"


def gather_rows(cores: Any, indices: Any, cols: int, *, xp: Any = None) -> Any:
    """Rows ``W[indices]`` ``(n, cols)`` of the MPO ``W``, ``indices (n,)`` integers: each
    index split into its multi-index over the output dims (C order), each core's slice at
    its digit taken and the slices contracted left to right (one batched matmul per core).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> o = tn.MPO.random((2, 5), (3, 4), 3, seed=0)
        >>> rows = gather_rows(o.cores, np.array([7, 0]), 12)
        >>> bool(np.allclose(rows, o.to_matrix()[[7, 0]]))
        True
    """
    cores = list(cores)
    xp = aac.array_namespace(indices, *cores) if xp is None else xp
    digits, rest = [], indices
    for core in cores[::-1]:
        digits.append(rest % core.shape[1])
        rest = rest // core.shape[1]
    n, opened, state = indices.shape[0], 1, None
    for core, digit in zip(cores, digits[::-1], strict=True):
        left, _, dim, right = core.shape
        picked = xp.take(xp.permute_dims(core, (1, 0, 2, 3)), digit, axis=0)  # (n, Dl, dim, Dr)
        if state is None:  # Dl == 1
            state = xp.reshape(picked, (n, dim, right))
        else:
            state = state @ xp.reshape(picked, (n, left, dim * right))
            state = xp.reshape(state, (n, opened * dim, right))
        opened *= dim
    rows = xp.reshape(state, (n, opened))
    return rows[:, :cols] if opened > cols else rows


def embedding_lookup(
    cores: Any,
    indices: Any,
    *,
    plan: LinearMapPlan,
    padding_idx: int | None = None,
    order: str = "auto",
    xp: Any = None,
) -> Any:
    """``W[indices]`` ``(n, cols)`` for an MPO table ``W (rows, cols)`` (the plan's matrix
    shape) and ``indices (n,)``: gathered core by core or taken from the built table,
    ``order`` ``"gather"``, ``"dense"`` or ``"auto"`` (``lookup_order``). Rows of
    ``padding_idx`` are zeros and pass no gradient to the cores.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.linear_map import plan_linear_map
        >>> o = tn.MPO.random((2, 5), (3, 4), 3, seed=0)
        >>> plan = plan_linear_map(o.out_dims, o.in_dims, o.bond_dims)
        >>> rows = embedding_lookup(o.cores, np.array([7, 1]), plan=plan, padding_idx=1)
        >>> bool(np.allclose(rows[0], o.to_matrix()[7])), bool(np.all(rows[1] == 0))
        (True, True)
    """
    cores = list(cores)
    xp = aac.array_namespace(indices, *cores) if xp is None else xp
    if order == "auto":
        order = lookup_order(plan, indices.shape[0])
    if order == "dense":
        rows = xp.take(dense_matrix(cores, plan=plan, xp=xp), indices, axis=0)
    else:
        rows = gather_rows(cores, indices, plan.matrix_shape[1], xp=xp)
    if padding_idx is None:
        return rows
    return xp.where((indices == padding_idx)[:, None], xp.zeros_like(rows[:1]), rows)


def embedding_table(
    cores: Any, *, plan: LinearMapPlan, padding_idx: int | None = None, xp: Any = None
) -> Any:
    """The table ``W (rows, cols)`` as ``embedding_lookup`` sees it: the ``padding_idx``
    row zero (multiplied by 0, so no gradient reaches the cores through it).

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.linear_map import plan_linear_map
        >>> o = tn.MPO.random((2, 5), (3, 4), 3, seed=0)
        >>> plan = plan_linear_map(o.out_dims, o.in_dims, o.bond_dims)
        >>> table = embedding_table(o.cores, plan=plan, padding_idx=2)
        >>> bool(np.all(table[2] == 0)), bool(np.allclose(table[3], o.to_matrix()[3]))
        (True, True)
    """
    cores = list(cores)
    xp = aac.array_namespace(*cores) if xp is None else xp
    table = dense_matrix(cores, plan=plan, xp=xp)
    if padding_idx is None:
        return table
    keep = xp.arange(table.shape[0], device=backend.device(table)) != padding_idx
    return table * xp.astype(keep, table.dtype)[:, None]


# ---------------------------------------------------------------------- LSTM


@dataclass(frozen=True)
class LSTMLayout:
    """The MPO dims of an LSTM's weights (MPO-LSTM): the four gates share one MPO per weight
    matrix, the factor 4 folded into the most significant output mode.

    Attributes:
        n_cores: cores per weight.
        hidden_dims: the factors of ``hidden_size`` (input dims of every ``W_hh``).
        gate_dims: ``(4·h_1, h_2..h_N)``, the output dims of every weight ``(4·hidden, ·)``.
        inputs: per layer, ``(cols, in_dims)`` of ``W_ih``: ``input_size`` and the dims given
            (None: the default layout) in layer 0, ``directions·hidden`` and
            ``(directions·h_1, h_2..h_N)`` above it.
    """

    n_cores: int
    hidden_dims: tuple[int, ...]
    gate_dims: tuple[int, ...]
    inputs: tuple[tuple[int, tuple[int, ...] | None], ...]


def lstm_layout(
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    directions: int = 1,
    n_cores: int | None = None,
    input_dims: Any = None,
    hidden_dims: Any = None,
) -> LSTMLayout:
    """The [LSTMLayout][tnkit.layer_maps.LSTMLayout] of an LSTM's MPO weights: ``hidden_dims``
    default to ``factorize_dims(hidden_size, n_cores, pad=True)``; ``n_cores`` to the
    length of the dims given, else 4.

    Example:
        >>> layout = lstm_layout(64, 256, num_layers=2, hidden_dims=(8, 2, 2, 8))
        >>> layout.gate_dims, layout.inputs
        ((32, 2, 2, 8), ((64, None), (256, (8, 2, 2, 8))))
    """
    given = {
        name: check_dims(dims, name)
        for name, dims in (("input_dims", input_dims), ("hidden_dims", hidden_dims))
        if dims is not None
    }
    if n_cores is None:
        n_cores = len(next(iter(given.values()))) if given else 4
    n_cores = check_int(n_cores, "n_cores", minimum=1)
    hidden = given.get("hidden_dims") or factorize_dims(hidden_size, n_cores, pad=True)
    above = (directions * hidden_size, (directions * hidden[0], *hidden[1:]))
    inputs = ((input_size, given.get("input_dims")),) + (above,) * (num_layers - 1)
    return LSTMLayout(n_cores, hidden, (4 * hidden[0], *hidden[1:]), inputs)


def sigmoid(x: Any, *, xp: Any = None) -> Any:
    """The logistic function ``1/(1 + e^(−x))``, from ``e^(−|x|)``: no overflow, full
    relative accuracy in both tails.

    Example:
        >>> import numpy as np
        >>> sigmoid(np.array([-800.0, 0.0, 800.0])).tolist()
        [0.0, 0.5, 1.0]
    """
    xp = aac.array_namespace(x) if xp is None else xp
    small = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + small), small / (1 + small))


def lstm_recurrence(
    gates_x: Any,
    recurrent: Callable[[Any], Any],
    h: Any,
    c: Any,
    *,
    reverse: bool = False,
    activation: Callable[[Any], Any] | None = None,
    xp: Any = None,
) -> tuple[Any, Any, Any]:
    """One LSTM layer in one direction: ``(outputs (T, N, H), h_T, c_T)``.

    ``gates_x (T, N, 4H)`` are the input projections (biases included), ``recurrent(h)``
    the projection ``(N, 4H)`` of the hidden state, gates in ``nn.LSTM``'s order i, f, g,
    o: ``c ← σ(f)·c + σ(i)·tanh(g)``, ``h ← σ(o)·tanh(c)``. ``activation`` is σ (default
    [sigmoid][tnkit.layer_maps.sigmoid]; the torch adapter passes ``torch.sigmoid``);
    ``reverse`` runs from the last step to the first.

    Example:
        >>> import numpy as np
        >>> gates = np.zeros((3, 2, 8))
        >>> out, h, c = lstm_recurrence(gates, lambda h: np.zeros((2, 8)), np.zeros((2, 2)),
        ...                             np.ones((2, 2)))
        >>> out.shape, c.tolist()
        ((3, 2, 2), [[0.125, 0.125], [0.125, 0.125]])
    """
    xp = aac.array_namespace(gates_x) if xp is None else xp
    activation = functools.partial(sigmoid, xp=xp) if activation is None else activation
    steps, hidden = gates_x.shape[0], gates_x.shape[-1] // 4
    out = [None] * steps
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        gates = gates_x[t] + recurrent(h)
        i, f, g, o = (gates[..., k * hidden : (k + 1) * hidden] for k in range(4))
        c = activation(f) * c + activation(i) * xp.tanh(g)
        h = activation(o) * xp.tanh(c)
        out[t] = h
    return xp.stack(out), h, c


def recurrent_map(
    cores: Any, steps: int, batch: int, *, plan: LinearMapPlan, xp: Any = None
) -> Callable[[Any], Any]:
    """``h -> h @ W.T`` in the cheapest order for ``steps`` steps of ``batch`` rows
    (``recurrent_order``): ``W`` built once, or the MPO contracted every step.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> from tnkit.linear_map import plan_linear_map
        >>> o = tn.MPO.random((2, 3), (2, 3), 2, seed=0)
        >>> plan = plan_linear_map(o.out_dims, o.in_dims, o.bond_dims)
        >>> h = np.ones((4, 6))
        >>> bool(np.allclose(recurrent_map(o.cores, 5, 4, plan=plan)(h), h @ o.to_matrix().T))
        True
    """
    cores = list(cores)
    xp = aac.array_namespace(*cores) if xp is None else xp
    order = recurrent_order(plan, steps, batch)
    if order == "dense":
        transposed = xp.matrix_transpose(dense_matrix(cores, plan=plan, xp=xp))
        return lambda h: h @ transposed
    return functools.partial(linear_map, cores, order=order, plan=plan, xp=xp)


# ---------------------------------------------------------------------- ADTN


def adtn_num_parameters(n_legs: int, depth: int) -> int:
    """Entries of an ADTN on ``n_legs`` binary legs at ``depth`` brick-wall layers:
    ``2·Q`` (the product state) ``+ 16·M·(Q − 1)`` (``Q − 1`` gates of 4×4 per layer).

    Example:
        >>> adtn_num_parameters(16, 2)
        512
    """
    return 2 * n_legs + 16 * depth * max(n_legs - 1, 0)


def adtn_bits(matrix_shape: tuple[int, int]) -> tuple[int, int]:
    """``(a, b)``: the binary legs of the rows and columns of ``W (rows, cols)`` zero-padded
    to ``(2^a, 2^b)``.

    Example:
        >>> adtn_bits((10, 256))
        (4, 8)
    """
    rows, cols = matrix_shape
    return math.ceil(math.log2(rows)), math.ceil(math.log2(cols))


def brickwall_pairs(n_legs: int, depth: int) -> list[int]:
    """The left leg of each gate, in the order they act: per layer the even pairs
    ``(0,1), (2,3), …`` and then the odd pairs ``(1,2), (3,4), …``.

    Example:
        >>> brickwall_pairs(5, 1)
        [0, 2, 1, 3]
    """
    layer = [*range(0, n_legs - 1, 2), *range(1, n_legs - 1, 2)]
    return layer * depth


def leg_order(row_bits: int, col_bits: int) -> list[tuple[str, int]]:
    """The binary legs of a ``(2^row_bits, 2^col_bits)`` matrix along the chain, as
    ``("row"|"col", bit)`` with bit 0 the most significant: rows and columns interleaved
    by significance, so that a shallow network still couples them (a chain with all row
    legs before all column legs caps the rank of ``W`` at ``2^depth``).

    Example:
        >>> leg_order(1, 2)
        [('col', 0), ('row', 0), ('col', 1)]
    """
    rows = [((k + 0.5) / row_bits, 0, ("row", k)) for k in range(row_bits)]
    cols = [((k + 0.5) / col_bits, 1, ("col", k)) for k in range(col_bits)]
    return [leg for _, _, leg in sorted(rows + cols)]


def contract_adtn(states: Any, gates: Any, pairs: list[int], *, xp: Any = None) -> Any:
    """The vector ``(2^Q,)`` of ``gates[g]`` (``(4, 4)``, acting on legs ``pairs[g]`` and
    ``pairs[g] + 1``) applied in order to the product of ``states`` (``(Q, 2)``); leg 0 is
    the most significant.

    Example:
        >>> import numpy as np
        >>> states = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> contract_adtn(states, np.eye(4)[None, ::-1], [0]).tolist()
        [0.0, 0.0, 1.0, 0.0]
    """
    xp = aac.array_namespace(states, gates) if xp is None else xp
    n_legs = states.shape[0]
    psi = states[0]
    for leg in range(1, n_legs):
        psi = xp.reshape(psi[:, None] * states[leg][None, :], (-1,))
    for g, left in enumerate(pairs):
        # legs (before, pair, after) -> (pair, before·after): one (4, 4) @ (4, ·) product
        outer, inner = 2**left, 2 ** (n_legs - left - 2)
        block = xp.permute_dims(xp.reshape(psi, (outer, 4, inner)), (1, 0, 2))
        block = gates[g] @ xp.reshape(block, (4, outer * inner))
        psi = xp.reshape(xp.permute_dims(xp.reshape(block, (4, outer, inner)), (1, 0, 2)), (-1,))
    return psi


@functools.lru_cache(maxsize=256)
def _matrix_axes(row_bits: int, col_bits: int) -> tuple[int, ...]:
    """The chain positions of the row bits, then the column bits (``leg_order``'s inverse)."""
    order = leg_order(row_bits, col_bits)
    rows = [order.index(("row", k)) for k in range(row_bits)]
    return (*rows, *(order.index(("col", k)) for k in range(col_bits)))


def adtn_matrix(
    states: Any, gates: Any, pairs: list[int], matrix_shape: tuple[int, int], *, xp: Any = None
) -> Any:
    """The weight ``W (rows, cols)`` an ADTN generates: ``contract_adtn``'s vector on the
    legs of ``leg_order``, permuted to ``(row bits, column bits)`` and cropped.

    Example:
        >>> import numpy as np
        >>> states, gates = np.ones((3, 2)), np.tile(np.eye(4), (2, 1, 1))
        >>> adtn_matrix(states, gates, brickwall_pairs(3, 1), (2, 3)).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    xp = aac.array_namespace(states, gates) if xp is None else xp
    row_bits, col_bits = adtn_bits(matrix_shape)
    psi = xp.reshape(contract_adtn(states, gates, pairs, xp=xp), (2,) * (row_bits + col_bits))
    padded = xp.permute_dims(psi, _matrix_axes(row_bits, col_bits))
    padded = xp.reshape(padded, (2**row_bits, 2**col_bits))
    return padded[: matrix_shape[0], : matrix_shape[1]]


def adtn_initial(
    states: Any,
    gates: Any,
    pairs: list[int],
    matrix_shape: tuple[int, int],
    norm: float,
    *,
    xp: Any = None,
) -> tuple[Any, Any]:
    """Initial ADTN tensors from Gaussian draws: unit product vectors, orthogonal gates
    (QR, signs fixed by ``R``'s diagonal), all scaled by one common factor so that
    ``‖W‖_F == norm``; the weight is multilinear in the ``Q`` vectors and the gates, so it
    scales by ``factor ** (Q + gates)``, and one factor keeps the tensors balanced.

    Example:
        >>> import numpy as np
        >>> rng, pairs = np.random.default_rng(0), brickwall_pairs(4, 2)
        >>> states, gates = adtn_initial(rng.standard_normal((4, 2)),
        ...                              rng.standard_normal((6, 4, 4)), pairs, (4, 3), 2.0)
        >>> round(float(np.linalg.norm(adtn_matrix(states, gates, pairs, (4, 3)))), 12)
        2.0
    """
    xp = aac.array_namespace(states, gates) if xp is None else xp
    states = states / xp.linalg.vector_norm(states, axis=1, keepdims=True)
    q, r = xp.linalg.qr(gates)
    gates = q * xp.sign(xp.linalg.diagonal(r))[..., None, :]
    current = xp.linalg.vector_norm(adtn_matrix(states, gates, pairs, matrix_shape, xp=xp))
    factor = (float(norm) / float(current)) ** (1 / (states.shape[0] + gates.shape[0]))
    return states * factor, gates * factor


# ---------------------------------------------------------------------- Taylor terms


def taylor_bond_dims(in_features: int, out_features: int, order: int, max_bond: int) -> tuple:
    """Bonds of ``T_order``'s train, ``order − 1`` of them: the cut after ``k`` input legs
    has full rank ``min(in^k, in^(order−k)·out)``, capped at ``max_bond``.

    Example:
        >>> taylor_bond_dims(64, 10, 3, 16)
        (16, 16)
    """
    return tuple(
        min(max_bond, in_features**k, in_features ** (order - k) * out_features)
        for k in range(1, order)
    )


def taylor_core_shapes(
    in_features: int, out_features: int, order: int, max_bond: int
) -> tuple[tuple[tuple[int, int, int], ...], ...]:
    """Per term ``T_1..T_order``, its cores' shapes ``(D_{k−1}, in, D_k)``: ``D_0 = 1``,
    the inner bonds of ``taylor_bond_dims``, ``D_n = out`` (the output leg).

    Example:
        >>> taylor_core_shapes(5, 3, 2, 4)
        (((1, 5, 3),), ((1, 5, 4), (4, 5, 3)))
    """
    shapes = []
    for n in range(1, order + 1):
        edges = (1, *taylor_bond_dims(in_features, out_features, n, max_bond), out_features)
        shapes.append(tuple((edges[k], in_features, edges[k + 1]) for k in range(n)))
    return tuple(shapes)


def taylor_num_parameters(
    in_features: int, out_features: int, order: int, max_bond: int, *, bias: bool = True
) -> int:
    """``out`` (bias, ``T_0``) ``+ Σ_{n=1}^{order} Σ_{k=1}^{n} D_{k−1}·in·D_k`` with
    ``D_0 = 1``, ``D_n = out`` and the inner bonds of ``taylor_bond_dims``.

    Example:
        >>> taylor_num_parameters(64, 10, 2, 4)
        3466
    """
    shapes = taylor_core_shapes(in_features, out_features, order, max_bond)
    return (out_features if bias else 0) + sum(math.prod(s) for term in shapes for s in term)


def taylor_init_stds(
    in_features: int, out_features: int, order: int, max_bond: int
) -> tuple[tuple[float, ...], ...]:
    """Per term, the standard deviation of each core's Gaussian init: ``1/√(in·D_k)`` for an
    inner core, ``1/√(3·order·in)`` for the last, so that for unit-variance inputs each
    order adds ``1/(3·order)`` to the output's variance (``1/3`` in all, ``nn.Linear``'s).

    Example:
        >>> tuple(tuple(round(s, 4) for s in term) for term in taylor_init_stds(12, 3, 2, 4))
        ((0.1179,), (0.1443, 0.1179))
    """
    return tuple(
        tuple(
            1 / math.sqrt(in_features * (3 * order if k == len(term) - 1 else shape[2]))
            for k, shape in enumerate(term)
        )
        for term in taylor_core_shapes(in_features, out_features, order, max_bond)
    )


def taylor_term(cores: Any, x: Any, *, xp: Any = None) -> Any:
    """``T_n(x, …, x)`` of a train of cores ``(D_{k−1}, in, D_k)``: ``x (batch, in) ->
    (batch, D_n)``, contracted from the left (``v ← (v · core)·x`` summed over the input
    leg), ``O(batch·n·in·D²)`` flops; the ``in^n`` tensor is never built.

    Example:
        >>> import numpy as np
        >>> core = np.arange(6.0).reshape(1, 3, 2)
        >>> taylor_term([core], np.ones((1, 3))).tolist()
        [[6.0, 9.0]]
    """
    xp = aac.array_namespace(x, *cores) if xp is None else xp
    batch = x.shape[0]
    message = xp.ones_like(x[:, :1])  # keeps the device without a lookup (traced code)
    for core in cores:
        left, size, right = core.shape
        mixed = xp.reshape(message @ xp.reshape(core, (left, size * right)), (batch, size, right))
        message = xp.reshape(x[:, None, :] @ mixed, (batch, right))
    return message


def taylor_map(
    terms: Any,
    x: Any,
    bias: Any = None,
    *,
    features: tuple[int, int] | None = None,
    xp: Any = None,
) -> Any:
    """``y = bias + Σ_n T_n(x, …, x)`` for ``x (..., in)``: ``terms[n − 1]`` are ``T_n``'s
    cores (see [taylor_term][tnkit.layer_maps.taylor_term]), ``bias (out,)`` may be None.
    ``features``: ``(in, out)``, read from the cores if not given (needed without terms).

    Example:
        >>> import numpy as np
        >>> terms = [[np.eye(3)[None]]]
        >>> taylor_map(terms, np.ones((2, 3)), np.arange(3.0)).tolist()
        [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    """
    terms = [list(cores) for cores in terms]
    arrays = [c for cores in terms for c in cores] + ([] if bias is None else [bias])
    xp = aac.array_namespace(x, *arrays) if xp is None else xp
    size, out = (terms[0][0].shape[1], terms[0][-1].shape[2]) if features is None else features
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"x: expected last dimension {size}, got shape {tuple(x.shape)}")
    flat = xp.reshape(x, (-1, size))
    y = xp.broadcast_to(xp.zeros_like(flat[:, :1]), (flat.shape[0], out))
    for cores in terms:
        y = y + taylor_term(cores, flat, xp=xp)
    if bias is not None:
        y = y + bias
    return xp.reshape(y, (*x.shape[:-1], out))
