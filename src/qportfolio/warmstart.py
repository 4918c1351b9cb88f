"""Warm-start QAOA (Egger, Mareček & Woerner 2021): start from the continuous relaxation.

The relaxation of the constrained QuadraticProgram (binaries in [0, 1], integers in [l, u]) is a convex
QP, solved with cvxpy and Clarabel. Per qubit it gives a probability ``c_q`` of reading 1, regularised
to ``[ε, 1 − ε]`` so that the mixer can still move every qubit:

* binary variables (selection): ``c_i = clip(x*_i, ε, 1 − ε)``;
* integer variables (shares): ``x*`` is rounded and encoded (slack qubits at their best setting); the
  bits of that encoding become ``c_q = 1 − ε`` for a one and ``ε`` for a zero.
"""

from __future__ import annotations

import numpy as np
from qiskit_optimization import QuadraticProgram
from qiskit_optimization.problems import Constraint, VarType

from qportfolio.builder import QuboEncoding, build_quadratic_program
from qportfolio.errors import ProblemError
from qportfolio.problem import DiscreteProblem


def continuous_relaxation(program: QuadraticProgram) -> np.ndarray:
    """The optimum of the program with integrality dropped (objective assumed convex)."""
    import cvxpy as cp

    n = program.get_num_vars()
    quadratic = program.objective.quadratic.to_array(symmetric=True)
    linear = program.objective.linear.to_array()
    scale = max(float(np.max(np.abs(quadratic), initial=0.0)), float(np.max(np.abs(linear), initial=0.0)), 1e-300)
    x = cp.Variable(n)
    lower = np.array([v.lowerbound for v in program.variables])
    upper = np.array([v.upperbound for v in program.variables])
    constraints = [x >= lower, x <= upper]
    for constraint in program.linear_constraints:
        row = constraint.linear.to_array()
        norm = max(float(np.max(np.abs(row))), 1e-300)
        expression, rhs = (row / norm) @ x, constraint.rhs / norm
        constraints.append({Constraint.Sense.LE: expression <= rhs, Constraint.Sense.GE: expression >= rhs,
                            Constraint.Sense.EQ: expression == rhs}[constraint.sense])
    objective = cp.quad_form(x, cp.psd_wrap(quadratic / scale)) + (linear / scale) @ x
    relaxed = cp.Problem(cp.Minimize(objective), constraints)
    try:
        relaxed.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as error:
        raise ProblemError(f"the continuous relaxation failed to solve ({error}): turn solver.warm_start off") from None
    if x.value is None:
        raise ProblemError(f"the continuous relaxation ended with status {relaxed.status}: turn solver.warm_start off")
    return np.clip(np.asarray(x.value), lower, upper)


def warm_start_probabilities(problem: DiscreteProblem, encoding: QuboEncoding, epsilon: float = 0.25) -> np.ndarray:
    """Per-qubit probabilities ``c_q ∈ [ε, 1 − ε]`` for the warm-start initial state and mixer."""
    program = build_quadratic_program(problem)
    relaxed = continuous_relaxation(program)
    if all(v.vartype == VarType.BINARY for v in program.variables) and encoding.num_qubits == len(relaxed):
        return np.clip(relaxed, epsilon, 1 - epsilon)
    bits = encoding.encode(np.round(relaxed).astype(np.int64))
    return np.where(bits == 1, 1 - epsilon, epsilon).astype(float)
