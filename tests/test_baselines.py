"""Every discrete baseline against an independent answer (enumeration), on the same QUBO as the quantum side."""

import csv
import io
import json

import numpy as np
import pytest
from conftest import random_covariance

from qportfolio import baselines
from qportfolio.baselines import METHODS, run_baselines, solve_classical
from qportfolio.classical import solve_exact
from qportfolio.encoding import to_qubo, verify_ground_state
from qportfolio.errors import ProblemError
from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, SelectionProblem

CONTRACT = {"allocation", "objective", "variance", "expected_return", "cost", "feasible", "time_s", "status",
            "gap_to_optimum"}


def quickstart_instance():
    """The quickstart instance (real prices): its QUBO's ground state is verified to be the optimum."""
    from qportfolio.data import load_market

    market = load_market("sp500", ["AAPL", "JPM", "XOM"], None, "2020-01-01", "2022-12-28")
    return IntegerSharesProblem(market.tickers, market.mu, market.sigma, market.last_prices, 500.0, 0.44)


@pytest.mark.parametrize("which", ["quickstart", "selection"])
def test_every_baseline_finds_the_enumeration_optimum_on_a_tiny_instance(which, selection_problem):
    problem = quickstart_instance() if which == "quickstart" else selection_problem
    exact = solve_exact(problem)
    encoding = to_qubo(problem)
    assert verify_ground_state(problem, encoding, exact.objective).optimal  # the QUBO can reach the optimum
    results = run_baselines(problem, encoding, exact, seed=3, time_limit=20, tabu_reads=20)
    assert list(results) == list(METHODS)
    for name, entry in results.items():
        assert set(entry) >= CONTRACT, name
        assert entry["status"] == "ok", (name, entry.get("message"))
        assert entry["feasible"], name
        # the stated metrics are the original problem's, recomputed here
        x = np.array([entry["allocation"][t] for t in problem.tickers])
        assert entry["objective"] == pytest.approx(float(problem.evaluate(x).objective[0]), rel=1e-12)
        assert entry["gap_to_optimum"] == pytest.approx(entry["objective"] - exact.objective, abs=1e-9)
        assert entry["gap_to_optimum"] == 0.0, name
    assert results["scip"]["proven_optimal"] and results["scip"]["matches_enumeration"]
    for name in ("simulated_annealing", "tabu"):
        entry = results[name]
        assert entry["num_reads"] > 0 and 0 < entry["feasible_fraction"] <= 1
        assert 0 < entry["p_optimal"] <= 1 and 0 < entry["approximation_ratio"] <= 1
        assert entry["best_qubo_energy"] <= entry["qubo_energy"] + 1e-9
    json.dumps(results, allow_nan=False)  # result.json-ready


def test_qubo_samplers_reach_the_qubo_ground_state_even_when_it_misses_the_optimum(shares_problem):
    """On the fixture the conservative slack rounding excludes the true optimum from the QUBO's ground
    state: the samplers must find that ground state (checked by enumerating all 2^N energies), and the
    gap then shows what the encoding costs, exactly as it would for the quantum answer."""
    exact, encoding = solve_exact(shares_problem), to_qubo(shares_problem)
    ground = float(encoding.qubo.all_energies().min())
    assert not verify_ground_state(shares_problem, encoding, exact.objective).optimal
    for entry in (baselines.simulated_annealing(shares_problem, encoding, 0, exact),
                  baselines.tabu(shares_problem, encoding, 0, exact, num_reads=30)):
        assert entry["best_qubo_energy"] == pytest.approx(ground, rel=1e-9)
        assert entry["feasible"] and entry["objective"] >= exact.objective - 1e-12


def test_heuristics_are_seeded(selection_problem):
    encoding = to_qubo(selection_problem)
    first = baselines.simulated_annealing(selection_problem, encoding, seed=5, num_reads=20)
    second = baselines.simulated_annealing(selection_problem, encoding, seed=5, num_reads=20)
    assert first["allocation"] == second["allocation"] and first["feasible_fraction"] == second["feasible_fraction"]


def random_shares(seed, floor=True):
    local = np.random.default_rng(seed)
    n = 5
    sigma, mu = random_covariance(n, local), local.uniform(0.0, 0.002, n)
    prices, budget = local.uniform(20, 300, n), float(local.uniform(400, 1200))
    tickers = tuple(f"S{i}" for i in range(n))
    top = IntegerSharesProblem(tickers, mu, sigma, prices, budget).max_relaxed_return()
    return IntegerSharesProblem(tickers, mu, sigma, prices, budget, min_return=0.7 * top if floor else None,
                                risk_aversion=0.05)


@pytest.mark.parametrize("seed", range(6))
def test_relax_and_round_and_greedy_are_feasible_and_bounded_by_the_relaxation(seed):
    problem = random_shares(seed, floor=seed % 2 == 0)
    optimum = solve_exact(problem).objective
    rounded, greedy = baselines.relax_and_round(problem), baselines.greedy(problem)
    assert rounded["status"] == "ok" and rounded["feasible"]
    assert rounded["relaxation_bound"] <= optimum + 1e-6 * max(1.0, abs(optimum))  # a lower bound
    assert rounded["objective"] >= optimum - 1e-9 * max(1.0, abs(optimum))
    if greedy["status"] == "ok":
        assert greedy["feasible"] and greedy["objective"] >= optimum - 1e-9 * max(1.0, abs(optimum))
    else:
        assert greedy["status"] == "infeasible" and greedy["allocation"] is None


@pytest.mark.parametrize("seed", range(4))
def test_continuous_relaxation_is_the_cvxpy_programs_answer_to_the_last_bit(seed, selection_problem):
    """Clarabel is called directly with the data cvxpy stuffs for ``min ‖F x‖² + S·cᵀx`` over the box and the
    problem's linear constraints (cvxpy's import is a second of a whole run): the answer must not move."""
    import cvxpy as cp

    from qportfolio.classical import continuous_relaxation, covariance_factor, solve_convex
    from qportfolio.classical.scip import objective_parts

    for problem in (random_shares(seed, floor=seed % 2 == 0), selection_problem):
        quadratic, linear = objective_parts(problem)
        lower, upper = problem.objective_bounds()
        scale = 1000.0 / max(upper - lower, 1e-300)
        x = cp.Variable(problem.num_assets)
        constraints = [x >= 0, x <= problem.upper_bounds.astype(float)]
        if isinstance(problem, IntegerSharesProblem):
            constraints.append((problem.prices / problem.budget) @ x <= 1)
            if problem.min_return is not None:
                unit = max(abs(problem.min_return), 1e-12)
                constraints.append((problem.return_coefficients / unit) @ x >= problem.min_return / unit)
        else:
            constraints.append(cp.sum(x) == problem.num_selected)
        goal = cp.Minimize(cp.sum_squares(covariance_factor(scale * quadratic) @ x) + (scale * linear) @ x)
        expected = np.clip(solve_convex(cp.Problem(goal, constraints), x, "the relaxation"), 0.0,
                           problem.upper_bounds.astype(float))
        relaxed, bound = continuous_relaxation(problem)
        assert relaxed.tobytes() == expected.tobytes()
        assert bound == float(expected @ quadratic @ expected + linear @ expected)


def test_relax_and_round_on_selection_keeps_k_assets(selection_problem):
    entry = baselines.relax_and_round(selection_problem)
    assert entry["feasible"] and sum(entry["allocation"].values()) == selection_problem.num_selected
    assert entry["rounding"].startswith("top_k")


def bigger_instance():
    rng = np.random.default_rng(5)
    n = 12
    sigma, mu, prices = random_covariance(n, rng), rng.uniform(0.0, 0.002, n), rng.uniform(20, 300, n)
    tickers = tuple(f"S{i}" for i in range(n))
    top = IntegerSharesProblem(tickers, mu, sigma, prices, 5000.0).max_relaxed_return()
    return IntegerSharesProblem(tickers, mu, sigma, prices, 5000.0, min_return=0.6 * top)


def test_a_scip_timeout_is_reported_and_the_other_methods_survive():
    problem = bigger_instance()  # ~1e20 allocations: no enumeration, SCIP needs far more than 20 ms
    results = run_baselines(problem, to_qubo(problem), None, seed=1, time_limit=0.02, sa_reads=10, tabu_reads=2)
    scip = results["scip"]
    assert scip["status"] == "timeout" and not scip["proven_optimal"]
    assert "time limit" in scip["message"]
    assert all(entry["gap_to_optimum"] is None for entry in results.values())  # no proven optimum to measure against
    for name in ("relax_round", "greedy"):
        assert results[name]["status"] == "ok" and results[name]["feasible"], name
    for name in ("simulated_annealing", "tabu"):
        assert results[name]["status"] in ("ok", "timeout", "infeasible") and "num_reads" in results[name]
    json.dumps(results, allow_nan=False)


def test_scip_is_the_reference_when_enumeration_is_too_big(shares_problem):
    results = run_baselines(shares_problem, None, None, seed=0, methods=("scip", "greedy", "simulated_annealing"))
    assert results["scip"]["proven_optimal"] and results["scip"]["gap_to_optimum"] == 0.0
    assert results["greedy"]["gap_to_optimum"] == pytest.approx(
        results["greedy"]["objective"] - results["scip"]["objective"], abs=1e-9)
    sampler = results["simulated_annealing"]  # no encoding given: the problem's own QUBO
    assert sampler["qubo"].startswith("the problem's QUBO") and sampler["feasible"]
    assert sampler["gap_to_optimum"] == pytest.approx(sampler["objective"] - results["scip"]["objective"], abs=1e-9)
    assert "matches_enumeration" not in results["scip"]


def test_a_failing_method_never_takes_the_others_down(shares_problem, monkeypatch):
    def broken(problem):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(baselines, "relax_and_round", broken)
    results = run_baselines(shares_problem, to_qubo(shares_problem), solve_exact(shares_problem), seed=0,
                            methods=("relax_round", "greedy", "scip"))
    assert results["relax_round"]["status"] == "failed" and "solver crashed" in results["relax_round"]["message"]
    assert results["relax_round"]["allocation"] is None and results["relax_round"]["feasible"] is False
    assert results["greedy"]["status"] == "ok" and results["scip"]["status"] == "ok"


def test_a_sampler_with_no_feasible_read_says_so(selection_problem):
    encoding = to_qubo(selection_problem, penalty=1e-9)  # a penalty too weak to enforce 1ᵀx = K
    entry = baselines.simulated_annealing(selection_problem, encoding, seed=0, num_reads=10)
    if entry["status"] == "infeasible":
        assert entry["allocation"] is None and entry["feasible_fraction"] == 0.0 and "penalty" in entry["message"]
    else:  # a read happened to land on K assets: it must then be a genuinely feasible one
        assert entry["feasible"]


def test_run_baselines_rejects_markowitz_and_unknown_methods(rng, shares_problem):
    markowitz = MarkowitzProblem(("A", "B"), np.array([0.001, 0.002]), random_covariance(2, rng))
    with pytest.raises(ProblemError, match="discrete problems"):
        run_baselines(markowitz, None, None, seed=0)
    with pytest.raises(ProblemError, match="unknown baseline"):
        run_baselines(shares_problem, None, None, seed=0, methods=("quantum_annealing",))


def test_greedy_on_selection_picks_k_assets():
    rng = np.random.default_rng(9)
    problem = SelectionProblem(tuple("ABCDEF"), rng.uniform(0, 0.01, 6), random_covariance(6, rng, 1e-3), 3)
    entry = baselines.greedy(problem)
    assert entry["feasible"] and sum(entry["allocation"].values()) == 3


def random_selection(n: int, seed: int) -> SelectionProblem:
    local = np.random.default_rng(seed)
    return SelectionProblem(tuple(f"S{i}" for i in range(n)), local.uniform(0.0, 0.01, n),
                            random_covariance(n, local, 1e-3), n // 2, risk_aversion=2.0)


@pytest.mark.parametrize("n, seed", [(6, 1), (7, 2), (8, 3), (8, 4)])
def test_qubo_samplers_solve_the_selection_as_posed_under_an_xy_mixer(n, seed):
    """Under an XY mixer the quantum QUBO has no cardinality penalty (the circuit keeps 1ᵀx = K): the
    samplers must still answer K assets, the enumeration optimum, through run_baselines and solve_classical."""
    problem = random_selection(n, seed)
    exact = solve_exact(problem)
    circuit_qubo = to_qubo(problem, penalty={"cardinality": 0.0})  # what QuantumSolver.encode gives an XY mixer
    assert circuit_qubo.constraints[0].penalty == 0.0
    results = run_baselines(problem, circuit_qubo, exact, seed=seed, methods=("simulated_annealing", "tabu"),
                            tabu_reads=20)
    for name, entry in results.items():
        assert entry["status"] == "ok" and entry["feasible"], (name, entry.get("message"))
        assert sum(entry["allocation"].values()) == problem.num_selected
        assert entry["gap_to_optimum"] == 0.0, name
        assert "cardinality penalty restored" in entry["qubo"]
        chosen = solve_classical(problem, name, circuit_qubo, seed=seed)
        assert chosen.allocation is not None and sum(chosen.allocation.values()) == problem.num_selected
        assert chosen.objective == pytest.approx(exact.objective, abs=1e-12)
        alone = solve_classical(problem, name, seed=seed)  # the problem's own QUBO, built here
        assert alone.objective == pytest.approx(exact.objective, abs=1e-12)


def test_the_restored_penalty_is_calibrated_so_the_ground_state_is_the_optimum():
    problem = random_selection(7, 5)
    encoding, which = baselines.sampler_encoding(problem, to_qubo(problem, penalty={"cardinality": 0.0}))
    penalty = encoding.constraints[0].penalty
    assert 0 < penalty < to_qubo(problem).constraints[0].penalty  # calibrated below the auto bound
    assert verify_ground_state(problem, encoding, solve_exact(problem).objective).optimal
    assert "cardinality penalty restored (smallest verified penalty scale" in which
    quantum = to_qubo(problem)  # every constraint already penalised: the quantum QUBO itself
    assert baselines.sampler_encoding(problem, quantum) == (quantum, "the quantum QUBO")


def test_shipped_selection_config_has_feasible_samplers_in_compare_and_report(tmp_path):
    from pathlib import Path

    from qportfolio.app.cli import main
    from qportfolio.app.compare import compare_runs

    config = Path(__file__).resolve().parents[1] / "configs" / "selection.yaml"
    assert main(["baseline", str(config), "--out", str(tmp_path), "--quiet"]) == 0
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    result = json.loads((folder / "result.json").read_text())
    assert result["encoding"]["constraints"][0]["penalty"] == 0.0  # the XY mixer's QUBO, as the circuit sees it
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(compare_runs([folder], "csv")))}
    report = (folder / "report.md").read_text()
    for name in ("simulated_annealing", "tabu"):
        entry = result["solutions"][name]
        assert entry["feasible"] and entry["gap_to_optimum"] == 0.0, entry.get("message")
        assert rows[name]["feasible"] == "true" and float(rows[name]["gap_to_optimum"]) == 0.0
        assert next(line for line in report.splitlines() if line.startswith(f"| {name} |")).endswith("| yes |")
