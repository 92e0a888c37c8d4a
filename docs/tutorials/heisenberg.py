"""Bond dimensions of Heisenberg H^n, L = 16, for each MPO compression method.

Run by docs/hooks.py at every docs build; writes heisenberg.md and heisenberg.png into the
folder given as the first argument (the current folder by default).
"""

import sys
import time
from pathlib import Path

import tnkit as tn

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
L, n_max = 16, 5
methods = ("svd", "rescaled", "deparallelise", "delinearise", "parker")
exact_centre = (5, 9, 16, 32, 51)  # the ranks of H^n across the middle cut, n = 1..5

H = tn.models.heisenberg(L=L)  # bond 5, the optimal one
centre = L // 2 - 1  # bond k is the cut after site k
centre_bonds, max_bonds, seconds, differences = {}, {}, {}, {}
reference = []  # H^n compressed with "svd", to compare the other methods against
for method in methods:
    power, centre_bonds[method], max_bonds[method], differences[method] = None, [], [], []
    start = time.perf_counter()
    for n in range(1, n_max + 1):
        # H^n = H^(n-1) @ H: the product's bond is 5x the compressed H^(n-1)'s, not 5^n.
        power = H if power is None else power @ H
        power = power.compress(method=method)  # no tolerance: remove only redundancy
        centre_bonds[method].append(power.bond_dims[centre])
        max_bonds[method].append(max(power.bond_dims))
        if method == "svd":
            reference.append(power)
        else:
            ref = reference[n - 1]
            differences[method].append(tn.distance(power, ref) / ref.norm())
    seconds[method] = time.perf_counter() - start

header = "| n | exact | Hⁿ⁻¹ @ H before compressing (`svd` chain) | "
header += " | ".join(f"`{m}`" for m in methods) + " |"
lines = [
    f"Measured at this build: `tn.models.heisenberg(L={L})`, centre bond (after site "
    f"{centre}) of each compressed H^n.",
    "",
    header,
    "|" + "---|" * (len(methods) + 3),
]
for i, n in enumerate(range(1, n_max + 1)):
    product = 5 if n == 1 else 5 * centre_bonds["svd"][i - 1]
    cells = []
    for m in methods:
        bond = centre_bonds[m][i]
        cells.append(f"**{bond}**" if bond != exact_centre[i] else str(bond))
    lines.append(f"| {n} | {exact_centre[i]} | {product} | " + " | ".join(cells) + " |")
largest = [str(max_bonds[m][-1]) for m in methods]
lines.append("| largest bond, n = 5 | | | " + " | ".join(largest) + " |")
worst = ["(reference)"] + [f"{max(differences[m]):.0e}" for m in methods[1:]]
lines.append("| max ‖Hⁿ − Hⁿ_svd‖ / ‖Hⁿ_svd‖ | | | " + " | ".join(worst) + " |")
lines.append("| seconds, n = 1..5 | | | " + " | ".join(f"{seconds[m]:.2f}" for m in methods) + " |")
lines += ["", "Bold: a bond above the exact one.", ""]

try:
    import matplotlib.pyplot as plt
except ImportError:
    lines += ['!!! note "No plot"', "    matplotlib is missing where the docs were built.", ""]
else:
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    ns = range(1, n_max + 1)
    ax.plot(ns, exact_centre, "k-", lw=6, alpha=0.15, label="exact")
    for (method, bonds), marker in zip(centre_bonds.items(), "os^vD", strict=True):
        ax.plot(ns, bonds, marker + "-", mfc="none", label=method)
    ax.set_yscale("log")
    ax.set_xticks(list(ns))
    ax.set_xlabel("n")
    ax.set_ylabel(f"centre bond of H^n (L = {L})")
    ax.legend(fontsize=8)
    fig.savefig(out / "heisenberg.png", dpi=110, bbox_inches="tight")
    lines += ["![Centre bond of H^n against n, per method](generated/heisenberg.png)", ""]

(out / "heisenberg.md").write_text("\n".join(lines), encoding="utf-8")
