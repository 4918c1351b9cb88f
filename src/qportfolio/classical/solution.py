"""A classical answer and when two answers count as the same optimum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qportfolio.problems import (
    Evaluation,
    MarkowitzProblem,
    PortfolioProblem,
)

#: SCIP's answer counts as proven optimal when its status is optimal and its gap is at most this
#: (relative, or absolute in objective units, whichever is looser).
PROVEN_GAP = 1e-9

@dataclass(frozen=True)
class ClassicalSolution:
    """One classical answer: the allocation, its metrics, and how sure we are of it."""

    method: str
    allocation: np.ndarray
    evaluation: Evaluation
    proven_optimal: bool
    seconds: float
    worst_feasible_objective: float | None = None
    num_feasible: int | None = None
    optimal_allocations: np.ndarray | None = None
    #: ``ok`` | ``timeout`` (best incumbent, not proven) — solvers that can stop early set it.
    status: str = "ok"
    #: Relative optimality gap reported by a MIP solver (0 when proven), else None.
    gap: float | None = None
    #: The solver's proven bound on the optimum (a lower bound, the problem being a minimisation).
    bound: float | None = None
    message: str | None = None

    @property
    def objective(self) -> float:
        """The answer's objective on the original problem (NaN when the method found no allocation)."""
        return float("nan") if self.evaluation is None else float(self.evaluation.objective[0])







def allocation_dict(problem: PortfolioProblem, values) -> dict:
    """An allocation by ticker: whole shares or 0/1 as ints, Markowitz weights as floats."""
    cast = float if isinstance(problem, MarkowitzProblem) else int
    return {t: cast(v) for t, v in zip(problem.tickers, np.asarray(values))}


def solution_entry(problem: PortfolioProblem, allocation, **extra) -> dict:
    """One answer in the result contract: ``allocation`` by ticker and ``problem.evaluate``'s objective,
    variance, expected return, cost and feasibility (None-valued, infeasible, without an allocation),
    then ``extra`` (a ``message`` only when it says something)."""
    if allocation is None:
        entry = {"allocation": None, "objective": None, "variance": None, "expected_return": None, "cost": None,
                 "feasible": False}
    else:
        values = np.asarray(allocation, dtype=float if isinstance(problem, MarkowitzProblem) else np.int64)
        entry = {"allocation": allocation_dict(problem, values), **problem.evaluate(values[None, :]).row(0)}
    entry.update({key: value for key, value in extra.items() if key != "message" or value})
    return entry


def method_entry(problem: PortfolioProblem, allocation, seconds: float, status: str = "ok",
                 message: str | None = None, **extra) -> dict:
    """A classical method's entry: :func:`solution_entry` with its ``time_s`` and ``status``."""
    return solution_entry(problem, allocation, time_s=float(seconds), status=status, message=message, **extra)
