"""Classical answers on the same instance the quantum side sees.

* :func:`solve_exact` — the proven optimum of a discrete problem by enumeration: every integer
  allocation in the share box ``Π(U_i + 1)`` (chunked and vectorised), or every K-subset for selection.
* :func:`solve_markowitz` — minimum variance at a target return, or the global minimum variance:
  closed form by Lagrange multipliers when short selling is allowed
  (``w = Σ⁻¹(λ1 + γμ)`` with the 2×2 system from ``1ᵀw = 1, μᵀw = r``; GMV ``w = Σ⁻¹1 / 1ᵀΣ⁻¹1``),
  a convex QP (cvxpy with Clarabel) when long-only.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from qportfolio.errors import ProblemError, ResourceError
from qportfolio.problem import DiscreteProblem, Evaluation, IntegerSharesProblem, MarkowitzProblem, SelectionProblem

#: Largest number of candidate allocations enumerated by :func:`solve_exact`.
MAX_ENUMERATED = 200_000_000
CHUNK = 1_000_000


@dataclass(frozen=True)
class ClassicalSolution:
    """One classical answer: the allocation, its metrics, and how sure we are of it."""

    method: str
    allocation: np.ndarray
    evaluation: Evaluation
    proven_optimal: bool
    seconds: float
    worst_feasible_objective: float | None = None
    num_feasible: int | None = None
    optimal_allocations: np.ndarray | None = None

    @property
    def objective(self) -> float:
        return float(self.evaluation.objective[0])


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


def solve_exact(problem: DiscreteProblem, limit: int = MAX_ENUMERATED) -> ClassicalSolution:
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
        tolerance = 1e-9 * max(1.0, abs(low)) if np.isfinite(low) else 0.0
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


def solve_markowitz(problem: MarkowitzProblem) -> ClassicalSolution:
    """Minimum variance (at the target return, if any): closed form with shorts, QP when long-only."""
    started = time.perf_counter()
    if problem.allow_short:
        weights = markowitz_closed_form(problem.mu, problem.sigma, problem.target_return)
        method = "closed_form"
    else:
        weights = _long_only_minimum_variance(problem)
        method = "convex_qp"
    weights = np.asarray(weights, dtype=float)
    return ClassicalSolution(f"classical_exact ({method})", weights, problem.evaluate(weights[None, :]), True,
                             time.perf_counter() - started)


def markowitz_closed_form(mu: np.ndarray, sigma: np.ndarray, target_return: float | None) -> np.ndarray:
    """Lagrange-multiplier solution of ``min wᵀΣw s.t. 1ᵀw = 1 (, μᵀw = r)``, shorts allowed."""
    ones = np.ones(len(mu))
    try:
        inv_ones, inv_mu = np.linalg.solve(sigma, ones), np.linalg.solve(sigma, mu)
    except np.linalg.LinAlgError:
        raise ProblemError("the covariance matrix is singular: use data.covariance: ledoit_wolf") from None
    if target_return is None:
        return inv_ones / (ones @ inv_ones)
    a, b, c = ones @ inv_ones, ones @ inv_mu, mu @ inv_mu
    determinant = a * c - b * b
    if determinant <= 1e-18 * max(a * c, 1e-300):
        raise ProblemError("all assets have the same expected return: a target return does not pin the portfolio down")
    lam, gam = (c - b * target_return) / determinant, (a * target_return - b) / determinant
    return lam * inv_ones + gam * inv_mu


def _long_only_minimum_variance(problem: MarkowitzProblem) -> np.ndarray:
    import cvxpy as cp

    # Per-period variances (~1e-4) and returns (~1e-3) are badly scaled for an interior-point solver:
    # solve in units where the largest variance and the largest |return| are one.
    sigma_unit = float(np.max(np.diag(problem.sigma)))
    mu_unit = max(float(np.max(np.abs(problem.mu))), 1e-300)
    w = cp.Variable(problem.num_assets)
    constraints = [cp.sum(w) == 1, w >= 0]
    if problem.target_return is not None:
        constraints.append((problem.mu / mu_unit) @ w == problem.target_return / mu_unit)
    if problem.target_return is not None and problem.target_return >= problem.mu.max() - 1e-12 * abs(problem.mu.max()):
        # The best return long-only is reached only by holding the best asset(s): no QP needed at the corner.
        best = np.isclose(problem.mu, problem.mu.max(), rtol=0, atol=1e-15)
        return markowitz_closed_form(problem.mu[best], problem.sigma[np.ix_(best, best)], None) if best.sum() > 1 \
            else best.astype(float)
    sigma = cp.psd_wrap(problem.sigma / sigma_unit)
    result = cp.Problem(cp.Minimize(cp.quad_form(w, sigma)), constraints)
    try:
        result.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as error:
        raise ProblemError(f"the long-only Markowitz QP failed ({error}): check target_return and the covariance") from None
    if result.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or w.value is None:
        raise ProblemError(f"the long-only Markowitz QP ended with status {result.status}: check target_return")
    return np.clip(np.asarray(w.value), 0.0, None) / np.clip(np.asarray(w.value), 0.0, None).sum()


def efficient_frontier(problem: MarkowitzProblem, points: int = 30) -> list[tuple[float, float, np.ndarray]]:
    """``(volatility, expected return, weights)`` along minimum-variance portfolios, GMV up to the best return."""
    gmv = solve_markowitz(MarkowitzProblem(problem.tickers, problem.mu, problem.sigma, None, problem.allow_short))
    low = float(gmv.evaluation.expected_return[0])
    high = float(problem.mu.max()) if not problem.allow_short else low + 2 * (float(problem.mu.max()) - low)
    frontier = []
    for target in np.linspace(low, high, points):
        solution = solve_markowitz(MarkowitzProblem(problem.tickers, problem.mu, problem.sigma, float(target),
                                                    problem.allow_short))
        frontier.append((float(np.sqrt(solution.evaluation.variance[0])), float(target), solution.allocation))
    return frontier
