"""What a backend is: the :class:`Backend` protocol, its optional capabilities, and :class:`Distribution`.

A backend turns a parametrised circuit and a batch of parameter sets into distributions over basis
states (integer index ``z``, bit ``i`` of ``z`` = qubit ``i``), and draws the final ``shots`` samples.
Some backends can do more, each declared by a protocol the runner checks with ``isinstance``:

* :class:`ExactObjective` — objective values straight from the state, without building distributions;
* :class:`ExactGradient` — ``⟨E⟩`` and its exact gradient;
* :class:`JobBackend` — jobs with ids that are recorded, collected after a restart, and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from qiskit import QuantumCircuit


@dataclass(frozen=True)
class Distribution:
    """Probabilities over basis-state indices (sampled frequencies when ``shots`` is set)."""

    indices: np.ndarray
    probabilities: np.ndarray
    shots: int | None = None

    @classmethod
    def from_counts(cls, counts: dict[int, int]) -> Distribution:
        indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=float, count=len(counts))
        total = int(values.sum())
        return cls(indices, values / total, total)

    def counts(self) -> dict[int, int]:
        if self.shots is None:
            raise ValueError("an exact distribution has no counts; sample it first")
        return {int(i): int(round(p * self.shots)) for i, p in zip(self.indices, self.probabilities)}


@runtime_checkable
class Backend(Protocol):
    """Runs circuits: a distribution per parameter set, and the final samples."""

    name: str

    def distributions(self, circuit: QuantumCircuit, parameter_sets: np.ndarray) -> list[Distribution]: ...

    def sample(self, circuit: QuantumCircuit, parameters: np.ndarray, shots: int) -> Distribution: ...


@runtime_checkable
class ExactObjective(Protocol):
    """Evaluates CVaR_α (α = 1: the expectation) from the exact state, for many parameter sets at once."""

    def objective_values(self, circuit: QuantumCircuit, parameter_sets: np.ndarray, alpha: float) -> np.ndarray: ...


@runtime_checkable
class ExactGradient(Protocol):
    """``⟨E⟩`` and ``∂⟨E⟩/∂θ`` exactly (the adjoint method)."""

    def value_and_gradient(self, circuit: QuantumCircuit, theta: np.ndarray) -> tuple[float, np.ndarray]: ...


@runtime_checkable
class JobBackend(Protocol):
    """Hardware-like backends: jobs with ids, reported as they start, collectable after a restart."""

    def on_job(self, callback: Callable[[dict], None]) -> None: ...

    def collect(self, job_id: str, measured_qubits: list[int] | None = None) -> list[Distribution]: ...

    def status(self, job_id: str) -> dict: ...

    def compile(self, circuit: QuantumCircuit): ...

    def hardware_report(self, circuit: QuantumCircuit, num_circuits: int = 1, shots: int | None = None,
                        jobs: int = 1) -> dict: ...

    def estimate_qpu_seconds(self, circuit: QuantumCircuit, num_circuits: int, shots: int, jobs: int = 1) -> float: ...
