"""What the optimizer minimises: the expectation or CVaR_α of a distribution's QUBO energies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qportfolio.backends.base import Distribution
from qportfolio.cvar import cvar
from qportfolio.encoding import bits_of


def objective_value(distribution: Distribution, energies: "EnergyTable", alpha: float) -> float:
    """CVaR_α of the distribution's QUBO energies (α = 1: the expectation)."""
    return cvar(energies(distribution.indices), distribution.probabilities, alpha)


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

