"""What the optimizer minimises over a distribution ``P`` of basis states with energies ``E``.

* ``expectation``: ``Σ_z P(z) E(z)``;
* ``cvar``: CVaR_α, the mean energy of the lowest α fraction of the mass, the boundary state counted
  fractionally (Barkoutsos et al. 2020); α = 1 is the expectation;
* ``gibbs``: ``−(s/η) log Σ_z P(z) e^{−η E(z)/s}`` (Li et al. 2020), a smooth weighting of the low energies
  whose exact gradient follows from that of the observable ``e^{−η E/s}``; ``s`` is the ansatz's cost scale,
  so ``η`` is in units of the energy spread and transfers between instances.

All three are in the units of ``E`` and equal the expectation in the limits α = 1, η → 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from qportfolio.choices import TrainingObjective, check_choice
from qportfolio.errors import ConfigError


def cvar(energies: np.ndarray, probabilities: np.ndarray, alpha: float) -> float:
    """Mean of the lowest-energy α fraction of the mass (the boundary state counted fractionally)."""
    if not 0 < alpha <= 1:
        raise ConfigError(f"solver.cvar_alpha must be in (0, 1], got {alpha}")
    order = np.argsort(energies, kind="stable")
    return cvar_sorted(energies[order], probabilities[order], alpha)


def cvar_sorted(energies: np.ndarray, probabilities: np.ndarray, alpha: float) -> float:
    """:func:`cvar` for energies already in ascending order (probabilities in the same order)."""
    before = np.concatenate([[0.0], np.cumsum(probabilities)[:-1]])
    taken = np.clip(alpha - before, 0.0, probabilities)
    return float(taken @ energies / alpha)


@dataclass(frozen=True)
class Objective:
    """One of the objectives above, with its parameters (``scale`` = the ansatz's cost scale)."""

    kind: str = "expectation"
    alpha: float = 1.0
    eta: float = 8.0
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "kind", check_choice(self.kind, TrainingObjective, "solver.objective", ConfigError))
        if self.kind == "cvar":
            cvar(np.zeros(1), np.ones(1), self.alpha)  # validates α
        if self.kind == "gibbs" and not self.eta > 0:
            raise ConfigError(f"solver.gibbs_eta must be > 0, got {self.eta}")

    @property
    def has_gradient(self) -> bool:
        """Expectation and Gibbs are smooth in θ; CVaR is not (its gradient jumps with the sort order)."""
        return self.kind in ("expectation", "gibbs")

    def value(self, energies: np.ndarray, probabilities: np.ndarray) -> float:
        """The objective of a distribution (``probabilities`` over states with ``energies``)."""
        if self.kind == "cvar":
            return cvar(energies, probabilities, self.alpha)
        if self.kind == "gibbs":
            rate = self.eta / self.scale
            return float(-logsumexp(-rate * energies, b=probabilities) / rate)
        return float(probabilities @ energies)

    def observable(self, energies: np.ndarray) -> tuple[np.ndarray | None, float]:
        """The diagonal observable whose expectation ``W`` gives the objective, and the floor ``f`` of its
        shift: Gibbs is ``−(s/η) log W + f`` with ``W = ⟨e^{−η(E − f)/s}⟩``; None for the expectation."""
        if self.kind != "gibbs":
            return None, 0.0
        floor = float(np.min(energies))
        return np.exp(-(self.eta / self.scale) * (energies - floor)), floor

    def from_observable(self, value: float, gradient: np.ndarray, floor: float) -> tuple[float, np.ndarray]:
        """The objective and its gradient from ``W`` and ``∇W`` (identity for the expectation)."""
        if self.kind != "gibbs":
            return value, gradient
        rate = self.eta / self.scale
        return -np.log(value) / rate + floor, -gradient / (rate * value)
