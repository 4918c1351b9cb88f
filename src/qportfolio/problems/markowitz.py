"""Markowitz with continuous weights: five objectives, long-only or with short selling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qportfolio.data import MarketData
from qportfolio.errors import (
    ProblemError,
)
from qportfolio.problems._base import Evaluation, _as_rows, _quadratic_form, _validated_estimates

#: The continuous Markowitz objectives (``MarkowitzProblem.objective``) and whether each is minimised.
MARKOWITZ_OBJECTIVES = {
    "min_variance": "minimize",
    "max_return": "maximize",
    "max_sharpe": "maximize",
    "utility_variance": "maximize",
    "utility_volatility": "maximize",
}


#: Eigenvalues of Σ below this fraction of the largest count as zero (a singular covariance).
SINGULAR_COVARIANCE = 1e-10


def _check_rank(tickers: tuple[str, ...], sigma: np.ndarray) -> None:
    """Refuse a singular covariance: some portfolio would have (near) zero variance, so the minimum variance
    and the Sharpe ratio become artefacts of the estimate (the sample covariance of n assets from T ≤ n
    returns has rank at most T − 1)."""
    values = np.linalg.eigvalsh(sigma)
    largest = float(values[-1])
    rank = int(np.sum(values > SINGULAR_COVARIANCE * largest)) if largest > 0 else 0
    if rank < len(tickers):
        raise ProblemError(
            f"the covariance of these {len(tickers)} assets is singular (rank {rank}: fewer return periods than "
            "assets, or assets that move together exactly), so some portfolio has zero estimated variance: use "
            f"data.covariance: ledoit_wolf, or a longer window (more than {len(tickers)} periods), or fewer assets"
        )


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

    @classmethod
    def from_market(cls, market: MarketData, objective: str = "min_variance", target_return: float | None = None,
                    allow_short: bool = False, max_volatility: float | None = None, risk_free: float = 0.0,
                    risk_aversion: float = 1.0) -> MarkowitzProblem:
        """Continuous weights over the market's assets for one of the five objectives."""
        return cls(market.tickers, market.mu, market.sigma, target_return, allow_short, objective, max_volatility,
                   risk_free, risk_aversion)

    def __post_init__(self):
        tickers, mu, sigma = _validated_estimates(self.tickers, self.mu, self.sigma)
        object.__setattr__(self, "tickers", tickers)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", sigma)
        _check_rank(tickers, sigma)
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

