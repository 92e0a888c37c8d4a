"""The public API is a contract (DESIGN §1): names and signatures that code outside calls.

A change here is a change of the contract: refactors must leave these lists as they are.
"""

from __future__ import annotations

import inspect

import pytest

import tnkit as tn

TOP_LEVEL = [
    "MPO", "MPS", "OpSum", "TensorTrain", "Truncation", "TruncationReport", "apply",
    "correlation", "distance", "dmrg", "expectation", "factorize_dims", "from_matrix", "inner",
    "load", "local_expectation", "models", "save", "tdvp", "tdvp_operator", "tt_svd",
    "two_site_variance", "variance",
]  # fmt: skip
TORCH = [
    "ADTNLinear", "CompressionReport", "MPOAdapter", "MPOConv2d", "MPOEmbedding", "MPOLSTM",
    "MPOLinear", "SqueezeReport", "TaylorLayer", "adapter_parameters", "add_adapters",
    "apply_structure", "compress_model", "densify_model", "freeze_central", "load_adapters",
    "merge_adapters", "mpo_structure", "parameter_counts", "save_adapters", "squeeze",
    "unmerge_adapters",
]  # fmt: skip
JAX = ["MPOLinear", "register_pytree"]
TRAIN_METHODS = [
    "bond_dims", "canonicalize", "centre", "compress", "conj", "cores", "dtype", "entropies",
    "entropy", "is_canonical", "log_norm", "norm", "num_params", "report", "scale_exponent",
    "singular_values", "xp",
]  # fmt: skip
MPS_METHODS = sorted(
    [*TRAIN_METHODS, "phys_dims", "probabilities", "product_state", "random", "sample"]
    + ["to_dense", "charges", "to_plain", "with_charges"]
)
MPO_METHODS = sorted(
    [*TRAIN_METHODS, "H", "T", "from_matrix", "identity", "in_dims", "matrix_shape", "out_dims"]
    + ["phys_dims", "random", "to_dense", "to_matrix", "trace", "charges", "to_plain"]
    + ["with_charges"]
)
MODELS = [
    "heisenberg",
    "heisenberg_cylinder",
    "hubbard",
    "hubbard_cylinder",
    "ising",
    "long_range_exp",
]
MEASURE = ["entropies", "entropy", "probabilities", "sample", "singular_values"]
SYMMETRY = ["Charges", "bond_charges", "local_charges", "sector", "site_charges"]


def public(obj) -> list[str]:
    return sorted(name for name in dir(obj) if not name.startswith("_"))


def test_top_level_names():
    assert sorted(tn.__all__) == sorted(TOP_LEVEL)
    for name in TOP_LEVEL:
        assert getattr(tn, name) is not None
    assert isinstance(tn.__version__, str)


def test_train_methods():
    assert public(tn.TensorTrain) == sorted(TRAIN_METHODS)
    assert public(tn.MPS) == MPS_METHODS
    assert public(tn.MPO) == MPO_METHODS


def test_models_and_measure_functions():
    for name in MODELS:
        assert callable(getattr(tn.models, name))
    for name in MEASURE:
        assert callable(getattr(tn.measure, name))
    assert callable(tn.contract.log_norm)
    assert callable(tn.operators.local_operators)


def test_signatures():
    """Keyword names of the most used entry points (DESIGN §1)."""
    params = {
        tn.tt_svd: ["x", "dims", "max_bond", "rtol", "atol", "method"],
        tn.from_matrix: ["W", "out_dims", "in_dims", "max_bond", "rtol", "atol", "method"],
        tn.MPS.random: ["phys_dims", "max_bond", "seed", "dtype", "like", "site", "conserve"]
        + ["sector"],
        tn.MPO.random: ["out_dims", "in_dims", "max_bond", "seed", "dtype", "like"],
        tn.TensorTrain.compress: ["self", "max_bond", "rtol", "atol", "method"],
        tn.apply: ["o", "t", "method"],
        tn.expectation: ["m", "o", "normalize"],
    }
    for fn, names in params.items():
        got = list(inspect.signature(fn).parameters)
        assert got[: len(names)] == names or set(names) <= set(got), (fn, got)


def test_symmetry_names():
    """Abelian symmetries (issue 19): tnkit.operators and tnkit.symmetry."""
    for name in SYMMETRY:
        assert name in tn.operators.__all__ and callable(getattr(tn.operators, name))
    assert tn.operators.Charges is tn.symmetry.Charges
    assert tn.operators.sector is tn.symmetry.sector
    params = list(inspect.signature(tn.MPS.product_state).parameters)
    assert params[:4] == ["states", "site", "conserve", "dtype"]
    for build in (tn.OpSum, tn.models.heisenberg, tn.models.hubbard, tn.models.ising):
        assert "conserve" in inspect.signature(build).parameters, build
    for build in (tn.models.heisenberg_cylinder, tn.models.hubbard_cylinder):
        assert "conserve" in inspect.signature(build).parameters, build


def test_torch_names():
    torch_pkg = pytest.importorskip("tnkit.torch")
    assert sorted(torch_pkg.__all__) == sorted(TORCH)
    for name in TORCH:
        assert getattr(torch_pkg, name) is not None


def test_jax_names():
    jax_pkg = pytest.importorskip("tnkit.jax")
    assert sorted(jax_pkg.__all__) == sorted(JAX)
    for name in JAX:
        assert getattr(jax_pkg, name) is not None
