"""The QUBO energies the optimizer sees, by basis-state index, and the objective of a sampled distribution."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qportfolio.backends.base import Distribution
from qportfolio.encoding import bits_of
from qportfolio.objective import Objective


def objective_value(distribution: Distribution, energies: "EnergyTable", objective: Objective) -> float:
    """The objective of the distribution's QUBO energies."""
    return objective.value(energies(distribution.indices), distribution.probabilities)


@dataclass
class EnergyTable:
    """QUBO energies looked up by basis-state index (a full table when it fits, else computed)."""

    energy_of_bits: Callable[[np.ndarray], np.ndarray]
    num_qubits: int
    table: np.ndarray | None = None

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table[indices]
        return self.energy_of_bits(bits_of(indices, self.num_qubits))

