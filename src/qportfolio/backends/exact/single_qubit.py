"""Per-qubit 2×2 factors ``⊗_i U_i`` applied to a cache tile in fused radix-8/4/2 butterflies.

``u[i] = (u00, u01, u10, u11)`` (row-major) acts on bit ``b0 + i`` of the tile ``x``: every pair
``(x_a, x_b)``, ``b = a | 2^(b0+i)``, becomes ``(u00 x_a + u01 x_b, u10 x_a + u11 x_b)``. The factors commute,
so three qubits are taken per sweep with their eight amplitudes held in registers (one read and one write of
the tile per three qubits). Real factors on a complex tile: pass the tile's interleaved float view and
``b0 + 1`` (complex bit q is float bit q + 1), so that the loops run on floats and vectorise like the
Walsh–Hadamard transform's.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, fastmath={"contract"})
def _radix2(x, u, h):
    p0, p1, p2, p3 = u[0], u[1], u[2], u[3]
    for start in range(0, x.size, 2 * h):
        s0 = x[start:start + h]
        s1 = x[start + h:start + 2 * h]
        for j in range(h):
            a = s0[j]
            b = s1[j]
            s0[j] = p0 * a + p1 * b
            s1[j] = p2 * a + p3 * b


@njit(cache=True, fastmath={"contract"})
def _radix4(x, u, v, h):
    p0, p1, p2, p3 = u[0], u[1], u[2], u[3]
    q0, q1, q2, q3 = v[0], v[1], v[2], v[3]
    for start in range(0, x.size, 4 * h):
        s0 = x[start + 0 * h:start + 1 * h]
        s1 = x[start + 1 * h:start + 2 * h]
        s2 = x[start + 2 * h:start + 3 * h]
        s3 = x[start + 3 * h:start + 4 * h]
        for j in range(h):
            a0 = s0[j]
            a1 = s1[j]
            a2 = s2[j]
            a3 = s3[j]
            b0 = p0 * a0 + p1 * a1
            b1 = p2 * a0 + p3 * a1
            b2 = p0 * a2 + p1 * a3
            b3 = p2 * a2 + p3 * a3
            s0[j] = q0 * b0 + q1 * b2
            s2[j] = q2 * b0 + q3 * b2
            s1[j] = q0 * b1 + q1 * b3
            s3[j] = q2 * b1 + q3 * b3


@njit(cache=True, fastmath={"contract"})
def _radix8(x, u, v, w, h):
    p0, p1, p2, p3 = u[0], u[1], u[2], u[3]
    q0, q1, q2, q3 = v[0], v[1], v[2], v[3]
    r0, r1, r2, r3 = w[0], w[1], w[2], w[3]
    for start in range(0, x.size, 8 * h):
        s0 = x[start + 0 * h:start + 1 * h]
        s1 = x[start + 1 * h:start + 2 * h]
        s2 = x[start + 2 * h:start + 3 * h]
        s3 = x[start + 3 * h:start + 4 * h]
        s4 = x[start + 4 * h:start + 5 * h]
        s5 = x[start + 5 * h:start + 6 * h]
        s6 = x[start + 6 * h:start + 7 * h]
        s7 = x[start + 7 * h:start + 8 * h]
        for j in range(h):
            a0 = s0[j]
            a1 = s1[j]
            a2 = s2[j]
            a3 = s3[j]
            a4 = s4[j]
            a5 = s5[j]
            a6 = s6[j]
            a7 = s7[j]
            b0 = p0 * a0 + p1 * a1
            b1 = p2 * a0 + p3 * a1
            b2 = p0 * a2 + p1 * a3
            b3 = p2 * a2 + p3 * a3
            b4 = p0 * a4 + p1 * a5
            b5 = p2 * a4 + p3 * a5
            b6 = p0 * a6 + p1 * a7
            b7 = p2 * a6 + p3 * a7
            c0 = q0 * b0 + q1 * b2
            c2 = q2 * b0 + q3 * b2
            c1 = q0 * b1 + q1 * b3
            c3 = q2 * b1 + q3 * b3
            c4 = q0 * b4 + q1 * b6
            c6 = q2 * b4 + q3 * b6
            c5 = q0 * b5 + q1 * b7
            c7 = q2 * b5 + q3 * b7
            s0[j] = r0 * c0 + r1 * c4
            s4[j] = r2 * c0 + r3 * c4
            s1[j] = r0 * c1 + r1 * c5
            s5[j] = r2 * c1 + r3 * c5
            s2[j] = r0 * c2 + r1 * c6
            s6[j] = r2 * c2 + r3 * c6
            s3[j] = r0 * c3 + r1 * c7
            s7[j] = r2 * c3 + r3 * c7


@njit(cache=True, fastmath={"contract"})
def _radix8_interleaved(x, u, v3, w):
    """:func:`_radix8` on float bits 1, 2, 3 (h = 2: complex bits 0, 1, 2 of a float view), unrolled so that
    the strides are constants."""
    p0, p1, p2, p3 = u[0], u[1], u[2], u[3]
    q0, q1, q2, q3 = v3[0], v3[1], v3[2], v3[3]
    r0, r1, r2, r3 = w[0], w[1], w[2], w[3]
    for g in range(0, x.size, 16):
        v = x[g:g + 16]
        for r in range(2):
            a0 = v[r + 0]
            a1 = v[r + 2]
            a2 = v[r + 4]
            a3 = v[r + 6]
            a4 = v[r + 8]
            a5 = v[r + 10]
            a6 = v[r + 12]
            a7 = v[r + 14]
            b0 = p0 * a0 + p1 * a1
            b1 = p2 * a0 + p3 * a1
            b2 = p0 * a2 + p1 * a3
            b3 = p2 * a2 + p3 * a3
            b4 = p0 * a4 + p1 * a5
            b5 = p2 * a4 + p3 * a5
            b6 = p0 * a6 + p1 * a7
            b7 = p2 * a6 + p3 * a7
            c0 = q0 * b0 + q1 * b2
            c2 = q2 * b0 + q3 * b2
            c1 = q0 * b1 + q1 * b3
            c3 = q2 * b1 + q3 * b3
            c4 = q0 * b4 + q1 * b6
            c6 = q2 * b4 + q3 * b6
            c5 = q0 * b5 + q1 * b7
            c7 = q2 * b5 + q3 * b7
            v[r + 0] = r0 * c0 + r1 * c4
            v[r + 8] = r2 * c0 + r3 * c4
            v[r + 2] = r0 * c1 + r1 * c5
            v[r + 10] = r2 * c1 + r3 * c5
            v[r + 4] = r0 * c2 + r1 * c6
            v[r + 12] = r2 * c2 + r3 * c6
            v[r + 6] = r0 * c3 + r1 * c7
            v[r + 14] = r2 * c3 + r3 * c7


@njit(cache=True)
def apply_unitaries(x, u, b0):
    """x ← (⊗_i u[i] on tile bit b0+i) x, for i < len(u)."""
    k = u.shape[0]
    i = 0
    if b0 == 1 and k >= 3:
        _radix8_interleaved(x, u[0], u[1], u[2])
        i = 3
    while i + 2 < k:
        _radix8(x, u[i], u[i + 1], u[i + 2], 1 << (b0 + i))
        i += 3
    if i + 1 < k:
        _radix4(x, u[i], u[i + 1], 1 << (b0 + i))
    elif i < k:
        _radix2(x, u[i], 1 << (b0 + i))
