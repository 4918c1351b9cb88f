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
def _fill_selections(combination, sigma, mu, risk_aversion, out, objective) -> int:
    """Write the next K-subsets ``S`` of ``range(n)`` as 0/1 rows of ``out`` (``m × n``, zeroed), in the order of
    ``itertools.combinations``, from ``combination`` (ascending ``c_0 < … < c_{K−1}``), and their objectives
    ``objective[r] = λ·Σ_{a,b∈S} Σ_ab − Σ_{a∈S} μ_a`` (= λ·xᵀΣx − μᵀx for a symmetric Σ).

    Lexicographic successor: take the last ``i`` with ``c_i < n − K + i``, increment it and set
    ``c_j = c_{j−1} + 1`` for ``j > i``. The prefix sums ``V_{j+1} = V_j + Σ_{c_j c_j} + 2 Σ_{l<j} Σ_{c_l c_j}``
    and ``M_{j+1} = M_j + μ_{c_j}`` are recomputed from ``j = i`` only. ``combination`` is advanced in place;
    returns the rows written (fewer than ``m = objective.size`` after the last subset, and then ``c_0 = −1``).
    With ``out`` of no rows (``0 × n``), only the objectives are written.
    """
    k = combination.size
    n = out.shape[1]
    rows = out.shape[0] > 0
    variance = np.zeros(k + 1)
    expected = np.zeros(k + 1)
    changed = 0
    for row in range(objective.size):
        if k > 0 and combination[0] < 0:
            return row
        for j in range(changed, k):
            a = combination[j]
            v = variance[j] + sigma[a, a]
            for l in range(j):
                v += 2.0 * sigma[combination[l], a]
            variance[j + 1] = v
            expected[j + 1] = expected[j] + mu[a]
            if rows:
                out[row, a] = 1.0
        if rows:
            for j in range(changed):
                out[row, combination[j]] = 1.0
        objective[row] = risk_aversion * variance[k] - expected[k]
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
        changed = i
    return objective.size


def _selections(problem: SelectionProblem, chunk: int = CHUNK, rows: bool = True):
    """Every K-subset of the assets as chunks ``(x, objective)``: 0/1 float rows in ``itertools.combinations``
    order and their objectives (:func:`_fill_selections`); with ``rows=False``, ``x`` has no rows (objectives
    only: the rows are most of the work, and :func:`selection_rows` rebuilds the few that are wanted)."""
    n, k = problem.num_assets, problem.num_selected
    sigma, mu = np.ascontiguousarray(problem.sigma, dtype=np.float64), np.ascontiguousarray(problem.mu, dtype=np.float64)
    combination = np.arange(k, dtype=np.int64)
    total = math.comb(n, k)
    while total > 0:
        objective = np.empty(min(chunk, total))
        x = np.zeros((len(objective) if rows else 0, n))
        written = _fill_selections(combination, sigma, mu, float(problem.risk_aversion), x, objective)
        total -= written
        yield x[:written], objective[:written]


def selection_rows(n: int, k: int, ranks) -> np.ndarray:
    """The 0/1 rows (int64) of the K-subsets of ``range(n)`` at the given positions (ranks) of
    ``itertools.combinations(range(n), k)`` order: the combinatorial number system, digit by digit."""
    ranks = np.asarray(ranks, dtype=np.int64).ravel()
    x = np.zeros((len(ranks), n), dtype=np.int64)
    for row, rank in enumerate(ranks.tolist()):
        a = 0
        for i in range(k):
            while (count := math.comb(n - a - 1, k - i - 1)) <= rank:  # subsets whose next element is a
                rank -= count
                a += 1
            x[row, a] = 1
            a += 1
    return x


def _candidates(problem: DiscreteProblem, chunk: int = CHUNK):
    """Chunks ``(x, objective, feasible)`` of every candidate allocation: ``x`` an ``(m, n)`` array (0/1 floats for
    a selection, whose rows are all feasible; integers otherwise, judged by ``problem.evaluate``)."""
    if isinstance(problem, SelectionProblem):
        for x, objective in _selections(problem, chunk):
            yield x, objective, np.ones(len(x), dtype=bool)
        return
    sizes = problem.upper_bounds.astype(np.int64) + 1
    total = int(np.prod(sizes))
    strides = np.cumprod(np.concatenate([[1], sizes[::-1][:-1]]))[::-1]
    for start in range(0, total, chunk):
        flat = np.arange(start, min(start + chunk, total), dtype=np.int64)
        x = (flat[:, None] // strides) % sizes
        evaluation = problem.evaluate(x)
        yield x, evaluation.objective, evaluation.feasible


class _RankedRows:
    """The rows of a chunk of selections that were not written out, from the rank of its first row: indexing
    with a mask gives the rows :func:`_candidates` would have (as int64)."""

    def __init__(self, problem: SelectionProblem, start: int):
        self.problem, self.start = problem, start

    def __getitem__(self, mask) -> np.ndarray:
        return selection_rows(self.problem.num_assets, self.problem.num_selected, self.start + np.flatnonzero(mask))


def _objectives(problem: DiscreteProblem, chunk: int = CHUNK):
    """:func:`_candidates` for a search that keeps only a few rows: a selection's rows are not written out
    but rebuilt from their ranks when indexed (:class:`_RankedRows`)."""
    if not isinstance(problem, SelectionProblem):
        yield from _candidates(problem, chunk)
        return
    start = 0
    for _, objective in _selections(problem, chunk, rows=False):
        yield _RankedRows(problem, start), objective, np.ones(len(objective), dtype=bool)
        start += len(objective)


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
    for x, values, feasible in _objectives(problem):
        objective = np.where(feasible, values, np.inf)
        feasible_count += int(feasible.sum())
        if feasible_count:
            worst = max(worst, float(np.max(np.where(feasible, values, -np.inf))))
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
    optimal = np.vstack(best_rows).astype(np.int64)
    return ClassicalSolution("classical_exact", optimal[0], problem.evaluate(optimal[:1]), True,
                             time.perf_counter() - started, worst, feasible_count, optimal, problem=problem)


