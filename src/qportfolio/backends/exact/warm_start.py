"""Warm-start QAOA (Egger, Mareček & Woerner 2021): each mixer a fixed rotation around a diagonal; adjoint gradient.

With warm-start probabilities ``c_q`` and ``θ_q = 2 arcsin √c_q`` (:func:`qportfolio.circuits.qaoa_ansatz`)::

    |ψ(β, γ)⟩ = Π_l M(β_l) e^{−iγ_l s E} R|0⟩,     R = ⊗_q RY(θ_q),   RY(θ_q)|0⟩ = (√(1 − c_q), √c_q),
    M(β) = ⊗_q RY(θ_q) RZ(−2β) RY(−θ_q) = ⊗_q e^{iβ H_q} = R D(β) Rᵀ,    H_q = RY(θ_q) Z RY(−θ_q),
    D(β)_z = e^{iβ Σ_q (−1)^{z_q}} = e^{iβ(n − 2·popcount z)},

exactly the circuit's gates (``s`` = ``phase_scale`` = 1/cost_scale; the Ising offset is a global phase).
R is real, orthogonal and β-independent: a mixer is the X mixer's W·D·W with the Walsh–Hadamard butterflies
replaced by per-qubit rotations. Each rotation is taken in shear form, one fused multiply-add an entry (as a
butterfly's one add)::

    RY(θ) = RY(θ')·RY(π)^[θ > π/2],  θ' ∈ (−π/2, π/2],   RY(θ') = cos(θ'/2)·N(t),  N(t) = [[1, −t], [t, 1]],
    t = tan(θ'/2) ∈ [−1, 1],   RY(π) Z RY(π)ᵀ = −Z,

so on a set S of qubits (a mixer part) ``M = Π_S cos²(θ'_q/2) · N D' Nᵀ``, ``D'_j = Π_S e^{iβσ_q(−1)^{j_q}}``
(σ_q = −1 past π/2): the cosines and signs go into the diagonal's table. The passes are the X mixer's
(:mod:`.x_mixer`): a tile of 2^L contiguous amplitudes carries qubits 0…L−1 (their rotations inside L1-sized
sub-blocks for the lowest ones), a gathered tile of runs carries the others, and the passes apply
``P₁M₁ˡᵒʷ | M₁ʰⁱᵍʰP₂M₂ʰⁱᵍʰ | M₂ˡᵒʷP₃M₃ˡᵒʷ | …``. As there, the sweeps are LLVM vector code
(:mod:`.single_qubit`'s intrinsics: complex bits 0–3 in registers, then three bits a sweep across eight
streams), the top three bits of each part rotate, take D and rotate back in one sweep, and the phases come
from the QUBO (:mod:`.phases`, ``qubo=``) when it reproduces the energy table, else from the table.

Adjoint gradient of ``⟨O⟩`` (O diagonal), with φ = ψ and λ = Oψ taken back layer by layer::

    ∂⟨O⟩/∂β_l = −2 Im⟨λ|Σ_q H_q|φ⟩ = −2 Im Σ_j conj(Nᵀλ)_j w_j (Nᵀφ)_j,   w_j = Π_S cos²(θ'_q/2) Σ_S σ_q(−1)^{j_q}
                (per part S, taken between Nᵀ and D while M is undone)
    ∂⟨O⟩/∂γ_l = 2 s Im⟨λ|E|φ⟩                                   (taken as e^{−iγ_l s E} is undone)

(Σ_q H_q commutes with every factor of M(β_l), so each part of M contributes its own qubits' share where it
is undone.) One gradient costs one forward and one two-state backward sweep.

Measured (results/benchmarks/warm_vqe_ab.md and warm_vqe_ab_1thread.md, p = 2, QUBO phases, n = 20/22/24):
the expectation 1.02/1.09/1.17× the X mixer's and the gradient 1.07/1.02/1.12× the X mixer's gradient on two
threads (one thread: 1.11/1.17/1.19× and 1.01/1.04/1.07×), 1.4–1.5× and 1.3–1.4× faster than before. That was
against the X mixer's W·D·W form; with its one stage a qubit the X mixer is about 1.5× faster, and the warm start's
expectation takes 1.2–1.5× its time (three runs of results/benchmarks/simulator.md on 2026-12-02, one at 1.53).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from qportfolio.backends.exact.kernels import (
    _cost_array,
    _DiagonalObjective,
    _expectation_serial,
    _high_tiles,
    _split_theta,
    _stream_pointers,
    _threads,
    _weighted_copy,
    check_memory,
)
from qportfolio.backends.exact.single_qubit import _vector_rotations, apply_rotations
from qportfolio.backends.exact.x_mixer import (
    _checked_phases,
    _multiply_runs,
    _phase_tables,
    _phase_tile,
    _weighted_overlap,
    pass_phases,
    phase_scratch,
)

_SUB_BITS = 10  # 2^10 amplitudes (16 KiB in complex128) stay in L1 for the low qubits of a mixer

PHASE, MIXER, PHASE_DOT = 0, 1, 2  # op kinds; PHASE_DOT: the γ overlap without undoing the phase


# --------------------------------------------------------------------------- tiles


def _rotated_diagonal8_intrinsic(per_amplitude):
    """f(xf, pos, h, dc, t, stride, c_neg, c): for the eight streams v_s = xf[pos + s·h :][:8] (four complex
    numbers each), v ← N(c) D N(c_neg) v, N three shear rotations across the streams, D_s the complex numbers
    dc[t + s·stride …] (dc: D interleaved as floats, complex index; per_amplitude: four consecutive ones, else one
    for all four), as LLVM vectors. No bounds check."""

    @intrinsic
    def at(typingctx, xf, pos, h, dc, t, stride, c_neg, c):
        if not (all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in (xf, dc))
                and dc.dtype == xf.dtype and all(isinstance(i, types.Integer) for i in (pos, h, t, stride))):
            return None

        def codegen(context, builder, signature, args):
            pos_, h_, t_, stride_ = (context.cast(builder, args[i], signature.args[i], types.intp) for i in (1, 2, 4, 5))
            where = _stream_pointers(context, builder, signature.args[0], args[0], pos_, h_)
            v = _vector_rotations(builder, [builder.load(w, align=1) for w in where], args[6])
            table = context.make_array(signature.args[3])(context, builder, args[3]).data
            element = context.get_data_type(signature.args[0].dtype)
            width = 8 if per_amplitude else 2
            index = ir.IntType(32)

            def lanes(vector, order):
                return builder.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(index, 8), order))

            sign = ir.Constant(ir.VectorType(element, 8), [-1.0, 1.0] * 4)
            for s in range(8):
                entry = builder.add(t_, builder.mul(stride_, ir.Constant(stride_.type, s)))
                at_entry = builder.gep(table, [builder.shl(entry, ir.Constant(entry.type, 1))])
                f = builder.load(builder.bitcast(at_entry, ir.PointerType(ir.VectorType(element, width))), align=1)
                even = [2 * (i // 2) % width for i in range(8)]
                f_re, f_im = lanes(f, even), builder.fmul(sign, lanes(f, [e + 1 for e in even]))
                # (a + ib)(f + ig) = (a·f − b·g) + i(b·f + a·g): v·f_re + swap(v)·(−g, g, …)
                v[s] = builder.fadd(builder.fmul(v[s], f_re), builder.fmul(lanes(v[s], [1, 0, 3, 2, 5, 4, 7, 6]), f_im))
            for w, value in zip(where, _vector_rotations(builder, v, args[7])):
                builder.store(value, w, align=1)
            return context.get_dummy_value()

        return types.void(xf, pos, h, dc, t, stride, c_neg, c), codegen

    return at


_rotated_diagonal8_amplitudes_at = _rotated_diagonal8_intrinsic(True)
_rotated_diagonal8_runs_at = _rotated_diagonal8_intrinsic(False)


@njit(cache=True)
def _mixer_part(xf, t, t_neg, d, dc, b0, k):
    """x ← N D Nᵀ x on complex bits b0 … b0+k−1 of the float view xf (N = ⊗ [[1, −t], [t, 1]] over t,
    t_neg = −t; d: D as real and imaginary rows, dc: interleaved, indexed by those bits). The top three bits
    rotate, take D and rotate back in one sweep (needs b0 = 0 and k ≥ 5, or b0 ≥ 2 and k ≥ 3: runs of ≥ 4
    complex numbers a factor)."""
    if not (k >= 5 and b0 == 0 or k >= 3 and b0 >= 2):
        apply_rotations(xf, t_neg, b0 + 1)
        _multiply_runs(xf, d[0], d[1], b0, (1 << k) - 1)
        apply_rotations(xf, t, b0 + 1)
        return
    apply_rotations(xf, t_neg[:k - 3], b0 + 1)
    h = 2 << (b0 + k - 3)
    stride = 1 << (k - 3)
    c_neg = (t_neg[k - 3], t_neg[k - 2], t_neg[k - 1])
    c = (t[k - 3], t[k - 2], t[k - 1])
    for start in range(0, xf.size, 8 * h):
        for pos in range(0, h, 8):
            if b0 == 0:
                _rotated_diagonal8_amplitudes_at(xf, start + pos, h, dc, pos >> 1, stride, c_neg, c)
            else:
                _rotated_diagonal8_runs_at(xf, start + pos, h, dc, pos >> (b0 + 1), stride, c_neg, c)
    apply_rotations(xf, t[:k - 3], b0 + 1)


@njit(cache=True)
def _tile_forward(x, e, kinds, layers, values, t, t_neg, d_sub, d_top, dc_sub, dc_top, q0, b0, k, sub, phases,
                  tables, where):
    """Apply the ops to a tile whose bits b0…b0+k−1 carry qubits q0…q0+k−1 (with b0 = 0, the first ``sub`` of
    them are done inside L1-sized sub-blocks, each after its share of a phase just before); d_sub, d_top: the
    mixer parts' diagonals per layer (dc_sub, dc_top: interleaved); values[o]: a phase op's g; phases, tables, where: see x_mixer._phase_tile."""
    xf = x.view(x.real.dtype)
    bs = 1 << sub
    base, run_bits, shift = where
    scratch = phase_scratch(phases)
    for o in range(kinds.size):
        deferred = sub > 0 and run_bits >= sub and o + 1 < kinds.size and kinds[o + 1] == MIXER
        if kinds[o] == PHASE:
            if not deferred:
                _phase_tile(x, e, values[o], o, phases, tables, where, scratch)
            continue
        layer = layers[o]
        if sub > 0:
            phase_first = o > 0 and kinds[o - 1] == PHASE and run_bits >= sub
            for start in range(0, x.size, bs):
                if phase_first:
                    z = ((start >> run_bits) << shift) | base | (start & ((1 << run_bits) - 1))
                    _phase_tile(x[start:start + bs], e[start:start + bs], values[o - 1], o - 1, phases, tables,
                                (z, sub, sub), scratch)
                _mixer_part(xf[2 * start:2 * (start + bs)], t[q0:q0 + sub], t_neg[q0:q0 + sub], d_sub[layer],
                            dc_sub[layer], 0, sub)
        if k > sub:
            _mixer_part(xf, t[q0 + sub:q0 + k], t_neg[q0 + sub:q0 + k], d_top[layer], dc_top[layer], b0 + sub, k - sub)


@njit(cache=True)
def _undo_mixer_part(xf, yf, t, t_neg, d, w, b0, k):
    """:func:`_mixer_part` on φ (xf) and λ (yf) (d: the inverse diagonal); returns Σ_j conj(Nᵀλ)_j w_j (Nᵀφ)_j
    (w indexed by the part's bits) taken between Nᵀ and D."""
    apply_rotations(xf, t_neg, b0 + 1)
    apply_rotations(yf, t_neg, b0 + 1)
    mask = (1 << k) - 1
    acc = _weighted_overlap(xf, yf, w, b0, mask)
    _multiply_runs(xf, d[0], d[1], b0, mask)
    _multiply_runs(yf, d[0], d[1], b0, mask)
    apply_rotations(xf, t, b0 + 1)
    apply_rotations(yf, t, b0 + 1)
    return acc


@njit(cache=True)
def _tile_backward(x, y, e, kinds, layers, values, t, t_neg, d_sub, d_top, w_sub, w_top, q0, b0, k, sub, phases,
                   tables, where, out):
    """Undo the (reversed) ops on φ (x) and λ (y) (d_sub, d_top: the inverse diagonals; values[o]: −g);
    out[o] += ⟨λ|E|φ⟩ for a phase, ⟨λ|Σ_q H_q|φ⟩ over the tile's qubits for a mixer."""
    xf = x.view(x.real.dtype)
    yf = y.view(y.real.dtype)
    bs = 1 << sub
    scratch = phase_scratch(phases)
    for o in range(kinds.size):
        if kinds[o] != MIXER:
            out[o] += _weighted_overlap(xf, yf, e, 0, x.size - 1)
            if kinds[o] == PHASE:
                _phase_tile(x, e, values[o], o, phases, tables, where, scratch)
                _phase_tile(y, e, values[o], o, phases, tables, where, scratch)
            continue
        layer = layers[o]
        acc = 0.0j
        for start in range(0, x.size if sub > 0 else 0, bs):
            acc += _undo_mixer_part(xf[2 * start:2 * (start + bs)], yf[2 * start:2 * (start + bs)], t[q0:q0 + sub],
                                    t_neg[q0:q0 + sub], d_sub[layer], w_sub, 0, sub)
        if k > sub:
            acc += _undo_mixer_part(xf, yf, t[q0 + sub:q0 + k], t_neg[q0 + sub:q0 + k], d_top[layer], w_top,
                                    b0 + sub, k - sub)
        out[o] += acc


def _bits(size):
    return size.bit_length() - 1


# --------------------------------------------------------------------------- passes


@njit(cache=True, parallel=True)
def _pass_low(psi, energy, bits, kinds, layers, values, shear, shear_neg, d_sub, d_top, dc_sub, dc_top, init_low,
              init_high, expect, phases):
    """Ops on each contiguous tile of 2^bits amplitudes (qubits 0…bits−1). ``init_low`` non-empty: tile t
    starts as the product state init_low[j]·init_high[t]. ``expect``: return Σ|ψ|²E, state not written."""
    size = 1 << bits
    ntiles = psi.size >> bits
    sub = min(bits, _SUB_BITS)
    tables = _phase_tables(kinds, values, phases, bits, bits, size)
    acc = np.zeros(ntiles)
    for t in prange(ntiles):
        off = t * size
        if expect:
            x = psi[off:off + size].copy()
        else:
            x = psi[off:off + size]
        if init_low.size:
            a = init_high[t]
            for j in range(size):
                x[j] = init_low[j] * a
        e = energy[off:off + size]
        _tile_forward(x, e, kinds, layers, values, shear, shear_neg, d_sub, d_top, dc_sub, dc_top, 0, 0, bits, sub,
                      phases, tables, (off, bits, bits))
        if expect:
            acc[t] = _expectation_serial(x, e)
    return acc.sum()


@njit(cache=True, parallel=True)
def _pass_high(psi, energy, low_bits, run_bits, kinds, layers, values, shear, shear_neg, d_high, dc_high, expect,
               phases):
    """Ops on the high qubits: a tile gathers the 2^(n−low_bits) runs of 2^run_bits amplitudes that differ
    only in qubits low_bits…n−1 (tile bits run_bits…)."""
    nh, kh, run, size, ntiles = _high_tiles(psi.size, low_bits, run_bits)
    tables = _phase_tables(kinds, values, phases, run_bits, low_bits, size)
    need_e = expect
    for o in range(kinds.size):
        if kinds[o] == PHASE and phases[0].shape[0] == 0:
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
        _tile_forward(x, e, kinds, layers, values, shear, shear_neg, d_high, d_high, dc_high, dc_high, low_bits,
                      run_bits, kh, 0, phases, tables, (t << run_bits, run_bits, low_bits))
        if expect:
            acc[t] = _expectation_serial(x, e)
        else:
            for h in range(nh):
                src = (h << low_bits) | (t << run_bits)
                psi[src:src + run] = x[h * run:(h + 1) * run]
    return acc.sum()


@njit(cache=True, parallel=True)
def _adjoint_low(phi, lam, energy, bits, kinds, layers, values, shear, shear_neg, d_sub, d_top, w_sub, w_top,
                 phases):
    """:func:`_tile_backward` on each contiguous tile of φ and λ; returns Σ over tiles of the per-op overlaps."""
    size = 1 << bits
    ntiles = phi.size >> bits
    sub = min(bits, _SUB_BITS)
    tables = _phase_tables(kinds, values, phases, bits, bits, size)
    out = np.zeros((ntiles, kinds.size), dtype=np.complex128)
    for t in prange(ntiles):
        off = t * size
        _tile_backward(phi[off:off + size], lam[off:off + size], energy[off:off + size], kinds, layers, values,
                       shear, shear_neg, d_sub, d_top, w_sub, w_top, 0, 0, bits, sub, phases, tables,
                       (off, bits, bits), out[t])
    return out.sum(axis=0)


@njit(cache=True, parallel=True)
def _adjoint_high(phi, lam, energy, low_bits, run_bits, kinds, layers, values, shear, shear_neg, d_high, w_high,
                  phases):
    """:func:`_tile_backward` on the gathered high-qubit tiles of φ and λ."""
    nh, kh, run, size, ntiles = _high_tiles(phi.size, low_bits, run_bits)
    tables = _phase_tables(kinds, values, phases, run_bits, low_bits, size)
    out = np.zeros((ntiles, kinds.size), dtype=np.complex128)
    for t in prange(ntiles):
        x = np.empty(size, dtype=phi.dtype)
        y = np.empty(size, dtype=lam.dtype)
        e = np.empty(size)
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            x[h * run:(h + 1) * run] = phi[src:src + run]
            y[h * run:(h + 1) * run] = lam[src:src + run]
            e[h * run:(h + 1) * run] = energy[src:src + run]
        _tile_backward(x, y, e, kinds, layers, values, shear, shear_neg, d_high, d_high, w_high, w_high, low_bits,
                       run_bits, kh, 0, phases, tables, (t << run_bits, run_bits, low_bits), out[t])
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            phi[src:src + run] = x[h * run:(h + 1) * run]
            lam[src:src + run] = y[h * run:(h + 1) * run]
    return out.sum(axis=0)


# --------------------------------------------------------------------------- simulator


def _product_amplitudes(amplitudes: np.ndarray) -> np.ndarray:
    """Amplitudes of ⊗_q (a_q0, a_q1) over the basis, qubit 0 the lowest bit (shape (k, 2) → 2^k)."""
    out = np.ones(1)
    for a in amplitudes:
        out = np.concatenate([out * a[0], out * a[1]])
    return out


class WarmStartQAOASimulator(_DiagonalObjective):
    """Exact warm-start QAOA on ``n = log2(len(cost_diagonal))`` qubits (module docstring).

    ``probabilities``: the warm-start ``c_q`` of each qubit (``circuit.metadata["warm_start"]``); the
    cost layer is ``exp(−iγ · phase_scale · E)``; ``tile_bits``: log2 of amplitudes per cache tile; ``qubo``:
    as :class:`~.x_mixer.QAOASimulator`'s (the phases from it when it reproduces ``cost_diagonal``).
    """

    def __init__(self, cost_diagonal, probabilities, *, phase_scale: float = 1.0, dtype=np.complex128,
                 tile_bits: int | None = None, qubo=None):
        super().__init__(None, phase_scale, dtype)
        size = len(cost_diagonal)
        copies = not (isinstance(cost_diagonal, np.ndarray) and cost_diagonal.dtype == np.float64)
        check_memory((self.dtype.itemsize + 8.0 * copies) * size,
                     f"the {max(size, 1).bit_length() - 1}-qubit warm-start QAOA state")
        self.cost = _cost_array(cost_diagonal)
        self.n = _bits(self.cost.size)
        c = np.asarray(probabilities, dtype=np.float64).ravel()
        if c.size != self.n or np.any(c < 0) or np.any(c > 1):
            raise ValueError(f"warm start needs {self.n} probabilities in [0, 1], got {c.size} values")
        self.angles = 2 * np.arcsin(np.sqrt(c))
        half = self.angles / 2
        self._sign = np.where(half > np.pi / 4, -1.0, 1.0)  # σ_q: RY(θ) = RY(θ − π)·RY(π) past π/2
        half = np.where(half > np.pi / 4, half - np.pi / 2, half)
        real = self.dtype.type(0).real.dtype
        self._shear = np.tan(half).astype(real)
        self._shear_neg = -self._shear
        self._cos2 = np.cos(half) ** 2
        tile_bits = 16 if tile_bits is None else tile_bits
        self.low_bits = min(self.n, max(tile_bits, (self.n + 3) // 2))
        self.run_bits = max(0, min(self.low_bits, tile_bits - (self.n - self.low_bits)))
        self._sub_bits = min(self.low_bits, _SUB_BITS)
        self._parts = [(0, self._sub_bits), (self._sub_bits, self.low_bits), (self.low_bits, self.n)]
        self._weights = [self._part_weights(*part) for part in self._parts]
        start = np.column_stack([np.sqrt(1 - c), np.sqrt(c)])  # RY(θ_q)|0⟩
        self._init_low = _product_amplitudes(start[:self.low_bits])
        self._init_high = _product_amplitudes(start[self.low_bits:])
        self._psi = np.empty(self.cost.size, dtype=self.dtype)
        self._lam = None
        self.qubo_phases = _checked_phases(qubo, self.cost)

    @classmethod
    def required_bytes(cls, n: int, dtype=np.complex128) -> float:
        """Memory of the state and the float64 diagonal for ``n`` qubits."""
        return (np.dtype(dtype).itemsize + 8.0) * 2.0**n

    def _part_weights(self, lo, hi):
        """w_j = Π_q cos²(θ'_q/2) · Σ_q σ_q (−1)^{j_q} over qubits lo…hi−1 (bit q − lo of j)."""
        w = np.zeros(1)
        for q in range(lo, hi):
            w = np.concatenate([w + self._sign[q], w - self._sign[q]])
        return w * np.prod(self._cos2[lo:hi])

    def _diagonals(self, beta):
        """The scaled D(β_l) of each mixer part (sub-block, tile top, high qubits), Π_q cos²(θ'_q/2) e^{iβσ_q(−1)^{j_q}},
        as real and imaginary rows, shape (p, 2, 2^k), and interleaved, shape (p, 2^(k+1))."""
        beta = np.asarray(beta, dtype=np.float64).reshape(-1, 1)
        real = self.dtype.type(0).real.dtype
        out = []
        for lo, hi in self._parts:
            d = np.full((beta.size, 1), np.prod(self._cos2[lo:hi]), dtype=np.complex128)
            for q in range(lo, hi):
                f = np.exp(1j * self._sign[q] * beta)
                d = np.concatenate([d * f, d * f.conj()], axis=1)
            out.append((np.ascontiguousarray(np.stack([d.real, d.imag], axis=1), dtype=real),
                        np.ascontiguousarray(d.astype(self.dtype)).view(real)))
        return out

    def _phase_arguments(self, where):
        return pass_phases(self.qubo_phases, self.low_bits if where == "low" else self.run_bits)

    def _passes(self, p):
        """[(where, kinds, layers)] implementing P₁M₁ˡᵒʷ | M₁ʰⁱᵍʰP₂M₂ʰⁱᵍʰ | M₂ˡᵒʷP₃M₃ˡᵒʷ | … (module docstring)."""
        if self.low_bits == self.n:
            return [("low", [PHASE, MIXER] * p, [layer for layer in range(p) for _ in range(2)])]
        passes = [("low", [PHASE, MIXER], [0, 0])]
        for j in range(1, p):
            passes.append(("high" if j % 2 else "low", [MIXER, PHASE, MIXER], [j - 1, j, j]))
        passes.append(("high" if p % 2 else "low", [MIXER], [p - 1]))
        return passes

    def _run(self, theta, expect: bool):
        beta, gamma = _split_theta(theta)
        g = gamma * self.phase_scale
        (d_sub, dc_sub), (d_top, dc_top), (d_high, dc_high) = self._diagonals(beta)
        value = 0.0
        none = np.empty(0)
        passes = self._passes(beta.size)
        for i, (where, kinds, layers) in enumerate(passes):
            last = expect and i == len(passes) - 1
            kinds, layers = np.array(kinds, dtype=np.int64), np.array(layers, dtype=np.int64)
            values = g[layers]
            phases = self._phase_arguments(where)
            if where == "low":
                first = i == 0
                value = _pass_low(self._psi, self.cost, self.low_bits, kinds, layers, values, self._shear,
                                  self._shear_neg, d_sub, d_top, dc_sub, dc_top, self._init_low if first else none,
                                  self._init_high if first else none, last, phases)
            else:
                value = _pass_high(self._psi, self.cost, self.low_bits, self.run_bits, kinds, layers, values,
                                   self._shear, self._shear_neg, d_high, dc_high, last, phases)
        return value

    def _evolve(self, theta):
        self._run(theta, expect=False)
        return self._psi

    def expectation(self, theta) -> float:
        with _threads(self.cost.size):
            return float(self._run(theta, expect=True))

    def expectation_and_gradient(self, theta, observable=None) -> tuple[float, np.ndarray]:
        """⟨O⟩ and its exact gradient w.r.t. θ = (β…, γ…) by the adjoint method (two states); ``O`` is a
        diagonal observable over the basis states, by default the cost ``E``."""
        beta, gamma = _split_theta(theta)
        observable = self.cost if observable is None else _cost_array(observable, self.cost.size)
        with _threads(self.cost.size):
            return self._adjoint(beta, gamma, observable)

    def _adjoint(self, beta, gamma, observable):
        p = beta.size
        if self._lam is None:
            check_memory(self.dtype.itemsize * self.cost.size, "the adjoint gradient's second state")
            self._lam = np.empty_like(self._psi)
        self._run(np.concatenate([beta, gamma]), expect=False)
        phi, lam = self._psi, self._lam
        value = float(_weighted_copy(lam, phi, observable))
        g = gamma * self.phase_scale
        (d_sub, _), (d_top, _), (d_high, _) = self._diagonals(-beta)
        w_sub, w_top, w_high = self._weights
        overlap_beta = np.zeros(p, dtype=np.complex128)
        overlap_gamma = np.zeros(p, dtype=np.complex128)
        for where, kinds, layers in reversed(self._passes(p)):
            kinds = [PHASE_DOT if (k == PHASE and layer == 0) else k for k, layer in zip(kinds, layers)][::-1]
            kinds, layers = np.array(kinds, dtype=np.int64), np.array(layers[::-1], dtype=np.int64)
            values = -g[layers]
            phases = self._phase_arguments(where)
            if where == "low":
                out = _adjoint_low(phi, lam, self.cost, self.low_bits, kinds, layers, values, self._shear,
                                   self._shear_neg, d_sub, d_top, w_sub, w_top, phases)
            else:
                out = _adjoint_high(phi, lam, self.cost, self.low_bits, self.run_bits, kinds, layers, values,
                                    self._shear, self._shear_neg, d_high, w_high, phases)
            for kind, layer, acc in zip(kinds, layers, out):
                if kind == MIXER:
                    overlap_beta[layer] += acc
                else:
                    overlap_gamma[layer] += acc
        grad = np.concatenate([-2.0 * overlap_beta.imag, 2.0 * self.phase_scale * overlap_gamma.imag])
        return value, grad
