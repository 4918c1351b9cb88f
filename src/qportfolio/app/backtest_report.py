"""What a backtest reports: performance measures (computed by skfolio), the figures and ``report.md``.

The measures are skfolio's, on a method's period returns ``r_s = V_s/V_{s−1} − 1`` after its first purchase,
with ``f`` periods a year (252 daily, 52 weekly, 12 monthly; ``as_is``: 365.25 days over the median gap):

* ``annualized_return`` = ``f·mean(r)`` and ``annualized_volatility`` = ``√f·std(r)`` (ddof = 1);
* ``sharpe_ratio`` = ``√f·mean(r)/std(r)`` and ``sortino_ratio`` = ``√f·mean(r)/semi-deviation(r)`` (risk-free 0);
* ``max_drawdown``: the largest fall of the compounded value from a running peak, as a fraction;
* ``calmar_ratio``: skfolio's, ``mean(r)/max_drawdown`` with the *per-period* mean (×f for the annual form).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from qportfolio.app.plots import save_figure

PERIODS_PER_YEAR = {"daily": 252, "weekly": 52, "monthly": 12}
MEASURES = ("annualized_return", "annualized_volatility", "sharpe_ratio", "sortino_ratio", "max_drawdown",
            "calmar_ratio")


def periods_per_year(frequency: str, dates: pd.DatetimeIndex) -> float:
    """The annualisation factor of ``frequency`` (``as_is``: from the median spacing of ``dates``)."""
    if frequency in PERIODS_PER_YEAR:
        return float(PERIODS_PER_YEAR[frequency])
    gap = float(np.median(np.diff(dates.values).astype("timedelta64[s]").astype(float))) / 86_400.0
    return 365.25 / gap if gap > 0 else 1.0


def _portfolio(returns: np.ndarray, factor: float):
    from skfolio import Portfolio

    return Portfolio(X=np.asarray(returns, dtype=float)[:, None], weights=np.array([1.0]), annualization_factor=factor,
                     compounded=True)


def measures(returns: np.ndarray, factor: float) -> dict:
    """skfolio's measures of a return series (None each when there are fewer than two returns)."""
    if len(returns) < 2:
        return dict.fromkeys(MEASURES)
    p = _portfolio(returns, factor)
    values = {"annualized_return": p.annualized_mean, "annualized_volatility": p.annualized_standard_deviation,
              "sharpe_ratio": p.annualized_sharpe_ratio, "sortino_ratio": p.annualized_sortino_ratio,
              "max_drawdown": p.max_drawdown, "calmar_ratio": p.calmar_ratio}
    return {k: (float(v) if np.isfinite(v) else None) for k, v in values.items()}


def drawdowns(returns: np.ndarray) -> np.ndarray:
    """skfolio's drawdown path of the compounded value (0 at a peak, negative below it)."""
    return np.asarray(_portfolio(returns, 1.0).drawdowns) if len(returns) else np.zeros(0)


# --------------------------------------------------------------------------- figures


def coinciding_methods(frame: pd.DataFrame) -> list[tuple[list[str], pd.DataFrame]]:
    """Methods grouped by identical value paths (to 1e-9 relative), in first-seen order: each group is drawn
    as one line labelled with all its names, so no line hides another."""
    groups: list[tuple[list[str], pd.DataFrame]] = []
    for method, path_of in frame.groupby("method", sort=False):
        values = path_of["value"].to_numpy(dtype=float)
        for names, first in groups:
            other = first["value"].to_numpy(dtype=float)
            if len(other) == len(values) and np.allclose(other, values, rtol=1e-9, atol=0.0):
                names.append(method)
                break
        else:
            groups.append(([method], path_of))
    return groups


def _line_style(names: list[str], k: int) -> dict:
    if "quantum" in names:
        return {"lw": 2.4, "color": "black"}
    return {"lw": 1.3, "ls": ("-", "--", "-.", ":")[k // 10 % 4], "color": plt.get_cmap("tab10")(k % 10)}


def _group_label(names: list[str]) -> str:
    return " = ".join(names) if len(names) <= 3 else f"{' = '.join(names[:3])} (+{len(names) - 3} identical)"


def _paths_figure(frame: pd.DataFrame, path: Path, height: float, ylabel: str, title: str, values_of) -> Path:
    """One line per group of coinciding methods (:func:`coinciding_methods`): ``values_of(path_of)`` gives the
    line's (dates, values)."""
    figure, axis = plt.subplots(figsize=(8.5, height))
    for k, (names, path_of) in enumerate(coinciding_methods(frame)):
        axis.plot(*values_of(path_of), label=_group_label(names), **_line_style(names, k))
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    return save_figure(figure, path)


def equity_figure(frame: pd.DataFrame, path: Path) -> Path:
    return _paths_figure(frame, path, 4.5, "portfolio value ($)",
                         "Out-of-sample equity curves (methods with identical paths share one line)",
                         lambda path_of: (pd.to_datetime(path_of["date"]), path_of["value"]))


def drawdown_figure(frame: pd.DataFrame, path: Path) -> Path:
    return _paths_figure(frame, path, 3.5, "drawdown",
                         "Drawdowns from the running peak (identical paths share one line)",
                         lambda path_of: (pd.to_datetime(path_of["date"]).iloc[1:],
                                          drawdowns(path_of["period_return"].to_numpy()[1:])))


def holdings_figure(frame: pd.DataFrame, tickers: list[str], path: Path, prices: pd.DataFrame | None = None) -> Path:
    """Per method, the share of the value in each asset (and cash) over time, stacked."""
    methods = list(dict.fromkeys(frame["method"]))
    columns = min(3, len(methods))
    rows = int(np.ceil(len(methods) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.6 * rows), sharex=True, sharey=True,
                                squeeze=False)
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, len(tickers) + 1))
    for k, method in enumerate(methods):
        axis = axes[k // columns][k % columns]
        path_of = frame[frame["method"] == method]
        dates = pd.to_datetime(path_of["date"])
        cash = np.array([h.get("cash", 0.0) for h in path_of["holdings"]]) / path_of["value"].to_numpy()
        invested = 1.0 - cash  # the dollar share held in assets, split by each asset's share of the shares' value
        dollars = np.array([[h.get(t, 0.0) for t in tickers] for h in path_of["holdings"]], dtype=float)
        if prices is not None:
            dollars = dollars * prices.loc[dates, tickers].to_numpy()
        totals = dollars.sum(axis=1, keepdims=True)
        shares = np.divide(dollars, totals, out=np.zeros_like(dollars), where=totals > 0) * invested[:, None]
        axis.stackplot(dates, *shares.T, np.clip(cash, 0, None), colors=colors, labels=[*tickers, "cash"])
        axis.set_title(method, fontsize=9)
        axis.set_ylim(0, 1.05)
    for k in range(len(methods), rows * columns):
        axes[k // columns][k % columns].axis("off")
    axes[0][0].legend(fontsize=6, loc="lower left", ncol=2)
    figure.suptitle("Holdings over time (share of value)", fontsize=10)
    figure.autofmt_xdate()
    return save_figure(figure, path)


def write_figures(frame: pd.DataFrame, tickers: list[str], folder: Path, prices: pd.DataFrame | None = None) -> list[Path]:
    return [equity_figure(frame, folder / "equity.png"), drawdown_figure(frame, folder / "drawdowns.png"),
            holdings_figure(frame, tickers, folder / "holdings.png", prices)]


# --------------------------------------------------------------------------- report.md


def _cell(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown_table(result: dict) -> str:
    """The per-method table of a backtest's ``result.json``."""
    lines = ["| method | final value | total return | ann. return | ann. volatility | Sharpe | Sortino | max drawdown "
             "| Calmar | avg turnover | total cost | held |", "|---|" + "---:|" * 11]
    for method, m in result["methods"].items():
        lines.append(
            f"| {method} | ${m['final_value']:,.2f} | {m['total_return']:.1%} | {_cell(m['annualized_return'], '.1%')} "
            f"| {_cell(m['annualized_volatility'], '.1%')} | {_cell(m['sharpe_ratio'], '.2f')} "
            f"| {_cell(m['sortino_ratio'], '.2f')} | {_cell(m['max_drawdown'], '.1%')} "
            f"| {_cell(m['calmar_ratio'], '.3f')} | {_cell(m['average_turnover'], '.2f')} | ${m['total_cost']:,.2f} "
            f"| {m['held']} |")
    return "\n".join(lines)


def write_report(result: dict) -> str:
    """``report.md`` of a finished backtest."""
    s = result["schedule"]
    lines = [f"# Backtest: {result['name']}", "",
             f"{result['problem']} on {', '.join(result['assets'])}; {s['frequency']} periods, {s['rebalances']} "
             f"rebalances from {s['first_rebalance']} to {s['last_rebalance']} (every "
             f"{result.get('rebalance', '?')} period(s)), each on the {s['train']} returns before it; held to "
             f"{s['last_date']}. ${result['initial_capital']:,.2f} to start, transaction cost "
             f"{result['transaction_cost_bps']:g} bp of the traded value.", "",
             markdown_table(result), "",
             "Measures by skfolio on the period returns after the first purchase: annualised mean and standard "
             f"deviation ({s['periods_per_year']:g} periods a year), Sharpe and Sortino ratios (risk-free 0, "
             "annualised), maximum drawdown of the compounded value, Calmar ratio (skfolio's: mean *per-period* "
             "return / maximum drawdown). Turnover: traded value over the portfolio value, averaged over rebalances. "
             "`held`: rebalances at which the method kept its holdings (infeasible window, no feasible answer, or "
             "buy-and-hold).", ""]
    infeasible = result["infeasible_windows"]
    lines.append(f"Infeasible windows (return floor out of reach; every method held): {infeasible['count']}"
                 + (f" ({', '.join(infeasible['dates'])})" if infeasible["dates"] else "") + ".")
    q = result.get("quantum_equals_exact")
    if q:
        qubits = q.get("qubits") or {}
        lines.append(f"Quantum = exact optimum at {q['equal']} of {q['compared']} feasible rebalances"
                     + (f" ({qubits['min']}–{qubits['max']} qubits)." if qubits else "."))
    lines.append("")
    for figure in result.get("figures", []):
        lines.append(f"![{Path(figure).stem}]({figure})")
    return "\n".join(lines) + "\n"
