"""MPS: a tensor train with one physical leg per core, layout (Dl, d, Dr), and ``tt_svd``.

Index layout, the dense round trip and sampling; all other algorithms are inherited from
TensorTrain, and the decomposition itself lives in ``decompose``/``ttsvd``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _backend as backend
from . import _kernels, spectra
from ._checks import check_count, check_dims, check_entries, check_int
from .charged import Charged
from .cores import random_cores
from .decompose import decompose_tensor
from .sectors import random_sector_cores
from .symmetry import basis_states, conserved_charges
from .tensortrain import TensorTrain

# probabilities() forms the dense distribution: refused above this many outcomes.
PROBABILITIES_LIMIT = 2**24


class MPS(Charged, TensorTrain):
    """Matrix product state: cores ``(Dl, d, Dr)``; ``to_dense()`` has shape ``phys_dims``.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> m = tn.MPS([np.ones((1, 2, 1)), np.ones((1, 3, 1))])
        >>> m.phys_dims, m.bond_dims, m.to_dense().shape
        ((2, 3), (1,), (2, 3))
    """

    _n_phys_legs = 1
    _layout = "(Dl, d, Dr)"
    __slots__ = ("_charges",)

    @property
    def phys_dims(self) -> tuple[int, ...]:
        """Physical dimension of every site."""
        return tuple(shape[1] for shape in self._shapes)

    def _dims_repr(self) -> str:
        return f"phys_dims={list(self.phys_dims)}"

    def to_dense(self) -> Any:
        """The full tensor, shape ``phys_dims`` (refused above 2**31 entries)."""
        return self.xp.reshape(self._dense(), self.phys_dims)

    def sample(self, n: int, *, seed: Any = None) -> Any:
        """``n`` exact samples of |x|²/‖x‖², an (n, len) int64 NumPy array; see
        [sample][tnkit.measure.sample]."""
        n = check_count(n, "n")
        check_entries(n * len(self), "n")  # the (L, n) uniforms and (n, L) samples
        right = self.canonicalize(0)
        uniforms = backend.rng(seed).random((len(self), n))  # row k: the draws at site k
        pack = right._kernel_pack()
        if _kernels.applies(pack):
            return _kernels.sample(pack, uniforms)
        return spectra.draw_samples(right._fused(), uniforms)

    def probabilities(self) -> Any:
        """|x|²/‖x‖² as a dense array of shape ``phys_dims`` (small trains only); see
        [probabilities][tnkit.measure.probabilities]."""
        size = math.prod(self.phys_dims)
        if size > PROBABILITIES_LIMIT:
            raise ValueError(
                f"m: phys_dims {self.phys_dims} give {size} outcomes, above the limit of "
                f"{PROBABILITIES_LIMIT}; sample instead"
            )
        # the scale cancels: the cores' own tensor is the distribution's
        return spectra.distribution(self.xp.reshape(self._contract_all(), self.phys_dims))

    @classmethod
    def random(
        cls,
        phys_dims: Any,
        max_bond: int,
        *,
        seed: Any = None,
        dtype: Any = "float64",
        like: Any = None,
        site: Any = None,
        conserve: Any = None,
        sector: Any = None,
    ) -> MPS:
        """Gaussian random MPS, bonds ``min(max_bond, dims to either side)``, E‖x‖² = 1.

        Not canonical (``centre`` is None). ``like``: an array whose library and device the
        cores use (NumPy when None). With ``conserve`` (as in [OpSum][tnkit.OpSum], on
        ``site``: a site type, None for ``"spin-half"``) a random state of total charge
        ``sector`` (a tuple, one entry per component, e.g. ``(0,)`` for 2·Sz = 0): every
        bond channel carries one charge, shared out over the charges both ends can reach
        by how many basis states pass through each, and only charge-conserving entries are
        nonzero (norm of order 1, not exactly 1); the state carries the charges.

        Example:
            >>> import tnkit as tn
            >>> tn.MPS.random([2] * 5, 3, seed=0).bond_dims
            (2, 3, 3, 2)
            >>> m = tn.MPS.random([2] * 6, 4, conserve="Sz", sector=(0,), seed=0)
            >>> m.bond_dims, sorted(m.singular_values(2, by_charge=True))
            ((2, 4, 4, 4, 2), [-1, 1])
        """
        dims = check_dims(phys_dims, "phys_dims")
        if conserve is None and sector is None:
            cores = random_cores([(d,) for d in dims], max_bond, seed=seed, dtype=dtype, like=like)
            return cls._trusted(cores)
        if conserve is None or sector is None:
            raise ValueError("sector: a random state in a sector needs both conserve and sector")
        site_type = "spin-half" if site is None else site
        charges = conserved_charges(
            conserve, site_type if isinstance(site_type, str) else None, dims
        )
        if tuple(q.dim for q in charges) != dims:
            raise ValueError(f"phys_dims: {dims} do not match the dims of site {site_type!r}")
        check_int(max_bond, "max_bond", minimum=1)
        target = backend.resolve_dtype(np, dtype)
        cores = random_sector_cores(charges, sector, max_bond, backend.rng(seed), target)
        xp = np if like is None else backend.namespace(like, name="like")
        cores = tuple(backend.from_numpy(c, like, xp) for c in cores)
        return cls._trusted(cores, _charges=tuple(charges))

    @classmethod
    def product_state(
        cls,
        states: Any,
        *,
        site: Any = None,
        conserve: Any = None,
        dtype: Any = "float64",
        like: Any = None,
    ) -> MPS:
        """The product of basis states, bond dimension 1, norm 1 (left- and right-canonical).

        ``states``: per site a basis index or a label: ``"up"``/``"dn"`` (spin-half),
        ``"+1"``/``"0"``/``"-1"`` (spin-one), ``"0"``/``"1"`` (fermion), ``"0"``/``"up"``/
        ``"dn"``/``"updn"`` or ``"ud"`` (electron, |↑↓⟩ = c†↑c†↓|0⟩). ``site``: a site type
        (None: ``"spin-half"``, as for OpSum) or a list of local dims (indices only).
        ``conserve`` (names or Charges as in [OpSum][tnkit.OpSum]) is checked against the
        site; the state's sector is [sector][tnkit.symmetry.sector] of the same arguments.
        With ``conserve`` the state carries the charges (``m.charges``), so ``tn.dmrg`` and
        ``tn.tdvp`` run it in its sector on block-sparse cores. ``dtype`` and ``like`` as in
        [random][tnkit.MPS.random].

        Example:
            >>> import tnkit as tn
            >>> from tnkit.symmetry import sector
            >>> neel = ["up", "dn"] * 3
            >>> m = tn.MPS.product_state(neel, conserve="Sz")
            >>> m.bond_dims, float(m.to_dense()[0, 1, 0, 1, 0, 1]), sector(neel, conserve="Sz")
            ((1, 1, 1, 1, 1), 1.0, (0,))
        """
        indices, dims = basis_states(states, site)
        site_type = "spin-half" if site is None else site if isinstance(site, str) else None
        charges = conserved_charges(conserve, site_type, dims)
        target = backend.resolve_dtype(np, dtype)
        xp = np if like is None else backend.namespace(like, name="like")
        cores = []
        for index, d in zip(indices, dims, strict=True):
            core = np.zeros((1, d, 1), dtype=target)
            core[0, index, 0] = 1
            cores.append(backend.from_numpy(core, like, xp))
        charges = None if charges is None else tuple(charges)
        return cls._trusted(tuple(cores), len(cores) - 1, _charges=charges)


def tt_svd(
    x: Any,
    dims: Any = None,
    *,
    max_bond: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    method: str = "auto",
    progress: bool = False,
) -> MPS:
    """Decompose a dense tensor into an MPS (left-canonical, centre ``len - 1``).

    ``dims`` reshapes ``x`` first (default ``x.shape``); ``rtol``/``atol``/``max_bond``
    follow the truncation rules of the library (DESIGN §1). ``method`` picks the factorisation
    of each unfolding: ``"exact"`` (LAPACK SVD), ``"qr"`` (QR first, for very wide or tall
    unfoldings), ``"gram"`` (eigh of the Gram matrix: one pass over the data, but it cannot
    resolve singular values below ~sqrt(100·m·ε) of the largest — about 1e-6 in double — so
    it checks itself and hands over to QR + SVD whenever that could change the result),
    ``"randomized"`` (range finder with oversampling and two power iterations; for
    ``max_bond`` far below the unfolding size) or ``"auto"`` (per unfolding: randomized when
    the cap is far below the size, Gram for wide unfoldings and for loose or cap-only
    requests, else QR-first or plain SVD). Whatever runs, the discarded weight in ``report``
    is measured from exact norms of the residuals. ``progress=True`` shows a tqdm bar over
    the bonds; every bond is logged at DEBUG level on the ``tnkit`` logger.

    ``x`` may also be a dask array larger than memory: it is never materialised, the leading
    bonds are split out of core through dask's tall-skinny QR (see the Dask page of the
    docs), and the result is the same in-memory MPS.

    Example:
        >>> import numpy as np, tnkit as tn
        >>> x = np.random.default_rng(0).standard_normal((4, 4, 4))
        >>> m = tn.tt_svd(x)
        >>> m.bond_dims, bool(np.allclose(m.to_dense(), x))
        ((4, 4), True)
        >>> tn.tt_svd(x, max_bond=2).report.bond_dims_after
        (2, 2)
    """
    cores, centre, report, exponent = decompose_tensor(
        x, dims, max_bond=max_bond, rtol=rtol, atol=atol, method=method, progress=progress
    )
    return MPS._trusted(cores, centre, report, exponent)
