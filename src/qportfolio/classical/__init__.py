"""Classical solvers on the original problem: enumeration, SCIP, Markowitz closed forms and convex QPs,
the efficient frontier, the continuous relaxation, relax-and-round and greedy."""

from qportfolio.classical.convex import covariance_factor, solve_convex
from qportfolio.classical.enumeration import MAX_ENUMERATED, enumerate_optimum, enumeration_size
from qportfolio.classical.exact import solve_exact
from qportfolio.classical.heuristics import greedy, relax_and_round
from qportfolio.classical.markowitz import efficient_frontier, solve_markowitz
from qportfolio.classical.relaxation import continuous_relaxation
from qportfolio.classical.scip import objective_parts, scip_solve, solve_scip
from qportfolio.classical.solution import ClassicalSolution, allocation_text, solution_entry
from qportfolio.problems import optimum_tolerance

__all__ = [
    "MAX_ENUMERATED", "ClassicalSolution", "allocation_text", "continuous_relaxation", "covariance_factor",
    "efficient_frontier", "enumerate_optimum", "enumeration_size", "greedy", "objective_parts",
    "optimum_tolerance", "relax_and_round", "scip_solve", "solution_entry", "solve_convex", "solve_exact",
    "solve_markowitz", "solve_scip",
]
