"""The Numba kernels' code: plain Python loops over packed cores, compiled by ``numba.njit``.

Compiled only through ``compile_kernels`` (numba is imported there, on first use); the
dispatch, packing and the array-API twins live in ``_kernels``. See that module for the
packed layout (one 1-D buffer of cores and an (L, 4) table of offsets and shapes).
"""

from __future__ import annotations

import math
import types

import numpy as np


def compile_kernels() -> types.SimpleNamespace:
    """The five kernels compiled (numba caches them on disk per signature); not thread-safe
    by itself (``_kernels`` calls it under a lock, once)."""
    import numba

    jit = numba.njit(cache=True, nogil=True, error_model="numpy")
    # Kernels resolve the helpers they call through this module's globals at compile time,
    # so the helpers are swapped for their compiled versions first.
    for name in _HELPERS:
        globals()[name] = jit(globals()[name])
    return types.SimpleNamespace(
        overlap=jit(_overlap_kernel),
        expectation=jit(_expectation_kernel),
        qr_norm=jit(_qr_norm_kernel),
        move_centre=jit(_move_centre_kernel),
        sample=jit(_sample_kernel),
    )


# ---------------------------------------------------------------------- kernels
# Plain Python, compiled by numba. Cores are (Dl, p, Dr) blocks of ``data`` at
# ``sites[k, 0]``; environments live in two C-ordered scratch buffers sized for the largest
# site. A site whose products are tiny is contracted by hand-written loops; a larger one
# through BLAS (numba calls the same gemm as NumPy, minus the interpreter).

# Multiply-adds of one product up to which hand loops beat a BLAS call through numba
# (measured, overlap at L=2000, d=2: loops win up to χ=4-5, BLAS from χ=6; 256 is the χ=5
# overlap product 5·5·2·5 rounded up).
_LOOP_MAX_MACS = 256
# Size m·n² up to which the hand Householder QR beats LAPACK through numba (geqrf + orgqr,
# copies): per (2χ × χ) matrix, χ=8: 1.6 vs 3.6 µs, χ=16: 8.8 vs 9.8 µs, χ=24: 26 vs 18 µs.
_HOUSEHOLDER_MAX_MACS = 2 * 16**3


def _overlap_kernel(adata, asites, bdata, bsites):
    n = asites.shape[0]
    env_size, half_size = 1, 1
    for k in range(n):
        env_size = max(env_size, asites[k, 3] * bsites[k, 3])
        half_size = max(half_size, asites[k, 1] * asites[k, 2] * bsites[k, 3])
    env = np.zeros(env_size, adata.dtype)
    new = np.zeros(env_size, adata.dtype)
    half = np.zeros(half_size, adata.dtype)
    env[0] = 1
    exponent = 0
    for k in range(n):
        oa, dla, p, dra = asites[k, 0], asites[k, 1], asites[k, 2], asites[k, 3]
        ob, dlb, drb = bsites[k, 0], bsites[k, 1], bsites[k, 3]
        width = p * drb
        if dla * dlb * width <= _LOOP_MAX_MACS and dla * p * dra * drb <= _LOOP_MAX_MACS:
            # half[la, s, rb] = Σ_lb env[la, lb] · b[lb, s, rb]
            half[: dla * width] = 0
            for la in range(dla):
                for lb in range(dlb):
                    e = env[la * dlb + lb]
                    row, col = la * width, ob + lb * width
                    for j in range(width):
                        half[row + j] += e * bdata[col + j]
            # new[ra, rb] = Σ_{la, s} conj(a[la, s, ra]) · half[la, s, rb]
            new[: dra * drb] = 0
            for i in range(dla * p):
                for ra in range(dra):
                    c = np.conj(adata[oa + i * dra + ra])
                    row, col = ra * drb, i * drb
                    for rb in range(drb):
                        new[row + rb] += c * half[col + rb]
        else:
            core_b = bdata[ob : ob + dlb * width].reshape((dlb, width))
            core_a = adata[oa : oa + dla * p * dra].reshape((dla * p, dra))
            product = np.dot(env[: dla * dlb].reshape((dla, dlb)), core_b)
            product = np.dot(np.conj(core_a).T, product.reshape((dla * p, drb)))
            new[: dra * drb] = product.reshape(-1)
        env, new = new, env
        shift = _rescale(env, dra * drb)
        if shift is None:
            return env[0] * 0, 0
        exponent += shift
    return env[0], exponent


def _expectation_kernel(mdata, msites, odata, osites):
    n = msites.shape[0]
    env_size, ket_size, op_size = 1, 1, 1
    for k in range(n):
        dl, d, dr = msites[k, 1], msites[k, 2], msites[k, 3]
        wl, wr = osites[k, 1], osites[k, 3]
        env_size = max(env_size, dr * wr * dr)
        ket_size = max(ket_size, dl * wl * d * dr)
        op_size = max(op_size, dl * d * wr * dr)
    env = np.zeros(env_size, mdata.dtype)
    new = np.zeros(env_size, mdata.dtype)
    ket = np.zeros(ket_size, mdata.dtype)
    op = np.zeros(op_size, mdata.dtype)
    env[0] = 1
    exponent = 0
    for k in range(n):
        om, dl, d, dr = msites[k, 0], msites[k, 1], msites[k, 2], msites[k, 3]
        oo, wl, wr = osites[k, 0], osites[k, 1], osites[k, 3]
        if dl * wl * dl * d * dr <= _LOOP_MAX_MACS and dl * dr * wl * d * d * wr <= _LOOP_MAX_MACS:
            # ket[a, w, t, x] = Σ_b env[a, w, b] · m[b, t, x]
            width = d * dr
            ket[: dl * wl * width] = 0
            for aw in range(dl * wl):
                for b in range(dl):
                    e = env[aw * dl + b]
                    row, col = aw * width, om + b * width
                    for j in range(width):
                        ket[row + j] += e * mdata[col + j]
            # op[a, s, v, x] = Σ_{w, t} ket[a, w, t, x] · o[w, s, t, v]
            op[: dl * d * wr * dr] = 0
            for a in range(dl):
                for w in range(wl):
                    for s in range(d):
                        for t in range(d):
                            src = ((a * wl + w) * d + t) * dr
                            for v in range(wr):
                                factor = odata[oo + ((w * d + s) * d + t) * wr + v]
                                dst = ((a * d + s) * wr + v) * dr
                                for x in range(dr):
                                    op[dst + x] += factor * ket[src + x]
            # new[c, v, x] = Σ_{a, s} conj(m[a, s, c]) · op[a, s, v, x]
            width = wr * dr
            new[: dr * width] = 0
            for i in range(dl * d):
                for c in range(dr):
                    bra = np.conj(mdata[om + i * dr + c])
                    row, col = c * width, i * width
                    for j in range(width):
                        new[row + j] += bra * op[col + j]
        else:
            core = mdata[om : om + dl * d * dr].reshape((dl, d * dr))
            mpo = odata[oo : oo + wl * d * d * wr].reshape((wl, d, d, wr))
            kets = np.dot(env[: dl * wl * dl].reshape((dl * wl, dl)), core)
            kets = np.ascontiguousarray(kets.reshape((dl, wl, d, dr)).transpose(0, 3, 1, 2))
            mpo = np.ascontiguousarray(mpo.transpose(0, 2, 1, 3)).reshape((wl * d, d * wr))
            ops = np.dot(kets.reshape((dl * dr, wl * d)), mpo).reshape((dl, dr, d, wr))
            ops = np.ascontiguousarray(ops.transpose(0, 2, 3, 1)).reshape((dl * d, wr * dr))
            product = np.dot(np.conj(core.reshape((dl * d, dr))).T, ops)
            new[: dr * wr * dr] = product.reshape(-1)
        env, new = new, env
        shift = _rescale(env, dr * wr * dr)
        if shift is None:
            return env[0] * 0, 0
        exponent += shift
    return env[0], exponent


def _qr_norm_kernel(data, sites):
    n = sites.shape[0]
    size, rows_max = 1, 1
    for k in range(n):
        size = max(size, sites[k, 1] * sites[k, 2] * sites[k, 3])
        rows_max = max(rows_max, sites[k, 1] * sites[k, 2])
    factor = np.zeros(size, data.dtype)  # R, (rows, Dl) C-ordered
    work = np.zeros(size, data.dtype)  # R · core, (rows · p, Dr)
    householder = np.zeros(rows_max, data.dtype)
    factor[0] = 1
    rows = 1
    exponent = 0
    for k in range(n):
        offset, dl, p, dr = sites[k, 0], sites[k, 1], sites[k, 2], sites[k, 3]
        width = p * dr
        m = rows * p
        rank = min(m, dr)
        if rows * dl * width <= _LOOP_MAX_MACS:
            # work[i, s, r] = Σ_l factor[i, l] · core[l, s, r]
            work[: rows * width] = 0
            for i in range(rows):
                for left in range(dl):
                    f = factor[i * dl + left]
                    row, col = i * width, offset + left * width
                    for j in range(width):
                        work[row + j] += f * data[col + j]
        else:
            core = data[offset : offset + dl * width].reshape((dl, width))
            work[: m * dr] = np.dot(factor[: rows * dl].reshape((rows, dl)), core).reshape(-1)
        # Scaled before any squares are summed, so tiny or huge entries neither under- nor
        # overflow in the Householder norms or the final Frobenius norm.
        shift = _rescale(work, m * dr)
        if shift is None:
            return 0.0, 0
        exponent += shift
        if k == n - 1:
            total = 0.0
            for j in range(m * dr):
                total += work[j].real * work[j].real + work[j].imag * work[j].imag
            return math.sqrt(total), exponent
        if m * dr * dr <= _HOUSEHOLDER_MAX_MACS:
            _householder_r(work, m, dr, householder)
        else:
            _, triangle = np.linalg.qr(work[: m * dr].reshape((m, dr)))
            work[: rank * dr] = np.ascontiguousarray(triangle).reshape(-1)
        for i in range(rank):
            for j in range(dr):
                factor[i * dr + j] = work[i * dr + j] if j >= i else 0
        rows = rank
    return 0.0, exponent


def _move_centre_kernel(data, sites, centre, target):
    """Left sweep up to ``target`` and right sweep down to it (``centre`` -1: not canonical)
    on a copy; bonds shrink in place where a thin QR is narrower (offsets are kept)."""
    out = data.copy()
    new_sites = sites.copy()
    last = sites.shape[0] - 1
    if centre < 0:
        _left_sweep(out, new_sites, 0, target)
        _right_sweep(out, new_sites, last, target)
    elif target >= centre:
        _left_sweep(out, new_sites, centre, target)
    else:
        _right_sweep(out, new_sites, centre, target)
    return out, new_sites


def _left_sweep(data, sites, start, stop):
    for k in range(start, stop):
        offset, dl, p, dr = sites[k, 0], sites[k, 1], sites[k, 2], sites[k, 3]
        q, r = _positive_qr(data[offset : offset + dl * p * dr].reshape((dl * p, dr)))
        rank = q.shape[1]
        _store(data, offset, q)
        sites[k, 3] = rank
        nxt, dl2, width = sites[k + 1, 0], sites[k + 1, 1], sites[k + 1, 2] * sites[k + 1, 3]
        _store(data, nxt, np.dot(r, data[nxt : nxt + dl2 * width].reshape((dl2, width))))
        sites[k + 1, 1] = rank


def _right_sweep(data, sites, start, stop):
    for k in range(start, stop, -1):
        offset, dl, p, dr = sites[k, 0], sites[k, 1], sites[k, 2], sites[k, 3]
        core = data[offset : offset + dl * p * dr].reshape((dl, p * dr))
        q, r = _positive_qr(np.ascontiguousarray(np.conj(core).T))
        rank = q.shape[1]
        _store(data, offset, np.conj(q).T)
        sites[k, 1] = rank
        prev, rows, dl0 = sites[k - 1, 0], sites[k - 1, 1] * sites[k - 1, 2], sites[k - 1, 3]
        left = data[prev : prev + rows * dl0].reshape((rows, dl0))
        _store(data, prev, np.dot(left, np.ascontiguousarray(np.conj(r).T)))
        sites[k - 1, 3] = rank


def _positive_qr(a):
    """Thin QR of a C-ordered matrix with R's diagonal real and non-negative (the unique
    factorisation at full column rank, as CholeskyQR2 gives it)."""
    q, r = np.linalg.qr(a)
    for j in range(r.shape[0]):
        pivot = r[j, j]
        size = abs(pivot)
        if size > 0:
            phase = pivot / size
            for i in range(q.shape[0]):
                q[i, j] = q[i, j] * phase
            for i in range(r.shape[1]):
                r[j, i] = r[j, i] * np.conj(phase)
    return q, r


def _store(data, offset, matrix):
    """Write ``matrix`` C-ordered into ``data`` from ``offset`` (any memory layout)."""
    rows, cols = matrix.shape
    for i in range(rows):
        for j in range(cols):
            data[offset + i * cols + j] = matrix[i, j]


def _sample_kernel(data, sites, uniforms):
    n_sites, n = sites.shape[0], uniforms.shape[1]
    size, width_max = 1, 1
    for k in range(n_sites):
        size = max(size, sites[k, 1], sites[k, 3])
        width_max = max(width_max, sites[k, 2] * sites[k, 3])
    samples = np.zeros((n, n_sites), np.int64)
    left = np.ones(n * size, data.dtype)  # (n, Dl) left vectors of unit norm
    new = np.zeros(n * size, data.dtype)
    weights = np.zeros(width_max, np.float64)
    for k in range(n_sites):
        offset, dl, p, dr = sites[k, 0], sites[k, 1], sites[k, 2], sites[k, 3]
        core = data[offset : offset + dl * p * dr].reshape((dl, p * dr))
        candidates = np.dot(left[: n * dl].reshape((n, dl)), core)  # (n, p·Dr)
        for i in range(n):
            total = 0.0
            for s in range(p):
                w = 0.0
                for r in range(dr):
                    x = candidates[i, s * dr + r]
                    w += x.real * x.real + x.imag * x.imag
                weights[s] = w
                total += w
            if not total > 0:
                return samples, True
            threshold = uniforms[k, i] * total
            outcome, cumulative, last_positive = 0, 0.0, 0
            for s in range(p):
                cumulative += weights[s]
                if cumulative <= threshold:
                    outcome = s + 1
                if weights[s] > 0:
                    last_positive = s
            outcome = min(outcome, last_positive)
            samples[i, k] = outcome
            scale = 1.0 / math.sqrt(weights[outcome])
            for r in range(dr):
                new[i * dr + r] = candidates[i, outcome * dr + r] * scale
        left, new = new, left
    return samples, False


_HELPERS = ("_householder_r", "_rescale", "_left_sweep", "_right_sweep", "_positive_qr", "_store")


def _householder_r(a, m, n, v):
    """Overwrite the C-ordered (m, n) matrix in ``a`` with R of its QR (upper triangle;
    Q is not formed). Complex reflectors use the phase of the pivot, so R's diagonal
    may be complex; only ‖R‖ and products with R matter to the callers."""
    for j in range(min(m, n)):
        sigma = 0.0
        for i in range(j, m):
            x = a[i * n + j]
            sigma += x.real * x.real + x.imag * x.imag
        if sigma == 0.0:
            continue
        norm = math.sqrt(sigma)
        pivot = a[j * n + j]
        size = abs(pivot)
        phase = pivot / size if size > 0 else pivot * 0 + 1
        alpha = -phase * norm
        v[j] = pivot - alpha
        for i in range(j + 1, m):
            v[i] = a[i * n + j]
        tail = 2 * norm * (norm + size)  # ‖v‖², without cancellation
        for col in range(j, n):
            dot = v[j] * 0
            for i in range(j, m):
                dot += np.conj(v[i]) * a[i * n + col]
            scale = 2 * dot / tail
            for i in range(j, m):
                a[i * n + col] -= scale * v[i]


def _rescale(buffer, size):
    """Divide ``buffer[:size]`` by the power of two nearest above its largest entry (exact);
    return that exponent, or None when the buffer is all zero."""
    largest = 0.0
    for j in range(size):
        x = buffer[j]
        largest = max(largest, abs(x.real), abs(x.imag))
    if largest == 0.0:
        return None
    _, shift = math.frexp(largest)
    # Two factors: a single 2**-shift overflows when the entries are subnormal.
    first = math.ldexp(1.0, -(shift // 2))
    second = math.ldexp(1.0, shift // 2 - shift)
    for j in range(size):
        buffer[j] = buffer[j] * first * second
    return shift
