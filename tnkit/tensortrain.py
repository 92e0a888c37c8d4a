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
from . import _kernels, arithmetic, canonical, spectra
from ._checks import check_alpha, check_array, check_bond, check_entries, is_int
from .compress import COMPRESS_METHODS, EXACT_METHODS, compress_cores
from .truncation import Truncation, TruncationReport

_DENSE_LIMIT = 2**31
TT = TypeVar("TT", bound="TensorTrain")


class TensorTrain:
    """A chain of cores ``(Dl, *phys, Dr)`` with boundary bonds of 1; never modified in place.

    Use the subclasses [MPS][tnkit.MPS] (one physical leg) and [MPO][tnkit.MPO] (two).
    """

    _n_phys_legs: ClassVar[int] = 1
    _layout: ClassVar[str] = "(Dl, d, Dr)"
    __slots__ = ("_cores", "_centre", "_report", "_packed")

    def __init__(self, cores: Any) -> None:
        if type(self) is TensorTrain:
            raise TypeError("TensorTrain is abstract: build an MPS or an MPO")
        cores = _validate_cores(cores, self._n_phys_legs, type(self).__name__, self._layout)
        self._init(cores, None, None)

    # ------------------------------------------------------------------ construction helpers

    def _init(self, cores: tuple, centre: int | None, report: TruncationReport | None) -> None:
        object.__setattr__(self, "_cores", tuple(_read_only(c) for c in cores))
        object.__setattr__(self, "_centre", centre)
        object.__setattr__(self, "_report", report)
        # Cores packed for the Numba kernels, built on first use: every new train starts
        # empty (_with_cores and _trusted come through here), so no two trains share one.
        object.__setattr__(self, "_packed", None)

    def _with_cores(self, cores: tuple, centre: int | None, report: TruncationReport | None):
        """A new train of the same class and metadata (trusted cores: no validation)."""
        new = object.__new__(type(self))
        new._init(cores, centre, report)
        for name in type(self).__slots__:
            if name not in TensorTrain.__slots__:
                object.__setattr__(new, name, getattr(self, name))
        return new

    @classmethod
    def _trusted(cls, cores: tuple, centre: int | None = None, report=None, **meta):
        """A train from cores known to be valid; subclass metadata defaults to None."""
        new = object.__new__(cls)
        new._init(cores, centre, report)
        for name in cls.__slots__:
            object.__setattr__(new, name, meta.pop(name, None))
        if meta:
            raise TypeError(f"unknown metadata {sorted(meta)} for {cls.__name__}")
        return new

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; methods return new objects")

    # ------------------------------------------------------------------ properties

    @property
    def cores(self) -> tuple:
        """The cores, a tuple of arrays (read-only views for NumPy)."""
        return self._cores

    @property
    def centre(self) -> int | None:
        """Orthogonality centre, or None when the train is not known to be canonical."""
        return self._centre

    @property
    def report(self) -> TruncationReport | None:
        """What the truncating call that made this train cut.

        None for a train built from cores (or by ``random``/``identity``). Canonicalising
        keeps the report, since it does not change the tensor.
        """
        return self._report

    def __len__(self) -> int:
        return len(self._cores)

    @property
    def bond_dims(self) -> tuple[int, ...]:
        """The ``len - 1`` inner bonds; ``bond_dims[k]`` joins sites k and k+1."""
        return tuple(int(c.shape[-1]) for c in self._cores[:-1])

    @property
    def num_params(self) -> int:
        """Number of stored entries, Σ_k D_{k-1}·(physical dims)·D_k."""
        return sum(math.prod(c.shape) for c in self._cores)

    @property
    def dtype(self) -> Any:
        """The dtype of the cores (one dtype for the whole train)."""
        return self._cores[0].dtype

    @property
    def xp(self) -> Any:
        """The array namespace of the cores."""
        return aac.array_namespace(self._cores[0])

    @property
    def _site_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(int(s) for s in c.shape[1:-1]) for c in self._cores)

    def _fused(self) -> tuple:
        """Cores as ``(Dl, p, Dr)`` with the physical legs fused (views)."""
        xp = self.xp
        return tuple(
            xp.reshape(c, (c.shape[0], math.prod(c.shape[1:-1]), c.shape[-1])) for c in self._cores
        )

    def _unfused(self, cores3: tuple, site_shapes=None) -> tuple:
        xp = self.xp
        shapes = self._site_shapes if site_shapes is None else site_shapes
        return tuple(
            xp.reshape(c, (c.shape[0], *shape, c.shape[-1]))
            for c, shape in zip(cores3, shapes, strict=True)
        )

    def __repr__(self) -> str:
        lib = type(self._cores[0]).__module__.split(".")[0]
        parts = [
            f"L={len(self)}",
            f"{self._dims_repr()}",
            f"bond_dims={list(self.bond_dims)}",
            f"dtype={backend.dtype_name(self.dtype)}",
            f"backend={lib}",
            f"params={self.num_params}",
            f"centre={self.centre}",
        ]
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
        xp = self.xp
        cores = self._fused()
        result = cores[0]
        for core in cores[1:]:
            rows = result.shape[0] * math.prod(result.shape[1:-1])
            merged = xp.reshape(result, (rows, result.shape[-1])) @ xp.reshape(
                core, (core.shape[0], -1)
            )
            result = xp.reshape(merged, (*result.shape[:-1], core.shape[1], core.shape[2]))
        return result

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
            if _kernels.applies(pack):
                cores, packed = _kernels.move_centre(pack, self._centre, centre)
            else:
                cores = canonical.move_centre(self._fused(), self._centre, centre)
        except np.linalg.LinAlgError as exc:  # the kernel's QR met an overflowed core
            raise self._out_of_range() from exc
        # The centre core carries the norm, and an overflow anywhere ends up in it (the other
        # cores are isometries): checking it alone is enough, and costs one core.
        core = cores[centre]
        if not backend.is_tracer(core) and not bool(self.xp.all(self.xp.isfinite(core))):
            raise self._out_of_range()
        if not backend.is_tracer(core) and not bool(self.xp.any(core != 0)) and self._underflowed():
            raise self._out_of_range()
        new = self._with_cores(self._unfused(cores), centre, self._report)
        object.__setattr__(new, "_packed", packed)
        return new

    def _underflowed(self) -> bool:
        """Whether a zero centre core hides a train that is not zero (its norm underflowed)."""
        return math.isfinite(self.log_norm())

    def _out_of_range(self) -> ValueError:
        return ValueError(
            f"centre: the canonical form cannot hold this train's norm in "
            f"{backend.dtype_name(self.dtype)} (log_norm {self.log_norm():.6g}); rescale it first, "
            "or use log_norm() and compress(method='rescaled')"
        )

    def is_canonical(self, centre: int, *, tol: float | None = None) -> bool:
        """Whether every core left (right) of ``centre`` is a left (right) isometry.

        ``tol`` bounds the entries of ``Q^H Q - I`` (default: 1000·eps of the dtype).
        """
        centre = self._check_site(centre, "centre")
        if tol is None:
            tol = 1e3 * backend.eps(self.dtype)
        elif isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)):
            raise TypeError(f"tol: expected a float, got {tol!r}")
        elif not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"tol: must be a finite number >= 0, got {tol}")
        return canonical.is_canonical(self._fused(), centre, float(tol))

    def norm(self) -> float:
        """Frobenius norm ‖x‖ (through the canonical form; the train is not changed).

        Example:
            >>> import numpy as np, tnkit as tn
            >>> x = np.arange(8.0)
            >>> bool(np.isclose(tn.tt_svd(x, (2, 2, 2)).norm(), np.linalg.norm(x)))
            True
        """
        if self._centre is None and _kernels.applies(self._kernel_pack()):
            return _kernels.norm(self._kernel_pack())
        centre = len(self) - 1 if self._centre is None else self._centre
        cores = canonical.move_centre(self._fused(), self._centre, centre)
        return backend.frob_sq(cores[centre]) ** 0.5

    def _kernel_pack(self) -> _kernels.Packed:
        """The cores as kernel input, built once per train (trains are immutable)."""
        packed = getattr(self, "_packed", None)
        if packed is None:
            packed = _kernels.Packed(self._cores)
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
        result = compress_cores(
            self._fused(),
            self._centre,
            truncation,
            method=method,
            svd_method=svd_method,
            tol=tol,
            site_shapes=self._site_shapes,
        )
        new_cores = self._unfused(result.cores)
        xp = self.xp
        if not all(backend.is_tracer(c) or bool(xp.all(xp.isfinite(c))) for c in new_cores):
            raise ValueError(
                f"method: {method!r} met numbers beyond the {backend.dtype_name(self.dtype)} "
                f"range (log_norm {self.log_norm():.6g}); "
                + ("use a wider dtype" if method == "rescaled" else "use method='rescaled'")
            )
        norm = result.norm
        if math.isnan(norm):  # exact methods: the result's norm (smaller bonds, same tensor)
            log_norm = self._with_cores(new_cores, None, None).log_norm()
            norm = math.exp(log_norm) if log_norm < 709 else math.inf
        # Only the svd method's bound comes from absolute weights; the others computed it in
        # scaled units (or estimated it).
        report = result.report(self, new_cores, norm=norm, scaled=method != "svd")
        return self._with_cores(new_cores, result.centre, report)

    def log_norm(self) -> float:
        """Natural log of the norm, exact also when the norm over- or underflows; see
        [log_norm][tnkit.contract.log_norm]."""
        pack = self._kernel_pack()
        if _kernels.applies(pack):
            return _kernels.log_norm(pack)
        return canonical.log_norm(self._fused())

    # ------------------------------------------------------------------ measurements

    def singular_values(self, bond: int) -> np.ndarray:
        """Schmidt values across ``bond`` (cut after site ``bond``), descending, as a NumPy
        float64 array; see [singular_values][tnkit.measure.singular_values]."""
        bond = check_bond(bond, len(self))
        # A centre at k or k+1 both expose the bond; take the one closer to the known centre.
        target = bond + 1 if self._centre is not None and self._centre > bond else bond
        cores = self.canonicalize(target)._fused()
        sizes = [math.prod(site_shape) for site_shape in self._site_shapes]
        length = min(
            self.bond_dims[bond], math.prod(sizes[: bond + 1]), math.prod(sizes[bond + 1 :])
        )
        return spectra.schmidt_values(cores[target], left_bond=target != bond, length=length)

    def entropy(self, bond: int, alpha: float = 1) -> float:
        """Entanglement entropy across ``bond`` (natural log; ``alpha`` ≠ 1: Rényi); see
        [entropy][tnkit.measure.entropy]."""
        bond = check_bond(bond, len(self))
        return spectra.entropy_of(self.singular_values(bond), check_alpha(alpha))

    def entropies(self, alpha: float = 1) -> np.ndarray:
        """Entropies of all ``len - 1`` bonds in one sweep; see
        [entropies][tnkit.measure.entropies]."""
        alpha = check_alpha(alpha)
        return spectra.bond_entropies(self.canonicalize(0)._fused(), alpha)

    # ------------------------------------------------------------------ arithmetic

    def __add__(self: TT, other: Any) -> TT:
        """Direct sum of cores: bond dims add, the result has no centre."""
        check_compatible(self, other, "add")
        if self.dtype != other.dtype:
            raise TypeError(
                f"add: dtypes differ: {backend.dtype_name(self.dtype)} and "
                f"{backend.dtype_name(other.dtype)}"
            )
        cores = arithmetic.direct_sum(self._fused(), other._fused())
        return self._with_cores(self._unfused(cores), None, None)

    def __sub__(self: TT, other: Any) -> TT:
        check_compatible(self, other, "sub")
        return self + (-other)

    def __mul__(self: TT, factor: Any) -> TT:
        """``factor · train`` (one core is scaled; the centre is kept)."""
        site = 0 if self._centre is None else self._centre
        return self._with_cores(arithmetic.scaled(self._cores, site, factor), self._centre, None)

    __rmul__ = __mul__

    def __truediv__(self: TT, factor: Any) -> TT:
        if isinstance(factor, (int, float, complex, np.number)) and factor == 0:
            raise ZeroDivisionError("division of a train by zero")
        return self * (1.0 / factor)

    def __neg__(self: TT) -> TT:
        return self * -1.0

    def conj(self: TT) -> TT:
        """Complex conjugate (every core conjugated; the centre is kept)."""
        return self._with_cores(arithmetic.conjugated(self._cores), self._centre, None)

    # ------------------------------------------------------------------ helpers

    def _check_site(self, site: Any, name: str) -> int:
        if not is_int(site):
            raise TypeError(f"{name}: expected an int site index, got {site!r}")
        site = int(site)
        if not -len(self) <= site < len(self):
            raise ValueError(f"{name}: site {site} out of range for a train of length {len(self)}")
        return site % len(self)


# ---------------------------------------------------------------------- validation


def common_dtype(o: Any, t: Any) -> tuple[Any, Any]:
    """Both trains in one dtype: a real train meeting a complex one of the same precision
    becomes complex; different precisions are refused (no silent upcast). The messages name
    ``t`` (the operand that meets the operator ``o``)."""
    if o.dtype == t.dtype:
        return o, t
    if backend.eps(o.dtype) != backend.eps(t.dtype):
        raise TypeError(
            f"t: dtype {backend.dtype_name(t.dtype)} and o's {backend.dtype_name(o.dtype)} "
            "differ in precision; convert one of them first"
        )
    xp = o.xp
    dtype = xp.result_type(o.dtype, t.dtype)
    cast = [
        x
        if x.dtype == dtype
        else x._with_cores(tuple(xp.astype(c, dtype) for c in x.cores), None, None)
        for x in (o, t)
    ]
    return cast[0], cast[1]


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
    backend.namespace(a.cores[0], b.cores[0], name=what)


def _read_only(core: Any) -> Any:
    if isinstance(core, np.ndarray) and core.flags.writeable:
        core = core.view()
        core.flags.writeable = False
    return core


def _validate_cores(cores: Any, n_phys: int, kind: str, layout: str) -> tuple:
    """Check ranks, dtypes, library, finiteness and bond matching; messages name the site."""
    if aac.is_array_api_obj(cores):
        raise TypeError(
            f"cores: expected a sequence of arrays, got a single {type(cores).__name__}"
        )
    try:
        cores = tuple(cores)
    except TypeError as exc:
        raise TypeError(
            f"cores: expected a sequence of arrays, got {type(cores).__name__}"
        ) from exc
    if not cores:
        raise ValueError("cores: need at least one core")
    ndim = n_phys + 2
    for k, core in enumerate(cores):
        check_array(core, f"cores[{k}]")
        if core.ndim != ndim:
            raise ValueError(
                f"cores[{k}]: {kind} cores have {ndim} dimensions {layout}, "
                f"got shape {tuple(core.shape)}"
            )
    backend.namespace(*cores, name="cores")
    devices = [backend.device(c) for c in cores]
    for k, dev in enumerate(devices):
        if dev != devices[0]:
            raise ValueError(f"cores[{k}]: on device {dev}, but cores[0] is on {devices[0]}")
    dtypes = {backend.dtype_name(c.dtype) for c in cores}
    if len(dtypes) > 1:
        raise TypeError(f"cores: mixed dtypes {sorted(dtypes)}; convert them to one dtype first")
    if cores[0].shape[0] != 1:
        raise ValueError(
            f"cores[0]: left boundary bond must be 1, got shape {tuple(cores[0].shape)}"
        )
    if cores[-1].shape[-1] != 1:
        raise ValueError(
            f"cores[{len(cores) - 1}]: right boundary bond must be 1, "
            f"got shape {tuple(cores[-1].shape)}"
        )
    for k in range(1, len(cores)):
        if cores[k - 1].shape[-1] != cores[k].shape[0]:
            raise ValueError(
                f"cores[{k}]: left bond {cores[k].shape[0]} does not match right bond "
                f"{cores[k - 1].shape[-1]} of cores[{k - 1}] "
                f"(shapes {tuple(cores[k - 1].shape)} and {tuple(cores[k].shape)})"
            )
    return cores


def random_cores(
    site_shapes: list[tuple[int, ...]],
    max_bond: int,
    *,
    seed: Any,
    dtype: Any,
    like: Any,
) -> tuple:
    """Gaussian cores with bonds min(max_bond, dims to either side) and E‖x‖² = 1."""
    Truncation(max_bond=max_bond)  # validates max_bond
    xp = np if like is None else backend.namespace(like, name="like")
    target = backend.resolve_dtype(np, dtype)
    rng = backend.rng(seed)
    sizes = [math.prod(s) for s in site_shapes]
    bonds = [1]
    for k in range(1, len(sizes)):
        left, right = math.prod(sizes[:k]), math.prod(sizes[k:])
        bonds.append(min(max_bond, left, right))
    bonds.append(1)
    check_entries(sum(bonds[k] * sizes[k] * bonds[k + 1] for k in range(len(sizes))))
    cores = []
    for k, shape in enumerate(site_shapes):
        full = (bonds[k], *shape, bonds[k + 1])
        scale = 1.0 / math.sqrt(bonds[k] * sizes[k])
        core = rng.standard_normal(full)
        if np.issubdtype(target, np.complexfloating):
            core = (core + 1j * rng.standard_normal(full)) / math.sqrt(2)
        cores.append(backend.from_numpy((scale * core).astype(target), like, xp))
    return tuple(cores)
