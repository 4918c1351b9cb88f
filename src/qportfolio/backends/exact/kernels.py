"""What every exact-simulation engine shares: the memory guard, threading, phases, objectives and the diagonal-cost base class."""

from __future__ import annotations

from contextlib import contextmanager

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange

from qportfolio.memory import SIMULATOR_ADVICE, require_memory
from qportfolio.sampling import sample_counts

_GIB = float(1 << 30)
_DTYPES = (np.complex128, np.complex64)


# --------------------------------------------------------------------------- memory guard




def check_memory(nbytes: float, what: str) -> None:
    """The memory guard (:func:`qportfolio.memory.require_memory`) with the simulator's advice."""
    require_memory(nbytes, what, SIMULATOR_ADVICE)


def kernels_compiled() -> bool:
    """Whether numba's on-disk cache holds this install's compiled kernels. False on the first run after an
    install or an edit of the kernels: that run compiles them (about half a minute on 2 cores), later runs load
    them. Probed on one kernel through numba's cache index, which also checks the source's time stamp."""
    try:
        return bool(_probabilities._cache._cache_file._load_index())
    except Exception:  # numba's cache internals moved: say nothing rather than guess
        return True


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


@njit(cache=True, fastmath={"reassoc"})
def _expectation_serial(psi, energy):
    """Σ_z |ψ_z|² E_z on one thread; the sum may be reordered (vectorised: a rounding-level change; in order it
    is one dependent add an amplitude)."""
    acc = 0.0
    for z in range(psi.size):
        a = psi[z]
        acc += (a.real * a.real + a.imag * a.imag) * energy[z]
    return acc


def _expectation(psi, energy) -> float:
    """Σ_z |ψ_z|² E_z."""
    return (_expectation_parallel if psi.size >= _PARALLEL_MIN else _expectation_serial)(psi, energy)


@njit(cache=True)
def _high_tiles(size, low_bits, run_bits):
    """The gathered tiles of a high-qubit pass over ``size`` amplitudes: ``nh`` runs of ``run = 2^run_bits``
    amplitudes, ``2^low_bits`` apart, make one tile of ``nh·run`` amplitudes whose bits run_bits… carry the
    ``kh`` high qubits; there are ``2^(low_bits − run_bits)`` such tiles. Returns (nh, kh, run, tile size, tiles)."""
    nh = size >> low_bits
    kh = 0
    while (1 << kh) < nh:
        kh += 1
    run = 1 << run_bits
    return nh, kh, run, nh * run, 1 << (low_bits - run_bits)


def _stream_pointers(context, builder, array_type, array, pos, h):
    """Pointers to the vectors of 8 elements at pos + s·h, s < 8."""
    data = context.make_array(array_type)(context, builder, array).data
    vector = ir.PointerType(ir.VectorType(context.get_data_type(array_type.dtype), 8))
    return [builder.bitcast(builder.gep(data, [builder.add(pos, builder.mul(h, ir.Constant(h.type, s)))]), vector)
            for s in range(8)]


@njit(cache=True, parallel=True)
def _weighted_copy(lam, phi, observable):
    """λ ← O φ; returns ⟨φ|O|φ⟩ (one pass instead of a copy, a product and a dot): the adjoint's start."""
    acc = 0.0
    for z in prange(phi.size):
        a = phi[z]
        lam[z] = a * observable[z]
        acc += (a.real * a.real + a.imag * a.imag) * observable[z]
    return acc


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

    def sample(self, theta, shots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(states, counts)`` of ``shots`` draws from |ψ(θ)|², read off the final state in place."""
        with _threads(self.cost.size):
            psi = self._evolve(theta)
        return sample_counts(psi, shots, rng)

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


