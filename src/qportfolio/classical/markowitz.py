"""Markowitz portfolios: closed forms with short selling, convex QPs long-only, the efficient frontier."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from qportfolio.choices import MarkowitzMethod, check_choice
from qportfolio.classical.convex import covariance_factor, solve_convex
from qportfolio.classical.solution import ClassicalSolution
from qportfolio.errors import (
    ProblemError,
)
from qportfolio.problems import (
    MarkowitzProblem,
)

MAX_CONDITION = 1e12


def solve_markowitz(problem: MarkowitzProblem, method: str = "auto") -> ClassicalSolution:
    """The optimum of a continuous Markowitz problem.

    ``method``: ``auto`` (closed form with shorts, convex solver long-only), ``closed_form`` (shorts
    only) or ``convex`` (cvxpy + Clarabel, any case; the independent check of the closed forms).
    """
    method = check_choice(method, MarkowitzMethod, "method", ProblemError)
    started = time.perf_counter()
    proven = True
    if method == "closed_form" or (method == "auto" and problem.allow_short):
        if not problem.allow_short:
            raise ProblemError("the closed forms ignore w ≥ 0: use method convex for a long-only problem, "
                               "or set problem.allow_short: true")
        weights = markowitz_solution_closed_form(problem)
        label = "closed_form"
    else:
        weights, proven = _convex_markowitz(problem)
        label = "convex_qp" if problem.objective in ("min_variance", "max_sharpe", "utility_variance") else "convex_socp"
    weights = np.asarray(weights, dtype=float)
    return ClassicalSolution(f"classical_exact ({label})", weights, problem.evaluate(weights[None, :]), proven,
                             time.perf_counter() - started, problem=problem)


@dataclass(frozen=True)
class FrontierConstants:
    """``a = 1ᵀΣ⁻¹1, b = 1ᵀΣ⁻¹μ, c = μᵀΣ⁻¹μ, d = ac − b²`` and the two solves ``Σ⁻¹1``, ``Σ⁻¹μ``."""

    a: float
    b: float
    c: float
    d: float
    inv_ones: np.ndarray
    inv_mu: np.ndarray

    @property
    def gmv_return(self) -> float:
        return self.b / self.a

    @property
    def gmv_volatility(self) -> float:
        return float(np.sqrt(1.0 / self.a))

    @property
    def slope_squared(self) -> float:
        """``d/a``: the squared slope of the frontier's asymptote (``σ² = 1/a + (r − b/a)²·a/d``)."""
        return max(self.d / self.a, 0.0)

    def weights_at(self, target_return: float) -> np.ndarray:
        if self.d <= 1e-18 * max(self.a * self.c, 1e-300):
            raise ProblemError("all assets have the same expected return: a target return does not pin the "
                               "portfolio down")
        lam, gam = (self.c - self.b * target_return) / self.d, (self.a * target_return - self.b) / self.d
        return lam * self.inv_ones + gam * self.inv_mu


def check_invertible(sigma: np.ndarray) -> None:
    """Stop with a :class:`ProblemError` if Σ is singular or too ill-conditioned to solve with."""
    eigenvalues = np.linalg.eigvalsh(sigma)
    largest, smallest = float(eigenvalues[-1]), float(eigenvalues[0])
    if largest <= 0 or smallest <= largest / MAX_CONDITION:
        condition = np.inf if smallest <= 0 else largest / smallest
        raise ProblemError(
            f"the covariance matrix is singular or nearly so (condition number {condition:.3g}): the closed forms "
            "need an invertible one; use data.covariance: ledoit_wolf (shrinkage), more price history than assets, "
            "or drop assets that move together"
        )


def frontier_constants(mu: np.ndarray, sigma: np.ndarray) -> FrontierConstants:
    check_invertible(sigma)
    ones = np.ones(len(mu))
    try:
        inv_ones, inv_mu = np.linalg.solve(sigma, ones), np.linalg.solve(sigma, mu)
    except np.linalg.LinAlgError:
        raise ProblemError("the covariance matrix is singular: use data.covariance: ledoit_wolf") from None
    a, b, c = float(ones @ inv_ones), float(ones @ inv_mu), float(mu @ inv_mu)
    return FrontierConstants(a, b, c, a * c - b * b, inv_ones, inv_mu)


def markowitz_closed_form(mu: np.ndarray, sigma: np.ndarray, target_return: float | None) -> np.ndarray:
    """Lagrange-multiplier solution of ``min wᵀΣw s.t. 1ᵀw = 1 (, μᵀw = r)``, shorts allowed."""
    k = frontier_constants(np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float))
    if target_return is None:
        return k.inv_ones / k.a
    return k.weights_at(target_return)


def tangency_portfolio(mu: np.ndarray, sigma: np.ndarray, risk_free: float = 0.0) -> np.ndarray:
    """Maximum Sharpe ratio with shorts: ``Σ⁻¹(μ − r_f1) / 1ᵀΣ⁻¹(μ − r_f1)``."""
    k = frontier_constants(np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float))
    y = k.inv_mu - risk_free * k.inv_ones
    denominator = k.b - risk_free * k.a
    if denominator <= 1e-12 * max(abs(k.b), abs(risk_free * k.a), 1e-300):
        raise ProblemError(
            f"with short selling the Sharpe ratio has no maximum when risk_free ({risk_free:.6g}) is at or above the "
            f"global-minimum-variance return ({k.gmv_return:.6g}): lower problem.risk_free or set allow_short: false"
        )
    return y / denominator


def markowitz_solution_closed_form(problem: MarkowitzProblem) -> np.ndarray:
    """Closed-form weights for every objective, short selling allowed (see the module docstring)."""
    mu, sigma = problem.mu, problem.sigma
    k = frontier_constants(mu, sigma)
    objective = problem.objective
    flat = k.d <= 1e-18 * max(k.a * k.c, 1e-300)  # every asset has the same expected return
    if objective == "min_variance":
        return k.inv_ones / k.a if problem.target_return is None else k.weights_at(problem.target_return)
    if objective == "max_sharpe":
        return tangency_portfolio(mu, sigma, problem.risk_free)
    if objective == "max_return":
        sigma0 = float(problem.max_volatility)
        if sigma0 < k.gmv_volatility * (1 - 1e-12):
            raise ProblemError(
                f"problem.max_volatility {sigma0:.6g} is below the lowest volatility any portfolio reaches "
                f"({k.gmv_volatility:.6g}, the global minimum variance portfolio): raise it"
            )
        if flat:
            return k.inv_ones / k.a
        target = k.gmv_return + np.sqrt(k.slope_squared * max(sigma0**2 - 1.0 / k.a, 0.0))
        return k.weights_at(target)
    q = float(problem.risk_aversion)
    if objective == "utility_variance":
        if q <= 0:
            raise ProblemError("with short selling, mu'w - q w'Sigma w is unbounded for q = 0: set "
                               "problem.risk_aversion > 0")
        return k.inv_ones / k.a + (k.inv_mu - k.gmv_return * k.inv_ones) / (2 * q)
    # utility_volatility: maximise r − β·σ(r) along the frontier
    s = k.slope_squared
    if flat:
        return k.inv_ones / k.a
    if q**2 <= s * (1 + 1e-12):
        raise ProblemError(
            f"with short selling, mu'w - beta*sigma is unbounded for beta = {q:.6g} ≤ {np.sqrt(s):.6g} (the slope of "
            "the frontier's asymptote): raise problem.risk_aversion or set allow_short: false"
        )
    target = k.gmv_return + s / np.sqrt(k.a * (q**2 - s))
    return k.weights_at(target)


def _convex_markowitz(problem: MarkowitzProblem) -> tuple[np.ndarray, bool]:
    """Solve any Markowitz objective with cvxpy + Clarabel; returns ``(weights, proven_optimal)``.

    Per-period variances (~1e-4) and returns (~1e-3) are badly scaled for an interior-point solver:
    the model is written in units where the largest variance and the largest |return| are one.
    """
    import cvxpy as cp

    mu, sigma, n = problem.mu, problem.sigma, problem.num_assets
    sigma_unit = max(float(np.max(np.diag(sigma))), 1e-300)
    mu_unit = max(float(np.max(np.abs(mu))), abs(problem.risk_free), 1e-300)
    mu_s = mu / mu_unit
    factor = covariance_factor(sigma / sigma_unit)
    objective = problem.objective
    long_only = not problem.allow_short

    if objective == "min_variance" and long_only and problem.target_return is not None and \
            problem.target_return >= mu.max() - 1e-12 * abs(mu.max()):
        # The best return long-only is reached only by holding the best asset(s): no QP needed at the corner.
        best = np.isclose(mu, mu.max(), rtol=0, atol=1e-15)
        if best.sum() == 1:
            return best.astype(float), True
        sub = MarkowitzProblem(tuple(np.array(problem.tickers)[best]), mu[best], sigma[np.ix_(best, best)])
        weights = np.zeros(n)
        weights[best], proven = _convex_markowitz(sub)
        return weights, proven
    if objective == "max_sharpe" and long_only and np.all(mu - problem.risk_free <= 0):
        raise ProblemError(
            f"no asset returns more than risk_free ({problem.risk_free:.6g}) per period, so long-only the Sharpe "
            "ratio has no positive maximum: lower problem.risk_free or allow short selling"
        )
    if objective == "max_return":
        gmv = MarkowitzProblem(problem.tickers, mu, sigma, None, problem.allow_short)
        floor = float(np.sqrt(gmv.evaluate(_convex_markowitz(gmv)[0]).variance[0]))
        if problem.max_volatility < floor * (1 - 1e-6):
            raise ProblemError(
                f"problem.max_volatility {problem.max_volatility:.6g} is below the lowest volatility any "
                f"{'long-only ' if long_only else ''}portfolio reaches ({floor:.6g}, the global minimum variance "
                "portfolio): raise it"
            )

    if objective == "max_sharpe":
        y = cp.Variable(n)
        excess = (mu - problem.risk_free) / mu_unit
        constraints = [excess @ y == 1] + ([y >= 0] if long_only else [])
        program = cp.Problem(cp.Minimize(cp.sum_squares(factor @ y)), constraints)
        variable = y
    else:
        w = cp.Variable(n)
        variable = w
        constraints = [cp.sum(w) == 1] + ([w >= 0] if long_only else [])
        if objective == "min_variance":
            if problem.target_return is not None:
                constraints.append(mu_s @ w == problem.target_return / mu_unit)
            goal = cp.Minimize(cp.sum_squares(factor @ w))
        elif objective == "max_return":
            constraints.append(cp.norm(factor @ w, 2) <= problem.max_volatility / np.sqrt(sigma_unit))
            goal = cp.Maximize(mu_s @ w)
        elif objective == "utility_variance":
            goal = cp.Maximize(mu_s @ w - problem.risk_aversion * sigma_unit / mu_unit * cp.sum_squares(factor @ w))
        else:
            goal = cp.Maximize(mu_s @ w - problem.risk_aversion * np.sqrt(sigma_unit) / mu_unit
                               * cp.norm(factor @ w, 2))
        program = cp.Problem(goal, constraints)
    value = solve_convex(program, variable, f"the Markowitz {objective} problem",
                         "check target_return / max_volatility / risk_aversion, or set allow_short: false")
    proven = program.status == cp.OPTIMAL
    if objective == "max_sharpe":
        total = value.sum()
        if total <= 0:
            raise ProblemError(
                f"with short selling the Sharpe ratio has no maximum when risk_free ({problem.risk_free:.6g}) is at "
                "or above the global-minimum-variance return: lower problem.risk_free or set allow_short: false"
            )
        value = value / total
    if long_only:
        value = np.clip(value, 0.0, None)
    return value / value.sum(), proven


def efficient_frontier(problem: MarkowitzProblem, points: int = 30) -> list[tuple[float, float, np.ndarray]]:
    """``(volatility, expected return, weights)`` along minimum-variance portfolios, GMV up to the best return.

    Long-only the curve ends at the best single asset; with shorts it runs to twice that distance above
    the GMV return. Every point is a minimum-variance solve at its target return (closed form with shorts,
    one parametrised convex QP long-only).
    """
    gmv = solve_markowitz(MarkowitzProblem(problem.tickers, problem.mu, problem.sigma, None, problem.allow_short))
    low = float(gmv.expected_return)
    high = float(problem.mu.max()) if not problem.allow_short else low + 2 * (float(problem.mu.max()) - low)
    targets = np.linspace(low, high, points)
    if problem.allow_short:
        k = frontier_constants(problem.mu, problem.sigma)
        weights = [k.inv_ones / k.a if i == 0 else k.weights_at(float(t)) for i, t in enumerate(targets)]
    else:
        weights = _long_only_frontier_weights(problem, targets, gmv.vector)
    frontier = []
    for target, w in zip(targets, weights):
        variance = float(w @ problem.sigma @ w)
        frontier.append((float(np.sqrt(max(variance, 0.0))), float(target), np.asarray(w)))
    return frontier


def _long_only_frontier_weights(problem: MarkowitzProblem, targets: np.ndarray, gmv: np.ndarray) -> list[np.ndarray]:
    import cvxpy as cp

    mu, n = problem.mu, problem.num_assets
    sigma_unit = max(float(np.max(np.diag(problem.sigma))), 1e-300)
    mu_unit = max(float(np.max(np.abs(mu))), 1e-300)
    factor = covariance_factor(problem.sigma / sigma_unit)
    w, target = cp.Variable(n), cp.Parameter()
    program = cp.Problem(cp.Minimize(cp.sum_squares(factor @ w)),
                         [cp.sum(w) == 1, w >= 0, (mu / mu_unit) @ w == target])
    weights = []
    for k, t in enumerate(targets):
        if k == 0:
            weights.append(np.asarray(gmv, dtype=float))
            continue
        if t >= mu.max() - 1e-12 * abs(mu.max()):
            weights.append(solve_markowitz(MarkowitzProblem(problem.tickers, mu, problem.sigma, float(t))).vector)
            continue
        target.value = float(t) / mu_unit
        value = np.clip(solve_convex(program, w, f"the frontier point at target return {t:.6g}"), 0.0, None)
        weights.append(value / value.sum())
    return weights


