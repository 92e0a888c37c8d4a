"""The finite-state automaton of an operator sum: channels per bond by Ren et al.'s
bipartite-graph sweep, with minimum vertex covers from Hopcroft–Karp matchings.

Integer bookkeeping on operator strings ``((site, matrix id), ...)`` in NumPy arrays; no
matrices, no MPO here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, maximum_bipartite_matching

__all__ = ["Plan", "Strings", "automaton", "min_vertex_cover"]


class Strings(NamedTuple):
    """Distinct operator strings and their coefficients, flat: string i is the next
    ``lengths[i]`` pairs ``(sites, mids)`` (increasing sites, matrix ids ≥ 1)."""

    lengths: np.ndarray
    sites: np.ndarray
    mids: np.ndarray
    coefs: np.ndarray

    @classmethod
    def from_dict(cls, strings: dict[tuple[tuple[int, int], ...], Any]) -> Strings:
        """From ``{((site, matrix id), ...): coef}``."""
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        flat = np.fromiter(
            itertools.chain.from_iterable(itertools.chain.from_iterable(strings)),
            dtype=np.int64,
            count=2 * int(lengths.sum()),
        ).reshape(-1, 2)
        coefs = np.array(list(strings.values()) or [0.0])[: len(strings)]
        return cls(lengths, flat[:, 0], flat[:, 1], coefs)

    def as_dict(self) -> dict[tuple[tuple[int, int], ...], Any]:
        """``{((site, matrix id), ...): coef}``."""
        pairs = list(zip(self.sites.tolist(), self.mids.tolist(), strict=True))
        ends = np.cumsum(self.lengths).tolist()
        starts = [0, *ends[:-1]]
        coefs = self.coefs.tolist()
        return {tuple(pairs[a:b]): c for a, b, c in zip(starts, ends, coefs, strict=True)}


class Plan(NamedTuple):
    """What the automaton puts where. ``entries[k]`` holds four equal-length arrays for site
    k: in channel, matrix id, out channel and weight (entries with the same three indices
    add up); ``bond_dims[k]`` channels cross the cut after site k."""

    entries: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]
    bond_dims: tuple[int, ...]


class _Trie(NamedTuple):
    """Every distinct suffix of the strings as a node: its first (site, matrix id) and the
    node of the rest. Node 0 is the empty suffix (site −1, never reached by a cut)."""

    site: np.ndarray
    mid: np.ndarray
    rest: np.ndarray


def automaton(strings: Strings | dict[tuple[tuple[int, int], ...], Any], L: int) -> Plan:
    """Channels of the MPO of ``Σ coef · string`` by Ren et al.'s bipartite-graph sweep.

    At the cut after site k every remaining term is (channel c of the previous cut, matrix m
    on site k, rest of the string): the distinct (c, m) pairs and the distinct rests are the
    two sides of a bipartite graph whose edges carry the coefficients. A minimum vertex
    cover (König, from a Hopcroft–Karp matching) gives the new channels: a covered left
    vertex becomes a channel of weight 1 and its edges keep their coefficients as terms of
    the next cut; a covered right vertex becomes the complementary operator Σ coef·(c, m)
    over its not yet covered edges, one term of coefficient 1. The next cut's left vertices
    are built from these channels, which is what keeps consecutive cuts consistent. Rests
    are nodes of a suffix trie, so a cut is a few sorts of integer arrays.

    Example:
        >>> from tnkit.operators import automaton
        >>> strings = {((0, 1), (1, 1)): 1.0, ((1, 1), (2, 1)): 1.0}   # Z0 Z1 + Z1 Z2
        >>> automaton(strings, 3).bond_dims
        (2, 2)
    """
    if isinstance(strings, dict):
        strings = Strings.from_dict(strings)
    if not strings.coefs.any():  # the zero operator
        return _zero_plan(L)
    trie, roots = _suffix_trie(strings, L)
    channel, suffix, weight = np.zeros(len(roots), dtype=np.int64), roots, strings.coefs
    entries, bond_dims = [], []
    for k in range(L - 1):
        (channel, suffix, weight), site_entries, n_channels = _cut(trie, channel, suffix, weight, k)
        if not n_channels:  # every edge cancelled
            return _zero_plan(L)
        entries.append(site_entries)
        bond_dims.append(n_channels)
    mid = np.where(trie.site[suffix] == L - 1, trie.mid[suffix], 0)
    entries.append((channel, mid, np.zeros_like(channel), weight))
    return Plan(tuple(entries), tuple(bond_dims))


def _zero_plan(L: int) -> Plan:
    empty = np.zeros(0, dtype=np.int64)
    return Plan(((empty, empty, empty, np.zeros(0)),) * L, (1,) * (L - 1))


def _suffix_trie(strings: Strings, L: int) -> tuple[_Trie, np.ndarray]:
    """(the trie of all suffixes, the node of every whole string). A suffix of length n only
    shares a node with suffixes of length n, so level n is one ``np.unique`` of the triples
    (site, matrix id, node of the rest) of the n-th factor from the end."""
    lengths = strings.lengths
    ends = np.cumsum(lengths)
    node = np.zeros(len(lengths), dtype=np.int64)  # the node of each string's suffix so far
    sites, mids, rests = [np.array([-1])], [np.array([0])], [np.array([0])]
    size, n_mids = 1, int(strings.mids.max(initial=0)) + 1
    for n in range(1, int(lengths.max(initial=0)) + 1):
        live = np.flatnonzero(lengths >= n)
        site, mid = strings.sites[ends[live] - n], strings.mids[ends[live] - n]
        if size * L * n_mids < 2**62:  # one int64 key per (site, matrix id, rest) triple
            unique, inverse = _unique((node[live] * L + site) * n_mids + mid)
            rest, code = np.divmod(unique, L * n_mids)
            site, mid = np.divmod(code, n_mids)
        else:
            triples = np.stack([node[live], site, mid], axis=1)
            unique, inverse = np.unique(triples, axis=0, return_inverse=True)
            rest, site, mid = unique.T
        node[live] = size + inverse.reshape(-1)
        sites.append(site)
        mids.append(mid)
        rests.append(rest)
        size += len(rest)
    trie = _Trie(*(np.concatenate(parts) for parts in (sites, mids, rests)))
    return trie, node


def _unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for non-negative int64 keys, by a lookup
    table when their range is small (no sort)."""
    top = int(keys.max(initial=-1)) + 1
    if top > 4 * len(keys) + 1024:
        unique, inverse = np.unique(keys, return_inverse=True)
        return unique, inverse.reshape(-1)
    present = np.zeros(top, dtype=bool)
    present[keys] = True
    unique = np.flatnonzero(present)
    rank = np.cumsum(present) - 1
    return unique, rank[keys]


def _cut(trie: _Trie, channel, suffix, weight, k: int):
    """One cut of the sweep: (the next cut's rows, this site's entries, number of channels)."""
    here = trie.site[suffix] == k
    mid = np.where(here, trie.mid[suffix], 0)
    rest = np.where(here, trie.rest[suffix], suffix)
    n_mids = int(mid.max()) + 1
    # rows are distinct (channel, suffix) pairs, and (channel, matrix, rest) fixes the
    # suffix: every row is one edge, no two rows the same edge
    lefts, u = _unique(channel * n_mids + mid)
    rights, v = _unique(rest)
    summed = weight
    cover_left, cover_right = _cover(u, v, len(lefts), len(rights))
    n_left = int(cover_left.sum())
    out_of_u = np.cumsum(cover_left) - 1
    out_of_v = n_left + np.cumsum(cover_right) - 1
    left_channel, left_mid = np.divmod(lefts, n_mids)
    covered_u = np.flatnonzero(cover_left)
    by_right = ~cover_left[u]  # edges not covered on the left go into their right channel
    site_entries = (
        np.concatenate([left_channel[covered_u], left_channel[u[by_right]]]),
        np.concatenate([left_mid[covered_u], left_mid[u[by_right]]]),
        np.concatenate([out_of_u[covered_u], out_of_v[v[by_right]]]),
        np.concatenate([np.ones(len(covered_u), dtype=summed.dtype), summed[by_right]]),
    )
    covered_v = np.flatnonzero(cover_right)
    by_left = ~by_right
    rows = (
        np.concatenate([out_of_u[u[by_left]], out_of_v[covered_v]]),
        np.concatenate([rights[v[by_left]], rights[covered_v]]),
        np.concatenate([summed[by_left], np.ones(len(covered_v), dtype=summed.dtype)]),
    )
    return rows, site_entries, n_left + len(covered_v)


def _cover(u: np.ndarray, v: np.ndarray, n_left: int, n_right: int):
    """Boolean masks (left, right) of a minimum vertex cover of the edges (u[i], v[i]).

    König's theorem on a maximum matching (SciPy's Hopcroft–Karp): with Z the vertices
    reachable from unmatched left vertices by alternating paths, the cover is
    (left − Z) ∪ (right ∩ Z). Z is one breadth-first search of the directed graph with the
    edges left → right and the matching right → left, from a source feeding the unmatched
    left vertices.
    """
    ones = np.ones(len(u), dtype=np.int8)
    graph = csr_matrix((ones, (u, v)), shape=(n_left, n_right))
    match_left = maximum_bipartite_matching(graph, perm_type="column")
    matched = np.flatnonzero(match_left >= 0)
    free = np.flatnonzero(match_left < 0)
    source = n_left + n_right
    tails = np.concatenate([u, n_left + match_left[matched], np.full(len(free), source)])
    heads = np.concatenate([n_left + v, matched, free])
    size = source + 1
    directed = csr_matrix((np.ones(len(tails), dtype=np.int8), (tails, heads)), (size, size))
    reached = np.zeros(size, dtype=bool)
    reached[breadth_first_order(directed, source, directed=True, return_predecessors=False)] = True
    return ~reached[:n_left], reached[n_left:source]


def min_vertex_cover(adjacency: Sequence[Sequence[int]], n_right: int) -> tuple[list, list]:
    """A minimum vertex cover (left vertices, right vertices) of a bipartite graph.

    König's theorem on a Hopcroft–Karp maximum matching: with Z the vertices reachable from
    unmatched left vertices by alternating paths, the cover is (left − Z) ∪ (right ∩ Z).

    Example:
        >>> from tnkit.operators import min_vertex_cover
        >>> min_vertex_cover([[0, 1, 2], [0], [0]], 3)   # a star and a shared neighbour
        ([0], [0])
    """
    u = np.repeat(np.arange(len(adjacency)), [len(vs) for vs in adjacency])
    v = np.fromiter(itertools.chain.from_iterable(adjacency), dtype=np.int64, count=len(u))
    left, right = _cover(u, v, len(adjacency), n_right)
    return np.flatnonzero(left).tolist(), np.flatnonzero(right).tolist()
