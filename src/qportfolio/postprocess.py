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
    evaluation = problem.evaluate(x)
    if isinstance(problem, SelectionProblem):
        return np.abs(evaluation.cost - problem.num_selected).astype(float)
    excess = np.maximum(0.0, evaluation.cost - problem.budget) / problem.budget
    if problem.min_return is not None:
        excess += np.maximum(0.0, problem.min_return - evaluation.expected_return) / max(abs(problem.min_return), 1e-12)
    box = np.sum(np.maximum(0, x - problem.upper_bounds) + np.maximum(0, -x), axis=1)
    return excess + box


def neighbours(problem: DiscreteProblem, x: np.ndarray) -> np.ndarray:
    """Allocations one move from ``x`` inside the box: one share (asset) more or less, or one moved."""
    n = len(x)
    eye = np.eye(n, dtype=np.int64)
    if isinstance(problem, SelectionProblem):
        ones, zeros = np.flatnonzero(x == 1), np.flatnonzero(x == 0)
        swaps = [x - eye[i] + eye[j] for i in ones for j in zeros]
        moves = [x + eye[j] for j in zeros] + [x - eye[i] for i in ones] + swaps
    else:
        moves = [x + eye[i] for i in range(n)] + [x - eye[i] for i in range(n)]
        moves += [x - eye[i] + eye[j] for i in range(n) for j in range(n) if i != j]
    candidates = np.array(moves, dtype=np.int64).reshape(-1, n)
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
        v = violation(problem, candidates)
        objective = problem.evaluate(candidates).objective
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

