"""The continuous relaxation of a discrete problem (a convex QP)."""

from __future__ import annotations

import numpy as np

from qportfolio.classical.convex import covariance_factor
from qportfolio.classical.scip import objective_parts
from qportfolio.errors import ProblemError
from qportfolio.problems import (
    DiscreteProblem,
    IntegerSharesProblem,
)

#: Clarabel's statuses that carry a usable solution, and how the failed ones read.
_SOLVED = ("Solved", "AlmostSolved")
_FAILED = {"PrimalInfeasible": "is infeasible", "AlmostPrimalInfeasible": "is infeasible",
           "DualInfeasible": "is unbounded", "AlmostDualInfeasible": "is unbounded"}


def continuous_relaxation(problem: DiscreteProblem) -> tuple[np.ndarray, float]:
    """The continuous relaxation's optimum ``(x, objective)`` (Clarabel, rescaled units).

    ``min ‖F x‖² + S·cᵀx`` (``FᵀF = S·Q``, ``S = 1000/(f_upper − f_lower)``) over ``0 ≤ x ≤ U`` and the problem's
    linear constraints, given to Clarabel directly in the form cvxpy's ``sum_squares`` program takes (variables
    ``(y, x)`` with ``y = F x`` and objective ``yᵀy + S·cᵀx``; the equalities, then the inequalities in the
    order ``x ≥ 0``, ``x ≤ U``, budget, return floor): the same data, so the same answer to the last bit,
    without cvxpy's import (about a second, most of it scipy.stats)."""
    import clarabel
    from scipy import sparse

    quadratic, linear = objective_parts(problem)
    lower, upper = problem.objective_bounds()
    scale = 1000.0 / max(upper - lower, 1e-300)
    n = problem.num_assets
    bounds = problem.upper_bounds.astype(float)
    factor = covariance_factor(scale * quadratic)
    eye, zero = np.eye(n), np.zeros((n, n))
    equalities = [np.hstack([-eye, factor])]
    right = [np.zeros(n)]
    rows = [np.hstack([zero, -eye]), np.hstack([zero, eye])]
    limits = [np.zeros(n), bounds]
    if isinstance(problem, IntegerSharesProblem):
        rows.append(np.concatenate([np.zeros(n), problem.prices / problem.budget])[None, :])
        limits.append(np.ones(1))
        if problem.min_return is not None:
            unit = max(abs(problem.min_return), 1e-12)
            rows.append(np.concatenate([np.zeros(n), -(problem.return_coefficients / unit)])[None, :])
            limits.append(np.array([-(problem.min_return / unit)]))
    else:
        equalities.append(np.concatenate([np.zeros(n), np.ones(n)])[None, :])
        right.append(np.array([float(problem.num_selected)]))
    a = sparse.csc_array(np.vstack(equalities + rows))
    b = np.concatenate(right + limits)
    p = sparse.csc_array(np.diag(np.concatenate([np.full(n, 2.0), np.zeros(n)])))
    q = np.concatenate([np.zeros(n), scale * linear])
    equal = sum(len(e) for e in equalities)
    cones = [clarabel.ZeroConeT(equal), clarabel.NonnegativeConeT(len(b) - equal)]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    solution = clarabel.DefaultSolver(p, q, a, b, cones, settings).solve()
    status = str(solution.status)
    if status not in _SOLVED:
        advice = "check the problem parameters"
        raise ProblemError(f"the continuous relaxation {_FAILED.get(status, f'ended with status {status}')}: {advice}")
    value = np.clip(np.asarray(solution.x, dtype=float)[n:], 0.0, bounds)
    return value, float(value @ quadratic @ value + linear @ value)
