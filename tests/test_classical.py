import itertools

import cvxpy as cp
import numpy as np
import pytest

from qportfolio.classical import efficient_frontier, markowitz_closed_form, solve_exact, solve_markowitz
from qportfolio.errors import ProblemError, ResourceError
from qportfolio.problem import IntegerSharesProblem, MarkowitzProblem

from conftest import random_covariance


def brute_force(problem):
    best = None
    for x in itertools.product(*[range(u + 1) for u in problem.upper_bounds]):
        row = problem.evaluate(np.array(x)).row(0)
        if row["feasible"] and (best is None or row["objective"] < best[1]):
            best = (x, row["objective"])
    return best


@pytest.mark.parametrize("which", ["shares", "selection"])
def test_exact_enumeration_matches_a_plain_loop(which, shares_problem, selection_problem):
    problem = shares_problem if which == "shares" else selection_problem
    solution = solve_exact(problem)
    x, objective = brute_force(problem)
    assert solution.objective == pytest.approx(objective, rel=1e-12)
    assert solution.proven_optimal
    assert any(tuple(row) == x for row in solution.optimal_allocations)


def test_exact_enumeration_refuses_huge_instances(shares_problem):
    with pytest.raises(ResourceError, match="above the limit"):
        solve_exact(shares_problem, limit=10)


def test_infeasible_instance_is_a_clear_error(rng):
    # a return floor reachable with fractional shares but not with whole ones
    problem = IntegerSharesProblem(("A", "B"), np.array([0.002, 0.001]), random_covariance(2, rng),
                                   np.array([150.0, 20.0]), 169.0, min_return=0.31)
    with pytest.raises(ProblemError, match="no allocation of whole shares"):
        solve_exact(problem)


def cvxpy_min_variance(mu, sigma, target, long_only):
    w = cp.Variable(len(mu))
    constraints = [cp.sum(w) == 1] + ([w >= 0] if long_only else [])
    if target is not None:
        constraints.append(mu @ w == target)
    cp.Problem(cp.Minimize(cp.quad_form(w, sigma / sigma.max())), constraints).solve(solver=cp.CLARABEL)
    return w.value


@pytest.mark.parametrize("target", [None, 0.0015, 0.004])
def test_closed_form_matches_a_convex_solver(target, rng):
    sigma = random_covariance(4, rng)
    mu = np.array([0.001, 0.002, 0.0005, 0.003])
    closed = markowitz_closed_form(mu, sigma, target)
    np.testing.assert_allclose(closed, cvxpy_min_variance(mu, sigma, target, False), atol=1e-5)


def test_long_only_qp_matches_convex_solver_and_frontier_is_monotone(rng):
    sigma = random_covariance(5, rng)
    mu = np.array([0.001, 0.002, 0.0005, 0.003, 0.0012])
    problem = MarkowitzProblem(tuple("ABCDE"), mu, sigma, 0.002)
    solution = solve_markowitz(problem)
    reference = cvxpy_min_variance(mu, sigma, 0.002, True)
    assert solution.evaluation.variance[0] == pytest.approx(reference @ sigma @ reference, rel=1e-5)
    assert solution.evaluation.feasible[0]
    curve = efficient_frontier(problem, 12)
    vols = [c[0] for c in curve]
    assert all(b >= a - 1e-12 for a, b in zip(vols, vols[1:]))
    single = solve_markowitz(MarkowitzProblem(tuple("ABCDE"), mu, sigma, curve[5][1]))
    assert single.evaluation.variance[0] == pytest.approx(curve[5][0] ** 2, rel=1e-6)
