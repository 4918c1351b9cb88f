"""Where circuits run: Aer simulators (and, later, IBM Quantum), behind one small interface.

A backend turns a parametrised circuit and a batch of parameter sets into distributions over basis
states (integer index ``z``, bit ``i`` of ``z`` = qubit ``i``), and draws the final ``shots`` samples.

* ``aer_statevector`` — Aer's statevector method: exact probabilities ``|⟨z|ψ(θ)⟩|²`` for the optimizer,
  and final samples drawn from them with the run's seed.
* ``aer_shots`` — Aer's ``SamplerV2``: every distribution is ``shots`` measured samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit, transpile

from qportfolio.builder import require_memory
from qportfolio.errors import ConfigError

BACKENDS = ("aer_statevector", "aer_shots")


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


def make_backend(name: str, shots: int, seed: int | None):
    """The backend called ``name`` in a config."""
    if name == "aer_statevector":
        return AerStatevectorBackend(seed)
    if name == "aer_shots":
        return AerShotsBackend(shots, seed)
    raise ConfigError(f"backend.name must be one of {BACKENDS}, got {name!r}")
