"""The variational loop: a classical optimizer updates θ to minimise the energy of sampled states.

The objective of a distribution ``P`` over basis states with QUBO energies ``E`` is

* ``expectation``: ``Σ_z P(z) E(z)``;
* ``cvar``: CVaR_α, the mean energy of the lowest α fraction of the probability mass (Barkoutsos et al.
  2020); α = 1 is the expectation.

Energies are those of the QUBO in the problem's own units; the optimizer sees them divided by the
ansatz's ``cost_scale``. Every evaluation is appended to the history (and, when a path is given, to a
JSON-lines file as it happens, so an interrupted run keeps what it did). The final parameters are
sampled with ``shots`` as a separate, recorded step.

Resuming is replay: the optimizers are deterministic given the seed, so a resumed run restarts the
optimizer from the same point and answers every evaluation already in the history from it (matched on
the exact parameter values), touching the backend only for evaluations it never made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from qportfolio.backends.base import Distribution, ExactGradient, ExactObjective
from qportfolio.choices import Optimizer, check_choice
from qportfolio.circuits import Ansatz
from qportfolio.errors import (
    ConfigError,
)
from qportfolio.objective import Objective
from qportfolio.optimize.history import OptimizerCall, Replay
from qportfolio.optimize.energy_table import EnergyTable


@dataclass
class VariationalResult:
    parameters: np.ndarray
    value: float
    history: list[OptimizerCall]
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
                 seed: int | None = None, on_evaluation: Callable[[OptimizerCall], None] | None = None,
                 replay: Replay | None = None, gibbs_eta: float = 8.0):
        optimizer = check_choice(optimizer, Optimizer, "solver.optimizer", ConfigError)
        if maxiter < 1:
            raise ConfigError(f"solver.maxiter must be ≥ 1, got {maxiter}")
        self.measure = Objective(objective, cvar_alpha if objective == "cvar" else 1.0, gibbs_eta, ansatz.cost_scale)
        if optimizer == "l_bfgs_b" and not (isinstance(backend, ExactGradient) and self.measure.has_gradient
                                            and getattr(backend, "has_gradient", lambda c: True)(ansatz.circuit)):
            raise ConfigError("solver.optimizer l_bfgs_b uses exact gradients: it needs backend.name: exact, QAOA from "
                              "the uniform or Dicke state, and solver.objective expectation or gibbs")
        self.ansatz, self.backend, self.energies = ansatz, backend, energies
        self.objective, self.alpha = self.measure.kind, self.measure.alpha
        self.optimizer, self.maxiter, self.shots = optimizer, maxiter, shots
        self.rng = np.random.default_rng(seed)
        self.history: list[OptimizerCall] = []
        self.on_evaluation = on_evaluation
        self.replay = replay or Replay()

    def value_of(self, distribution: Distribution) -> float:
        return self.measure.value(self.energies(distribution.indices), distribution.probabilities)

    def _evaluate(self, thetas: np.ndarray) -> np.ndarray:
        thetas = np.atleast_2d(thetas)
        recorded = [self.replay.take(theta) for theta in thetas]
        fresh = [k for k, r in enumerate(recorded) if r is None]
        values, seconds = np.empty(len(thetas)), np.zeros(len(thetas))
        if fresh:
            started = time.perf_counter()
            if isinstance(self.backend, ExactObjective):  # exact paths: no 2ⁿ distribution objects
                values[fresh] = self.backend.objective_values(self.ansatz.circuit, thetas[fresh], self.measure)
            else:
                distributions = self.backend.distributions(self.ansatz.circuit, thetas[fresh])
                values[fresh] = [self.value_of(d) for d in distributions]
            seconds[fresh] = (time.perf_counter() - started) / len(fresh)
        for k, r in enumerate(recorded):
            if r is not None:
                values[k], seconds[k] = r.value, r.seconds
        for k, (theta, value) in enumerate(zip(thetas, values)):
            record = OptimizerCall(len(self.history), [float(t) for t in theta], float(value), float(seconds[k]))
            self.history.append(record)
            # written unless it came from this file; evaluations recovered from a job's results (index −1) are new here
            if self.on_evaluation is not None and (recorded[k] is None or recorded[k].index < 0):
                self.on_evaluation(record)
        return values

    def optimize(self, initial: np.ndarray, maxiter: int | None = None) -> tuple[np.ndarray, float, str]:
        """One optimizer run from ``initial``; returns the best parameters it evaluated, their value and
        the optimizer's message (the optimizer's last point is not always its best)."""
        maxiter = maxiter or self.maxiter
        first = len(self.history)
        scale = self.ansatz.cost_scale

        def scaled(theta):
            return self._evaluate(np.asarray(theta)[None, :])[0] / scale

        if self.optimizer == "l_bfgs_b":
            result = minimize(self._value_and_gradient, initial, jac=True, method="L-BFGS-B",
                              options={"maxfun": maxiter, "maxiter": maxiter})
            message = str(result.message)
        elif self.optimizer == "spsa":
            _, message = spsa(scaled, initial, maxiter, self.rng)
        else:
            method = {"cobyla": "COBYLA", "nelder_mead": "Nelder-Mead", "powell": "Powell"}[self.optimizer]
            options = {"maxiter": maxiter, "maxfev": maxiter} if method == "Nelder-Mead" else \
                {"maxiter": maxiter} if method == "COBYLA" else {"maxfev": maxiter}
            if method == "COBYLA":
                options["rhobeg"] = 0.3
            message = str(minimize(scaled, initial, method=method, options=options).message)
        best = min(self.history[first:], key=lambda h: h.value)
        return np.array(best.parameters), best.value, message

    def _value_and_gradient(self, theta) -> tuple[float, np.ndarray]:
        """The objective over ``cost_scale`` and its exact gradient; recorded like any evaluation, and answered
        from the replay when an earlier attempt recorded it (with its gradient)."""
        recorded = self.replay.take(theta)
        if recorded is not None and recorded.gradient is not None:
            value, gradient, seconds = recorded.value, np.asarray(recorded.gradient), recorded.seconds
        else:
            started = time.perf_counter()
            value, gradient = self.backend.value_and_gradient(self.ansatz.circuit, theta, self.measure)
            seconds, recorded = time.perf_counter() - started, None
        record = OptimizerCall(len(self.history), [float(t) for t in theta], float(value), seconds,
                            [float(g) for g in gradient])
        self.history.append(record)
        if self.on_evaluation is not None and recorded is None:
            self.on_evaluation(record)
        scale = self.ansatz.cost_scale
        return value / scale, gradient / scale

    def run(self, initial: np.ndarray) -> VariationalResult:
        """Optimize from ``initial`` with the whole budget, then sample the best parameters."""
        started = time.perf_counter()
        theta, value, message = self.optimize(initial)
        final = self.backend.sample(self.ansatz.circuit, theta, self.shots)
        return VariationalResult(theta, value, list(self.history), message, final, time.perf_counter() - started)




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
