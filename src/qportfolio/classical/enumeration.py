"""Exact answers by enumeration: every allocation, vectorised and chunked."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from qportfolio.classical.solution import ClassicalSolution
from qportfolio.errors import (
    ProblemError,
    ResourceError,
)
from qportfolio.problems import (
    DiscreteProblem,
    SelectionProblem,
    optimum_tolerance,
)

#: Largest number of candidate allocations enumerated by :func:`solve_exact`.
MAX_ENUMERATED = 200_000_000
CHUNK = 1_000_000


def enumeration_size(problem: DiscreteProblem) -> int:
    if isinstance(problem, SelectionProblem):
        return math.comb(problem.num_assets, problem.num_selected)
    return math.prod(int(u) + 1 for u in problem.upper_bounds)


def _candidates(problem: DiscreteProblem):
    """Chunks of candidate allocations, each an ``(m, n)`` integer array."""
    if isinstance(problem, SelectionProblem):
        n, k = problem.num_assets, problem.num_selected
        combos = itertools.combinations(range(n), k)
        while True:
            chunk = np.array(list(itertools.islice(combos, CHUNK)), dtype=np.int64).reshape(-1, k)
            if len(chunk) == 0:
                return
            x = np.zeros((len(chunk), n), dtype=np.int64)
            np.put_along_axis(x, chunk, 1, axis=1)
            yield x
        return
    sizes = problem.upper_bounds.astype(np.int64) + 1
    total = int(np.prod(sizes))
    strides = np.cumprod(np.concatenate([[1], sizes[::-1][:-1]]))[::-1]
    for start in range(0, total, CHUNK):
        flat = np.arange(start, min(start + CHUNK, total), dtype=np.int64)
        yield (flat[:, None] // strides) % sizes




def enumerate_optimum(problem: DiscreteProblem, limit: int = MAX_ENUMERATED) -> ClassicalSolution:
    """The optimum by enumerating every candidate (ties kept in ``optimal_allocations``)."""
    size = enumeration_size(problem)
    if size > limit:
        raise ResourceError(
            f"exact enumeration needs {size:,} allocations, above the limit of {limit:,}: "
            "use fewer assets or a smaller problem.max_shares"
        )
    started = time.perf_counter()
    best_value, best_rows, worst, feasible_count = np.inf, [], -np.inf, 0
    for x in _candidates(problem):
        evaluation = problem.evaluate(x)
        objective = np.where(evaluation.feasible, evaluation.objective, np.inf)
        feasible_count += int(evaluation.feasible.sum())
        if feasible_count:
            worst = max(worst, float(np.max(np.where(evaluation.feasible, evaluation.objective, -np.inf))))
        low = float(objective.min())
        tolerance = optimum_tolerance(low) if np.isfinite(low) else 0.0
        if low < best_value - 1e-9 * max(1.0, abs(best_value) if np.isfinite(best_value) else 1.0):
            best_value, best_rows = low, [x[objective <= low + tolerance]]
        elif np.isfinite(low) and abs(low - best_value) <= tolerance:
            best_rows.append(x[objective <= low + tolerance])
    if feasible_count == 0:
        raise ProblemError(
            f"no allocation of whole shares meets every constraint ({size:,} checked): "
            "lower problem.min_return or raise problem.budget"
        )
    optimal = np.vstack(best_rows)
    return ClassicalSolution("classical_exact", optimal[0], problem.evaluate(optimal[:1]), True,
                             time.perf_counter() - started, worst, feasible_count, optimal)


