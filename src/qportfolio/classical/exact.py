"""The exact answer to any problem: enumeration while it is small, SCIP's proven optimum past that, and
the Markowitz closed form or convex QP for continuous weights."""

from __future__ import annotations

from qportfolio.classical.enumeration import MAX_ENUMERATED, enumerate_optimum, enumeration_size
from qportfolio.classical.markowitz import solve_markowitz
from qportfolio.classical.scip import solve_scip
from qportfolio.classical.solution import ClassicalSolution
from qportfolio.problems import MarkowitzProblem, PortfolioProblem


def solve_exact(problem: PortfolioProblem, time_limit: float = 60.0, seed: int = 0,
                limit: int = MAX_ENUMERATED) -> ClassicalSolution:
    """The proven optimum of ``problem``: Markowitz by :func:`solve_markowitz`; a discrete problem by
    enumeration up to ``limit`` allocations, else by SCIP within ``time_limit`` seconds (``proven_optimal``
    only when SCIP closes the gap)."""
    if isinstance(problem, MarkowitzProblem):
        return solve_markowitz(problem)
    if enumeration_size(problem) <= limit:
        return enumerate_optimum(problem, limit)
    return solve_scip(problem, time_limit, seed)
