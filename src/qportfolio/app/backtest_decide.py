"""One method's decision at one rebalance date: :func:`decide` and the :class:`Decision` it returns.

At a rebalance date ``t``, for each method: the estimates ``μ, Σ`` come from the window's ``train`` returns (no
later price is read); the portfolio's value at the date's close, cash included, ``V_t = xᵀP_t + cash``, is the
budget, and trades happen at ``P_t``.

* ``integer_shares``: whole shares of the config's problem with budget ``V_t`` and return floor ``R_t = R·V_t/B``
  (``B, R`` the config's budget and floor); leftover cash is held. ``selection``: equal dollars ``V_t/K`` in each
  selected asset. ``markowitz_*`` (and ``classical_exact`` on a markowitz config): continuous weights,
  ``x_i = w_i·V_t/P_{t,i}``. ``equal_weight``: ``V_t/n`` in each asset, as whole shares on integer_shares
  configs and fractional shares otherwise. ``buy_and_hold``: ``equal_weight`` once, then held.
* a window whose return floor no long-only portfolio reaches in expectation (``max_i μ_i < R/B``, or a
  markowitz ``target_return`` outside the window's ``μ`` range) is infeasible for every method: each keeps its
  holdings. A method that finds no feasible answer on its own problem keeps its holdings too.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qportfolio.app.backtest_schedule import MARKOWITZ_METHODS, NAIVE_METHODS, QUANTUM
from qportfolio.app.config import ExperimentConfig
from qportfolio.app.results import json_safe
from qportfolio.baselines import solve_classical
from qportfolio.classical import solve_exact, solve_markowitz
from qportfolio.data import estimate_market
from qportfolio.errors import ProblemError
from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, SelectionProblem, optimum_tolerance


@dataclass(frozen=True, repr=False)
class Decision:
    """One method's answer at one rebalance date: the target ``shares`` by ticker (None: keep the holdings).

    ``status``: ``ok`` (trade to ``shares``), ``hold`` (buy_and_hold after its purchase), ``infeasible_window``
    (the window's return floor is out of reach, for every method) or ``no_answer`` (this method found no
    feasible answer on its own problem; ``message`` says why). ``objective``, ``variance``,
    ``expected_return``, ``cost`` and ``feasible`` are the answer's, evaluated on the problem it solved (None
    for the naive methods, which solve none); ``optimum`` is that problem's exact optimum (quantum and
    classical_exact)."""

    date: str
    method: str
    status: str
    shares: dict[str, float] | None = None
    budget: float | None = None
    objective: float | None = None
    optimum: float | None = None
    qubits: int | None = None
    seconds: float = 0.0
    message: str | None = None
    variance: float | None = None
    expected_return: float | None = None
    cost: float | None = None
    feasible: bool | None = None

    @property
    def allocation(self) -> dict[str, float] | None:
        """The target holdings by ticker (whole or fractional shares; assets not held left out)."""
        return self.shares

    def to_dict(self) -> dict:
        """The decision as ``decisions.jsonl`` records it."""
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, record: dict) -> Decision:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def __repr__(self) -> str:
        objective = "" if self.objective is None else f", objective {self.objective:.6g}"
        return f"Decision({self.date} {self.method} {self.status}: {self.shares}{objective})"

    @property
    def equals_optimum(self) -> bool | None:
        """Whether the answer's objective is the exact optimum of its problem (None when unknown)."""
        if self.optimum is None:
            return None
        return self.objective is not None and abs(self.objective - self.optimum) <= optimum_tolerance(self.optimum)


def infeasible_window(config: ExperimentConfig, mu: np.ndarray) -> str | None:
    """Why the window's problem is infeasible for every method, or None: the return floor's rate ``R/B`` above
    every asset's expected return, or a long-only markowitz target outside the range of ``μ``."""
    p = config.problem
    if p.kind == "integer_shares" and p.min_return is not None and p.budget and p.min_return / p.budget > mu.max():
        return (f"the return floor {p.min_return / p.budget:.4%} per period is above every asset's expected return "
                f"(best {mu.max():.4%})")
    if p.kind == "markowitz" and p.target_return is not None and not p.allow_short \
            and not mu.min() <= p.target_return <= mu.max():
        return f"target_return {p.target_return:.4%} is outside the window's expected returns [{mu.min():.4%}, {mu.max():.4%}]"
    return None


def window_problem(config: ExperimentConfig, market, prices: np.ndarray, value: float):
    """The config's problem on the window's estimates, at the date's prices with budget ``value``."""
    p = config.problem
    if p.kind == "integer_shares":
        floor = None if p.min_return is None else p.min_return * value / p.budget
        return IntegerSharesProblem(market.tickers, market.mu, market.sigma, prices, value, floor, p.max_shares,
                                    p.risk_aversion)
    if p.kind == "selection":
        return SelectionProblem(market.tickers, market.mu, market.sigma, p.num_assets, p.risk_aversion)
    return MarkowitzProblem(market.tickers, market.mu, market.sigma, p.target_return, p.allow_short, p.objective,
                            p.max_volatility, p.risk_free, p.risk_aversion)


def window_market(config: ExperimentConfig, window: pd.DataFrame):
    """The window's estimates ``μ, Σ`` per period, with the config's covariance estimator."""
    return estimate_market(window, frequency="as_is", covariance=config.data.covariance)


def equal_weight_shares(config: ExperimentConfig, value: float, prices: np.ndarray) -> np.ndarray:
    """``V/n`` dollars in each asset: whole shares (rounded down) on integer_shares configs, else fractional."""
    shares = value / len(prices) / prices
    return np.floor(shares * (1 + 1e-12)) if config.problem.kind == "integer_shares" else shares


def holding_shares(problem, allocation, value: float, prices: np.ndarray) -> np.ndarray:
    """The shares an answer holds: whole shares as they are, ``V/K`` dollars per selected asset, weights of ``V``."""
    allocation = np.asarray(allocation, dtype=float)
    if isinstance(problem, IntegerSharesProblem):
        return allocation
    if isinstance(problem, SelectionProblem):
        return allocation * (value / problem.num_selected) / prices
    return _weights(allocation, problem.allow_short) * value / prices


def _weights(weights: np.ndarray, allow_short: bool) -> np.ndarray:
    """Solver weights with the solver's ±1e-9 noise below zero removed (long-only), summing to one."""
    if not allow_short:
        weights = np.clip(weights, 0.0, None)
    return weights / weights.sum()


def decide(window: pd.DataFrame, prices, value: float, method: str, config: ExperimentConfig,
           date: str = "") -> Decision:
    """``method``'s target holdings at a rebalance date, from the ``window`` prices that end the period before
    it, the date's ``prices`` (trades happen there) and the portfolio's ``value`` (the budget). Pure: the
    same inputs give the same decision, and nothing is read or written."""
    started = time.perf_counter()
    prices = np.asarray(prices, dtype=float)
    market = window_market(config, window)

    def decision(status: str, shares=None, **extra) -> Decision:
        by_ticker = None if shares is None else {t: plain(s) for t, s in zip(market.tickers, shares) if s != 0}
        return Decision(date, method, status, by_ticker, float(value), seconds=time.perf_counter() - started, **extra)

    reason = infeasible_window(config, market.mu)
    if reason is not None:
        return decision("infeasible_window", message=reason, feasible=False)
    if method in NAIVE_METHODS:
        return decision("ok", equal_weight_shares(config, value, prices))
    try:
        if method in MARKOWITZ_METHODS:
            problem = MarkowitzProblem(market.tickers, market.mu, market.sigma, objective=MARKOWITZ_METHODS[method],
                                       risk_free=config.problem.risk_free)
            answer = solve_markowitz(problem)
            return decision("ok", holding_shares(problem, answer.vector, value, prices), **answer.evaluation.row(0))
        problem = window_problem(config, market, prices, value)
        if method == QUANTUM:
            result = config.quantum_solver().solve(problem)
            best = result.best
            allocation = None if best is None else result.table.allocations[best]
            extra = {"optimum": result.exact.objective, "qubits": result.encoded.num_qubits,
                     **({"objective": None} if best is None else result.table.evaluation.row(best))}
        elif method == "classical_exact":
            answer = solve_exact(problem, config.problem.time_limit, config.seed)
            allocation = answer.vector
            extra = {**answer.evaluation.row(0), "optimum": answer.objective if answer.proven_optimal else None}
        else:
            encoding = None
            if method in ("simulated_annealing", "tabu"):  # the QUBO the quantum side sees
                encoding = config.quantum_solver().encode(problem, for_circuit=False).encoding
            answer = solve_classical(problem, method, encoding, config.seed, config.problem.time_limit)
            allocation = answer.vector
            extra = answer.evaluation.row(0) if allocation is not None else {"objective": None}
    except ProblemError as error:
        return decision("no_answer", message=str(error), feasible=False)
    if allocation is None:
        return decision("no_answer", message=f"{method} found no feasible allocation", **{"feasible": False, **extra})
    return decision("ok", holding_shares(problem, allocation, value, prices), **extra)


def plain(value):
    """A share count for JSON: an int when whole, else a float."""
    value = float(value)
    return int(value) if value == round(value) and abs(value) < 2**53 else value
