"""Tests that kill mutants the rest of the suite let survive (docs/mutation.md).

Each test pins down one behaviour a mutation of the core changed without any other test
noticing: exact values of thresholds, boundaries of comparisons, error messages that name
the offending argument, and the bookkeeping of the truncation reports. Grouped by module.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import tnkit as tn
from tnkit import storage
from tnkit import truncation as T

# ---------------------------------------------------------------------- truncation.py


def test_report_str_says_whether_the_tolerance_was_met():
    """``__str__`` appends the "NOT met" warning exactly when ``tolerance_met`` is False."""
    fields = dict(
        discarded=(0.25,),
        abs_error_bound=0.5,
        rel_error_bound=0.125,
        bond_dims_before=(4,),
        bond_dims_after=(2,),
        params_before=32,
        params_after=16,
        compression_ratio=2.0,
        method="svd/exact",
    )
    met = str(T.TruncationReport(**fields))
    assert met == (
        "TruncationReport(method='svd/exact', bonds [4] -> [2], params 32 -> 16 (2x), "
        "rel_error <= 1.250e-01)"
    )
    missed = str(T.TruncationReport(**fields, tolerance_met=False))
    assert missed == met[:-1] + ", tolerance NOT met (max_bond binds))"


def test_truncation_normalises_and_names_its_arguments():
    """``max_bond`` becomes a plain int, tolerances plain floats; errors name the argument."""
    t = T.Truncation(max_bond=np.int64(3), rtol=1, atol=np.float32(0.5))
    assert t.max_bond == 3 and type(t.max_bond) is int
    assert t.rtol == 1.0 and type(t.rtol) is float
    assert t.atol == 0.5 and type(t.atol) is float
    assert T.Truncation(rtol=0, atol=0.0).rtol == 0.0  # zero is a valid tolerance
    with pytest.raises(ValueError, match="^max_bond: "):
        T.Truncation(max_bond=0)
    for name in ("rtol", "atol"):
        with pytest.raises(TypeError, match=f"^{name}: expected a float, got True$"):
            T.Truncation(**{name: True})
        with pytest.raises(TypeError, match=f"^{name}: expected a float, got '1'$"):
            T.Truncation(**{name: "1"})
        with pytest.raises(ValueError, match=f"^{name}: must be a finite number >= 0, got -1"):
            T.Truncation(**{name: -1.0})
        with pytest.raises(ValueError, match=f"^{name}: must be a finite number >= 0, got inf"):
            T.Truncation(**{name: math.inf})
    with pytest.raises(ValueError, match="^atol: "):  # atol is checked after a None rtol
        T.Truncation(rtol=None, atol=-1.0)


def test_zero_cutoff_is_ten_times_size_eps_and_the_largest_value():
    """The numerical-zero level is exactly ``10·max(shape)·eps·s[0]`` (0 for no values)."""
    assert T.zero_cutoff(np.array([]), (3, 4), 0.5) == 0.0
    assert T.zero_cutoff(np.array([2.0]), (3, 4), 0.5) == 10.0 * 4 * 0.5 * 2.0
    assert T.zero_cutoff(np.array([3.0, 1.0]), (5, 2), 1e-3) == pytest.approx(0.15, rel=1e-15)


def test_choose_rank_boundaries():
    """Values exactly at the zero cutoff go; a tail exactly at the budget fits; ``floor``
    adds to the tail; the squares are taken in float64 whatever the input dtype."""
    # cutoff 10·1·0.01·1 = 0.1: a value equal to it is numerically zero
    assert T.choose_rank(np.array([1.0, 0.1]), shape=(1, 1), eps=0.01, max_bond=None,
                         budget=None) == 1  # fmt: skip
    s = np.array([1.0, 0.5])
    kw = dict(shape=(2, 2), eps=1e-16, max_bond=None)
    assert T.choose_rank(s, budget=0.25, **kw) == 1  # tail 0.25 <= budget 0.25
    assert T.choose_rank(s, budget=0.3, floor=0.2, **kw) == 2  # 0.25 + 0.2 > 0.3
    assert T.choose_rank(s, budget=0.3, floor=0.0, **kw) == 1
    assert T.choose_rank(s, budget=1.0, max_bond=None, shape=(2, 2), eps=1e-16) == 1
    # 1e-30**2 underflows in float32 but not in float64: the tail must see it
    tiny = np.array([1.0, 1e-30], dtype=np.float32)
    assert T.choose_rank(tiny, budget=0.0, **kw) == 2


def test_budget_splits_evenly_and_passes_unspent_weight_on():
    """``allowance`` is remaining/bonds_left; ``spend`` subtracts and counts down to 1."""
    assert T.Budget(1.0, 0).allowance() == 1.0  # no bonds: one share
    b = T.Budget(1.0, 3)
    assert b.allowance() == pytest.approx(1 / 3)
    b.spend(0.0)
    assert b.allowance() == pytest.approx(0.5)
    b.spend(0.1)
    assert b.allowance() == pytest.approx(0.9)
    b.spend(0.2)  # past the last bond the count stays at 1
    assert b.bonds_left == 1 and b.allowance() == pytest.approx(0.7)
    none = T.Budget(None, 2)
    none.spend(5.0)
    assert none.allowance() is None and none.bonds_left == 1


def test_budget_met_allows_only_rounding_above_the_total():
    """``met`` tolerates 1e-9 relative excess, not more; no total is always met."""
    b = T.Budget(1.0, 1)
    assert b.met([0.5, 0.5])
    assert b.met([1.0 + 1e-10])
    assert not b.met([1.0 + 1e-6])
    assert not b.met([1.5])
    assert T.Budget(None, 1).met([1e300])


def test_make_report_of_a_zero_input_and_an_empty_result():
    """A zero norm gives a relative bound of 0; no parameters after gives ratio inf; the
    discarded weights are stored as a tuple of floats."""
    kw = dict(
        bond_dims_before=(2,),
        bond_dims_after=(1,),
        method="m",
        tolerance_met=True,
    )
    make = T.TruncationReport.from_discarded
    r = make(discarded=[0.0, 0.0], norm=0.0, params_before=8, params_after=0, **kw)
    assert r.rel_error_bound == 0.0 and r.abs_error_bound == 0.0
    assert r.compression_ratio == math.inf
    assert r.discarded == (0.0, 0.0) and type(r.discarded) is tuple
    r = make(discarded=[np.float32(0.25)], norm=2.0, params_before=8, params_after=4, **kw)
    assert r.discarded == (0.25,) and type(r.discarded[0]) is float
    assert r.abs_error_bound == 0.5 and r.rel_error_bound == 0.25 and r.compression_ratio == 2.0
    assert r.norm == 2.0 and type(r.params_before) is int


# ---------------------------------------------------------------------- decompose.py


def test_tt_svd_scales_atol_with_an_extreme_input():
    """An ``atol`` on an input far outside the unit range truncates as the same request on
    the rescaled input does: the tolerance is rescaled with the data, not dropped."""
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((8, 2)), rng.standard_normal((2, 8))
    x = (a @ b).reshape(4, 2, 4, 2) + 1e-3 * rng.standard_normal((4, 2, 4, 2))
    scale = 2.0**600  # far beyond float64's maxexp // 4: tt_svd rescales internally
    plain = tn.tt_svd(x, atol=0.5)
    big = tn.tt_svd(x * scale, atol=0.5 * scale)
    assert plain.bond_dims == big.bond_dims == (4, 2, 2)  # exact would keep (4, 8, 2)
    assert big.report.abs_error_bound <= 0.5 * scale
    assert big.report.rel_error_bound == pytest.approx(plain.report.rel_error_bound, rel=1e-9)
    np.testing.assert_allclose(big.to_dense() / scale, plain.to_dense(), atol=1e-12)


def test_from_matrix_pads_only_the_rows_of_a_tall_matrix():
    """Row padding is decided by the row count alone (here 5 -> 6 rows, 4 columns kept)."""
    W = np.arange(20.0).reshape(5, 4)
    o = tn.MPO.from_matrix(W, (2, 3), (2, 2), pad=True)
    assert o.matrix_shape == (5, 4)
    np.testing.assert_allclose(o.to_matrix(), W, atol=1e-12)
    padded = o.to_matrix(padded=True)
    assert padded.shape == (6, 4)
    np.testing.assert_allclose(padded[5], 0.0, atol=1e-12)


# ---------------------------------------------------------------------- contract.py


def test_conj_keeps_the_centre_of_real_and_complex_trains():
    """Conjugation changes no orthogonality: the centre survives, the report does not."""
    for dtype in ("float64", "complex128"):
        m = tn.MPS.random([2] * 4, 3, seed=1, dtype=dtype).canonicalize(2)
        c = m.conj()
        assert c.centre == 2 and c.report is None
        np.testing.assert_array_equal(c.to_dense(), np.conj(m.to_dense()))


def test_trace_keeps_the_dtype_of_the_cores():
    """The identity that traces each core is built in the cores' dtype (float32 stays)."""
    o = tn.MPO.identity([2, 3], dtype="float32")
    t = o.trace()
    assert t.dtype == np.float32 and float(t) == 6.0


# ---------------------------------------------------------------------- tensortrain.py


def test_division_by_one_and_subtraction_errors():
    """Dividing by 1 is allowed (only 0 raises); a bad ``-`` names the operation."""
    m = tn.MPS.random([2] * 3, 2, seed=0)
    np.testing.assert_array_equal((m / 1).to_dense(), m.to_dense())
    with pytest.raises(ZeroDivisionError):
        m / 0
    with pytest.raises(ValueError, match="^sub: phys_dims differ"):
        m - tn.MPS.random([3] * 3, 2, seed=0)


def test_repr_lists_dims_bonds_and_report():
    """``repr`` spells out every descriptive field, for MPS and MPO alike."""
    o = tn.MPO.identity([2, 3])
    assert repr(o) == (
        "MPO(L=2, out_dims=[2, 3], in_dims=[2, 3], bond_dims=[1], dtype=float64, "
        "backend=numpy, params=13, centre=None)"
    )
    m = tn.tt_svd(np.arange(8.0), (2, 2, 2), max_bond=1)
    assert repr(m) == (
        "MPS(L=3, phys_dims=[2, 2, 2], bond_dims=[1, 1], dtype=float64, backend=numpy, "
        f"params=6, centre=2, rel_error<={m.report.rel_error_bound:.2e})"
    )


# ---------------------------------------------------------------------- mpo.py


def test_matrix_shape_must_be_a_pair_inside_the_dims():
    """``matrix_shape`` needs exactly two ints, each in ``1..product of the dims``."""
    cores = tn.MPO.identity([2, 3]).cores
    assert tn.MPO(cores, matrix_shape=(5, 6)).matrix_shape == (5, 6)
    with pytest.raises(TypeError, match="pair of ints"):
        tn.MPO(cores, matrix_shape=(1, 2, 3))
    with pytest.raises(TypeError, match="pair of ints"):
        tn.MPO(cores, matrix_shape=(1.0, 2))
    for bad in [(7, 6), (6, 7), (0, 6), (6, 0)]:
        with pytest.raises(ValueError, match="must fit inside"):
            tn.MPO(cores, matrix_shape=bad)


# ---------------------------------------------------------------------- storage.py


def test_report_field_converters_refuse_other_json_kinds():
    """The report reader's converters take exactly their JSON kind (bools are not ints)."""
    to_float, to_int, to_bool = (storage._checked(k) for k in (float, int, bool))
    assert to_float(1) == 1.0 and type(to_float(1)) is float
    assert to_int(3) == 3 and to_bool(False) is False
    for convert, bad in [(to_float, True), (to_int, True), (to_int, 1.5), (to_bool, 1)]:
        with pytest.raises(TypeError):
            convert(bad)
    ints = storage._tuple_of(int)
    assert ints([1, 2]) == (1, 2) and ints([]) == ()
    with pytest.raises(TypeError):
        ints((1, 2))
    with pytest.raises(TypeError):
        ints([1, True])


def test_int_list_refuses_tuples_and_non_ints():
    """Metadata lists must be JSON lists of ints."""
    path = Path("f.npz")
    assert storage._int_list([1, 2], "dims", path) == [1, 2]
    for bad in [(1, 2), [1, "2"], [1, 2.0]]:
        with pytest.raises(ValueError, match="dims must be a list of ints"):
            storage._int_list(bad, "dims", path)


def test_decode_core_of_a_complex_train():
    """A complex core is stored as a real view with a trailing axis of 2, any rank."""
    path = Path("f.safetensors")
    pair = np.array([1.0, 2.0])
    assert storage._decode_core(pair, "complex128", "core_0", path) == 1 + 2j
    core = np.arange(12.0).reshape(1, 3, 2, 2)
    out = storage._decode_core(core, "complex128", "core_0", path)
    assert out.shape == (1, 3, 2) and out[0, 1, 1] == 6 + 7j
    with pytest.raises(ValueError, match="trailing"):
        storage._decode_core(np.zeros((1, 3)), "complex128", "core_0", path)
    with pytest.raises(ValueError, match="trailing"):
        storage._decode_core(np.zeros(()), "complex128", "core_0", path)


def _raw_safetensors(path, header: dict, data: bytes = b"") -> None:
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


@pytest.mark.parametrize(
    ("offsets", "data"),
    [([8, 0], bytes(8)), ([0, 8, 16], bytes(16)), ([-8, 0], bytes(8)), (None, bytes(8))],
)
def test_safetensors_malformed_offsets_are_named(tmp_path, offsets, data):
    """Reversed, over-long, negative or absent ``data_offsets`` are reported as such."""
    info = {"dtype": "F64", "shape": [1]}
    if offsets is not None:
        info["data_offsets"] = offsets
    path = tmp_path / "bad.safetensors"
    _raw_safetensors(path, {"__metadata__": {}, "t": info}, data)
    with pytest.raises(ValueError, match="malformed data_offsets"):
        tn.load(path)
    _raw_safetensors(path, {"__metadata__": {}, "t": 5}, data)  # not even an object
    with pytest.raises(ValueError, match="malformed data_offsets"):
        tn.load(path)


def test_safetensors_empty_tensor_and_header_limits(tmp_path):
    """An empty tensor (offsets [n, n]) passes the header checks (the extra tensor is then
    named); a header longer than the file by a few bytes is caught before parsing; a bad
    header names itself and the file."""
    import safetensors.numpy

    m = tn.MPS.random([2, 2], 2, seed=0)
    path = tmp_path / "m.safetensors"
    tn.save(path, m)
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        strings = json.loads(handle.read(size))["__metadata__"]
    tensors = {f"core_{k}": np.asarray(c) for k, c in enumerate(m.cores)}
    tensors["zz_empty"] = np.zeros(0)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=strings))
    with pytest.raises(ValueError, match="holds 3 tensors"):
        tn.load(path)
    text = b'{"__metadata__": {}}'
    path.write_bytes((len(text) + 4).to_bytes(8, "little") + text)
    with pytest.raises(ValueError, match="header declares"):
        tn.load(path)
    text = b'{"a": 1'
    path.write_bytes(len(text).to_bytes(8, "little") + text)
    with pytest.raises(ValueError, match=f"^{path}: the safetensors header is not valid JSON"):
        tn.load(path)


# ---------------------------------------------------------------------- compress.py


def near_dependent(rng, dtype=np.float64):
    """Columns: 3 independent ones (norms ~10), a multiple of column 0 off by 1e-3 of its
    norm, a combination of columns 1 and 2 off by 1e-3, and a zero column."""
    base = rng.standard_normal((8, 3)) * 10
    if np.dtype(dtype).kind == "c":
        base = base + 1j * rng.standard_normal((8, 3)) * 10
    off = rng.standard_normal((8, 2))
    off = 1e-3 * off / np.linalg.norm(off, axis=0)
    parallel = 2.5 * base[:, 0] + off[:, 0] * np.linalg.norm(2.5 * base[:, 0])
    combo = base[:, 1] - 0.5 * base[:, 2]
    combo = combo + off[:, 1] * np.linalg.norm(combo)
    return np.column_stack([base, parallel, combo, np.zeros(8)]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("kind", ["deparallelise", "delinearise"])
def test_column_basis_reports_the_residual_it_leaves(kind, dtype):
    """The relaxed-tolerance residual is the measured one (not twice it, its cube, or its
    norm-scaled variant), the coefficients keep the complex dtype, and only columns within
    ``tol`` of the kept ones go."""
    from tnkit.compress import column_basis

    m = near_dependent(np.random.default_rng(3), dtype)
    keep, coeffs, residual = column_basis(m, kind, 1e-2)
    assert coeffs.dtype == m.dtype
    expected_keep = [0, 1, 2, 4] if kind == "deparallelise" else [0, 1, 2]
    assert keep == expected_keep
    measured = np.linalg.norm(m - m[:, keep] @ coeffs) / np.linalg.norm(m)
    assert measured > 1e-6  # something was cut
    assert residual == pytest.approx(measured, rel=1e-6)
    strict = column_basis(m, kind, 1e-5)  # below the 1e-3 offsets: nothing dependent goes
    assert strict[0] == [0, 1, 2, 3, 4]


def test_relaxed_exact_compression_reports_its_change_and_keeps_the_tolerance():
    """reduce_exactly passes ``tol`` to both sweeps and reports one residual per bond."""
    from tnkit.compress import reduce_exactly

    rng = np.random.default_rng(4)
    first = near_dependent(rng)[:, :5].reshape(1, 8, 5)
    second = rng.standard_normal((5, 8, 1))
    strict = reduce_exactly((first, second), kind="delinearise", tol=None)
    relaxed = reduce_exactly((first, second), kind="delinearise", tol=1e-2)
    assert strict.cores[0].shape[-1] == 5 and relaxed.cores[0].shape[-1] == 3
    assert len(relaxed.discarded) == 1
    assert relaxed.rel_error > 1e-6 > strict.rel_error
    single = reduce_exactly((rng.standard_normal((1, 8, 1)),), kind="deparallelise", tol=None)
    assert single.cores[0].shape == (1, 8, 1) and single.discarded == []


# ---------------------------------------------------------------------- linalg.py


def test_randomized_split_is_reproducible_and_handles_large_caps_and_complex():
    """A fixed sketch (bitwise the same twice), an integer oversampling for caps of 44 and
    more, and a complex sketch: each within a few percent of the optimal cut."""
    from tnkit.linalg import truncated_split

    rng = np.random.default_rng(5)
    spectrum = np.exp(-np.arange(256) / 20.0)
    for dtype in (np.float64, np.complex128):
        shift = 1j if dtype is np.complex128 else 0
        u = np.linalg.qr(rng.standard_normal((256, 256)) + shift * rng.standard_normal((256, 256)))[
            0
        ]
        v = np.linalg.qr(rng.standard_normal((300, 256)) + shift * rng.standard_normal((300, 256)))[
            0
        ]
        a = (u * spectrum) @ np.conj(v).T
        first = truncated_split(a, max_bond=48, method="randomized")
        again = truncated_split(a, max_bond=48, method="randomized")
        assert np.array_equal(first.left, again.left) and first.rank == 48
        assert first.left.dtype == a.dtype
        optimal = float(np.sum(spectrum[48:] ** 2))
        assert optimal <= first.discarded <= 1.05 * optimal


def test_randomized_without_a_cap_is_the_qr_split():
    """No ``max_bond``: the randomized method has nothing to sketch for and runs QR + SVD
    with the same budget."""
    from tnkit.linalg import truncated_split

    a = np.random.default_rng(6).standard_normal((40, 70)) * np.exp(-np.arange(70) / 5.0)
    budget = 1e-3 * float(np.sum(a**2))
    split = truncated_split(a, budget=budget, method="randomized")
    reference = truncated_split(a, budget=budget, method="qr")
    assert split.method == "qr" and split.rank == reference.rank < 40
    assert split.discarded <= budget


# ---------------------------------------------------------------------- canonical.py


def test_is_canonical_does_not_ask_the_centre_core_to_be_an_isometry():
    """The centre core carries the norm: a middle centre of an unnormalised train."""
    m = (tn.MPS.random([2] * 5, 3, seed=7) * 3.0).canonicalize(2)
    assert m.is_canonical(2)
    assert not m.is_canonical(1) and not m.is_canonical(3)


def test_exact_compression_reports_nothing_discarded_and_the_tolerance_met():
    """Exact methods report zero discarded weight per bond and ``tolerance_met``."""
    h = tn.models.heisenberg(6)
    for method in ("deparallelise", "delinearise"):
        report = (h + h).compress(method=method).report
        assert report.discarded == (0.0,) * 5 and report.tolerance_met
        assert report.bond_dims_after == h.bond_dims


def test_the_leftward_sweep_reaches_the_first_bond():
    """Only the rows of the last core are dependent: the right-to-left sweep must reach
    bond 0 (site 1) to shrink it."""
    from tnkit.compress import reduce_exactly

    rng = np.random.default_rng(8)
    first = rng.standard_normal((1, 8, 3))
    rows = rng.standard_normal((2, 8))
    second = np.vstack([rows, rows[0] + rows[1]]).reshape(3, 8, 1)
    reduced = reduce_exactly((first, second), kind="delinearise", tol=None)
    assert reduced.cores[0].shape == (1, 8, 2)
    dense = np.einsum("apb,bqc->pq", *reduced.cores)
    assert np.allclose(dense, np.einsum("apb,bqc->pq", first, second))


def test_the_strict_tolerance_follows_the_dtype():
    """The default tolerance is 10·rows·ε of the matrix's own dtype: a column dependent up
    to float32 rounding goes in float32."""
    from tnkit.compress import column_basis

    m = np.random.default_rng(9).standard_normal((6, 2)).astype(np.float32)
    m = np.column_stack([m, m[:, 0] + m[:, 1]]).astype(np.float32)
    assert len(column_basis(m, "delinearise", None)[0]) == 2
    # the float32 rounding of the sum is far above float64's tolerance: independent there
    assert len(column_basis(m.astype(np.float64), "delinearise", None)[0]) == 3


@pytest.mark.parametrize("scale", [2.0**-700, 1e-3, 1e250])
def test_rescaled_report_at_any_scale(scale):
    """Rescaled compression of ``scale·(H + H)`` under ``atol``/``max_bond`` gives the bonds
    of the unscaled case, a report in the caller's units (relative bound = absolute bound /
    norm; discarded weights scale with scale²) and names the SVD method it used."""
    h = tn.models.heisenberg(8)
    reference = ((h + h) * 1.0).compress(method="rescaled", max_bond=3)
    scaled = ((h + h) * scale).compress(method="rescaled", max_bond=3)
    r, s = reference.report, scaled.report
    assert scaled.bond_dims == reference.bond_dims
    assert scaled.centre == 0 and scaled.is_canonical(0)  # the scale went onto core 0
    assert s.tolerance_met and r.tolerance_met
    assert s.method.startswith("rescaled/") and r.method == s.method
    assert s.rel_error_bound == pytest.approx(r.rel_error_bound, rel=1e-9)
    assert s.rel_error_bound == pytest.approx(s.abs_error_bound / s.norm, rel=1e-12)
    assert s.rel_error_bound > 0
    if scale < 1e150:  # squared weights of larger scales are beyond double range (inf)
        assert sum(s.discarded) == pytest.approx(sum(r.discarded) * scale**2, rel=1e-9)
    tolerance = 0.5 * r.abs_error_bound
    by_atol = ((h + h) * scale).compress(method="rescaled", atol=tolerance * scale)
    assert (
        by_atol.bond_dims == ((h + h) * 1.0).compress(method="rescaled", atol=tolerance).bond_dims
    )
    assert by_atol.report.abs_error_bound <= tolerance * scale * (1 + 1e-9)
    assert by_atol.report.abs_error_bound > 0.1 * tolerance * scale  # the atol did cut


def test_rescaled_compression_of_the_zero_operator():
    """A zero operator: nothing to scale, relative bound 0."""
    zero = tn.models.heisenberg(4) * 0.0
    report = zero.compress(method="rescaled", max_bond=2).report
    assert report.rel_error_bound == 0.0 and report.norm == 0.0


@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_column_basis_of_zero_and_small_matrices(scale):
    """All-zero columns keep one zero column (bond 1) with residual 0; a small matrix
    (Frobenius norm below 1) still reports its relative residual."""
    from tnkit.compress import column_basis

    for dtype in (np.float32, np.complex128):
        keep, coeffs, residual = column_basis(np.zeros((4, 3), dtype=dtype), "delinearise", None)
        assert keep == [0] and coeffs.shape == (1, 3) and coeffs.dtype == dtype
        assert not coeffs.any() and residual == 0.0
    m = near_dependent(np.random.default_rng(10)) * scale * 1e-3
    keep, coeffs, residual = column_basis(m, "deparallelise", 1e-2)
    measured = np.linalg.norm(m - m[:, keep] @ coeffs) / np.linalg.norm(m)
    assert residual == pytest.approx(measured, rel=1e-6)


@pytest.mark.parametrize("kind", ["deparallelise", "delinearise"])
def test_columns_below_the_zero_threshold_count_in_the_residual(kind):
    """A column of norm 1e-3·max under tol 1e-2 is dropped as zero: its squared norm is the
    residual (not twice its norm, nor its cube)."""
    from tnkit.compress import column_basis

    m = np.random.default_rng(11).standard_normal((6, 3)) * 10
    tiny = np.random.default_rng(12).standard_normal(6)
    tiny *= 1e-3 * np.linalg.norm(m, axis=0).max() / np.linalg.norm(tiny)
    m = np.column_stack([m, tiny])
    keep, coeffs, residual = column_basis(m, kind, 1e-2)
    assert keep == [0, 1, 2]
    assert residual == pytest.approx(np.linalg.norm(tiny) / np.linalg.norm(m), rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_delinearise_counts_the_conditioning_of_the_kept_columns(dtype):
    """Nothing dropped, but the kept columns are ill conditioned: the residual estimate is
    ε / (smallest pivot of the unit-column QR), the rounding the coefficients may amplify,
    with the ε of the matrix's dtype."""
    from scipy.linalg import qr

    from tnkit.compress import column_basis

    rng = np.random.default_rng(13)
    a = rng.standard_normal((8, 2))
    offset = 1e-6 if dtype == np.float64 else 1e-2
    m = (np.column_stack([a, a[:, 0] + a[:, 1] + offset * rng.standard_normal(8)]) * 5).astype(
        dtype
    )
    keep, _, residual = column_basis(m, "delinearise", 1e-4 if dtype == np.float32 else 1e-9)
    assert keep == [0, 1, 2]
    pivots = np.abs(np.diag(qr(m / np.linalg.norm(m, axis=0), pivoting=True)[1]))
    assert residual == pytest.approx(np.finfo(dtype).eps / pivots[-1], rel=1e-3)


def test_rescaled_keeps_a_norm_beyond_double_range_as_the_exact_scale():
    """A train whose norm is 2^1600 (cores 2^200 each): the cores are those of the unit
    train's compression (bit for bit, up to an exact power of two in the centre core 0), and
    the scale exponent holds the rest (issue 16: no train's size is the user's problem)."""
    unit = tn.MPS.random([2] * 8, 4, seed=14)
    huge = tn.MPS([c * 2.0**200 for c in unit.cores])
    reference = unit.compress(method="rescaled", max_bond=2)
    result = huge.compress(method="rescaled", max_bond=2)
    assert result.centre == 0 and result.bond_dims == reference.bond_dims
    assert reference.scale_exponent == 0 and result.scale_exponent > 1000
    for big, small in zip(result.cores[1:], reference.cores[1:], strict=True):
        assert np.array_equal(big, small)
    shift = result.scale_exponent - 1600
    assert np.array_equal(result.cores[0] * 2.0**shift, reference.cores[0])
    assert math.isclose(result.log_norm(), reference.log_norm() + 1600 * math.log(2))


def test_train_compress_dispatches_parker_and_the_exact_tolerance():
    """``compress(method="parker")`` reaches the regular-form compression, and ``tol``
    reaches the exact methods."""
    h = tn.models.heisenberg(6)
    parker = (h + h).compress(method="parker")
    assert parker.report.method.startswith("parker") and parker.bond_dims == h.bond_dims
    rng = np.random.default_rng(15)
    first = near_dependent(rng)[:, :5].reshape(1, 8, 5)
    train = tn.MPS([first, rng.standard_normal((5, 8, 1))])
    assert train.compress(method="delinearise").bond_dims == (5,)
    assert train.compress(method="delinearise", tol=1e-2).bond_dims == (3,)


@pytest.mark.parametrize("scale", [1e-3, 1.0])
def test_svd_compression_relative_bound(scale):
    """The relative bound is the absolute bound over the norm, also for norms below 1;
    the zero train's is 0."""
    m = tn.MPS.random([2] * 6, 4, seed=16) * scale
    report = m.compress(max_bond=2).report
    assert report.rel_error_bound > 0
    assert report.rel_error_bound == pytest.approx(report.abs_error_bound / report.norm)
    assert (m * 0.0).compress(max_bond=2).report.rel_error_bound == 0.0


def spectrum_matrix(singular_values, n=200, seed=17):
    """A 64×n matrix with the given singular values (descending)."""
    rng = np.random.default_rng(seed)
    k = len(singular_values)
    u = np.linalg.qr(rng.standard_normal((64, k)))[0]
    v = np.linalg.qr(rng.standard_normal((n, k)))[0]
    return (u * np.asarray(singular_values)) @ v.T


def test_gram_hands_over_to_qr_exactly_when_it_must():
    """Gram keeps its split unless it cannot resolve it: a kept singular value below its
    noise floor (the last one, relative to the largest), an exact request that cuts, or a
    cap-only cut too small to trust (below 1e-12 of the weight); a cap that binds may miss
    the budget without a hand-over."""
    from tnkit.linalg import truncated_split

    def used(a, **request):
        return truncated_split(a, method="gram", **request).method

    values = np.linspace(1.0, 0.5, 64)
    assert used(spectrum_matrix(values)) == "gram"  # full rank, nothing cut: exact
    tiny_last = values.copy()
    tiny_last[-1] = 1e-7  # kept (above numerical zero) but below Gram's noise floor
    assert used(spectrum_matrix(tiny_last) * 1e6) == "qr"
    assert used(spectrum_matrix(values[:40], n=200)) == "qr"  # exact request that cuts zeros
    small_cut = np.concatenate([values[:8], np.full(56, 1e-8)])  # cut weight ~ 1e-15
    medium_cut = np.concatenate([values[:8], np.full(56, 3e-5)])  # cut weight ~ 1e-9
    assert used(spectrum_matrix(small_cut), max_bond=8) == "qr"
    assert used(spectrum_matrix(medium_cut), max_bond=8) == "gram"
    a = spectrum_matrix(values)
    assert used(a, max_bond=4, budget=1e-9) == "gram"  # capped: the budget may be missed


def test_randomized_with_cap_and_budget():
    """Both given: the budget picks the rank below the cap; a binding cap keeps the sketch's
    split even though the budget is missed."""
    from tnkit.linalg import truncated_split

    a = spectrum_matrix(np.exp(-np.arange(64) / 3.0), n=256)
    total = float(np.sum(a**2))
    loose = truncated_split(a, max_bond=48, budget=1e-2 * total, method="randomized")
    assert loose.method == "randomized" and loose.rank < 48
    assert loose.discarded <= 1e-2 * total
    capped = truncated_split(a, max_bond=4, budget=1e-12 * total, method="randomized")
    assert capped.method == "randomized" and capped.rank == 4


def test_randomized_lapack_failure_keeps_cap_and_budget(monkeypatch):
    """When LAPACK's SVD fails inside the randomized splitter, the Gram last resort gets the
    same cap and budget."""
    from tnkit import _backend
    from tnkit.linalg import truncated_split

    def fail(a):
        raise np.linalg.LinAlgError("injected")

    a = spectrum_matrix(np.exp(-np.arange(64) / 3.0), n=256)
    total = float(np.sum(a**2))
    monkeypatch.setattr(_backend, "svd", fail)
    capped = truncated_split(a, max_bond=3, method="randomized")
    assert capped.method == "gram" and capped.rank == 3
    budgeted = truncated_split(a, max_bond=40, budget=1e-2 * total, method="randomized")
    assert budgeted.method == "gram" and budgeted.rank < 40
    assert budgeted.discarded <= 1e-2 * total


def test_deparallelise_adds_up_every_merge():
    """Two columns merged into their parallel partners: the residual is the root of the sum
    of both misses' squares (each merge adds to it)."""
    from tnkit.compress import column_basis

    rng = np.random.default_rng(18)
    base = rng.standard_normal((8, 2)) * 10
    off = rng.standard_normal((8, 2))
    off = 1e-3 * off / np.linalg.norm(off, axis=0)
    first = 2.0 * base[:, 0] + off[:, 0] * np.linalg.norm(2.0 * base[:, 0])
    second = -3.0 * base[:, 1] + off[:, 1] * np.linalg.norm(3.0 * base[:, 1])
    m = np.column_stack([base, first, second])
    keep, coeffs, residual = column_basis(m, "deparallelise", 1e-2)
    assert keep == [0, 1]
    measured = np.linalg.norm(m - m[:, keep] @ coeffs) / np.linalg.norm(m)
    assert residual == pytest.approx(measured, rel=1e-6)
