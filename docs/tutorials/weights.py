"""Error against parameters for a trained weight matrix: MPO at several rtol / max_bond, and a
truncated SVD with the same parameter count.

Run by docs/hooks.py at every docs build; writes weights.md and weights.png into the folder
given as the first argument (the current folder by default). Needs scikit-learn.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import tnkit as tn

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")

# A 64 -> 256 -> 10 classifier on the 8x8 digits that ship with scikit-learn (no download).
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.3, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    net = MLPClassifier((256,), max_iter=150, random_state=0).fit(X_train, y_train)
W = net.coefs_[0].T  # (256, 64): rows are outputs, as tnkit's MPO.to_matrix()
out_dims, in_dims = (8, 4, 8), (4, 4, 4)  # 256 = 8*4*8 rows, 64 = 4*4*4 columns
W_norm = np.linalg.norm(W)
U, sigma, Vt = np.linalg.svd(W, full_matrices=False)
dense_accuracy = net.score(X_test, y_test)


def accuracy_with(first_layer: np.ndarray) -> float:
    """Test accuracy with the first weight replaced (biases and second layer unchanged)."""
    original = net.coefs_[0]
    net.coefs_[0] = first_layer.T
    try:
        return net.score(X_test, y_test)
    finally:
        net.coefs_[0] = original


def svd_at(params: int) -> tuple[int, float, np.ndarray]:
    """The best rank-r approximation with r (m + n) <= params: rank, relative error, matrix."""
    rank = min(params // sum(W.shape), len(sigma))
    error = float(np.sqrt(np.sum(sigma[rank:] ** 2)) / W_norm)
    return rank, error, (U[:, :rank] * sigma[:rank]) @ Vt[:rank]


rows, points = [], []
settings = [{"rtol": r} for r in (0.6, 0.5, 0.4, 0.3, 0.2, 0.1)]
settings += [{"max_bond": b} for b in (1, 2, 4, 8, 16, 24)]
for kwargs in settings:
    o = tn.MPO.from_matrix(W, out_dims, in_dims, **kwargs)
    approx = o.to_matrix()
    measured = np.linalg.norm(approx - W) / W_norm
    rank, svd_error, svd_approx = svd_at(o.num_params)
    key, value = next(iter(kwargs.items()))
    points.append((key, o.num_params, measured, o.report.rel_error_bound, svd_error))
    rows.append(
        f"| `{key}={value}` | {o.bond_dims} | {o.num_params:,} | {o.report.compression_ratio:.1f}× "
        f"| {o.report.rel_error_bound:.3f} | {measured:.3f} | {100 * accuracy_with(approx):.1f} "
        f"| {rank} | {svd_error:.3f} | {100 * accuracy_with(svd_approx):.1f} |"
    )

fair = [p for p in points if sum(W.shape) <= p[1] < W.size]
lines = [
    f"Measured at this build. The weight: `MLPClassifier((256,))` trained on {len(X_train)} digits "
    f"({100 * dense_accuracy:.1f} % test accuracy on {len(X_test)}), first layer, "
    f"{W.shape[0]} × {W.shape[1]} = {W.size:,} weights, "
    f"as an MPO with out dims {out_dims} and in dims {in_dims}.",
    "",
    "| call | bond dims | params | ratio | reported bound | measured error | test acc. % "
    "| SVD rank, same params | SVD error | SVD test acc. % |",
    "|---|---|---|---|---|---|---|---|---|---|",
    *rows,
    "",
    f"The MPO has more parameters than the dense weight at "
    f"{sum(p[1] > W.size for p in points)} of {len(points)} settings. Where it has fewer and the "
    f"same budget affords an SVD of rank ≥ 1, the truncated SVD has the smaller error at "
    f"{sum(p[4] < p[2] for p in fair)} of {len(fair)} settings.",
    "",
]

try:
    import matplotlib.pyplot as plt
except ImportError:
    lines += ['!!! note "No plot"', "    matplotlib is missing where the docs were built.", ""]
else:
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ranks = np.arange(1, len(sigma) + 1)
    ax.step(
        ranks * sum(W.shape),
        [np.sqrt(np.sum(sigma[r:] ** 2)) / W_norm for r in ranks],
        where="post",
        color="grey",
        label="truncated SVD, rank r: r (m + n) params",
    )
    for key, marker in (("rtol", "o"), ("max_bond", "s")):
        pts = np.array([p[1:4] for p in points if p[0] == key])
        ax.plot(pts[:, 0], pts[:, 1], marker, ms=7, mfc="none", label=f"MPO, {key}: measured")
        ax.plot(pts[:, 0], pts[:, 2], "k+", ms=7)
    ax.plot([], [], "k+", label="MPO: reported bound")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("relative Frobenius error")
    ax.set_ylim(0, 1.02)
    ax.axvline(W.size, color="grey", ls=":", lw=0.8)
    ax.legend(fontsize=8)
    fig.savefig(out / "weights.png", dpi=110, bbox_inches="tight")
    lines += ["![Relative error against parameters, MPO and SVD](generated/weights.png)", ""]

(out / "weights.md").write_text("\n".join(lines), encoding="utf-8")
