"""The parameter search: depths, starts and budget shared across stages."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from qportfolio.backends.base import Distribution
from qportfolio.circuits import Ansatz
from qportfolio.errors import ConfigError
from qportfolio.optimize.runner import VariationalResult, VariationalRunner
from qportfolio.optimize.strategies import (
    angle_grid,
    append_zero_layer,
    given,
    interp,
    linear_ramp,
    ramp_scan,
    starting_points,
)


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
            check_grid(grid, per_depth, maxiter)
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



def planned_evaluations(algorithm: str, reps: int, maxiter: int, optimizer: str = "cobyla", layerwise: bool = False,
                        multistart: int = 1, grid: int = 0) -> int:
    """The evaluations :func:`variational_search` makes at most with these settings: the depth-1 grid, then per
    depth and start a budget of at least 5 (COBYLA never makes fewer than ``2p + 2``; SPSA two per step
    plus ten to calibrate its gain)."""
    depths = list(range(1, reps + 1)) if layerwise and algorithm == "qaoa" else [reps]
    per_depth = max(maxiter // len(depths), 5)
    if algorithm == "qaoa" and 1 in depths:
        check_grid(grid, per_depth, maxiter)
    total = 0
    for depth in depths:
        spent = grid**2 if grid and algorithm == "qaoa" and depth == 1 else 0
        starts = multistart if depth == depths[-1] else 1
        budget = max((per_depth - spent) // starts, 5)
        parameters = 2 * depth if algorithm == "qaoa" else 2 * depth + 2
        each = 2 * budget + 10 if optimizer == "spsa" else max(budget, parameters + 2)
        total += spent + starts * each
    return total


def adaptive_search(build: Callable[[int], Ansatz], max_reps: int, make_runner: Callable[[Ansatz], VariationalRunner],
                    max_evaluations: int, work: Callable[[int], float] | None = None, work_budget: float | None = None,
                    table: Callable[[int], np.ndarray | None] | None = None, iterations: int = 100,
                    recorded_final: Callable[[np.ndarray], Distribution | None] | None = None,
                    on_depth: Callable[[Ansatz, np.ndarray, float], None] | None = None,
                    ) -> tuple[Ansatz, VariationalResult, list[dict]]:
    """Grow the depth from 1 to ``max_reps``; at each depth ``p`` optimise from every start below and keep the
    best by the objective (never by anything that needs the answer):

    * the trained angles for depth ``p`` (``table(p)``), when there are any;
    * the best of depth ``p − 1`` with a zero layer appended — the same state, so depth ``p`` never ends worse
      than depth ``p − 1`` — and its INTERP (Zhou et al. 2020);
    * the best of a scan of linear ramps (evaluated in one batch).

    Each start gets ``iterations`` optimizer iterations, and no start begins once ``max_evaluations`` are
    spent. With a ``work_budget`` (in the units of ``work(p)``, the cost of one evaluation at depth ``p``) the
    search also stops before a depth whose projected cost (the last depth's evaluations, scaled by depth)
    would exceed it. All of it is deterministic given the evaluations, so a resumed run replays it exactly.
    ``on_depth(ansatz, θ, value)`` is told the best of every depth (the device search's candidates).
    """
    started = time.perf_counter()
    history: list = []
    stages: list[dict] = []
    best, best_value, best_ansatz, runner, message = None, np.inf, None, None, ""
    spent_work = 0.0
    for depth in range(1, max_reps + 1):
        ansatz = build(depth)
        runner = make_runner(ansatz)
        runner.history = history
        first = len(history)
        starts = [] if table is None or table(depth) is None else [("table", table(depth))]
        if best is not None:
            starts += [("zero_layer", append_zero_layer(best)), ("interp", interp(best))]
        ramps = ramp_scan(depth)
        if max_evaluations - len(history) >= len(ramps) + len(starts) + 1:
            values = runner._evaluate(ramps)
            starts.append(("ramp", ramps[int(np.argmin(values))]))
        elif not starts:
            starts.append(("ramp", linear_ramp(depth)))
        outcomes = []
        for name, point in starts:
            left = max_evaluations - len(history)
            if left <= 0:
                break
            theta, value, message = runner.optimize(point, min(iterations, left))
            outcomes.append((value, name, theta, message))
        if not outcomes:  # the budget ran out at the depth before
            break
        value, name, theta, message = min(outcomes, key=lambda outcome: outcome[0])
        if value > best_value:  # only possible through optimizer noise: keep the shallower answer, one layer deeper
            value, name, theta = best_value, "previous depth", append_zero_layer(best)
        best, best_value, best_ansatz = np.asarray(theta, dtype=float), value, ansatz
        evaluations = len(history) - first
        spent_work += evaluations * (work(depth) if work else 0.0)
        stages.append({"reps": depth, "value": float(value), "start": name, "evaluations": evaluations,
                       "seconds": time.perf_counter() - started})
        if on_depth is not None:
            on_depth(ansatz, best, float(value))
        projected = evaluations * (depth + 1) / depth * 1.3
        if len(history) >= max_evaluations or (
                work_budget is not None and work is not None and spent_work + projected * work(depth + 1) > work_budget):
            break
    final = recorded_final(best) if recorded_final is not None else None
    if final is None:
        final = runner.backend.sample(best_ansatz.circuit, best, runner.shots)
    result = VariationalResult(best, float(best_value), list(history), message, final, time.perf_counter() - started)
    return best_ansatz, result, stages


def check_grid(grid: int, per_depth: int, maxiter: int) -> None:
    """The depth-1 grid stays within its depth's evaluation budget (``grid² ≤`` that budget), as documented."""
    if grid and grid**2 > per_depth:
        raise ConfigError(f"solver.grid {grid} scans {grid**2:,} angle pairs, more than the {per_depth} evaluations "
                          f"depth 1 has with solver.maxiter {maxiter}: use solver.grid ≤ {int(per_depth**0.5)} or "
                          "raise solver.maxiter")
