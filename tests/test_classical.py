import itertools

import cvxpy as cp
import numpy as np
import pytest
from conftest import random_covariance
from scipy.optimize import minimize

from qportfolio.classical import efficient_frontier, enumerate_optimum, solve_exact, solve_markowitz, solve_scip
from qportfolio.classical.solution import allocation_text
from qportfolio.classical.markowitz import (
    frontier_constants,
    markowitz_closed_form,
    markowitz_solution_closed_form,
    tangency_portfolio,
)
from qportfolio.errors import ProblemError, ResourceError
from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, SelectionProblem


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


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("chunk", [1, 4, 1 << 17])
def test_selection_candidates_are_itertools_combinations_in_order_with_their_objectives(n, chunk, rng):
    from qportfolio.classical.enumeration import _candidates

    for k in range(1, n + 1):
        problem = SelectionProblem(tuple(f"A{i}" for i in range(n)), rng.normal(0.01, 0.01, n),
                                   random_covariance(n, rng, 1e-3), k, risk_aversion=1.7)
        expected = np.zeros((len(list(itertools.combinations(range(n), k))), n))
        for row, combination in enumerate(itertools.combinations(range(n), k)):
            expected[row, list(combination)] = 1.0
        chunks = list(_candidates(problem, chunk))
        assert all(len(x) <= chunk for x, _, _ in chunks)
        assert np.array_equal(np.vstack([x for x, _, _ in chunks]), expected)
        assert all(feasible.all() for _, _, feasible in chunks)
        objectives = np.concatenate([objective for _, objective, _ in chunks])
        np.testing.assert_allclose(objectives, problem.evaluate(expected).objective, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n", [1, 5, 8])
def test_selection_objectives_alone_and_rows_rebuilt_from_ranks_match_the_written_rows(n, rng):
    from qportfolio.classical.enumeration import _selections, selection_rows

    for k in range(1, n + 1):
        problem = SelectionProblem(tuple(f"A{i}" for i in range(n)), rng.normal(0.01, 0.01, n),
                                   random_covariance(n, rng, 1e-3), k, risk_aversion=1.7)
        written = list(_selections(problem, 3))
        alone = list(_selections(problem, 3, rows=False))
        assert all(len(x) == 0 for x, _ in alone)
        assert np.concatenate([o for _, o in alone]).tobytes() == np.concatenate([o for _, o in written]).tobytes()
        rows = np.vstack([x for x, _ in written]).astype(np.int64)
        assert np.array_equal(selection_rows(n, k, np.arange(len(rows))), rows)


def test_selection_enumeration_keeps_every_tied_optimum_in_itertools_order():
    # equal assets: every K-subset is optimal; the optimum rows come in itertools.combinations order
    problem = SelectionProblem(tuple("ABCDEF"), np.full(6, 0.01), np.eye(6) * 1e-3, 3, risk_aversion=1.0)
    solution = enumerate_optimum(problem)
    expected = [tuple(c) for c in itertools.combinations(range(6), 3)]
    assert [tuple(np.flatnonzero(row)) for row in solution.optimal_allocations] == expected
    assert solution.num_feasible == 20


def test_exact_enumeration_refuses_huge_instances(shares_problem):
    with pytest.raises(ResourceError, match="above the limit"):
        enumerate_optimum(shares_problem, limit=10)


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
    assert solution.variance == pytest.approx(reference @ sigma @ reference, rel=1e-5)
    assert solution.feasible
    curve = efficient_frontier(problem, 12)
    vols = [c[0] for c in curve]
    assert all(b >= a - 1e-12 for a, b in zip(vols, vols[1:]))
    single = solve_markowitz(MarkowitzProblem(tuple("ABCDE"), mu, sigma, curve[5][1]))
    assert single.variance == pytest.approx(curve[5][0] ** 2, rel=1e-6)


# --------------------------------------------------------------------------- Markowitz: all five objectives

MU5 = np.array([0.001, 0.002, 0.0005, 0.003, 0.0012])
OBJECTIVES = [
    ("min_variance", {}),
    ("min_variance", {"target_return": 0.0025}),
    ("max_return", {"max_volatility": None}),  # filled in from the GMV volatility below
    ("max_sharpe", {"risk_free": 0.0002}),
    ("utility_variance", {"risk_aversion": 3.0}),
    ("utility_volatility", {"risk_aversion": 0.5}),
]


def markowitz(objective, options, sigma, allow_short, mu=MU5):
    options = dict(options)
    if objective == "max_return" and options.get("max_volatility") is None:
        gmv = MarkowitzProblem(tuple("ABCDE"[: len(mu)]), mu, sigma, allow_short=allow_short)
        options["max_volatility"] = 1.3 * float(np.sqrt(solve_markowitz(gmv).variance))
    return MarkowitzProblem(tuple("ABCDE"[: len(mu)]), mu, sigma, allow_short=allow_short, objective=objective,
                            **options)


def natural(problem, w):
    """The objective to *minimise*, computed here from scratch (no qportfolio code)."""
    ret, var = problem.mu @ w, w @ problem.sigma @ w
    return {"min_variance": var, "max_return": -ret, "max_sharpe": -(ret - problem.risk_free) / np.sqrt(var),
            "utility_variance": -(ret - problem.risk_aversion * var),
            "utility_volatility": -(ret - problem.risk_aversion * np.sqrt(var))}[problem.objective]


@pytest.mark.parametrize("objective, options", OBJECTIVES)
def test_closed_forms_match_the_convex_solver_with_shorts(objective, options, rng):
    sigma = random_covariance(5, rng)
    problem = markowitz(objective, options, sigma, allow_short=True)
    closed = solve_markowitz(problem)  # auto: closed form with shorts
    convex = solve_markowitz(problem, method="convex")
    assert closed.method.endswith("(closed_form)") and "convex" in convex.method
    np.testing.assert_allclose(closed.vector, convex.vector, atol=2e-5)
    assert closed.objective == pytest.approx(convex.objective, rel=1e-6)
    assert closed.feasible and convex.feasible
    assert closed.vector.min() < 0  # the instance really uses short positions


def slsqp(problem):
    """An independent long-only solve: scipy's SLSQP from many starts, in rescaled units."""
    n, best = problem.num_assets, None
    scale = 1.0 / abs(natural(problem, np.ones(n) / n))
    constraints = [{"type": "eq", "fun": lambda w: w.sum() - 1}]
    if problem.target_return is not None:
        constraints.append({"type": "eq", "fun": lambda w: (problem.mu @ w - problem.target_return) * 1e3})
    if problem.objective == "max_return":
        constraints.append({"type": "ineq", "fun": lambda w: (problem.max_volatility**2 - w @ problem.sigma @ w) * 1e4})
    for start in [np.ones(n) / n, *np.eye(n)]:
        out = minimize(lambda w: scale * natural(problem, w), start, method="SLSQP", bounds=[(0, 1)] * n,
                       constraints=constraints, options={"ftol": 1e-14, "maxiter": 1000})
        if out.success and (best is None or out.fun < best.fun):
            best = out
    return best.x


@pytest.mark.parametrize("objective, options", OBJECTIVES)
def test_long_only_objectives_match_an_independent_solver(objective, options, rng):
    sigma = random_covariance(5, rng)
    problem = markowitz(objective, options, sigma, allow_short=False)
    solution = solve_markowitz(problem)
    assert solution.vector.min() >= 0 and solution.feasible
    reference = slsqp(problem)
    assert natural(problem, solution.vector) == pytest.approx(natural(problem, reference), rel=2e-6, abs=1e-12)


@pytest.mark.parametrize("objective, options", OBJECTIVES)
def test_long_only_three_assets_beat_a_brute_force_grid(objective, options, rng):
    mu = MU5[:3]
    sigma = random_covariance(3, rng)
    if "target_return" in options:
        options = {"target_return": 0.0015}
    problem = markowitz(objective, options, sigma, allow_short=False, mu=mu)
    solution = natural(problem, solve_markowitz(problem).vector)
    if problem.target_return is None:  # the simplex, on a grid
        step = np.linspace(0, 1, 401)
        a, b = np.meshgrid(step, step)
        w = np.stack([a.ravel(), b.ravel(), 1 - a.ravel() - b.ravel()], axis=1)
        w = w[w[:, 2] >= -1e-12]
    else:  # 1ᵀw = 1 and μᵀw = r leave a segment w0 + t·v: a fine grid along it
        w0 = np.linalg.lstsq(np.vstack([np.ones(3), mu]), [1.0, problem.target_return], rcond=None)[0]
        v = np.cross(np.ones(3), mu)
        w = w0 + np.linspace(-1e4, 1e4, 2_000_001)[:, None] * v / np.linalg.norm(v) * 1e-4
        w = w[np.all(w >= 0, axis=1)]
    ok = np.ones(len(w), bool)
    var = np.einsum("ij,jk,ik->i", w, sigma, w)
    if problem.objective == "max_return":
        ok &= np.sqrt(var) <= problem.max_volatility
    ret, risk = w[ok] @ mu, np.sqrt(var[ok])
    grid = float(np.min({"min_variance": var[ok], "max_return": -ret, "max_sharpe": -(ret - problem.risk_free) / risk,
                         "utility_variance": -(ret - problem.risk_aversion * var[ok]),
                         "utility_volatility": -(ret - problem.risk_aversion * risk)}[problem.objective]))
    assert solution <= grid + 1e-12  # never worse than any grid portfolio…
    assert solution >= grid - 0.02 * abs(grid)  # …and close to the best of them


@pytest.mark.parametrize("allow_short", [False, True])
def test_max_return_reaches_the_volatility_cap_on_the_frontier(allow_short, rng):
    sigma = random_covariance(5, rng)
    problem = markowitz("max_return", {}, sigma, allow_short)
    solution = solve_markowitz(problem)
    volatility = float(np.sqrt(solution.variance))
    assert volatility == pytest.approx(problem.max_volatility, rel=1e-6)
    # on the frontier: nothing reaches its return with less variance
    same = solve_markowitz(MarkowitzProblem(problem.tickers, problem.mu, sigma,
                                            float(solution.expected_return), allow_short))
    assert same.variance == pytest.approx(solution.variance, rel=1e-5)


@pytest.mark.parametrize("allow_short", [False, True])
def test_every_objective_lands_on_the_frontier(allow_short, rng):
    sigma = random_covariance(5, rng)
    for objective, options in OBJECTIVES[2:]:
        solution = solve_markowitz(markowitz(objective, options, sigma, allow_short))
        target = float(solution.expected_return)
        if not allow_short and target >= MU5.max() * (1 - 1e-9):
            continue
        point = solve_markowitz(MarkowitzProblem(tuple("ABCDE"), MU5, sigma, target, allow_short))
        assert point.variance == pytest.approx(solution.variance, rel=1e-5), objective


@pytest.mark.parametrize("allow_short", [False, True])
def test_frontier_points_match_single_solves(allow_short, rng):
    sigma = random_covariance(5, rng)
    problem = MarkowitzProblem(tuple("ABCDE"), MU5, sigma, allow_short=allow_short)
    curve = efficient_frontier(problem, 9)
    for volatility, target, weights in curve[1:]:
        single = solve_markowitz(MarkowitzProblem(tuple("ABCDE"), MU5, sigma, target, allow_short), method="convex")
        assert volatility**2 == pytest.approx(single.variance, rel=1e-5)
        assert MU5 @ weights == pytest.approx(target, rel=1e-6)


def test_tangency_and_utility_closed_forms_by_hand(rng):
    sigma = random_covariance(4, rng)
    mu = MU5[:4]
    inverse = np.linalg.inv(sigma)
    excess = mu - 0.0001
    np.testing.assert_allclose(tangency_portfolio(mu, sigma, 0.0001), inverse @ excess / (np.ones(4) @ inverse @ excess))
    k = frontier_constants(mu, sigma)
    assert k.d == pytest.approx(k.a * k.c - k.b**2)
    # utility-variance optimum: first-order condition mu - 2 q Sigma w = lambda 1 for some lambda
    problem = MarkowitzProblem(tuple("ABCD"), mu, sigma, allow_short=True, objective="utility_variance",
                               risk_aversion=2.0)
    w = markowitz_solution_closed_form(problem)
    gradient = mu - 2 * 2.0 * sigma @ w
    np.testing.assert_allclose(gradient, gradient.mean(), atol=1e-12)
    assert w.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("objective, options, allow_short, match", [
    ("max_return", {"max_volatility": 1e-6}, False, "below the lowest volatility"),
    ("max_return", {"max_volatility": 1e-6}, True, "below the lowest volatility"),
    ("max_sharpe", {"risk_free": 0.01}, False, "no asset returns more than risk_free"),
    ("max_sharpe", {"risk_free": 0.01}, True, "no maximum"),
    ("utility_volatility", {"risk_aversion": 1e-4}, True, "unbounded"),
    ("utility_variance", {"risk_aversion": 0.0}, True, "unbounded"),
])
def test_infeasible_markowitz_requests_are_clear_errors(objective, options, allow_short, match, rng):
    problem = MarkowitzProblem(tuple("ABCDE"), MU5, random_covariance(5, rng), allow_short=allow_short,
                               objective=objective, **options)
    with pytest.raises(ProblemError, match=match):
        solve_markowitz(problem)


def test_markowitz_parameter_mistakes_are_caught_on_construction(rng):
    sigma = random_covariance(3, rng)
    mu = MU5[:3]
    with pytest.raises(ProblemError, match="needs problem.max_volatility"):
        MarkowitzProblem(tuple("ABC"), mu, sigma, objective="max_return")
    with pytest.raises(ProblemError, match="applies to objective min_variance"):
        MarkowitzProblem(tuple("ABC"), mu, sigma, target_return=0.001, objective="max_sharpe")
    with pytest.raises(ProblemError, match="not a Markowitz objective"):
        MarkowitzProblem(tuple("ABC"), mu, sigma, objective="max_fun")
    with pytest.raises(ProblemError, match="above the best asset"):
        MarkowitzProblem(tuple("ABC"), mu, sigma, target_return=0.01)


def test_singular_covariance_says_so_and_offers_shrinkage(rng):
    a = rng.normal(size=(4, 2))
    sigma = a @ a.T * 1e-4  # rank 2: singular but positive semidefinite
    for allow_short in (True, False):  # long-only too: a zero-variance portfolio makes the answer an artefact
        with pytest.raises(ProblemError, match="singular.*ledoit_wolf.*longer window"):
            solve_markowitz(MarkowitzProblem(tuple("ABCD"), MU5[:4], sigma, allow_short=allow_short))


# --------------------------------------------------------------------------- SCIP vs enumeration


def random_discrete(seed):
    """A small random instance: integer shares (with or without a return floor) or selection."""
    local = np.random.default_rng(seed)
    n = int(local.integers(3, 6))
    sigma = random_covariance(n, local)
    tickers = tuple(f"S{i}" for i in range(n))
    if seed % 3 == 2:
        return SelectionProblem(tickers, local.uniform(0.0, 0.01, n), sigma * 10, int(local.integers(1, n)),
                                float(local.uniform(0.5, 5)))
    mu, prices = local.uniform(-0.0005, 0.002, n), local.uniform(20, 300, n)
    budget = float(local.uniform(250, 900))
    if seed % 3 == 0:
        floor = 0.5 * IntegerSharesProblem(tickers, mu, sigma, prices, budget).max_relaxed_return()
        return IntegerSharesProblem(tickers, mu, sigma, prices, budget, min_return=floor)
    return IntegerSharesProblem(tickers, mu, sigma, prices, budget, risk_aversion=float(local.uniform(0.01, 0.2)))


@pytest.mark.parametrize("seed", range(12))
def test_scip_matches_enumeration_on_random_instances(seed):
    problem = random_discrete(seed)
    exact, scip = solve_exact(problem), solve_scip(problem, time_limit=30, seed=seed)
    assert scip.method == "scip" and scip.status == "ok"
    assert scip.proven_optimal and scip.gap is not None and scip.gap <= 1e-9
    assert scip.feasible
    assert scip.objective == pytest.approx(exact.objective, rel=1e-7, abs=1e-12)
    assert scip.bound <= exact.objective + 1e-7 * max(1.0, abs(exact.objective))


@pytest.mark.parametrize("which", ["shares", "selection"])
def test_scip_matches_enumeration_on_the_fixture_instances(which, shares_problem, selection_problem):
    problem = shares_problem if which == "shares" else selection_problem
    assert solve_scip(problem).objective == pytest.approx(solve_exact(problem).objective, rel=1e-7)


def test_scip_matches_enumeration_on_real_prices():
    from qportfolio.data import load_market

    market = load_market("sp500", ["AAPL", "JPM", "XOM", "KO"], None, "2020-01-01", "2022-12-28")
    shares = IntegerSharesProblem(market.tickers, market.mu, market.sigma, market.last_prices, 600.0, 0.4)
    weekly = load_market("sp500", ["AAPL", "JPM", "XOM", "KO", "PFE", "MSFT", "WMT"], None, "2018-01-01",
                         "2022-12-28", "weekly")
    selection = SelectionProblem(weekly.tickers, weekly.mu, weekly.sigma, 3, 2.0)
    for problem in (shares, selection):
        scip = solve_scip(problem)
        assert scip.proven_optimal
        assert scip.objective == pytest.approx(solve_exact(problem).objective, rel=1e-7)


def test_scip_reports_an_infeasible_instance(rng):
    problem = IntegerSharesProblem(("A", "B"), np.array([0.002, 0.001]), random_covariance(2, rng),
                                   np.array([150.0, 20.0]), 169.0, min_return=0.31)
    with pytest.raises(ProblemError, match="no allocation meets every constraint"):
        solve_scip(problem)


SHAPE = ("allocation", "objective", "variance", "expected_return", "cost", "feasible")


@pytest.mark.parametrize("which", ["shares", "selection", "markowitz"])
def test_a_classical_solution_has_the_result_shape(which, shares_problem, selection_problem, rng):
    """``allocation`` by ticker, the evaluation as scalars (checked against evaluating the vector again), a short
    one-line repr and ``to_dict`` with the contract keys."""
    problem = {"shares": shares_problem, "selection": selection_problem,
               "markowitz": MarkowitzProblem(list("ABCDE"), MU5, random_covariance(5, rng))}[which]
    solution = solve_exact(problem)
    cast = float if which == "markowitz" else int
    assert solution.allocation == {t: cast(v) for t, v in zip(problem.tickers, solution.vector)}
    assert all(type(v) is cast for v in solution.allocation.values())
    again = problem.evaluate(np.asarray(solution.vector)[None, :]).row(0)
    for key, value in again.items():
        assert type(getattr(solution, key)) is type(value) and getattr(solution, key) == value, key
    text = repr(solution)
    assert "\n" not in text and len(text) < 200 and allocation_text(solution.allocation) in text and "objective" in text
    entry = solution.to_dict()
    assert list(entry)[:6] == list(SHAPE) and entry["allocation"] == solution.allocation
    assert {k: entry[k] for k in again} == again
    assert entry["method"] == solution.method and entry["proven_optimal"] is True


def test_a_classical_solution_without_an_allocation_says_so(shares_problem):
    from qportfolio.classical import ClassicalSolution

    none = ClassicalSolution("greedy", None, None, False, 0.25, status="infeasible", problem=shares_problem)
    assert none.allocation is None and none.feasible is False and none.variance is None and np.isnan(none.objective)
    assert repr(none) == "ClassicalSolution(greedy: no allocation, infeasible, 0.25 s)"
    entry = none.to_dict()
    assert entry["allocation"] is None and entry["feasible"] is False and entry["status"] == "infeasible"
