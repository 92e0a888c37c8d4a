"""The dynamical spin structure factor S(k, ω) of the S = 1/2 Heisenberg chain: a DMRG ground
state, ⟨Sz_i(t) Sz_c(0)⟩ by TDVP in one call, and a windowed Fourier transform in space and
time, drawn against the des Cloizeaux–Pearson boundaries of the two-spinon continuum.

Run by docs/hooks.py at every docs build; writes structure_factor.md and structure_factor.png
into the folder given as the first argument (the current folder by default).
"""

import sys
import time
from pathlib import Path

import numpy as np

import tnkit as tn
from tnkit.algorithms import correlation_function

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
L, chi, dt, t_final = 32, 32, 0.1, 8.0  # about 40 s on one core
centre = L // 2
H = tn.models.heisenberg(L)

start = time.perf_counter()
ground = tn.dmrg(H, max_bond=chi, sweeps=6, seed=0)
dmrg_seconds = time.perf_counter() - start
start = time.perf_counter()
result = correlation_function(H, ground.state, "Sz", "Sz", centre, t_final, dt=dt,
                              max_bond=chi, site_type="spin-half", eigenstate=True)  # fmt: skip
tdvp_seconds = time.perf_counter() - start
times, corr = result.times, result.values  # corr[n, i] = ⟨Sz_i(t_n) Sz_c(0)⟩

# S(k, ω) = Σ_x ∫ dt e^{i(ωt − kx)} C(x, t), x = i − c. C(x, −t) = C(x, t)* (the ground state
# is an eigenstate) gives the integral over negative times; Gaussian windows in t and x
# smooth the cut at t_final and at the chain's ends (resolution in ω about 4/t_final).
x = np.arange(L) - centre
window_t = np.exp(-((2.0 * times / t_final) ** 2))
window_x = np.exp(-((2.0 * x / (L / 2)) ** 2))
weights = np.full(len(times), dt)
weights[[0, -1]] = dt / 2  # trapezoid rule
k = np.linspace(0, 2 * np.pi, 129)
omega = np.linspace(0, 3.5, 141)
spatial = (corr * window_x) @ np.exp(-1j * np.outer(x, k))  # (time, k)
temporal = np.exp(1j * np.outer(omega, times)) * (weights * window_t)  # (ω, time)
S = 2 * np.real(temporal @ spatial)  # (ω, k): both signs of t
lower, upper = np.pi / 2 * np.abs(np.sin(k)), np.pi * np.abs(np.sin(k / 2))
peak = omega[np.argmax(S[:, np.argmin(np.abs(k - np.pi / 2))])]

lines = [
    f"Measured at this build: L = {L}, bond {chi}, DMRG ground energy {ground.energy:.10f} "
    f"(variance {ground.variance:.1e}) in {dmrg_seconds:.1f} s; the correlation function "
    f"for {len(times)} times (dt = {dt}, t ≤ {t_final}), evolving only Sz_c|ψ₀⟩ (the "
    f"ground state's phase e^{{−iE₀t}} is exact), in {tdvp_seconds:.1f} s (one BLAS thread).",
    "",
    "| check | value |",
    "|---|---|",
    f"| C(0, 0) = ⟨(Sz_c)²⟩ | {corr[0, centre].real:.6f} (exactly 1/4) |",
    f"| Σ_i C(i − c, 0) = ⟨S^z_total Sz_c⟩ | {corr[0].sum().real:.2e} (0: a singlet) |",
    f"| ω of the largest S(π/2, ω) | {peak:.3f} (lower boundary π/2·sin(π/2) = {np.pi / 2:.3f}) |",
    "",
    "The weight sits between the des Cloizeaux–Pearson dispersion ω = (π/2)|sin k| (the "
    "lower edge of the two-spinon continuum, dashed) and the upper edge ω = π|sin(k/2)| "
    "(dotted), strongest at the lower edge and at k = π. The windows broaden every line "
    f"by about 4/t = {4 / t_final:.1f} in ω and 8/L in k: longer times (and a larger bond, "
    "as the entanglement of Sz_c|ψ₀⟩ grows) sharpen the picture.",
    "",
]

try:
    import matplotlib.pyplot as plt
except ImportError:
    lines += ['!!! note "No plot"', "    matplotlib is missing where the docs were built.", ""]
else:
    fig, ax = plt.subplots(figsize=(6, 4.2))
    image = ax.pcolormesh(k, omega, np.clip(S, 0, None), shading="auto", cmap="magma")
    fig.colorbar(image, ax=ax, label="S(k, ω) (windowed)")
    ax.plot(k, lower, "w--", lw=1.0, label="(π/2)|sin k|")
    ax.plot(k, upper, "w:", lw=1.0, label="π|sin(k/2)|")
    ax.set_xticks([0, np.pi / 2, np.pi, 3 * np.pi / 2, 2 * np.pi], ["0", "π/2", "π", "3π/2", "2π"])
    ax.set_xlabel("k")
    ax.set_ylabel("ω")
    ax.legend(loc="upper right", fontsize=8)
    fig.savefig(out / "structure_factor.png", dpi=110, bbox_inches="tight")
    lines += ["![S(k, ω) of the Heisenberg chain](generated/structure_factor.png)", ""]

(out / "structure_factor.md").write_text("\n".join(lines), encoding="utf-8")
