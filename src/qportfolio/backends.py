"""Where circuits run: Aer simulators (and, later, IBM Quantum), behind one small interface.

A backend turns a parametrised circuit and a batch of parameter sets into distributions over basis
states (integer index ``z``, bit ``i`` of ``z`` = qubit ``i``), and draws the final ``shots`` samples.

* ``aer_statevector`` — Aer's statevector method: exact probabilities ``|⟨z|ψ(θ)⟩|²`` for the optimizer,
  and final samples drawn from them with the run's seed.
* ``aer_shots`` — Aer's ``SamplerV2``: every distribution is ``shots`` measured samples.
* ``ibm:<device>``, ``ibm:least_busy``, ``ibm_fake:<fake device>``, ``aer_noisy:<fake device>`` — IBM
  Quantum hardware, its local testing mode and a noisy Aer stand-in: see :mod:`qportfolio.hardware`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit, transpile

from qportfolio.errors import ConfigError
from qportfolio.memory import require_memory

BACKENDS = ("aer_statevector", "aer_shots")
SIMULATORS = BACKENDS + ("exact",)
#: Backend name prefixes handled by :mod:`qportfolio.hardware` (``prefix:device``).
HARDWARE_PREFIXES = ("ibm", "ibm_fake", "aer_noisy")


@dataclass(frozen=True)
class Distribution:
    """Probabilities over basis-state indices (sampled frequencies when ``shots`` is set)."""

    indices: np.ndarray
    probabilities: np.ndarray
    shots: int | None = None

    @classmethod
    def from_counts(cls, counts: dict[int, int]) -> "Distribution":
        indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=float, count=len(counts))
        total = int(values.sum())
        return cls(indices, values / total, total)

    def counts(self) -> dict[int, int]:
        if self.shots is None:
            raise ValueError("an exact distribution has no counts; sample it first")
        return {int(i): int(round(p * self.shots)) for i, p in zip(self.indices, self.probabilities)}


class AerStatevectorBackend:
    """Exact probabilities from Aer's statevector simulator."""

    name = "aer_statevector"
    exact = True

    def __init__(self, seed: int | None = None):
        from qiskit_aer import AerSimulator

        self._simulator = AerSimulator(method="statevector", seed_simulator=seed)
        self._rng = np.random.default_rng(seed)
        self._compiled: dict[int, QuantumCircuit] = {}

    def _prepare(self, circuit: QuantumCircuit) -> QuantumCircuit:
        key = id(circuit)
        if key not in self._compiled:
            require_memory(16 * 2**circuit.num_qubits * 3, f"a {circuit.num_qubits}-qubit statevector")
            compiled = transpile(circuit, self._simulator, optimization_level=0)
            compiled.save_statevector()
            self._compiled = {key: compiled}
        return self._compiled[key]

    def distributions(self, circuit: QuantumCircuit, parameter_sets: np.ndarray) -> list[Distribution]:
        compiled = self._prepare(circuit)
        bound = [compiled.assign_parameters(theta) for theta in np.atleast_2d(parameter_sets)]
        result = self._simulator.run(bound).result()
        out = []
        for k in range(len(bound)):
            probabilities = np.abs(np.asarray(result.get_statevector(k))) ** 2
            out.append(Distribution(np.arange(len(probabilities)), probabilities))
        return out

    def sample(self, circuit: QuantumCircuit, parameters: np.ndarray, shots: int) -> Distribution:
        exact = self.distributions(circuit, parameters)[0]
        counts = self._rng.multinomial(shots, exact.probabilities / exact.probabilities.sum())
        hit = np.flatnonzero(counts)
        return Distribution(exact.indices[hit], counts[hit] / shots, shots)


class AerShotsBackend:
    """Sampled distributions from Aer's ``SamplerV2``."""

    name = "aer_shots"
    exact = False

    def __init__(self, shots: int, seed: int | None = None):
        from qiskit_aer import AerSimulator
        from qiskit_aer.primitives import SamplerV2

        self._simulator = AerSimulator(method="automatic")
        self._sampler = SamplerV2(default_shots=shots, seed=seed)
        self.shots = shots
        self._compiled: dict[int, QuantumCircuit] = {}

    def _prepare(self, circuit: QuantumCircuit) -> QuantumCircuit:
        key = id(circuit)
        if key not in self._compiled:
            require_memory(16 * 2**circuit.num_qubits * 3, f"a {circuit.num_qubits}-qubit statevector")
            measured = circuit.copy()
            measured.measure_all()
            self._compiled = {key: transpile(measured, self._simulator, optimization_level=0)}
        return self._compiled[key]

    def distributions(self, circuit: QuantumCircuit, parameter_sets: np.ndarray, shots: int | None = None) -> list[Distribution]:
        compiled = self._prepare(circuit)
        thetas = np.atleast_2d(parameter_sets)
        job = self._sampler.run([(compiled, thetas)], shots=shots or self.shots)
        bit_array = job.result()[0].data.meas
        out = []
        for k in range(len(thetas)):
            counts = bit_array[k].get_int_counts()
            out.append(Distribution.from_counts(counts))
        return out

    def sample(self, circuit: QuantumCircuit, parameters: np.ndarray, shots: int) -> Distribution:
        return self.distributions(circuit, parameters, shots)[0]


class ExactBackend:
    """Exact probabilities from :mod:`qportfolio.simulate`, chosen by the circuit's ansatz metadata.

    ``energies`` is the QUBO's full energy table (index ``z`` ↔ bitstring, problem units); the QAOA
    phase is ``e^{−iγE/cost_scale}``, exactly as in the circuit. With an XY mixer the state lives on the
    weight-K states only (``num_selected``), so the distribution's indices are those states.
    """

    name = "exact"
    exact = True

    def __init__(self, energies: np.ndarray, seed: int | None = None, precision: str = "complex128"):
        from qportfolio import simulate

        self._simulate = simulate
        self.energies = energies
        self.dtype = {"complex128": np.complex128, "complex64": np.complex64}[precision]
        self._rng = np.random.default_rng(seed)
        self._prepared: dict[int, tuple] = {}
        self._order = np.argsort(energies, kind="stable")

    def _prepare(self, circuit: QuantumCircuit):
        key = id(circuit)
        if key not in self._prepared:
            meta, sim = circuit.metadata or {}, self._simulate
            n = circuit.num_qubits
            if meta.get("algorithm") == "qaoa" and meta.get("mixer") == "x" and meta.get("initial_state") == "uniform":
                simulator = sim.QAOASimulator(self.energies, phase_scale=1 / meta["cost_scale"], dtype=self.dtype)
                indices = None
            elif meta.get("algorithm") == "qaoa" and str(meta.get("mixer", "")).startswith("xy_"):
                k = int(meta["num_selected"])
                indices = sim.weight_k_states(n, k)
                simulator = sim.SubspaceQAOASimulator(self.energies[indices], n, k, [tuple(p) for p in meta["pairs"]],
                                                      phase_scale=1 / meta["cost_scale"], dtype=self.dtype)
            else:
                simulator, indices = sim.CircuitSimulator(circuit, dtype=self.dtype), None
            self._prepared = {key: (simulator, indices)}
        return self._prepared[key]

    def _probabilities(self, circuit: QuantumCircuit, theta) -> tuple[np.ndarray, np.ndarray]:
        simulator, indices = self._prepare(circuit)
        probabilities = simulator.probabilities(theta)
        return (np.arange(len(probabilities)) if indices is None else indices), probabilities

    def distributions(self, circuit: QuantumCircuit, parameter_sets: np.ndarray) -> list[Distribution]:
        return [Distribution(*self._probabilities(circuit, theta)) for theta in np.atleast_2d(parameter_sets)]

    def objective_values(self, circuit: QuantumCircuit, parameter_sets: np.ndarray, alpha: float) -> np.ndarray:
        """CVaR_α (α = 1: the expectation) of each parameter set, without building distributions."""
        simulator, indices = self._prepare(circuit)
        thetas = np.atleast_2d(parameter_sets)
        if isinstance(simulator, self._simulate.CircuitSimulator):
            from qportfolio.runner import cvar_sorted

            return np.array([cvar_sorted(self.energies[self._order], simulator.probabilities(t)[self._order], alpha)
                             for t in thetas])
        return simulator.expectations(thetas) if alpha >= 1 else simulator.cvars(thetas, alpha)

    def value_and_gradient(self, circuit: QuantumCircuit, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """⟨E⟩ and its exact gradient (adjoint method) for QAOA with the X mixer from ``|+⟩ⁿ``."""
        simulator, _ = self._prepare(circuit)
        if not hasattr(simulator, "expectation_and_gradient"):
            raise ConfigError("solver.optimizer l_bfgs_b needs an exact gradient, which exists for QAOA with the X "
                              "mixer from the uniform state: use cobyla for XY mixers, warm starts and VQE")
        value, gradient = simulator.expectation_and_gradient(np.asarray(theta, dtype=float))
        return float(value), np.asarray(gradient, dtype=float)

    def sample(self, circuit: QuantumCircuit, parameters: np.ndarray, shots: int) -> Distribution:
        indices, probabilities = self._probabilities(circuit, parameters)
        counts = self._rng.multinomial(shots, probabilities / probabilities.sum())
        hit = np.flatnonzero(counts)
        return Distribution(indices[hit], counts[hit] / shots, shots)


def make_backend(name: str, shots: int, seed: int | None, **options):
    """The backend called ``name`` in a config.

    ``options`` (``None`` values are ignored) are the hardware options of :mod:`qportfolio.hardware`
    (``optimization_level``, ``seed_transpiler``, ``initial_layout``, ``execution_mode``,
    ``dynamical_decoupling``, ``twirling``, ``max_execution_time``, ``mitigation``, ``min_qubits``,
    ``account``, ``channel``, ``instance``, …); the Aer simulators take none.
    """
    options = {key: value for key, value in options.items() if value is not None}
    if name == "exact":
        energies = options.pop("energies", None)
        if energies is None:
            raise ConfigError("the exact backend needs the QUBO's energy table: it is built by qportfolio run")
        precision = options.pop("precision", "complex128")
        if options:
            raise ConfigError(f"backend options {sorted(options)} do not apply to the exact backend")
        return ExactBackend(energies, seed, precision)
    if name in BACKENDS:
        options.pop("energies", None)
        if options:
            raise ConfigError(f"backend options {sorted(options)} apply only to the "
                              f"{'/'.join(p + ':*' for p in HARDWARE_PREFIXES)} backends, not {name}")
        if name == "aer_statevector":
            return AerStatevectorBackend(seed)
        return AerShotsBackend(shots, seed)
    if name.split(":", 1)[0] in HARDWARE_PREFIXES and ":" in name:
        from qportfolio.hardware import make_hardware_backend

        return make_hardware_backend(name, shots, seed, **options)
    raise ConfigError(f"backend.name must be one of {BACKENDS} or ibm:<device>, ibm:least_busy, "
                      f"ibm_fake:<fake device>, aer_noisy:<fake device> (e.g. aer_noisy:fake_fez), got {name!r}")
