"""tnkit demo: compress classifier weights and image data into tensor trains, honestly.

Uses scikit-learn's bundled 8x8 digits (1797 images, 10 classes; nothing is downloaded) and
shows three things, each as a table over several truncation requests (rtol, max_bond):

1. MPO compression of a linear classifier's 10x64 weight matrix (``tn.MPO.from_matrix``).
2. MPO compression of a bigger weight: the 256x64 first layer of an RBF network whose
   "neurons" are 256 prototype images (features exp(-gamma |x - c|^2), logistic head).
3. An MPS of the test images themselves (``tn.tt_svd`` of the (row, col, image) tensor),
   classified after reconstruction by the uncompressed linear classifier.

Every row prints the bond dimensions, parameter count, compression ratio, the rigorous error
bound from ``.report``, the error measured against the dense original, and the test accuracy
obtained by running the classifier on the decompressed weights (or reconstructed images).
Each row checks measured <= bound (up to rounding); the script exits with status 1 otherwise.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import tnkit as tn

SEED = 0
N_PROTOTYPES = 256
GAMMA = 0.5  # RBF width, for pixels scaled to [0, 1]
ROUNDING = 1e-12  # "measured <= bound" holds up to rounding (DESIGN §1)

TOLERANCES = [None, 1e-3, 1e-2, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5]


# ---------------------------------------------------------------------- data and models


def load_data():
    """Digits scaled to [0, 1], split 80/20 with a fixed seed (stratified)."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.2, random_state=SEED, stratify=y)


def fit_linear(X, y):
    """Multinomial logistic regression on raw pixels: W (10, 64), b (10,)."""
    clf = LogisticRegression(max_iter=5000).fit(X, y)
    return clf.coef_, clf.intercept_


def linear_accuracy(W, b, X, y):
    return float(np.mean(np.argmax(X @ W.T + b, axis=1) == y))


def rbf_features(X, C):
    """exp(-gamma |x - c|^2) for every image x (rows of X) and prototype c (rows of C)."""
    sq = (X**2).sum(1)[:, None] - 2.0 * X @ C.T + (C**2).sum(1)[None, :]
    return np.exp(-GAMMA * sq)


def fit_rbf_net(X, y):
    """RBF network: 256 training images as first-layer weights C (256, 64), logistic head."""
    rng = np.random.default_rng(SEED)
    C = X[rng.choice(len(X), N_PROTOTYPES, replace=False)]
    head = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    head.fit(rbf_features(X, C), y)
    return C, head


def rbf_accuracy(C, head, X, y):
    return float(head.score(rbf_features(X, C), y))


# ---------------------------------------------------------------------- tables


def requests(max_bond_rows):
    """Truncation keyword sets: the tolerance sweep, then max_bond caps (with an rtol)."""
    rows = [{} if rtol is None else {"rtol": rtol} for rtol in TOLERANCES]
    return rows + [{"max_bond": mb, "rtol": rtol} for mb, rtol in max_bond_rows]


def describe(kwargs):
    if not kwargs:
        return "exact"
    return ", ".join(f"{k}={v:g}" for k, v in kwargs.items())


HEADER = (
    f"{'truncation':<22} {'bond dims':<12} {'params':>7} {'ratio':>6} "
    f"{'bound':>9} {'measured':>9} {'check':>5} {'tol met':>7} {'test acc':>8}"
)


def table_row(kwargs, train, measured, accuracy):
    """One aligned row; returns (text, measured <= bound)."""
    r = train.report
    ok = measured <= r.rel_error_bound + ROUNDING
    met = ("yes" if r.tolerance_met else "NO") if "max_bond" in kwargs else "-"
    text = (
        f"{describe(kwargs):<22} {str(train.bond_dims):<12} {train.num_params:>7} "
        f"{r.compression_ratio:>6.2f} {r.rel_error_bound:>9.2e} {measured:>9.2e} "
        f"{'ok' if ok else 'FAIL':>5} {met:>7} {accuracy:>8.2%}"
    )
    return text, ok


def rel_error(approx, exact):
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def mpo_table(title, W, out_dims, in_dims, accuracy, max_bond_rows):
    """Compress W for every request; accuracy(W_tilde) runs the model on the test set."""
    print(f"\n{title}")
    print(f"  W {W.shape}, {W.size} params, accuracy uncompressed {accuracy(W):.2%}")
    print(HEADER)
    checks = []
    for kwargs in requests(max_bond_rows):
        o = tn.MPO.from_matrix(W, out_dims, in_dims, **kwargs)
        W_tilde = o.to_matrix()
        text, ok = table_row(kwargs, o, rel_error(W_tilde, W), accuracy(W_tilde))
        print(text)
        checks.append(ok)
    print(f"  MPO dims: out {o.out_dims} x in {o.in_dims}")
    return checks


def mps_table(title, images, accuracy, max_bond_rows):
    """MPS of the (row, col, image) tensor; accuracy(reconstructed images) per request."""
    n = len(images)
    x = np.ascontiguousarray(images.T.reshape(8, 8, n))  # x[r, c, k] = pixel (r, c) of image k
    print(f"\n{title}")
    print(f"  tensor {x.shape}, {x.size} entries, accuracy on originals {accuracy(images):.2%}")
    print(HEADER)
    checks = []
    for kwargs in requests(max_bond_rows):
        m = tn.tt_svd(x, **kwargs)
        rebuilt = m.to_dense().reshape(64, n).T
        text, ok = table_row(kwargs, m, rel_error(rebuilt, images), accuracy(rebuilt))
        print(text)
        checks.append(ok)
    return checks


def padding_note(W):
    """Ten rows do not split well into three factors: the library pads them."""
    o = tn.MPO.from_matrix(W, 3, 3)
    print(
        f"  3 cores instead: from_matrix(W, 3, 3) -> out {o.out_dims} x in {o.in_dims}, W "
        f"zero-padded to {o.to_matrix(padded=True).shape}, to_matrix() {o.to_matrix().shape}"
    )
    print(
        f"  exact: {o.num_params} params (ratio {o.report.compression_ratio:.2f}), "
        f"error {rel_error(o.to_matrix(), W):.1e}: too few entries for three cores to pay off"
    )


# ---------------------------------------------------------------------- main


def main() -> int:
    start = time.perf_counter()
    X_train, X_test, y_train, y_test = load_data()
    print(f"digits: {len(X_train)} train / {len(X_test)} test images of 8x8 pixels, 10 classes")

    W, b = fit_linear(X_train, y_train)
    checks = mpo_table(
        "1. Linear classifier, W (10 x 64) as an MPO (int dims: factorize_dims(n, 2, pad=True))",
        W,
        2,
        2,
        lambda Wt: linear_accuracy(Wt, b, X_test, y_test),
        max_bond_rows=[(4, 0.1), (8, 0.1)],
    )
    padding_note(W)

    C, head = fit_rbf_net(X_train, y_train)
    checks += mpo_table(
        "2. RBF network, first layer C (256 prototypes x 64 pixels) as an MPO",
        C,
        (4, 8, 8),
        (2, 4, 8),  # pixel index 8r + c -> (top/bottom half, row in half, column)
        lambda Ct: rbf_accuracy(Ct, head, X_test, y_test),
        max_bond_rows=[(8, 0.1), (16, 0.1)],
    )

    checks += mps_table(
        "3. Test images as an MPS: tt_svd of x[row, col, image], classified by model 1",
        X_test,
        lambda images: linear_accuracy(W, b, images, y_test),
        max_bond_rows=[(4, 0.1), (16, 0.1)],
    )

    failed = checks.count(False)
    print(
        f"\nmeasured <= bound (+{ROUNDING:g} rounding) on {len(checks) - failed}/{len(checks)} "
        f"rows: {'OK' if not failed else 'FAILED'}   ({time.perf_counter() - start:.1f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
