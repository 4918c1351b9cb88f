"""A classical answer and when two answers count as the same optimum."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qportfolio.problems import (
    Evaluation,
    MarkowitzProblem,
    PortfolioProblem,
)

#: SCIP's answer counts as proven optimal when its status is optimal and its gap is at most this
#: (relative, or absolute in objective units, whichever is looser).
PROVEN_GAP = 1e-9


@dataclass(frozen=True, repr=False, eq=False)
class ClassicalSolution:
    """One classical answer: the allocation, its metrics on the original problem, and how sure we are of it.

    The result shape every solution shares: ``allocation`` by ticker, scalar ``objective``, ``variance``,
    ``expected_return``, ``cost`` and ``feasible``, a one-line repr and :meth:`to_dict`. ``vector`` is the same
    allocation as an array in ticker order (None when the method found none); ``evaluation`` its
    ``problem.evaluate`` row."""

    method: str
    vector: np.ndarray | None
    evaluation: Evaluation | None
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
    #: The problem answered: its tickers label the allocation.
    problem: PortfolioProblem = field(kw_only=True)

    @property
    def allocation(self) -> dict | None:
        """The allocation by ticker: whole shares or 0/1 as ints, Markowitz weights as floats (None: no answer)."""
        return None if self.vector is None else allocation_dict(self.problem, self.vector)

    def _measure(self, name: str, kind=float):
        return None if self.evaluation is None else kind(getattr(self.evaluation, name)[0])

    @property
    def objective(self) -> float:
        """The answer's objective on the original problem (NaN when the method found no allocation)."""
        return float("nan") if self.evaluation is None else float(self.evaluation.objective[0])

    @property
    def variance(self) -> float | None:
        return self._measure("variance")

    @property
    def expected_return(self) -> float | None:
        return self._measure("expected_return")

    @property
    def cost(self) -> float | None:
        return self._measure("cost")

    @property
    def feasible(self) -> bool:
        return bool(self._measure("feasible", bool))

    def to_dict(self) -> dict:
        """The answer in the result contract (:func:`solution_entry`) with ``method``, ``proven_optimal``,
        ``time_s``, ``status`` and whichever of ``ties``, ``gap``, ``bound`` and ``message`` are known."""
        ties = None if self.optimal_allocations is None else len(self.optimal_allocations)
        known = {k: v for k, v in {"ties": ties, "gap": self.gap, "bound": self.bound}.items() if v is not None}
        return solution_entry(self.problem, self.vector, method=self.method, proven_optimal=self.proven_optimal,
                              time_s=float(self.seconds), status=self.status, **known, message=self.message)

    def __repr__(self) -> str:
        if self.vector is None:
            return f"ClassicalSolution({self.method}: no allocation, {self.status}, {self.seconds:.3g} s)"
        proven = ", proven optimal" if self.proven_optimal else ""
        return (f"ClassicalSolution({self.method}: {allocation_text(self.allocation)}, objective {self.objective:.6g}, "
                f"{'feasible' if self.feasible else 'infeasible'}{proven}, {self.seconds:.3g} s)")


def allocation_dict(problem: PortfolioProblem, values) -> dict:
    """An allocation by ticker: whole shares or 0/1 as ints, Markowitz weights as floats."""
    cast = float if isinstance(problem, MarkowitzProblem) else int
    return {t: cast(v) for t, v in zip(problem.tickers, np.asarray(values))}


def allocation_text(allocation: dict) -> str:
    """``AAPL=2 JPM=0 XOM=2``: whole numbers as they are, weights to 4 significant digits, a solver's round-off
    (``|w| < 1e-6``, e.g. 4.4e-09) as 0."""
    return " ".join(f"{k}={0 if abs(v) < 1e-6 else v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in allocation.items())


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
