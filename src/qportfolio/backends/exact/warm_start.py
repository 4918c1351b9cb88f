"""Warm-start QAOA (Egger, Mareček & Woerner 2021): each mixer a fixed rotation around a diagonal; adjoint gradient.

With warm-start probabilities ``c_q`` and ``θ_q = 2 arcsin √c_q`` (:func:`qportfolio.circuits.qaoa_ansatz`)::

    |ψ(β, γ)⟩ = Π_l M(β_l) e^{−iγ_l s E} R|0⟩,     R = ⊗_q RY(θ_q),   RY(θ_q)|0⟩ = (√(1 − c_q), √c_q),
    M(β) = ⊗_q RY(θ_q) RZ(−2β) RY(−θ_q) = ⊗_q e^{iβ H_q} = R D(β) Rᵀ,    H_q = RY(θ_q) Z RY(−θ_q),
    D(β)_z = e^{iβ Σ_q (−1)^{z_q}} = e^{iβ(n − 2·popcount z)},

exactly the circuit's gates (``s`` = ``phase_scale`` = 1/cost_scale; the Ising offset is a global phase).
R is real, orthogonal and β-independent: a mixer is the X mixer's W·D·W with the Walsh–Hadamard butterflies
replaced by per-qubit rotations (:mod:`.single_qubit` on the float view, three qubits per sweep) and the
same diagonal D. The passes are the X mixer's (:mod:`.x_mixer`): a tile of 2^L contiguous amplitudes carries
qubits 0…L−1 (their rotations inside L1-sized sub-blocks for the lowest ones), a gathered tile of runs
carries the others, and the passes apply ``P₁M₁ˡᵒʷ | M₁ʰⁱᵍʰP₂M₂ʰⁱᵍʰ | M₂ˡᵒʷP₃M₃ˡᵒʷ | …``.

Adjoint gradient of ``⟨O⟩`` (O diagonal), with φ = ψ and λ = Oψ taken back layer by layer::

    ∂⟨O⟩/∂β_l = −2 Im⟨λ|Σ_q H_q|φ⟩ = −2 Im⟨Rᵀλ| Σ_q Z_q |Rᵀφ⟩   (taken between Rᵀ and D while M is undone)
    ∂⟨O⟩/∂γ_l = 2 s Im⟨λ|E|φ⟩                                   (taken as e^{−iγ_l s E} is undone)

(Σ_q H_q commutes with every factor of M(β_l), so each part of M contributes its own qubits' share where it
is undone.) One gradient costs one forward and one two-state backward sweep.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qportfolio.backends.exact.kernels import (
    _cost_array,
    _DiagonalObjective,
    _sincos,
    _split_theta,
    _high_tiles,
    _threads,
    _weighted_copy,
    check_memory,
)
from qportfolio.backends.exact.single_qubit import apply_unitaries

_SUB_BITS = 10  # 2^10 amplitudes (16 KiB in complex128) stay in L1 for the low qubits of a mixer

PHASE, MIXER, PHASE_DOT = 0, 1, 2  # op kinds; PHASE_DOT: the γ overlap without undoing the phase


# --------------------------------------------------------------------------- tiles


@njit(cache=True)
def _phase_tile(x, e, g):
    for j in range(x.size):
        s, c = _sincos(g * e[j])
        x[j] = x[j] * complex(c, -s)


@njit(cache=True)
def _rotated_diagonal(x, rot, rot_t, d, b0):
    """x ← R D Rᵀ x, R = ⊗_i rot[i] on tile bits b0+i, D[j] indexed by those bits."""
    xf = x.view(rot.dtype)
    k = rot.shape[0]
    apply_unitaries(xf, rot_t, b0 + 1)
    mask = (1 << k) - 1
    for j in range(x.size):
        x[j] = x[j] * d[(j >> b0) & mask]
    apply_unitaries(xf, rot, b0 + 1)


@njit(cache=True)
def _tile_forward(x, e, kinds, layers, g, rot, rot_t, d_sub, d_top, q0, b0, k, sub):
    """Apply the ops to a tile whose bits b0…b0+k−1 carry qubits q0…q0+k−1 (with b0 = 0, the first
    ``sub`` of them are done inside L1-sized sub-blocks); d_sub, d_top: D(β_l) on those qubits per layer."""
    for o in range(kinds.size):
        layer = layers[o]
        if kinds[o] == PHASE:
            _phase_tile(x, e, g[layer])
            continue
        if sub > 0:
            bs = 1 << sub
            for start in range(0, x.size, bs):
                _rotated_diagonal(x[start:start + bs], rot[q0:q0 + sub], rot_t[q0:q0 + sub], d_sub[layer], 0)
        if k > sub:
            _rotated_diagonal(x, rot[q0 + sub:q0 + k], rot_t[q0 + sub:q0 + k], d_top[layer], b0 + sub)


@njit(cache=True)
def _undo_rotated_diagonal(xf, xl, rot, rot_t, d, z, b0):
    """φ, λ ← R D Rᵀ (φ, λ) (D = the inverse diagonal); returns ⟨Rᵀλ| Z |Rᵀφ⟩ (Z[j] = Σ_i (−1)^{bit i})."""
    k = rot.shape[0]
    apply_unitaries(xf.view(rot.dtype), rot_t, b0 + 1)
    apply_unitaries(xl.view(rot.dtype), rot_t, b0 + 1)
    mask = (1 << k) - 1
    acc = 0.0j
    for j in range(xf.size):
        i = (j >> b0) & mask
        f = xf[j]
        lv = xl[j]
        acc += lv.conjugate() * f * z[i]
        xf[j] = f * d[i]
        xl[j] = lv * d[i]
    apply_unitaries(xf.view(rot.dtype), rot, b0 + 1)
    apply_unitaries(xl.view(rot.dtype), rot, b0 + 1)
    return acc


@njit(cache=True)
def _tile_backward(xf, xl, e, kinds, layers, g, rot, rot_t, d_sub, d_top, z_sub, z_top, q0, b0, k, sub, out):
    """Undo the (reversed) ops on φ (xf) and λ (xl) (d_sub, d_top: the inverse diagonals); out[o] += ⟨λ|E|φ⟩
    for a phase, Σ_q⟨λ|H_q|φ⟩ over the tile's qubits for a mixer."""
    for o in range(kinds.size):
        layer = layers[o]
        acc = 0.0j
        if kinds[o] != MIXER:
            gl = g[layer]
            undo = kinds[o] == PHASE
            for j in range(xf.size):
                f = xf[j]
                lv = xl[j]
                acc += lv.conjugate() * f * e[j]
                if undo:
                    s, c = _sincos(gl * e[j])
                    w = complex(c, s)
                    xf[j] = f * w
                    xl[j] = lv * w
            out[o] += acc
            continue
        if sub > 0:
            bs = 1 << sub
            for start in range(0, xf.size, bs):
                acc += _undo_rotated_diagonal(xf[start:start + bs], xl[start:start + bs], rot[q0:q0 + sub],
                                              rot_t[q0:q0 + sub], d_sub[layer], z_sub, 0)
        if k > sub:
            acc += _undo_rotated_diagonal(xf, xl, rot[q0 + sub:q0 + k], rot_t[q0 + sub:q0 + k], d_top[layer],
                                          z_top, b0 + sub)
        out[o] += acc


def _bits(size):
    return size.bit_length() - 1


def _z_sum(k: int) -> np.ndarray:
    """Z[j] = Σ_{i<k} (−1)^{bit i of j} = k − 2·popcount(j), for j < 2^k."""
    z = np.array([float(k)])
    for _ in range(k):
        z = np.concatenate([z, z - 2.0])
    return z


# --------------------------------------------------------------------------- passes


@njit(cache=True, parallel=True)
def _pass_low(psi, energy, bits, kinds, layers, g, rot, rot_t, d_sub, d_top, init_low, init_high, expect):
    """Ops on each contiguous tile of 2^bits amplitudes (qubits 0…bits−1). ``init_low`` non-empty: tile t
    starts as the product state init_low[j]·init_high[t]. ``expect``: return Σ|ψ|²E, state not written."""
    size = 1 << bits
    ntiles = psi.size >> bits
    sub = min(bits, _SUB_BITS)
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
        _tile_forward(x, e, kinds, layers, g, rot, rot_t, d_sub, d_top, 0, 0, bits, sub)
        if expect:
            s = 0.0
            for j in range(size):
                v = x[j]
                s += (v.real * v.real + v.imag * v.imag) * e[j]
            acc[t] = s
    return acc.sum()


@njit(cache=True, parallel=True)
def _pass_high(psi, energy, low_bits, run_bits, kinds, layers, g, rot, rot_t, d_high, expect):
    """Ops on the high qubits: a tile gathers the 2^(n−low_bits) runs of 2^run_bits amplitudes that differ
    only in qubits low_bits…n−1 (tile bits run_bits…)."""
    nh, kh, run, size, ntiles = _high_tiles(psi.size, low_bits, run_bits)
    acc = np.zeros(ntiles)
    for t in prange(ntiles):
        x = np.empty(size, dtype=psi.dtype)
        e = np.empty(size)
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            x[h * run:(h + 1) * run] = psi[src:src + run]
            e[h * run:(h + 1) * run] = energy[src:src + run]
        _tile_forward(x, e, kinds, layers, g, rot, rot_t, d_high, d_high, low_bits, run_bits, kh, 0)
        if expect:
            s = 0.0
            for j in range(size):
                v = x[j]
                s += (v.real * v.real + v.imag * v.imag) * e[j]
            acc[t] = s
        else:
            for h in range(nh):
                src = (h << low_bits) | (t << run_bits)
                psi[src:src + run] = x[h * run:(h + 1) * run]
    return acc.sum()


@njit(cache=True, parallel=True)
def _adjoint_low(phi, lam, energy, bits, kinds, layers, g, rot, rot_t, d_sub, d_top, z_sub, z_top):
    """:func:`_tile_backward` on each contiguous tile of φ and λ; returns Σ over tiles of the per-op overlaps."""
    size = 1 << bits
    ntiles = phi.size >> bits
    sub = min(bits, _SUB_BITS)
    out = np.zeros((ntiles, kinds.size), dtype=np.complex128)
    for t in prange(ntiles):
        off = t * size
        _tile_backward(phi[off:off + size], lam[off:off + size], energy[off:off + size], kinds, layers, g,
                       rot, rot_t, d_sub, d_top, z_sub, z_top, 0, 0, bits, sub, out[t])
    return out.sum(axis=0)


@njit(cache=True, parallel=True)
def _adjoint_high(phi, lam, energy, low_bits, run_bits, kinds, layers, g, rot, rot_t, d_high, z_high):
    """:func:`_tile_backward` on the gathered high-qubit tiles of φ and λ."""
    nh, kh, run, size, ntiles = _high_tiles(phi.size, low_bits, run_bits)
    out = np.zeros((ntiles, kinds.size), dtype=np.complex128)
    for t in prange(ntiles):
        xf = np.empty(size, dtype=phi.dtype)
        xl = np.empty(size, dtype=lam.dtype)
        e = np.empty(size)
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            xf[h * run:(h + 1) * run] = phi[src:src + run]
            xl[h * run:(h + 1) * run] = lam[src:src + run]
            e[h * run:(h + 1) * run] = energy[src:src + run]
        _tile_backward(xf, xl, e, kinds, layers, g, rot, rot_t, d_high, d_high, z_high, z_high, low_bits, run_bits, kh,
                       0, out[t])
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            phi[src:src + run] = xf[h * run:(h + 1) * run]
            lam[src:src + run] = xl[h * run:(h + 1) * run]
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
    cost layer is ``exp(−iγ · phase_scale · E)``; ``tile_bits``: log2 of amplitudes per cache tile.
    """

    def __init__(self, cost_diagonal, probabilities, *, phase_scale: float = 1.0, dtype=np.complex128,
                 tile_bits: int | None = None):
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
        cos, sin = np.sqrt(1 - c), np.sqrt(c)  # cos θ_q/2, sin θ_q/2
        real = self.dtype.type(0).real.dtype
        self._rot = np.column_stack([cos, -sin, sin, cos]).astype(real)  # RY(θ_q), row-major
        self._rot_t = np.ascontiguousarray(self._rot[:, [0, 2, 1, 3]])
        tile_bits = 16 if tile_bits is None else tile_bits
        self.low_bits = min(self.n, max(tile_bits, (self.n + 3) // 2))
        self.run_bits = max(0, min(self.low_bits, tile_bits - (self.n - self.low_bits)))
        self._sub_bits = min(self.low_bits, _SUB_BITS)
        self._z = {k: _z_sum(k) for k in {self._sub_bits, self.low_bits - self._sub_bits, self.n - self.low_bits}}
        start = np.column_stack([cos, sin])  # RY(θ_q)|0⟩
        self._init_low = _product_amplitudes(start[:self.low_bits])
        self._init_high = _product_amplitudes(start[self.low_bits:])
        self._psi = np.empty(self.cost.size, dtype=self.dtype)
        self._lam = None

    @classmethod
    def required_bytes(cls, n: int, dtype=np.complex128) -> float:
        """Memory of the state and the float64 diagonal for ``n`` qubits."""
        return (np.dtype(dtype).itemsize + 8.0) * 2.0**n

    def _diagonals(self, beta):
        """D(β_l) on the low pass's sub-block and top qubits and on the high qubits: {k: (p, 2^k) table}."""
        beta = np.asarray(beta, dtype=np.float64).reshape(-1, 1)
        return {k: np.exp(1j * beta * z).astype(self.dtype) for k, z in self._z.items()}

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
        d = self._diagonals(beta)
        d_sub, d_top, d_high = d[self._sub_bits], d[self.low_bits - self._sub_bits], d[self.n - self.low_bits]
        value = 0.0
        none = np.empty(0)
        passes = self._passes(beta.size)
        for i, (where, kinds, layers) in enumerate(passes):
            last = expect and i == len(passes) - 1
            kinds, layers = np.array(kinds, dtype=np.int64), np.array(layers, dtype=np.int64)
            if where == "low":
                first = i == 0
                value = _pass_low(self._psi, self.cost, self.low_bits, kinds, layers, g, self._rot, self._rot_t,
                                  d_sub, d_top, self._init_low if first else none,
                                  self._init_high if first else none, last)
            else:
                value = _pass_high(self._psi, self.cost, self.low_bits, self.run_bits, kinds, layers, g, self._rot,
                                   self._rot_t, d_high, last)
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
        d = self._diagonals(-beta)
        sub, top, high = self._sub_bits, self.low_bits - self._sub_bits, self.n - self.low_bits
        overlap_beta = np.zeros(p, dtype=np.complex128)
        overlap_gamma = np.zeros(p, dtype=np.complex128)
        for where, kinds, layers in reversed(self._passes(p)):
            kinds = [PHASE_DOT if (k == PHASE and layer == 0) else k for k, layer in zip(kinds, layers)][::-1]
            kinds, layers = np.array(kinds, dtype=np.int64), np.array(layers[::-1], dtype=np.int64)
            if where == "low":
                out = _adjoint_low(phi, lam, self.cost, self.low_bits, kinds, layers, g, self._rot, self._rot_t,
                                   d[sub], d[top], self._z[sub], self._z[top])
            else:
                out = _adjoint_high(phi, lam, self.cost, self.low_bits, self.run_bits, kinds, layers, g, self._rot,
                                    self._rot_t, d[high], self._z[high])
            for kind, layer, acc in zip(kinds, layers, out):
                if kind == MIXER:
                    overlap_beta[layer] += acc
                else:
                    overlap_gamma[layer] += acc
        grad = np.concatenate([-2.0 * overlap_beta.imag, 2.0 * self.phase_scale * overlap_gamma.imag])
        return value, grad
