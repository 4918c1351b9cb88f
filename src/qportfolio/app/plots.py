"""Figures of a run: optimizer convergence, the most likely sampled allocations, the allocations
themselves, and (markowitz) the efficient frontier; across runs, every answer on the frontier
(:func:`comparison`), and the frontier alone (:func:`frontier_figure`). Written as PNG with the
non-interactive backend."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from qportfolio.app.results import write_atomic
from qportfolio.classical import ClassicalSolution, efficient_frontier, solve_markowitz
from qportfolio.errors import QPortfolioError
from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, optimum_tolerance

TOP_STATES = 16


def save_figure(figure, path: Path) -> Path:
    """Write ``figure`` as PNG at ``path`` at once (:func:`~qportfolio.app.results.write_atomic`), and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    write_atomic(path, buffer.getvalue())
    return path


def convergence(history, optimum: float, objective: str, path: Path, parameters_per_layer: int | None = 2) -> Path:
    """Objective value per evaluation, in stages of equal parameter count (a search that grows the depth
    starts each depth from new angles, so a stage's first evaluations jump up: the shaded bands and their
    labels say where each begins). ``parameters_per_layer`` turns a stage's parameter count into its
    depth p (2 for QAOA); ``None`` labels stages by parameter count."""
    values = np.array([h.value for h in history], dtype=float)
    sizes = np.array([len(h.parameters) for h in history])
    steps = np.arange(1, len(values) + 1)
    figure, axis = plt.subplots(figsize=(6.5, 3.6))
    starts = np.flatnonzero(np.r_[True, sizes[1:] != sizes[:-1]]) if len(sizes) else np.array([], dtype=int)
    if len(starts) > 1:
        bounds = np.r_[starts, len(values)]
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            if k % 2:
                axis.axvspan(a + 0.5, b + 0.5, color="0.93", lw=0)
            size = int(sizes[a])
            label = f"p={size // parameters_per_layer}" if parameters_per_layer else f"{size} params"
            axis.annotate(label, (a + 1, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                          textcoords="offset points", fontsize=6, color="0.35")
    axis.plot(steps, values, lw=0.8, label=f"{objective} of the QUBO energy")
    axis.plot(steps, np.minimum.accumulate(values) if len(values) else values, lw=1.5, label="best so far")
    axis.axhline(optimum, color="k", ls="--", lw=1, label="exact optimum")
    axis.set_xlabel("objective evaluation")
    axis.set_ylabel("energy (problem units)")
    axis.set_title("Optimizer convergence")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if len(starts) > 1:
        figure.text(0.01, -0.04, "Bands: one depth each, started from new angles. Spikes are the optimizer's trial "
                    "steps (line searches);\nthe best-so-far line is what the search keeps.", fontsize=7, va="top")
    return save_figure(figure, path)


def distribution(table, optimum: float, tickers, path: Path) -> Path:
    allocations, probabilities, objectives, feasible = table.by_allocation()
    k = min(TOP_STATES, len(probabilities))
    labels = [",".join(str(int(v)) for v in allocations[i]) for i in range(k)]
    feasible = feasible[:k]
    optimal = feasible & (objectives[:k] <= optimum + optimum_tolerance(optimum))
    colors = np.where(optimal, "tab:green", np.where(feasible, "tab:blue", "tab:red"))
    figure, axis = plt.subplots(figsize=(7, 3.8))
    axis.bar(range(k), probabilities[:k], color=colors)
    axis.set_xlabel("allocation (" + ", ".join(tickers) + ")")
    axis.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=7)
    axis.set_ylabel("probability")
    axis.set_title("Most likely sampled allocations (green optimal, blue feasible, red infeasible)", fontsize=9)
    return save_figure(figure, path)


def allocation(problem, answers: dict[str, np.ndarray], path: Path) -> Path:
    tickers = problem.tickers
    scale = problem.prices if isinstance(problem, IntegerSharesProblem) else np.ones(len(tickers))
    unit = "dollars held" if isinstance(problem, IntegerSharesProblem) else problem.variable_unit
    figure, axis = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / max(len(answers), 1)
    for k, (name, values) in enumerate(answers.items()):
        axis.bar(np.arange(len(tickers)) + k * width, np.asarray(values) * scale, width, label=name)
    axis.set_xticks(np.arange(len(tickers)) + width * (len(answers) - 1) / 2, tickers)
    axis.set_ylabel(unit)
    axis.set_title("Allocation")
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def frontier(problem: MarkowitzProblem, solution: ClassicalSolution, path: Path, points: int = 40) -> Path:
    curve = efficient_frontier(problem, points)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([c[0] for c in curve], [c[1] for c in curve], lw=1.5, label="efficient frontier")
    axis.scatter(np.sqrt(np.diag(problem.sigma)), problem.mu, s=12, c="gray", label="single assets")
    for ticker, x, y in zip(problem.tickers, np.sqrt(np.diag(problem.sigma)), problem.mu):
        axis.annotate(ticker, (x, y), fontsize=7)
    axis.scatter(np.sqrt(solution.variance), solution.expected_return, marker="*", s=120,
                 c="tab:red", label="this solution", zorder=3)
    axis.set_xlabel("volatility per period")
    axis.set_ylabel("expected return per period")
    axis.set_title("Efficient frontier" + (" (long-only)" if not problem.allow_short else ""))
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def run_figures(folder: Path, problem, exact: ClassicalSolution, outcome=None) -> list[Path]:
    """Every figure that applies to this run."""
    written = []
    if isinstance(problem, MarkowitzProblem):
        written.append(frontier(problem, exact, folder / "frontier.png"))
        written.append(allocation(problem, {"classical": exact.vector}, folder / "allocation.png"))
        return written
    answers = {"classical exact": exact.vector}
    if outcome is not None:
        table = outcome.table
        per_layer = 2 if outcome.ansatz.algorithm == "qaoa" else None
        written.append(convergence(outcome.search.history, exact.objective, "objective", folder / "convergence.png",
                                   per_layer))
        written.append(distribution(table, exact.objective, problem.tickers, folder / "distribution.png"))
        best = table.best_feasible()
        if best is not None:
            answers["quantum"] = table.allocations[best]
    written.append(allocation(problem, answers, folder / "allocation.png"))
    return written


#: Marker per method in the comparison figure (others cycle through the rest).
METHOD_MARKERS = {"quantum": "*", "classical_exact": "D", "scip": "s", "relax_round": "^", "greedy": "v",
                  "simulated_annealing": "o", "tabu": "P"}
_SPARE_MARKERS = ("X", "h", "<", ">", "p", "8")


def comparison(instances: list[dict], points: list[dict], path: Path) -> Path:
    """Efficient frontier(s) with discrete answers on them.

    ``instances``: dicts with ``label``, ``curve`` (from :func:`efficient_frontier`), ``mu``, ``sigma`` and
    ``tickers``; ``points``: dicts with ``run``, ``method``, ``volatility``, ``expected_return``, ``feasible``
    and optionally ``gap`` (objective − proven optimum). Frontiers are black (one line style per instance),
    colour tells the run and shape the method. Markers are hollow and shrink method by method, so answers that
    coincide stay visible as nested shapes; infeasible answers are grey. A discrete answer's place is that of
    its weights ``w = d/Σd``, which forget the budget and the return floor, so nearness to the frontier is not
    quality: the legend gives each method's gap to the proven optimum.
    """
    from matplotlib.lines import Line2D

    styles = ("-", "--", ":", "-.")
    figure, axis = plt.subplots(figsize=(8.5, 5))
    handles = []
    for k, instance in enumerate(instances):
        curve = instance["curve"]
        style = styles[k % len(styles)]
        axis.plot([c[0] for c in curve], [c[1] for c in curve], lw=1.3, color="k", ls=style)
        handles.append(Line2D([], [], color="k", ls=style, label=f"frontier: {instance['label']}"))
        vols = np.sqrt(np.diag(instance["sigma"]))
        axis.scatter(vols, instance["mu"], s=8, c="lightgray", zorder=2)
        for ticker, x, y in zip(instance["tickers"], vols, instance["mu"]):
            axis.annotate(ticker, (x, y), fontsize=6, color="gray")
    runs = list(dict.fromkeys(p["run"] for p in points))
    methods = list(dict.fromkeys(p["method"] for p in points))
    spare = iter(_SPARE_MARKERS * 10)
    shapes = {m: METHOD_MARKERS.get(m) or next(spare) for m in methods}
    palette = plt.get_cmap("tab10")
    for p in points:
        rank = methods.index(p["method"])
        color = palette(runs.index(p["run"]) % 10) if p["feasible"] else "gray"
        axis.scatter(p["volatility"], p["expected_return"], marker=shapes[p["method"]], s=max(200 - 25 * rank, 30),
                     facecolors="none", edgecolors=color, linewidths=1.2, zorder=3)
    for k, run in enumerate(runs):
        handles.append(Line2D([], [], ls="", marker="s", markersize=7, color=palette(k % 10), label=f"run: {run}"))
    for method in methods:
        handles.append(Line2D([], [], ls="", marker=shapes[method], markersize=8, markerfacecolor="none",
                              markeredgecolor="k", label=method + _gap_label([p for p in points if p["method"] == method])))
    if any(not p["feasible"] for p in points):
        handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", markeredgecolor="gray",
                              label="infeasible answer"))
    axis.set_xlabel("volatility per period (weights w = d / Σd)")
    axis.set_ylabel("expected return per period")
    axis.set_title("Every answer against the efficient frontier")
    if any(p.get("gap") is not None for p in points):
        figure.text(0.01, -0.02, "An answer's place uses its weights w = d/Σd, which forget the budget and the return "
                    "floor: nearness to the frontier is not quality. The gap to the proven optimum (legend) is.",
                    fontsize=7, va="top")
    axis.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return save_figure(figure, path)


def _gap_label(points: list[dict]) -> str:
    """`` (gap g)`` of a method's answers, ``g`` a range over runs; ``infeasible`` where none is feasible."""
    gaps = [p["gap"] for p in points if p.get("gap") is not None and p["feasible"]]
    if not gaps:
        return " (infeasible)" if points and not any(p["feasible"] for p in points) else ""
    low, high = min(gaps), max(gaps)
    return f" (gap {low:.3g})" if low == high else f" (gap {low:.3g}–{high:.3g})"


def frontier_figure(problem: MarkowitzProblem, path: Path, points: int = 40) -> Path:
    """The continuous efficient frontier alone (``qportfolio frontier``): the curve, single assets, the
    global minimum variance portfolio, the maximum Sharpe portfolio with its capital market line and, for
    another objective or a target return, the problem's own answer."""

    curve = efficient_frontier(problem, points)
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    axis.plot([c[0] for c in curve], [c[1] for c in curve], lw=1.5, label="efficient frontier")
    vols = np.sqrt(np.diag(problem.sigma))
    axis.scatter(vols, problem.mu, s=12, c="gray", label="single assets")
    for ticker, x, y in zip(problem.tickers, vols, problem.mu):
        axis.annotate(ticker, (x, y), fontsize=7)
    base = {"tickers": problem.tickers, "mu": problem.mu, "sigma": problem.sigma, "allow_short": problem.allow_short}
    gmv = solve_markowitz(MarkowitzProblem(**base))
    axis.scatter(np.sqrt(gmv.variance), gmv.expected_return, marker="D", s=50, c="tab:green",
                 label="global minimum variance", zorder=3)
    try:
        tangency = solve_markowitz(MarkowitzProblem(**base, objective="max_sharpe", risk_free=problem.risk_free))
        vol_t, ret_t = float(np.sqrt(tangency.variance)), float(tangency.expected_return)
        top = max(c[0] for c in curve) * 1.05
        axis.plot([0, top], [problem.risk_free, problem.risk_free + (ret_t - problem.risk_free) / vol_t * top],
                  lw=0.8, ls="--", c="tab:orange", label="capital market line")
        axis.scatter([vol_t], [ret_t], marker="o", s=50, c="tab:orange", label="maximum Sharpe", zorder=3)
    except QPortfolioError:
        pass
    if problem.objective != "min_variance" or problem.target_return is not None:
        own = solve_markowitz(problem)
        axis.scatter(np.sqrt(own.variance), own.expected_return, marker="*", s=120,
                     c="tab:red", label=f"this problem ({problem.objective})", zorder=4)
    axis.set_xlim(left=0)
    axis.set_xlabel("volatility per period")
    axis.set_ylabel("expected return per period")
    axis.set_title("Efficient frontier" + (" (long-only)" if not problem.allow_short else " (short selling allowed)"))
    axis.legend(fontsize=8)
    return save_figure(figure, path)
