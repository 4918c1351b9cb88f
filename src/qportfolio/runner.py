"""The variational loop: a classical optimizer updates θ to minimise the energy of sampled states.

The objective of a distribution ``P`` over basis states with QUBO energies ``E`` is

* ``expectation``: ``Σ_z P(z) E(z)``;
* ``cvar``: CVaR_α, the mean energy of the lowest α fraction of the probability mass (Barkoutsos et al.
  2020); α = 1 is the expectation.

Energies are those of the QUBO in the problem's own units; the optimizer sees them divided by the
ansatz's ``cost_scale``. Every evaluation is appended to the history (and, when a path is given, to a
JSON-lines file as it happens, so an interrupted run keeps what it did). The final parameters are
sampled with ``shots`` as a separate, recorded step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.optimize import minimize

from qportfolio.ansatz import Ansatz
from qportfolio.backends import Distribution
from qportfolio.errors import ConfigError

OPTIMIZERS = ("cobyla", "nelder_mead", "spsa", "powell")
OBJECTIVES = ("expectation", "cvar")


def cvar(energies: np.ndarray, probabilities: np.ndarray, alpha: float) -> float:
    """Mean of the lowest-energy α fraction of the mass (the boundary state counted fractionally)."""
    if not 0 < alpha <= 1:
        raise ConfigError(f"solver.cvar_alpha must be in (0, 1], got {alpha}")
    order = np.argsort(energies, kind="stable")
    e, p = energies[order], probabilities[order]
    before = np.concatenate([[0.0], np.cumsum(p)[:-1]])
    taken = np.clip(alpha - before, 0.0, p)
    return float(taken @ e / alpha)


@dataclass
class EnergyTable:
    """QUBO energies looked up by basis-state index (a full table when it fits, else computed)."""

    energy_of_bits: Callable[[np.ndarray], np.ndarray]
    num_qubits: int
    table: np.ndarray | None = None

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table[indices]
        bits = (indices[:, None] >> np.arange(self.num_qubits)) & 1
        return self.energy_of_bits(bits)


@dataclass
class Evaluation:
    index: int
    parameters: list[float]
    value: float
    seconds: float


@dataclass
class VariationalResult:
    parameters: np.ndarray
    value: float
    history: list[Evaluation]
    optimizer_message: str
    final: Distribution
    seconds: float
    history_values: np.ndarray = field(init=False)

    def __post_init__(self):
        self.history_values = np.array([h.value for h in self.history])


class VariationalRunner:
    """Runs the optimizer against a backend; one instance per run."""

    def __init__(self, ansatz: Ansatz, backend, energies: EnergyTable, objective: str = "expectation",
                 cvar_alpha: float = 1.0, optimizer: str = "cobyla", maxiter: int = 100, shots: int = 1024,
                 seed: int | None = None, history_path: Path | None = None, progress: bool = False):
        if objective not in OBJECTIVES:
            raise ConfigError(f"solver.objective must be one of {OBJECTIVES}, got {objective!r}")
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"solver.optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if maxiter < 1:
            raise ConfigError(f"solver.maxiter must be ≥ 1, got {maxiter}")
        self.ansatz, self.backend, self.energies = ansatz, backend, energies
        self.objective, self.alpha = objective, (cvar_alpha if objective == "cvar" else 1.0)
        cvar(np.zeros(1), np.ones(1), self.alpha)  # validates α
        self.optimizer, self.maxiter, self.shots = optimizer, maxiter, shots
        self.rng = np.random.default_rng(seed)
        self.history: list[Evaluation] = []
        self.history_path = history_path
        self.progress = progress

    def value_of(self, distribution: Distribution) -> float:
        energies = self.energies(distribution.indices)
        return cvar(energies, distribution.probabilities, self.alpha)

    def _evaluate(self, thetas: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        distributions = self.backend.distributions(self.ansatz.circuit, thetas)
        values = np.array([self.value_of(d) for d in distributions])
        elapsed = (time.perf_counter() - started) / len(values)
        for theta, value in zip(np.atleast_2d(thetas), values):
            record = Evaluation(len(self.history), [float(t) for t in theta], float(value), elapsed)
            self.history.append(record)
            if self.history_path is not None:
                with open(self.history_path, "a") as handle:
                    handle.write(json.dumps(record.__dict__) + "\n")
            if self._bar is not None:
                self._bar.update(1)
                self._bar.set_postfix(value=f"{value:.6g}")
        return values

    def run(self, initial: np.ndarray) -> VariationalResult:
        from tqdm import tqdm

        started = time.perf_counter()
        total = self.maxiter * (2 if self.optimizer == "spsa" else 1)
        self._bar = tqdm(total=total, desc=f"{self.ansatz.algorithm} · {self.optimizer}", unit="eval",
                         leave=False, disable=not self.progress)
        scale = self.ansatz.cost_scale

        def scaled(theta):
            return self._evaluate(np.asarray(theta)[None, :])[0] / scale

        try:
            if self.optimizer == "spsa":
                theta, message = spsa(scaled, initial, self.maxiter, self.rng)
            else:
                method = {"cobyla": "COBYLA", "nelder_mead": "Nelder-Mead", "powell": "Powell"}[self.optimizer]
                options = {"maxiter": self.maxiter} if method != "Powell" else {"maxfev": self.maxiter}
                if method == "COBYLA":
                    options["rhobeg"] = 0.3
                result = minimize(scaled, initial, method=method, options=options)
                message = str(result.message)
        finally:
            self._bar.close()
        # The optimizer's last point is not always its best: keep the best evaluated parameters.
        best = min(self.history, key=lambda h: h.value)
        theta = np.array(best.parameters)
        final = self.backend.sample(self.ansatz.circuit, theta, self.shots)
        return VariationalResult(theta, best.value, list(self.history), message, final,
                                 time.perf_counter() - started)


def spsa(function, initial: np.ndarray, maxiter: int, rng: np.random.Generator,
         a: float | None = None, c: float = 0.1, alpha: float = 0.602, gamma: float = 0.101) -> tuple[np.ndarray, str]:
    """Simultaneous-perturbation stochastic approximation (Spall 1998), two evaluations per step.

    Gains ``a_k = a/(k+1+A)^α``, ``c_k = c/(k+1)^γ`` with ``A = maxiter/10``; ``a`` is calibrated so the
    first step moves each parameter by about 0.2 radians.
    """
    theta = np.array(initial, dtype=float)
    stability = maxiter / 10
    if a is None:
        gradients = []
        for _ in range(5):
            delta = rng.choice([-1.0, 1.0], size=theta.size)
            gradients.append(abs(function(theta + c * delta) - function(theta - c * delta)) / (2 * c))
        a = 0.2 * (stability + 1) ** alpha / max(float(np.mean(gradients)), 1e-12)
    for k in range(maxiter):
        ak, ck = a / (k + 1 + stability) ** alpha, c / (k + 1) ** gamma
        delta = rng.choice([-1.0, 1.0], size=theta.size)
        difference = function(theta + ck * delta) - function(theta - ck * delta)
        theta = theta - ak * difference / (2 * ck) * delta
    return theta, f"SPSA finished {maxiter} iterations"
