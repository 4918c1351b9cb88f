"""What every portfolio problem shares: validated estimates and the evaluation of allocations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qportfolio.errors import (
    ProblemError,
)

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


def optimum_tolerance(optimum: float) -> float:
    """Objective difference below which two answers count as the same optimum: ``1e-9·max(1, |f*|)``."""
    return 1e-9 * max(1.0, abs(optimum))
