"""Classical answers on the same instance the quantum side sees.

* :func:`solve_exact` — the proven optimum of a discrete problem by enumeration: every integer
  allocation in the share box ``Π(U_i + 1)`` (chunked and vectorised), or every K-subset for selection.
* :func:`solve_scip` — the same optimum from a mixed-integer solver (SCIP through PySCIPOpt) for
  instances too large to enumerate: the convex MIQP of the original constrained problem, with the
  quadratic objective moved into an epigraph constraint ``t ≥ xᵀQx``. SCIP's relative MIP gap is
  recorded; the answer is *proven optimal* only when SCIP reports ``optimal`` and the gap is zero
  within :data:`PROVEN_GAP`.
* :func:`solve_markowitz` — the five continuous Markowitz objectives (see
  :class:`~qportfolio.problem.MarkowitzProblem`). With short selling, closed forms from the Lagrange
  conditions of ``min wᵀΣw s.t. 1ᵀw = 1 (, μᵀw = r)``; with ``a = 1ᵀΣ⁻¹1, b = 1ᵀΣ⁻¹μ, c = μᵀΣ⁻¹μ,
  d = ac − b²`` the frontier is ``σ²(r) = 1/a + (r − b/a)²·a/d``:

  - global minimum variance ``w = Σ⁻¹1 / a``; at a target ``r``, ``w = Σ⁻¹(λ1 + γμ)`` with
    ``λ = (c − br)/d, γ = (ar − b)/d``;
  - maximum return at volatility ``σ₀``: the frontier point with ``r = b/a + √(d/a·(σ₀² − 1/a))``;
  - maximum Sharpe ratio (tangency): ``w = Σ⁻¹(μ − r_f1) / 1ᵀΣ⁻¹(μ − r_f1)`` (needs ``r_f < b/a``);
  - mean–variance utility ``max μᵀw − q·wᵀΣw``: ``w = Σ⁻¹1/a + (Σ⁻¹μ − (b/a)Σ⁻¹1)/(2q)``;
  - mean–volatility utility ``max μᵀw − β·σ``: the frontier point with
    ``r = b/a + (d/a)/√(a(β² − d/a))`` (bounded only when ``β² > d/a``).

  Long-only (and, on request, every case): a convex program solved by cvxpy with Clarabel, in
  rescaled units (see :func:`_convex_markowitz`). Maximum Sharpe uses the homogenisation
  ``min yᵀΣy s.t. (μ − r_f1)ᵀy = 1 (, y ≥ 0)``, ``w = y / 1ᵀy``.
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
#: SCIP's answer counts as proven optimal when its status is optimal and its gap is at most this
#: (relative, or absolute in objective units, whichever is looser).
PROVEN_GAP = 1e-9
#: Largest condition number of Σ the closed forms accept (they solve linear systems in Σ).
MAX_CONDITION = 1e12
#: The Markowitz solution paths :func:`solve_markowitz` accepts.
MARKOWITZ_METHODS = ("auto", "closed_form", "convex")


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
    #: ``ok`` | ``timeout`` (best incumbent, not proven) — solvers that can stop early set it.
    status: str = "ok"
    #: Relative optimality gap reported by a MIP solver (0 when proven), else None.
    gap: float | None = None
    #: The solver's proven bound on the optimum (a lower bound, the problem being a minimisation).
    bound: float | None = None
    message: str | None = None

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



def solve_convex(program, variable, what: str, advice: str = "check the problem parameters") -> np.ndarray:
    """Solve a cvxpy program with Clarabel; its solution, or a one-line :class:`ProblemError` naming
    ``what`` failed and how (solver error, unbounded, infeasible, other status)."""
    import cvxpy as cp

    try:
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


# --------------------------------------------------------------------------- Markowitz


def solve_markowitz(problem: MarkowitzProblem, method: str = "auto") -> ClassicalSolution:
    """The optimum of a continuous Markowitz problem.

    ``method``: ``auto`` (closed form with shorts, convex solver long-only), ``closed_form`` (shorts
    only) or ``convex`` (cvxpy + Clarabel, any case; the independent check of the closed forms).
    """
    if method not in MARKOWITZ_METHODS:
        raise ProblemError(f"unknown Markowitz method {method!r}: use one of {', '.join(MARKOWITZ_METHODS)}")
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
                             time.perf_counter() - started)


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


def covariance_factor(sigma: np.ndarray) -> np.ndarray:
    """``F`` with ``FᵀF = Σ`` (symmetric square root through the eigendecomposition; works for PSD Σ)."""
    values, vectors = np.linalg.eigh(sigma)
    return np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T


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
    low = float(gmv.evaluation.expected_return[0])
    high = float(problem.mu.max()) if not problem.allow_short else low + 2 * (float(problem.mu.max()) - low)
    targets = np.linspace(low, high, points)
    if problem.allow_short:
        k = frontier_constants(problem.mu, problem.sigma)
        weights = [k.inv_ones / k.a if i == 0 else k.weights_at(float(t)) for i, t in enumerate(targets)]
    else:
        weights = _long_only_frontier_weights(problem, targets, gmv.allocation)
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
            weights.append(solve_markowitz(MarkowitzProblem(problem.tickers, mu, problem.sigma, float(t))).allocation)
            continue
        target.value = float(t) / mu_unit
        value = np.clip(solve_convex(program, w, f"the frontier point at target return {t:.6g}"), 0.0, None)
        weights.append(value / value.sum())
    return weights


# --------------------------------------------------------------------------- SCIP


#: SCIP statuses → the baseline vocabulary (``ok``, ``timeout``, ``infeasible``, ``failed``).
_SCIP_STATUS = {"optimal": "ok", "timelimit": "timeout", "infeasible": "infeasible", "gaplimit": "ok",
                "nodelimit": "timeout", "totalnodelimit": "timeout", "stallnodelimit": "timeout",
                "memlimit": "timeout", "sollimit": "timeout", "bestsollimit": "timeout", "userinterrupt": "failed",
                "unbounded": "failed", "inforunbd": "infeasible"}


@dataclass(frozen=True)
class ScipOutcome:
    """What SCIP did: its status (and ours), the best allocation found (or None), gap and bounds."""

    scip_status: str
    status: str
    allocation: np.ndarray | None
    primal: float | None
    dual: float | None
    gap: float | None
    proven_optimal: bool
    seconds: float
    nodes: int
    message: str | None = None


def objective_parts(problem: DiscreteProblem) -> tuple[np.ndarray, np.ndarray]:
    """``(Q, c)`` with objective ``xᵀQx + cᵀx`` in the problem's own units."""
    if isinstance(problem, IntegerSharesProblem):
        if problem.min_return is None:
            return problem.risk_aversion * problem.share_covariance, -problem.return_coefficients
        return problem.share_covariance, np.zeros(problem.num_assets)
    return problem.risk_aversion * problem.sigma, -problem.mu


def scip_solve(problem: DiscreteProblem, time_limit: float = 60.0, seed: int = 0) -> ScipOutcome:
    """Solve the discrete problem's convex MIQP with SCIP; never raises for solver trouble (see status).

    Model: integer ``0 ≤ x_i ≤ U_i`` (binary for selection), ``min t + S·cᵀx`` s.t. ``y = Fx``,
    ``t ≥ ‖y‖²`` (``FᵀF = S·Q``, so ``‖y‖² = S·xᵀQx``: a convex quadratic cone SCIP handles far better than
    the expanded ``xᵀQx``) and the problem's linear constraints (budget and return floor, or
    cardinality). The objective is scaled by ``S = 1000/(f_upper − f_lower)`` so that SCIP's absolute
    tolerances are small next to it, and the feasibility tolerance is tightened to 1e-9. The answer is
    re-evaluated on the original problem.
    """
    from pyscipopt import Model, quicksum

    started = time.perf_counter()
    n = problem.num_assets
    quadratic, linear = objective_parts(problem)
    lower, upper = problem.objective_bounds()
    scale = 1000.0 / max(upper - lower, 1e-300)
    model = Model("qportfolio")
    model.hideOutput()
    model.setParam("limits/time", max(float(time_limit), 0.0))
    model.setParam("randomization/randomseedshift", int(seed) % 2**31)
    model.setParam("numerics/feastol", 1e-9)
    model.setParam("limits/gap", 0.0)
    model.setParam("limits/absgap", 0.0)
    model.setParam("parallel/maxnthreads", 1)
    binary = isinstance(problem, SelectionProblem)
    x = [model.addVar(f"x{i}", vtype="B" if binary else "I", lb=0, ub=int(problem.upper_bounds[i])) for i in range(n)]
    t = model.addVar("t", vtype="C", lb=None, ub=None)
    factor = covariance_factor(scale * quadratic)
    factor = factor[np.any(np.abs(factor) > 1e-15 * max(float(np.abs(factor).max()), 1e-300), axis=1)]
    y = [model.addVar(f"y{k}", vtype="C", lb=None, ub=None) for k in range(len(factor))]
    for k, row in enumerate(factor):
        model.addCons(y[k] == quicksum(float(row[i]) * x[i] for i in range(n) if row[i] != 0))
    model.addCons(t >= quicksum(v * v for v in y))
    if isinstance(problem, IntegerSharesProblem):
        model.addCons(quicksum(float(problem.prices[i]) * x[i] for i in range(n)) <= problem.budget)
        if problem.min_return is not None:
            gains = problem.return_coefficients
            model.addCons(quicksum(float(gains[i]) * x[i] for i in range(n)) >= problem.min_return)
    else:
        model.addCons(quicksum(x) == problem.num_selected)
    model.setObjective(t + quicksum(float(scale * linear[i]) * x[i] for i in range(n) if linear[i] != 0), "minimize")
    try:
        model.optimize()
    except Exception as error:  # noqa: BLE001 — SCIP raised: report it, never take the other methods down
        return ScipOutcome("error", "failed", None, None, None, None, False, time.perf_counter() - started, 0,
                           f"SCIP failed: {type(error).__name__}: {error}")
    scip_status = model.getStatus()
    status = _SCIP_STATUS.get(scip_status, "failed")
    nodes = int(model.getNNodes())
    if model.getNSols() == 0:
        message = {"timeout": f"SCIP stopped ({scip_status}) after {time.perf_counter() - started:.3g} s with no "
                              "feasible allocation: raise the time limit",
                   "infeasible": "SCIP proved that no allocation meets every constraint: lower problem.min_return "
                                 "or raise problem.budget"}.get(status, f"SCIP ended with status {scip_status} and no "
                                                                        "solution")
        return ScipOutcome(scip_status, status if status != "ok" else "failed", None, None, None, None, False,
                           time.perf_counter() - started, nodes, message)
    solution = model.getBestSol()
    allocation = np.array([round(model.getSolVal(solution, v)) for v in x], dtype=np.int64)
    primal = model.getPrimalbound() / scale
    dual = model.getDualbound() / scale
    gap = float(model.getGap())
    gap = gap if np.isfinite(gap) and gap < 1e19 else None  # SCIP writes "no bound yet" as 1e20
    absolute = abs(primal - dual)
    proven = scip_status == "optimal" and gap is not None and (
        gap <= PROVEN_GAP or absolute <= PROVEN_GAP * max(1.0, abs(primal)))
    message = None
    if status == "timeout":
        gap_text = "no bound yet" if gap is None else f"relative gap {gap:.3g}"
        message = (f"SCIP stopped ({scip_status}) after {time.perf_counter() - started:.3g} s with {gap_text}: the "
                   "allocation is the best found, not proven optimal; raise the time limit")
    elif status == "ok" and not proven:
        message = f"SCIP reported {scip_status} with gap {gap}: not counted as proven optimal"
    evaluation = problem.evaluate(allocation[None, :])
    if not evaluation.feasible[0]:
        status, proven = "failed", False
        message = "SCIP's answer breaks a constraint on the original problem (solver tolerance): not used"
    dual = float(dual) if np.isfinite(dual) and abs(dual) < 1e19 / scale else None
    return ScipOutcome(scip_status, status, allocation, float(primal), dual, gap, proven,
                       time.perf_counter() - started, nodes, message)


def solve_scip(problem: DiscreteProblem, time_limit: float = 60.0, seed: int = 0) -> ClassicalSolution:
    """SCIP's answer as a :class:`ClassicalSolution` (method ``scip``), for when enumeration is too big.

    ``proven_optimal`` is True only when SCIP proved optimality with a zero gap. With a time-out and an
    incumbent, the incumbent comes back with ``status="timeout"``, its ``gap`` and ``bound``. Raises
    :class:`ProblemError` when SCIP proves the instance infeasible and :class:`ResourceError` when it
    found nothing within the time limit or failed.
    """
    outcome = scip_solve(problem, time_limit, seed)
    if outcome.allocation is None or outcome.status == "failed":
        if outcome.status == "infeasible":
            raise ProblemError(outcome.message or "SCIP proved the instance infeasible")
        raise ResourceError(outcome.message or f"SCIP ended with status {outcome.scip_status}")
    return ClassicalSolution("scip", outcome.allocation, problem.evaluate(outcome.allocation[None, :]),
                             outcome.proven_optimal, outcome.seconds, status=outcome.status, gap=outcome.gap,
                             bound=outcome.dual, message=outcome.message)
