"""Share windows, penalty calibration and INTERP depth growth, each checked against an independent path."""

import numpy as np
import pytest

import qportfolio as qp
from qportfolio.classical import solve_exact
from qportfolio.encoding import bits_of, calibrate_penalties, fit_encoding, to_qubo
from qportfolio.optimize.strategies import interp, linear_ramp
from qportfolio.problems import IntegerSharesProblem

from conftest import all_bits, random_covariance


@pytest.fixture
def wide_problem(rng):
    """Four assets and $2,000: the full encoding needs more qubits than a small limit allows."""
    sigma = random_covariance(4, rng)
    mu = np.array([0.0011, 0.0004, 0.0009, 0.0007])
    prices = np.array([125.7, 64.6, 106.6, 48.2])
    bound = IntegerSharesProblem(tuple("ABCD"), mu, sigma, prices, 2000.0).max_relaxed_return()
    return IntegerSharesProblem(tuple("ABCD"), mu, sigma, prices, 2000.0, min_return=0.5 * bound)


def test_share_windows_fit_the_limit_and_every_state_decodes_inside_them(wide_problem):
    def encode(program):
        return to_qubo(wide_problem, program=program)

    full, none = fit_encoding(wide_problem, None, "auto", encode)
    assert none is None
    limit = 18
    encoding, window = fit_encoding(wide_problem, limit, "auto", encode)
    assert encoding.num_qubits <= limit < full.num_qubits
    widths = window.upper - window.lower
    assert np.all(window.lower >= 0) and np.all(window.upper <= wide_problem.upper_bounds)
    assert np.all(np.log2(widths + 1) % 1 == 0)  # 2^m − 1 wide: every bit pattern is a value in the window
    decoded = encoding.decode(all_bits(encoding.num_qubits))  # independent: every state, by brute force
    assert np.all(decoded >= window.lower) and np.all(decoded <= window.upper)
    assert set(map(tuple, decoded)) == {tuple(x) for x in np.stack(np.meshgrid(
        *[np.arange(lo, hi + 1) for lo, hi in zip(window.lower, window.upper)], indexing="ij"), -1).reshape(-1, 4)}
    # the window is centred on the continuous relaxation (as far as the box allows)
    assert np.all(np.abs(np.clip(np.round(window.relaxed), window.lower, window.upper) - np.round(window.relaxed)) <= 1)
    with pytest.raises(qp.QPortfolioError, match="max_qubits"):
        fit_encoding(wide_problem, 3, "auto", encode)


def test_calibrated_penalties_keep_the_brute_force_ground_state_at_the_optimum(shares_problem):
    exact = solve_exact(shares_problem)
    auto = to_qubo(shares_problem)
    calibrated, record = calibrate_penalties(shares_problem)
    for mine, reference in zip(calibrated.constraints, auto.constraints):
        assert 0 < mine.penalty <= reference.penalty
    assert min(c.penalty / a.penalty for c, a in zip(calibrated.constraints, auto.constraints)) < 1  # it shrank
    # independent: enumerate every bitstring of the calibrated QUBO, decode its ground state
    energies = calibrated.qubo.energies(all_bits(calibrated.num_qubits))
    ground = calibrated.decode(bits_of([int(np.argmin(energies))], calibrated.num_qubits))
    assert shares_problem.evaluate(ground).objective[0] == pytest.approx(exact.objective, rel=1e-9)
    assert shares_problem.evaluate(ground).feasible[0]


def test_interp_grows_one_layer_by_the_published_rule():
    beta, gamma = np.array([0.3]), np.array([0.7])
    assert np.allclose(interp(np.concatenate([beta, gamma])), [0.3, 0.3, 0.7, 0.7])
    theta = np.array([0.6, 0.2, 0.1, 0.5])  # p = 2: β = (0.6, 0.2), γ = (0.1, 0.5)
    grown = interp(theta)
    # Zhou et al.: x'_i = ((i−1)/p)·x_{i−1} + ((p−i+1)/p)·x_i, x_0 = x_{p+1} = 0
    assert np.allclose(grown[:3], [0.6, 0.5 * 0.6 + 0.5 * 0.2, 0.2])
    assert np.allclose(grown[3:], [0.1, 0.5 * 0.1 + 0.5 * 0.5, 0.5])
    assert len(linear_ramp(4)) == 8


def test_layerwise_search_starts_each_depth_from_interp_of_the_last(selection_problem):
    solver = qp.QuantumSolver(reps=3, layerwise=True, maxiter=45, backend="exact", seed=5, postprocess=False)
    result = solver.solve(selection_problem)
    stages = result.stages
    assert [s["reps"] for s in stages] == [1, 2, 3]
    for previous, stage in zip(stages, stages[1:]):
        best = next(h for h in result.history if h.value == previous["value"])
        assert np.allclose(stage["start"], interp(np.array(best.parameters)))
