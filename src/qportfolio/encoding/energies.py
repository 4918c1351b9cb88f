"""QUBO energies of every basis state: the O(2ⁿ) table, built by a numba kernel."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qportfolio.memory import SIMULATOR_ADVICE, require_memory

#: Largest number of qubits the QUBO is enumerated for (2ⁿ energies, 8·2ⁿ bytes).
MAX_ENUMERATED_QUBITS = 26




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
    require_memory(8.0 * 2**n, f"the {n}-qubit energy diagonal", SIMULATOR_ADVICE)
    out = np.empty(1 << n, dtype=np.float64)
    _qubo_diagonal_kernel(pair, diag, const, out)
    return out


def qubo_energies(quadratic, linear, constant: float, states) -> np.ndarray:
    """The QUBO energy of the given basis indices ``z`` (any shape of integers), float64."""
    n, pair, diag, const = _qubo_parts(quadratic, linear, constant)
    z = np.asarray(states, dtype=np.int64)
    x = ((z[..., None] >> np.arange(n)) & 1).astype(np.float64)
    return const + x @ diag + 0.5 * np.einsum("...i,ij,...j->...", x, pair, x)


def qubo_ground_index(quadratic, linear=None, constant: float = 0.0) -> int:
    """``argmin_z E[z]`` (the first ``z`` on ties), the same as ``np.argmin(qubo_diagonal(...))`` without its
    8·2ⁿ-byte table: each tile's minimum is taken as the tile is computed."""
    n, pair, diag, const = _qubo_parts(quadratic, linear, constant)
    return int(_qubo_argmin_kernel(pair, diag, const))


@njit(cache=True)
def _low_energies(pair, diag, b):
    """``E_low[z] = Σ_{i<b} d_i x_i + Σ_{j<i<b} P_ij x_i x_j`` for ``z < 2^b``: the low bits' own energy."""
    low = np.zeros(1 << b)
    for k in range(b):
        for z in range(1 << k):
            e = low[z] + diag[k]
            for j in range(k):
                if (z >> j) & 1:
                    e += pair[k, j]
            low[z | (1 << k)] = e
    return low


@njit(cache=True)
def _high_energies(pair, diag, const, zh, b):
    """For the high bits ``zh`` (bits b…n−1): ``const`` + their own energy + their coupling to each low
    state ``z < 2^b``; ``E[zh·2^b + z] = E_low[z] + this[z]``."""
    n = diag.size
    eh = const
    for i in range(b, n):
        if (zh >> (i - b)) & 1:
            eh += diag[i]
            for j in range(i + 1, n):
                if (zh >> (j - b)) & 1:
                    eh += pair[i, j]
    lin = np.empty(1 << b)
    lin[0] = eh
    for i in range(b):
        f = 0.0
        for j in range(b, n):
            if (zh >> (j - b)) & 1:
                f += pair[i, j]
        for z in range(1 << i):
            lin[z | (1 << i)] = lin[z] + f
    return lin


@njit(cache=True, parallel=True)
def _qubo_diagonal_kernel(pair, diag, const, out):
    n = diag.size
    b = min(n, 12)
    low = _low_energies(pair, diag, b)
    for zh in prange(1 << (n - b)):
        lin = _high_energies(pair, diag, const, zh, b)
        base = zh << b
        for z in range(1 << b):
            out[base + z] = low[z] + lin[z]


@njit(cache=True, parallel=True)
def _qubo_argmin_kernel(pair, diag, const):
    n = diag.size
    b = min(n, 12)
    low = _low_energies(pair, diag, b)
    tiles = 1 << (n - b)
    smallest = np.empty(tiles)
    where = np.empty(tiles, dtype=np.int64)
    for zh in prange(tiles):
        lin = _high_energies(pair, diag, const, zh, b)
        best = low[0] + lin[0]
        at = 0
        for z in range(1, 1 << b):
            e = low[z] + lin[z]
            if e < best:
                best = e
                at = z
        smallest[zh] = best
        where[zh] = (zh << b) + at
    return where[np.argmin(smallest)]
