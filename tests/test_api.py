"""The Python API: the whole pipeline from a DataFrame of prices, for all three problem kinds, giving the
numbers `qportfolio run` gives on the same instance and seed; and the examples run."""

import runpy
from pathlib import Path

import numpy as np
import pytest

import qportfolio as qp
from qportfolio.app import experiment
from qportfolio.app.config import load_config
from qportfolio.optimize.search import planned_evaluations

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def market():
    prices = qp.load_prices("sp500", ["AAPL", "JPM", "XOM", "KO", "PFE", "MSFT"], start="2018-01-01", end="2022-12-28")
    return qp.estimate_market(prices, frequency="weekly")


def test_quickstart_through_the_api_equals_the_cli(tmp_path):
    config = load_config(ROOT / "configs" / "quickstart.yaml")
    run = experiment.execute(config, tmp_path, artifacts=False)
    prices = qp.load_prices("sp500", ["AAPL", "JPM", "XOM"], start="2020-01-01", end="2022-12-28")
    problem = qp.IntegerSharesProblem.from_market(qp.estimate_market(prices), budget=500, min_return=0.44)
    result = qp.QuantumSolver(backend="exact", seed=7).solve(problem)  # the quickstart config's settings
    assert result.p_optimal == run.result["metrics"]["p_optimal"]
    assert result.approximation_ratio == run.result["metrics"]["approximation_ratio"]
    assert result.allocation == run.result["solutions"]["quantum"]["allocation"]
    assert [h.value for h in result.history] == [h.value for h in experiment.load_history(run.folder / "history.jsonl")]
    described = result.to_dict()
    assert described["quantum"]["optimal_parameters"] == run.result["quantum"]["optimal_parameters"]
    assert set(described["solutions"]) <= set(run.result["solutions"])


def test_selection_from_a_dataframe(market):
    problem = qp.SelectionProblem.from_market(market, num_assets=3, risk_aversion=2.0)
    result = qp.QuantumSolver(mixer="xy_complete", reps=2, maxiter=40, backend="exact", seed=3).solve(problem)
    exact = qp.solve_exact(problem)
    assert result.feasible_fraction == pytest.approx(1.0)  # the XY mixer never leaves K of N
    assert sum(result.allocation.values()) == 3
    assert result.objective >= exact.objective - 1e-12
    samples = result.samples
    assert list(samples.columns[:3]) == ["bitstring", "probability", "count"]
    assert samples["probability"].sum() == pytest.approx(1.0)
    # the metric, independently: the mass on bitstrings whose allocation is the exact optimum
    optimal = np.all(samples[list(problem.tickers)].to_numpy() == exact.vector, axis=1)
    assert result.p_optimal == pytest.approx(samples["probability"][optimal].sum())


def test_a_backend_object_can_be_passed(market):
    problem = qp.SelectionProblem.from_market(market, num_assets=2)
    backend = qp.QuantumSolver(backend="aer_statevector").make_backend()  # built by hand
    result = qp.QuantumSolver(backend=backend, maxiter=10, seed=1, reps=1).solve(problem)
    assert result.backend == "aer_statevector"
    assert len(result.history) >= 10


def test_markowitz_and_classical_methods(market):
    problem = qp.MarkowitzProblem.from_market(market, objective="min_variance", target_return=0.004)
    solution = qp.solve_exact(problem)
    assert sum(solution.allocation.values()) == pytest.approx(1.0)
    assert float(market.mu @ solution.vector) == pytest.approx(0.004, abs=1e-7)
    with pytest.raises(qp.QPortfolioError, match="classically"):
        qp.QuantumSolver().solve(problem)
    shares = qp.IntegerSharesProblem.from_market(market, budget=800, min_return=2.0)
    exact = qp.solve_exact(shares)
    for method in ("scip", "relax_round", "greedy", "simulated_annealing", "tabu"):
        other = qp.solve_classical(shares, method=method, seed=1)
        assert other.objective >= exact.objective - 1e-6 * max(1.0, abs(exact.objective))
    assert qp.solve_classical(shares, "scip").proven_optimal


@pytest.mark.parametrize("settings", [
    {"algorithm": "qaoa", "reps": 2, "maxiter": 30},
    {"algorithm": "qaoa", "reps": 3, "maxiter": 40, "layerwise": True},
    {"algorithm": "qaoa", "reps": 2, "maxiter": 40, "grid": 3, "multistart": 2},
    {"algorithm": "qaoa", "reps": 1, "maxiter": 12, "optimizer": "spsa"},
    {"algorithm": "vqe", "reps": 1, "maxiter": 20},
])
def test_planned_evaluations_equal_what_the_search_does(market, settings):
    problem = qp.SelectionProblem.from_market(market, num_assets=2)
    solver = qp.QuantumSolver(**{"backend": "exact", "seed": 2, "postprocess": False, "search": "fixed", "mixer": "x",
                                 "optimizer": "cobyla", "objective": "expectation", **settings}).resolved(problem)
    result = solver.solve(problem)
    planned = planned_evaluations(solver.algorithm, solver.reps, solver.maxiter, solver.optimizer, solver.layerwise,
                                  solver.multistart, solver.grid)
    assert len(result.history) <= planned
    assert planned - len(result.history) <= 2 * (1 + (solver.reps if solver.layerwise else 0)) * solver.multistart


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.stem)
def test_examples_run(example, capsys):
    runpy.run_path(str(example), run_name="__main__")
    assert capsys.readouterr().out.strip()
