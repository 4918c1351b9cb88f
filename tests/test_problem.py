import numpy as np
import pytest
from conftest import random_covariance

from qportfolio.errors import ProblemError
from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, SelectionProblem


def test_integer_shares_metrics_match_hand_computation(shares_problem):
    x = np.array([1, 2, 0])
    d = x * shares_problem.prices
    row = shares_problem.evaluate(x).row(0)
    assert row["cost"] == pytest.approx(125.7 + 2 * 64.6)
    assert row["variance"] == pytest.approx(d @ shares_problem.sigma @ d)
    assert row["expected_return"] == pytest.approx(shares_problem.mu @ d)
    assert row["objective"] == pytest.approx(row["variance"])
    assert row["feasible"] == (row["cost"] <= 300 and row["expected_return"] >= shares_problem.min_return)


def test_upper_bounds_are_whole_shares_within_budget(shares_problem):
    assert shares_problem.upper_bounds.tolist() == [2, 4, 2]
    capped = IntegerSharesProblem(shares_problem.tickers, shares_problem.mu, shares_problem.sigma,
                                  shares_problem.prices, 300.0, max_shares=[1, 3, 5])
    assert capped.upper_bounds.tolist() == [1, 3, 2]


def test_over_budget_and_fractional_allocations_are_infeasible(shares_problem):
    evaluation = shares_problem.evaluate([[2, 2, 0], [0.5, 0, 0]])
    assert not evaluation.feasible.any()


@pytest.mark.parametrize("kwargs, message", [
    ({"budget": 10.0}, "below the cheapest share"),
    ({"budget": -5.0}, "positive"),
    ({"budget": 300.0, "min_return": 10.0}, "above the most any allocation"),
    ({"budget": 300.0, "max_shares": -1}, "max_shares"),
    ({"budget": 300.0, "max_shares": [1, 2]}, "max_shares"),
])
def test_integer_shares_rejects_bad_parameters(shares_problem, kwargs, message):
    with pytest.raises(ProblemError, match=message):
        IntegerSharesProblem(shares_problem.tickers, shares_problem.mu, shares_problem.sigma,
                             shares_problem.prices, **kwargs)


def test_non_psd_covariance_is_rejected_with_advice():
    sigma = np.array([[1.0, 2.0], [2.0, 1.0]]) * 1e-4
    with pytest.raises(ProblemError, match="ledoit_wolf"):
        SelectionProblem(("A", "B"), np.array([0.1, 0.2]), sigma, 1)


def test_selection_validates_k_and_counts_assets(selection_problem):
    with pytest.raises(ProblemError, match="num_assets"):
        SelectionProblem(selection_problem.tickers, selection_problem.mu, selection_problem.sigma, 7)
    evaluation = selection_problem.evaluate([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    assert evaluation.feasible.tolist() == [True, False]
    x = np.array([1, 1, 0, 0, 0])
    expected = 2.0 * x @ selection_problem.sigma @ x - selection_problem.mu @ x
    assert evaluation.objective[0] == pytest.approx(expected)


def test_markowitz_target_above_best_asset_is_rejected(rng):
    sigma = random_covariance(3, rng)
    with pytest.raises(ProblemError, match="above the best asset"):
        MarkowitzProblem(("A", "B", "C"), np.array([0.001, 0.002, 0.003]), sigma, target_return=0.004)
    MarkowitzProblem(("A", "B", "C"), np.array([0.001, 0.002, 0.003]), sigma, target_return=0.004, allow_short=True)


def test_objective_bounds_contain_every_feasible_objective(shares_problem, selection_problem):
    import itertools

    for problem in (shares_problem, selection_problem):
        lower, upper = problem.objective_bounds()
        box = np.array(list(itertools.product(*[range(u + 1) for u in problem.upper_bounds])))
        evaluation = problem.evaluate(box)
        assert np.all(evaluation.objective >= lower - 1e-12)
        assert np.all(evaluation.objective[evaluation.feasible] <= upper + 1e-12)
