"""Optional peer libraries (quimb, TensorLy, TeNPy): lazy import and conversion to/from NumPy cores.

Each peer is optional: ``load`` returns None when it is not importable, and the harness then
records the column as "n/a". No timing and no error measurement happens here.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from tt_numpy import Cores

MODULES = {
    "tnkit": "tnkit",
    "quimb": "quimb.tensor",
    "tensorly": "tensorly",
    "tenpy": "tenpy",
    "tltorch": "tltorch",
}


@cache
def load(name: str) -> ModuleType | None:
    """Import a library by its short name; None when it (or a dependency) is missing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(MODULES[name])
    except ImportError:
        return None


def _pad_boundaries(arrays: Sequence[np.ndarray]) -> Cores:
    """Give the first and last arrays back their dummy boundary bonds."""
    cores = [np.asarray(a) for a in arrays]
    cores[0] = cores[0][None]
    cores[-1] = cores[-1][..., None]
    return cores


def quimb_mps(cores: Sequence[np.ndarray]) -> Any:
    """quimb MatrixProductState from (Dl, d, Dr) cores; quimb wants the boundary bonds dropped."""
    qtn = load("quimb")
    arrays = [cores[0][0], *cores[1:-1], cores[-1][..., 0]]
    return qtn.MatrixProductState(arrays, shape="lpr")


def quimb_mpo(cores: Sequence[np.ndarray]) -> Any:
    """quimb MatrixProductOperator from (Dl, out, in, Dr) cores: upper index = out (row)."""
    qtn = load("quimb")
    arrays = [cores[0][0], *cores[1:-1], cores[-1][..., 0]]
    return qtn.MatrixProductOperator(arrays, shape="ludr")


def quimb_mps_cores(mps: Any) -> Cores:
    """(Dl, d, Dr) cores of a quimb MPS (permutes its arrays in place; the state is unchanged)."""
    mps.permute_arrays("lpr")
    return _pad_boundaries(mps.arrays)


def quimb_mpo_cores(mpo: Any) -> Cores:
    """(Dl, out, in, Dr) cores of a quimb MPO: upper index = row (out), lower = column (in)."""
    mpo.permute_arrays("ludr")
    return _pad_boundaries(mpo.arrays)


def tensorly_cores(tt: Any) -> Cores:
    """Cores of a TensorLy TTTensor / TTMatrix (already (r, d, r) or (r, o, i, r))."""
    return [np.asarray(f) for f in tt.factors]


def tenpy_mps(cores: Sequence[np.ndarray], form: str | None) -> Any:
    """TeNPy finite MPS holding ``cores`` as given, with trivial charges and unit singular values.

    ``from_Bflat`` is not used because it canonicalises on construction. ``form=None`` says
    "no canonical form"; ``form="B"`` is a label only (with S = 1 on every bond, B and Theta forms
    read the same tensors), needed because ``compress_svd`` refuses form-less states even though it
    runs its own QR sweep first.
    """
    from tenpy.linalg import np_conserved as npc
    from tenpy.networks.mps import MPS
    from tenpy.networks.site import SpinHalfSite

    if any(c.shape[1] != 2 for c in cores):
        raise ValueError("tenpy_mps builds spin-1/2 sites only (d = 2)")
    site = SpinHalfSite(conserve=None)
    arrays = [npc.Array.from_ndarray_trivial(c, labels=["vL", "p", "vR"]) for c in cores]
    singular_values = [np.ones(c.shape[0]) for c in cores] + [np.ones(1)]
    return MPS(
        [site] * len(cores),
        arrays,
        singular_values,
        bc="finite",
        form=form,
        unit_cell_width=len(cores),
    )


def tenpy_mps_cores(mps: Any) -> Cores:
    """(Dl, d, Dr) cores of a finite TeNPy MPS in B form (site 0 as Theta), norm folded in."""
    cores = [mps.get_B(0, form="Th").to_ndarray()]
    cores += [mps.get_B(i, form="B").to_ndarray() for i in range(1, mps.L)]
    cores[0] = cores[0] * mps.norm
    return cores
