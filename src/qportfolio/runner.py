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

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.optimize import minimize

from qportfolio.ansatz import Ansatz
from qportfolio.backends import Distribution
from qportfolio.builder import bits_of
from qportfolio.errors import ConfigError

OPTIMIZERS = ("cobyla", "nelder_mead", "spsa", "powell", "l_bfgs_b")
OBJECTIVES = ("expectation", "cvar")


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


@dataclass
class Evaluation:
    index: int
    parameters: list[float]
    value: float
    seconds: float


def parameter_key(theta) -> tuple[str, ...]:
    """An exact, hashable key for a parameter vector (float.hex keeps every bit)."""
    return tuple(float(t).hex() for t in np.ravel(theta))


class Replay:
    """Recorded evaluations to answer from, consumed in order for each exact parameter vector."""

    def __init__(self, records: list[Evaluation] | None = None):
        self._queues: dict[tuple, deque] = {}
        for record in records or []:
            self._queues.setdefault(parameter_key(record.parameters), deque()).append(record)
        self.used = 0

    def add(self, record: Evaluation) -> None:
        self._queues.setdefault(parameter_key(record.parameters), deque()).append(record)

    def take(self, theta) -> Evaluation | None:
        queue = self._queues.get(parameter_key(theta))
        if not queue:
            return None
        self.used += 1
        return queue.popleft()


def load_history(path: Path) -> list[Evaluation]:
    """Evaluations recorded in a history file; a line cut short by an interruption is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(Evaluation(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return records


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
                 seed: int | None = None, history_path: Path | None = None, progress: bool = False,
                 replay: Replay | None = None):
        if objective not in OBJECTIVES:
            raise ConfigError(f"solver.objective must be one of {OBJECTIVES}, got {objective!r}")
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"solver.optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if maxiter < 1:
            raise ConfigError(f"solver.maxiter must be ≥ 1, got {maxiter}")
        if optimizer == "l_bfgs_b" and (not hasattr(backend, "value_and_gradient") or objective != "expectation"):
            raise ConfigError("solver.optimizer l_bfgs_b uses exact gradients: it needs backend.name: exact and "
                              "solver.objective: expectation")
        self.ansatz, self.backend, self.energies = ansatz, backend, energies
        self.objective, self.alpha = objective, (cvar_alpha if objective == "cvar" else 1.0)
        cvar(np.zeros(1), np.ones(1), self.alpha)  # validates α
        self.optimizer, self.maxiter, self.shots = optimizer, maxiter, shots
        self.rng = np.random.default_rng(seed)
        self.history: list[Evaluation] = []
        self.history_path = history_path
        self.progress = progress
        self.replay = replay or Replay()
        self._bar = None

    def value_of(self, distribution: Distribution) -> float:
        return objective_value(distribution, self.energies, self.alpha)

    def _evaluate(self, thetas: np.ndarray) -> np.ndarray:
        thetas = np.atleast_2d(thetas)
        recorded = [self.replay.take(theta) for theta in thetas]
        fresh = [k for k, r in enumerate(recorded) if r is None]
        values, seconds = np.empty(len(thetas)), np.zeros(len(thetas))
        if fresh:
            started = time.perf_counter()
            if hasattr(self.backend, "objective_values"):  # exact paths: no 2ⁿ distribution objects
                values[fresh] = self.backend.objective_values(self.ansatz.circuit, thetas[fresh], self.alpha)
            else:
                distributions = self.backend.distributions(self.ansatz.circuit, thetas[fresh])
                values[fresh] = [self.value_of(d) for d in distributions]
            seconds[fresh] = (time.perf_counter() - started) / len(fresh)
        for k, r in enumerate(recorded):
            if r is not None:
                values[k], seconds[k] = r.value, r.seconds
        for k, (theta, value) in enumerate(zip(thetas, values)):
            record = Evaluation(len(self.history), [float(t) for t in theta], float(value), float(seconds[k]))
            self.history.append(record)
            # written unless it came from this file; evaluations recovered from a job's results (index −1) are new here
            if self.history_path is not None and (recorded[k] is None or recorded[k].index < 0):
                with open(self.history_path, "a") as handle:
                    handle.write(json.dumps(record.__dict__) + "\n")
            if self._bar is not None:
                self._bar.update(1)
                self._bar.set_postfix(value=f"{value:.6g}")
        return values

    def optimize(self, initial: np.ndarray, maxiter: int | None = None) -> tuple[np.ndarray, float, str]:
        """One optimizer run from ``initial``; returns the best parameters it evaluated, their value and
        the optimizer's message (the optimizer's last point is not always its best)."""
        from tqdm import tqdm

        maxiter = maxiter or self.maxiter
        first = len(self.history)
        total = 2 * maxiter + 10 if self.optimizer == "spsa" else maxiter
        self._bar = tqdm(total=total, desc=f"{self.ansatz.algorithm} p={self.ansatz.reps} · {self.optimizer}",
                         unit="eval", leave=False, disable=not self.progress)
        scale = self.ansatz.cost_scale

        def scaled(theta):
            return self._evaluate(np.asarray(theta)[None, :])[0] / scale

        try:
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
        finally:
            self._bar.close()
            self._bar = None
        best = min(self.history[first:], key=lambda h: h.value)
        return np.array(best.parameters), best.value, message

    def _value_and_gradient(self, theta) -> tuple[float, np.ndarray]:
        """⟨E⟩/cost_scale and its adjoint gradient; recorded like any evaluation (never replayed: a resumed
        gradient run recomputes, which on the exact backend costs milliseconds)."""
        started = time.perf_counter()
        value, gradient = self.backend.value_and_gradient(self.ansatz.circuit, theta)
        record = Evaluation(len(self.history), [float(t) for t in theta], value, time.perf_counter() - started)
        self.history.append(record)
        if self.history_path is not None:
            with open(self.history_path, "a") as handle:
                handle.write(json.dumps(record.__dict__) + "\n")
        if self._bar is not None:
            self._bar.update(1)
        scale = self.ansatz.cost_scale
        return value / scale, gradient / scale

    def run(self, initial: np.ndarray) -> VariationalResult:
        """Optimize from ``initial`` with the whole budget, then sample the best parameters."""
        started = time.perf_counter()
        theta, value, message = self.optimize(initial)
        final = self.backend.sample(self.ansatz.circuit, theta, self.shots)
        return VariationalResult(theta, value, list(self.history), message, final, time.perf_counter() - started)


def variational_search(build: Callable[[int], Ansatz], reps: int, make_runner: Callable[[Ansatz], VariationalRunner],
                       maxiter: int, rng: np.random.Generator, layerwise: bool = False, multistart: int = 1,
                       initial: np.ndarray | None = None,
                       recorded_final: Callable[[np.ndarray], Distribution | None] | None = None,
                       grid: int = 0) -> tuple[Ansatz, VariationalResult, list[dict]]:
    """The configured parameter strategy, sharing one evaluation budget of ``maxiter`` per optimizer run
    unit: layer-by-layer growth (INTERP) splits it over the depths, multistart over the final starts.

    Returns the final ansatz, its result (history of every stage, final samples) and one record per stage.
    ``recorded_final(θ)`` may return the final samples of an earlier, interrupted attempt (no new job).
    ``grid > 0`` (QAOA): the first depth-1 start is the best point of a ``grid × grid`` scan of (β, γ),
    evaluated in one batch and counted in the budget.
    """
    from qportfolio.strategies import angle_grid, given, interp, linear_ramp, starting_points

    started = time.perf_counter()
    depths = list(range(1, reps + 1)) if layerwise else [reps]
    per_depth = max(maxiter // len(depths), 5)
    history, stages, best = [], [], None
    for depth in depths:
        ansatz = build(depth)
        runner = make_runner(ansatz)
        runner.history = history
        spent = 0
        if best is not None:
            start = interp(best[0])
        elif initial is not None and depth == reps:
            start = given(initial, ansatz.num_parameters)
        elif ansatz.algorithm == "qaoa" and grid and depth == 1:
            points = angle_grid(grid)
            values = runner._evaluate(points)
            start = points[int(np.argmin(values))]
            spent = len(points)
            stages.append({"reps": 1, "grid": grid, "evaluations": len(points), "value": float(values.min())})
        elif ansatz.algorithm == "qaoa":
            start = linear_ramp(depth)
        else:
            start = rng.uniform(-np.pi / 8, np.pi / 8, ansatz.num_parameters)
        starts = starting_points(start, multistart, rng) if depth == reps else [start]
        budget = max((per_depth - spent) // len(starts), 5)
        best = None
        for point in starts:
            theta, value, message = runner.optimize(point, budget)
            stages.append({"reps": depth, "start": [float(t) for t in point], "value": value,
                           "evaluations": budget, "message": message})
            if best is None or value < best[1]:
                best = (theta, value, message)
    final = recorded_final(best[0]) if recorded_final is not None else None
    if final is None:
        final = runner.backend.sample(ansatz.circuit, best[0], runner.shots)
    return ansatz, VariationalResult(best[0], best[1], list(history), best[2], final, time.perf_counter() - started), stages


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
