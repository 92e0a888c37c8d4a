"""TensorTrain: the one immutable core type behind MPS and MPO (cores, centre, report).

It validates, describes and delegates; sweeps and factorisations live in their own modules,
which see only tuples of 3-leg cores (an MPO core's two physical legs are fused there).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

import array_api_compat as aac
import numpy as np

from . import _backend as backend
from . import _kernels, _scaling, arithmetic, canonical, spectra
from ._checks import check_alpha, check_bond, check_number, is_int
from ._scaling import centre_norm, exp_saturating, ldexp, times_pow2
from .compress import COMPRESS_METHODS, EXACT_METHODS, compress_cores
from .cores import common_dtype, read_only, validate_cores
from .truncation import Truncation, TruncationReport
from .ttsvd import scaled_truncation

_DENSE_LIMIT = 2**31
_LN2 = math.log(2.0)
TT = TypeVar("TT", bound="TensorTrain")


class TensorTrain:
    """A chain of cores ``(Dl, *phys, Dr)`` with boundary bonds of 1; never modified in place.

    Use the subclasses [MPS][tnkit.MPS] (one physical leg) and [MPO][tnkit.MPO] (two).

    The train is ``2**scale_exponent`` times the contraction of its cores: an exact scale
    kept apart from the cores where they could not hold it (norms beyond the dtype's range),
    and 0 otherwise. Package-internal protocol: ``_trusted``/``_with_cores`` build trains
    from valid cores or held blocks; ``_arrays``/``_fused`` read the cores without keeping
    built ones, ``_unfused`` reshapes 3-leg cores back; ``_kernel_pack`` packs for Numba.
    """

    _n_phys_legs: ClassVar[int] = 1
    _layout: ClassVar[str] = "(Dl, d, Dr)"
    __slots__ = ("_cores", "_centre", "_report", "_packed", "_exponent", "_held")

    def __init__(self, cores: Any) -> None:
        if type(self) is TensorTrain:
            raise TypeError("TensorTrain is abstract: build an MPS or an MPO")
        cores = validate_cores(cores, self._n_phys_legs, type(self).__name__, self._layout)
        self._init(cores, None, None)

    # ------------------------------------------------------------------ construction helpers

    def _init(
        self, cores: Any, centre: int | None, report: TruncationReport | None, exponent: int = 0
    ) -> None:
        held = None if isinstance(cores, (tuple, list)) else cores  # e.g. HeldBlocks
        object.__setattr__(self, "_held", held)
        object.__setattr__(self, "_cores", None if held else tuple(map(read_only, cores)))
        object.__setattr__(self, "_centre", centre)
        object.__setattr__(self, "_report", report)
        object.__setattr__(self, "_exponent", int(exponent))
        # Numba-packed cores built on first use; subclass metadata filled in by the callers.
        object.__setattr__(self, "_packed", None)
        for name in type(self).__slots__:
            object.__setattr__(self, name, None)

    def _with_cores(
        self,
        cores: tuple,
        centre: int | None,
        report: TruncationReport | None,
        exponent: int | None = None,
    ):
        """A new train of the same class and metadata (trusted cores: no validation); its
        scale exponent is ``exponent``, or this train's when None."""
        new = object.__new__(type(self))
        new._init(cores, centre, report, self._exponent if exponent is None else exponent)
        for name in type(self).__slots__:
            if name not in TensorTrain.__slots__:
                object.__setattr__(new, name, getattr(self, name))
        return new

    @classmethod
    def _trusted(cls, cores: tuple, centre: int | None = None, report=None, exponent=0, **meta):
        """A train from cores known to be valid; subclass metadata defaults to None."""
        new = object.__new__(cls)
        new._init(cores, centre, report, exponent)
        for name in cls.__slots__:
            object.__setattr__(new, name, meta.pop(name, None))
        if meta:
            raise TypeError(f"unknown metadata {sorted(meta)} for {cls.__name__}")
        return new

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; methods return new objects")

    def __reduce__(self) -> tuple:
        """Pickle (for process pools and Dask) through the trusted constructor."""
        meta = {n: getattr(self, n) for n in type(self).__slots__ if n not in TensorTrain.__slots__}
        stored = self._cores if self._held is None else self._held
        return (_restore, (type(self), stored, self._centre, self._report, self._exponent, meta))

    # ------------------------------------------------------------------ properties

    @property
    def cores(self) -> tuple:
        """The cores, a tuple of arrays (read-only views for NumPy). A charged train holding
        its charge blocks builds them on first use, and keeps them."""
        if self._cores is None:
            object.__setattr__(self, "_cores", self._held.cores())
        return self._cores

    @property
    def centre(self) -> int | None:
        """Orthogonality centre, or None when the train is not known to be canonical."""
        return self._centre

    @property
    def scale_exponent(self) -> int:
        """The exact scale: the train is ``2**scale_exponent`` times the contraction of
        ``cores``. 0 unless the cores could not hold the train's size (a norm beyond the
        dtype's range); ``norm()``, ``to_dense()`` and every operation include it.

        Example:
            >>> import math, numpy as np, tnkit as tn
            >>> m = tn.MPS([np.full((1, 2, 1), 0.25)] * 2000)   # norm 2**-3000
            >>> c = m.canonicalize(0)
            >>> c.scale_exponent, round(c.log_norm() / math.log(2), 9), c.norm()
            (-3000, -3000.0, 0.0)
        """
        return self._exponent

    @property
    def report(self) -> TruncationReport | None:
        """What the truncating call that made this train cut.

        None for a train built from cores (or by ``random``/``identity``). Canonicalising
        keeps the report, since it does not change the tensor.
        """
        return self._report

    def __len__(self) -> int:
        return len(self._shapes)

    @property
    def _shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of every core (without building held cores)."""
        if self._cores is None:
            return self._held.shapes
        return tuple(tuple(int(s) for s in c.shape) for c in self._cores)

    @property
    def bond_dims(self) -> tuple[int, ...]:
        """The ``len - 1`` inner bonds; ``bond_dims[k]`` joins sites k and k+1."""
        return tuple(shape[-1] for shape in self._shapes[:-1])

    @property
    def num_params(self) -> int:
        """Number of entries of the (dense) cores, Σ_k D_{k-1}·(physical dims)·D_k."""
        return sum(math.prod(shape) for shape in self._shapes)

    def _first_array(self) -> Any:
        """An array of the cores' library and dtype (without building held cores)."""
        return self._held.values[0] if self._cores is None else self._cores[0]

    @property
    def dtype(self) -> Any:
        """The dtype of the cores (one dtype for the whole train)."""
        return self._first_array().dtype

    @property
    def xp(self) -> Any:
        """The array namespace of the cores."""
        return aac.array_namespace(self._first_array())

    @property
    def _site_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(shape[1:-1] for shape in self._shapes)

    def _arrays(self) -> tuple:
        """The cores as arrays; held cores are built for the caller and not kept."""
        return self._held.cores() if self._cores is None else self._cores

    def _fused(self) -> tuple:
        """Cores as ``(Dl, p, Dr)`` with the physical legs fused (views, as ``_arrays``)."""
        xp = self.xp
        return tuple(xp.reshape(c, (c.shape[0], -1, c.shape[-1])) for c in self._arrays())

    def _unfused(self, cores3: tuple, site_shapes=None) -> tuple:
        xp = self.xp
        shapes = self._site_shapes if site_shapes is None else site_shapes
        return tuple(
            xp.reshape(c, (c.shape[0], *shape, c.shape[-1]))
            for c, shape in zip(cores3, shapes, strict=True)
        )

    def __repr__(self) -> str:
        lib = type(self._first_array()).__module__.split(".")[0]
        parts = [
            f"L={len(self)}",
            f"{self._dims_repr()}",
            f"bond_dims={list(self.bond_dims)}",
            f"dtype={backend.dtype_name(self.dtype)}",
            f"backend={lib}",
            f"params={self.num_params}",
            f"centre={self.centre}",
        ]
        if self._exponent:
            parts.append(f"scale=2**{self._exponent}")
        if self._report is not None:
            parts.append(f"rel_error<={self._report.rel_error_bound:.2e}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _dims_repr(self) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ dense view

    def _contract_all(self) -> Any:
        """Contract every core: shape (1, p_0, ..., p_{L-1}, 1) with the physical legs fused."""
        size = math.prod(math.prod(s) for s in self._site_shapes)
        if size > _DENSE_LIMIT:
            raise ValueError(f"dense size {size} exceeds {_DENSE_LIMIT} entries; keep it a train")
        return arithmetic.contract_chain(self._fused())

    def _folded_cores(self) -> tuple:
        """The cores with the scale folded in, spread as exact powers of two over all of them
        (for code that knows no scale: other libraries, NN parameters); OverflowError where the
        cores cannot hold it."""
        if not self._exponent:
            return self.cores
        cores = _scaling.spread_power_of_two(self.cores, self._exponent)
        if not backend.all_finite(cores):
            raise OverflowError(
                f"the cores of this train (log_norm {self.log_norm():.6g}) cannot hold its "
                f"scale in {backend.dtype_name(self.dtype)}"
            )
        return cores

    def _dense(self) -> Any:
        """``_contract_all`` times the exact scale; OverflowError where the entries cannot be
        represented in the dtype (beyond its range, or all flushed to zero)."""
        with backend.quiet():  # checked below
            dense = self._contract_all()
        if not backend.has_values(dense):
            return times_pow2(dense, self._exponent) if self._exponent else dense
        xp = self.xp
        nonzero = bool(xp.any(dense != 0))
        if self._exponent:
            dense = times_pow2(dense, self._exponent)
        if not bool(xp.all(xp.isfinite(dense))) or (nonzero and not bool(xp.any(dense != 0))):
            raise OverflowError(
                f"the entries of this train (log_norm {self.log_norm():.6g}) cannot be "
                f"represented in {backend.dtype_name(self.dtype)}; use log_norm(), or keep it "
                "a train"
            )
        return dense

    # ------------------------------------------------------------------ canonical forms

    def canonicalize(self: TT, centre: int) -> TT:
        """Mixed-canonical form about site ``centre`` (0: right-canonical; len-1: left-).

        Only the sites between the current and the new centre are swept when the centre is
        known. The tensor is unchanged (up to rounding), so the report is kept.

        Example:
            >>> import tnkit as tn
            >>> m = tn.MPS.random([2] * 6, 4, seed=1).canonicalize(2)
            >>> m.centre, m.is_canonical(2)
            (2, True)
        """
        centre = self._check_site(centre, "centre")
        if self._centre == centre:
            return self
        pack = self._kernel_pack()
        packed = None
        try:
            with backend.quiet():  # an over- or underflow is detected below, and the sweep redone
                if _kernels.applies(pack):
                    cores, packed = _kernels.move_centre(pack, self._centre, centre)
                else:
                    cores = canonical.move_centre(self._fused(), self._centre, centre)
        except np.linalg.LinAlgError:  # a QR met an overflowed core
            cores = None
        exponent = self._exponent
        # Overflow ends up in the centre core (the rest are isometries): if so, sweep rescaled.
        if cores is None or self._lost(cores[centre]):
            cores, shift = canonical.move_centre_scaled(self._fused(), self._centre, centre)
            exponent, packed = exponent + shift, None
        new = self._with_cores(self._unfused(cores), centre, self._report, exponent)
        object.__setattr__(new, "_packed", packed)
        return self._swept(new)

    def _swept(self: TT, new: TT, truncation: Truncation | None = None) -> TT:
        """``new``, made by a sweep (compress: with ``truncation``), as it is (see Charged)."""
        return new

    def _lost(self, core: Any) -> bool:
        """Whether ``core``, the result of sweeping this train, over- or underflowed."""
        if not backend.has_values(core):
            return False
        xp = self.xp
        if not bool(xp.all(xp.isfinite(core))):
            return True
        # a zero core that hides a train which is not zero: its norm underflowed
        return not bool(xp.any(core != 0)) and math.isfinite(self._mantissa_log_norm())

    def is_canonical(self, centre: int, *, tol: float | None = None) -> bool:
        """Whether every core left (right) of ``centre`` is a left (right) isometry.

        ``tol`` bounds the entries of ``Q^H Q - I`` (default: 1000·eps of the dtype).
        """
        centre = self._check_site(centre, "centre")
        tol = 1e3 * backend.eps(self.dtype) if tol is None else check_number(tol, "tol", minimum=0)
        return canonical.is_canonical(self._fused(), centre, tol)

    def norm(self) -> Any:
        """Frobenius norm ‖x‖ (through the canonical form; the train is not changed).

        A Python float for NumPy trains: the value when float64 represents it, ``inf`` or
        ``0.0`` only when it does not (``log_norm()`` is exact either way). A 0-d array of the
        cores' library for torch, JAX and CuPy trains, which carries gradients.

        Example:
            >>> import numpy as np, tnkit as tn
            >>> x = np.arange(8.0)
            >>> bool(np.isclose(tn.tt_svd(x, (2, 2, 2)).norm(), np.linalg.norm(x)))
            True
        """
        xp = self.xp
        if not backend.is_numpy(xp):
            c = self.canonicalize(len(self) - 1 if self._centre is None else self._centre)
            return centre_norm(c.cores[c._centre], c._exponent)
        if self._centre is None and _kernels.applies(self._kernel_pack()):
            mantissa, exponent = _kernels.qr_norm(self._kernel_pack())
            return ldexp(mantissa, exponent + self._exponent)
        centre = len(self) - 1 if self._centre is None else self._centre
        try:
            with backend.quiet():
                cores = canonical.move_centre(self._fused(), self._centre, centre)
                value = backend.frob_sq(cores[centre]) ** 0.5
        except np.linalg.LinAlgError:
            value = math.nan
        if 0 < value < math.inf and not _scaling.exponent_for(value, self.dtype):  # normal
            return ldexp(value, self._exponent) if self._exponent else value
        return exp_saturating(
            self.log_norm()
        )  # over- or underflowed on the way: from the exact log

    def _kernel_pack(self) -> _kernels.Packed:
        """The cores as kernel input, built once per train (trains are immutable)."""
        packed = getattr(self, "_packed", None)
        if packed is None:
            packed = _kernels.Packed(self._cores if self._cores is not None else self._held)
            object.__setattr__(self, "_packed", packed)
        return packed

    # ------------------------------------------------------------------ compression

    def compress(
        self: TT,
        *,
        max_bond: int | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        method: str = "svd",
        svd_method: str = "auto",
        tol: float | None = None,
    ) -> TT:
        """A smaller train within the requested error; ``.report`` says what was cut.

        ``rtol`` guarantees ``‖x − x̃‖ ≤ rtol·‖x‖`` for the whole train, ``atol`` the same in
        absolute terms; ``max_bond`` is a hard cap that wins over them (then
        ``report.tolerance_met`` is False). With no argument only numerically zero singular
        values are dropped. The report compares with this train (its bonds, parameters and
        norm), not with any earlier dense tensor.

        ``method`` is the compression scheme (see the [concepts page](concepts.md) for which
        one when):

        - ``"svd"``: canonical sweep with a truncated factorisation at every bond (picked by
          ``svd_method`` as in [tt_svd][tnkit.tt_svd]: ``"auto"``, ``"exact"``, ``"qr"``,
          ``"gram"``, ``"randomized"``). Result right-canonical (centre 0).
        - ``"rescaled"``: the same with every core rescaled by a power of two on the way, for
          operators whose (squared) norms leave double range, e.g. long-chain Hamiltonians.
          The scale returns into core 0 (centre 0) or, if core 0 cannot hold it, is spread
          evenly over the cores (centre None); ``report.norm`` is then inf but
          ``rel_error_bound`` stays exact.
        - ``"deparallelise"`` / ``"delinearise"``: exact removal of parallel / linearly
          dependent columns and rows of the cores (Hubig et al. 2017), no SVD, sparsity kept;
          ``tol`` (default ``10·rows·ε``) is the relative residual below which a column
          counts as dependent: pass e.g. 1e-11 for a relaxed reduction. They take no
          ``max_bond``/``rtol``/``atol``; ``report.rel_error_bound`` is their estimate (the
          removed columns' relative residuals summed over bonds) and the result has no
          centre.
        - ``"parker"`` (MPOs in regular form: sums of local terms, e.g. from
          [OpSum][tnkit.OpSum]): Parker–Cao–Zaletel canonical form; only the intensive
          block of every bond is truncated, the identity channels stay exact. ``max_bond``
          counts the identity channels (≥ 2); the bound is rigorous; no centre.

        Example:
            >>> import tnkit as tn
            >>> m = tn.MPS.random([2] * 10, 16, seed=0)
            >>> c = m.compress(max_bond=4)
            >>> max(c.bond_dims), c.centre, c.report.rel_error_bound < 1
            (4, 0, True)
            >>> o = tn.MPO.identity([2] * 6)
            >>> (o + o).compress(method="deparallelise").bond_dims
            (1, 1, 1, 1, 1)
        """
        if method not in COMPRESS_METHODS:
            raise ValueError(f"method: expected one of {COMPRESS_METHODS}, got {method!r}")
        truncation = Truncation(max_bond=max_bond, rtol=rtol, atol=atol)
        if method in EXACT_METHODS and not truncation.is_exact:
            raise ValueError(
                f"method: {method!r} is exact and takes no max_bond/rtol/atol; truncate "
                "with method='svd' or 'rescaled' afterwards"
            )
        if tol is not None:
            if method not in EXACT_METHODS:
                raise ValueError(f"tol: only for methods {EXACT_METHODS}, not {method!r}")
            if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)):
                raise TypeError(f"tol: expected a float, got {tol!r}")
            if not 0 <= tol < 1:
                raise ValueError(f"tol: must be in [0, 1), got {tol}")
        # The cores are compressed as they are; a tolerance in absolute units is one for the
        # train, 2**scale_exponent times the cores.
        request = scaled_truncation(truncation, self._exponent) if self._exponent else truncation
        options = {"svd_method": svd_method, "tol": tol, "site_shapes": self._site_shapes}
        result = self._compressed(request, method, options)
        new_cores = self._unfused(result.cores)
        if not backend.all_finite(new_cores):
            raise ValueError(
                f"method: {method!r} met numbers beyond the {backend.dtype_name(self.dtype)} "
                f"range (log_norm {self.log_norm():.6g}); use a wider dtype"
            )
        norm = result.norm
        if math.isnan(norm):  # exact methods: the result's norm (smaller bonds, same tensor)
            norm = exp_saturating(self._with_cores(new_cores, None, None, 0)._mantissa_log_norm())
        # Only the svd method's bound comes from absolute weights; the others computed it in
        # scaled units (or estimated it). The report is of the cores, then of the train.
        scaled = not result.method.startswith("svd")
        report = result.report(self, new_cores, norm=norm, scaled=scaled).scaled(self._exponent)
        exponent = self._exponent + result.exponent
        return self._swept(self._with_cores(new_cores, result.centre, report, exponent), truncation)

    def _compressed(self, truncation: Truncation, method: str, options: dict) -> Any:
        """``compress_cores`` of this train's cores; the svd sweep hands over to the rescaled
        one where the cores cannot hold the norm on the way (overflow, underflow, or squared
        weights leaving the range), so no method has to be picked for the size."""
        fused = self._fused()
        if method != "svd":
            return compress_cores(fused, self._centre, truncation, method=method, **options)
        try:
            with backend.quiet():
                result = compress_cores(fused, self._centre, truncation, method="svd", **options)
            if not self._lost(result.cores[0]):
                return result
        except ValueError:  # the sweep met non-finite numbers
            pass
        return compress_cores(fused, self._centre, truncation, method="rescaled", **options)

    def log_norm(self) -> Any:
        """Natural log of the norm, exact also when the norm over- or underflows; see
        [log_norm][tnkit.contract.log_norm]. A float for NumPy trains, a 0-d array of the
        cores' library (with gradients) otherwise."""
        xp = self.xp
        if not backend.is_numpy(xp):
            c = self.canonicalize(len(self) - 1 if self._centre is None else self._centre)
            return centre_norm(c.cores[c._centre], c._exponent, log=True)
        return self._mantissa_log_norm() + self._exponent * _LN2

    def _mantissa_log_norm(self) -> float:
        """log of the norm of the cores alone (without the scale exponent), as a float."""
        pack = self._kernel_pack()
        if _kernels.applies(pack):
            return _kernels.log_norm(pack)
        return canonical.log_norm(self._fused())

    # ------------------------------------------------------------------ measurements

    def singular_values(self, bond: int) -> np.ndarray:
        """Schmidt values across ``bond`` (cut after site ``bond``), descending, as a NumPy
        float64 array (``inf``/0 where the scale leaves float64); see
        [singular_values][tnkit.measure.singular_values]."""
        values, exponent = self._schmidt(bond)
        if not exponent:
            return values
        with np.errstate(over="ignore", under="ignore"):
            return np.ldexp(values, exponent)

    def _schmidt(self, bond: int) -> tuple[np.ndarray, int]:
        """Schmidt values across ``bond`` as ``(values, exponent)``: they are values·2**exponent."""
        bond = check_bond(bond, len(self))
        # A centre at k or k+1 both expose the bond; take the one closer to the known centre.
        target = bond + 1 if self._centre is not None and self._centre > bond else bond
        c = self.canonicalize(target)
        sizes = [math.prod(site_shape) for site_shape in self._site_shapes]
        length = min(
            self.bond_dims[bond], math.prod(sizes[: bond + 1]), math.prod(sizes[bond + 1 :])
        )
        values = spectra.schmidt_values(c._fused()[target], left_bond=target != bond, length=length)
        return values, c._exponent

    def entropy(self, bond: int, alpha: float = 1) -> float:
        """Entanglement entropy across ``bond`` (natural log; ``alpha`` ≠ 1: Rényi); see
        [entropy][tnkit.measure.entropy]."""
        bond = check_bond(bond, len(self))
        return spectra.entropy_of(self._schmidt(bond)[0], check_alpha(alpha))

    def entropies(self, alpha: float = 1) -> np.ndarray:
        """Entropies of all ``len - 1`` bonds in one sweep; see
        [entropies][tnkit.measure.entropies]."""
        alpha = check_alpha(alpha)
        return spectra.bond_entropies(self.canonicalize(0)._fused(), alpha)

    # ------------------------------------------------------------------ arithmetic

    def __add__(self: TT, other: Any) -> TT:
        """Direct sum of cores (bond dims add, no centre); real + complex is complex, as in
        NumPy; different precisions are refused."""
        check_compatible(self, other, "add")
        if self.dtype != other.dtype:
            if backend.eps(self.dtype) != backend.eps(other.dtype):
                raise TypeError(
                    f"add: dtypes differ in precision: {backend.dtype_name(self.dtype)} and "
                    f"{backend.dtype_name(other.dtype)}; convert one of them first"
                )
            self, other = common_dtype(self, other)
        # One scale for both: the smaller one's first core takes the difference (exact
        # unless it falls below the dtype's range, where it is below rounding of the sum).
        exponent = max(self._exponent, other._exponent)
        a, b = self._fused(), other._fused()
        if self._exponent != exponent:
            a = (times_pow2(a[0], self._exponent - exponent), *a[1:])
        if other._exponent != exponent:
            b = (times_pow2(b[0], other._exponent - exponent), *b[1:])
        cores = arithmetic.direct_sum(a, b)
        return self._with_cores(self._unfused(cores), None, None, exponent)

    def __sub__(self: TT, other: Any) -> TT:
        check_compatible(self, other, "sub")
        return self + (-other)

    def __mul__(self: TT, factor: Any) -> TT:
        """``factor · train`` (one core is scaled, and the scale exponent where the core
        cannot hold the factor; the centre is kept). A complex factor makes a real train
        complex, as NumPy does."""
        site = 0 if self._centre is None else self._centre
        cores, shift = arithmetic.scaled(self.cores, site, factor)
        return self._with_cores(cores, self._centre, None, self._exponent + shift)

    __rmul__ = __mul__

    def __truediv__(self: TT, factor: Any) -> TT:
        if isinstance(factor, (int, float, complex, np.number)) and factor == 0:
            raise ZeroDivisionError("division of a train by zero")
        return self * (1.0 / factor)

    def __neg__(self: TT) -> TT:
        return self * -1.0

    def conj(self: TT) -> TT:
        """Complex conjugate (every core conjugated; the centre is kept)."""
        return self._with_cores(arithmetic.conjugated(self.cores), self._centre, None)

    # ------------------------------------------------------------------ helpers

    def _check_site(self, site: Any, name: str) -> int:
        if not is_int(site):
            raise TypeError(f"{name}: expected an int site index, got {site!r}")
        site = int(site)
        if not -len(self) <= site < len(self):
            raise ValueError(f"{name}: site {site} out of range for a train of length {len(self)}")
        return site % len(self)


# ---------------------------------------------------------------------- validation


def _restore(cls: type, cores: tuple, centre: Any, report: Any, exponent: int, meta: dict) -> Any:
    return cls._trusted(cores, centre, report, exponent, **meta)


def check_compatible(a: Any, b: Any, what: str) -> None:
    """Same class and same physical dims, else ValueError/TypeError naming the dims."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, TensorTrain):
            raise TypeError(f"{what}: {name} must be an MPS or MPO, got {type(t).__name__}")
    if type(a) is not type(b):
        raise ValueError(
            f"{what}: cannot combine an {type(a).__name__} with an {type(b).__name__} "
            f"(phys_dims {a.phys_dims} and {b.phys_dims})"
        )
    if a.phys_dims != b.phys_dims:
        raise ValueError(f"{what}: phys_dims differ: {a.phys_dims} and {b.phys_dims}")
    backend.namespace(a._first_array(), b._first_array(), name=what)
