"""Side by side: every answer of every run, next to the proven optimum, and on the efficient frontier.

* :func:`compare_runs` — one table across run folders and methods (each ``solutions.<method>`` entry of
  each ``result.json``): objective, gap to the proven optimum, feasibility, expected return, variance,
  cost and time, as aligned text, Markdown or CSV; for the quantum run also P(optimum) and its lift raw and
  post-selected (``metrics_postselected``: only the samples that meet the constraints, lift over uniform
  sampling of the feasible allocations), and the qubits the constraint encoding saved against slack.
* :func:`comparison_figure` — the continuous efficient frontier of each run's instance with every
  discrete answer on it, in comparable units: an allocation becomes portfolio weights ``w = d / Σd``
  (integer shares: dollars held ``d = p ∘ x``; selection: ``x / K``; markowitz: the weights), drawn at
  ``(√(wᵀΣw), μᵀw)``. The instance is rebuilt from the run's ``config.yaml`` data section (or from
  ``result.json → data.sigma`` when the run recorded it) and checked against the recorded ``mu``.
* :func:`frontier_table` — the continuous frontier alone (``qportfolio frontier CONFIG``), with the global
  minimum variance and maximum Sharpe portfolios, as a table; :func:`qportfolio.plots.frontier_figure`
  draws it.

The *proven optimum* of a run is ``solutions.classical_exact`` when it is marked ``proven_optimal``,
else ``solutions.scip`` when SCIP proved it. Markowitz runs have no gap column (their answer is exact).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from qportfolio.app import plots
from qportfolio.app.results import load_result, result_path
from qportfolio.choices import TableFormat
from qportfolio.classical import efficient_frontier, solve_markowitz
from qportfolio.data import load_market
from qportfolio.errors import ConfigError, QPortfolioError, RunFolderError
from qportfolio.problems import MarkowitzProblem, optimum_tolerance

FORMATS = TableFormat.values()
COLUMNS = ("run", "method", "status", "objective", "gap_to_optimum", "feasible", "expected_return", "variance",
           "cost", "p_optimal", "lift", "p_optimal_postselected", "lift_postselected", "qubits_saved", "time_s")


def reference_optimum(result: dict) -> tuple[float, str] | None:
    """``(objective, method)`` of the run's proven optimum, or None (markowitz, or nothing proven)."""
    if (result.get("problem") or {}).get("kind") == "markowitz":
        return None
    solutions = result.get("solutions") or {}
    for name in ("classical_exact", "scip"):
        entry = solutions.get(name)
        if entry and entry.get("proven_optimal") and entry.get("objective") is not None:
            return float(entry["objective"]), name
    return None


def gap_to_optimum(objective, optimum: tuple[float, str] | None) -> float | None:
    """``objective − optimum`` (0 within the optimum's tolerance), None without a proven optimum."""
    if optimum is None or objective is None:
        return None
    gap = float(objective) - optimum[0]
    return 0.0 if abs(gap) <= optimum_tolerance(optimum[0]) else gap


def comparison_rows(run_dirs) -> list[dict]:
    """One dict per (run, method) with the :data:`COLUMNS` keys (None where a value does not apply)."""
    rows = []
    for run_dir in run_dirs:
        result = load_result(run_dir)
        folder = result_path(run_dir).parent
        optimum = reference_optimum(result)
        for method, entry in (result.get("solutions") or {}).items():
            if entry is None:
                continue
            objective = entry.get("objective")
            gap = gap_to_optimum(objective, optimum)
            status = entry.get("status") or ("ok" if entry.get("allocation") is not None else "no answer")
            p_optimal, lift = _sampling_quality(result, method, entry)
            postselected = (result.get("metrics_postselected") or {}) if method == "quantum" else {}
            rows.append({"run": folder.name, "method": method, "status": status, "objective": objective,
                         "gap_to_optimum": gap, "feasible": entry.get("feasible"),
                         "expected_return": entry.get("expected_return"), "variance": entry.get("variance"),
                         "cost": entry.get("cost"), "p_optimal": p_optimal, "lift": lift,
                         "p_optimal_postselected": postselected.get("p_optimal"),
                         "lift_postselected": postselected.get("lift"),
                         "qubits_saved": _qubits_saved(result) if method == "quantum" else None,
                         "time_s": entry.get("time_s")})
    return rows


def _qubits_saved(result: dict) -> int | None:
    """Qubits the run's constraint encoding saved against the slack encoding (None when it did not choose)."""
    choice = (result.get("encoding") or {}).get("choice") or {}
    return choice.get("qubits_saved")


def _sampling_quality(result: dict, method: str, entry: dict) -> tuple[float | None, float | None]:
    """P(optimum) of a sampling method (the quantum run, its uniform yardstick, the QUBO samplers) and its lift
    over uniform sampling of the states the circuit reaches."""
    metrics = result.get("metrics") or {}
    p_optimal = metrics.get("p_optimal") if method == "quantum" else entry.get("p_optimal")
    uniform = metrics.get("uniform_p_optimal")
    lift = p_optimal / uniform if p_optimal is not None and uniform and method in ("quantum", "random_sampling") else None
    return p_optimal, lift


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "" if fmt == "csv" else "—"
    if isinstance(value, bool):
        return ("yes" if value else "no") if fmt != "csv" else str(value).lower()
    if isinstance(value, float):
        return repr(value) if fmt == "csv" else f"{value:.6g}"
    return str(value)


def render(rows: list[dict], columns: tuple[str, ...], fmt: str) -> str:
    """Rows as an aligned text table, a Markdown table or CSV."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    cells = [[_cell(row.get(c), fmt) for c in columns] for row in rows]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return buffer.getvalue()
    if fmt == "markdown":
        numeric = [all(_is_number(row.get(c)) or row.get(c) is None for row in rows) for c in columns]
        lines = ["| " + " | ".join(columns) + " |",
                 "|" + "|".join("---:" if right else "---" for right in numeric) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells]) + "\n"
    widths = [max([len(c)] + [len(r[k]) for r in cells]) for k, c in enumerate(columns)]
    numeric = [all(_is_number(row.get(c)) or row.get(c) is None for row in rows) for c in columns]

    def line(values):
        return "  ".join(v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells]) + "\n"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_runs(run_dirs: list[Path], fmt: str = "table") -> str:
    """The comparison table across runs and methods (see the module docstring)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not run_dirs:
        raise RunFolderError("no run folders given: pass one or more folders written by `qportfolio run`")
    return render(comparison_rows(run_dirs), COLUMNS, fmt)


# --------------------------------------------------------------------------- the figure


def instance_estimates(run_dir: str | Path, result: dict | None = None) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``(tickers, mu, sigma)`` of the run's instance: recorded in result.json, or rebuilt from config.yaml."""
    result = result if result is not None else load_result(run_dir)
    folder = result_path(run_dir).parent
    data = result.get("data") or {}
    tickers = tuple(data.get("tickers") or (result.get("problem") or {}).get("assets") or ())
    recorded_mu = data.get("mu")
    if "sigma" in data and recorded_mu:
        mu = np.array([recorded_mu[t] for t in tickers], dtype=float)
        return tickers, mu, np.asarray(data["sigma"], dtype=float)
    config_path = folder / "config.yaml"
    try:
        import yaml

        config = yaml.safe_load(config_path.read_text()) or {}
        d = config.get("data") or {}
    except (OSError, ValueError) as error:
        raise RunFolderError(f"{config_path} is missing or unreadable ({type(error).__name__}): the frontier needs "
                             "the run's data section") from None
    source, path = d.get("source", "sp500"), d.get("path")
    if (folder / "prices.csv").is_file():  # the price table the run used, kept in its folder
        source, path = "csv", str(folder / "prices.csv")
    elif path is not None and not Path(path).exists() and (folder / path).exists():
        path = str(folder / path)
    try:
        market = load_market(source, d.get("assets"), path, d.get("start"), d.get("end"),
                             d.get("frequency", "daily"), d.get("covariance", "sample"))
    except QPortfolioError as error:
        raise RunFolderError(f"cannot rebuild the instance of {folder.name}: {error}") from None
    if tickers and tuple(market.tickers) != tickers:
        raise RunFolderError(f"{folder.name}: the data now gives tickers {list(market.tickers)}, the run had "
                             f"{list(tickers)}: the data source changed since the run")
    if recorded_mu:
        mu_then = np.array([recorded_mu[t] for t in market.tickers], dtype=float)
        if not np.allclose(market.mu, mu_then, rtol=1e-9, atol=1e-15):
            raise RunFolderError(f"{folder.name}: the data now gives other expected returns than the run recorded: "
                                 "the data source changed since the run")
    return tuple(market.tickers), np.asarray(market.mu), np.asarray(market.sigma)


def allocation_weights(result: dict, allocation: dict, tickers: tuple[str, ...]) -> np.ndarray | None:
    """Portfolio weights of an answer: integer shares by dollars held, selection ``x/K``, markowitz as is."""
    values = np.array([float(allocation.get(t, 0.0)) for t in tickers])
    problem = result.get("problem") or {}
    kind = problem.get("kind")
    if kind == "markowitz":
        return values
    if kind == "integer_shares":
        prices = problem.get("prices")
        if prices is None:
            last = (result.get("data") or {}).get("last_prices") or {}
            prices = [last.get(t) for t in tickers]
        values = values * np.asarray(prices, dtype=float)
    total = values.sum()
    return values / total if total > 0 else None


def comparison_figure(run_dirs: list[Path], path: Path, points: int = 40) -> Path:
    """The efficient frontier of each instance with every answer of every run on it; returns ``path``."""
    if not run_dirs:
        raise RunFolderError("no run folders given: pass one or more folders written by `qportfolio run`")
    instances: dict[tuple, dict] = {}
    markers = []
    for run_dir in run_dirs:
        result = load_result(run_dir)
        name = result_path(run_dir).parent.name
        tickers, mu, sigma = instance_estimates(run_dir, result)
        allow_short = bool((result.get("problem") or {}).get("allow_short", False))
        key = (tickers, mu.tobytes(), sigma.tobytes(), allow_short)
        if key not in instances:
            problem = MarkowitzProblem(tickers, mu, sigma, allow_short=allow_short)
            label = ", ".join(tickers) if len(tickers) <= 6 else f"{len(tickers)} assets"
            instances[key] = {"label": label + (" (shorts)" if allow_short else ""),
                              "curve": efficient_frontier(problem, points), "mu": mu, "sigma": sigma,
                              "tickers": tickers}
        optimum = reference_optimum(result)
        for method, entry in (result.get("solutions") or {}).items():
            if not entry or not entry.get("allocation"):
                continue
            weights = allocation_weights(result, entry["allocation"], tickers)
            if weights is None:
                continue
            markers.append({"run": name, "method": method, "volatility": float(np.sqrt(max(weights @ sigma @ weights, 0.0))),
                            "expected_return": float(mu @ weights), "feasible": bool(entry.get("feasible")),
                            "gap": gap_to_optimum(entry.get("objective"), optimum)})
    return plots.comparison(list(instances.values()), markers, Path(path))


# --------------------------------------------------------------------------- the frontier alone


def as_markowitz(problem) -> MarkowitzProblem:
    """The continuous Markowitz problem on a problem's assets (long-only unless it is one allowing shorts)."""
    if isinstance(problem, MarkowitzProblem):
        return problem
    return MarkowitzProblem(problem.tickers, problem.mu, problem.sigma)


def frontier_points(problem: MarkowitzProblem, points: int = 20) -> list[dict]:
    """The frontier's rows (label, volatility, expected return, Sharpe ratio, weights by ticker), then the
    global minimum variance, maximum Sharpe ratio and (if it is another objective) the problem's own answer."""
    rows = []

    def add(label, weights):
        weights = np.asarray(weights, dtype=float)
        variance = float(weights @ problem.sigma @ weights)
        volatility = float(np.sqrt(max(variance, 0.0)))
        expected = float(problem.mu @ weights)
        sharpe = (expected - problem.risk_free) / volatility if volatility > 0 else None
        rows.append({"point": label, "volatility": volatility, "expected_return": expected, "sharpe": sharpe,
                     **{t: float(w) for t, w in zip(problem.tickers, weights)}})

    for k, (_, _, weights) in enumerate(efficient_frontier(problem, points)):
        add(f"frontier {k + 1}", weights)
    base = {"tickers": problem.tickers, "mu": problem.mu, "sigma": problem.sigma, "allow_short": problem.allow_short}
    add("gmv", solve_markowitz(MarkowitzProblem(**base)).vector)
    try:
        add("max_sharpe", solve_markowitz(MarkowitzProblem(**base, objective="max_sharpe",
                                                           risk_free=problem.risk_free)).vector)
    except QPortfolioError:
        pass  # no maximum Sharpe portfolio for these returns (every excess return ≤ 0, or r_f above the GMV)
    if problem.objective != "min_variance" or problem.target_return is not None:
        add(problem.objective if problem.target_return is None else f"target {problem.target_return:g}",
            solve_markowitz(problem).vector)
    return rows


def frontier_table(problem: MarkowitzProblem, points: int = 20, fmt: str = "table") -> str:
    """The continuous efficient frontier as a table (see :func:`frontier_points`)."""
    problem = as_markowitz(problem)
    columns = ("point", "volatility", "expected_return", "sharpe") + tuple(problem.tickers)
    return render(frontier_points(problem, points), columns, fmt)
