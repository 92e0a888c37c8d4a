"""Block-sparse engines on two-site DMRG shapes of a U(1) Heisenberg chain (issue 19, item 5).

theta (chi, 2, 2, chi), total 2Sz = 0; left environment (chi, 5, chi) with the Heisenberg MPO
bond charges (0, 2, -2, 0, 0); sector sizes of 2Sz = 0, +-2, +-4, ... Gaussian with sigma = 3
(2Sz units), the shape of a Heisenberg chain's centre bond. Operations: env x theta tensordot,
fuse theta to the (2 chi, 2 chi) matrix, SVD of it, QR of the (2 chi, chi) one-site matrix.
Dense NumPy on the densified tensors as the reference; one BLAS thread; best of repeats.

Needs ``symmray`` (``pip install symmray``) and TeNPy. Usage:
``python benchmarks/bench_symmetric_engines.py [repeats]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import symmray as sr
import tenpy.linalg.np_conserved as npc
import threadpoolctl
from tenpy.linalg.charges import ChargeInfo, LegCharge


def sectors(chi, sigma=3.0):
    qs = np.arange(-12, 13, 2)
    w = np.exp(-(qs**2) / (2 * sigma**2))
    sizes = np.floor(chi * w / w.sum()).astype(int)
    sizes[qs == 0] += chi - sizes.sum()
    return {int(q): int(s) for q, s in zip(qs, sizes, strict=True) if s > 0}


def best(fn, repeats):
    out = None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def run(chi, repeats):
    bond = sectors(chi)
    phys = {1: 1, -1: 1}
    mpo = {0: 3, 2: 1, -2: 1}
    # symmray: theta legs (left in, phys out, phys out, right out): q_L + p1 + p2 = q_R
    left_in = sr.BlockIndex(bond, dual=False)
    p = sr.BlockIndex(phys, dual=False)
    right = sr.BlockIndex(bond, dual=True)
    theta = sr.U1Array.random([left_in, p, p, right], charge=0, seed=1)
    # env: (bra, w, ket) with ket dual to theta's left leg
    env_legs = [
        sr.BlockIndex(bond, dual=False),
        sr.BlockIndex(mpo, dual=False),
        sr.BlockIndex(bond, dual=True),
    ]
    env = sr.U1Array.random(env_legs, charge=0, seed=2)
    odd = {q + 1: s for q, s in bond.items()}  # the bond after one more site: odd 2Sz
    one_site = sr.U1Array.random([left_in, p, sr.BlockIndex(odd, dual=True)], charge=0, seed=3)
    # TeNPy: same charges, qconj +1 (in) / -1 (out)
    ci = ChargeInfo([1], ["2*Sz"])

    def flat(m):
        return np.repeat(list(m), list(m.values()))

    tl = LegCharge.from_qflat(ci, flat(bond), qconj=+1).bunch()[1]
    tp = LegCharge.from_qflat(ci, flat(phys), qconj=+1).bunch()[1]
    tr = tl.conj()
    tw = LegCharge.from_qflat(ci, flat(mpo), qconj=+1).bunch()[1]
    t_theta = npc.Array.from_func(
        np.random.standard_normal,
        [tl, tp, tp, tr],
        qtotal=[0],
        shape_kw="size",
        labels=["vL", "p0", "p1", "vR"],
    )
    t_env = npc.Array.from_func(
        np.random.standard_normal,
        [tl.conj(), tw, tl.conj()],
        qtotal=[0],
        shape_kw="size",
        labels=["vL*", "wR", "vL"],
    )
    t_odd = LegCharge.from_qflat(ci, flat(odd), qconj=-1).bunch()[1]
    t_one = npc.Array.from_func(
        np.random.standard_normal,
        [tl, tp, t_odd],
        qtotal=[0],
        shape_kw="size",
        labels=["vL", "p", "vR"],
    )
    d_theta, d_env, d_one = theta.to_dense(), env.to_dense(), one_site.to_dense()
    rows = {}
    # tensordot env x theta
    rows["tensordot"] = (
        best(lambda: np.tensordot(d_env, d_theta, axes=(2, 0)), repeats)[0],
        best(lambda: sr.tensordot(env, theta, axes=((2,), (0,))), repeats)[0],
        best(lambda: npc.tensordot(t_env, t_theta, axes=("vL", "vL")), repeats)[0],
    )
    rows["fuse legs"] = (
        best(lambda: d_theta.reshape(2 * chi, 2 * chi).copy(), repeats)[0],
        best(lambda: theta.fuse((0, 1), (2, 3)), repeats)[0],
        best(lambda: t_theta.combine_legs([["vL", "p0"], ["p1", "vR"]], qconj=[+1, -1]), repeats)[
            0
        ],
    )
    m_s = theta.fuse((0, 1), (2, 3))
    m_t = t_theta.combine_legs([["vL", "p0"], ["p1", "vR"]], qconj=[+1, -1])
    m_d = d_theta.reshape(2 * chi, 2 * chi)
    rows["svd"] = (
        best(lambda: np.linalg.svd(m_d, full_matrices=False), repeats)[0],
        best(lambda: sr.linalg.svd(m_s), repeats)[0],
        best(lambda: npc.svd(m_t, inner_labels=["vR", "vL"]), repeats)[0],
    )
    q_s = one_site.fuse((0, 1), (2,))
    q_t = t_one.combine_legs(["vL", "p"], qconj=+1)
    q_d = d_one.reshape(2 * chi, chi)
    rows["qr"] = (
        best(lambda: np.linalg.qr(q_d), repeats)[0],
        best(lambda: sr.linalg.qr(q_s), repeats)[0],
        best(lambda: npc.qr(q_t, inner_labels=["vR", "vL"]), repeats)[0],
    )
    # correctness: block-sparse svd reproduces the dense singular values
    s_dense = np.linalg.svd(m_s.to_dense(), compute_uv=False)
    blocks = sr.linalg.svd(m_s)[1].blocks.values()
    s_sym = np.sort(np.concatenate([np.asarray(b) for b in blocks]))[::-1]
    assert np.allclose(s_dense[: len(s_sym)], s_sym)
    Q, R = sr.linalg.qr(q_s)
    assert np.allclose(sr.tensordot(Q, R, axes=((1,), (0,))).to_dense(), q_s.to_dense())
    assert q_s.num_blocks > 0 and m_t.norm() > 0 and q_t.norm() > 0
    stored = sum(b.size for b in theta.blocks.values()) / d_theta.size
    return bond, stored, rows


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(
        "| chi | sectors (2Sz: size) | stored | op | dense numpy | symmray | TeNPy npc | "
        "dense/symmray | dense/TeNPy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with threadpoolctl.threadpool_limits(1):
        for chi in (64, 128, 256):
            bond, stored, rows = run(chi, repeats)
            sect = " ".join(f"{q:+d}:{n}" for q, n in sorted(bond.items()))
            share = f"{stored:.0%}"
            for name, (d, s, t) in rows.items():
                print(
                    f"| {chi} | {sect} | {share} | {name} | {d * 1e3:.2f} ms | {s * 1e3:.2f} ms"
                    f" | {t * 1e3:.2f} ms | {d / s:.1f}x | {d / t:.1f}x |"
                )
                sect, share = "", ""


if __name__ == "__main__":
    main()
