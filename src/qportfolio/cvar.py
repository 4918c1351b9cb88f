"""CVaR_α of a discrete distribution of energies (Barkoutsos et al. 2020): the mean energy of the
lowest-energy α fraction of the probability mass, the boundary state counted fractionally; α = 1 is the
expectation ``Σ P(z) E(z)``."""

from __future__ import annotations

import numpy as np

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
