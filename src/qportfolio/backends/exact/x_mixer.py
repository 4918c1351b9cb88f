"""QAOA with the X mixer in cache tiles fused with the cost phases, and the adjoint gradient.

The mixer ``Π_i e^{−iβX_i}`` runs one stage a qubit, three qubits a sweep (:func:`.single_qubit.apply_x_rotations`:
each stage a shear ``a − i·t·b``, one multiply-add an entry, the n-qubit factor applied once); the adjoint undoes
it on φ and λ together (:func:`.single_qubit.apply_x_rotations_pair`), taking ``Im⟨λ|Σ_i X_i|φ⟩`` from each
qubit's pairs on the way. Where a high pass's runs are shorter than four amplitudes (n ≥ 31, or a small
``tile_bits``) the mixer on a tile's qubits S is ``W D W`` instead (W the unnormalised Walsh–Hadamard transform,
``D_j = e^{−iβ(|S| − 2·popcount j)}/2^|S|``), with
``⟨λ|Σ_i X_i|φ⟩ = Σ_j conj(Wλ)_j (|S| − 2·popcount j) (Wφ)_j / 2^|S|`` between the two W. The phases come from the energy table or, given the QUBO, from :mod:`.phases`.

Where numba's loop vectoriser cannot form the shuffles (the low complex bits inside a register, the re/im swap
of a complex product) the kernels are LLVM vector code (numba intrinsics), so every sweep runs at SIMD width.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qportfolio.backends.exact.kernels import (
    _cost_array,
    _DiagonalObjective,
    _expectation_serial,
    _high_tiles,
    _sincos,
    _split_theta,
    _stream_pointers,
    _threads,
    _weighted_copy,
    check_memory,
)
from qportfolio.backends.exact.phases import (
    BLOCK_BITS,
    QuboPhases,
    block_phases,
    gathered_tile_factors,
    multiply_block_phases,
    multiply_gathered_phases,
    multiply_rows,
    no_qubo_arguments,
    phase_table,
)
from qportfolio.backends.exact.single_qubit import apply_x_rotations, apply_x_rotations_pair, x_rotation_coefficients

# --------------------------------------------------------------------------- X-mixer kernels


@njit(cache=True, inline="always")
def _butterfly8(u0, u1, u2, u3, u4, u5, u6, u7):
    """The 8-point Walsh–Hadamard transform (index bit 0 = the u0/u1 pairing)."""
    s01 = u0 + u1
    d01 = u0 - u1
    s23 = u2 + u3
    d23 = u2 - u3
    s45 = u4 + u5
    d45 = u4 - u5
    s67 = u6 + u7
    d67 = u6 - u7
    t0 = s01 + s23
    t1 = d01 + d23
    t2 = s01 - s23
    t3 = d01 - d23
    t4 = s45 + s67
    t5 = d45 + d67
    t6 = s45 - s67
    t7 = d45 - d67
    return t0 + t4, t1 + t5, t2 + t6, t3 + t7, t0 - t4, t1 - t5, t2 - t6, t3 - t7


# --- LLVM-vector kernels (numba intrinsics)


def _vector_stage(builder, v, lanes, k):
    """One Walsh–Hadamard stage between lanes i and i + k (i & k = 0) of an LLVM vector of ``lanes``."""
    lo = [i for i in range(lanes) if not i & k]
    back = [0] * lanes
    for pos, i in enumerate(lo):
        back[i] = pos
        back[i | k] = lanes // 2 + pos
    index = ir.IntType(32)
    a = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(index, lanes // 2), lo))
    b = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(index, lanes // 2), [i | k for i in lo]))
    return builder.shuffle_vector(builder.fadd(a, b), builder.fsub(a, b), ir.Constant(ir.VectorType(index, lanes), back))


def _low_wht_intrinsic(lanes):
    """An intrinsic f(xf, start): xf[start:start+lanes] ← its Walsh–Hadamard transform on float strides
    2 … lanes/2 (complex bits 0 … log2(lanes)−2), as one LLVM vector: the in-register shuffles that numba's
    loop vectoriser does not form (its SLP vectoriser is off). No bounds check: start + lanes ≤ xf.size."""

    @intrinsic
    def at(typingctx, xf, start):
        if not (isinstance(xf, types.Array) and xf.ndim == 1 and xf.layout == "C"
                and isinstance(start, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            element = context.get_data_type(signature.args[0].dtype)
            where = builder.bitcast(builder.gep(data, [args[1]]), ir.PointerType(ir.VectorType(element, lanes)))
            v = builder.load(where, align=1)
            k = 2
            while k < lanes:
                v = _vector_stage(builder, v, lanes, k)
                k *= 2
            builder.store(v, where, align=1)
            return context.get_dummy_value()

        return types.void(xf, start), codegen

    return at


_wht16_at = _low_wht_intrinsic(16)
_wht32_at = _low_wht_intrinsic(32)


@njit(cache=True)
def _wht_low(xf, bits):
    """Walsh–Hadamard transform on complex bits 0 … bits−1 (bits = 3 or 4) of each 2^(bits+1) floats."""
    if bits == 4:
        for g in range(0, xf.size - 31, 32):
            _wht32_at(xf, g)
    else:
        for g in range(0, xf.size - 15, 16):
            _wht16_at(xf, g)


def _vector_butterfly8(builder, u):
    """The 8-point Walsh–Hadamard transform of eight LLVM vectors (element-wise)."""
    for k in (1, 2, 4):
        out = list(u)
        for i in range(8):
            if not i & k:
                out[i] = builder.fadd(u[i], u[i | k])
                out[i | k] = builder.fsub(u[i], u[i | k])
        u = out
    return u


@intrinsic
def _radix8_at(typingctx, xf, pos, h):
    """v_s = xf[pos + s·h :][:8] for the eight streams s ← the 8-point transform across them (LLVM vectors)."""
    if not (isinstance(xf, types.Array) and xf.ndim == 1 and xf.layout == "C" and isinstance(pos, types.Integer)
            and isinstance(h, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        where = _stream_pointers(context, builder, signature.args[0], args[0],
                                 *(context.cast(builder, args[i], signature.args[i], types.intp) for i in (1, 2)))
        for w, v in zip(where, _vector_butterfly8(builder, [builder.load(w, align=1) for w in where])):
            builder.store(v, w, align=1)
        return context.get_dummy_value()

    return types.void(xf, pos, h), codegen


@njit(cache=True)
def _wht_radix8(x, q):
    """Three Walsh–Hadamard stages (float bits q, q+1, q+2) in one sweep, eight streams in registers: for
    short streams (q < 7, L1-resident sub-blocks) as LLVM vectors (no per-group slice set-up or overlap
    checks), else as eight slices, whose loop over j vectorises."""
    h = 1 << q
    if 3 <= q < 7:
        for start in range(0, x.size, 8 * h):
            for j in range(start, start + h, 8):
                _radix8_at(x, j, h)
        return
    for start in range(0, x.size, 8 * h):
        a0 = x[start:start + h]
        a1 = x[start + h:start + 2 * h]
        a2 = x[start + 2 * h:start + 3 * h]
        a3 = x[start + 3 * h:start + 4 * h]
        a4 = x[start + 4 * h:start + 5 * h]
        a5 = x[start + 5 * h:start + 6 * h]
        a6 = x[start + 6 * h:start + 7 * h]
        a7 = x[start + 7 * h:start + 8 * h]
        for j in range(h):
            a0[j], a1[j], a2[j], a3[j], a4[j], a5[j], a6[j], a7[j] = _butterfly8(
                a0[j], a1[j], a2[j], a3[j], a4[j], a5[j], a6[j], a7[j])


@njit(cache=True)
def _wht_radix4(x, q):
    h = 1 << q
    for start in range(0, x.size, 4 * h):
        a0 = x[start:start + h]
        a1 = x[start + h:start + 2 * h]
        a2 = x[start + 2 * h:start + 3 * h]
        a3 = x[start + 3 * h:start + 4 * h]
        for j in range(h):
            s01 = a0[j] + a1[j]
            d01 = a0[j] - a1[j]
            s23 = a2[j] + a3[j]
            d23 = a2[j] - a3[j]
            a0[j] = s01 + s23
            a1[j] = d01 + d23
            a2[j] = s01 - s23
            a3[j] = d01 - d23


@njit(cache=True)
def _wht_radix2(x, q):
    h = 1 << q
    for start in range(0, x.size, 2 * h):
        a = x[start:start + h]
        b = x[start + h:start + 2 * h]
        for j in range(h):
            t = a[j]
            u = b[j]
            a[j] = t + u
            b[j] = t - u


@njit(cache=True)
def _wht(xf, b0, k):
    """Unnormalised Walsh–Hadamard transform on complex bits b0 … b0+k-1 of a tile given as its
    interleaved float view xf (complex bit q = float bit q+1; real coefficients, so the float
    loops vectorise; complex bits 0…3, inside a vector register, by :func:`_wht_low`). Three stages a
    sweep: a sweep of an L2-resident tile costs about as much as a radix-4 one (measured 0.66 vs 0.95
    ns/amp for six bits of a 1 MiB tile)."""
    q = b0 + 1
    end = b0 + k + 1
    if b0 == 0 and k >= 3:
        low = min(k, 4)
        _wht_low(xf, low)
        q = low + 1
    while q + 2 < end:
        _wht_radix8(xf, q)
        q += 3
    if q + 1 < end:
        _wht_radix4(xf, q)
        q += 2
    if q < end:
        _wht_radix2(xf, q)


_SUB_BITS = 10  # 2^10 amplitudes (16 KiB in complex128) stay in L1 for the low part of a mixer


@njit(cache=True)
def _mixer_table(k, beta, out):
    """out[j] = exp(-iβ(k - 2·popcount(j))) / 2^k for j < 2^k: D_T of the module docstring."""
    out[0] = complex(math.cos(beta * k), -math.sin(beta * k)) / (1 << k)
    up = complex(math.cos(2.0 * beta), math.sin(2.0 * beta))
    for t in range(k):
        for j in range(1 << t):
            out[j | (1 << t)] = out[j] * up


@njit(cache=True)
def _multiply_runs(xf, re, im, shift, mask):
    """x_j ← x_j·(re + i·im)[(j >> shift) & mask] on the float view xf: a constant factor per run of
    2^shift amplitudes, so the inner loop vectorises (shift 0: the rows repeat every mask + 1 amplitudes)."""
    if shift == 0:
        period = mask + 1
        for start in range(0, xf.size // 2, period):
            multiply_rows(xf[2 * start:2 * (start + period)], re[:period], im[:period])
        return
    run = 2 << shift
    for r in range(xf.size // run):
        c = r & mask
        v = xf[r * run:(r + 1) * run]
        fr = re[c]
        fi = im[c]
        for a in range(run // 2):
            xr = v[2 * a]
            xi = v[2 * a + 1]
            v[2 * a] = xr * fr - xi * fi
            v[2 * a + 1] = xr * fi + xi * fr


def _mixer8_intrinsic(per_amplitude):
    """An intrinsic f(xf, pos, h, re, im, t, stride): for the eight streams s, v_s = xf[pos + s·h :][:8] (four
    complex numbers each): v ← W(D(Wv)), W the 8-point transform across streams, D_s = re + i·im at
    t + s·stride (per_amplitude: the four consecutive entries there, one per complex number; else that one
    entry for all four), as LLVM vectors: the re/im swap of the complex product is a shuffle the loop
    vectoriser does not form. No bounds check."""

    @intrinsic
    def at(typingctx, xf, pos, h, re, im, t, stride):
        arrays = (xf, re, im)
        if not (all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == xf.dtype
                    for a in arrays) and all(isinstance(i, types.Integer) for i in (pos, h, t, stride))):
            return None

        def codegen(context, builder, signature, args):
            rows_re, rows_im = (context.make_array(signature.args[i])(context, builder, args[i]).data for i in (3, 4))
            pos_, h_, t_, stride_ = (context.cast(builder, args[i], signature.args[i], types.intp) for i in (1, 2, 5, 6))
            element = context.get_data_type(signature.args[0].dtype)
            vector = ir.VectorType(element, 8)
            index = ir.IntType(32)

            def offset(base, step, s):
                return builder.add(base, builder.mul(step, ir.Constant(step.type, s)))

            where = _stream_pointers(context, builder, signature.args[0], args[0], pos_, h_)
            p = _vector_butterfly8(builder, [builder.load(w, align=1) for w in where])
            if per_amplitude:
                quad = ir.VectorType(element, 4)
                spread = ir.Constant(ir.VectorType(index, 8), [0, 0, 1, 1, 2, 2, 3, 3])

                def factor(rows, s):
                    v = builder.load(builder.bitcast(builder.gep(rows, [offset(t_, stride_, s)]), ir.PointerType(quad)),
                                     align=1)
                    return builder.shuffle_vector(v, v, spread)
            else:
                undefined = ir.Constant(vector, ir.Undefined)
                splat = ir.Constant(ir.VectorType(index, 8), [0] * 8)

                def factor(rows, s):
                    scalar = builder.load(builder.gep(rows, [offset(t_, stride_, s)]))
                    return builder.shuffle_vector(builder.insert_element(undefined, scalar, ir.Constant(index, 0)),
                                                  undefined, splat)

            swap = ir.Constant(ir.VectorType(index, 8), [1, 0, 3, 2, 5, 4, 7, 6])
            sign = ir.Constant(vector, [-1.0, 1.0] * 4)
            q = []
            for s in range(8):
                # (re, im)·(f + ig) = (re·f − im·g, im·f + re·g): f·v + sign·g·swap(v)
                cross = builder.fmul(sign, builder.fmul(builder.shuffle_vector(p[s], p[s], swap), factor(rows_im, s)))
                q.append(builder.fadd(builder.fmul(p[s], factor(rows_re, s)), cross))
            for w, v in zip(where, _vector_butterfly8(builder, q)):
                builder.store(v, w, align=1)
            return context.get_dummy_value()

        return types.void(xf, pos, h, re, im, t, stride), codegen

    return at


_mixer8_amplitudes_at = _mixer8_intrinsic(True)
_mixer8_runs_at = _mixer8_intrinsic(False)


@njit(cache=True)
def _mixer_top3(xf, b0, k, re, im):
    """W·D·W restricted to the top three mixed bits b0+k−3 … b0+k−1 in one sweep, for
    D_j = (re + i·im)[(j >> b0) mod 2^k] (rows of the float type), b0 = 0 or b0 ≥ 2 (runs of ≥ 4 amplitudes
    with one factor), k ≥ 3 (k ≥ 5 for b0 = 0). With W over bits b0 … b0+k−4 on either side this is the
    whole mixer on those k bits (D factorises over the qubits)."""
    h = 2 << (b0 + k - 3)
    stride = 1 << (k - 3)
    for start in range(0, xf.size, 8 * h):
        if b0 == 0:
            for pos in range(0, h, 8):
                _mixer8_amplitudes_at(xf, start + pos, h, re, im, pos >> 1, stride)
        else:
            for pos in range(0, h, 8):
                _mixer8_runs_at(xf, start + pos, h, re, im, pos >> (b0 + 1), stride)


@njit(cache=True)
def _tile_ops(x, e, kinds, values, mixers, b0, k, sub, phases, tables, where):
    """Apply the ops to a tile whose bits b0…b0+k-1 are the mixed qubits (others: independent).

    With b0 = 0 a mixer is split into its part on bits 0…sub-1, done inside L1-sized sub-blocks, and its
    part on bits sub…k-1, done over the whole tile (sub = 0 otherwise). ``mixers`` (:func:`_mixer_arguments`):
    the shear coefficients of :func:`.single_qubit.apply_x_rotations` (one stage a qubit; empty: none) or else
    W·D·W with the D tables. A phase reads the energies ``e`` or, given a QUBO (``phases``, see
    :func:`_phase_tile`), none; one followed by such a mixer is applied to each sub-block just before it (one
    sweep of the tile fewer).
    """
    tab_sub, tab_top, rotations, flips = mixers
    direct = rotations.shape[0] > 0
    xf = x.view(x.real.dtype)
    bs = 1 << sub
    top_bits = k - sub
    top_shift = b0 + sub
    top_mask = (1 << top_bits) - 1
    base, run_bits, shift = where
    scratch = phase_scratch(phases)
    for o in range(kinds.size):
        if kinds[o] == 0:
            if not (sub > 0 and run_bits >= sub and o + 1 < kinds.size and kinds[o + 1] == 1):
                _phase_tile(x, e, values[o], o, phases, tables, where, scratch)
            continue
        if direct:
            c = (rotations[o, 0], rotations[o, 1], rotations[o, 2])
            flip = flips[o] != 0
        if sub > 0:
            ts = tab_sub[o]
            phase_first = o > 0 and kinds[o - 1] == 0 and run_bits >= sub  # deferred from above: sub-block-wise
            for start in range(0, x.size, bs):
                if phase_first:
                    z = ((start >> run_bits) << shift) | base | (start & ((1 << run_bits) - 1))
                    _phase_tile(x[start:start + bs], e[start:start + bs], values[o - 1], o - 1, phases, tables,
                                (z, sub, sub), scratch)
                vf = xf[2 * start:2 * start + 2 * bs]
                if direct:
                    apply_x_rotations(vf, 0, sub, c, flip)
                elif sub >= 5:
                    _wht(vf, 0, sub - 3)
                    _mixer_top3(vf, 0, sub, ts[0], ts[1])
                    _wht(vf, 0, sub - 3)
                else:
                    _wht(vf, 0, sub)
                    multiply_rows(vf, ts[0], ts[1])
                    _wht(vf, 0, sub)
        if top_bits > 0 and direct:
            apply_x_rotations(xf, top_shift, top_bits, c, flip)
        elif top_bits >= 3 and top_shift >= 2:
            tt = tab_top[o]
            _wht(xf, top_shift, top_bits - 3)
            _mixer_top3(xf, top_shift, top_bits, tt[0], tt[1])
            _wht(xf, top_shift, top_bits - 3)
        elif top_bits > 0:
            tt = tab_top[o]
            _wht(xf, top_shift, top_bits)
            _multiply_runs(xf, tt[0], tt[1], top_shift, top_mask)
            _wht(xf, top_shift, top_bits)


@njit(cache=True)
def phase_scratch(phases):
    """The scratch :func:`_phase_tile` takes: a block's phases (2, 2^m) and 2n floats, allocated once a tile."""
    return np.empty((2, 1 << phases[3])), np.empty(2 * phases[1].size)


@njit(cache=True)
def _phase_tile(x, e, g, o, phases, tables, where, scratch):
    """x ← e^{−igE} x on a tile. ``phases`` = (pair, diag, const, m, low_energies): a QUBO (empty pair:
    use ``e``) and the energies E_a of blocks of 2^m (:mod:`.phases`); ``where`` = (base, run_bits, shift):
    tile index j is basis state ((j >> run_bits) << shift) | base | (j mod 2^run_bits); ``tables[o]``:
    :func:`_phase_tables`' (block by block, or for a gathered tile of short runs from the base-0 tile's);
    ``scratch``: :func:`phase_scratch`'s."""
    pair, diag, const, m, _ = phases
    if pair.shape[0] == 0:
        for j in range(x.size):
            s, c = _sincos(g * e[j])
            x[j] = x[j] * complex(c, -s)
        return
    base, run_bits, shift = where
    table = tables[o]
    out, w = scratch
    if _short_runs(run_bits, shift):  # its base-0 phases (the table) times the base's factors
        a = np.empty((2, 1 << run_bits))
        b = np.empty((2, x.size >> run_bits))
        gathered_tile_factors(a, b, base, run_bits, shift, g, pair, diag, w)
        multiply_gathered_phases(x.view(x.real.dtype), table, a, b, np.empty((2, 1 << run_bits)))
        return
    _multiply_blocks(x, where, m, g, table, pair, diag, const, out, w)


@njit(cache=True)
def _multiply_blocks(x, where, m, g, table, pair, diag, const, out, w):
    """x ← e^{−igE} x block by block (:func:`.phases.multiply_block_phases`; ``where`` as :func:`_phase_tile`'s)."""
    base, run_bits, shift = where
    run_mask = (1 << run_bits) - 1
    for start in range(0, x.size, 1 << m):
        z = ((start >> run_bits) << shift) | base | (start & run_mask)
        multiply_block_phases(x, start, z, m, g, table, pair, diag, const, out, w)


@njit(cache=True)
def _tables(kinds, values, k, sub, dtype_array):
    """D over the sub qubits and over the top ones (D over k qubits is their product) for each mixer op,
    as real and imaginary rows of the state's float type: shapes (ops, 2, 2^sub) and (ops, 2, 2^(k−sub))."""
    real = dtype_array.real.dtype
    tab_sub = np.empty((kinds.size, 2, 1 << sub), dtype=real)
    tab_top = np.empty((kinds.size, 2, 1 << (k - sub)), dtype=real)
    d_sub = np.empty(1 << sub, dtype=dtype_array.dtype)
    d_top = np.empty(1 << (k - sub), dtype=dtype_array.dtype)
    for o in range(kinds.size):
        if kinds[o] == 1:
            _mixer_table(sub, values[o], d_sub)
            _mixer_table(k - sub, values[o], d_top)
            tab_sub[o, 0] = d_sub.real
            tab_sub[o, 1] = d_sub.imag
            tab_top[o, 0] = d_top.real
            tab_top[o, 1] = d_top.imag
    return tab_sub, tab_top


@njit(cache=True)
def _mixer_arguments(kinds, values, k, sub, direct, psi):
    """What :func:`_tile_ops` takes for its mixers: the D tables (:func:`_tables`) and, when ``direct``, each
    mixer op's shear coefficients for the mixer on all n qubits of ``psi`` (:func:`.single_qubit.x_rotation_
    coefficients`; its factor C applied with the tiles' bits 0–3) as rows of the state's float type, and flips."""
    tab_sub, tab_top = _tables(kinds, values, k, sub, psi)
    n = 0
    while (1 << n) < psi.size:
        n += 1
    rotations = np.zeros((kinds.size if direct else 0, 3), dtype=psi.real.dtype)
    flips = np.zeros(kinds.size, dtype=np.int64)
    if direct:
        for o in range(kinds.size):
            if kinds[o] == 1:
                c, flip = x_rotation_coefficients(values[o], n)
                rotations[o, 0], rotations[o, 1], rotations[o, 2] = c
                flips[o] = flip
    return tab_sub, tab_top, rotations, flips


@njit(cache=True, inline="always")
def _short_runs(run_bits, shift):
    """Whether a pass's tiles gather runs shorter than a phase block (:data:`.phases.BLOCK_BITS`)."""
    return run_bits < shift and run_bits < BLOCK_BITS


@njit(cache=True)
def _phase_tables(kinds, values, phases, run_bits, shift, size):
    """For each phase op, given a QUBO, what :func:`_phase_tile` takes: the table T of :mod:`.phases`, or for
    tiles of ``size`` amplitudes that gather runs of 2^run_bits shorter than a block (the rest of the tile's
    bits from bit ``shift`` up), the phases of the tile with base 0."""
    pair, diag, const, m, low_energies = phases
    gathered = _short_runs(run_bits, shift) and pair.shape[0] > 0
    tables = np.ones((kinds.size, 2, size if gathered else low_energies.size))
    if pair.shape[0] == 0:
        return tables
    out = np.empty((2, 1 << m))
    w = np.empty(2 * diag.size)
    for o in range(kinds.size):
        if kinds[o] == 0:
            t = phase_table(low_energies, values[o])
            if not gathered:
                tables[o] = t
                continue
            tile = np.ones(size, dtype=np.complex128)
            _multiply_blocks(tile, (0, run_bits, shift), m, values[o], t, pair, diag, const, out, w)
            tables[o, 0] = tile.real
            tables[o, 1] = tile.imag
    return tables


@njit(cache=True, parallel=True)
def _pass_low(psi, energy, bits, kinds, values, init, expect, phases, direct):
    """Apply ops to each contiguous tile of 2^bits amplitudes (mixers act on bits 0…bits-1).

    ops: kind 0 = phase exp(-i·value·E), kind 1 = mixer on the tile's bits with β = value.
    init ≠ 0: the tiles start as the constant ``init`` instead of being read. expect: return
    Σ|ψ|²E of the result without writing the state back. phases: see :func:`_phase_tile`.
    """
    size = 1 << bits
    ntiles = psi.size >> bits
    sub = min(bits, _SUB_BITS)
    mixers = _mixer_arguments(kinds, values, bits, sub, direct, psi)
    tables = _phase_tables(kinds, values, phases, bits, bits, size)
    acc = np.zeros(ntiles)
    for t in prange(ntiles):
        off = t * size
        if expect:
            x = psi[off:off + size].copy()
        else:
            x = psi[off:off + size]
        if init != 0:
            x[:] = init
        e = energy[off:off + size]
        _tile_ops(x, e, kinds, values, mixers, 0, bits, sub, phases, tables, (off, bits, bits))
        if expect:
            acc[t] = _expectation_serial(x, e)
    return acc.sum()


@njit(cache=True, parallel=True)
def _pass_high(psi, energy, low_bits, run_bits, kinds, values, expect, phases, direct):
    """Like :func:`_pass_low` for the high bits: a tile gathers 2^(n-low_bits) runs of 2^run_bits
    amplitudes; the high qubits are the tile's bits run_bits….""" 
    nh, kh, run, size, ntiles = _high_tiles(psi.size, low_bits, run_bits)
    mixers = _mixer_arguments(kinds, values, kh, 0, direct, psi)
    tables = _phase_tables(kinds, values, phases, run_bits, low_bits, size)
    need_e = expect
    for o in range(kinds.size):
        if kinds[o] == 0 and phases[0].shape[0] == 0:
            need_e = True
    acc = np.zeros(ntiles)
    for t in prange(ntiles):
        x = np.empty(size, dtype=psi.dtype)
        e = np.empty(size if need_e else 0)
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            x[h * run:(h + 1) * run] = psi[src:src + run]
            if need_e:
                e[h * run:(h + 1) * run] = energy[src:src + run]
        where = (t << run_bits, run_bits, low_bits)
        _tile_ops(x, e, kinds, values, mixers, run_bits, kh, 0, phases, tables, where)
        if expect:
            acc[t] = _expectation_serial(x, e)
        else:
            for h in range(nh):
                src = (h << low_bits) | (t << run_bits)
                psi[src:src + run] = x[h * run:(h + 1) * run]
    return acc.sum()


@njit(cache=True)
def _z_weights(k):
    """w[j] = k − 2·popcount(j) for j < 2^k: the eigenvalue of Σ Z_i on |j⟩."""
    w = np.empty(1 << k)
    w[0] = k
    for t in range(k):
        for j in range(1 << t):
            w[j | (1 << t)] = w[j] - 2.0
    return w


@njit(cache=True, fastmath={"reassoc"})
def _weighted_overlap(xf, yf, weights, shift, mask):
    """Σ_j conj(y_j) x_j w[(j >> shift) & mask] from the float views, in float64: the sums may be reordered
    (vectorised; a rounding-level change), each run of 2^shift amplitudes (or w's period, for shift 0) first."""
    re = 0.0
    im = 0.0
    period = 1 << shift if shift > 0 else mask + 1
    for r in range(xf.size // (2 * period)):
        v = xf[2 * r * period:2 * (r + 1) * period]
        u = yf[2 * r * period:2 * (r + 1) * period]
        if shift > 0:
            pr = 0.0
            pi = 0.0
            for a in range(period):
                xr, xi, yr, yi = float(v[2 * a]), float(v[2 * a + 1]), float(u[2 * a]), float(u[2 * a + 1])
                pr += yr * xr + yi * xi
                pi += yr * xi - yi * xr
            w = weights[r & mask]
            re += w * pr
            im += w * pi
        else:
            for a in range(period):
                xr, xi, yr, yi = float(v[2 * a]), float(v[2 * a + 1]), float(u[2 * a]), float(u[2 * a + 1])
                re += weights[a] * (yr * xr + yi * xi)
                im += weights[a] * (yr * xi - yi * xr)
    return complex(re, im)


@njit(cache=True)
def _mixer_pair(x, y, table, weights, b0, k):
    """The mixer W·D·W on bits b0…b0+k−1 of the tiles x (φ) and y (λ) alike, and, from the middle, where
    Σ X_i = W (Σ Z_i) W / 2^k is diagonal, ⟨λ|Σ_{those qubits} X_i|φ⟩ = Σ_j conj(Wλ)_j w_j (Wφ)_j / 2^k."""
    xf = x.view(x.real.dtype)
    yf = y.view(y.real.dtype)
    _wht(xf, b0, k)
    _wht(yf, b0, k)
    mask = (1 << k) - 1
    acc = _weighted_overlap(xf, yf, weights, b0, mask)
    _multiply_runs(xf, table[0], table[1], b0, mask)
    _multiply_runs(yf, table[0], table[1], b0, mask)
    _wht(xf, b0, k)
    _wht(yf, b0, k)
    return acc / (1 << k)


@njit(cache=True)
def _dot_and_phase_pair(x, y, e, g, phases, table, base):
    """Σ_j conj(y_j) e_j x_j, then x, y ← e^{−igE} x, y, on a tile of consecutive basis states from
    ``base`` (phases from ``e`` or, given a QUBO, from :mod:`.phases` with ``table``)."""
    pair, diag, const, m, _ = phases
    acc = _weighted_overlap(x.view(x.real.dtype), y.view(y.real.dtype), e, 0, x.size - 1)
    if pair.shape[0] == 0:
        for j in range(x.size):
            s, c = _sincos(g * e[j])
            f = complex(c, -s)
            x[j] = x[j] * f
            y[j] = y[j] * f
        return acc
    out = np.empty((2, 1 << m))
    w = np.empty(2 * diag.size)
    xf = x.view(x.real.dtype)
    yf = y.view(y.real.dtype)
    for start in range(0, x.size, 1 << m):
        block_phases(out, base + start, m, g, table, pair, diag, const, w)
        multiply_rows(xf[2 * start:2 * (start + (1 << m))], out[0], out[1])
        multiply_rows(yf[2 * start:2 * (start + (1 << m))], out[0], out[1])
    return acc


@njit(cache=True, parallel=True)
def _pass_low_pair(phi, lam, bits, beta, energy, g, phases, direct):
    """The mixer on bits 0…bits−1 of φ and λ alike, tile by tile (sub-blocks of 2^_SUB_BITS first, as in
    :func:`_tile_ops`; ``direct``: one stage a qubit, :func:`.single_qubit.apply_x_rotations_pair`, else W·D·W),
    then :func:`_dot_and_phase_pair` with ``g``; returns (Im⟨λ|Σ_{i<bits} X_i|φ⟩, that dot)."""
    size = 1 << bits
    sub = min(bits, _SUB_BITS)
    top = bits - sub
    bs = 1 << sub
    one = np.ones(1, dtype=np.int64)
    tab_sub, tab_top = _tables(one, np.array([beta]), bits, sub, phi)
    w_sub = _z_weights(sub)
    w_top = _z_weights(top)
    table = phase_table(phases[4], g)
    ntiles = phi.size >> bits
    acc = np.zeros(ntiles)
    dots = np.zeros(ntiles, dtype=np.complex128)
    for t in prange(ntiles):
        x = phi[t * size:(t + 1) * size]
        y = lam[t * size:(t + 1) * size]
        s = 0.0
        if direct:
            xf = x.view(x.real.dtype)
            yf = y.view(y.real.dtype)
            for start in range(0, size, bs):
                s += apply_x_rotations_pair(xf[2 * start:2 * (start + bs)], yf[2 * start:2 * (start + bs)], 0, sub,
                                            beta)
            if top > 0:
                s += apply_x_rotations_pair(xf, yf, sub, top, beta)
        else:
            for start in range(0, size, bs):
                s += _mixer_pair(x[start:start + bs], y[start:start + bs], tab_sub[0], w_sub, 0, sub).imag
            if top > 0:
                s += _mixer_pair(x, y, tab_top[0], w_top, sub, top).imag
        acc[t] = s
        dots[t] = _dot_and_phase_pair(x, y, energy[t * size:(t + 1) * size], g, phases, table, t * size)
    return acc.sum(), dots.sum()


@njit(cache=True, parallel=True)
def _pass_high_pair(phi, lam, low_bits, run_bits, beta, direct):
    """The mixer on bits low_bits…n−1 of φ and λ alike, on gathered tiles as in :func:`_pass_high`;
    returns Im⟨λ|Σ_{i≥low_bits} X_i|φ⟩."""
    nh, kh, run, size, ntiles = _high_tiles(phi.size, low_bits, run_bits)
    one = np.ones(1, dtype=np.int64)
    tab_top = _tables(one, np.array([beta]), kh, 0, phi)[1]
    weights = _z_weights(kh)
    acc = np.zeros(ntiles)
    for t in prange(ntiles):
        x = np.empty(size, dtype=phi.dtype)
        y = np.empty(size, dtype=lam.dtype)
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            x[h * run:(h + 1) * run] = phi[src:src + run]
            y[h * run:(h + 1) * run] = lam[src:src + run]
        if direct:
            acc[t] = apply_x_rotations_pair(x.view(x.real.dtype), y.view(y.real.dtype), run_bits, kh, beta)
        else:
            acc[t] = _mixer_pair(x, y, tab_top[0], weights, run_bits, kh).imag
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            phi[src:src + run] = x[h * run:(h + 1) * run]
            lam[src:src + run] = y[h * run:(h + 1) * run]
    return acc.sum()


class QAOASimulator(_DiagonalObjective):
    """Exact QAOA with the X mixer on ``n = log2(len(cost_diagonal))`` qubits.

    ``cost_diagonal`` E[z] is in original units (objectives are reported in them); the cost layer
    is ``exp(-i γ · phase_scale · E)``. ``tile_bits``: log2 of amplitudes per cache tile. ``qubo``
    (a :class:`~qportfolio.encoding.qubo.Qubo` or :class:`~.phases.QuboPhases`) whose energies are
    ``cost_diagonal``: the phases are then built from it (:mod:`.phases`) and the energies are read
    only for the objective; a QUBO that does not reproduce the diagonal is ignored.
    """

    def __init__(self, cost_diagonal, *, phase_scale: float = 1.0, dtype=np.complex128,
                 tile_bits: int | None = None, qubo=None):
        super().__init__(None, phase_scale, dtype)
        size = len(cost_diagonal)
        copies = not (isinstance(cost_diagonal, np.ndarray) and cost_diagonal.dtype == np.float64)
        check_memory((self.dtype.itemsize + 8.0 * copies) * size,
                     f"the {max(size, 1).bit_length() - 1}-qubit QAOA state")
        self.cost = _cost_array(cost_diagonal)
        self.n = self.cost.size.bit_length() - 1
        if tile_bits is None:
            tile_bits = 16
        self.low_bits = min(self.n, max(tile_bits, (self.n + 3) // 2))
        self.run_bits = max(0, min(self.low_bits, tile_bits - (self.n - self.low_bits)))
        # one stage a qubit (single_qubit.apply_x_rotations) where its sweeps apply: sub-blocks of ≥ 4 bits and
        # high-pass runs of ≥ 4 amplitudes; else W·D·W
        self.direct = min(self.low_bits, _SUB_BITS) >= 4 and (self.low_bits == self.n or self.run_bits >= 2)
        self._psi = np.empty(self.cost.size, dtype=self.dtype)
        self.qubo_phases = _checked_phases(qubo, self.cost)

    @classmethod
    def required_bytes(cls, n: int, dtype=np.complex128) -> float:
        """Memory of the state and the float64 diagonal for ``n`` qubits."""
        return (np.dtype(dtype).itemsize + 8.0) * 2.0**n

    def _passes(self, beta, gamma):
        """[(kind 'low'|'high', kinds, values)] implementing P₁L₁ | H₁P₂H₂ | L₂P₃L₃ | … ."""
        g = gamma * self.phase_scale
        p = beta.size
        if self.low_bits == self.n:
            kinds = np.array([0, 1] * p, dtype=np.int64)
            values = np.ravel(np.column_stack([g, beta]))
            return [("low", kinds, values)]
        passes = [("low", np.array([0, 1]), np.array([g[0], beta[0]]))]
        for j in range(1, p):
            passes.append(("high" if j % 2 else "low", np.array([1, 0, 1]),
                           np.array([beta[j - 1], g[j], beta[j]])))
        passes.append(("high" if p % 2 else "low", np.array([1]), np.array([beta[p - 1]])))
        return passes

    def _run(self, theta, expect: bool):
        beta, gamma = _split_theta(theta)
        psi = self._psi
        init = 1.0 / math.sqrt(psi.size)
        passes = [(where, kinds.astype(np.int64), values.astype(np.float64))
                  for where, kinds, values in self._passes(beta, gamma)]
        value = 0.0
        for i, (where, kinds, values) in enumerate(passes):
            last = expect and i == len(passes) - 1
            phases = self._phase_arguments(where)
            if where == "low":
                value = _pass_low(psi, self.cost, self.low_bits, kinds, values, init if i == 0 else 0.0, last,
                                  phases, self.direct)
            else:
                value = _pass_high(psi, self.cost, self.low_bits, self.run_bits, kinds, values, last, phases,
                                   self.direct)
        return value

    def _phase_arguments(self, where):
        return pass_phases(self.qubo_phases, self.low_bits if where == "low" else self.run_bits)

    def traffic_per_amplitude(self, p: int) -> float:
        """Bytes the pass plan of one :meth:`expectation` at depth ``p`` moves per amplitude: each pass reads
        and writes the state (the first only writes it, the last only reads it), and a pass reads the
        energies when its phases come from the table or it evaluates ⟨E⟩."""
        theta = np.zeros(2 * p)
        passes = self._passes(*_split_theta(theta))
        state = float(self.dtype.itemsize)
        total = 0.0
        for i, (_, kinds, _) in enumerate(passes):
            first, last = i == 0, i == len(passes) - 1
            total += (0.0 if first else state) + (0.0 if last else state)
            if last or (self.qubo_phases is None and np.any(kinds == 0)):
                total += 8.0
        return total

    def _evolve(self, theta):
        self._run(theta, expect=False)
        return self._psi

    def expectation(self, theta) -> float:
        with _threads(self.cost.size):
            return float(self._run(theta, expect=True))

    def _undo_layer_pair(self, phi, lam, beta, g) -> tuple[float, complex]:
        """φ, λ ← P(g)† M(β)† φ, λ (the high mixer qubits first, then the low ones with the phase undone in
        the same pass); returns Im⟨λ|Σ_i X_i|φ⟩ (unchanged by M: Σ X_i commutes with it) and ⟨λ|E|φ⟩
        (unchanged by the diagonal P)."""
        overlap = 0.0
        if self.low_bits < self.n:
            overlap += _pass_high_pair(phi, lam, self.low_bits, self.run_bits, -beta, self.direct)
        low, dot = _pass_low_pair(phi, lam, self.low_bits, -beta, self.cost, -g, self._phase_arguments("low"),
                                  self.direct)
        return overlap + low, dot

    def expectation_and_gradient(self, theta, observable=None) -> tuple[float, np.ndarray]:
        """⟨O⟩ and its exact gradient w.r.t. θ = (β…, γ…) by the adjoint method (two states); ``O`` is a
        diagonal observable over the basis states, by default the cost ``E``."""
        beta, gamma = _split_theta(theta)
        check_memory(2.0 * self.dtype.itemsize * self.cost.size, "the adjoint gradient's two states")
        with _threads(self.cost.size):
            observable = self.cost if observable is None else _cost_array(observable, self.cost.size)
            return self._adjoint(beta, gamma, observable)

    def _adjoint(self, beta, gamma, observable):
        p = beta.size
        self._run(np.concatenate([beta, gamma]), expect=False)
        phi = self._psi  # the state buffer is taken back in place: every evaluation evolves it afresh
        lam = np.empty_like(phi)
        value = _weighted_copy(lam, phi, observable)
        grad = np.empty(2 * p)
        s = self.phase_scale
        for layer in range(p - 1, -1, -1):
            overlap, dot = self._undo_layer_pair(phi, lam, beta[layer], gamma[layer] * s)
            grad[layer] = 2.0 * overlap
            grad[p + layer] = 2.0 * s * dot.imag
        return value, grad


def pass_phases(qubo_phases: QuboPhases | None, contiguous_bits: int):
    """The ``phases`` of :func:`_phase_tile` for a pass whose tiles hold runs of 2^contiguous_bits consecutive
    basis states: the QUBO and its low-bit energies for blocks no longer than a run (no QUBO: the table's flag)."""
    if qubo_phases is None:
        return (*no_qubo_arguments(), 0, np.zeros(1))
    m = qubo_phases.block_bits(contiguous_bits)
    return (*qubo_phases.arguments(), m, qubo_phases.low_energies(m))


def _checked_phases(qubo, cost) -> QuboPhases | None:
    """The QUBO's phases if its energies are ``cost`` (else None: the phases then read the table)."""
    if qubo is None:
        return None
    phases = qubo if isinstance(qubo, QuboPhases) else QuboPhases.of(qubo)
    return phases if phases.reproduces(cost) else None


