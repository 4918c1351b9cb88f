"""Out-of-sample backtest: walk through the test period, re-solve the config's problem at every rebalance date
on the window before it, and hold each answer at real prices.

A period is one row of the closes resampled to ``data.frequency`` (``P_t``, dollars per share). Rebalance dates
are every ``backtest.rebalance``-th period from the first one on or after ``backtest.start``. At a rebalance
date ``t``, for each method:

* the estimates ``μ, Σ`` come from the ``train`` returns ``r_{t−train} … r_{t−1}``, i.e. the prices
  ``P_{t−1−train} … P_{t−1}``: the window ends the period before the date, and no later price is read;
* the portfolio's value at the date's close, cash included, ``V_t = xᵀP_t + cash``, is the budget, and trades
  happen at ``P_t``;
* ``integer_shares``: whole shares of the config's problem with budget ``V_t`` and return floor
  ``R_t = R·V_t/B`` (``B, R`` the config's budget and floor); leftover cash is held. ``selection``: equal
  dollars ``V_t/K`` in each selected asset. ``markowitz_*`` (and ``classical_exact`` on a markowitz config):
  continuous weights, ``x_i = w_i·V_t/P_{t,i}``. ``equal_weight``: ``V_t/n`` in each asset, as whole shares on
  integer_shares configs and fractional shares otherwise. ``buy_and_hold``: ``equal_weight`` once, then held.
* the cost ``c·Σ_i |x_i − x_i⁻|·P_{t,i}`` (``c`` = ``transaction_cost``/10⁴) is paid from cash (a fully
  invested portfolio carries it as a small debit); turnover is the traded value over ``V_t``;
* a window whose return floor no long-only portfolio reaches in expectation (``max_i μ_i < R/B``, or a
  markowitz ``target_return`` outside the window's ``μ`` range) is infeasible for every method: each keeps its
  holdings. A method that finds no feasible answer on its own problem keeps its holdings too.

Between rebalances the holdings are carried at real prices, ``V_s = xᵀP_s + cash``. Each (date, method)
decision is :func:`decide`, a pure function of (window prices, the date's prices, the value, the method, the
config); it is appended to ``decisions.jsonl`` as soon as it completes and never recomputed: the simulation
replays it. Decisions of different methods are independent; an integer_shares decision depends on its
method's value at the date, so one method's dates follow each other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from qportfolio.app.backtest_report import measures, periods_per_year, write_figures, write_report
from qportfolio.app.config import ExperimentConfig, load_config
from qportfolio.app.experiment import BACKTEST_KIND, DECISIONS_FILE, RunInterrupted, is_backtest, provenance, run_lock
from qportfolio.app.planning import qpu_guarded, refuse_over_budget
from qportfolio.app.results import (
    append_jsonl,
    json_safe,
    load_result,
    new_run_folder,
    read_jsonl,
    write_atomic,
    write_json,
)
from qportfolio.backends import HARDWARE_PREFIXES, JobBackend
from qportfolio.baselines import solve_classical
from qportfolio.classical import solve_exact, solve_markowitz
from qportfolio.data import estimate_market, load_prices, resample_prices
from qportfolio.errors import ConfigError, ProblemError, QPortfolioError, RunFolderError
from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, SelectionProblem, optimum_tolerance

DECISIONS = DECISIONS_FILE
QUANTUM = "quantum"
SOLVER_METHODS = ("quantum", "classical_exact", "scip", "relax_round", "greedy", "simulated_annealing", "tabu")
MARKOWITZ_METHODS = {"markowitz_min_variance": "min_variance", "markowitz_max_sharpe": "max_sharpe"}
NAIVE_METHODS = ("equal_weight", "buy_and_hold")


# --------------------------------------------------------------------------- the calendar


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


# --------------------------------------------------------------------------- one decision


@dataclass(frozen=True)
class Decision:
    """One method's answer at one rebalance date: the target ``shares`` by ticker (None: keep the holdings).

    ``status``: ``ok`` (trade to ``shares``), ``hold`` (buy_and_hold after its purchase), ``infeasible_window``
    (the window's return floor is out of reach, for every method) or ``no_answer`` (this method found no
    feasible answer on its own problem; ``message`` says why). ``objective`` is the answer's objective on the
    problem it solved and ``optimum`` that problem's exact optimum (quantum and classical_exact)."""

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

    def to_record(self) -> dict:
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_record(cls, record: dict) -> Decision:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

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
    market = estimate_market(window, frequency="as_is", covariance=config.data.covariance)

    def decision(status: str, shares=None, **extra) -> Decision:
        by_ticker = None if shares is None else {t: _plain(s) for t, s in zip(market.tickers, shares) if s != 0}
        return Decision(date, method, status, by_ticker, float(value), seconds=time.perf_counter() - started, **extra)

    reason = infeasible_window(config, market.mu)
    if reason is not None:
        return decision("infeasible_window", message=reason)
    if method in NAIVE_METHODS:
        return decision("ok", equal_weight_shares(config, value, prices))
    try:
        if method in MARKOWITZ_METHODS:
            problem = MarkowitzProblem(market.tickers, market.mu, market.sigma, objective=MARKOWITZ_METHODS[method],
                                       risk_free=config.problem.risk_free)
            answer = solve_markowitz(problem)
            return decision("ok", holding_shares(problem, answer.allocation, value, prices), objective=answer.objective)
        problem = window_problem(config, market, prices, value)
        extra = {}
        if method == QUANTUM:
            result = config.quantum_solver().solve(problem)
            allocation = None if result.best is None else result.table.allocations[result.best]
            extra = {"objective": result.objective, "optimum": result.exact.objective, "qubits": result.encoded.num_qubits}
        elif method == "classical_exact":
            answer = solve_exact(problem, config.problem.time_limit, config.seed)
            allocation = answer.allocation
            extra = {"objective": answer.objective, "optimum": answer.objective if answer.proven_optimal else None}
        else:
            encoding = None
            if method in ("simulated_annealing", "tabu"):  # the QUBO the quantum side sees
                encoding = config.quantum_solver().encode(problem, for_circuit=False).encoding
            answer = solve_classical(problem, method, encoding, config.seed, config.problem.time_limit)
            allocation = answer.allocation
            extra = {"objective": None if allocation is None else answer.objective}
    except ProblemError as error:
        return decision("no_answer", message=str(error))
    if allocation is None:
        return decision("no_answer", message=f"{method} found no feasible allocation", **extra)
    return decision("ok", holding_shares(problem, allocation, value, prices), **extra)


def _plain(value):
    """A share count for JSON: an int when whole, else a float."""
    value = float(value)
    return int(value) if value == round(value) and abs(value) < 2**53 else value


# --------------------------------------------------------------------------- the simulation


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
        held = {t: _plain(round(float(s), 8)) for t, s in zip(tickers, self.shares) if s != 0}
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
            prices, date = schedule.prices.iloc[row].to_numpy(dtype=float), schedule.date(row)
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
    decision = Decision.from_record(record)
    if decision.budget is not None and not math.isclose(decision.budget, value, rel_tol=1e-9, abs_tol=1e-6):
        raise RunFolderError(
            f"{DECISIONS} was recorded at a portfolio value of {decision.budget:,.6f} on {date} for {method}, but the "
            f"replay reaches {value:,.6f}: the config or data changed since; start a new backtest")
    return decision


# --------------------------------------------------------------------------- the run folder


def load_decisions(folder: Path) -> dict[tuple[str, str], dict]:
    """The recorded decisions of a backtest folder by (date, method); a line cut short is ignored."""
    return {(r["date"], r["method"]): r for r in read_jsonl(Path(folder) / DECISIONS) if "date" in r and "method" in r}


def start_backtest(config: ExperimentConfig, out: str | Path) -> Path:
    """A new run folder with the resolved config, and a result.json that marks it a backtest's."""
    check_backtest(config)
    folder = new_run_folder(out, config.name)
    write_atomic(folder / "config.yaml", yaml.safe_dump(config.resolved(), sort_keys=False))
    write_json(folder / "result.json", {"name": config.name, "kind": BACKTEST_KIND, "status": "created",
                                        "provenance": provenance(config)})
    return folder


def execute(config: ExperimentConfig, folder: Path, progress: bool | str | None = None) -> dict:
    """Run (or continue) the backtest in ``folder``: replay its recorded decisions, make and record the rest,
    then write ``backtest.csv``, ``result.json``, the figures and ``report.md``."""
    check_backtest(config)
    folder = Path(folder)
    started = time.perf_counter()
    result = {"name": config.name, "kind": BACKTEST_KIND, "status": "running", "provenance": provenance(config)}
    with run_lock(folder):
        write_json(folder / "result.json", result)
        recorded = load_decisions(folder)
        made = []

        def record(decision: Decision) -> None:
            append_jsonl(folder / DECISIONS, decision.to_record())
            made.append(decision)

        try:
            schedule = load_schedule(config)
            frame = simulate(config, schedule, recorded, record, progress)
        except BaseException as error:
            result["status"] = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            result["error"] = str(error) if isinstance(error, QPortfolioError) else f"{type(error).__name__}: {error}"
            result["decisions_recorded"] = len(recorded) + len(made)
            write_json(folder / "result.json", json_safe(result))
            raise
        write_atomic(folder / "backtest.csv", backtest_csv(frame))
        decisions = {**{k: Decision.from_record(r) for k, r in recorded.items()},
                     **{(d.date, d.method): d for d in made}}
        result.update(summarise(config, schedule, frame, decisions))
        result["timing"] = {"total_s": time.perf_counter() - started, "decisions_made": len(made),
                            "decisions_replayed": len(recorded), "solve_s": sum(d.seconds for d in made)}
        result["figures"] = [str(p.relative_to(folder)) for p in write_figures(frame, schedule.tickers, folder / "figures",
                                                                         schedule.prices)]
        result["status"] = "complete"
        write_json(folder / "result.json", json_safe(result))
        write_atomic(folder / "report.md", write_report(result))
    return result


def resume(folder: str | Path, progress: bool | str | None = None, approve_spending: bool = False) -> dict:
    """Continue the backtest in ``folder`` from its ``config.yaml`` and recorded decisions; a complete one is
    left as it is (its result returned). A run's folder is refused, naming ``qportfolio resume``."""
    folder = Path(folder)
    if not (folder / "config.yaml").is_file():
        raise RunFolderError(f"{folder / 'config.yaml'} does not exist: pass a folder written by `qportfolio backtest`")
    if not is_backtest(folder):
        raise RunFolderError(f"{folder} is a run, not a backtest: continue it with `qportfolio resume {folder}`")
    if (folder / "result.json").is_file():
        previous = load_result(folder)
        if previous.get("status") == "complete":
            return previous
    config = load_config(folder / "config.yaml")
    check_backtest_spending(config, approve_spending)
    return execute(config, folder, progress)


def backtest_csv(frame: pd.DataFrame) -> str:
    """``backtest.csv``: date, method, value, period_return, turnover, cost_paid, decision, holdings (JSON)."""
    table = frame.copy()
    table["holdings"] = [json.dumps(h, separators=(",", ":")) for h in table["holdings"]]
    return table.to_csv(index=False, float_format="%.10g")


def summarise(config: ExperimentConfig, schedule: Schedule, frame: pd.DataFrame, decisions: dict) -> dict:
    """``result.json``'s body: the schedule, infeasible windows, per-method measures and quantum = exact."""
    b = config.backtest
    factor = periods_per_year(schedule.frequency, schedule.prices.index)
    rebalance_dates = [schedule.date(r) for r in schedule.rebalances]
    infeasible = [d for d in rebalance_dates
                  if any(decisions[(d, m)].status == "infeasible_window" for m in b.methods if (d, m) in decisions)]
    methods = {}
    for method in b.methods:
        path = frame[frame["method"] == method]
        made = [decisions[(d, method)] for d in rebalance_dates if (d, method) in decisions]
        methods[method] = {
            **measures(path["period_return"].to_numpy()[1:], factor),
            "final_value": float(path["value"].iloc[-1]),
            "total_return": float(path["value"].iloc[-1] / b.initial_capital - 1.0),
            "average_turnover": float(path.loc[path["decision"].notna(), "turnover"].mean()),
            "total_cost": float(path["cost_paid"].sum()),
            "rebalances": len(made),
            "held": sum(d.status != "ok" for d in made),
            "no_answer": sum(d.status == "no_answer" for d in made),
            "solve_s": sum(d.seconds for d in made),
        }
    summary = {"problem": config.problem.kind, "assets": schedule.tickers, "initial_capital": b.initial_capital,
               "transaction_cost_bps": b.transaction_cost, "rebalance": b.rebalance, "methods_run": list(b.methods),
               "schedule": schedule.describe(), "infeasible_windows": {"count": len(infeasible), "dates": infeasible},
               "methods": methods}
    if QUANTUM in b.methods:
        compared = [decisions[(d, QUANTUM)] for d in rebalance_dates
                    if (d, QUANTUM) in decisions and decisions[(d, QUANTUM)].status != "infeasible_window"]
        equal = sum(bool(d.equals_optimum) for d in compared)
        qubits = [d.qubits for d in compared if d.qubits is not None]
        summary["quantum_equals_exact"] = {
            "equal": equal, "compared": len(compared), "fraction": equal / len(compared) if compared else None,
            "qubits": {"min": min(qubits), "max": max(qubits)} if qubits else None,
            "note": "per rebalance: the quantum answer's objective is the exact optimum of the problem it solved "
                    "(its own budget); a window without a feasible sample counts as unequal"}
    return summary


# --------------------------------------------------------------------------- before anything runs


def plan(config: ExperimentConfig, measure: bool = True) -> dict:
    """The dry run: solves (rebalances × methods), the time each method took on the first window (measured by
    solving it, except on hardware), the estimated total and, on hardware backends, the QPU seconds with the
    spending guard applied to the total."""
    check_backtest(config)
    schedule = load_schedule(config)
    b = config.backtest
    rebalances = len(schedule.rebalances)
    row = timing_row(config, schedule)
    prices, value = schedule.prices.iloc[row].to_numpy(dtype=float), b.initial_capital
    hardware = config.backend.name.split(":")[0] in HARDWARE_PREFIXES
    summary = {"name": config.name, "problem": config.problem.kind, "assets": schedule.tickers,
               **schedule.describe(), "methods": list(b.methods), "solves": rebalances * len(b.methods),
               "timed_on": f"the window of {schedule.date(row)} (the first feasible one), at the initial capital"}
    seconds = {}
    for method in b.methods:
        if method == QUANTUM and hardware:
            continue
        if not measure:
            continue
        decision = decide(schedule.window(row), prices, value, method, config, schedule.date(row))
        seconds[method] = decision.seconds
        if method == QUANTUM and decision.qubits is not None:
            summary["qubits_timed_window"] = decision.qubits
    if seconds:
        summary["seconds_per_solve_first_window"] = {m: round(s, 3) for m, s in seconds.items()}
        summary["estimated_seconds"] = round(sum(s * (1 if m == "buy_and_hold" else rebalances)
                                                 for m, s in seconds.items()), 1)
    if QUANTUM in b.methods and hardware:
        per_solve = quantum_qpu_seconds(config, schedule)
        summary["estimated_qpu_seconds_per_solve"] = per_solve
        if per_solve is not None:
            summary["estimated_qpu_seconds"] = per_solve * rebalances
            limit = config.backend.max_qpu_seconds
            summary["spending_guard"] = ("no limit (backend.max_qpu_seconds unset)" if limit is None else
                                         f"{'within' if per_solve * rebalances <= limit else 'ABOVE'} "
                                         f"backend.max_qpu_seconds {limit:g}")
        summary["note"] = "quantum on hardware is not timed by a dry run: queue and QPU time come on top"
    return summary


def timing_row(config: ExperimentConfig, schedule: Schedule) -> int:
    """The first rebalance row whose window is feasible (the first row when none is)."""
    for row in schedule.rebalances:
        market = estimate_market(schedule.window(row), frequency="as_is", covariance=config.data.covariance)
        if infeasible_window(config, market.mu) is None:
            return row
    return schedule.first


def quantum_qpu_seconds(config: ExperimentConfig, schedule: Schedule) -> float | None:
    """The estimated QPU seconds of one quantum solve of the first window's problem (one job per evaluation and
    one for the final samples, as ``qportfolio run --dry-run`` counts them)."""
    solver = config.quantum_solver()
    row = timing_row(config, schedule)
    market = estimate_market(schedule.window(row), frequency="as_is", covariance=config.data.covariance)
    problem = window_problem(config, market, schedule.prices.iloc[row].to_numpy(dtype=float),
                             config.backtest.initial_capital)
    backend = solver.make_backend()
    if not isinstance(backend, JobBackend):
        return None
    ansatz = solver.prepare_ansatz(problem, solver.encode(problem).encoding)
    report = backend.hardware_report(ansatz.circuit, 1, solver.shots, solver.planned_evaluations() + 1)
    return float(report["estimated_qpu_seconds"])


def check_backtest_spending(config: ExperimentConfig, approved: bool) -> float | None:
    """The spending guard (:func:`~qportfolio.app.planning.refuse_over_budget`) on a backtest's total estimated
    QPU time: every rebalance's quantum solve."""
    if config.backtest is None or QUANTUM not in config.backtest.methods or not qpu_guarded(config):
        return None
    schedule = load_schedule(config)
    per_solve = quantum_qpu_seconds(config, schedule)
    total = None if per_solve is None else per_solve * len(schedule.rebalances)
    refuse_over_budget(total, config.backend.max_qpu_seconds, approved, f" for {len(schedule.rebalances)} rebalances",
                       "fewer rebalances (backtest.rebalance, start, end), lower solver.maxiter or solver.shots")
    return total


# --------------------------------------------------------------------------- the command


def command(args) -> int:
    """``qportfolio backtest CONFIG [--out DIR] [--dry-run] [--yes]`` or ``qportfolio backtest --resume RUN_DIR``."""
    progress = None if args.quiet else ("bar" if sys.stderr.isatty() else "log")
    if (args.config is None) == (args.resume is None):
        raise ConfigError("qportfolio backtest takes a CONFIG to start a backtest or --resume RUN_DIR to continue one "
                          "(not both)")
    if args.resume is not None:
        if args.dry_run:
            raise ConfigError("--dry-run plans a new backtest: pass the CONFIG instead of --resume")
        return resume_command(args.resume, progress, args.yes)
    config = load_config(args.config)
    if args.dry_run:
        for key, value in plan(config).items():
            print(f"{key:<34} {value}")
        return 0
    check_backtest(config)
    check_backtest_spending(config, args.yes)
    folder = start_backtest(config, args.out)
    with _interruptible(folder):
        result = execute(config, folder, progress)
    print(summary_table(result))
    print(f"run folder  {folder}")
    return 0


def resume_command(folder: str | Path, progress: bool | str | None = None, approve_spending: bool = False) -> int:
    """``qportfolio backtest --resume RUN_DIR`` (and ``qportfolio resume`` on a backtest's folder)."""
    folder = Path(folder)
    with _interruptible(folder):
        was_complete = (folder / "result.json").is_file() and is_backtest(folder) \
            and load_result(folder).get("status") == "complete"
        result = resume(folder, progress, approve_spending)
    if was_complete:
        print(f"{folder} is a complete backtest: nothing to resume")
    print(summary_table(result))
    print(f"run folder  {folder}")
    return 0


@contextlib.contextmanager
def _interruptible(folder: Path):
    """An interrupt (Ctrl-C, SIGTERM) once the folder exists says how to continue it."""
    try:
        yield
    except RunInterrupted:
        raise
    except KeyboardInterrupt:
        raise RunInterrupted(folder) from None


def summary_table(result: dict) -> str:
    """The short table printed after a backtest."""
    lines = [f"{'method':<24}{'final $':>12}{'ann. return':>13}{'ann. vol':>10}{'Sharpe':>8}{'max DD':>8}"
             f"{'turnover':>10}{'cost $':>9}{'held':>6}"]
    for method, m in result["methods"].items():
        def cell(key, fmt):
            return format(m[key], fmt) if m.get(key) is not None else "—"
        lines.append(f"{method:<24}{cell('final_value', ',.2f'):>12}{cell('annualized_return', '.2%'):>13}"
                     f"{cell('annualized_volatility', '.2%'):>10}{cell('sharpe_ratio', '.2f'):>8}"
                     f"{cell('max_drawdown', '.1%'):>8}{cell('average_turnover', '.2f'):>10}"
                     f"{cell('total_cost', '.2f'):>9}{m['held']:>6}")
    lines.append(f"rebalances  {result['schedule']['rebalances']} ({result['schedule']['first_rebalance']} … "
                 f"{result['schedule']['last_rebalance']}), infeasible windows {result['infeasible_windows']['count']}")
    q = result.get("quantum_equals_exact")
    if q:
        lines.append(f"quantum = exact  {q['equal']}/{q['compared']} rebalances")
    return "\n".join(lines)
