"""Whole shares under a dollar budget, with a return floor: the seed formulation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qportfolio.data import MarketData
from qportfolio.errors import (
    ProblemError,
)
from qportfolio.problems._base import FEASIBILITY_TOLERANCE, Evaluation, _as_rows, _quadratic_form, _validated_estimates

#: The most shares of one asset: near 2³³ a double's spacing reaches the 1e-6 within which solvers check that a
#: count is whole, so counts are kept below 2³¹.
MAX_SHARE_COUNT = 2**31 - 1


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

    @classmethod
    def from_market(cls, market: MarketData, budget: float, min_return: float | None = None,
                    max_shares: int | tuple[int, ...] | None = None, risk_aversion: float = 1.0) -> IntegerSharesProblem:
        """Whole shares of the market's assets at its last prices, ``budget`` dollars, a floor of ``min_return``
        dollars of expected return per period."""
        if budget is None:
            raise ProblemError("problem.budget is required for integer_shares: give the dollars to invest")
        return cls(market.tickers, market.mu, market.sigma, market.last_prices, budget, min_return, max_shares,
                   risk_aversion)

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
        upper = np.floor(budget / prices * (1 + FEASIBILITY_TOLERANCE))  # float until its size is checked
        if self.max_shares is not None:
            caps = np.asarray(self.max_shares)
            if caps.ndim == 0:
                caps = np.full(upper.shape, caps)
            if caps.shape != upper.shape or np.any(caps < 0) or np.any(caps != np.round(caps)):
                raise ProblemError(
                    "problem.max_shares must be a whole number ≥ 0 or one per asset: "
                    f"got {self.max_shares}"
                )
            upper = np.minimum(upper, caps.astype(float))
        if not np.any(upper):
            raise ProblemError(f"problem.max_shares {self.max_shares} leaves no share of any asset to buy: raise it "
                               "(or remove it)")
        largest = int(np.argmax(upper))
        if upper[largest] > MAX_SHARE_COUNT:
            raise ProblemError(
                f"problem.budget ${budget:,.0f} buys up to {upper[largest]:,.0f} shares of {tickers[largest]}, more "
                f"than {MAX_SHARE_COUNT:,} (2³¹ − 1), past which whole-share counts are not exact to the solvers' "
                "tolerances: lower problem.budget or cap problem.max_shares")
        upper = upper.astype(np.int64)
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
        most ``B²·maxᵢ Σᵢᵢ``. These bound the auto penalty (see :mod:`qportfolio.encoding`).
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


