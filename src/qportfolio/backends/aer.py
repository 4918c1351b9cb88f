"""Aer's statevector (exact probabilities, seeded samples) and Aer's SamplerV2 with shots."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit, transpile

from qportfolio.backends.base import Distribution
from qportfolio.memory import require_memory
from qportfolio.sampling import sample_counts


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

    def _probabilities(self, circuit: QuantumCircuit, parameter_sets: np.ndarray) -> list[np.ndarray]:
        """``|ψ(θ)|²`` over all basis states for each parameter set."""
        compiled = self._prepare(circuit)
        thetas = np.atleast_2d(parameter_sets)
        # per set at once: Aer's statevector, |ψ|², and a distribution's index array
        require_memory(32.0 * 2**circuit.num_qubits * len(thetas),
                       f"{len(thetas)} {circuit.num_qubits}-qubit statevector(s) and their distributions")
        bound = [compiled.assign_parameters(theta) for theta in thetas]
        result = self._simulator.run(bound).result()
        return [np.abs(np.asarray(result.get_statevector(k))) ** 2 for k in range(len(bound))]

    def distributions(self, circuit: QuantumCircuit, parameter_sets: np.ndarray) -> list[Distribution]:
        return [Distribution(np.arange(len(p)), p) for p in self._probabilities(circuit, parameter_sets)]

    def sample(self, circuit: QuantumCircuit, parameters: np.ndarray, shots: int) -> Distribution:
        states, counts = sample_counts(self._probabilities(circuit, parameters)[0], shots, self._rng)
        return Distribution(states, counts / shots, shots)


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


