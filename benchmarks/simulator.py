"""Time one QAOA expectation: qportfolio's exact simulator against QOKit's C simulator, Aer and the traffic floor.

    python benchmarks/simulator.py [--qubits 20 22 24] [--include-26] [--reps 2] [--aer-limit 60]
                                   [--subspace N ...] [--md FILE] [--json FILE]

Every implementation gets the same dense portfolio QUBO (risk + return + budget penalty) and the same
angles θ = (β_1…β_p, γ_1…γ_p); the reported time is the least of up to 15 evaluations (within 20 s) after a warm-up
(a single cold evaluation for a peer slower than 3 s). Rows per n:

* qportfolio ``QAOASimulator`` in complex128 and complex64, and the time ÷ the traffic floor: bytes moved
  per amplitude (``traffic_per_amplitude(p)`` when the simulator has it, else derived from the pass plan of
  ``x_mixer.py``) × 2ⁿ ÷ the 2-thread copy bandwidth measured in the same run;
* QOKit's C simulator (``apply_qaoa_furx``) loaded with ctypes from ``$QOKIT_C_LIB`` (and, for comparison,
  a build with QOKit's own makefile from ``$QOKIT_C_LIB_MAKEFILE``); benchmarks/README.md says how to build it;
* Aer ``EstimatorV2`` on the equivalent circuit, skipped (with its predicted time) above ``--aer-limit`` s;
* warm-start QAOA (``WarmStartQAOASimulator``) and VQE (``CircuitSimulator`` on the default VQE ansatz) as
  ratios to the X mixer at the same n.

Writes results/benchmarks/simulator.md (date, load average, command) and simulator.json (one row per timing).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import inspect
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

import numba
import numpy as np
import psutil
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qportfolio.backends.exact import (  # noqa: E402
    CircuitSimulator,
    QAOASimulator,
    SubspaceQAOASimulator,
    WarmStartQAOASimulator,
    weight_k_states,
)
from qportfolio.circuits import vqe_ansatz  # noqa: E402
from qportfolio.encoding import qubo_diagonal, qubo_energies  # noqa: E402
from qportfolio.encoding.qubo import Qubo  # noqa: E402

COPY_BYTES = 2**30  # per array of the bandwidth measurement: far beyond any cache
AGREEMENT = 1e-12  # |value − qportfolio complex128| expected of every complex128 implementation
OURS = "qportfolio complex128"
OURS_SINGLE = "qportfolio complex64"
QOKIT_OPTIMISED = "QOKit C -O3"
QOKIT_MAKEFILE = "QOKit C makefile"
AER = "Aer EstimatorV2"
WARM = "warm-start complex128"
VQE = "VQE complex128"
AIM_N = 24
LOADED = 1.5  # 1-minute load average above which the page warns that its times are inflated


# --------------------------------------------------------------------------- problem


def portfolio_qubo(n: int, seed: int = 7, budget_penalty: bool = True):
    """Dense QUBO of ``q·xᵀΣx − μᵀx + λ(1ᵀx − K)²`` with K = n // 2 (Q, c, const)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    sigma = 0.04 * (a @ a.T / n + 0.1 * np.eye(n))
    mu = rng.uniform(0.0, 0.1, n)
    q, lam, k = 0.5, 0.05, n // 2
    quad = q * sigma + (lam * np.ones((n, n)) if budget_penalty else 0.0)
    lin = -mu - (2 * lam * k if budget_penalty else 0.0)
    return quad, lin, (lam * k * k if budget_penalty else 0.0)


def ising(q, c, const):
    """E = offset + Σ h_i Z_i + Σ_{i<j} J_ij Z_i Z_j (x_i = (1 − Z_i)/2)."""
    s = q + q.T
    h = -(np.diag(q) + c) / 2 - (s.sum(axis=1) - 2 * np.diag(q)) / 4
    offset = const + (np.diag(q) + c).sum() / 2 + np.triu(s, 1).sum() / 4
    return offset, h, np.triu(s, 1) / 4


def angles(p: int):
    """θ = (β_1…β_p, γ_1…γ_p) of a linear ramp."""
    return np.concatenate([np.linspace(0.35, 0.15, p), np.linspace(0.4, 0.8, p)])


@dataclass
class Problem:
    """One benchmark instance: the QUBO, its energy diagonal, the phase scale and the angles."""

    n: int
    p: int
    quad: np.ndarray
    lin: np.ndarray
    const: float
    energy: np.ndarray = field(repr=False)
    scale: float
    theta: np.ndarray

    @classmethod
    def build(cls, n: int, p: int) -> "Problem":
        quad, lin, const = portfolio_qubo(n)
        scale = 1.0 / (np.abs(quad).sum() + np.abs(lin).sum())
        return cls(n, p, quad, lin, const, qubo_diagonal(quad, lin, const), scale, angles(p))


# --------------------------------------------------------------------------- measurement


class PeakRSS:
    """Peak resident memory above the level at entry: the kernel's high-water mark (``VmHWM``), reset on entry
    through ``/proc/self/clear_refs``. No sampling thread: one waking every few milliseconds delays the
    simulators' threads at every parallel region (it doubled the time of a 6 ms evaluation). Where the
    mark cannot be reset, the peak is read at exit only (a lower bound)."""

    def __enter__(self):
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.resettable = True
        except OSError:
            self.resettable = False
        self.base = self.peak = psutil.Process().memory_info().rss
        return self

    def __exit__(self, *exc):
        self.peak = max(self.peak, _high_water_mark() if self.resettable else psutil.Process().memory_info().rss)

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _high_water_mark() -> int:
    """The process's peak RSS in bytes since the last reset (``VmHWM`` of /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(setup, evaluate, repeats: int = 15, budget: float = 20.0, warm_up: bool = True):
    """(least seconds, value, peak MB above baseline) of ``evaluate(setup())``.

    One warm-up evaluation is discarded; then up to ``repeats`` timed ones within ``budget``
    seconds (at least one), of which the fastest counts: on a shared machine other load only adds (the
    bandwidth is also the best of its runs). Without warm-up, a first evaluation slower than 3 s is the only sample.
    """
    with PeakRSS() as rss:
        obj = setup()
        times = []
        start = time.perf_counter()
        value = evaluate(obj)
        first = time.perf_counter() - start
        if not warm_up and first > 3.0:
            times = [first]
        while not times or (len(times) < repeats and sum(times) + first < budget):
            start = time.perf_counter()
            value = evaluate(obj)
            times.append(time.perf_counter() - start)
        del obj
    gc.collect()
    return float(np.min(times)), float(value), rss.mb


def measured_seconds(seconds_per_evaluation: float, repeats: int = 15, budget: float = 20.0) -> float:
    """Wall time :func:`measure` spends on an implementation taking ``seconds_per_evaluation``."""
    t = seconds_per_evaluation
    timed = max(1, min(repeats, math.ceil((budget - t) / t) if t < budget else 1))
    return t * (1 + timed)


@njit(parallel=True, cache=True)
def _copy(source, target):
    for i in prange(source.size):
        target[i] = source[i]


def copy_bandwidth(threads: int, nbytes: int = COPY_BYTES, repeats: int = 5) -> float:
    """Bytes read + written per second by a numba copy of ``nbytes`` on ``threads`` threads (best of ``repeats``).

    Like the simulator's kernels, the copy's stores allocate their cache lines (no streaming stores), so the
    figure is comparable with the bytes the simulator's passes read and write.
    """
    source = np.ones(nbytes // 8)
    target = np.zeros_like(source)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        _copy(source[:8], target[:8])
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            _copy(source, target)
            best = min(best, time.perf_counter() - start)
    finally:
        numba.set_num_threads(previous)
    return 2 * nbytes / best


def x_mixer_traffic(simulator: QAOASimulator, p: int) -> tuple[float, str]:
    """(bytes per amplitude of one expectation, how it was obtained) for the X-mixer simulator.

    Uses ``simulator.traffic_per_amplitude(p)`` when it exists; otherwise the pass plan of x_mixer.py as
    read on 2026-12-01: p + 1 passes over the state (P₁L₁ | H₁P₂H₂ | L₂P₃L₃ | … | last mixer half);
    the first only writes the state (its tiles start as the uniform amplitude), the last only reads it
    (it sums |ψ|²E without writing back), the others read and write it; every pass reads the float64
    energy table (the first and middle ones for the phase, the last one for ⟨E⟩).
    """
    if hasattr(simulator, "traffic_per_amplitude"):
        return float(simulator.traffic_per_amplitude(p)), "QAOASimulator.traffic_per_amplitude(p)"
    state = simulator.dtype.itemsize
    energy = simulator.cost.itemsize
    if simulator.low_bits >= simulator.n:  # one pass, all in cache-sized tiles: the state is read once
        return float(state + energy), "derived from x_mixer.py's pass plan (one pass)"
    passes = p + 1
    total = (state + energy) + (p - 1) * (2 * state + energy) + (state + energy)
    how = (f"derived from x_mixer.py's pass plan: {passes} passes; first writes the state, last reads it, "
           f"{p - 1} in between read and write it ({state} B/amp each way); each reads the {energy} B/amp energy table")
    try:
        planned = len(simulator._passes(np.zeros(p), np.zeros(p)))
        if planned != passes:
            how += f" — WARNING: the simulator now plans {planned} passes, this figure is stale"
    except Exception:  # noqa: BLE001 - the private plan may change shape; the figure stands as documented
        pass
    return float(total), how


# --------------------------------------------------------------------------- implementations


def with_qubo(simulator_class, problem: Problem, *args, **kwargs):
    """``simulator_class(problem.energy, *args, phase_scale=…, **kwargs)``, given the QUBO too when its
    constructor accepts ``qubo=`` (the phases then come from the QUBO, as the exact backend has them)."""
    if "qubo" in inspect.signature(simulator_class).parameters:
        kwargs["qubo"] = Qubo(problem.quad, problem.lin, problem.const)
    return simulator_class(problem.energy, *args, phase_scale=problem.scale, **kwargs)


def qaoa_simulator(problem: Problem, dtype) -> QAOASimulator:
    """The X-mixer simulator (:func:`with_qubo`)."""
    return with_qubo(QAOASimulator, problem, dtype=dtype)


def warm_start_probabilities(n: int) -> np.ndarray:
    """Fixed warm-start probabilities c_q in [0.25, 0.75] (the solver's ε = 0.25 range)."""
    return np.random.default_rng(n).uniform(0.25, 0.75, n)


def default_vqe_form() -> tuple[str, str]:
    """(ansatz form, entanglement) of the solver's defaults."""
    try:
        from qportfolio.optimize.solver import QuantumSolver

        solver = QuantumSolver()
        return str(solver.ansatz), str(solver.entanglement)
    except Exception:  # noqa: BLE001 - fall back to the documented defaults
        return "real_amplitudes", "linear"


class VQEExpectation:
    """⟨E⟩ of the default VQE ansatz with the exact backend's gate-by-gate simulator."""

    def __init__(self, problem: Problem):
        form, entanglement = default_vqe_form()
        circuit = vqe_ansatz(problem.n, problem.p, form, entanglement).circuit
        self.simulator = CircuitSimulator(circuit)
        self.energy = problem.energy
        self.values = np.random.default_rng(problem.n).uniform(-np.pi, np.pi, len(circuit.parameters))
        self.gates = sum(1 for inst in circuit.decompose().data if inst.operation.name not in ("barrier", "measure"))
        self.description = f"{form}, {entanglement}, reps {problem.p}"

    def __call__(self) -> float:
        return float(self.simulator.probabilities(self.values) @ self.energy)


@njit(parallel=True, cache=True)
def _uniform_state(real, imag):
    amplitude = 1.0 / math.sqrt(real.size)
    for i in prange(real.size):
        real[i] = amplitude
        imag[i] = 0.0


@njit(parallel=True, cache=True)
def _split_expectation(real, imag, energy):
    total = 0.0
    for i in prange(real.size):
        total += (real[i] * real[i] + imag[i] * imag[i]) * energy[i]
    return total


class QOKitC:
    """QOKit's C simulator (``apply_qaoa_furx`` of a built ``libcsim.so``), called as QOKit's ``csim`` wrapper does.

    QOKit keeps the state as separate real and imaginary float64 arrays and takes the cost as its diagonal
    (QOKit turns terms into that diagonal in Python before calling C); its phase is exp(−i·γ/2·diag) and its
    mixer exp(−iβΣX), so γ_QOKit = 2·phase_scale·γ and β is unchanged. The state arrays are allocated once;
    each evaluation starts them uniform, evolves and sums |ψ|²E (both in numba, on all threads).
    """

    def __init__(self, library: str, problem: Problem):
        double_array = np.ctypeslib.ndpointer(ctypes.c_double, flags="C_CONTIGUOUS")
        self._apply = ctypes.CDLL(library).apply_qaoa_furx
        self._apply.restype = None
        self._apply.argtypes = [double_array] * 5 + [ctypes.c_uint, ctypes.c_size_t, ctypes.c_size_t]
        p = problem.p
        self.energy = problem.energy
        self.n = problem.n
        self.betas = np.ascontiguousarray(problem.theta[:p], dtype=np.float64)
        self.gammas = np.ascontiguousarray(2 * problem.scale * problem.theta[p:], dtype=np.float64)
        self.real = np.empty(self.energy.size)
        self.imag = np.empty(self.energy.size)

    def __call__(self) -> float:
        _uniform_state(self.real, self.imag)
        self._apply(self.real, self.imag, self.gammas, self.betas, self.energy, self.n, self.energy.size,
                    self.betas.size)
        return float(_split_expectation(self.real, self.imag, self.energy))


def qokit_libraries() -> dict[str, tuple[str | None, str]]:
    """{row name: (library path or None, note)} from $QOKIT_C_LIB and $QOKIT_C_LIB_MAKEFILE."""
    found = {}
    for name, variable, flags in ((QOKIT_OPTIMISED, "QOKIT_C_LIB", "gcc -O3 -march=native -fopenmp"),
                                  (QOKIT_MAKEFILE, "QOKIT_C_LIB_MAKEFILE", "QOKit's makefile: no -O")):
        path = os.environ.get(variable)
        if not path:
            found[name] = (None, f"skipped: ${variable} not set (benchmarks/README.md: how to build libcsim.so)")
        elif not Path(path).is_file():
            found[name] = (None, f"skipped: ${variable}={path} is not a file")
        else:
            try:
                ctypes.CDLL(path).apply_qaoa_furx  # noqa: B018 - the symbol must exist
                found[name] = (path, flags)
            except (OSError, AttributeError) as exc:
                found[name] = (None, f"skipped: cannot load ${variable}={path} ({exc})")
    return found


def aer_expectation(problem: Problem):
    """⟨E⟩ of the equivalent Qiskit circuit with Aer's EstimatorV2 (RZ, RZZ and RX gates, Ising observable)."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_aer.primitives import EstimatorV2

    n, p, scale = problem.n, problem.p, problem.scale
    offset, h, j = ising(problem.quad, problem.lin, problem.const)
    beta, gamma = ParameterVector("beta", p), ParameterVector("gamma", p)
    circuit = QuantumCircuit(n)
    circuit.h(range(n))
    for layer in range(p):
        for i in range(n):
            circuit.rz(2 * scale * gamma[layer] * h[i], i)
        for a, b in combinations(range(n), 2):
            circuit.rzz(2 * scale * gamma[layer] * j[a, b], a, b)
        for i in range(n):
            circuit.rx(2 * beta[layer], i)
    observable = SparsePauliOp.from_sparse_list(
        [("Z", [i], h[i]) for i in range(n)] + [("ZZ", [a, b], j[a, b]) for a, b in combinations(range(n), 2)],
        num_qubits=n,
    ) + SparsePauliOp("I" * n, offset)
    estimator = EstimatorV2()
    theta = problem.theta

    def evaluate() -> float:
        return float(estimator.run([(circuit, observable, theta)]).result()[0].data.evs)

    return evaluate


def aer_available() -> str | None:
    """None when Aer imports, else why not."""
    try:
        import qiskit_aer  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not installed"
        return f"skipped: qiskit-aer not importable ({type(exc).__name__})"
    return None


# --------------------------------------------------------------------------- time prediction


class Predictor:
    """Seconds per evaluation of one implementation: a reference (n, seconds) grown by a factor per qubit,
    re-anchored on every measurement."""

    def __init__(self, n: int, seconds: float, growth: float = 2.0):
        self.n, self.seconds, self.growth = n, seconds, growth

    def __call__(self, n: int) -> float:
        return self.seconds * self.growth ** (n - self.n)

    def update(self, n: int, seconds: float) -> None:
        if n >= 18:  # below, fixed overheads dominate and would not extrapolate
            self.n, self.seconds = n, seconds


def initial_predictors(vqe_gates_per_qubit: float) -> dict[str, Predictor]:
    """Rough priors from an earlier run on this 2-core machine (n = 24, p = 2, idle-ish)."""
    return {
        OURS: Predictor(24, 0.22),
        OURS_SINGLE: Predictor(24, 0.17),
        QOKIT_OPTIMISED: Predictor(24, 1.0),
        QOKIT_MAKEFILE: Predictor(24, 2.4),
        AER: Predictor(24, 21.0, growth=2.2),
        WARM: Predictor(24, 0.3),
        VQE: Predictor(24, 0.05 * vqe_gates_per_qubit * 24),
    }


# --------------------------------------------------------------------------- main


@dataclass
class Row:
    n: int
    impl: str
    seconds: float | None
    value: float | None = None
    peak_mb: float | None = None
    note: str = ""
    reference: float | None = None
    predicted: float | None = None  # seconds per evaluation, for a skipped row

    @property
    def difference(self) -> float | None:
        if self.value is None or self.reference is None:
            return None
        return abs(self.value - self.reference)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qubits", type=int, nargs="+", default=[20, 22, 24])
    ap.add_argument("--include-26", action="store_true", help="add n = 26 (1 GiB state in complex128)")
    ap.add_argument("--reps", type=int, default=2, help="QAOA depth p (also the VQE ansatz's reps)")
    ap.add_argument("--aer-limit", type=float, default=60.0,
                    help="skip Aer when its predicted seconds per evaluation exceed this")
    ap.add_argument("--subspace", type=int, nargs="*", default=[],
                    help="also time the K = N/2 subspace XY simulator (ring, complete; p = 3) at these N")
    ap.add_argument("--json", default=str(ROOT / "results/benchmarks/simulator.json"))
    ap.add_argument("--md", default=str(ROOT / "results/benchmarks/simulator.md"))
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = ("python benchmarks/simulator.py " + shlex.join(argv)).rstrip()
    env = " ".join(f"{v}={os.environ[v]}" for v in ("QOKIT_C_LIB", "QOKIT_C_LIB_MAKEFILE") if os.environ.get(v))
    if env:
        command = f"{env} {command}"
    sizes = sorted(set(args.qubits) | ({26} if args.include_26 else set()))
    p = args.reps
    load_start = os.getloadavg()
    started = time.perf_counter()

    libraries = qokit_libraries()
    aer_missing = aer_available()
    vqe_form = default_vqe_form()
    # real_amplitudes: (reps + 1) RY layers and reps CX layers of n − 1 gates; efficient_su2 twice the rotations
    vqe_gates_per_qubit = (p + 1) * (2 if vqe_form[0] == "efficient_su2" else 1) + p
    predict = initial_predictors(vqe_gates_per_qubit)
    running = [OURS, OURS_SINGLE] + [name for name, (path, _) in libraries.items() if path]
    running += ([] if aer_missing else [AER]) + [WARM, VQE]

    def planned(n: int, name: str) -> float:
        t = predict[name](n)
        if name == AER and t > args.aer_limit:
            return 0.0
        return measured_seconds(t) + 0.3 * t  # + setup
    diagonal_seconds = 2e-8  # per amplitude, building each n's energy diagonal
    total = 30.0 + sum(planned(n, name) for n in sizes for name in running) + sum(diagonal_seconds * 2.0**n
                                                                                    for n in sizes)
    skipped_peers = [f"{name}: {note}" for name, (path, note) in libraries.items() if path is None]
    skipped_peers += [f"{AER}: {aer_missing}"] if aer_missing else []
    print(f"plan: n = {sizes}, p = {p}; {', '.join(running)}")
    for line in skipped_peers:
        print(f"  {line}")
    print(f"predicted time: about {total / 60:.1f} min on an idle machine (longer while others share the cores)",
          flush=True)

    print("compiling kernels and measuring copy bandwidth …", flush=True)
    compile_kernels()
    threads = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})
    bandwidth = {t: copy_bandwidth(t) for t in threads}
    floor_bandwidth = bandwidth[max(threads)]
    print("copy bandwidth (read + write): " + ", ".join(f"{t} thread{'s' * (t > 1)} {b / 1e9:.1f} GB/s"
                                                          for t, b in bandwidth.items()), flush=True)

    rows: list[Row] = []
    traffic: dict[tuple[int, str], tuple[float, str]] = {}
    steps = [(n, name) for n in sizes for name in running] + [(n, "subspace") for n in args.subspace for _ in "rc"]
    done = 0

    def report(row: Row):
        nonlocal done
        done += 1
        rows.append(row)
        elapsed = time.perf_counter() - started
        left = sum(planned(n, name) for n, name in steps[done:] if name in predict)
        time_text = "skipped" if row.seconds is None else f"{row.seconds * 1e3:10.2f} ms"
        diff = row.difference
        left_text = f"{left:.0f} s" if left < 120 else f"{left / 60:.1f} min"
        print(f"[{done}/{len(steps)}, {elapsed / 60:.1f} min, ~{left_text} left] n={row.n:>2} "
              f"{row.impl:<24} {time_text:>14} {'' if row.value is None else f'{row.value:.12f}':>16} "
              f"{'' if diff is None else f'|Δ|={diff:.1e}':>11} {row.note}", flush=True)

    for n in sizes:
        problem = Problem.build(n, p)
        reference = None
        for name, dtype in ((OURS, np.complex128), (OURS_SINGLE, np.complex64)):
            simulator = qaoa_simulator(problem, dtype)
            traffic[(n, name)] = x_mixer_traffic(simulator, p)
            del simulator
            seconds, value, mb = measure(lambda d=dtype: qaoa_simulator(problem, d),
                                         lambda s: s.expectation(problem.theta))
            predict[name].update(n, seconds)
            reference = value if name == OURS else reference
            report(Row(n, name, seconds, value, mb, reference=reference))
        for name, (path, note) in libraries.items():
            if path is None:
                continue
            seconds, value, mb = measure(lambda lib=path: QOKitC(lib, problem), lambda run: run())
            predict[name].update(n, seconds)
            mark = "" if abs(value - reference) <= AGREEMENT else f" DISAGREES by more than {AGREEMENT:g}"
            report(Row(n, name, seconds, value, mb, note + mark, reference))
        if not aer_missing:
            expected = predict[AER](n)
            if expected > args.aer_limit:
                report(Row(n, AER, None, note=f"skipped: predicted {expected:.0f} s per evaluation "
                                              f"(> --aer-limit {args.aer_limit:g})", predicted=expected))
            else:
                evaluate = aer_expectation(problem)
                seconds, value, mb = measure(lambda: None, lambda _: evaluate(), repeats=3, warm_up=n < 20)
                predict[AER].update(n, seconds)
                report(Row(n, AER, seconds, value, mb, reference=reference))
                del evaluate
        probabilities = warm_start_probabilities(n)
        seconds, value, mb = measure(lambda: with_qubo(WarmStartQAOASimulator, problem, probabilities),
                                     lambda s: s.expectation(problem.theta))
        predict[WARM].update(n, seconds)
        report(Row(n, WARM, seconds, value, mb, "c_q fixed in [0.25, 0.75]"))
        vqe_description = ""

        def vqe_setup():
            nonlocal vqe_description
            run = VQEExpectation(problem)
            vqe_description = f"{run.description}; {run.gates} gates"
            return run

        seconds, value, mb = measure(vqe_setup, lambda run: run(), warm_up=n < 22)
        predict[VQE].update(n, seconds)
        report(Row(n, VQE, seconds, value, mb, vqe_description))
        problem = None
        gc.collect()

    for n in args.subspace:
        for row in subspace_rows(n):
            report(row)

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps([{"n": r.n, "impl": r.impl, "seconds": r.seconds, "value": r.value,
                                            "peak_mb": r.peak_mb, "note": r.note} for r in rows], indent=1) + "\n")
    loads = (load_start, os.getloadavg())
    Path(args.md).write_text(markdown(command, rows, bandwidth, floor_bandwidth, traffic, p, loads, vqe_form,
                                      time.perf_counter() - started, skipped_peers))
    print(f"wrote {args.json} and {args.md} ({(time.perf_counter() - started) / 60:.1f} min)")


def subspace_rows(n: int) -> list[Row]:
    """The K = N/2 subspace XY simulator, ring and complete mixers, p = 3 (no budget penalty)."""
    k = n // 2
    theta = angles(3)
    quad, lin, const = portfolio_qubo(n, budget_penalty=False)
    scale = 1.0 / (np.abs(quad).sum() + np.abs(lin).sum())
    costs = qubo_energies(quad, lin, const, weight_k_states(n, k))
    rows = []
    for topology in ("ring", "complete"):
        seconds, value, mb = measure(lambda tp=topology: SubspaceQAOASimulator(costs, n, k, tp, phase_scale=scale),
                                     lambda s: s.expectation(theta))
        rows.append(Row(n, f"subspace {topology} K={k} p=3", seconds, value, mb))
    return rows


def compile_kernels():
    """Run every simulator once on tiny inputs so that no timing includes numba compilation."""
    problem = Problem.build(6, 2)
    for dtype in (np.complex128, np.complex64):
        qaoa_simulator(problem, dtype).expectation(problem.theta)
    WarmStartQAOASimulator(problem.energy, warm_start_probabilities(6)).expectation(problem.theta)
    VQEExpectation(problem)()
    real, imag = np.empty(64), np.empty(64)
    _uniform_state(real, imag)
    _split_expectation(real, imag, problem.energy)
    states = weight_k_states(6, 3)
    quad, lin, const = portfolio_qubo(6, budget_penalty=False)
    SubspaceQAOASimulator(qubo_energies(quad, lin, const, states), 6, 3).expectation(angles(3))


# --------------------------------------------------------------------------- report


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:.4g}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return "" if not numerator or not denominator else f"{numerator / denominator:.2f}"


def markdown(command, rows, bandwidth, floor_bandwidth, traffic, p, loads, vqe_form, wall, skipped_peers) -> str:
    """The results page: context, the X-mixer table, the other ansätze, the aims and the skipped rows."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, " \
          f"{platform.processor() or platform.machine()}"
    by = {(r.n, r.impl): r for r in rows}
    sizes = sorted({r.n for r in rows if r.impl == OURS})

    def seconds(n, impl):
        row = by.get((n, impl))
        return None if row is None else row.seconds

    def floor(n, impl):
        if (n, impl) not in traffic:
            return None
        return traffic[(n, impl)][0] * 2.0**n / floor_bandwidth

    traffic_sizes: dict[tuple[str, float, str], list[int]] = {}
    for (n, impl), (per_amplitude, how) in traffic.items():
        traffic_sizes.setdefault((impl, per_amplitude, how), []).append(n)

    bandwidth_text = ", ".join(f"{t} thread{'s' * (t > 1)} {b / 1e9:.1f} GB/s" for t, b in bandwidth.items())
    lines = [
        "# Simulator benchmark",
        "",
        f"Command: `{command}`  ",
        f"Date: {now} ({wall / 60:.1f} min)  ",
        f"Machine: {cpu}; load average (1, 5, 15 min) {'/'.join(f'{x:.1f}' for x in loads[0])} at the start, "
        f"{'/'.join(f'{x:.1f}' for x in loads[1])} at the end",
        "(a 1-minute load above ~1 at the start means other processes shared the cores and inflated the wall times;",
        "the load at the end includes the benchmark's own two threads).",
        "",
    ]
    if loads[0][0] > LOADED:
        lines += [f"**Loaded machine** (1-minute load above {LOADED:g}): these times check that the benchmark runs;",
                  "do not quote them. Rerun on an idle machine for the table.", ""]
    lines += [
        f"One QAOA expectation ⟨E⟩ (X mixer, p = {p}) of a dense n-asset portfolio QUBO, the same QUBO and angles",
        "for everyone; the least of up to 15 evaluations (within 20 s) after a warm-up (a single cold evaluation for a peer",
        "slower than 3 s). *ratio* = the peer's time ÷ qportfolio complex128's at the same n; |Δ| = the largest",
        "difference of a complex128 peer's value from qportfolio complex128's.",
        "",
        "**Traffic floor.** Copy bandwidth measured in this run (numba copy of two 1 GiB float64 arrays, bytes",
        f"read + written, best of 5): {bandwidth_text}. Floor = bytes moved per amplitude × 2ⁿ ÷ the",
        f"{max(bandwidth)}-thread bandwidth (each dtype against its own floor). Bytes per amplitude for p = {p}:",
        "",
    ]
    for (impl, per_amplitude, how), ns in traffic_sizes.items():
        lines.append(f"* {impl}, n = {', '.join(map(str, ns))}: {per_amplitude:g} B/amp — {how}.")
    lines += [
        "",
        "**QOKit C**: `apply_qaoa_furx` of QOKit's `libcsim.so` through ctypes, fed the same float64 energy",
        "diagonal (QOKit's C code takes the cost only as a diagonal; its Python wrapper expands terms into it",
        "first); the time covers the uniform start state, QOKit's C evolution and Σ|ψ|²E. `-O3` = built with",
        "`gcc -O3 -march=native -fopenmp -fPIC -shared`; `makefile` = QOKit's own makefile (no optimisation",
        "flag), as `pip install qokit` builds it. benchmarks/README.md has the build commands.",
        "",
        "## X mixer",
        "",
        "| n | floor ms | complex128 ms | ÷ floor | complex64 ms | ÷ floor | QOKit C -O3 ms | ratio "
        "| QOKit C makefile ms | ratio | Aer s | ratio | max abs Δ |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        ours = seconds(n, OURS)
        aer = seconds(n, AER)
        diffs = [by[(n, impl)].difference for impl in (QOKIT_OPTIMISED, QOKIT_MAKEFILE, AER)
                 if (n, impl) in by and by[(n, impl)].difference is not None]
        lines.append(
            f"| {n} | {_ms(floor(n, OURS))} | {_ms(ours)} | {_ratio(ours, floor(n, OURS))} "
            f"| {_ms(seconds(n, OURS_SINGLE))} | {_ratio(seconds(n, OURS_SINGLE), floor(n, OURS_SINGLE))} "
            f"| {_ms(seconds(n, QOKIT_OPTIMISED))} | {_ratio(seconds(n, QOKIT_OPTIMISED), ours)} "
            f"| {_ms(seconds(n, QOKIT_MAKEFILE))} | {_ratio(seconds(n, QOKIT_MAKEFILE), ours)} "
            f"| {'—' if aer is None else f'{aer:.3g}'} | {_ratio(aer, ours)} "
            f"| {'' if not diffs else f'{max(diffs):.1e}'} |"
        )
    lines += [
        "",
        f"## Other ansätze (complex128, p = {p}; ratio = time ÷ X mixer at the same n)",
        "",
        f"VQE: `CircuitSimulator` on the solver's default ansatz ({vqe_form[0]}, {vqe_form[1]} entanglement, "
        f"reps {p}), ⟨E⟩ = probabilities · E. Warm start: `WarmStartQAOASimulator` with the QUBO's phases, as the X mixer, fixed c_q in [0.25, 0.75].",
        "",
        "| n | X mixer ms | warm-start ms | ratio | VQE ms | ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        ours = seconds(n, OURS)
        lines.append(f"| {n} | {_ms(ours)} | {_ms(seconds(n, WARM))} | {_ratio(seconds(n, WARM), ours)} "
                     f"| {_ms(seconds(n, VQE))} | {_ratio(seconds(n, VQE), ours)} |")
    lines += ["", "## Aims (issue 13)", "", "| aim | measured | met |", "|---|---|---|"]
    lines += aims(sizes, seconds, floor, by)
    subspace = [r for r in rows if r.impl.startswith("subspace")]
    if subspace:
        lines += ["", "## K-of-N subspace (XY mixers from the Dicke state, p = 3, no budget penalty)", "",
                  "| N | simulator | ms | value |", "|---:|---|---:|---:|"]
        lines += [f"| {r.n} | {r.impl} | {_ms(r.seconds)} | {r.value:.10f} |" for r in subspace]
    notes = [r for r in rows if r.seconds is None or "DISAGREES" in r.note]
    if notes or skipped_peers:
        lines += ["", "## Notes", ""]
        lines += [f"* {line}" for line in skipped_peers]
        lines += [f"* n = {r.n}, {r.impl}: {r.note}" for r in notes]
    return "\n".join(lines) + "\n"


def aims(sizes, seconds, floor, by) -> list[str]:
    """The issue's aims, one table line each, beside the measured values."""

    def line(aim, measured, met):
        return f"| {aim} | {measured} | {'—' if met is None else ('yes' if met else 'no')} |"

    out = []
    ours = seconds(AIM_N, OURS)
    for impl, target in ((QOKIT_OPTIMISED, 10.0), (AER, 300.0)):
        peer = seconds(AIM_N, impl)
        predicted = getattr(by.get((AIM_N, impl)), "predicted", None)
        if ours and peer:
            out.append(line(f"≥ {target:g}× {impl} at n = {AIM_N}", f"{peer / ours:.1f}×", peer / ours >= target))
        elif ours and predicted:
            out.append(line(f"≥ {target:g}× {impl} at n = {AIM_N}",
                            f"skipped; predicted {predicted:.0f} s = {predicted / ours:.0f}×", None))
        else:
            out.append(line(f"≥ {target:g}× {impl} at n = {AIM_N}", "not measured", None))
    big = [n for n in sizes if n >= AIM_N]
    for n in big:
        t, f = seconds(n, OURS), floor(n, OURS)
        out.append(line(f"complex128 within 3× of the traffic floor, n = {n}",
                        f"{t / f:.2f}× ({t * 1e3:.0f} ms vs {f * 1e3:.0f} ms)" if t and f else "not measured",
                        None if not (t and f) else t / f <= 3.0))
    if not big:
        out.append(line(f"within 3× of the traffic floor at n ≥ {AIM_N}", "no n ≥ 24 in this run", None))
    for n in sizes:
        warm, x = seconds(n, WARM), seconds(n, OURS)
        if warm and x:
            out.append(line(f"warm start within 1.5× of the X mixer, n = {n}", f"{warm / x:.2f}×", warm / x <= 1.5))
    return out


if __name__ == "__main__":
    main()
