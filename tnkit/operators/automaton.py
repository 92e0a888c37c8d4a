"""The finite-state automaton of an operator sum: channels per bond by Ren et al.'s
bipartite-graph sweep, with minimum vertex covers from Hopcroft–Karp matchings.

Plain Python on operator strings ``((site, matrix id), ...)``; no matrices, no MPO here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = ["Plan", "automaton", "min_vertex_cover"]


class Plan(NamedTuple):
    """What the automaton puts where: per site, ``(in channel, matrix id, out channel,
    weight)`` entries; ``bond_dims[k]`` channels cross the cut after site k."""

    entries: tuple[tuple[tuple[int, int, int, complex | float], ...], ...]
    bond_dims: tuple[int, ...]


def automaton(strings: dict[tuple[tuple[int, int], ...], Any], L: int) -> Plan:
    """Channels of the MPO of ``Σ coef · string`` by Ren et al.'s bipartite-graph sweep.

    At the cut after site k every remaining term is (channel c of the previous cut, matrix m
    on site k, rest of the string): the distinct (c, m) pairs and the distinct rests are the
    two sides of a bipartite graph whose edges carry the coefficients. A minimum vertex
    cover (König, from a Hopcroft–Karp matching) gives the new channels: a covered left
    vertex becomes a channel of weight 1 and its edges keep their coefficients as terms of
    the next cut; a covered right vertex becomes the complementary operator Σ coef·(c, m)
    over its not yet covered edges, one term of coefficient 1. The next cut's left vertices
    are built from these channels, which is what keeps consecutive cuts consistent.

    Example:
        >>> from tnkit.operators import automaton
        >>> strings = {((0, 1), (1, 1)): 1.0, ((1, 1), (2, 1)): 1.0}   # Z0 Z1 + Z1 Z2
        >>> automaton(strings, 3).bond_dims
        (2, 2)
    """
    if not strings:  # the zero operator
        return Plan(((),) * L, (1,) * (L - 1))
    rows = [(0, string, coef) for string, coef in strings.items()]
    entries, bond_dims = [], []
    for k in range(L - 1):
        rows, site_entries, n_channels = _cut(rows, k)
        entries.append(tuple(site_entries))
        bond_dims.append(n_channels)
    last = tuple((c, string[0][1] if string else 0, 0, coef) for c, string, coef in rows)
    return Plan((*entries, last), tuple(bond_dims))


def _cut(rows: list, k: int) -> tuple[list, list, int]:
    """One cut of the sweep: (the next cut's rows, this site's entries, number of channels)."""
    lefts: dict[tuple[int, int], int] = {}
    rights: dict[tuple, int] = {}
    weights: dict[tuple[int, int], Any] = {}
    for channel, string, coef in rows:
        here = bool(string) and string[0][0] == k
        left = (channel, string[0][1] if here else 0)
        rest = string[1:] if here else string
        edge = (lefts.setdefault(left, len(lefts)), rights.setdefault(rest, len(rights)))
        weights[edge] = weights.get(edge, 0.0) + coef
    left_keys, right_keys = list(lefts), list(rights)
    adjacency: list[list[int]] = [[] for _ in left_keys]
    for u, v in weights:
        adjacency[u].append(v)
    cover_left, cover_right = min_vertex_cover(adjacency, len(right_keys))
    next_rows, entries = [], []
    for channel, u in enumerate(cover_left):
        entries.append((*left_keys[u], channel, 1.0))
        next_rows.extend((channel, right_keys[v], weights[u, v]) for v in adjacency[u])
    uncovered: dict[int, list[int]] = {v: [] for v in cover_right}
    covered = set(cover_left)
    for u, v in weights:
        if u not in covered:
            uncovered[v].append(u)
    for channel, v in enumerate(cover_right, start=len(cover_left)):
        entries.extend((*left_keys[u], channel, weights[u, v]) for u in uncovered[v])
        next_rows.append((channel, right_keys[v], 1.0))
    return next_rows, entries, len(cover_left) + len(cover_right)


def min_vertex_cover(adjacency: Sequence[Sequence[int]], n_right: int) -> tuple[list, list]:
    """A minimum vertex cover (left vertices, right vertices) of a bipartite graph.

    König's theorem on a Hopcroft–Karp maximum matching: with Z the vertices reachable from
    unmatched left vertices by alternating paths, the cover is (left − Z) ∪ (right ∩ Z).

    Example:
        >>> from tnkit.operators import min_vertex_cover
        >>> min_vertex_cover([[0, 1, 2], [0], [0]], 3)   # a star and a shared neighbour
        ([0], [0])
    """
    match_left, match_right = _max_matching(adjacency, n_right)
    seen_left = [m < 0 for m in match_left]
    seen_right = [False] * n_right
    stack = [u for u, m in enumerate(match_left) if m < 0]
    while stack:
        u = stack.pop()
        for v in adjacency[u]:
            if not seen_right[v]:
                seen_right[v] = True
                w = match_right[v]
                if w >= 0 and not seen_left[w]:
                    seen_left[w] = True
                    stack.append(w)
    left = [u for u, seen in enumerate(seen_left) if not seen]
    return left, [v for v, seen in enumerate(seen_right) if seen]


def _max_matching(adjacency: Sequence[Sequence[int]], n_right: int) -> tuple[list, list]:
    """Hopcroft–Karp: BFS layers from the free left vertices, then layered augmenting paths
    found by an iterative DFS (no recursion limit on long chains)."""
    n_left = len(adjacency)
    match_left, match_right = [-1] * n_left, [-1] * n_right
    while True:
        layer = [-1] * n_left
        queue = [u for u in range(n_left) if match_left[u] < 0]
        for u in queue:
            layer[u] = 0
        found = False
        for u in queue:  # the queue grows while it is read
            for v in adjacency[u]:
                w = match_right[v]
                if w < 0:
                    found = True
                elif layer[w] < 0:
                    layer[w] = layer[u] + 1
                    queue.append(w)
        if not found or not _augment_all(adjacency, layer, match_left, match_right):
            return match_left, match_right


def _augment_all(adjacency, layer: list, match_left: list, match_right: list) -> bool:
    """Augment along vertex-disjoint shortest paths of one phase; True if any was found."""
    position = [0] * len(adjacency)
    augmented = False
    for root in range(len(adjacency)):
        if match_left[root] >= 0:
            continue
        path = [root]
        while path:
            u = path[-1]
            if position[u] == len(adjacency[u]):
                layer[u] = -1  # a dead end for the rest of the phase
                path.pop()
                continue
            v = adjacency[u][position[u]]
            position[u] += 1
            w = match_right[v]
            if w < 0:
                for x in path:  # each left vertex on the path takes the edge it last tried
                    y = adjacency[x][position[x] - 1]
                    match_left[x], match_right[y] = y, x
                augmented = True
                break
            if layer[w] == layer[u] + 1:
                path.append(w)
    return augmented
