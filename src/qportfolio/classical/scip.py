"""SCIP on the convex MIQP of the original constrained problem: the exact answer past enumeration."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from qportfolio.classical.convex import covariance_factor
from qportfolio.classical.solution import PROVEN_GAP, ClassicalSolution
from qportfolio.errors import (
    ProblemError,
    ResourceError,
)
from qportfolio.problems import (
    DiscreteProblem,
    IntegerSharesProblem,
    SelectionProblem,
)

#: SCIP statuses → the baseline vocabulary (``ok``, ``timeout``, ``infeasible``, ``failed``).
_SCIP_STATUS = {"optimal": "ok", "timelimit": "timeout", "infeasible": "infeasible", "gaplimit": "ok",
                "nodelimit": "timeout", "totalnodelimit": "timeout", "stallnodelimit": "timeout",
                "memlimit": "timeout", "sollimit": "timeout", "bestsollimit": "timeout", "userinterrupt": "failed",
                "unbounded": "failed", "inforunbd": "infeasible"}


@dataclass(frozen=True)
class ScipOutcome:
    """What SCIP did: its status (and ours), the best allocation found (or None), gap and bounds."""

    scip_status: str
    status: str
    allocation: np.ndarray | None
    primal: float | None
    dual: float | None
    gap: float | None
    proven_optimal: bool
    seconds: float
    nodes: int
    message: str | None = None


def objective_parts(problem: DiscreteProblem) -> tuple[np.ndarray, np.ndarray]:
    """``(Q, c)`` with objective ``xᵀQx + cᵀx`` in the problem's own units."""
    if isinstance(problem, IntegerSharesProblem):
        if problem.min_return is None:
            return problem.risk_aversion * problem.share_covariance, -problem.return_coefficients
        return problem.share_covariance, np.zeros(problem.num_assets)
    return problem.risk_aversion * problem.sigma, -problem.mu


def scip_solve(problem: DiscreteProblem, time_limit: float = 60.0, seed: int = 0) -> ScipOutcome:
    """Solve the discrete problem's convex MIQP with SCIP; never raises for solver trouble (see status).

    Model: integer ``0 ≤ x_i ≤ U_i`` (binary for selection), ``min t + S·cᵀx`` s.t. ``y = Fx``,
    ``t ≥ ‖y‖²`` (``FᵀF = S·Q``, so ``‖y‖² = S·xᵀQx``: a convex quadratic cone SCIP handles far better than
    the expanded ``xᵀQx``) and the problem's linear constraints (budget and return floor, or
    cardinality). The objective is scaled by ``S = 1000/(f_upper − f_lower)`` so that SCIP's absolute
    tolerances are small next to it, and the feasibility tolerance is tightened to 1e-9. The answer is
    re-evaluated on the original problem.
    """
    from pyscipopt import Model, quicksum

    started = time.perf_counter()
    n = problem.num_assets
    quadratic, linear = objective_parts(problem)
    lower, upper = problem.objective_bounds()
    scale = 1000.0 / max(upper - lower, 1e-300)
    model = Model("qportfolio")
    model.hideOutput()
    model.setParam("limits/time", max(float(time_limit), 0.0))
    model.setParam("randomization/randomseedshift", int(seed) % 2**31)
    model.setParam("numerics/feastol", 1e-9)
    model.setParam("limits/gap", 0.0)
    model.setParam("limits/absgap", 0.0)
    model.setParam("parallel/maxnthreads", 1)
    binary = isinstance(problem, SelectionProblem)
    x = [model.addVar(f"x{i}", vtype="B" if binary else "I", lb=0, ub=int(problem.upper_bounds[i])) for i in range(n)]
    t = model.addVar("t", vtype="C", lb=None, ub=None)
    factor = covariance_factor(scale * quadratic)
    factor = factor[np.any(np.abs(factor) > 1e-15 * max(float(np.abs(factor).max()), 1e-300), axis=1)]
    y = [model.addVar(f"y{k}", vtype="C", lb=None, ub=None) for k in range(len(factor))]
    for k, row in enumerate(factor):
        model.addCons(y[k] == quicksum(float(row[i]) * x[i] for i in range(n) if row[i] != 0))
    model.addCons(t >= quicksum(v * v for v in y))
    if isinstance(problem, IntegerSharesProblem):
        model.addCons(quicksum(float(problem.prices[i]) * x[i] for i in range(n)) <= problem.budget)
        if problem.min_return is not None:
            gains = problem.return_coefficients
            model.addCons(quicksum(float(gains[i]) * x[i] for i in range(n)) >= problem.min_return)
    else:
        model.addCons(quicksum(x) == problem.num_selected)
    model.setObjective(t + quicksum(float(scale * linear[i]) * x[i] for i in range(n) if linear[i] != 0), "minimize")
    try:
        model.optimize()
    except Exception as error:  # noqa: BLE001 — SCIP raised: report it, never take the other methods down
        return ScipOutcome("error", "failed", None, None, None, None, False, time.perf_counter() - started, 0,
                           f"SCIP failed: {type(error).__name__}: {error}")
    scip_status = model.getStatus()
    status = _SCIP_STATUS.get(scip_status, "failed")
    nodes = int(model.getNNodes())
    if model.getNSols() == 0:
        message = {"timeout": f"SCIP stopped ({scip_status}) after {time.perf_counter() - started:.3g} s with no "
                              "feasible allocation: raise the time limit",
                   "infeasible": "SCIP proved that no allocation meets every constraint: lower problem.min_return "
                                 "or raise problem.budget"}.get(status, f"SCIP ended with status {scip_status} and no "
                                                                        "solution")
        return ScipOutcome(scip_status, status if status != "ok" else "failed", None, None, None, None, False,
                           time.perf_counter() - started, nodes, message)
    solution = model.getBestSol()
    allocation = np.array([round(model.getSolVal(solution, v)) for v in x], dtype=np.int64)
    primal = model.getPrimalbound() / scale
    dual = model.getDualbound() / scale
    gap = float(model.getGap())
    gap = gap if np.isfinite(gap) and gap < 1e19 else None  # SCIP writes "no bound yet" as 1e20
    absolute = abs(primal - dual)
    proven = scip_status == "optimal" and gap is not None and (
        gap <= PROVEN_GAP or absolute <= PROVEN_GAP * max(1.0, abs(primal)))
    message = None
    if status == "timeout":
        gap_text = "no bound yet" if gap is None else f"relative gap {gap:.3g}"
        message = (f"SCIP stopped ({scip_status}) after {time.perf_counter() - started:.3g} s with {gap_text}: the "
                   "allocation is the best found, not proven optimal; raise the time limit")
    elif status == "ok" and not proven:
        message = f"SCIP reported {scip_status} with gap {gap}: not counted as proven optimal"
    evaluation = problem.evaluate(allocation[None, :])
    if not evaluation.feasible[0]:
        status, proven = "failed", False
        message = "SCIP's answer breaks a constraint on the original problem (solver tolerance): not used"
    dual = float(dual) if np.isfinite(dual) and abs(dual) < 1e19 / scale else None
    return ScipOutcome(scip_status, status, allocation, float(primal), dual, gap, proven,
                       time.perf_counter() - started, nodes, message)


def solve_scip(problem: DiscreteProblem, time_limit: float = 60.0, seed: int = 0) -> ClassicalSolution:
    """SCIP's answer as a :class:`ClassicalSolution` (method ``scip``), for when enumeration is too big.

    ``proven_optimal`` is True only when SCIP proved optimality with a zero gap. With a time-out and an
    incumbent, the incumbent comes back with ``status="timeout"``, its ``gap`` and ``bound``. Raises
    :class:`ProblemError` when SCIP proves the instance infeasible and :class:`ResourceError` when it
    found nothing within the time limit or failed.
    """
    outcome = scip_solve(problem, time_limit, seed)
    if outcome.allocation is None or outcome.status == "failed":
        if outcome.status == "infeasible":
            raise ProblemError(outcome.message or "SCIP proved the instance infeasible")
        raise ResourceError(outcome.message or f"SCIP ended with status {outcome.scip_status}")
    return ClassicalSolution("scip", outcome.allocation, problem.evaluate(outcome.allocation[None, :]),
                             outcome.proven_optimal, outcome.seconds, status=outcome.status, gap=outcome.gap,
                             bound=outcome.dual, message=outcome.message, problem=problem)
