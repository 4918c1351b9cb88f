"""What a practitioner does without an integer solver: relax and round, and greedy construction."""

from __future__ import annotations

import time

import numpy as np

from qportfolio.classical.relaxation import continuous_relaxation
from qportfolio.classical.scip import objective_parts
from qportfolio.classical.solution import (
    allocation_dict,
    method_entry,
)
from qportfolio.problems import (
    DiscreteProblem,
    IntegerSharesProblem,
    SelectionProblem,
)


def _objective(quadratic: np.ndarray, linear: np.ndarray, x: np.ndarray) -> float:
    return float(x @ quadratic @ x + linear @ x)


def _reachable_return(problem: IntegerSharesProblem, x: np.ndarray) -> float:
    """The most expected return ``x`` can reach by adding (fractional) shares within the budget left."""
    remaining, best = problem.budget - float(problem.prices @ x), float(problem.return_coefficients @ x)
    for i in np.argsort(-problem.mu):
        if problem.mu[i] <= 0 or remaining <= 0:
            break
        dollars = min(remaining, problem.prices[i] * (problem.upper_bounds[i] - x[i]))
        best += problem.mu[i] * dollars
        remaining -= dollars
    return best


def _repair_return(problem: IntegerSharesProblem, x: np.ndarray, quadratic, linear, allow_swaps: bool) -> bool:
    """Raise ``x`` (in place) to the return floor by the cheapest moves; True when the floor is met.

    A move is one more share (or, with ``allow_swaps``, one share of an asset traded for one of another)
    that raises the expected return, fits the budget and keeps the floor reachable with the budget left
    (a fractional-knapsack look-ahead); the move with the least objective increase per dollar of return
    raised is taken.
    """
    if problem.min_return is None:
        return True
    gains, prices, upper = problem.return_coefficients, problem.prices, problem.upper_bounds
    floor = problem.min_return - 1e-9 * max(abs(problem.min_return), 1.0)
    tolerance = 1e-9 * max(problem.budget, 1.0)
    n = problem.num_assets
    for _ in range(int(upper.sum()) + n * n + 10):
        if gains @ x >= floor:
            return True
        base = _objective(quadratic, linear, x)
        best, best_score = None, np.inf
        moves = [(None, i) for i in range(n)]
        if allow_swaps:
            moves += [(j, i) for j in range(n) for i in range(n) if i != j and x[j] > 0]
        for out, into in moves:
            trial = x.copy()
            trial[into] += 1
            if out is not None:
                trial[out] -= 1
            if trial[into] > upper[into] or prices @ trial > problem.budget + tolerance:
                continue
            raised = gains @ trial - gains @ x
            if raised <= 0 or _reachable_return(problem, trial) < floor:
                continue
            score = (_objective(quadratic, linear, trial) - base) / raised
            if score < best_score:
                best, best_score = trial, score
        if best is None:
            return False
        x[:] = best
    return gains @ x >= floor


def _fill(problem: IntegerSharesProblem, x: np.ndarray, quadratic, linear) -> None:
    """Add one share at a time (in place) while one is affordable and lowers the objective."""
    tolerance = 1e-9 * max(problem.budget, 1.0)
    while True:
        step = 2 * (quadratic @ x) + np.diag(quadratic) + linear  # objective change of one more share
        affordable = (x < problem.upper_bounds) & (problem.prices @ x + problem.prices <= problem.budget + tolerance)
        step = np.where(affordable, step, np.inf)
        i = int(np.argmin(step))
        if not step[i] < -1e-15 * max(1.0, abs(_objective(quadratic, linear, x))):
            return
        x[i] += 1


def relax_and_round(problem: DiscreteProblem) -> dict:
    """The ``relax_round`` entry (see the module docstring)."""
    started = time.perf_counter()
    relaxed, bound = continuous_relaxation(problem)
    if isinstance(problem, SelectionProblem):
        chosen = np.argsort(-relaxed, kind="stable")[: problem.num_selected]
        x = np.zeros(problem.num_assets, dtype=np.int64)
        x[chosen] = 1
        return method_entry(problem, x, time.perf_counter() - started, relaxation_bound=bound,
                      rounding="top_k of the relaxed weights")
    quadratic, linear = objective_parts(problem)
    x = np.minimum(np.floor(relaxed + 1e-9).astype(np.int64), problem.upper_bounds)
    rounded = x.copy()
    met = _repair_return(problem, x, quadratic, linear, allow_swaps=True)
    if not met:
        return method_entry(problem, None, time.perf_counter() - started, "infeasible",
                      "rounding and repair could not reach the return floor within the budget", relaxation_bound=bound,
                      rounding="floor, repair, fill", rounded_allocation=allocation_dict(problem, rounded))
    _fill(problem, x, quadratic, linear)
    return method_entry(problem, x, time.perf_counter() - started, relaxation_bound=bound, rounding="floor, repair, fill",
                  rounded_allocation=allocation_dict(problem, rounded))


# --------------------------------------------------------------------------- greedy


def greedy(problem: DiscreteProblem) -> dict:
    """The ``greedy`` entry (see the module docstring)."""
    started = time.perf_counter()
    quadratic, linear = objective_parts(problem)
    x = np.zeros(problem.num_assets, dtype=np.int64)
    if isinstance(problem, SelectionProblem):
        for _ in range(problem.num_selected):
            step = 2 * (quadratic @ x) + np.diag(quadratic) + linear
            step = np.where(x == 0, step, np.inf)
            x[int(np.argmin(step))] = 1
        return method_entry(problem, x, time.perf_counter() - started, rule="add the asset that raises the objective least")
    if not (_repair_return(problem, x, quadratic, linear, allow_swaps=False)
            or _repair_return(problem, x, quadratic, linear, allow_swaps=True)):
        return method_entry(problem, None, time.perf_counter() - started, "infeasible",
                      "greedy share-by-share buying could not reach the return floor within the budget")
    _fill(problem, x, quadratic, linear)
    return method_entry(problem, x, time.perf_counter() - started,
                  rule="add the share with the least objective increase per dollar of return up to the floor, "
                       "then shares that lower the objective")


