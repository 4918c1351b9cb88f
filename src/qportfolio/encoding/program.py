"""Problem → QuadraticProgram: the constrained problem stated faithfully in qiskit-optimization."""

from __future__ import annotations

import numpy as np
from qiskit_optimization import QuadraticProgram

from qportfolio.errors import (
    ProblemError,
)
from qportfolio.problems import (
    DiscreteProblem,
    IntegerSharesProblem,
    MarkowitzProblem,
    SelectionProblem,
)


def variable_name(ticker: str) -> str:
    return f"x_{ticker}"


def build_quadratic_program(problem: DiscreteProblem | MarkowitzProblem) -> QuadraticProgram:
    """The problem as a constrained ``QuadraticProgram``, variables in ticker order."""
    program = QuadraticProgram(name=problem.kind)
    names = [variable_name(t) for t in problem.tickers]
    if isinstance(problem, IntegerSharesProblem):
        for name, upper in zip(names, problem.upper_bounds):
            program.integer_var(lowerbound=0, upperbound=int(upper), name=name)
        variance = problem.share_covariance
        gains = problem.return_coefficients
        if problem.min_return is None:
            program.minimize(quadratic=problem.risk_aversion * variance, linear=-gains)
        else:
            program.minimize(quadratic=variance)
        program.linear_constraint(linear=problem.prices, sense="<=", rhs=problem.budget, name="budget")
        if problem.min_return is not None:
            program.linear_constraint(linear=gains, sense=">=", rhs=problem.min_return, name="return")
    elif isinstance(problem, SelectionProblem):
        for name in names:
            program.binary_var(name=name)
        program.minimize(quadratic=problem.risk_aversion * problem.sigma, linear=-problem.mu)
        program.linear_constraint(
            linear=np.ones(problem.num_assets), sense="==", rhs=problem.num_selected, name="cardinality"
        )
    elif isinstance(problem, MarkowitzProblem):
        lower = -1e6 if problem.allow_short else 0.0
        for name in names:
            program.continuous_var(lowerbound=lower, upperbound=1e6, name=name)
        program.minimize(quadratic=problem.sigma)
        program.linear_constraint(linear=np.ones(problem.num_assets), sense="==", rhs=1.0, name="budget")
        if problem.target_return is not None:
            program.linear_constraint(linear=problem.mu, sense="==", rhs=problem.target_return, name="return")
    else:
        raise ProblemError(f"unknown problem type {type(problem).__name__}")
    return program


