"""The simulation: each method's book carried through every test period at real prices.

At a rebalance date the book trades to its method's decision at the date's prices; the cost
``c·Σ_i |x_i − x_i⁻|·P_{t,i}`` (``c`` = ``transaction_cost``/10⁴) is paid from cash (a fully invested portfolio
carries it as a small debit) and turnover is the traded value over ``V_t``. Between rebalances the holdings are
carried, ``V_s = xᵀP_s + cash``. A recorded decision is replayed, never recomputed; the others are made by
:func:`~qportfolio.app.backtest_decide.decide`. Decisions of different methods are independent; an
integer_shares decision depends on its method's value at the date, so one method's dates follow each other.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from qportfolio.app.backtest_decide import Decision, decide, plain
from qportfolio.app.backtest_schedule import Schedule
from qportfolio.app.config import ExperimentConfig
from qportfolio.app.experiment import DECISIONS_FILE
from qportfolio.errors import RunFolderError


@dataclass
class Book:
    """One method's portfolio: shares per asset and cash (dollars)."""

    shares: np.ndarray
    cash: float
    invested: bool = False

    def value(self, prices: np.ndarray) -> float:
        return float(self.shares @ prices + self.cash)

    def trade(self, target: np.ndarray, prices: np.ndarray, cost_rate: float) -> tuple[float, float]:
        """Trade to ``target`` shares at ``prices``; returns (traded value, cost paid)."""
        traded = float(np.abs(target - self.shares) @ prices)
        cost = cost_rate * traded
        self.cash += float((self.shares - target) @ prices) - cost
        self.shares = np.asarray(target, dtype=float)
        self.invested = bool(np.any(self.shares != 0))
        return traded, cost

    def holdings(self, tickers) -> dict:
        held = {t: plain(round(float(s), 8)) for t, s in zip(tickers, self.shares) if s != 0}
        return {**held, "cash": round(self.cash, 6)}


def simulate(config: ExperimentConfig, schedule: Schedule, recorded: dict, on_decision=None,
             progress: bool | str | None = None) -> pd.DataFrame:
    """Every method through every test period: one row per (date, method) with the value after the date's
    trades, the period return, turnover, cost paid, holdings and, at rebalance dates, the decision's status.

    ``recorded`` decisions (by (date, method)) are replayed; the others are made by :func:`decide` and handed to
    ``on_decision`` as they complete. ``progress``: ``"bar"`` (or True) a bar with an ETA, ``"log"`` a line per
    rebalance date on stderr (no terminal), None nothing."""
    b = config.backtest
    methods, tickers, cost_rate = list(b.methods), schedule.tickers, b.transaction_cost / 1e4
    books = {m: Book(np.zeros(len(tickers)), float(b.initial_capital)) for m in methods}
    last_value = {m: float(b.initial_capital) for m in methods}
    rebalance_rows = set(schedule.rebalances)
    rows = []
    progress = "bar" if progress is True else (progress or None)
    bar = tqdm(total=len(schedule.rebalances) * len(methods), unit="decision", leave=False,
               disable=progress != "bar", desc="backtest", file=sys.stderr)
    log = _RebalanceLog(len(schedule.rebalances)) if progress == "log" else None
    try:
        for row in range(schedule.first, len(schedule.prices)):
            prices, date = schedule.prices_at(row), schedule.date(row)
            for method in methods:
                book = books[method]
                value = book.value(prices)
                traded = cost = 0.0
                status = None
                if row in rebalance_rows:
                    decision = _replay(recorded.get((date, method)), value, date, method)
                    if decision is None:
                        if method == "buy_and_hold" and book.invested:
                            decision = Decision(date, method, "hold", budget=value)
                        else:
                            bar.set_postfix_str(f"{date} {method}")
                            decision = decide(schedule.window(row), prices, value, method, config, date)
                        if on_decision is not None:
                            on_decision(decision)
                    bar.update(1)
                    if log is not None and method == methods[-1]:
                        log.rebalanced(date)
                    status = decision.status
                    if decision.shares is not None:
                        target = np.array([decision.shares.get(t, 0.0) for t in tickers], dtype=float)
                        traded, cost = book.trade(target, prices, cost_rate)
                after = book.value(prices)
                rows.append({"date": date, "method": method, "value": after,
                             "period_return": after / last_value[method] - 1.0, "turnover": traded / value,
                             "cost_paid": cost, "decision": status, "holdings": book.holdings(tickers)})
                last_value[method] = after
    finally:
        bar.close()
    return pd.DataFrame(rows)


class _RebalanceLog:
    """A line on stderr per rebalance date, with the time so far and the time left at that pace."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def rebalanced(self, date: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        print(f"backtest: rebalance {self.done}/{self.total} ({date}) · {elapsed:.0f} s · ETA "
              f"{elapsed / self.done * (self.total - self.done):.0f} s", file=sys.stderr, flush=True)


def _replay(record: dict | None, value: float, date: str, method: str) -> Decision | None:
    if record is None:
        return None
    decision = Decision.from_dict(record)
    if decision.budget is not None and not math.isclose(decision.budget, value, rel_tol=1e-9, abs_tol=1e-6):
        raise RunFolderError(
            f"{DECISIONS_FILE} was recorded at a portfolio value of {decision.budget:,.6f} on {date} for {method}, "
            f"but the replay reaches {value:,.6f}: the config or data changed since; start a new backtest")
    return decision
