"""The continuous relaxation of a discrete problem (a convex QP)."""

from __future__ import annotations

import numpy as np

from qportfolio.classical.convex import covariance_factor, solve_convex
from qportfolio.classical.scip import objective_parts
from qportfolio.problems import (
    DiscreteProblem,
    IntegerSharesProblem,
)


def continuous_relaxation(problem: DiscreteProblem) -> tuple[np.ndarray, float]:
    """The continuous relaxation's optimum ``(x, objective)`` (cvxpy + Clarabel, rescaled units)."""
    import cvxpy as cp

    quadratic, linear = objective_parts(problem)
    lower, upper = problem.objective_bounds()
    scale = 1000.0 / max(upper - lower, 1e-300)
    n = problem.num_assets
    x = cp.Variable(n)
    constraints = [x >= 0, x <= problem.upper_bounds.astype(float)]
    if isinstance(problem, IntegerSharesProblem):
        constraints.append((problem.prices / problem.budget) @ x <= 1)
        if problem.min_return is not None:
            unit = max(abs(problem.min_return), 1e-12)
            constraints.append((problem.return_coefficients / unit) @ x >= problem.min_return / unit)
    else:
        constraints.append(cp.sum(x) == problem.num_selected)
    goal = cp.Minimize(cp.sum_squares(covariance_factor(scale * quadratic) @ x) + (scale * linear) @ x)
    program = cp.Problem(goal, constraints)
    value = np.clip(solve_convex(program, x, "the continuous relaxation"), 0.0, problem.upper_bounds.astype(float))
    return value, float(value @ quadratic @ value + linear @ value)


