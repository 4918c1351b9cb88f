"""The three portfolio problems, validated on construction.

Notation (DESIGN.md): ``n`` assets, ``mu`` the expected return per period per dollar held (n),
``sigma`` the covariance of per-period returns (n × n), ``prices`` the last close in dollars per share.

* :class:`IntegerSharesProblem` — whole shares ``x_i ∈ {0, …, U_i}``, dollars held ``d = p ∘ x``,
  ``min dᵀΣd  s.t.  pᵀx ≤ B,  μᵀd ≥ R`` (no short selling, no fractions, no costs); without a return
  floor, ``min q·dᵀΣd − μᵀd  s.t.  pᵀx ≤ B``.
* :class:`SelectionProblem` — ``x ∈ {0,1}ⁿ``, ``min q·xᵀΣx − μᵀx  s.t.  1ᵀx = K``.
* :class:`MarkowitzProblem` — continuous weights, ``1ᵀw = 1 (, w ≥ 0)``: minimum variance (at a target
  return), maximum return at a volatility cap, maximum Sharpe ratio, or a mean–variance / mean–volatility utility.

Every problem evaluates many candidate allocations at once (one per row) on the *original*
constrained problem: objective, variance, expected return, cost and feasibility.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qportfolio.errors import ProblemError

#: Relative tolerance used when judging constraints on floating-point data.
FEASIBILITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Evaluation:
    """Metrics of ``m`` allocations on the original problem; every field has shape ``(m,)``."""

    objective: np.ndarray
    variance: np.ndarray
    expected_return: np.ndarray
    cost: np.ndarray
    feasible: np.ndarray

    def row(self, i: int) -> dict:
        return {
            "objective": float(self.objective[i]),
            "variance": float(self.variance[i]),
            "expected_return": float(self.expected_return[i]),
            "cost": float(self.cost[i]),
            "feasible": bool(self.feasible[i]),
        }


def _validated_estimates(tickers, mu, sigma) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    tickers = tuple(str(t) for t in tickers)
    mu = np.asarray(mu, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    n = len(tickers)
    if n == 0:
        raise ProblemError("the problem has no assets: list at least one ticker in data.assets")
    if len(set(tickers)) != n:
        raise ProblemError(f"duplicate tickers {tickers}: list each asset once")
    if mu.shape != (n,) or sigma.shape != (n, n):
        raise ProblemError(
            f"mu has shape {mu.shape} and sigma {sigma.shape}, expected ({n},) and ({n}, {n}) for {n} tickers"
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ProblemError("mu or sigma contains NaN or infinity: check the price data for gaps")
    scale = max(float(np.max(np.abs(sigma))), 1e-300)
    if np.max(np.abs(sigma - sigma.T)) > 1e-10 * scale:
        raise ProblemError("the covariance matrix is not symmetric: pass a valid covariance estimate")
    sigma = 0.5 * (sigma + sigma.T)
    smallest = float(np.linalg.eigvalsh(sigma)[0])
    if smallest < -1e-10 * scale:
        raise ProblemError(
            f"the covariance matrix is not positive semidefinite (smallest eigenvalue {smallest:.3g}): "
            "use data.covariance: ledoit_wolf or more price history"
        )
    return tickers, mu, sigma


def _as_rows(x, n: int) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != n:
        raise ProblemError(f"allocations must have {n} columns, got shape {x.shape}")
    return x


def _quadratic_form(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``xᵢᵀ M xᵢ`` for every row ``xᵢ`` of ``x``."""
    return np.einsum("ij,ij->i", x @ matrix, x)


@dataclass(frozen=True)
class IntegerSharesProblem:
    """Whole shares under a dollar budget (the seed formulation).

    ``min dᵀΣd  s.t. pᵀx ≤ B, μᵀd ≥ R, x_i ∈ {0, …, U_i}`` with ``d = p ∘ x`` and
    ``U_i = min(⌊B / p_i⌋, max_shares_i)``. The objective is the variance of the dollar return per
    period ($²). With ``min_return=None`` the objective is ``q·dᵀΣd − μᵀd`` with ``q = risk_aversion``
    (per dollar).
    """

    tickers: tuple[str, ...]
    mu: np.ndarray
    sigma: np.ndarray
    prices: np.ndarray
    budget: float
    min_return: float | None = None
    max_shares: int | tuple[int, ...] | None = None
    risk_aversion: float = 1.0
    upper_bounds: np.ndarray = field(init=False, repr=False)

    kind = "integer_shares"
    variable_unit = "shares"

    def __post_init__(self):
        tickers, mu, sigma = _validated_estimates(self.tickers, self.mu, self.sigma)
        prices = np.asarray(self.prices, dtype=float)
        if prices.shape != (len(tickers),):
            raise ProblemError(f"expected {len(tickers)} prices, got shape {prices.shape}")
        if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
            raise ProblemError("every share price must be a positive number: check the price data")
        budget = float(self.budget)
        if not np.isfinite(budget) or budget <= 0:
            raise ProblemError(f"problem.budget must be a positive number of dollars, got {self.budget}")
        cheapest = int(np.argmin(prices))
        if budget < prices[cheapest]:
            raise ProblemError(
                f"budget ${budget:,.2f} is below the cheapest share (${prices[cheapest]:,.2f}, "
                f"{tickers[cheapest]}): raise problem.budget"
            )
        upper = np.floor(budget / prices * (1 + FEASIBILITY_TOLERANCE)).astype(np.int64)
        if self.max_shares is not None:
            caps = np.asarray(self.max_shares)
            if caps.ndim == 0:
                caps = np.full(upper.shape, caps)
            if caps.shape != upper.shape or np.any(caps < 0) or np.any(caps != np.round(caps)):
                raise ProblemError(
                    "problem.max_shares must be a whole number ≥ 0 or one per asset: "
                    f"got {self.max_shares}"
                )
            upper = np.minimum(upper, caps.astype(np.int64))
        if self.risk_aversion < 0:
            raise ProblemError(f"problem.risk_aversion must be ≥ 0, got {self.risk_aversion}")
        object.__setattr__(self, "tickers", tickers)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "prices", prices)
        object.__setattr__(self, "budget", budget)
        object.__setattr__(self, "upper_bounds", upper)
        if self.min_return is not None:
            best = self.max_relaxed_return()
            if self.min_return > best * (1 + FEASIBILITY_TOLERANCE):
                raise ProblemError(
                    f"problem.min_return ${self.min_return:,.4f} per period is above the most any "
                    f"allocation within the budget can return (${best:,.4f}): lower min_return or raise budget"
                )

    @property
    def num_assets(self) -> int:
        return len(self.tickers)

    @property
    def return_coefficients(self) -> np.ndarray:
        """Expected dollar return per share held, ``μ_i p_i``."""
        return self.mu * self.prices

    @property
    def share_covariance(self) -> np.ndarray:
        """Covariance of the per-share dollar returns, ``diag(p) Σ diag(p)``."""
        return self.sigma * np.outer(self.prices, self.prices)

    def max_relaxed_return(self) -> float:
        """The largest ``μᵀd`` with ``0 ≤ x ≤ U`` real and ``pᵀx ≤ B`` (fractional knapsack): a bound."""
        remaining, best = self.budget, 0.0
        for i in np.argsort(-self.mu):
            if self.mu[i] <= 0 or remaining <= 0:
                break
            dollars = min(remaining, self.prices[i] * self.upper_bounds[i])
            best += self.mu[i] * dollars
            remaining -= dollars
        return best

    def objective_bounds(self) -> tuple[float, float]:
        """``(lower, upper)``: lower over the whole share box, upper over every feasible allocation.

        ``dᵀΣd ≥ 0`` everywhere; on ``{d ≥ 0, 1ᵀd ≤ B}`` the convex ``dᵀΣd`` peaks at a vertex, so it is at
        most ``B²·maxᵢ Σᵢᵢ``. These bound the auto penalty (see :mod:`qportfolio.builder`).
        """
        variance_upper = self.budget**2 * float(np.max(np.diag(self.sigma)))
        if self.min_return is not None:
            return 0.0, variance_upper
        gains = self.return_coefficients * self.upper_bounds
        lower = -float(np.sum(np.maximum(gains, 0.0)))
        upper = self.risk_aversion * variance_upper + self.budget * max(0.0, -float(self.mu.min()))
        return lower, upper

    def evaluate(self, shares) -> Evaluation:
        x = _as_rows(shares, self.num_assets)
        cost = x @ self.prices
        variance = _quadratic_form(x, self.share_covariance)
        expected = x @ self.return_coefficients
        if self.min_return is None:
            objective = self.risk_aversion * variance - expected
        else:
            objective = variance
        tol = FEASIBILITY_TOLERANCE * max(self.budget, 1.0)
        feasible = (
            (cost <= self.budget + tol)
            & np.all(x >= 0, axis=1)
            & np.all(x <= self.upper_bounds, axis=1)
            & np.all(x == np.round(x), axis=1)
        )
        if self.min_return is not None:
            feasible &= expected >= self.min_return - FEASIBILITY_TOLERANCE * max(abs(self.min_return), 1.0)
        return Evaluation(objective, variance, expected, cost, feasible)

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "assets": list(self.tickers),
            "prices": self.prices.tolist(),
            "budget": self.budget,
            "min_return": self.min_return,
            "max_shares": self.upper_bounds.tolist(),
            "risk_aversion": self.risk_aversion if self.min_return is None else None,
            "objective": "variance of the dollar return ($^2 per period)"
            if self.min_return is not None
            else "risk_aversion * variance ($^2) - expected return ($) per period",
            "allocation_unit": self.variable_unit,
        }


@dataclass(frozen=True)
class SelectionProblem:
    """Pick exactly ``K`` of ``n`` assets: ``min q·xᵀΣx − μᵀx  s.t.  1ᵀx = K,  x ∈ {0,1}ⁿ``.

    Each selected asset counts as one unit of capital, so variance and expected return are those of
    the unnormalised holding ``x`` and ``cost`` is the number of assets held.
    """

    tickers: tuple[str, ...]
    mu: np.ndarray
    sigma: np.ndarray
    num_selected: int
    risk_aversion: float = 1.0

    kind = "selection"
    variable_unit = "selected (0/1)"

    def __post_init__(self):
        tickers, mu, sigma = _validated_estimates(self.tickers, self.mu, self.sigma)
        n = len(tickers)
        if int(self.num_selected) != self.num_selected or not 1 <= self.num_selected <= n:
            raise ProblemError(
                f"problem.num_assets must be a whole number from 1 to {n} (the assets listed), "
                f"got {self.num_selected}"
            )
        if self.risk_aversion < 0:
            raise ProblemError(f"problem.risk_aversion must be ≥ 0, got {self.risk_aversion}")
        object.__setattr__(self, "tickers", tickers)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "num_selected", int(self.num_selected))

    @property
    def num_assets(self) -> int:
        return len(self.tickers)

    @property
    def upper_bounds(self) -> np.ndarray:
        return np.ones(self.num_assets, dtype=np.int64)

    def objective_bounds(self) -> tuple[float, float]:
        """``(lower, upper)``: lower over all of ``{0,1}ⁿ``, upper over the K-subsets.

        ``0 ≤ xᵀΣx ≤ λ_max(Σ)·K`` for K-subsets; ``−μᵀx`` is at most the sum of the K largest ``−μᵢ``.
        """
        k = self.num_selected
        upper = self.risk_aversion * float(np.linalg.eigvalsh(self.sigma)[-1]) * k
        upper += float(np.sum(np.sort(-self.mu)[-k:]))
        lower = -float(np.sum(np.maximum(self.mu, 0.0)))
        return lower, upper

    def evaluate(self, selection) -> Evaluation:
        x = _as_rows(selection, self.num_assets)
        variance = _quadratic_form(x, self.sigma)
        expected = x @ self.mu
        cost = x.sum(axis=1)
        feasible = (cost == self.num_selected) & np.all((x == 0) | (x == 1), axis=1)
        return Evaluation(self.risk_aversion * variance - expected, variance, expected, cost, feasible)

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "assets": list(self.tickers),
            "num_assets": self.num_selected,
            "risk_aversion": self.risk_aversion,
            "objective": "risk_aversion * x'Sigma x - mu'x (per period, one unit per selected asset)",
            "allocation_unit": self.variable_unit,
        }


#: The continuous Markowitz objectives (``MarkowitzProblem.objective``) and whether each is minimised.
MARKOWITZ_OBJECTIVES = {
    "min_variance": "minimize",
    "max_return": "maximize",
    "max_sharpe": "maximize",
    "utility_variance": "maximize",
    "utility_volatility": "maximize",
}


@dataclass(frozen=True)
class MarkowitzProblem:
    """Continuous weights ``w`` (fractions of capital, ``1ᵀw = 1``; long-only ``w ≥ 0`` unless ``allow_short``).

    ``objective`` picks one of five classic problems (returns and volatilities per period):

    * ``min_variance`` (default): ``min wᵀΣw``, with ``μᵀw = r`` when ``target_return`` is given, else the
      global minimum variance portfolio;
    * ``max_return``: ``max μᵀw  s.t.  √(wᵀΣw) ≤ σ₀`` (``max_volatility``);
    * ``max_sharpe``: ``max (μᵀw − r_f)/√(wᵀΣw)`` (``risk_free`` r_f, default 0);
    * ``utility_variance``: ``max μᵀw − q·wᵀΣw`` (``risk_aversion`` q);
    * ``utility_volatility``: ``max μᵀw − β·√(wᵀΣw)`` (``risk_aversion`` read as β).

    :meth:`evaluate` reports the objective in its natural sense (variance for ``min_variance``; return,
    Sharpe ratio or utility for the others, which are maximised): see :attr:`sense`.
    """

    tickers: tuple[str, ...]
    mu: np.ndarray
    sigma: np.ndarray
    target_return: float | None = None
    allow_short: bool = False
    objective: str = "min_variance"
    max_volatility: float | None = None
    risk_free: float = 0.0
    risk_aversion: float = 1.0

    kind = "markowitz"
    variable_unit = "weight"

    def __post_init__(self):
        tickers, mu, sigma = _validated_estimates(self.tickers, self.mu, self.sigma)
        object.__setattr__(self, "tickers", tickers)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", sigma)
        if self.objective not in MARKOWITZ_OBJECTIVES:
            raise ProblemError(
                f"problem.objective {self.objective!r} is not a Markowitz objective: use one of "
                f"{', '.join(MARKOWITZ_OBJECTIVES)}"
            )
        r = self.target_return
        if r is not None and self.objective != "min_variance":
            raise ProblemError(
                f"problem.target_return applies to objective min_variance, not {self.objective}: remove it"
            )
        if self.objective == "max_return":
            s0 = self.max_volatility
            if s0 is None or not np.isfinite(s0) or s0 <= 0:
                raise ProblemError(
                    "objective max_return needs problem.max_volatility, a positive volatility per period "
                    f"(e.g. 0.01 for 1% a day), got {s0}"
                )
        elif self.max_volatility is not None:
            raise ProblemError(f"problem.max_volatility applies to objective max_return, not {self.objective}: remove it")
        if not np.isfinite(self.risk_free):
            raise ProblemError(f"problem.risk_free must be a number (return per period), got {self.risk_free}")
        if not np.isfinite(self.risk_aversion) or self.risk_aversion < 0:
            raise ProblemError(f"problem.risk_aversion must be ≥ 0, got {self.risk_aversion}")
        if r is not None and not self.allow_short:
            best, worst = float(mu.max()), float(mu.min())
            if r > best + 1e-15:
                raise ProblemError(
                    f"problem.target_return {r:.6g} is above the best asset's return {best:.6g} per period: "
                    "lower it or set problem.allow_short: true"
                )
            if r < worst - 1e-15:
                raise ProblemError(
                    f"problem.target_return {r:.6g} is below the worst asset's return {worst:.6g} per period: "
                    "raise it or set problem.allow_short: true"
                )

    @property
    def num_assets(self) -> int:
        return len(self.tickers)

    @property
    def sense(self) -> str:
        """``minimize`` or ``maximize``: how :meth:`evaluate`'s objective is optimised."""
        return MARKOWITZ_OBJECTIVES[self.objective]

    def objective_values(self, expected: np.ndarray, variance: np.ndarray) -> np.ndarray:
        """The objective of portfolios with these expected returns and variances."""
        volatility = np.sqrt(np.clip(variance, 0.0, None))
        if self.objective == "min_variance":
            return variance
        if self.objective == "max_return":
            return expected
        if self.objective == "max_sharpe":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(volatility > 0, (expected - self.risk_free) / np.where(volatility > 0, volatility, 1.0),
                                np.nan)
        if self.objective == "utility_variance":
            return expected - self.risk_aversion * variance
        return expected - self.risk_aversion * volatility

    def evaluate(self, weights) -> Evaluation:
        w = _as_rows(weights, self.num_assets)
        variance = _quadratic_form(w, self.sigma)
        expected = w @ self.mu
        cost = w.sum(axis=1)
        tol = 1e-6
        feasible = np.abs(cost - 1.0) <= tol
        if not self.allow_short:
            feasible &= np.all(w >= -tol, axis=1)
        if self.target_return is not None:
            feasible &= np.abs(expected - self.target_return) <= tol * max(abs(self.target_return), 1e-4)
        if self.objective == "max_return":
            feasible &= np.sqrt(np.clip(variance, 0.0, None)) <= self.max_volatility * (1 + tol)
        return Evaluation(self.objective_values(expected, variance), variance, expected, cost, feasible)

    def describe(self) -> dict:
        texts = {
            "min_variance": "variance of the portfolio return (per period)",
            "max_return": "expected portfolio return (per period) at volatility <= max_volatility",
            "max_sharpe": "Sharpe ratio (mu'w - risk_free) / sqrt(w'Sigma w), per period",
            "utility_variance": "mean-variance utility mu'w - risk_aversion * w'Sigma w (per period)",
            "utility_volatility": "mean-volatility utility mu'w - risk_aversion * sqrt(w'Sigma w) (per period)",
        }
        description = {
            "kind": self.kind,
            "assets": list(self.tickers),
            "markowitz_objective": self.objective,
            "sense": self.sense,
            "target_return": self.target_return,
            "allow_short": self.allow_short,
            "objective": texts[self.objective],
            "allocation_unit": self.variable_unit,
        }
        if self.objective == "max_return":
            description["max_volatility"] = self.max_volatility
        if self.objective == "max_sharpe":
            description["risk_free"] = self.risk_free
        if self.objective.startswith("utility"):
            description["risk_aversion"] = self.risk_aversion
        return description


PortfolioProblem = IntegerSharesProblem | SelectionProblem | MarkowitzProblem
DiscreteProblem = IntegerSharesProblem | SelectionProblem
