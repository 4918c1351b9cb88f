"""Per-qubit 2×2 factors ``⊗_i U_i`` applied to a cache tile in fused radix-8/4/2 butterflies.

``u[i] = (u00, u01, u10, u11)`` (row-major) acts on bit ``b0 + i`` of the tile ``x``: every pair
``(x_a, x_b)``, ``b = a | 2^(b0+i)``, becomes ``(u00 x_a + u01 x_b, u10 x_a + u11 x_b)``. The factors commute,
so three qubits are taken per sweep with their eight amplitudes held in registers (one read and one write of
the tile per three qubits). Real factors on a complex tile: pass the tile's interleaved float view and
``b0 + 1`` (complex bit q is float bit q + 1). On a float view the sweeps are LLVM vector code (numba
intrinsics, as :mod:`.x_mixer`'s transforms): complex bits 0–3 of 32 floats in registers (four 8-float parts:
bits 2 and 3 pair whole parts, bits 0 and 1 pair lanes by one shuffle a part), then three bits a sweep across
eight streams of 8 floats while the float stride is ≥ 8.
:func:`apply_rotations` takes rotations in shear form ``[[1, −t], [t, 1]]`` (one fused multiply-add an entry,
the Walsh–Hadamard transform's one add; the warm-start mixer folds the cosines into its diagonal). Measured,
one thread, 2^16 amplitudes: three shear bits a sweep 1.2–1.8 ns/amp against 0.8–1.3 for the Walsh–Hadamard
transform; a 10-bit mixer part with its diagonal in L1 9.6 against 7.8 ns/amp.

:func:`apply_x_rotations` applies the X mixer ``e^{−iβX}`` itself a stage a qubit (a complex shear: a re/im swap
and one fused multiply-add an entry), half the sweeps of ``W·D·W``; :func:`apply_x_rotations_pair` does it on two
states with the imaginary part of the adjoint gradient's overlap ``⟨λ|Σ_i X_i|φ⟩``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.unsafe.ndarray import to_fixed_tuple

from qportfolio.backends.exact.kernels import _stream_pointers


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


# --- LLVM-vector rotations of a float view (numba intrinsics, as :mod:`.x_mixer`'s transforms)


def _splat(builder, scalar, lanes):
    vector = ir.VectorType(scalar.type, lanes)
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _fma(builder, a, b, c):
    """a∘b + c lane-wise, one fused multiply-add (LLVM's fma intrinsic)."""
    t = a.type
    name = f"llvm.fma.v{t.count}f{64 if isinstance(t.element, ir.DoubleType) else 32}"
    return builder.call(builder.module.declare_intrinsic(name, fnty=ir.FunctionType(t, [t, t, t])), [a, b, c])


def _rotate(builder, a, b, c, r, lanes, factors):
    """Factor r (of ``factors``) of the tuple c on the pair of LLVM vectors (a, b), lane-wise: four entries a factor
    (c0·a + c1·b, c2·a + c3·b), or one, t: the rotation's shear form (a − t·b, t·a + b)."""
    if c.type.count == factors:
        s = _splat(builder, builder.extract_value(c, r), lanes)
        return _fma(builder, builder.fneg(s), b, a), _fma(builder, s, a, b)
    p0, p1, p2, p3 = (_splat(builder, builder.extract_value(c, 4 * r + i), lanes) for i in range(4))
    return _fma(builder, p0, a, builder.fmul(p1, b)), _fma(builder, p2, a, builder.fmul(p3, b))


def _vector_rotations(builder, v, c):
    """Three rotations across eight LLVM vectors (rotation r between v[i] and v[i + 2^r])."""
    lanes = v[0].type.count
    for r, k in enumerate((1, 2, 4)):
        for i in range(8):
            if not i & k:
                v[i], v[i | k] = _rotate(builder, v[i], v[i | k], c, r, lanes, 3)
    return v


_PART = 8  # floats in one LLVM vector of the in-register kernels


def _parts_at(builder, data, first, count):
    """Pointers to ``count`` consecutive 8-float vectors from data + first (data: a float pointer, first: intp)."""
    pointer = ir.PointerType(ir.VectorType(data.type.pointee, _PART))
    return [builder.bitcast(builder.gep(data, [builder.add(first, ir.Constant(first.type, _PART * q))]), pointer)
            for q in range(count)]


def _low_rotation_intrinsic(lanes):
    """f(xf, start, c): rotations on float strides 2 … lanes/2 (complex bits 0 … log2(lanes)−2) of
    xf[start:start+lanes]; c: their coefficients (see :func:`_rotate`). The floats are 8-float parts: strides of
    8 and more pair whole parts; for strides 2 and 4 each lane takes its partner in one shuffle a part, with
    coefficients that depend on the lane's side of the pair: a shear (a − t·b, t·a + b) is v + (∓t)∘partner(v),
    a general factor (c0·a + c1·b, c2·a + c3·b) is (c0|c3)∘v + (c1|c2)∘partner(v) (measured, one thread on
    AVX-512, 32 floats: shears 0.35–0.46 against 0.47–0.57 ns/amp for splitting and joining the vector by bit,
    general factors 0.60 against 0.70)."""
    factors = lanes.bit_length() - 2
    width = _PART

    @intrinsic
    def at(typingctx, xf, start, c):
        if not (isinstance(xf, types.Array) and xf.ndim == 1 and xf.layout == "C" and isinstance(start, types.Integer)
                and isinstance(c, types.UniTuple) and c.dtype == xf.dtype):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            where = _parts_at(builder, data, context.cast(builder, args[1], signature.args[1], types.intp),
                              lanes // width)
            parts = [builder.load(w, align=1) for w in where]
            shear = signature.args[2].count == factors
            index = ir.VectorType(ir.IntType(32), width)
            for r in range(factors):
                k = 2 << r
                if k >= width:
                    kp = k // width
                    for q in range(len(parts)):
                        if not q & kp:
                            parts[q], parts[q | kp] = _rotate(builder, parts[q], parts[q | kp], args[2], r, width,
                                                              factors)
                    continue
                partner = ir.Constant(index, [i ^ k for i in range(width)])
                side = [i + width if i & k else i for i in range(width)]  # a lanes from the first vector
                if shear:
                    t = _splat(builder, builder.extract_value(args[2], r), width)
                    own = None
                    other = builder.fmul(t, ir.Constant(t.type, [1.0 if i & k else -1.0 for i in range(width)]))
                else:
                    p = [_splat(builder, builder.extract_value(args[2], 4 * r + i), width) for i in range(4)]
                    own = builder.shuffle_vector(p[0], p[3], ir.Constant(index, side))
                    other = builder.shuffle_vector(p[1], p[2], ir.Constant(index, side))
                for q in range(len(parts)):
                    u = parts[q]
                    base = u if own is None else builder.fmul(own, u)
                    parts[q] = _fma(builder, other, builder.shuffle_vector(u, u, partner), base)
            for w, value in zip(where, parts):
                builder.store(value, w, align=1)
            return context.get_dummy_value()

        return types.void(xf, start, c), codegen

    return at


_rotate_low16_at = _low_rotation_intrinsic(16)
_rotate_low32_at = _low_rotation_intrinsic(32)


@intrinsic
def _rotate8_at(typingctx, xf, pos, h, c):
    """v_s = xf[pos + s·h :][:8] for the eight streams s ← three rotations across them (c: 12 coefficients)."""
    if not (isinstance(xf, types.Array) and xf.ndim == 1 and xf.layout == "C" and isinstance(pos, types.Integer)
            and isinstance(h, types.Integer) and isinstance(c, types.UniTuple) and c.dtype == xf.dtype):
        return None

    def codegen(context, builder, signature, args):
        where = _stream_pointers(context, builder, signature.args[0], args[0],
                                 *(context.cast(builder, args[i], signature.args[i], types.intp) for i in (1, 2)))
        v = _vector_rotations(builder, [builder.load(w, align=1) for w in where], args[3])
        for w, value in zip(where, v):
            builder.store(value, w, align=1)
        return context.get_dummy_value()

    return types.void(xf, pos, h, c), codegen


@njit(cache=True)
def _tuple3(u, i):
    """Factors i, i+1, i+2 of u as the tuple the intrinsics take: 12 entries (u of shape (k, 4)) or 3 (shear
    coefficients t, shape (k,))."""
    if u.ndim == 1:
        return u[i], u[i + 1], u[i + 2]
    return to_fixed_tuple(np.ascontiguousarray(u[i:i + 3]).reshape(12), 12)


@njit(cache=True)
def _tuple4(u):
    """Factors 0 … 3 of u, as :func:`_tuple3`."""
    if u.ndim == 1:
        return u[0], u[1], u[2], u[3]
    return to_fixed_tuple(np.ascontiguousarray(u[:4]).reshape(16), 16)


@njit(cache=True)
def _rotate_sweeps(x, u, b0):
    """The vector paths on a float view: complex bits 0–3 (b0 = 1) in registers, then three bits a sweep while
    the float stride is ≥ 8; returns how many factors were applied (u: see :func:`_tuple3`)."""
    k = u.shape[0]
    i = 0
    if b0 == 1 and k >= 4:
        c4 = _tuple4(u)
        for g in range(0, x.size, 32):
            _rotate_low32_at(x, g, c4)
        i = 4
    elif b0 == 1 and k == 3:
        c3 = _tuple3(u, 0)
        for g in range(0, x.size, 16):
            _rotate_low16_at(x, g, c3)
        i = 3
    while i + 2 < k and b0 + i >= 3:
        h = 1 << (b0 + i)
        c = _tuple3(u, i)
        for start in range(0, x.size, 8 * h):
            for j in range(start, start + h, 8):
                _rotate8_at(x, j, h, c)
        i += 3
    return i


@njit(cache=True)
def apply_rotations(xf, t, b0):
    """xf ← (⊗_i [[1, −t_i], [t_i, 1]] on float bit b0+i) xf (b0 ≥ 1: a complex tile's float view): a rotation
    by atan t_i over its cosine, one fused multiply-add an entry, as the Walsh–Hadamard transform's one add."""
    i = _rotate_sweeps(xf, t, b0)
    if i == t.size:
        return
    rest = np.empty((t.size - i, 4), dtype=xf.dtype)
    for q in range(rest.shape[0]):
        rest[q, 0] = 1.0
        rest[q, 1] = -t[i + q]
        rest[q, 2] = t[i + q]
        rest[q, 3] = 1.0
    apply_unitaries(xf, rest, b0 + i)


def _vector_sweeps(x, u, b0):
    """How many of the factors :func:`_rotate_sweeps` applied (none for complex tiles or factors)."""


@overload(_vector_sweeps)
def _vector_sweeps_overload(x, u, b0):
    if isinstance(x.dtype, types.Float) and u.dtype == x.dtype:
        return lambda x, u, b0: _rotate_sweeps(x, u, b0)
    return lambda x, u, b0: 0


@njit(cache=True)
def apply_unitaries(x, u, b0):
    """x ← (⊗_i u[i] on tile bit b0+i) x, for i < len(u)."""
    k = u.shape[0]
    i = _vector_sweeps(x, u, b0)
    if i == 0 and b0 == 1 and k >= 3:
        _radix8_interleaved(x, u[0], u[1], u[2])
        i = 3
    while i + 2 < k:
        _radix8(x, u[i], u[i + 1], u[i + 2], 1 << (b0 + i))
        i += 3
    if i + 1 < k:
        _radix4(x, u[i], u[i + 1], 1 << (b0 + i))
    elif i < k:
        _radix2(x, u[i], 1 << (b0 + i))


# --- e^{−iβX} on every qubit of a tile part, one stage a qubit (the X mixer without W·D·W)
#
# e^{−iβX} = c·(I − i·t·X) with t = tan β, or = (−i·s)·(X + i·u·I) with u = cot β: for |β| ≤ π/4 the shear
# (a, b) → (a − i·t·b, b − i·t·a), else the same with the outputs exchanged ("flip") and coefficient u, so the
# coefficient stays in [−1, 1]. On the interleaved floats −i·t·b = (t, −t)∘swap(b) and i·u·a = (−u, u)∘swap(a):
# one in-register re/im swap and one fused multiply-add an entry. The factor C = c^n or (−i·s)^n of a whole
# n-qubit mixer is applied once, by the sweep over complex bits 0–3 (every amplitude passes it once a layer).


def _splat_signed(builder, scalar, lanes, signs):
    """The vector (signs[i % 2]·scalar)_i."""
    vector = ir.VectorType(scalar.type, lanes)
    return builder.fmul(_splat(builder, scalar, lanes), ir.Constant(vector, [signs[i % 2] for i in range(lanes)]))


def _re_im_swap(builder, v):
    swapped = [i ^ 1 for i in range(v.type.count)]
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), len(swapped)), swapped))


def _x_shear(builder, a, b, coef, flip):
    """(a + coef∘swap(b), b + coef∘swap(a)), exchanged when ``flip``."""
    na = _fma(builder, coef, _re_im_swap(builder, b), a)
    nb = _fma(builder, coef, _re_im_swap(builder, a), b)
    return (nb, na) if flip else (na, nb)


def _x_valid(xf, c, *integers):
    return (isinstance(xf, types.Array) and xf.ndim == 1 and xf.layout == "C" and isinstance(c, types.UniTuple)
            and c.dtype == xf.dtype and c.count == 3 and all(isinstance(i, types.Integer) for i in integers))


def _streams(builder, data, j, h, count, vector):
    """Pointers to ``count`` vectors (type ``vector``) at data + j + s·h, s < count: a sweep step's streams."""
    return [builder.bitcast(builder.gep(data, [builder.add(j, builder.mul(h, ir.Constant(h.type, s)))]), vector)
            for s in range(count)]


def _sweep_loops(builder, size, h, step, inner, body):
    """``for start in range(0, size, step): for j in range(start, start + h, inner): body(j)`` as LLVM loops."""
    with cgutils.for_range_slice(builder, ir.Constant(size.type, 0), size, step) as (start, _):
        with cgutils.for_range_slice(builder, start, builder.add(start, h), inner) as (j, _):
            body(j)


def _x_sweep_intrinsic(stages, flip):
    """f(xf, q, c): e^{−iβX} (shear form) on complex bits q … q+stages−1 (q ≥ 2) of xf in one sweep, the
    2^stages streams of eight floats at stride 2^(q+1) in registers; c = (coefficient, cr, ci) of
    :func:`x_rotation_coefficients`."""

    @intrinsic
    def at(typingctx, xf, q, c):
        if not _x_valid(xf, c, q):
            return None

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            vector = ir.PointerType(ir.VectorType(context.get_data_type(signature.args[0].dtype), 8))
            q_ = context.cast(builder, args[1], signature.args[1], types.intp)
            h = builder.shl(ir.Constant(q_.type, 2), q_)
            coef = _splat_signed(builder, builder.extract_value(args[2], 0), 8, (1.0, -1.0))

            def body(j):
                where = _streams(builder, array.data, j, h, 1 << stages, vector)
                v = [builder.load(w, align=1) for w in where]
                for r in range(stages):
                    k = 1 << r
                    for i in range(len(v)):
                        if not i & k:
                            v[i], v[i | k] = _x_shear(builder, v[i], v[i | k], coef, flip)
                for w, value in zip(where, v):
                    builder.store(value, w, align=1)

            _sweep_loops(builder, builder.extract_value(array.shape, 0), h,
                         builder.shl(h, ir.Constant(q_.type, stages)), ir.Constant(q_.type, 8), body)
            return context.get_dummy_value()

        return types.void(xf, q, c), codegen

    return at


def _x_low_intrinsic(flip):
    """f(xf, start, c): e^{−iβX} on complex bits 0–3 of xf[start:start+32], then times C = cr + i·ci. The 32 floats
    are four 8-float parts: bits 2 and 3 pair whole parts (as a sweep's streams); for bits 0 and 1 the shear is
    the same on both lanes of a pair, so each lane takes its partner's swapped lane in one shuffle a part
    (measured, one thread on AVX-512: 0.53 against 0.83 ns/amp for splitting and joining the vector by bit)."""

    @intrinsic
    def at(typingctx, xf, start, c):
        if not _x_valid(xf, c, start):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            where = _parts_at(builder, data, context.cast(builder, args[1], signature.args[1], types.intp), 4)
            parts = [builder.load(w, align=1) for w in where]
            coef, cr, ci = (builder.extract_value(args[2], i) for i in range(3))
            coef = _splat_signed(builder, coef, _PART, (1.0, -1.0))
            index = ir.VectorType(ir.IntType(32), _PART)
            # complex bits 2 and 3 pair whole 8-float parts, as a sweep's streams
            for k in (1, 2):
                for q in range(4):
                    if not q & k:
                        parts[q], parts[q | k] = _x_shear(builder, parts[q], parts[q | k], coef, flip)
            # complex bits 0 and 1 inside each part: every lane takes coef times its partner's swapped lane
            # (a − i·t·b and b − i·t·a alike), one shuffle an 8-float part (two flipped)
            for k in (2, 4):
                partner_swapped = ir.Constant(index, [(i ^ k) ^ 1 for i in range(_PART)])
                partner = ir.Constant(index, [i ^ k for i in range(_PART)])
                for q in range(4):
                    u = parts[q]
                    if flip:
                        parts[q] = _fma(builder, coef, _re_im_swap(builder, u), builder.shuffle_vector(u, u, partner))
                    else:
                        parts[q] = _fma(builder, coef, builder.shuffle_vector(u, u, partner_swapped), u)
            # v·(cr + i·ci) = cr·v + (−ci, ci)∘swap(v)
            scale = _splat(builder, cr, _PART)
            rotate = _splat_signed(builder, ci, _PART, (-1.0, 1.0))
            parts = [_fma(builder, scale, u, builder.fmul(rotate, _re_im_swap(builder, u))) for u in parts]
            for w, value in zip(where, parts):
                builder.store(value, w, align=1)
            return context.get_dummy_value()

        return types.void(xf, start, c), codegen

    return at


_x_low, _x_low_flip = _x_low_intrinsic(False), _x_low_intrinsic(True)
_x1, _x2, _x3 = (_x_sweep_intrinsic(stages, False) for stages in (1, 2, 3))
_x1f, _x2f, _x3f = (_x_sweep_intrinsic(stages, True) for stages in (1, 2, 3))


@njit(cache=True)
def x_rotation_coefficients(beta, n):
    """((coefficient, cr, ci), flip) of e^{−iβX} in shear form (above), C = cr + i·ci the factor of n qubits."""
    shift = math.floor(beta / math.pi + 0.5)
    b = beta - math.pi * shift  # in [−π/2, π/2): e^{−iβX} = (−1)^shift e^{−ibX} on each qubit
    c = math.cos(b)
    s = math.sin(b)
    sign = -1.0 if (int(shift) * n) % 2 else 1.0
    if abs(b) <= math.pi / 4:
        return (s / c, sign * c ** n, 0.0), False
    magnitude = sign * s ** n
    quarter = n % 4  # (−i)^n
    return (-c / s, (magnitude, 0.0, -magnitude, 0.0)[quarter], (0.0, -magnitude, 0.0, magnitude)[quarter]), True


@njit(cache=True)
def _x_sweep(xf, q, stages, c, flip):
    """The sweep intrinsic for (stages, flip)."""
    if flip:
        if stages == 3:
            _x3f(xf, q, c)
        elif stages == 2:
            _x2f(xf, q, c)
        else:
            _x1f(xf, q, c)
    elif stages == 3:
        _x3(xf, q, c)
    elif stages == 2:
        _x2(xf, q, c)
    else:
        _x1(xf, q, c)


@njit(cache=True)
def apply_x_rotations(xf, b0, k, c, flip):
    """xf ← (e^{−iβX})^{⊗k} on complex bits b0 … b0+k−1 of a tile's float view, (c, flip) from
    :func:`x_rotation_coefficients`: b0 = 0 (k ≥ 4): bits 0–3 in registers, times C; then up to three bits a
    sweep (b0 ≥ 2: unscaled)."""
    q = b0
    if b0 == 0:
        for g in range(0, xf.size, 32):
            if flip:
                _x_low_flip(xf, g, c)
            else:
                _x_low(xf, g, c)
        q = 4
    while q < b0 + k:
        stages = min(3, b0 + k - q)
        _x_sweep(xf, q, stages, c, flip)
        q += stages


# --- the same mixer on two states at once, with ⟨λ|Σ_i X_i|φ⟩ (the adjoint gradient's overlap)
#
# Here in unitary form, (a, b) → (c·a − i·s·b, c·b − i·s·a), so both states stay normalised at every stage.
# X_i commutes with every factor of the mixer, so ⟨λ|X_i|φ⟩ can be taken from the pairs (a, b) of qubit i just
# before its stage: Σ conj(λ_a)·φ_b + conj(λ_b)·φ_a. The gradient needs only its imaginary part, which on
# interleaved floats is Σ_even − Σ_odd of l∘swap(f): accumulated in float64, reduced once a sweep.


def _x_unitary(builder, a, b, c, s_signed):
    """(c·a + s∘swap(b), c·b + s∘swap(a)) with s_signed = (s, −s) alternating: e^{−iβX} on the pair."""
    return (_fma(builder, c, a, builder.fmul(s_signed, _re_im_swap(builder, b))),
            _fma(builder, c, b, builder.fmul(s_signed, _re_im_swap(builder, a))))


def _as_double(builder, v):
    if isinstance(v.type.element, ir.DoubleType):
        return v
    return builder.fpext(v, ir.VectorType(ir.DoubleType(), v.type.count))


def _overlap_terms(builder, xa, xb, ya, yb):
    """The lanes of Im(conj(y_a)·x_b + conj(y_b)·x_a) before the alternating signs (l∘swap(f)), float64."""
    xa, xb, ya, yb = (_as_double(builder, v) for v in (xa, xb, ya, yb))
    return _fma(builder, ya, _re_im_swap(builder, xb), builder.fmul(yb, _re_im_swap(builder, xa)))


def _tree_sum(builder, values):
    """Σ values by pairs (short dependency chains)."""
    while len(values) > 1:
        values = [builder.fadd(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def _reduce_overlap(builder, v):
    """Σ_even − Σ_odd of the lanes of v (the imaginary part of the overlap), summed by halving."""
    lanes = v.type.count
    v = builder.fmul(v, ir.Constant(v.type, [1.0 if i % 2 == 0 else -1.0 for i in range(lanes)]))
    index = ir.IntType(32)
    width = lanes
    while width > 1:
        width //= 2
        low = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(index, width), list(range(width))))
        high = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(index, width), list(range(width, 2 * width))))
        v = builder.fadd(low, high)
    return builder.extract_element(v, ir.Constant(index, 0))


def _pair_valid(xf, yf, c, *integers):
    return (all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == xf.dtype
                for a in (xf, yf)) and isinstance(c, types.UniTuple) and c.dtype == xf.dtype and c.count == 2
            and all(isinstance(i, types.Integer) for i in integers))


_PAIR_LANES = 4  # floats a stream: two states × 2^stages streams stay in the 16 vector registers


def _pair_sweep(context, builder, signature, args, body, step_of):
    """The loops of a pair sweep inside one intrinsic: ``for start in range(0, size, step): for j in
    range(start, start + h, inner)`` with ``body(builder, data, j)`` returning overlap terms; the terms are
    summed into a float64 vector accumulator (kept in a register across iterations), reduced at the end."""
    xf, yf = (context.make_array(signature.args[i])(context, builder, args[i]) for i in (0, 1))
    size = builder.extract_value(xf.shape, 0)
    h, step, inner, lanes = step_of(builder)
    zero = ir.Constant(ir.VectorType(ir.DoubleType(), lanes), [0.0] * lanes)
    acc = cgutils.alloca_once_value(builder, zero)

    def step_body(j):
        terms = body(builder, (xf.data, yf.data), j)
        builder.store(builder.fadd(builder.load(acc), _tree_sum(builder, terms)), acc)

    _sweep_loops(builder, size, h, step, inner, step_body)
    return _reduce_overlap(builder, builder.load(acc))


def _x_pair_sweep_intrinsic(stages):
    """f(xf, yf, q, c) → Im⟨y|Σ_those X_i|x⟩, and on both states e^{−iβX} on complex bits q … q+stages−1 (q ≥ 1)
    in one sweep, streams of 4 floats (c = (cos β, sin β))."""

    @intrinsic
    def at(typingctx, xf, yf, q, c):
        if not _pair_valid(xf, yf, c, q):
            return None

        def codegen(context, builder, signature, args):
            element = context.get_data_type(signature.args[0].dtype)
            vector = ir.PointerType(ir.VectorType(element, _PAIR_LANES))
            q_ = context.cast(builder, args[2], signature.args[2], types.intp)
            h_ = builder.shl(ir.Constant(q_.type, 2), q_)
            cos = _splat(builder, builder.extract_value(args[3], 0), _PAIR_LANES)
            sin = _splat_signed(builder, builder.extract_value(args[3], 1), _PAIR_LANES, (1.0, -1.0))

            def step_of(builder):
                return h_, builder.shl(h_, ir.Constant(q_.type, stages)), ir.Constant(q_.type, _PAIR_LANES), _PAIR_LANES

            def body(builder, data, j):
                wx, wy = (_streams(builder, d, j, h_, 1 << stages, vector) for d in data)
                x = [builder.load(w, align=1) for w in wx]
                y = [builder.load(w, align=1) for w in wy]
                terms = []
                for r in range(stages):
                    k = 1 << r
                    for i in range(len(x)):
                        if not i & k:
                            terms.append(_overlap_terms(builder, x[i], x[i | k], y[i], y[i | k]))
                            x[i], x[i | k] = _x_unitary(builder, x[i], x[i | k], cos, sin)
                            y[i], y[i | k] = _x_unitary(builder, y[i], y[i | k], cos, sin)
                for w, value in zip(wx + wy, x + y):
                    builder.store(value, w, align=1)
                return terms

            return _pair_sweep(context, builder, signature, args, body, step_of)

        return types.float64(xf, yf, q, c), codegen

    return at


@intrinsic
def _x_pair_low(typingctx, xf, yf, c):
    """f(xf, yf, c) → Im⟨y|Σ_{i<4} X_i|x⟩, and e^{−iβX} on complex bits 0–3 of both states, 32 floats at a time
    as four 8-float parts: bits 2 and 3 pair whole parts (as a sweep's streams), bits 0 and 1 pair lanes inside
    a part, where every lane takes the same form from its partner's swapped lane (one shuffle a part; measured,
    one thread on AVX-512: 1.56 against 2.05 ns/amp for splitting and joining the vectors by bit)."""
    if not _pair_valid(xf, yf, c):
        return None
    lanes = 32
    width = _PART

    def codegen(context, builder, signature, args):
        cos = _splat(builder, builder.extract_value(args[2], 0), width)
        sin = _splat_signed(builder, builder.extract_value(args[2], 1), width, (1.0, -1.0))
        index = ir.VectorType(ir.IntType(32), width)

        def step_of(builder):
            n32 = ir.Constant(context.get_value_type(types.intp), lanes)
            return n32, n32, n32, width

        def body(builder, data, g):
            where = [_parts_at(builder, d, g, 4) for d in data]
            x, y = ([builder.load(w, align=1) for w in ws] for ws in where)
            terms = []
            for k in (1, 2):
                for q in range(4):
                    if not q & k:
                        terms.append(_overlap_terms(builder, x[q], x[q | k], y[q], y[q | k]))
                        x[q], x[q | k] = _x_unitary(builder, x[q], x[q | k], cos, sin)
                        y[q], y[q | k] = _x_unitary(builder, y[q], y[q | k], cos, sin)
            for k in (2, 4):
                partner_swapped = ir.Constant(index, [(i ^ k) ^ 1 for i in range(width)])
                for q in range(4):
                    xs = builder.shuffle_vector(x[q], x[q], partner_swapped)
                    ys = builder.shuffle_vector(y[q], y[q], partner_swapped)
                    terms.append(builder.fmul(_as_double(builder, y[q]), _as_double(builder, xs)))
                    x[q] = _fma(builder, cos, x[q], builder.fmul(sin, xs))
                    y[q] = _fma(builder, cos, y[q], builder.fmul(sin, ys))
            for ws, vs in zip(where, (x, y)):
                for w, value in zip(ws, vs):
                    builder.store(value, w, align=1)
            return terms

        return _pair_sweep(context, builder, signature, args, body, step_of)

    return types.float64(xf, yf, c), codegen


_xp1, _xp2 = (_x_pair_sweep_intrinsic(stages) for stages in (1, 2))


@njit(cache=True)
def apply_x_rotations_pair(xf, yf, b0, k, beta):
    """x, y ← (e^{−iβX})^{⊗k} on complex bits b0 … b0+k−1 of both tiles (float views); returns
    Im⟨y|Σ_{those qubits} X_i|x⟩ (before or after: the same). b0 = 0 needs k ≥ 4; b0 ≥ 1 any k."""
    c = (xf.dtype.type(math.cos(beta)), xf.dtype.type(math.sin(beta)))
    im = 0.0
    q = b0
    if b0 == 0:
        im = _x_pair_low(xf, yf, c)
        q = 4
    while q < b0 + k:
        if b0 + k - q >= 2:
            im += _xp2(xf, yf, q, c)
            q += 2
        else:
            im += _xp1(xf, yf, q, c)
            q += 1
    return im
