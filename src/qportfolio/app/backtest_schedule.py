"""A backtest's calendar: the resampled closes, the rebalance rows and the window before each, and which
methods a config's problem takes.

A period is one row of the closes resampled to ``data.frequency`` (``P_t``, dollars per share). Rebalance dates
are every ``backtest.rebalance``-th period from the first one on or after ``backtest.start``; the window of a
date ``t`` is the ``train + 1`` prices ``P_{t−1−train} … P_{t−1}`` (``train`` returns) that end the period
before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qportfolio.app.backtest_report import periods_per_year
from qportfolio.app.config import ExperimentConfig
from qportfolio.choices import BacktestMethod
from qportfolio.data import load_prices, resample_prices
from qportfolio.errors import ConfigError

QUANTUM = BacktestMethod.QUANTUM.value
MARKOWITZ_METHODS = {BacktestMethod.MARKOWITZ_MIN_VARIANCE.value: "min_variance",
                     BacktestMethod.MARKOWITZ_MAX_SHARPE.value: "max_sharpe"}
NAIVE_METHODS = (BacktestMethod.EQUAL_WEIGHT.value, BacktestMethod.BUY_AND_HOLD.value)
#: the methods that solve the config's own (discrete) problem
SOLVER_METHODS = tuple(m for m in BacktestMethod.values() if m not in MARKOWITZ_METHODS and m not in NAIVE_METHODS)


@dataclass(frozen=True)
class Schedule:
    """The resampled closes from the first window's first price to the end, and the rebalance rows."""

    prices: pd.DataFrame
    rebalances: tuple[int, ...]
    train: int
    frequency: str

    @property
    def first(self) -> int:
        return self.rebalances[0]

    @property
    def tickers(self) -> list[str]:
        return list(self.prices.columns)

    def window(self, row: int) -> pd.DataFrame:
        """The ``train + 1`` prices (``train`` returns) that end the period before ``row``."""
        return self.prices.iloc[row - 1 - self.train: row]

    def prices_at(self, row: int) -> np.ndarray:
        """The closes of ``row`` (dollars per share, in ticker order): where that date's trades happen."""
        return self.prices.iloc[row].to_numpy(dtype=float)

    def date(self, row: int) -> str:
        return self.prices.index[row].date().isoformat()

    def describe(self) -> dict:
        dates = self.prices.index
        return {"frequency": self.frequency, "train": self.train, "first_window_start": self.date(0),
                "first_rebalance": self.date(self.first), "last_rebalance": self.date(self.rebalances[-1]),
                "last_date": self.date(len(dates) - 1), "rebalances": len(self.rebalances),
                "test_periods": len(dates) - self.first - 1,
                "periods_per_year": periods_per_year(self.frequency, dates)}


def load_schedule(config: ExperimentConfig) -> Schedule:
    """The config's prices through the test period's end (``backtest.end``, else ``data.end``, else the data's
    last date), resampled to ``data.frequency``, and the rebalance dates."""
    d, b = config.data, config.backtest
    end = b.end or d.end
    sampled = resample_prices(load_prices(d.source, d.assets, d.path, d.start, end), d.frequency)
    dates = sampled.index
    after = np.flatnonzero(dates >= pd.Timestamp(b.start))
    if len(after) == 0:
        raise ConfigError(f"backtest.start {b.start} is after the last price ({dates[-1].date()}): move it earlier")
    first = int(after[0])
    if first < b.train + 1:
        raise ConfigError(
            f"backtest.train {b.train} needs {b.train + 1} {d.frequency} prices before the first rebalance "
            f"({dates[first].date()}) but the data has {first} from {dates[0].date()}: set data.start earlier (or "
            "remove it), backtest.start later, or backtest.train lower")
    offset = first - 1 - b.train
    rows = tuple(range(first - offset, len(dates) - offset, b.rebalance))
    return Schedule(sampled.iloc[offset:], rows, b.train, d.frequency)


def check_backtest(config: ExperimentConfig) -> None:
    """The config can be backtested: a ``backtest`` section, and methods that fit its problem kind."""
    if config.backtest is None:
        raise ConfigError(f"config {config.name!r} has no backtest section: add backtest.start, train and methods "
                          "(see the README's Backtest section)")
    p = config.problem
    if p.kind == "markowitz":
        discrete = [m for m in config.backtest.methods if m in SOLVER_METHODS and m != "classical_exact"]
        if discrete:
            raise ConfigError(f"backtest.methods: {discrete[0]} needs a discrete problem (problem.kind integer_shares "
                              "or selection); a markowitz config takes classical_exact, equal_weight, "
                              "markowitz_min_variance, markowitz_max_sharpe and buy_and_hold")
    if p.kind == "integer_shares" and p.budget is None:
        raise ConfigError("problem.budget is required for an integer_shares backtest: the return floor scales with "
                          "the portfolio's value as min_return / budget")
    if p.kind == "selection" and p.num_assets is None:
        raise ConfigError("problem.num_assets (K) is required for selection: how many assets to pick")
