import itertools

import numpy as np

from qportfolio.classical import solve_exact
from qportfolio.postprocess import local_search, postprocess, repair, violation


def box(problem):
    return np.array(list(itertools.product(*[range(u + 1) for u in problem.upper_bounds])))


def test_repair_makes_every_allocation_feasible_or_says_it_cannot(shares_problem, selection_problem):
    for problem in (shares_problem, selection_problem):
        candidates = box(problem)
        feasible = problem.evaluate(candidates).feasible
        assert np.all((violation(problem, candidates) == 0) >= feasible)
        for x in candidates[~feasible][:40]:
            fixed = repair(problem, x)
            assert fixed is not None and problem.evaluate(fixed).feasible[0]


def test_local_search_reaches_a_local_optimum_and_on_selection_the_global_one(selection_problem):
    exact = solve_exact(selection_problem)
    candidates = box(selection_problem)
    feasible = candidates[selection_problem.evaluate(candidates).feasible]
    # swap moves connect all K-subsets and this small instance has one basin: every start ends at the optimum
    ends = {tuple(local_search(selection_problem, x)) for x in feasible}
    assert ends == {tuple(exact.vector)}


def test_postprocess_reports_repaired_and_searched_answers(shares_problem):
    exact = solve_exact(shares_problem)
    candidates = box(shares_problem)
    infeasible = candidates[~shares_problem.evaluate(candidates).feasible][:5]
    result = postprocess(shares_problem, infeasible, np.full(len(infeasible), 0.2))
    assert result["repaired_count"] == 5
    assert shares_problem.evaluate(result["repaired"]).feasible[0]
    searched = shares_problem.evaluate(result["local_search"])
    assert searched.feasible[0] and searched.objective[0] >= exact.objective - 1e-12
    assert searched.objective[0] <= shares_problem.evaluate(result["repaired"]).objective[0]
