"""The exact backend: qportfolio's own statevector simulator behind the backend interface."""

from __future__ import annotations

from functools import cached_property

import numpy as np
from qiskit import QuantumCircuit

from qportfolio.backends.base import Distribution
from qportfolio.backends.exact.circuit import CircuitSimulator
from qportfolio.backends.exact.kernels import check_memory
from qportfolio.backends.exact.phases import QuboPhases
from qportfolio.backends.exact.warm_start import WarmStartQAOASimulator
from qportfolio.backends.exact.x_mixer import QAOASimulator
from qportfolio.backends.exact.xy_mixer import SubspaceQAOASimulator, weight_k_states
from qportfolio.objective import cvar_sorted
from qportfolio.errors import (
    ConfigError,
)
from qportfolio.objective import Objective


class ExactBackend:
    """Exact probabilities from the engines of :mod:`qportfolio.backends.exact`, chosen by the circuit's ansatz metadata.

    ``energies`` is the QUBO's full energy table (index ``z`` ↔ bitstring, problem units); the QAOA
    phase is ``e^{−iγE/cost_scale}``, exactly as in the circuit. With an XY mixer the state lives on the
    weight-K states only (``num_selected``), so the distribution's indices are those states. ``qubo``
    (optional) is the QUBO those energies come from: the X-mixer QAOA then builds its phases from it
    (:mod:`.phases`) instead of reading the table in every layer.
    """

    name = "exact"
    exact = True

    def __init__(self, energies: np.ndarray, seed: int | None = None, precision: str = "complex128", qubo=None):
        self.energies = energies
        self.qubo_phases = None if qubo is None else QuboPhases.of(qubo)
        self.dtype = {"complex128": np.complex128, "complex64": np.complex64}[precision]
        self._rng = np.random.default_rng(seed)
        self._prepared: dict[int, tuple] = {}

    @cached_property
    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        """Basis states by ascending energy and those energies: only the circuit path's CVaR needs them."""
        check_memory(16.0 * self.energies.size, "the energy order and sorted energies")
        order = np.argsort(self.energies, kind="stable")
        return order, self.energies[order]

    def _prepare(self, circuit: QuantumCircuit):
        key = id(circuit)
        if key not in self._prepared:
            meta = circuit.metadata or {}
            n = circuit.num_qubits
            if meta.get("algorithm") == "qaoa" and meta.get("mixer") == "x" and meta.get("initial_state") == "uniform":
                simulator = QAOASimulator(self.energies, phase_scale=1 / meta["cost_scale"], dtype=self.dtype,
                                          qubo=self.qubo_phases)
                indices = None
            elif meta.get("algorithm") == "qaoa" and meta.get("mixer") == "x" and meta.get("initial_state") == "warm_start":
                simulator = WarmStartQAOASimulator(self.energies, meta["warm_start"], phase_scale=1 / meta["cost_scale"],
                                                   dtype=self.dtype, qubo=self.qubo_phases)
                indices = None
            elif meta.get("algorithm") == "qaoa" and str(meta.get("mixer", "")).startswith("xy_"):
                k = int(meta["num_selected"])
                indices = weight_k_states(n, k)
                simulator = SubspaceQAOASimulator(self.energies[indices], n, k, [tuple(p) for p in meta["pairs"]],
                                                      phase_scale=1 / meta["cost_scale"], dtype=self.dtype)
            else:
                simulator, indices = CircuitSimulator(circuit, dtype=self.dtype), None
            self._prepared = {key: (simulator, indices)}
        return self._prepared[key]

    def _probabilities(self, circuit: QuantumCircuit, theta) -> tuple[np.ndarray, np.ndarray]:
        simulator, indices = self._prepare(circuit)
        probabilities = simulator.probabilities(theta)
        return (np.arange(len(probabilities)) if indices is None else indices), probabilities

    def distributions(self, circuit: QuantumCircuit, parameter_sets: np.ndarray) -> list[Distribution]:
        """One distribution over every state the circuit reaches per parameter set: each holds 16 bytes a state
        (index and probability), all of them at once, which the memory guard checks first."""
        thetas = np.atleast_2d(parameter_sets)
        _, indices = self._prepare(circuit)
        states = self.energies.size if indices is None else len(indices)
        check_memory(16.0 * states * len(thetas), f"{len(thetas)} exact distribution(s) over {states:,} states")
        return [Distribution(*self._probabilities(circuit, theta)) for theta in thetas]

    def objective_values(self, circuit: QuantumCircuit, parameter_sets: np.ndarray, alpha) -> np.ndarray:
        """The objective of each parameter set without building distributions: ``alpha`` is CVaR's α
        (1: the expectation) or an :class:`~qportfolio.objective.Objective`."""
        simulator, indices = self._prepare(circuit)
        thetas = np.atleast_2d(parameter_sets)
        if isinstance(alpha, Objective):
            if alpha.kind != "gibbs":
                alpha = alpha.alpha if alpha.kind == "cvar" else 1.0
            else:
                cost = simulator.cost if hasattr(simulator, "cost") and simulator.cost is not None else self.energies
                return np.array([alpha.value(cost, simulator.probabilities(t)) for t in thetas])
        if isinstance(simulator, CircuitSimulator):
            order, energies = self._order
            return np.array([cvar_sorted(energies, simulator.probabilities(t)[order], alpha) for t in thetas])
        return simulator.expectations(thetas) if alpha >= 1 else simulator.cvars(thetas, alpha)

    def has_gradient(self, circuit: QuantumCircuit) -> bool:
        """Whether :meth:`value_and_gradient` applies: QAOA with the X mixer from the uniform state or a warm
        start, or with an XY mixer from the Dicke state (not VQE)."""
        return hasattr(self._prepare(circuit)[0], "expectation_and_gradient")

    def value_and_gradient(self, circuit: QuantumCircuit, theta: np.ndarray,
                           objective: Objective | None = None) -> tuple[float, np.ndarray]:
        """The objective (default ⟨E⟩; or Gibbs) and its exact gradient by the adjoint method."""
        simulator, _ = self._prepare(circuit)
        if not hasattr(simulator, "expectation_and_gradient"):
            raise ConfigError("solver.optimizer l_bfgs_b needs an exact gradient, which exists for QAOA (X mixer "
                              "from the uniform state or a warm start, XY mixer from the Dicke state): use cobyla "
                              "for VQE")
        objective = objective or Objective()
        observable, floor = objective.observable(simulator.cost)
        value, gradient = simulator.expectation_and_gradient(np.asarray(theta, dtype=float), observable)
        value, gradient = objective.from_observable(value, gradient, floor)
        return float(value), np.asarray(gradient, dtype=float)

    def sample(self, circuit: QuantumCircuit, parameters: np.ndarray, shots: int) -> Distribution:
        """``shots`` draws from the final state, read in place (:func:`~qportfolio.sampling.sample_counts`: no 2ⁿ
        temporaries, not even the probability vector)."""
        simulator, indices = self._prepare(circuit)
        states, counts = simulator.sample(parameters, shots, self._rng)
        return Distribution(states if indices is None else indices[states], counts / shots, shots)

