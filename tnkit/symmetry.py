"""Abelian charges of local bases (U(1) and Z_n components), the basis labels and named
charges of the standard site types, operator charges, and the sector of a product state.

NumPy host bookkeeping only: no operator tables, no trains, no block-sparse arrays here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._checks import MAX_SITES, is_int

__all__ = [
    "SITE_BASES",
    "Charges",
    "basis_states",
    "conserved_charges",
    "sector",
    "site_charges",
]

# The basis of every site type, in order: basis state k has label SITE_BASES[site][k].
SITE_BASES: dict[str, tuple[str, ...]] = {
    "spin-half": ("up", "dn"),
    "spin-one": ("+1", "0", "-1"),
    "fermion": ("0", "1"),
    "electron": ("0", "up", "dn", "updn"),
}
_ALIASES: dict[str, dict[str, int]] = {"electron": {"ud": 3}}

# Named charges of the site types: (component name, charge of each basis state, modulus:
# 0 for U(1), n for Z_n). Spins count 2·Sz, so every charge is an integer and S+ adds 2.
_NAMED: dict[str, dict[str, tuple[str, tuple[int, ...], int]]] = {
    "spin-half": {"Sz": ("2Sz", (1, -1), 0), "parity": ("parity", (0, 1), 2)},
    "spin-one": {"Sz": ("2Sz", (2, 0, -2), 0)},
    "fermion": {"N": ("N", (0, 1), 0), "parity": ("parity", (0, 1), 2)},
    "electron": {
        "N": ("N", (0, 1, 1, 2), 0),
        "Sz": ("2Sz", (0, 1, -1, 0), 0),
        "parity": ("parity", (0, 1, 1, 0), 2),
    },
}


class Charges:
    """The Abelian charges of a local basis: per basis state, one integer per component of
    the symmetry group, each component U(1) (modulus 0) or Z_n (modulus n ≥ 2).

    Immutable and hashable. Z_n charges are stored reduced to ``0 … n-1``. An operator O
    has charge q when every nonzero entry ``O[out, in]`` connects states with
    ``Q(out) − Q(in) = q`` (mod n for Z_n components): see [of][tnkit.symmetry.Charges.of].

    Args:
        values: integer charges, shape ``(d,)`` (one component) or ``(d, n)``.
        moduli: per component 0 (U(1)) or n ≥ 2 (Z_n); an int applies to every component;
            None means U(1) throughout.
        names: per component a name (default ``"q"``, or ``"q0", "q1", …``).

    Example:
        >>> import numpy as np
        >>> from tnkit.symmetry import Charges
        >>> spin = Charges([1, -1], names="2Sz")           # spin-half, 2·Sz
        >>> spin.of(np.array([[0.0, 1.0], [0.0, 0.0]]))    # S+ raises 2Sz by 2
        (2,)
        >>> clock = Charges([0, 1, 2], moduli=3)            # a Z_3 site
        >>> clock.of(np.eye(3, k=-1) + np.eye(3, k=2))      # the shift |k> -> |k+1 mod 3>
        (1,)
    """

    __slots__ = ("_values", "_moduli", "_names")

    def __init__(self, values: Any, moduli: Any = None, names: Any = None) -> None:
        array = np.asarray(values)
        if array.dtype == object or array.dtype.kind not in "iu" or array.size == 0:
            raise TypeError(f"values: expected a non-empty array of ints, got {values!r}")
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise ValueError(f"values: expected shape (d,) or (d, n), got {array.shape}")
        n = array.shape[1]
        moduli = _check_moduli(moduli, n)
        names = _check_names(names, n)
        reduced = np.array(array, dtype=np.int64)
        for c, modulus in enumerate(moduli):
            if modulus:
                reduced[:, c] %= modulus
        reduced.flags.writeable = False
        object.__setattr__(self, "_values", reduced)
        object.__setattr__(self, "_moduli", moduli)
        object.__setattr__(self, "_names", names)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Charges is immutable")

    def __reduce__(self) -> tuple:
        return (Charges, (self._values, self._moduli, self._names))

    @property
    def values(self) -> np.ndarray:
        """The charges, a read-only int64 array ``(d, n)``: row k is basis state k."""
        return self._values

    @property
    def moduli(self) -> tuple[int, ...]:
        """Per component 0 (U(1)) or n (Z_n)."""
        return self._moduli

    @property
    def names(self) -> tuple[str, ...]:
        """Per component its name (``"2Sz"``, ``"N"``, ``"parity"``, …)."""
        return self._names

    @property
    def groups(self) -> tuple[str, ...]:
        """Per component ``"U(1)"`` or ``"Z<n>"``."""
        return tuple(f"Z{m}" if m else "U(1)" for m in self._moduli)

    @property
    def dim(self) -> int:
        """The local dimension d."""
        return int(self._values.shape[0])

    @property
    def zero(self) -> tuple[int, ...]:
        """The neutral charge."""
        return (0,) * len(self._moduli)

    def reduce(self, charges: Any) -> np.ndarray:
        """``charges`` (last axis: the components) with Z_n components taken mod n."""
        out = np.array(charges, dtype=np.int64)
        for c, modulus in enumerate(self._moduli):
            if modulus:
                out[..., c] %= modulus
        return out

    def same_group(self, other: Charges) -> bool:
        """True when ``other`` has the same components (names and moduli)."""
        return (self._moduli, self._names) == (other._moduli, other._names)

    def of(self, matrix: Any, name: str = "op") -> tuple[int, ...] | None:
        """The charge of a ``(d, d)`` operator, None for the zero matrix.

        Exact: an entry is nonzero unless it is exactly 0. A matrix whose nonzero entries
        change the charge by different amounts (``Sx`` under 2Sz: +2 and −2) has no charge:
        ValueError naming ``name``.

        Example:
            >>> import numpy as np
            >>> q = Charges([0, 1, 1, 2], names="N")     # the electron's particle number
            >>> q.of(np.diag([1.0, -1, -1, 1])), q.of(np.zeros((4, 4)))
            ((0,), None)
        """
        matrix = np.asarray(matrix)
        if matrix.shape != (self.dim, self.dim):
            raise ValueError(f"{name}: shape {matrix.shape}, needs ({self.dim}, {self.dim})")
        rows, cols = np.nonzero(matrix)
        if not rows.size:
            return None
        steps = self.reduce(self._values[rows] - self._values[cols])
        first = steps[0]
        if not np.all(steps == first):
            found = sorted({tuple(int(x) for x in step) for step in steps})
            raise ValueError(
                f"{name}: mixes charge changes {found} of {self._names}; it breaks the "
                "symmetry (write it as a sum of operators of one charge each, such as "
                "S+ and S- instead of Sx)"
            )
        return tuple(int(x) for x in first)

    def to_json(self) -> dict:
        """The charges as JSON data (what files store), read back by ``from_json``.

        Example:
            >>> q = site_charges("spin-half", "Sz")
            >>> q.to_json(), Charges.from_json(q.to_json()) == q
            ({'values': [[1], [-1]], 'moduli': [0], 'names': ['2Sz']}, True)
        """
        return {
            "values": self._values.tolist(),
            "moduli": list(self._moduli),
            "names": list(self._names),
        }

    @classmethod
    def from_json(cls, data: Any) -> Charges:
        """The charges ``to_json`` wrote; TypeError, KeyError or ValueError for other data."""
        return cls(data["values"], data["moduli"], data["names"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Charges):
            return NotImplemented
        return self.same_group(other) and np.array_equal(self._values, other._values)

    def __hash__(self) -> int:
        return hash((self._moduli, self._names, self._values.tobytes()))

    def __repr__(self) -> str:
        values = self._values.tolist() if len(self._moduli) > 1 else self._values[:, 0].tolist()
        return f"Charges({values}, moduli={self._moduli}, names={self._names})"


def _check_moduli(moduli: Any, n: int) -> tuple[int, ...]:
    if moduli is None:
        return (0,) * n
    items = [moduli] * n if is_int(moduli) else moduli
    try:
        items = list(items)
    except TypeError:
        items = [None]
    if len(items) != n or not all(is_int(m) and (m == 0 or m >= 2) for m in items):
        raise ValueError(
            f"moduli: expected {n} ints, each 0 (U(1)) or n >= 2 (Z_n), got {moduli!r}"
        )
    return tuple(int(m) for m in items)


def _check_names(names: Any, n: int) -> tuple[str, ...]:
    if names is None:
        return ("q",) if n == 1 else tuple(f"q{c}" for c in range(n))
    items = (names,) if isinstance(names, str) else names
    try:
        items = tuple(items)
    except TypeError:
        items = (None,)
    if len(items) != n or not all(isinstance(x, str) and x for x in items):
        raise ValueError(f"names: expected {n} non-empty strings, got {names!r}")
    if len(set(items)) != n:
        raise ValueError(f"names: must differ, got {names!r}")
    return items


def site_charges(site: str, conserve: Any) -> Charges:
    """The charges of site type ``site`` for ``conserve``: a name, a tuple of names, or a
    [Charges][tnkit.symmetry.Charges] of matching dimension (returned as it is).

    Names per site type (spins count 2·Sz so that charges are integers):
    ``"spin-half"``: ``"Sz"`` (U(1), ↑ = 1, ↓ = −1), ``"parity"`` (Z_2 of the number of ↓:
    the eigenvalue of ∏σz is (−1)^charge); ``"spin-one"``: ``"Sz"`` (2, 0, −2);
    ``"fermion"``: ``"N"`` (U(1)), ``"parity"`` (Z_2); ``"electron"``: ``"N"``, ``"Sz"``
    (n↑ − n↓), ``"parity"`` (Z_2 of N), and tuples such as ``("N", "Sz")``.

    Example:
        >>> from tnkit.symmetry import site_charges
        >>> q = site_charges("electron", ("N", "Sz"))
        >>> q.names, q.values.tolist()
        (('N', '2Sz'), [[0, 0], [1, 1], [1, -1], [2, 0]])
    """
    if site not in _NAMED:
        raise ValueError(f"site: expected one of {tuple(_NAMED)}, got {site!r}")
    dim = len(SITE_BASES[site])
    if isinstance(conserve, Charges):
        if conserve.dim != dim:
            raise ValueError(f"conserve: {conserve!r} has dimension {conserve.dim}, {site!r} {dim}")
        return conserve
    named = _NAMED[site]
    wanted = (conserve,) if isinstance(conserve, str) else conserve
    try:
        wanted = tuple(wanted)
    except TypeError:
        wanted = (None,)
    if not wanted or any(name not in named for name in wanted) or len(set(wanted)) < len(wanted):
        choices = ", ".join(repr(name) for name in named)
        raise ValueError(
            f"conserve: for site {site!r} expected one of {choices}, a tuple of distinct "
            f"ones, or a Charges; got {conserve!r}"
        )
    parts = [named[name] for name in wanted]
    return Charges(
        np.array([values for _, values, _ in parts]).T,
        moduli=[modulus for _, _, modulus in parts],
        names=[label for label, _, _ in parts],
    )


def conserved_charges(
    conserve: Any, site_type: str | None, dims: Sequence[int]
) -> tuple[Charges, ...] | None:
    """Per site the charges that ``conserve`` declares (None when it is None).

    For a site type, ``conserve`` is as in [site_charges][tnkit.symmetry.site_charges]; for
    a list of dims it is one [Charges][tnkit.symmetry.Charges] for every site (equal dims)
    or a sequence of one per site (same components everywhere).

    Example:
        >>> from tnkit.symmetry import Charges, conserved_charges
        >>> per_site = conserved_charges(Charges([0, 1, 2], moduli=3), None, [3, 3])
        >>> len(per_site), per_site[0].groups
        (2, ('Z3',))
    """
    if conserve is None:
        return None
    if site_type is not None:
        return (site_charges(site_type, conserve),) * len(dims)
    if isinstance(conserve, Charges):
        per_site = [conserve] * len(dims)
    elif isinstance(conserve, (str, bytes)) or not isinstance(conserve, Sequence):
        raise ValueError(
            "conserve: sites given as a list of dims need a Charges (or one per site), "
            f"not {conserve!r}; names such as 'Sz' belong to a site type"
        )
    else:
        per_site = list(conserve)
    if len(per_site) != len(dims) or not all(isinstance(q, Charges) for q in per_site):
        raise ValueError(f"conserve: expected a Charges or {len(dims)} of them, got {conserve!r}")
    for k, (q, d) in enumerate(zip(per_site, dims, strict=True)):
        if q.dim != d:
            raise ValueError(f"conserve: site {k} has dimension {d}, its Charges {q.dim}")
        if not q.same_group(per_site[0]):
            raise ValueError(
                f"conserve: site {k} has components {q.names}/{q.groups}, site 0 "
                f"{per_site[0].names}/{per_site[0].groups}; every site needs the same ones"
            )
    return tuple(per_site)


def basis_states(states: Any, site: Any = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(basis index per site, local dim per site) of a product state.

    ``states`` is a sequence of basis indices or labels (``SITE_BASES``: ``"up"``/``"dn"``
    for spin-half, ``"+1"``/``"0"``/``"-1"`` for spin-one, ``"0"``/``"1"`` for fermions,
    ``"0"``/``"up"``/``"dn"``/``"updn"`` (or ``"ud"``) for electrons). ``site`` is a site
    type (None: ``"spin-half"``) or a list of local dims, one per state (indices only).

    Example:
        >>> basis_states(["up", "dn", 0])
        ((0, 1, 0), (2, 2, 2))
        >>> basis_states(["0", "ud"], site="electron")
        ((0, 3), (4, 4))
    """
    if isinstance(states, (str, bytes)) or not isinstance(states, Sequence | np.ndarray):
        raise TypeError(f"states: expected a sequence of basis indices or labels, got {states!r}")
    states = list(states)
    if not 1 <= len(states) <= MAX_SITES:
        raise ValueError(f"states: need 1 to {MAX_SITES} sites, got {len(states)}")
    site = "spin-half" if site is None else site
    if isinstance(site, str):
        if site not in SITE_BASES:
            raise ValueError(
                f"site: expected one of {tuple(SITE_BASES)} or a list of dims, got {site!r}"
            )
        labels = {label: k for k, label in enumerate(SITE_BASES[site])}
        labels.update(_ALIASES.get(site, {}))
        dims = (len(SITE_BASES[site]),) * len(states)
    else:
        labels = {}
        try:
            dims = tuple(site)
        except TypeError:
            dims = (None,)
        if not all(is_int(d) and d >= 1 for d in dims) or len(dims) != len(states):
            raise ValueError(f"site: need {len(states)} positive local dims, got {site!r}")
        dims = tuple(int(d) for d in dims)
    indices = []
    for k, (state, d) in enumerate(zip(states, dims, strict=True)):
        if isinstance(state, str):
            if state not in labels:
                valid = ", ".join(repr(label) for label in labels) or "none (use indices)"
                raise ValueError(f"states: unknown label {state!r} at site {k}; valid: {valid}")
            indices.append(labels[state])
        elif is_int(state):
            if not 0 <= state < d:
                raise ValueError(f"states: index {state} at site {k} is out of range 0..{d - 1}")
            indices.append(int(state))
        else:
            raise TypeError(f"states: expected a basis index or label at site {k}, got {state!r}")
    return tuple(indices), dims


def sector(states: Any, site: Any = None, *, conserve: Any) -> tuple[int, ...]:
    """The total charge (sector) of a product of basis states, one entry per component.

    ``states`` and ``site`` as in [basis_states][tnkit.symmetry.basis_states];
    ``conserve`` as in [conserved_charges][tnkit.symmetry.conserved_charges]. Spins count
    2·Sz; Z_n components are reduced mod n.

    Example:
        >>> from tnkit.symmetry import sector
        >>> sector(["up", "dn", "up"], conserve="Sz")          # 2·Sz = 1
        (1,)
        >>> sector(["up", "dn", "updn", "0"], "electron", conserve=("N", "Sz"))
        (4, 0)
    """
    indices, dims = basis_states(states, site)
    site_type = "spin-half" if site is None else site if isinstance(site, str) else None
    per_site = conserved_charges(conserve, site_type, dims)
    if per_site is None:
        raise ValueError("conserve: a sector needs the charges, got None")
    rows = np.array([q.values[k] for q, k in zip(per_site, indices, strict=True)])
    return tuple(int(x) for x in per_site[0].reduce(rows.sum(axis=0)))
