"""K-of-N asset selection: ``min q·xᵀΣx − μᵀx s.t. 1ᵀx = K``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qportfolio.data import MarketData
from qportfolio.errors import (
    ProblemError,
)
from qportfolio.problems._base import Evaluation, _as_rows, _quadratic_form, _validated_estimates


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

    @classmethod
    def from_market(cls, market: MarketData, num_assets: int, risk_aversion: float = 1.0) -> SelectionProblem:
        """Choose ``num_assets`` (K) of the market's assets."""
        if num_assets is None:
            raise ProblemError("problem.num_assets (K) is required for selection: how many assets to pick")
        return cls(market.tickers, market.mu, market.sigma, num_assets, risk_aversion)

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


