"""Classical post-processing of sampled allocations, always reported apart from the raw quantum result.

* :func:`repair` — move an infeasible allocation to a nearby feasible one: repeatedly take the
  single-share (or single-asset) move that most reduces the constraint violation, ties broken by the
  objective, until the violation is zero.
* :func:`local_search` — steepest descent over the neighbourhood ``{x ± e_i, x − e_i + e_j}`` that stays
  feasible, from the best samples, until no neighbour improves the objective.

Violation (dimensionless): ``max(0, pᵀx − B)/B + max(0, R − μᵀd)/|R|`` for integer shares, ``|1ᵀx − K|``
for selection.
"""

from __future__ import annotations

import numpy as np

from qportfolio.problems import DiscreteProblem, SelectionProblem


def violation(problem: DiscreteProblem, x: np.ndarray) -> np.ndarray:
    """Constraint violation of each row of ``x`` (0 when feasible)."""
    x = np.atleast_2d(x)
    return _violation(problem, x, problem.evaluate(x))


def _violation(problem: DiscreteProblem, x: np.ndarray, evaluation) -> np.ndarray:
    """:func:`violation` of the rows of ``x`` given their ``problem.evaluate(x)``."""
    if isinstance(problem, SelectionProblem):
        return np.abs(evaluation.cost - problem.num_selected).astype(float)
    excess = np.maximum(0.0, evaluation.cost - problem.budget) / problem.budget
    if problem.min_return is not None:
        excess += np.maximum(0.0, problem.min_return - evaluation.expected_return) / max(abs(problem.min_return), 1e-12)
    box = np.sum(np.maximum(0, x - problem.upper_bounds) + np.maximum(0, -x), axis=1)
    return excess + box


def neighbours(problem: DiscreteProblem, x: np.ndarray) -> np.ndarray:
    """Allocations one move from ``x`` inside the box: one share (asset) more or less, or one moved.

    Rows come in a fixed order (ties in :func:`repair` and :func:`local_search` go to the first): for a
    selection, ``x + e_j`` (``j`` unselected), ``x − e_i`` (``i`` selected), then ``x − e_i + e_j`` (``i`` major);
    otherwise ``x + e_i``, ``x − e_i``, then ``x − e_i + e_j`` for ``i ≠ j`` (``i`` major)."""
    x = np.asarray(x, dtype=np.int64)
    n = len(x)
    if isinstance(problem, SelectionProblem):
        ones, zeros = np.flatnonzero(x == 1), np.flatnonzero(x == 0)
        up, down = zeros, ones
        moved_from, moved_to = np.repeat(ones, len(zeros)), np.tile(zeros, len(ones))
    else:
        up = down = np.arange(n)
        moved_from, moved_to = np.nonzero(~np.eye(n, dtype=bool))
    candidates = np.repeat(x[None, :], len(up) + len(down) + len(moved_from), axis=0)
    rows = np.arange(len(candidates))
    candidates[rows[:len(up)], up] += 1
    candidates[rows[len(up):len(up) + len(down)], down] -= 1
    swaps = rows[len(up) + len(down):]
    candidates[swaps, moved_from] -= 1
    candidates[swaps, moved_to] += 1
    inside = np.all((candidates >= 0) & (candidates <= problem.upper_bounds), axis=1)
    return candidates[inside]


def repair(problem: DiscreteProblem, x, max_steps: int = 1000) -> np.ndarray | None:
    """A feasible allocation near ``x`` (``x`` itself if feasible), or None if the walk gets stuck."""
    x = np.clip(np.asarray(x, dtype=np.int64), 0, problem.upper_bounds)
    current = violation(problem, x)[0]
    for _ in range(max_steps):
        if current == 0 and problem.evaluate(x).feasible[0]:
            return x
        candidates = neighbours(problem, x)
        if len(candidates) == 0:
            return None
        evaluation = problem.evaluate(candidates)
        v, objective = _violation(problem, candidates, evaluation), evaluation.objective
        best = np.lexsort((objective, v))[0]
        if v[best] >= current:
            return None
        x, current = candidates[best], v[best]
    return None


def local_search(problem: DiscreteProblem, x, max_steps: int = 1000) -> np.ndarray:
    """Steepest feasible descent from the feasible allocation ``x``."""
    x = np.asarray(x, dtype=np.int64)
    value = problem.evaluate(x).objective[0]
    for _ in range(max_steps):
        candidates = neighbours(problem, x)
        evaluation = problem.evaluate(candidates)
        objective = np.where(evaluation.feasible, evaluation.objective, np.inf)
        if len(objective) == 0 or objective.min() >= value - 1e-12 * max(1.0, abs(value)):
            return x
        best = int(np.argmin(objective))
        x, value = candidates[best], objective[best]
    return x


def postprocess(problem: DiscreteProblem, allocations: np.ndarray, probabilities: np.ndarray,
                starts: int = 10) -> dict:
    """Repair the most likely infeasible samples and search locally from the best feasible ones.

    Returns ``{"repaired": best allocation after repair or None, "local_search": best allocation after
    local search or None, "repaired_count": samples repaired}`` (allocations as integer arrays).
    """
    order = np.argsort(-probabilities, kind="stable")[: max(starts, 1) * 5]
    evaluation = problem.evaluate(allocations[order])
    repaired = []
    for row, feasible in zip(allocations[order], evaluation.feasible):
        fixed = row if feasible else repair(problem, row)
        if fixed is not None:
            repaired.append(fixed)
    if not repaired:
        return {"repaired": None, "local_search": None, "repaired_count": 0}
    pool = np.unique(np.array(repaired), axis=0)
    objective = problem.evaluate(pool).objective
    best_repaired = pool[int(np.argmin(objective))]
    improved = [local_search(problem, row) for row in pool[np.argsort(objective)[:starts]]]
    improved = np.array(improved)
    best_local = improved[int(np.argmin(problem.evaluate(improved).objective))]
    return {"repaired": best_repaired, "local_search": best_local,
            "repaired_count": int(np.sum(~evaluation.feasible))}

