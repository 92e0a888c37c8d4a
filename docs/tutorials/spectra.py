"""Singular-value spectra per bond: a smooth function on a quantics grid against a random tensor.

Run by docs/hooks.py at every docs build; writes spectra.md and spectra.png into the folder
given as the first argument (the current folder by default).
"""

import sys
from pathlib import Path

import numpy as np

import tnkit as tn

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
L = 16  # 2^16 grid points; site k is the k-th binary digit of the grid index
t = np.arange(2**L) / 2**L
signals = {
    "sin(10 t): rank 2": np.sin(10.0 * t),
    "Runge 1/(1 + 400 (t - 1/2)^2)": 1.0 / (1.0 + 400.0 * (t - 0.5) ** 2),
    "e^(-t) sin(60 t^2) (chirp)": np.exp(-t) * np.sin(60.0 * t**2),
    "Gaussian random": np.random.default_rng(0).standard_normal(2**L),
}

rows, spectra = [], {}
for name, x in signals.items():
    m = tn.tt_svd(x, (2,) * L)  # no tolerance: exact up to numerically zero singular values
    norm = np.linalg.norm(x)
    # sigma per bond, relative to ||x||: their squares sum to 1 at every bond. Moving the
    # centre one site at a time makes the fifteen spectra cost one sweep.
    spectra[name] = []
    for k in range(L - 1):
        m = m.canonicalize(k)
        spectra[name].append(tn.measure.singular_values(m, k) / norm)
    c = tn.tt_svd(x, (2,) * L, rtol=1e-6)
    measured = np.linalg.norm(c.to_dense().reshape(-1) - x) / norm
    rows.append(
        f"| {name} | {max(m.bond_dims)} | {m.num_params:,} | {max(c.bond_dims)} | "
        f"{c.num_params:,} | {c.report.rel_error_bound:.1e} | {measured:.1e} |"
    )

lines = [
    f"Measured at this build: TT-SVD of 2^{L} = {2**L:,} samples as a (2,)*{L} tensor.",
    "",
    "| signal | max bond, exact | params, exact | max bond, rtol 1e-6 | params, rtol 1e-6 "
    "| reported bound | measured error |",
    "|---|---|---|---|---|---|---|",
    *rows,
    "",
]

try:
    import matplotlib.pyplot as plt
except ImportError:
    lines += ['!!! note "No plot"', "    matplotlib is missing where the docs were built.", ""]
else:
    fig, axes = plt.subplots(1, len(signals), figsize=(3.6 * len(signals), 3.4), sharey=True)
    for ax, (name, per_bond) in zip(axes, spectra.items(), strict=True):
        for k, s in enumerate(per_bond):
            s = s[s > 0]
            ax.plot(np.full(len(s), k), s, "_", ms=9, color="C0", alpha=0.6)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("bond k (cut after site k)")
        ax.axhline(1e-6, color="grey", ls=":", lw=0.8)
    axes[0].set_ylabel("σ / ‖x‖ (one mark per singular value)")
    fig.savefig(out / "spectra.png", dpi=110, bbox_inches="tight")
    lines += ["![Singular values at every bond, relative, log scale](generated/spectra.png)", ""]

(out / "spectra.md").write_text("\n".join(lines), encoding="utf-8")
