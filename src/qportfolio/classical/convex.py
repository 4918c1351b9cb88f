"""One cvxpy solve-and-check step (Clarabel) for the Markowitz QPs, the frontier and relaxations."""

from __future__ import annotations

import warnings

import numpy as np

from qportfolio.errors import (
    ProblemError,
)


def solve_convex(program, variable, what: str, advice: str = "check the problem parameters") -> np.ndarray:
    """Solve a cvxpy program with Clarabel; its solution, or a one-line :class:`ProblemError` naming
    ``what`` failed and how (solver error, unbounded, infeasible, other status)."""
    import cvxpy as cp

    try:
        with warnings.catch_warnings():  # "Solution may be inaccurate": the status below says so, not the terminal
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            program.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as error:
        raise ProblemError(f"{what} failed ({error}): {advice}") from None
    if program.status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
        raise ProblemError(f"{what} is unbounded: {advice}")
    if program.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise ProblemError(f"{what} is infeasible: {advice}")
    if program.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or variable.value is None:
        raise ProblemError(f"{what} ended with status {program.status}: {advice}")
    return np.asarray(variable.value, dtype=float)




def covariance_factor(sigma: np.ndarray) -> np.ndarray:
    """``F`` with ``FᵀF = Σ`` (symmetric square root through the eigendecomposition; works for PSD Σ)."""
    values, vectors = np.linalg.eigh(sigma)
    return np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T


