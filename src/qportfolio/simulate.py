"""Exact statevector simulation of QAOA (X and XY mixers) and of bound VQE circuits.

Conventions (identical to the package's Qiskit circuits):

* Qubit ``i`` is bit ``i`` of the basis index ``z`` (little-endian, ``Statevector.data[z]``); the
  QUBO variable ``x_i`` is that bit.
* QUBO energy ``E(x) = Σ_ij Q_ij x_i x_j + cᵀx + const`` (Q upper-triangular or symmetric, taken as
  given). :func:`qubo_diagonal` tabulates ``E[z]`` for all ``2ⁿ`` z in O(2ⁿ + 2^(n-b)·n²) work.
* QAOA with parameters ``θ = (β_1 … β_p, γ_1 … γ_p)`` (Qiskit's QAOAAnsatz order):
  ``|ψ⟩ = Π_l M(β_l) exp(-i γ_l s E) |ψ₀⟩`` where ``E`` is the *cost* diagonal in original units
  and ``s`` = ``phase_scale`` (so the phase diagonal is ``s·E``; a constant shift of the phase
  diagonal is a global phase and never matters). Objectives are reported in the units of ``E``.

  - X mixer: ``|ψ₀⟩ = |+⟩^⊗n``, ``M(β) = exp(-iβ Σ_i X_i) = Π_i RX_i(2β)``.
  - XY mixer: ``|ψ₀⟩ = |D^n_K⟩`` (Dicke state), ``M(β) = Π_{(i,j) in pairs} exp(-iβ(X_iX_j+Y_iY_j)/2)``
    applied in list order (= ``XXPlusYYGate(2β, 0)`` on qubits i, j); it rotates each pair
    ``|…1_i…0_j…⟩, |…0_i…1_j…⟩`` by ``[[cos β, -i sin β], [-i sin β, cos β]]``.

* X-mixer kernel. ``exp(-iβ Σ_{i∈T} X_i) = W_T D_T(β) W_T / 2^|T|`` for any qubit set ``T`` with
  ``W_T`` the (additions-only) Walsh–Hadamard transform on T and ``D_T = diag(exp(-iβ(|T| - 2·w_T(z))))``
  (``w_T`` = number of set bits of z in T), and it factorises over any partition of the qubits.
  The qubits are split into the ``b`` low bits (a contiguous tile of ``2^b`` amplitudes, whose
  lowest 10 bits are mixed W·D·W inside L1-sized sub-blocks) and the high bits (a tile gathered
  from ``2^(n-b)`` runs of ``2^m`` amplitudes); each tile fits the L2 cache. The low and high
  halves of a mixer commute and the cost phase is diagonal, so layers are ordered
  ``P₁ L₁ | H₁ P₂ H₂ | L₂ P₃ L₃ | …`` and one evaluation makes ``p + 1`` passes over memory (the
  last one reads only, accumulating ``Σ|ψ_z|² E_z``). The WHT runs on the interleaved float view
  (real coefficients), where numba's loops vectorise.
  The phases use a vectorisable sin/cos (Cody–Waite reduction + fdlibm minimax polynomials, ≤ 1 ulp
  for moderate arguments) instead of libm.
* Objectives from ``P[z] = |ψ_z|²``: ``⟨E⟩ = Σ P E``; ``CVaR_α`` = mean energy of the lowest-energy
  α fraction of the probability mass, the boundary state counted fractionally.
* Gradient by the adjoint method: for a gate ``exp(-iθG)``, ``∂⟨E⟩/∂θ = 2 Im⟨λ|G|φ⟩`` with ``φ`` the
  state and ``λ = E φ_final`` propagated backwards alongside it.
* K-of-N subspace: the weight-K basis states in increasing order of z are ranked by the
  combinatorial number system ``rank(z) = Σ_t C(c_t, t+1)`` (``c_0 < c_1 < …`` the set bits); for each
  pair a table lists the (rank, partner rank) couples the XY rotation mixes.

Every allocation that scales with ``2ⁿ`` or ``C(N, K)`` is checked first against available memory
(:class:`~qportfolio.errors.ResourceError`). Precision: ``complex128`` (default) or ``complex64``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from math import comb

import numba
import numpy as np
from numba import njit, prange

from qportfolio.memory import require_memory

_GIB = float(1 << 30)
_DTYPES = (np.complex128, np.complex64)


# --------------------------------------------------------------------------- memory guard


SIMULATOR_ADVICE = ("use backend.precision: complex64 (half the state memory), an XY mixer for selection "
                    "(the K-of-N feasible subspace), or fewer qubits")


def check_memory(nbytes: float, what: str) -> None:
    """The memory guard (:func:`qportfolio.memory.require_memory`) with the simulator's advice."""
    require_memory(nbytes, what, SIMULATOR_ADVICE)


_THREADS_MIN = 1 << 20  # amplitudes below which an evaluation runs on one thread


@contextmanager
def _threads(size: int):
    """Run small problems on one thread: a parallel region costs a scheduler wake-up (up to tens
    of ms when other processes share the cores), more than a small evaluation itself."""
    if size >= _THREADS_MIN:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in [np.dtype(d) for d in _DTYPES]:
        raise ValueError(f"dtype {dtype} is not supported: use numpy.complex128 or numpy.complex64")
    return dtype


def _split_theta(theta) -> tuple[np.ndarray, np.ndarray]:
    theta = np.asarray(theta, dtype=np.float64).ravel()
    if theta.size == 0 or theta.size % 2:
        raise ValueError(
            f"QAOA parameters must be (beta_1..beta_p, gamma_1..gamma_p), got {theta.size} values"
        )
    p = theta.size // 2
    return theta[:p], theta[p:]


# --------------------------------------------------------------------------- QUBO diagonal


def _qubo_parts(quadratic, linear, constant):
    q = np.asarray(quadratic, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] != q.shape[1]:
        raise ValueError(f"the quadratic QUBO matrix must be square, got shape {q.shape}")
    n = q.shape[0]
    c = np.zeros(n) if linear is None else np.asarray(linear, dtype=np.float64).ravel()
    if c.shape != (n,):
        raise ValueError(f"the linear QUBO term has shape {c.shape}, expected ({n},)")
    pair = q + q.T
    np.fill_diagonal(pair, 0.0)
    return n, np.ascontiguousarray(pair), np.diag(q) + c, float(constant)


def qubo_diagonal(quadratic, linear=None, constant: float = 0.0) -> np.ndarray:
    """``E[z] = Σ_ij Q_ij x_i x_j + Σ_i c_i x_i + const`` for every ``z < 2ⁿ`` (x_i = bit i of z), float64."""
    n, pair, diag, const = _qubo_parts(quadratic, linear, constant)
    check_memory(8.0 * 2**n, f"the {n}-qubit energy diagonal")
    out = np.empty(1 << n, dtype=np.float64)
    _qubo_diagonal_kernel(pair, diag, const, out)
    return out


def qubo_energies(quadratic, linear, constant: float, states) -> np.ndarray:
    """The QUBO energy of the given basis indices ``z`` (any shape of integers), float64."""
    n, pair, diag, const = _qubo_parts(quadratic, linear, constant)
    z = np.asarray(states, dtype=np.int64)
    x = ((z[..., None] >> np.arange(n)) & 1).astype(np.float64)
    return const + x @ diag + 0.5 * np.einsum("...i,ij,...j->...", x, pair, x)


@njit(cache=True, parallel=True)
def _qubo_diagonal_kernel(pair, diag, const, out):
    n = diag.size
    b = min(n, 12)
    size = 1 << b
    low = np.zeros(size)
    for k in range(b):
        for z in range(1 << k):
            e = low[z] + diag[k]
            for j in range(k):
                if (z >> j) & 1:
                    e += pair[k, j]
            low[z | (1 << k)] = e
    for zh in prange(1 << (n - b)):
        eh = const
        for i in range(b, n):
            if (zh >> (i - b)) & 1:
                eh += diag[i]
                for j in range(i + 1, n):
                    if (zh >> (j - b)) & 1:
                        eh += pair[i, j]
        lin = np.empty(size)
        lin[0] = eh
        for i in range(b):
            f = 0.0
            for j in range(b, n):
                if (zh >> (j - b)) & 1:
                    f += pair[i, j]
            for z in range(1 << i):
                lin[z | (1 << i)] = lin[z] + f
        base = zh << b
        for z in range(size):
            out[base + z] = low[z] + lin[z]


# --------------------------------------------------------------------------- shared kernels

_P1 = 1.57079632673412561417e00  # π/2 in three parts (Cody–Waite), exact products for |k| < 2^20
_P2 = 6.07710050630396597660e-11
_P3 = 2.02226624871116645580e-21
_TWO_OVER_PI = 0.63661977236758134308
_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)
S1, S2, S3, S4, S5, S6 = _S
C1, C2, C3, C4, C5, C6 = _C


@njit(cache=True, inline="always")
def _sincos(x):
    k = np.floor(x * _TWO_OVER_PI + 0.5)
    r = ((x - k * _P1) - k * _P2) - k * _P3
    z = r * r
    s = r + r * z * (S1 + z * (S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)))))
    c = 1.0 - 0.5 * z + z * z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))))
    q = k - 4.0 * np.floor(k * 0.25)
    swap = (q == 1.0) or (q == 3.0)
    ss = c if swap else s
    cc = s if swap else c
    if q >= 2.0:
        ss = -ss
    if q == 1.0 or q == 2.0:
        cc = -cc
    return ss, cc


_PARALLEL_MIN = 1 << 18  # work items below which one thread beats a parallel region


@njit(cache=True, parallel=True)
def _phase_parallel(psi, energy, g):
    for z in prange(psi.size):
        s, c = _sincos(g * energy[z])
        psi[z] = psi[z] * complex(c, -s)


@njit(cache=True)
def _phase_serial(psi, energy, g):
    for z in range(psi.size):
        s, c = _sincos(g * energy[z])
        psi[z] = psi[z] * complex(c, -s)


def _phase(psi, energy, g):
    """ψ_z ← exp(-i g E_z) ψ_z."""
    (_phase_parallel if psi.size >= _PARALLEL_MIN else _phase_serial)(psi, energy, g)


@njit(cache=True, parallel=True)
def _weighted_dot(lam, phi, energy):
    """Σ_z conj(λ_z) E_z φ_z."""
    acc = 0.0j
    for z in prange(phi.size):
        acc += np.conj(lam[z]) * phi[z] * energy[z]
    return acc


@njit(cache=True, parallel=True)
def _expectation_parallel(psi, energy):
    acc = 0.0
    for z in prange(psi.size):
        a = psi[z]
        acc += (a.real * a.real + a.imag * a.imag) * energy[z]
    return acc


@njit(cache=True)
def _expectation_serial(psi, energy):
    acc = 0.0
    for z in range(psi.size):
        a = psi[z]
        acc += (a.real * a.real + a.imag * a.imag) * energy[z]
    return acc


def _expectation(psi, energy) -> float:
    """Σ_z |ψ_z|² E_z."""
    return (_expectation_parallel if psi.size >= _PARALLEL_MIN else _expectation_serial)(psi, energy)


@njit(cache=True, parallel=True)
def _probabilities(psi):
    out = np.empty(psi.size)
    for z in prange(psi.size):
        a = psi[z]
        out[z] = a.real * a.real + a.imag * a.imag
    return out


def _cvar(prob: np.ndarray, cost_sorted: np.ndarray, order: np.ndarray, alpha: float) -> float:
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"CVaR alpha must be in (0, 1], got {alpha}")
    p = prob[order]
    cum = np.cumsum(p)
    i = int(np.searchsorted(cum, alpha * cum[-1]))
    i = min(i, p.size - 1)
    below = cum[i - 1] if i > 0 else 0.0
    total = float(np.dot(p[:i], cost_sorted[:i])) + (alpha * cum[-1] - below) * cost_sorted[i]
    return total / (alpha * cum[-1])


# --------------------------------------------------------------------------- X-mixer kernels


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
def _wht_low3(xf):
    """Walsh–Hadamard transform on complex bits 0, 1, 2 (float strides 2, 4, 8), unrolled."""
    for g in range(0, xf.size, 16):
        v = xf[g:g + 16]
        for r in range(2):
            a0 = v[r] + v[r + 2]
            a1 = v[r] - v[r + 2]
            a2 = v[r + 4] + v[r + 6]
            a3 = v[r + 4] - v[r + 6]
            a4 = v[r + 8] + v[r + 10]
            a5 = v[r + 8] - v[r + 10]
            a6 = v[r + 12] + v[r + 14]
            a7 = v[r + 12] - v[r + 14]
            b0 = a0 + a2
            b1 = a1 + a3
            b2 = a0 - a2
            b3 = a1 - a3
            b4 = a4 + a6
            b5 = a5 + a7
            b6 = a4 - a6
            b7 = a5 - a7
            v[r] = b0 + b4
            v[r + 2] = b1 + b5
            v[r + 4] = b2 + b6
            v[r + 6] = b3 + b7
            v[r + 8] = b0 - b4
            v[r + 10] = b1 - b5
            v[r + 12] = b2 - b6
            v[r + 14] = b3 - b7


@njit(cache=True)
def _wht(xf, b0, k):
    """Unnormalised Walsh–Hadamard transform on complex bits b0 … b0+k-1 of a tile given as its
    interleaved float view xf (complex bit q = float bit q+1; real coefficients, so the float
    loops vectorise)."""
    q = b0 + 1
    end = b0 + k + 1
    if b0 == 0 and k >= 3:
        _wht_low3(xf)
        q = 4
    while q + 1 < end:
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
def _tile_ops(x, e, kinds, values, tab_sub, tab_top, b0, k, sub):
    """Apply the ops to a tile whose bits b0…b0+k-1 are the mixed qubits (others: independent).

    With b0 = 0 a mixer is split into its part on bits 0…sub-1, done W·D·W inside L1-sized
    sub-blocks, and its part on bits sub…k-1, done W·D·W over the whole tile (sub = 0 otherwise).
    """
    xf = x.view(x.real.dtype)
    bs = 1 << sub
    top_bits = k - sub
    top_shift = b0 + sub
    top_mask = (1 << top_bits) - 1
    for o in range(kinds.size):
        if kinds[o] == 0:
            g = values[o]
            for j in range(x.size):
                s, c = _sincos(g * e[j])
                x[j] = x[j] * complex(c, -s)
            continue
        if sub > 0:
            ts = tab_sub[o]
            for start in range(0, x.size, bs):
                v = x[start:start + bs]
                vf = xf[2 * start:2 * start + 2 * bs]
                _wht(vf, 0, sub)
                for j in range(bs):
                    v[j] = v[j] * ts[j]
                _wht(vf, 0, sub)
        if top_bits > 0:
            tt = tab_top[o]
            _wht(xf, top_shift, top_bits)
            for j in range(x.size):
                x[j] = x[j] * tt[(j >> top_shift) & top_mask]
            _wht(xf, top_shift, top_bits)


@njit(cache=True)
def _tables(kinds, values, k, sub, dtype_array):
    tab_sub = np.empty((kinds.size, 1 << sub), dtype=dtype_array.dtype)
    tab_top = np.empty((kinds.size, 1 << (k - sub)), dtype=dtype_array.dtype)
    for o in range(kinds.size):
        if kinds[o] == 1:
            # D over k qubits factorises into D over the sub qubits times D over the top qubits
            _mixer_table(sub, values[o], tab_sub[o])
            _mixer_table(k - sub, values[o], tab_top[o])
    return tab_sub, tab_top


@njit(cache=True, parallel=True)
def _pass_low(psi, energy, bits, kinds, values, init, expect):
    """Apply ops to each contiguous tile of 2^bits amplitudes (mixers act on bits 0…bits-1).

    ops: kind 0 = phase exp(-i·value·E), kind 1 = mixer on the tile's bits with β = value.
    init ≠ 0: the tiles start as the constant ``init`` instead of being read. expect: return
    Σ|ψ|²E of the result without writing the state back.
    """
    size = 1 << bits
    ntiles = psi.size >> bits
    sub = min(bits, _SUB_BITS)
    tab_sub, tab_top = _tables(kinds, values, bits, sub, psi)
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
        _tile_ops(x, e, kinds, values, tab_sub, tab_top, 0, bits, sub)
        if expect:
            s = 0.0
            for j in range(size):
                a = x[j]
                s += (a.real * a.real + a.imag * a.imag) * e[j]
            acc[t] = s
    return acc.sum()


@njit(cache=True, parallel=True)
def _pass_high(psi, energy, low_bits, run_bits, kinds, values, expect):
    """Like :func:`_pass_low` for the high bits: a tile gathers 2^(n-low_bits) runs of 2^run_bits
    amplitudes; the high qubits are the tile's bits run_bits….""" 
    nh = psi.size >> low_bits
    kh = 0
    while (1 << kh) < nh:
        kh += 1
    run = 1 << run_bits
    size = nh * run
    tab_sub, tab_top = _tables(kinds, values, kh, 0, psi)
    need_e = expect
    for o in range(kinds.size):
        if kinds[o] == 0:
            need_e = True
    ntiles = 1 << (low_bits - run_bits)
    acc = np.zeros(ntiles)
    for t in prange(ntiles):
        x = np.empty(size, dtype=psi.dtype)
        e = np.empty(size if need_e else 0)
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            x[h * run:(h + 1) * run] = psi[src:src + run]
            if need_e:
                e[h * run:(h + 1) * run] = energy[src:src + run]
        _tile_ops(x, e, kinds, values, tab_sub, tab_top, run_bits, kh, 0)
        if expect:
            s = 0.0
            for j in range(size):
                a = x[j]
                s += (a.real * a.real + a.imag * a.imag) * e[j]
            acc[t] = s
        else:
            for h in range(nh):
                src = (h << low_bits) | (t << run_bits)
                psi[src:src + run] = x[h * run:(h + 1) * run]
    return acc.sum()


@njit(cache=True, parallel=True)
def _mixer_overlap(lam, phi):
    """⟨λ| Σ_i X_i |φ⟩."""
    n = 0
    while (1 << n) < phi.size:
        n += 1
    acc = 0.0j
    for z in prange(phi.size):
        s = 0.0j
        for i in range(n):
            s += phi[z ^ (1 << i)]
        acc += np.conj(lam[z]) * s
    return acc


# --------------------------------------------------------------------------- X-mixer simulator


class _DiagonalObjective:
    """Expectation and CVaR of a final state against a cost diagonal (shared by all QAOA paths)."""

    def __init__(self, cost, phase_scale, dtype):
        self.cost = cost
        self.phase_scale = float(phase_scale)
        self.dtype = _dtype(dtype)
        self._order = None

    def statevector(self, theta) -> np.ndarray:
        """The final state |ψ(θ)⟩ (a new array)."""
        check_memory(float(self.dtype.itemsize * self.cost.size), "a copy of the final state")
        with _threads(self.cost.size):
            return self._evolve(theta).copy()

    def probabilities(self, theta) -> np.ndarray:
        """P[z] = |ψ_z(θ)|², float64."""
        check_memory(8.0 * self.cost.size, "the probability vector")
        with _threads(self.cost.size):
            return _probabilities(self._evolve(theta))

    def expectation(self, theta) -> float:
        """⟨ψ(θ)|E|ψ(θ)⟩ in the units of the cost diagonal."""
        with _threads(self.cost.size):
            return float(_expectation(self._evolve(theta), self.cost))

    def expectations(self, thetas) -> np.ndarray:
        """:meth:`expectation` for each row of ``thetas`` (shape (m, 2p))."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        return np.array([self.expectation(t) for t in thetas])

    def cvar(self, theta, alpha: float) -> float:
        """Mean energy of the lowest-energy ``alpha`` fraction of the probability mass."""
        if self._order is None:
            check_memory(16.0 * self.cost.size, "the CVaR sort order and sorted energies")
            self._order = np.argsort(self.cost, kind="stable")
            self._cost_sorted = self.cost[self._order]
        return _cvar(self.probabilities(theta), self._cost_sorted, self._order, alpha)

    def cvars(self, thetas, alpha: float) -> np.ndarray:
        """:meth:`cvar` for each row of ``thetas``."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        return np.array([self.cvar(t, alpha) for t in thetas])


def _cost_array(cost_diagonal, expected_size=None) -> np.ndarray:
    cost = np.ascontiguousarray(cost_diagonal, dtype=np.float64)
    if cost.ndim != 1 or (expected_size is None and (cost.size & (cost.size - 1) or cost.size < 2)):
        raise ValueError(f"the cost diagonal must be a vector of length 2**n, got shape {cost.shape}")
    if expected_size is not None and cost.size != expected_size:
        raise ValueError(f"the cost vector has {cost.size} entries, expected {expected_size}")
    if not np.all(np.isfinite(cost)):
        raise ValueError("the cost diagonal contains NaN or infinity")
    return cost


class QAOASimulator(_DiagonalObjective):
    """Exact QAOA with the X mixer on ``n = log2(len(cost_diagonal))`` qubits.

    ``cost_diagonal`` E[z] is in original units (objectives are reported in them); the cost layer
    is ``exp(-i γ · phase_scale · E)``. ``tile_bits``: log2 of amplitudes per cache tile.
    """

    def __init__(self, cost_diagonal, *, phase_scale: float = 1.0, dtype=np.complex128,
                 tile_bits: int | None = None):
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
        self._psi = np.empty(self.cost.size, dtype=self.dtype)

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
        passes = self._passes(beta, gamma)
        value = 0.0
        for i, (where, kinds, values) in enumerate(passes):
            last = expect and i == len(passes) - 1
            kinds = kinds.astype(np.int64)
            values = values.astype(np.float64)
            if where == "low":
                value = _pass_low(psi, self.cost, self.low_bits, kinds, values, init if i == 0 else 0.0, last)
            else:
                value = _pass_high(psi, self.cost, self.low_bits, self.run_bits, kinds, values, last)
        return value

    def _evolve(self, theta):
        self._run(theta, expect=False)
        return self._psi

    def expectation(self, theta) -> float:
        with _threads(self.cost.size):
            return float(self._run(theta, expect=True))

    def _mixer(self, psi, beta):
        one = np.array([1], dtype=np.int64)
        b = np.array([beta], dtype=np.float64)
        _pass_low(psi, self.cost, self.low_bits, one, b, 0.0, False)
        if self.low_bits < self.n:
            _pass_high(psi, self.cost, self.low_bits, self.run_bits, one, b, False)

    def expectation_and_gradient(self, theta) -> tuple[float, np.ndarray]:
        """⟨E⟩ and its exact gradient w.r.t. θ = (β…, γ…) by the adjoint method (two states)."""
        beta, gamma = _split_theta(theta)
        check_memory(2.0 * self.dtype.itemsize * self.cost.size, "the adjoint gradient's two states")
        with _threads(self.cost.size):
            return self._adjoint(beta, gamma)

    def _adjoint(self, beta, gamma):
        p = beta.size
        self._run(np.concatenate([beta, gamma]), expect=False)
        phi = self._psi.copy()
        lam = phi * self.cost.astype(self.dtype)
        value = float(np.vdot(phi, lam).real)
        grad = np.empty(2 * p)
        s = self.phase_scale
        for layer in range(p - 1, -1, -1):
            grad[layer] = 2.0 * _mixer_overlap(lam, phi).imag
            self._mixer(phi, -beta[layer])
            self._mixer(lam, -beta[layer])
            grad[p + layer] = 2.0 * s * _weighted_dot(lam, phi, self.cost).imag
            _phase(phi, self.cost, -gamma[layer] * s)
            _phase(lam, self.cost, -gamma[layer] * s)
        return value, grad


# --------------------------------------------------------------------------- XY mixers


def xy_pairs(n: int, topology: str = "ring") -> list[tuple[int, int]]:
    """The ordered qubit pairs of the ring or complete XY mixer on n qubits."""
    if topology == "ring":
        return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)]
    if topology == "complete":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    raise ValueError(f"unknown XY mixer topology {topology!r}: use 'ring' or 'complete'")


def _pair_array(pairs, n) -> np.ndarray:
    if isinstance(pairs, str):
        pairs = xy_pairs(n, pairs)
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if arr.size and (arr.min() < 0 or arr.max() >= n or np.any(arr[:, 0] == arr[:, 1])):
        raise ValueError(f"XY mixer pairs must be distinct qubits in 0..{n - 1}, got {pairs}")
    return arr


def _xy_rotations(kernel_serial, kernel_parallel, work_per_pair):
    """Pick the kernel: a parallel region per pair only pays off when each pair has much work."""
    return kernel_parallel if work_per_pair >= _PARALLEL_MIN else kernel_serial


@njit(cache=True)
def _xy_full_serial(psi, pairs, c, s):
    """Π over pairs of the XY rotation (module docstring) on the full state."""
    quarter = psi.size >> 2
    ms = complex(0.0, -s)
    for p in range(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        lo = min(i, j)
        hi = max(i, j)
        for r in range(quarter):
            z = ((r >> lo) << (lo + 1)) | (r & ((1 << lo) - 1))
            z = ((z >> hi) << (hi + 1)) | (z & ((1 << hi) - 1))
            a = z | (1 << i)
            b = z | (1 << j)
            xa = psi[a]
            xb = psi[b]
            psi[a] = c * xa + ms * xb
            psi[b] = c * xb + ms * xa


@njit(cache=True, parallel=True)
def _xy_full_parallel(psi, pairs, c, s):
    quarter = psi.size >> 2
    ms = complex(0.0, -s)
    for p in range(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        lo = min(i, j)
        hi = max(i, j)
        for r in prange(quarter):
            z = ((r >> lo) << (lo + 1)) | (r & ((1 << lo) - 1))
            z = ((z >> hi) << (hi + 1)) | (z & ((1 << hi) - 1))
            a = z | (1 << i)
            b = z | (1 << j)
            xa = psi[a]
            xb = psi[b]
            psi[a] = c * xa + ms * xb
            psi[b] = c * xb + ms * xa


@njit(cache=True)
def _xy_sub_serial(psi, left, right, counts, c, s):
    """Π over pairs of the XY rotation on the subspace, via the (rank, partner rank) tables."""
    ms = complex(0.0, -s)
    for p in range(left.shape[0]):
        for e in range(counts[p]):
            a = left[p, e]
            b = right[p, e]
            xa = psi[a]
            xb = psi[b]
            psi[a] = c * xa + ms * xb
            psi[b] = c * xb + ms * xa


@njit(cache=True, parallel=True)
def _xy_sub_parallel(psi, left, right, counts, c, s):
    ms = complex(0.0, -s)
    for p in range(left.shape[0]):
        for e in prange(counts[p]):
            a = left[p, e]
            b = right[p, e]
            xa = psi[a]
            xb = psi[b]
            psi[a] = c * xa + ms * xb
            psi[b] = c * xb + ms * xa



def dicke_state(n: int, k: int, dtype=np.complex128) -> np.ndarray:
    """|D^n_k⟩ on the full 2ⁿ space: equal amplitudes on all weight-k basis states."""
    check_memory(np.dtype(dtype).itemsize * 2.0**n, f"the {n}-qubit Dicke state")
    z = np.arange(1 << n, dtype=np.int64)
    weight = np.zeros(z.size, dtype=np.int64)
    for i in range(n):
        weight += (z >> i) & 1
    psi = np.zeros(z.size, dtype=dtype)
    psi[weight == k] = 1.0 / math.sqrt(comb(n, k))
    return psi


class XYQAOASimulator(_DiagonalObjective):
    """QAOA with an XY mixer from the Dicke state |D^n_k⟩ on the full 2ⁿ space.

    ``pairs``: 'ring', 'complete' or an ordered list of qubit pairs. Reference path for
    :class:`SubspaceQAOASimulator`; prefer that for K-of-N problems.
    """

    def __init__(self, cost_diagonal, k: int, pairs="ring", *, phase_scale: float = 1.0,
                 dtype=np.complex128):
        super().__init__(None, phase_scale, dtype)
        self.cost = _cost_array(cost_diagonal)
        self.n = self.cost.size.bit_length() - 1
        if not 0 <= k <= self.n:
            raise ValueError(f"k = {k} must be between 0 and n = {self.n}")
        self.k = int(k)
        self.pairs = _pair_array(pairs, self.n)
        self._initial = dicke_state(self.n, self.k, self.dtype)
        self._psi = np.empty_like(self._initial)
        self._rotate = _xy_rotations(_xy_full_serial, _xy_full_parallel, self._psi.size >> 2)

    def _evolve(self, theta):
        beta, gamma = _split_theta(theta)
        psi = self._psi
        psi[:] = self._initial
        for b, g in zip(beta, gamma):
            _phase(psi, self.cost, g * self.phase_scale)
            self._rotate(psi, self.pairs, math.cos(b), math.sin(b))
        return psi


@njit(cache=True)
def _weight_k_states(n, k, out):
    if k == 0:
        out[0] = 0
        return
    z = (np.int64(1) << k) - 1
    for r in range(out.size):
        out[r] = z
        c = z & -z  # Gosper's hack: the next integer with the same number of set bits
        t = z + c
        z = (((t ^ z) >> 2) // c) | t


@njit(cache=True)
def _rank(z, binom):
    r = 0
    t = 1
    while z:
        c = 0
        low = z & -z
        while (low >> c) != 1:
            c += 1
        r += binom[c, t]
        t += 1
        z ^= low
    return r


@njit(cache=True, parallel=True)
def _pair_tables(states, pairs, binom, left, right, counts):
    for p in prange(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        m = (np.int64(1) << i) | (np.int64(1) << j)
        e = 0
        for r in range(states.size):
            z = states[r]
            if ((z >> i) & 1) == 1 and ((z >> j) & 1) == 0:
                left[p, e] = r
                right[p, e] = _rank(z ^ m, binom)
                e += 1
        counts[p] = e


def weight_k_states(n: int, k: int) -> np.ndarray:
    """The C(n, k) basis indices of weight k in increasing order (= combinatorial rank order), int64."""
    if not 0 <= k <= n <= 62:
        raise ValueError(f"need 0 <= k <= n <= 62, got n = {n}, k = {k}")
    check_memory(8.0 * comb(n, k), f"the C({n}, {k}) weight-{k} basis states")
    out = np.empty(comb(n, k), dtype=np.int64)
    _weight_k_states(n, k, out)
    return out


class SubspaceQAOASimulator(_DiagonalObjective):
    """XY-mixer QAOA on the C(n, k) weight-k basis states only (K-of-N selection).

    ``cost`` holds the energies of :attr:`states` (``weight_k_states(n, k)``, e.g. from
    :func:`qubo_energies`); all outputs are indexed the same way, and equal the full-space
    :class:`XYQAOASimulator` results restricted to those states.
    """

    def __init__(self, cost, n: int, k: int, pairs="ring", *, phase_scale: float = 1.0,
                 dtype=np.complex128):
        super().__init__(None, phase_scale, dtype)
        if not 0 <= k <= n:
            raise ValueError(f"k = {k} must be between 0 and n = {n}")
        self.n, self.k = int(n), int(k)
        self.pairs = _pair_array(pairs, self.n)
        dim = comb(n, k)
        per_pair = comb(n - 2, k - 1) if n >= 2 and k >= 1 else 0
        index = np.int32 if dim < 2**31 else np.int64
        need = dim * (self.dtype.itemsize + 16.0 + 8.0) + 2.0 * len(self.pairs) * per_pair * np.dtype(index).itemsize
        check_memory(need, f"the C({n}, {k}) = {dim}-state subspace simulation")
        self.cost = _cost_array(cost, dim)
        self.states = weight_k_states(n, k)
        binom = np.array([[comb(a, b) for b in range(k + 2)] for a in range(n + 1)], dtype=np.int64)
        self._left = np.empty((len(self.pairs), per_pair), dtype=index)
        self._right = np.empty_like(self._left)
        self._counts = np.zeros(len(self.pairs), dtype=np.int64)
        if len(self.pairs) and per_pair:
            _pair_tables(self.states, self.pairs, binom, self._left, self._right, self._counts)
        self._psi = np.empty(dim, dtype=self.dtype)
        self._rotate = _xy_rotations(_xy_sub_serial, _xy_sub_parallel, per_pair)

    def _evolve(self, theta):
        beta, gamma = _split_theta(theta)
        psi = self._psi
        psi[:] = 1.0 / math.sqrt(psi.size)
        for b, g in zip(beta, gamma):
            _phase(psi, self.cost, g * self.phase_scale)
            self._rotate(psi, self._left, self._right, self._counts, math.cos(b), math.sin(b))
        return psi


# --------------------------------------------------------------------------- VQE circuits


@njit(cache=True, parallel=True)
def _apply_1q(psi, q, m00, m01, m10, m11):
    h = 1 << q
    for r in prange(psi.size >> 1):
        a = ((r >> q) << (q + 1)) | (r & (h - 1))
        b = a | h
        x0 = psi[a]
        x1 = psi[b]
        psi[a] = m00 * x0 + m01 * x1
        psi[b] = m10 * x0 + m11 * x1


@njit(cache=True, parallel=True)
def _apply_2q(psi, q0, q1, m):
    """4×4 gate on (q0, q1); local index = bit(q0) + 2·bit(q1) (Qiskit's matrix convention)."""
    lo = min(q0, q1)
    hi = max(q0, q1)
    for r in prange(psi.size >> 2):
        z = ((r >> lo) << (lo + 1)) | (r & ((1 << lo) - 1))
        z = ((z >> hi) << (hi + 1)) | (z & ((1 << hi) - 1))
        i0 = z
        i1 = z | (1 << q0)
        i2 = z | (1 << q1)
        i3 = i1 | (1 << q1)
        x0 = psi[i0]
        x1 = psi[i1]
        x2 = psi[i2]
        x3 = psi[i3]
        psi[i0] = m[0, 0] * x0 + m[0, 1] * x1 + m[0, 2] * x2 + m[0, 3] * x3
        psi[i1] = m[1, 0] * x0 + m[1, 1] * x1 + m[1, 2] * x2 + m[1, 3] * x3
        psi[i2] = m[2, 0] * x0 + m[2, 1] * x1 + m[2, 2] * x2 + m[2, 3] * x3
        psi[i3] = m[3, 0] * x0 + m[3, 1] * x1 + m[3, 2] * x2 + m[3, 3] * x3


_BASIS = ["rx", "ry", "rz", "p", "u", "h", "x", "y", "z", "s", "sdg", "sx", "t", "tdg",
          "cx", "cz", "cy", "swap", "rzz", "rxx", "ryy", "cp", "crx", "cry", "crz", "xx_plus_yy"]


class CircuitSimulator:
    """Statevector of a parametrised Qiskit circuit (e.g. ``real_amplitudes``, ``efficient_su2``).

    The circuit is transpiled once to 1- and 2-qubit standard gates; each evaluation binds the
    values (ordered as ``circuit.parameters``) into that gate list and applies numba kernels.
    Starts from |0…0⟩; measurements and barriers are ignored.
    """

    def __init__(self, circuit, *, dtype=np.complex128):
        from qiskit import transpile

        self.dtype = _dtype(dtype)
        self.n = circuit.num_qubits
        check_memory(self.dtype.itemsize * 2.0**self.n, f"the {self.n}-qubit circuit state")
        self.parameters = list(circuit.parameters)
        compiled = transpile(circuit.remove_final_measurements(inplace=False), basis_gates=_BASIS,
                             optimization_level=0)
        index = {p: i for i, p in enumerate(self.parameters)}
        self._ops = []
        for inst in compiled.data:
            op = inst.operation
            if op.name in ("barrier", "measure", "delay"):
                continue
            qubits = tuple(compiled.find_bit(q).index for q in inst.qubits)
            if len(qubits) > 2:
                raise ValueError(f"gate {op.name} acts on {len(qubits)} qubits: only 1- and 2-qubit gates")
            params = [self._compile_param(p, index) for p in op.params]
            self._ops.append((type(op), qubits, params, op if not params else None))
        self._phase = self._compile_param(compiled.global_phase, index)
        self._psi = np.empty(1 << self.n, dtype=self.dtype)

    @staticmethod
    def _compile_param(p, index):
        from qiskit.circuit import Parameter, ParameterExpression

        if isinstance(p, Parameter):
            return ("var", index[p])
        if isinstance(p, ParameterExpression):
            if not p.parameters:
                return ("const", complex(p).real)
            return ("expr", p, [(q, index[q]) for q in p.parameters])
        return ("const", float(p))

    @staticmethod
    def _value(spec, values):
        if spec[0] == "const":
            return spec[1]
        if spec[0] == "var":
            return values[spec[1]]
        expr = spec[1].bind({q: values[i] for q, i in spec[2]})
        return complex(expr).real

    def statevector(self, values) -> np.ndarray:
        """The state after the circuit with ``values`` bound (ordered as ``circuit.parameters``)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size != len(self.parameters):
            raise ValueError(f"the circuit has {len(self.parameters)} parameters, got {values.size} values")
        with _threads(self._psi.size):
            return self._run(values)

    def _run(self, values):
        psi = self._psi
        psi[:] = 0.0
        psi[0] = 1.0
        for cls, qubits, params, fixed in self._ops:
            gate = fixed if fixed is not None else cls(*[self._value(s, values) for s in params])
            m = np.asarray(gate.to_matrix(), dtype=np.complex128)
            if len(qubits) == 1:
                _apply_1q(psi, qubits[0], m[0, 0], m[0, 1], m[1, 0], m[1, 1])
            else:
                _apply_2q(psi, qubits[0], qubits[1], m)
        phase = self._value(self._phase, values)
        if phase:
            psi *= np.exp(1j * phase)
        return psi.copy()

    def probabilities(self, values) -> np.ndarray:
        """|ψ_z|² after the circuit with ``values`` bound, float64."""
        psi = self.statevector(values)
        return psi.real**2 + psi.imag**2
