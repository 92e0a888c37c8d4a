"""The local algebra the DMRG and TDVP sweeps run on: dense arrays of any array-API
library, or block-sparse arrays for a Hamiltonian and a state that declare the same
conserved charges. The sweep code is the same for both; only these operations differ.

An engine turns the state and the Hamiltonian into its cores and operators (the state
right-canonical, normalised, centre 0), forms the local effective operators and solves or
exponentiates them, splits and orthonormalises with tnkit's truncation rules, grows
environments, and turns the cores back into an MPS.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _backend as backend
from .._einsum import contract
from ..linalg import orthonormalize, truncated_split
from ..mpo import MPO
from ..mps import MPS
from ..sectors import ChargeResolved, resolve_charges
from . import blocks
from . import environments as env
from .block_expansion import (
    expand_blocks,
    perturbation_left,
    perturbation_right,
    trim_blocks,
)
from .expansion import Expansion, Trim, expand, trim
from .krylov import Eigenpair, KrylovExponential, expm_krylov, lowest_eigenpair

__all__ = ["BlockEngine", "DenseEngine", "choose_engine"]


# A bond whose last two-site cut dropped less than this fraction of the weight gets its next
# split by SVD directly: a Gram split cannot resolve so fine a cut (linalg's
# GRAM_RELATIVE_FLOOR² = 1e-12 and its rounding noise) and would hand over to SVD anyway,
# after paying for the Gram matrix and its eigendecomposition (measured: a TDVP quench at
# bond 64 handed over 1912 of 1933 Gram splits).
FINE_CUT = 1e-10


class DenseEngine:
    """Dense cores and environments in the state's own array library. An instance serves
    one run: it remembers which bonds were last cut finely (``FINE_CUT``)."""

    name = "dense"

    def __init__(self) -> None:
        self._fine_cuts: set[int] = set()

    def start(self, psi: MPS, H: MPO) -> tuple[list, list]:
        """Right-canonical unit cores of ``psi`` (in H's dtype where H is complex) and H's."""
        cores = list(psi.canonicalize(0)._arrays())
        xp = backend.namespace(cores[0])
        dtype = xp.result_type(H.dtype, psi.dtype)  # a complex H makes the state complex
        cores = [c if c.dtype == dtype else xp.astype(c, dtype) for c in cores]
        cores[0] = cores[0] / norm(cores[0])
        return cores, list(H._arrays())

    def edge(self, cores: list) -> Any:
        return env.edge(cores[0])

    def right_environments(self, cores: list, ops: list) -> list:
        return env.right_environments(cores, ops)

    def lower(self, state: MPS) -> list | None:
        """A lower state's cores in this engine's form (None: in another sector)."""
        return list(state._arrays())

    def overlap_edges(self, cores: list) -> tuple:
        xp = backend.namespace(cores[0])
        edge = xp.ones((1, 1), dtype=cores[0].dtype, device=backend.device(cores[0]))
        return edge, edge

    merge = staticmethod(lambda a, b: contract("asb,btc->astc", a, b))
    overlap_left = staticmethod(env.overlap_left)
    overlap_right = staticmethod(env.overlap_right)
    local_image = staticmethod(env.local_image)
    absorb = staticmethod(lambda rest, core: contract("ab,bsc->asc", rest, core))
    absorb_right = staticmethod(lambda core, rest: contract("asb,bc->asc", core, rest))
    two_site_matvec = staticmethod(env.two_site_matvec)
    one_site_matvec = staticmethod(env.one_site_matvec)
    zero_site_matvec = staticmethod(env.zero_site_matvec)
    grow_left = staticmethod(env.grow_left)
    grow_right = staticmethod(env.grow_right)
    frob_sq = staticmethod(backend.frob_sq)

    def lowest(self, matvec: Any, x: Any, **options: Any) -> Eigenpair:
        return lowest_eigenpair(matvec, x, **options)

    @staticmethod
    def move(
        centre: Any, neighbour: Any, near: Any, op: Any, *, grow: bool, **options: Any
    ) -> Expansion:
        """Move the centre on (``expand``), enlarging the bond with ``grow``; ``near`` is
        the environment on the side the centre leaves from."""
        return expand(centre, neighbour, near, op, grow=grow, **options)

    @staticmethod
    def trim(centre: Any, behind: Any, **options: Any) -> Trim:
        """Cut the bond behind the centre back by its singular values (``trim``)."""
        return trim(centre, behind, **options)

    @staticmethod
    def apply(matvec: Any, x: Any) -> Any:
        """``matvec(x)`` once (outside a Krylov solve)."""
        return matvec(x)

    def exp(self, matvec: Any, x: Any, tau: complex, **options: Any) -> KrylovExponential:
        return expm_krylov(matvec, x, tau, **options)

    def split(
        self,
        theta: Any,
        cap: int | None,
        budget: float | None,
        direction: str,
        normalise: bool = True,
        bond: int | None = None,
    ) -> tuple:
        """(left core, right core, discarded weight): the isometry on the side the sweep
        leaves, the rest (normalised with ``normalise``) on the side it goes to. ``bond``
        (the left site of the pair) lets the engine split by SVD directly where the last
        cut there was too fine for a Gram split."""
        dl, d1, d2, dr = theta.shape
        xp = backend.namespace(theta)
        cut = truncated_split(
            xp.reshape(theta, (dl * d1, d2 * dr)),
            max_bond=cap,
            budget=budget,
            isometry="left" if direction == "right" else "right",
            method="exact" if bond in self._fine_cuts else "auto",
        )
        if bond is not None:
            weight = float(np.sum(cut.singular_values**2)) + cut.discarded  # ‖theta‖²
            if cut.discarded < FINE_CUT * weight:
                self._fine_cuts.add(bond)
            else:
                self._fine_cuts.discard(bond)
        left, right = cut.left, cut.right
        if normalise and direction == "right":
            right = right / norm(right)
        elif normalise:
            left = left / norm(left)
        rank = cut.rank
        return xp.reshape(left, (dl, d1, rank)), xp.reshape(right, (rank, d2, dr)), cut.discarded

    def orthonormal_left(self, core: Any) -> tuple[Any, Any]:
        """(isometry, rest) of a core: ``core = isometry·rest``, the isometry's columns
        orthonormal, every column kept (QR)."""
        xp = backend.namespace(core)
        dl, d, dr = core.shape
        basis, rest = orthonormalize(xp.reshape(core, (dl * d, dr)))
        return xp.reshape(basis, (dl, d, basis.shape[1])), rest

    def orthonormal_right(self, core: Any) -> tuple[Any, Any]:
        """(isometry, rest) of a core: ``core = rest·isometry``, the isometry's rows
        orthonormal (LQ)."""
        xp = backend.namespace(core)
        dl, d, dr = core.shape
        basis, rest = orthonormalize(backend.conj_t(xp.reshape(core, (dl, d * dr))))
        isometry = xp.reshape(backend.conj_t(basis), (basis.shape[1], d, dr))
        return isometry, backend.conj_t(rest)

    def overlap(self, x: Any, y: Any) -> float:
        """Re ⟨x, y⟩ of two local tensors."""
        xp = backend.namespace(x)
        x = xp.conj(x) if backend.is_complex(x.dtype) else x
        return float(backend.to_numpy(xp.sum(x * y)).real)

    def tangent_residual(self, image: Any, basis: Any, following: Any) -> float:
        """‖(1 − P_left) image (1 − P_right)‖², P onto the left isometry ``basis`` and the
        right-canonical core ``following`` (the two-site variance's term of one bond)."""
        xp = backend.namespace(image)
        dl, d1, k = basis.shape
        flat_basis = xp.reshape(basis, (dl * d1, k))
        rows = xp.reshape(following, (following.shape[0], -1))
        y = xp.reshape(image, (dl * d1, -1))
        y = y - flat_basis @ (backend.conj_t(flat_basis) @ y)
        y = y - (y @ backend.conj_t(rows)) @ rows
        return backend.frob_sq(y)

    def dense(self, cores: list) -> list:
        return list(cores)

    def bond(self, core: Any) -> int:
        return int(core.shape[-1])

    def finish(self, cores: list, psi: MPS) -> MPS:
        """The MPS of the cores; it keeps the start's charges (H conserves them where it
        declares the same, so the state stays in the start's sector)."""
        return MPS._trusted(tuple(cores), 0, _charges=psi.charges)


class BlockEngine:
    """Block-sparse cores (symmray) in the sector of the start state: only blocks that
    conserve the charges are stored and multiplied; the Krylov vectors are the blocks laid
    end to end (every block the legs allow, so the Krylov space never loses one)."""

    name = "blocks"

    def __init__(self, H: MPO) -> None:
        self.H = H
        self.sector: tuple | None = None  # the start state's, found by start()

    def start(self, psi: MPS, H: MPO) -> tuple[list, list]:
        charges = H.charges
        dtype = np.result_type(
            backend.to_numpy(H._first_array()).dtype, backend.to_numpy(psi._first_array()).dtype
        )
        resolved, canonical = self._resolved(psi, dtype)
        cores = blocks.state_blocks(resolved, charges)
        if not canonical:
            cores = blocks.right_canonical(cores)
        cores[0] = cores[0] / float(cores[0].norm())
        self.sector = resolved.sector
        return cores, blocks.operator_blocks(H)

    def edge(self, cores: list) -> Any:
        return blocks.edges(self.H.charges[0], self.sector, cores[0].dtype)[0]

    def right_environments(self, cores: list, ops: list) -> list:
        far = blocks.edges(self.H.charges[0], self.sector, cores[0].dtype)[1]
        return env.right_environments(cores, ops, far_edge=far, grow=blocks.grow_right)

    def lower(self, state: MPS) -> list | None:
        resolved, _ = self._resolved(state, None)
        if resolved.sector != self.sector:
            return None
        return blocks.state_blocks(resolved, self.H.charges)

    def _resolved(self, state: MPS, dtype: Any) -> tuple[ChargeResolved, bool]:
        """``state`` in charge-resolved form (host NumPy, in ``dtype`` if given), and
        whether it is right-canonical: a state holding its charge blocks under the
        Hamiltonian's charges is, once canonical by charge (no SVDs); any other is
        resolved by one SVD per charge block and site (left-canonical)."""
        gauged = state.canonicalize(0)  # right-canonical: resolved bonds stay minimal
        arrays = [backend.to_numpy(c) for c in gauged._arrays()]
        if dtype is not None:
            arrays = [c.astype(dtype) for c in arrays]
        bonds = gauged._held_bonds() if gauged.charges == self.H.charges else None
        if bonds is None:
            return resolve_charges(arrays, self.H.charges), False
        sector = tuple(int(x) for x in bonds[-1][0])
        return ChargeResolved(tuple(arrays), tuple(bonds), sector), True

    def overlap_edges(self, cores: list) -> tuple:
        return blocks.overlap_edges(self.H.charges[0], self.sector, cores[0].dtype)

    merge = staticmethod(blocks.merge)
    overlap_left = staticmethod(blocks.overlap_left)
    overlap_right = staticmethod(blocks.overlap_right)
    local_image = staticmethod(blocks.local_image)
    absorb = staticmethod(blocks.absorb)
    absorb_right = staticmethod(blocks.merge)  # (a, s, b)·(b, c): the same contraction
    two_site_matvec = staticmethod(blocks.two_site_matvec)
    one_site_matvec = staticmethod(blocks.one_site_matvec)
    zero_site_matvec = staticmethod(blocks.zero_site_matvec)
    grow_left = staticmethod(blocks.grow_left)
    grow_right = staticmethod(blocks.grow_right)
    overlap = staticmethod(blocks.overlap)
    tangent_residual = staticmethod(blocks.tangent_residual)

    def frob_sq(self, x: Any) -> float:
        return float(x.norm()) ** 2

    @staticmethod
    def move(
        centre: Any, neighbour: Any, near: Any, op: Any, *, grow: bool, **options: Any
    ) -> Expansion:
        """Move the centre on (``expand_blocks``), enlarging the bond by the perturbation
        of the environment ``near`` with ``grow``."""
        perturbation = None
        if grow:
            form = perturbation_right if options["direction"] == "right" else perturbation_left
            perturbation = form(near, centre, op)
        return expand_blocks(centre, neighbour, perturbation=perturbation, **options)

    trim = staticmethod(trim_blocks)

    def lowest(self, matvec: Any, x: Any, orthogonal_to=(), **options: Any) -> Eigenpair:
        on_flat, flat, where = _flat_problem(matvec, x)
        images = [blocks.flat(image, where) for image in orthogonal_to]
        pair = lowest_eigenpair(on_flat, flat, orthogonal_to=images, **options)
        return Eigenpair(pair.value, blocks.unflat(pair.vector, where), pair.matvecs, pair.residual)

    def apply(self, matvec: Any, x: Any) -> Any:
        """``matvec(x)`` once, the cheapest way for its blocks (as in a Krylov solve: with
        many small blocks a compile costs less than one symmray call)."""
        on_flat, flat, where = _flat_problem(matvec, x)
        return blocks.unflat(on_flat(flat), where)

    def exp(self, matvec: Any, x: Any, tau: complex, **options: Any) -> KrylovExponential:
        on_flat, flat, where = _flat_problem(matvec, x)
        found = expm_krylov(on_flat, flat, tau, **options)
        return KrylovExponential(blocks.unflat(found.vector, where), found.matvecs, found.error)

    def split(
        self,
        theta: Any,
        cap: int | None,
        budget: float | None,
        direction: str,
        normalise: bool = True,
        bond: int | None = None,
    ) -> tuple:
        cut = blocks.split(
            theta,
            max_bond=np.iinfo(np.int64).max if cap is None else cap,
            budget=budget,
            isometry="left" if direction == "right" else "right",
        )
        left, right = cut.left, cut.right
        if normalise and direction == "right":
            right = right / float(right.norm())
        elif normalise:
            left = left / float(left.norm())
        return left, right, cut.discarded

    def orthonormal_left(self, core: Any) -> tuple[Any, Any]:
        cut = blocks.split(core, max_bond=0, budget=None, isometry="left", keep_all=True)
        return cut.left, cut.right

    def orthonormal_right(self, core: Any) -> tuple[Any, Any]:
        cut = blocks.split(core, max_bond=0, budget=None, isometry="right", rows=1, keep_all=True)
        return cut.right, cut.left

    def dense(self, cores: list) -> list:
        phys = [q.values for q in self.H.charges]
        return [blocks.dense_core(c, [phys[k]]) for k, c in enumerate(cores)]

    def bond(self, core: Any) -> int:
        return int(core.shape[-1])

    def finish(self, cores: list, psi: MPS) -> MPS:
        dense = [backend.from_numpy(c, psi._first_array()) for c in self.dense(cores)]
        return MPS._trusted(tuple(dense), 0, _charges=self.H.charges)


# Local problems whose dense tensor has at most this many entries are multiplied densely
# (the blocks scattered into it and gathered back; the sector is kept exactly): below it
# symmray's fixed cost per contraction (~0.4 ms) exceeds the dense matvec. Heisenberg at
# bond 64 (16384 entries): 0.3 ms dense against 1.2 ms in blocks; at bond 128 (65536) the
# blocks win.
DENSE_LOCAL = 2**15
# Mean entries per block below which a local problem's contractions are compiled
# (block_plans): with many small blocks symmray's per-call bookkeeping dominates (Hubbard
# with (N, Sz): ~50-100 entries a block, compiling pays after ~1 matvec); with few large
# ones symmray is near its FLOP floor and a compile (~3 matvecs) does not pay back in the
# 2-3 matvecs of a converged sweep (Heisenberg with Sz: ~1000 entries a block).
COMPILE_BELOW_MEAN_BLOCK = 400


def _flat_problem(matvec: Any, x: Any) -> tuple:
    """A block-sparse local problem as a flat one: the matvec on vectors, the start, and
    the layout of both (every block the legs allow in x's sector)."""
    where = blocks.layout(matvec.indices, x)
    start = blocks.flat(x, where)
    shape = tuple(sum(index.chargemap.values()) for index in where.indices)
    if math.prod(shape) > DENSE_LOCAL:
        if where.size < COMPILE_BELOW_MEAN_BLOCK * len(where.sectors):
            return matvec.compile(where), start, where
        return lambda v: blocks.flat(matvec(blocks.unflat(v, where)), where), start, where
    positions = blocks.dense_positions(where)
    dense = matvec.dense()

    def on_dense(v: Any) -> Any:
        full = np.zeros(math.prod(shape), dtype=np.result_type(v.dtype, x.dtype))
        full[positions] = v
        return dense(full.reshape(shape)).reshape(-1)[positions]

    return on_dense, start, where


def choose_engine(H: MPO, starts: list) -> DenseEngine | BlockEngine:
    """Blocks when H and the states declare the same charges (DMRG or TDVP on NumPy);
    dense arrays otherwise."""
    charged = H.charges is not None and all(s.charges == H.charges for s in starts)
    numpy = backend.is_numpy(backend.namespace(H._first_array()))
    return BlockEngine(H) if charged and numpy else DenseEngine()


def norm(x: Any) -> float:
    """The Frobenius norm of a dense array."""
    return backend.frob_sq(x) ** 0.5
