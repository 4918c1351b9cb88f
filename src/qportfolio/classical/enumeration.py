"""Exact answers by enumeration: every allocation, vectorised and chunked."""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

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
#: Candidate allocations evaluated at once: ``CHUNK × n`` float64 rows (24 MiB for n = 24) and a few temporaries.
CHUNK = 1 << 17


def enumeration_size(problem: DiscreteProblem) -> int:
    if isinstance(problem, SelectionProblem):
        return math.comb(problem.num_assets, problem.num_selected)
    return math.prod(int(u) + 1 for u in problem.upper_bounds)


@njit(cache=True)
def _fill_selections(combination, out) -> int:
    """Write the next K-subsets of ``range(n)`` as 0/1 rows of ``out`` (``m × n``, zeroed), in the order of
    ``itertools.combinations``, starting from ``combination`` (ascending indices ``c_0 < … < c_{K−1}``).

    Lexicographic successor: take the last ``i`` with ``c_i < n − K + i``, increment it and set
    ``c_j = c_{j−1} + 1`` for ``j > i``. ``combination`` is advanced in place; returns the rows written
    (fewer than ``m`` once the last subset ``(n − K, …, n − 1)`` is written, and then ``c_0 = −1``).
    """
    n = out.shape[1]
    k = combination.size
    for row in range(out.shape[0]):
        if k > 0 and combination[0] < 0:
            return row
        for j in range(k):
            out[row, combination[j]] = 1.0
        i = k - 1
        while i >= 0 and combination[i] == n - k + i:
            i -= 1
        if i < 0:
            if k > 0:
                combination[0] = -1
            return row + 1
        combination[i] += 1
        for j in range(i + 1, k):
            combination[j] = combination[j - 1] + 1
    return out.shape[0]


def _selections(n: int, k: int, chunk: int = CHUNK):
    """Every K-subset of ``n`` assets as chunks of 0/1 float rows, in ``itertools.combinations`` order."""
    combination = np.arange(k, dtype=np.int64)
    total = math.comb(n, k)
    while total > 0:
        x = np.zeros((min(chunk, total), n))
        written = _fill_selections(combination, x)
        total -= written
        yield x[:written]


def _candidates(problem: DiscreteProblem, chunk: int = CHUNK):
    """Chunks of candidate allocations, each an ``(m, n)`` array (0/1 floats for a selection, integers otherwise)."""
    if isinstance(problem, SelectionProblem):
        yield from _selections(problem.num_assets, problem.num_selected, chunk)
        return
    sizes = problem.upper_bounds.astype(np.int64) + 1
    total = int(np.prod(sizes))
    strides = np.cumprod(np.concatenate([[1], sizes[::-1][:-1]]))[::-1]
    for start in range(0, total, chunk):
        flat = np.arange(start, min(start + chunk, total), dtype=np.int64)
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


