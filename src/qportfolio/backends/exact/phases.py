"""QAOA cost phases ``e^{−igE(z)}`` of a QUBO energy, block by block, without a sine per amplitude.

With ``E(z) = Σ_{i<j} P_ij z_i z_j + Σ_i d_i z_i + const`` (``P = Q + Qᵀ`` off the diagonal, ``d = diag Q + c``)
and ``z = (r, a)`` split into its ``m`` low bits ``a`` and the rest ``r``::

    E(z) = E_a(a) + E_r(r) + Σ_{i<m} a_i w_i(r),      w_i(r) = Σ_{j≥m} P_ij z_j,

so over a block of ``2^m`` consecutive amplitudes (``r`` fixed)::

    e^{−igE} = T[a] · e^{−igE_r(r)} · Π_{i<m, a_i=1} e^{−ig w_i(r)},      T[a] = e^{−igE_a(a)}.

``T`` is one table per layer (``g``); the product is built by doubling, ``2^m`` complex multiplies a block,
and ``E_r``, ``w_i`` cost ``O(n²)`` a block, so a block of ``2^m ≥ n`` amplitudes costs two complex
multiplies and ``(m + 1)/2^m`` sines per amplitude. Rounding: each phase is a product of ≤ m + 2 unit
factors, a relative error of a few ``(m + 2)·ε``.

A high pass's gathered tile can hold runs shorter than a block (at n = 24, 2^8 amplitudes) far apart, where
blocks that small pay their ``O(n²)`` and ``m + 1`` sines on few amplitudes. There the tile's phases are those
of the tile with base 0, one table ``K`` per layer, times two small factors of the base
(:func:`gathered_tile_factors`): three complex multiplies an amplitude (measured, one thread at n = 24: a high
pass's phase 3.4 → under 1 ns/amp).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from qportfolio.backends.exact.kernels import _sincos
from qportfolio.encoding.energies import _low_energies, _qubo_parts, qubo_energies

BLOCK_BITS = 10  # 2^10 amplitudes: a block, its table and its phases (16 KiB each) stay in L1


@njit(cache=True)
def phase_table(low_energies, g):
    """T = e^{−igE_a} from E_a (:meth:`QuboPhases.low_energies`) as real and imaginary rows, shape (2, 2^m)."""
    table = np.empty((2, low_energies.size))
    for a in range(low_energies.size):
        s, c = _sincos(g * low_energies[a])
        table[0, a] = c
        table[1, a] = -s
    return table


@njit(cache=True)
def _rotate_copy(re, im, out_re, out_im, c, s):
    """out ← (re + i·im)·(c − i·s), on slices indexed from 0 (no negative-index fix-ups: the loop vectorises)."""
    for a in range(re.size):
        r = re[a]
        q = im[a]
        out_re[a] = r * c + q * s
        out_im[a] = q * c - r * s


@njit(cache=True)
def _axpy(y, x, a):
    """y ← y + a·x (slices indexed from 0: the loop vectorises)."""
    for k in range(y.size):
        y[k] += a * x[k]


@njit(cache=True)
def _linear_phases(re, im, g, coefficients, offset):
    """re + i·im = e^{−ig(offset + Σ_i a_i c_i)} for a < 2^k (c: the k coefficients), by doubling: 2^k complex
    multiplies and k + 1 sines."""
    s, c = _sincos(g * offset)
    re[0] = c
    im[0] = -s
    for i in range(coefficients.size):
        s, c = _sincos(g * coefficients[i])
        h = 1 << i
        _rotate_copy(re[:h], im[:h], re[h:2 * h], im[h:2 * h], c, s)


@njit(cache=True)
def _base_terms(v, w, base, lo, hi, pair, diag):
    """v ← Σ_j b_j P_j· over the bits b_j of ``base`` with lo ≤ j < hi (no branches, vectorised; v is w's first n
    floats, its next n hold the bits), and returns their own energy Σ_j b_j (d_j + v_j/2) (P has no diagonal)."""
    n = diag.size
    if w.size < 2 * n:
        raise ValueError("the QUBO phases need 2n floats of scratch")
    bits = w[n:2 * n]
    v[:] = 0.0
    for j in range(lo, hi):
        bits[j] = (base >> j) & 1
        _axpy(v, pair[j], bits[j])
    energy = 0.0
    for j in range(lo, hi):
        energy += bits[j] * (diag[j] + 0.5 * v[j])
    return energy


@njit(cache=True)
def block_phases(out, base, m, g, table, pair, diag, const, w):
    """out[0] + i·out[1] = e^{−igE(base + a)} for a < 2^m (base's m low bits are zero; table = T for g as
    real and imaginary rows, shape (2, 2^m); w: 2n floats of scratch). With b_j the bits of base (j ≥ m) and
    v = Σ_j b_j P_j· (no branches, vectorised), w_i = v_i (i < m) and E_r = const + Σ_{k≥m} b_k (d_k + v_k/2)."""
    v = w[:diag.size]
    rest = const + _base_terms(v, w, base, m, diag.size, pair, diag)
    re = out[0]
    im = out[1]
    _linear_phases(re, im, g, v[:m], rest)
    tr = table[0]
    ti = table[1]
    for a in range(1 << m):
        r = re[a]
        q = im[a]
        re[a] = r * tr[a] - q * ti[a]
        im[a] = r * ti[a] + q * tr[a]


@njit(cache=True)
def multiply_block_phases(x, start, base, m, g, table, pair, diag, const, out, w):
    """x[start + a] ← e^{−igE(base + a)} x[start + a] for a < 2^m (out: (2, 2^m) floats of scratch, w: 2n)."""
    block_phases(out, base, m, g, table, pair, diag, const, w)
    xf = x.view(x.real.dtype)
    multiply_rows(xf[2 * start:2 * (start + (1 << m))], out[0], out[1])


@njit(cache=True)
def gathered_tile_factors(a, b, base, run_bits, shift, g, pair, diag, w):
    """The factors by which a gathered tile's phases differ from those of the tile with base 0.

    The tile holds the basis states z = (h << shift) | base | j (j < 2^run_bits, h < 2^k: a and b have
    2^run_bits and 2^k columns, real and imaginary rows; base's bits t lie in run_bits…shift−1). With
    v = Σ_{l∈t} P_l· (the rows of the base's bits; w: 2n floats of scratch)::

        E(z) − E(z − base) = Σ_{l∈t} (d_l + v_l/2) + Σ_{i<run_bits} j_i v_i + Σ_{i<k} h_i v_{shift+i},

    so e^{−igE(z)} = K[h, j]·a[j]·b[h] with K the base-0 tile's phases, ``a`` the j part and ``b`` the rest."""
    v = w[:diag.size]
    rest = _base_terms(v, w, base, run_bits, shift, pair, diag)
    _linear_phases(a[0], a[1], g, v[:run_bits], 0.0)
    _linear_phases(b[0], b[1], g, v[shift:], rest)


@njit(cache=True)
def multiply_gathered_phases(xf, table, a, b, ab):
    """x[h·R + j] ← x[h·R + j]·K[h·R + j]·a[j]·b[h] (x as its interleaved float view, K = ``table``: real and
    imaginary rows of the tile's length, R = a's columns; ab: (2, R) floats of scratch) — three complex
    multiplies an amplitude, row by row."""
    run = a.shape[1]
    for h in range(b.shape[1]):
        _rotate_copy(a[0], a[1], ab[0], ab[1], b[0, h], -b[1, h])
        lo = h * run
        kr = table[0, lo:lo + run]
        ki = table[1, lo:lo + run]
        abr = ab[0]
        abi = ab[1]
        v = xf[2 * lo:2 * (lo + run)]
        for j in range(run):
            fr = kr[j] * abr[j] - ki[j] * abi[j]
            fi = kr[j] * abi[j] + ki[j] * abr[j]
            xr = v[2 * j]
            xi = v[2 * j + 1]
            v[2 * j] = xr * fr - xi * fi
            v[2 * j + 1] = xr * fi + xi * fr


@njit(cache=True)
def multiply_rows(vf, re, im):
    """v ← v·(re + i·im) elementwise, v given as its interleaved float view (2·len(re) floats). A slice
    indexed from 0 (no negative-index fix-ups), so the loop vectorises."""
    for a in range(re.size):
        xr = vf[2 * a]
        xi = vf[2 * a + 1]
        vf[2 * a] = xr * re[a] - xi * im[a]
        vf[2 * a + 1] = xr * im[a] + xi * re[a]


class QuboPhases:
    """The phases ``e^{−igE}`` of the QUBO ``E(z) = zᵀQz + cᵀz + const`` (module docstring).

    ``pair``, ``diag``, ``const`` are the arrays :func:`block_phases` takes; its table ``T`` is
    ``phase_table(low_energies(m), g)`` (computed inside the kernels: no Python between them).
    """

    def __init__(self, quadratic, linear, constant: float = 0.0):
        self.n, self.pair, self.diag, self.const = _qubo_parts(quadratic, linear, constant)
        self._low: dict[int, np.ndarray] = {}

    @classmethod
    def of(cls, qubo) -> QuboPhases:
        """From a :class:`~qportfolio.encoding.qubo.Qubo` (or anything with quadratic, linear, constant)."""
        return cls(qubo.quadratic, qubo.linear, qubo.constant)

    def block_bits(self, limit: int = BLOCK_BITS) -> int:
        """The block size m (log2): at most BLOCK_BITS, ``limit`` and n."""
        return max(0, min(self.n, limit, BLOCK_BITS))

    def low_energies(self, m: int) -> np.ndarray:
        """E_a(a) for a < 2^m: the energy of the m low bits alone, without the constant."""
        if m not in self._low:
            self._low[m] = _low_energies(self.pair, self.diag, m)
        return self._low[m]

    def energies(self, states) -> np.ndarray:
        """E of the given basis indices (float64)."""
        return qubo_energies(self.pair / 2, self.diag, self.const, states)

    def reproduces(self, energies: np.ndarray, samples: int = 256, seed: int = 0) -> bool:
        """Whether ``energies`` is this QUBO's table (2^n entries, same units and offset), checked on the
        states with one bit set, all set, none and ``samples`` random ones, to rounding."""
        energies = np.asarray(energies)
        if energies.shape != (1 << self.n,):
            return False
        states = np.concatenate([[0, (1 << self.n) - 1], 1 << np.arange(self.n),
                                 np.random.default_rng(seed).integers(0, 1 << self.n, samples)])
        expected = self.energies(states)
        tolerance = 1e-11 * max(1.0, float(np.max(np.abs(expected))), float(np.sum(np.abs(self.pair))))
        return bool(np.all(np.abs(energies[states] - expected) <= tolerance))

    def arguments(self):
        """(pair, diag, const): the QUBO as :func:`block_phases` takes it."""
        return self.pair, self.diag, self.const


def no_qubo_arguments():
    """The (pair, diag, const) of "no QUBO": kernels taking both paths read the energy table instead."""
    return np.zeros((0, 0)), np.zeros(0), 0.0
