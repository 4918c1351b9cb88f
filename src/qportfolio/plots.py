"""Figures of a run: optimizer convergence, the most likely sampled allocations, the allocations
themselves, and (markowitz) the efficient frontier. Written as PNG with the non-interactive backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from qportfolio.classical import ClassicalSolution, efficient_frontier  # noqa: E402
from qportfolio.problem import IntegerSharesProblem, MarkowitzProblem  # noqa: E402

TOP_STATES = 16


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=120, bbox_inches="tight")
    plt.close(figure)
    temporary.replace(path)
    return path


def convergence(history_values: np.ndarray, optimum: float, objective: str, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(np.arange(1, len(history_values) + 1), history_values, lw=1, label=f"{objective} of the QUBO energy")
    axis.plot(np.arange(1, len(history_values) + 1), np.minimum.accumulate(history_values), lw=1.5,
              label="best so far")
    axis.axhline(optimum, color="k", ls="--", lw=1, label="exact optimum")
    axis.set_xlabel("objective evaluation")
    axis.set_ylabel("energy (problem units)")
    axis.set_title("Optimizer convergence")
    axis.legend(fontsize=8)
    return _save(figure, path)


def distribution(table, optimum: float, tickers, path: Path) -> Path:
    allocations, probabilities, objectives, feasible = table.by_allocation()
    k = min(TOP_STATES, len(probabilities))
    labels = [",".join(str(int(v)) for v in allocations[i]) for i in range(k)]
    feasible = feasible[:k]
    optimal = feasible & (objectives[:k] <= optimum + 1e-9 * max(1.0, abs(optimum)))
    colors = np.where(optimal, "tab:green", np.where(feasible, "tab:blue", "tab:red"))
    figure, axis = plt.subplots(figsize=(7, 3.8))
    axis.bar(range(k), probabilities[:k], color=colors)
    axis.set_xlabel("allocation (" + ", ".join(tickers) + ")")
    axis.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=7)
    axis.set_ylabel("probability")
    axis.set_title("Most likely sampled allocations (green optimal, blue feasible, red infeasible)", fontsize=9)
    return _save(figure, path)


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
    return _save(figure, path)


def frontier(problem: MarkowitzProblem, solution: ClassicalSolution, path: Path, points: int = 40) -> Path:
    curve = efficient_frontier(problem, points)
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([c[0] for c in curve], [c[1] for c in curve], lw=1.5, label="efficient frontier")
    axis.scatter(np.sqrt(np.diag(problem.sigma)), problem.mu, s=12, c="gray", label="single assets")
    for ticker, x, y in zip(problem.tickers, np.sqrt(np.diag(problem.sigma)), problem.mu):
        axis.annotate(ticker, (x, y), fontsize=7)
    axis.scatter(np.sqrt(solution.evaluation.variance), solution.evaluation.expected_return, marker="*", s=120,
                 c="tab:red", label="this solution", zorder=3)
    axis.set_xlabel("volatility per period")
    axis.set_ylabel("expected return per period")
    axis.set_title("Efficient frontier" + (" (long-only)" if not problem.allow_short else ""))
    axis.legend(fontsize=8)
    return _save(figure, path)


def run_figures(folder: Path, problem, exact: ClassicalSolution, quantum, table) -> list[Path]:
    """Every figure that applies to this run."""
    written = []
    if isinstance(problem, MarkowitzProblem):
        written.append(frontier(problem, exact, folder / "frontier.png"))
        written.append(allocation(problem, {"classical": exact.allocation}, folder / "allocation.png"))
        return written
    answers = {"classical exact": exact.allocation}
    if quantum is not None:
        _, result = quantum
        objective = "objective"
        written.append(convergence(result.history_values, exact.objective, objective, folder / "convergence.png"))
    if table is not None:
        written.append(distribution(table, exact.objective, problem.tickers, folder / "distribution.png"))
        best = table.best_feasible()
        if best is not None:
            answers["quantum"] = table.allocations[best]
    written.append(allocation(problem, answers, folder / "allocation.png"))
    return written
