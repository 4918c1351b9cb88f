"""QAOA with XY mixers from a Dicke state, on the full 2ⁿ space and on the K-of-N subspace."""

from __future__ import annotations

import math
from math import comb

import numpy as np
from numba import njit, prange

from qportfolio.backends.exact.kernels import (
    _PARALLEL_MIN,
    _cost_array,
    _DiagonalObjective,
    _phase,
    _split_theta,
    check_memory,
)
from qportfolio.circuits import xy_pairs
from qportfolio.combinations import weight_k_states


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


@njit(cache=True)
def _xy_sub_adjoint(phi, lam, left, right, counts, c, s):
    """Undo one product XY mixer on φ and λ, pairs last first, and return ∂⟨O⟩/∂β = Σ_pairs 2 Im⟨λ|A_ij|φ⟩
    (A_ij = (X_iX_j + Y_iY_j)/2 swaps each (rank, partner rank) couple), taken where each pair's rotation stands."""
    grad = 0.0
    ps = complex(0.0, s)
    for p in range(left.shape[0] - 1, -1, -1):
        acc = 0.0
        for e in range(counts[p]):
            a = left[p, e]
            b = right[p, e]
            la = lam[a]
            lb = lam[b]
            fa = phi[a]
            fb = phi[b]
            acc += (la.real * fb.imag - la.imag * fb.real) + (lb.real * fa.imag - lb.imag * fa.real)
            phi[a] = c * fa + ps * fb
            phi[b] = c * fb + ps * fa
            lam[a] = c * la + ps * lb
            lam[b] = c * lb + ps * la
        grad += 2.0 * acc
    return grad


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
    psi = np.zeros(1 << n, dtype=dtype)
    psi[weight_k_states(n, k)] = 1.0 / math.sqrt(comb(n, k))
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

    def expectation_and_gradient(self, theta, observable=None) -> tuple[float, np.ndarray]:
        """⟨O⟩ and its exact gradient by the adjoint method (``O`` diagonal over :attr:`states`, by default
        the cost): with φ the final state and λ = Oφ walked back together through the gates,
        ``∂/∂β_l = Σ_pairs 2 Im⟨λ|A_ij|φ⟩`` and ``∂/∂γ_l = 2 Im⟨λ|s·E|φ⟩``."""
        beta, gamma = _split_theta(theta)
        observable = self.cost if observable is None else np.asarray(observable, dtype=np.float64)
        phi = self._evolve(theta).copy()
        lam = phi * observable.astype(self.dtype)
        value = float(np.vdot(phi, lam).real)
        p = beta.size
        grad = np.empty(2 * p)
        s = self.phase_scale
        for layer in range(p - 1, -1, -1):
            b = beta[layer]
            grad[layer] = _xy_sub_adjoint(phi, lam, self._left, self._right, self._counts, math.cos(b), math.sin(b))
            grad[p + layer] = 2.0 * s * np.vdot(lam, self.cost * phi).imag
            _phase(phi, self.cost, -gamma[layer] * s)
            _phase(lam, self.cost, -gamma[layer] * s)
        return value, grad


