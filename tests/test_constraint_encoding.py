"""Slack-free inequalities (issue 22): the unbalanced penalty, its calibration, auto's choice and the fallback."""

import numpy as np
import pytest
from conftest import all_bits

import qportfolio.encoding.encoder as encoder_module
from qportfolio.app.config import parse_config
from qportfolio.classical import solve_exact
from qportfolio.encoding import (
    build_quadratic_program,
    calibrate_unbalanced,
    descent_minimum,
    to_qubo,
    unbalanced_encoding,
    verify_ground_state,
)
from qportfolio.encoding import calibration as calibration_module
from qportfolio.errors import ConfigError, ProblemError
from qportfolio.optimize import QuantumSolver
from qportfolio.problems import IntegerSharesProblem


def rooms(problem, x):
    """``s = B − pᵀx`` and ``s = μᵀd − R`` for every row of ``x``."""
    return {"budget": problem.budget - x @ problem.prices,
            "return": x @ problem.return_coefficients - problem.min_return}


def test_unbalanced_qubo_is_objective_minus_linear_plus_quadratic_room_for_every_bitstring(shares_problem):
    penalty, linear = {"budget": 3e-4, "return": 2.5}, {"budget": 0.07, "return": 1.3}
    encoding = to_qubo(shares_problem, "unbalanced", penalty, linear_penalty=linear)
    assert encoding.num_qubits == encoding.num_decision_qubits  # no slack register
    assert [c.encoding for c in encoding.constraints] == ["unbalanced", "unbalanced"]
    bits = all_bits(encoding.num_qubits)
    x = encoding.decode(bits)
    expected = shares_problem.evaluate(x).objective.copy()
    for name, s in rooms(shares_problem, x).items():
        expected += penalty[name] * s**2 - linear[name] * s
    np.testing.assert_allclose(encoding.qubo.all_energies(), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_mixed_encodings_by_constraint_name(shares_problem):
    encoding = to_qubo(shares_problem, {"budget": "slack", "return": "unbalanced"})
    assert [c.encoding for c in encoding.constraints] == ["slack", "unbalanced"]
    assert encoding.constraint_encoding == "mixed"
    assert encoding.num_qubits - encoding.num_decision_qubits == len(encoding.constraints[0].slack.qubits)
    with pytest.raises(ProblemError, match="constraint_encoding"):
        to_qubo(shares_problem, "auto")


def problems(rng):
    """Small whole-share instances with a binding return floor (a few price and floor levels)."""
    out = []
    for floor in (0.3, 0.6, 0.85):
        for prices in ([125.7, 64.6, 106.6], [41.0, 77.5, 23.2]):
            a = rng.normal(size=(3, 5))
            sigma = a @ a.T / 5 * 1e-4
            mu = rng.uniform(0.0002, 0.0015, 3)
            bound = IntegerSharesProblem(("A", "B", "C"), mu, sigma, np.array(prices), 300.0).max_relaxed_return()
            out.append(IntegerSharesProblem(("A", "B", "C"), mu, sigma, np.array(prices), 300.0,
                                            min_return=floor * bound))
    return out


def test_calibrated_unbalanced_ground_state_is_the_brute_force_optimum_where_it_claims_so(rng):
    claimed = 0
    for problem in problems(rng):
        exact = solve_exact(problem)
        encoding, calibration = calibrate_unbalanced(problem)
        if not calibration.verified:
            continue
        claimed += 1
        energies = encoding.qubo.all_energies()
        ground = np.flatnonzero(energies <= energies.min() + 1e-9 * max(1.0, abs(energies.min())))
        evaluation = problem.evaluate(encoding.decode(all_bits(encoding.num_qubits)[ground]))
        assert evaluation.feasible.all()
        np.testing.assert_allclose(evaluation.objective, exact.objective, rtol=1e-9, atol=1e-12)
        assert encoding.num_qubits == encoding.num_decision_qubits
    assert claimed >= 4  # the calibration verifies on most of these instances


def test_calibration_that_cannot_verify_says_so(shares_problem):
    # penalties far too small: the ground state is the empty portfolio (variance 0), below the return floor
    encoding, calibration = calibrate_unbalanced(shares_problem, candidates=[({"budget": 0.0, "return": 0.0}, 1e-9)])
    assert not calibration.verified and "no unbalanced" in calibration.reason
    weak = unbalanced_encoding(shares_problem, build_quadratic_program(shares_problem), 1e-9, 1e-9)
    check = verify_ground_state(shares_problem, weak, solve_exact(shares_problem).objective)
    assert check.verified and not check.feasible  # the brute-force check agrees: such an encoding is wrong


def test_auto_picks_the_slack_free_encoding_with_fewer_qubits_and_records_it(shares_problem):
    exact = solve_exact(shares_problem)
    encoded = QuantumSolver().encode(shares_problem, exact.vector, optimal_objective=exact.objective)
    slack = QuantumSolver(constraint_encoding="slack").encode(shares_problem, exact.vector,
                                                               optimal_objective=exact.objective)
    described = encoded.describe(shares_problem, exact.vector)
    assert described["choice"]["chosen"] in ("unbalanced", "squared", "mixed") and not described["choice"]["fallback"]
    assert {c["encoding"] for c in described["constraints"]} <= {"unbalanced", "squared"}
    assert described["slack_qubits"] == 0
    assert described["choice"]["qubits"] == {"slack": slack.num_qubits, "no_slack": encoded.num_qubits}
    assert described["choice"]["qubits_saved"] == slack.num_qubits - encoded.num_qubits > 0
    assert "enumeration" in described["choice"]["checked_by"]
    assert encoded.verification.optimal  # the tool's own brute-force check of the ground state
    ground = int(np.argmin(encoded.energies))
    x = encoded.encoding.decode(all_bits(encoded.num_qubits)[[ground]])
    assert shares_problem.evaluate(x).objective[0] == pytest.approx(exact.objective, rel=1e-9)


def test_auto_falls_back_to_slack_where_the_slack_free_encoding_does_not_verify(shares_problem, monkeypatch):
    def never(problem, program=None, integer_encoding="bounded", optimum=None):
        names = [c.name for c in (program or build_quadratic_program(problem)).linear_constraints]
        return calibrate_unbalanced(problem, program, integer_encoding, optimum,
                                    candidates=[(dict.fromkeys(names, 0.0), 1e-9)])

    monkeypatch.setattr(encoder_module, "calibrate_unbalanced", never)
    exact = solve_exact(shares_problem)
    for requested in ("auto", "unbalanced"):
        encoded = QuantumSolver(constraint_encoding=requested).encode(shares_problem, exact.vector,
                                                                      optimal_objective=exact.objective)
        choice = encoded.describe(shares_problem)["choice"]
        assert choice["fallback"] and choice["chosen"] == "slack" and choice["reason"].startswith("fell back to slack")
        assert [c.encoding for c in encoded.encoding.constraints] == ["slack", "slack"]
        assert encoded.num_qubits > encoded.encoding.num_decision_qubits
        assert encoded.verification.feasible


def test_beyond_enumeration_the_check_is_by_descents_and_says_so(shares_problem, monkeypatch):
    monkeypatch.setattr(calibration_module, "MAX_CALIBRATED_QUBITS", 0)
    monkeypatch.setattr(calibration_module, "MAX_ENUMERATED_QUBITS", 0)
    exact = solve_exact(shares_problem)
    encoding, calibration = calibrate_unbalanced(shares_problem, optimum=exact.vector)
    assert "descents" in calibration.checked_by and "not a proof" in calibration.checked_by
    energies = encoding.qubo.all_energies()
    optimum_energy = float(encoding.qubo.energies(encoding.encode(exact.vector))[0])
    # the descent check's verdict matches the brute-force one on this small instance
    assert calibration.verified == bool(energies.min() >= optimum_energy - 1e-9 * max(1.0, abs(optimum_energy)))
    no_optimum = calibrate_unbalanced(shares_problem)[1]
    assert not no_optimum.verified and "no exact optimum" in no_optimum.reason


def test_descents_stop_at_one_flip_local_minima_no_lower_than_the_ground_state(shares_problem):
    qubo = to_qubo(shares_problem, "unbalanced").qubo
    ends = descent_minimum(qubo, 64)
    assert ends.min() >= qubo.all_energies().min() - 1e-12
    rng = np.random.default_rng(3)
    # re-run a descent by hand from one start and compare: no single flip lowers its end
    b = rng.integers(0, 2, qubo.num_variables)
    end = descent_minimum(qubo, 0, start=b)[0]
    energies = qubo.all_energies()
    index = int(np.flatnonzero(np.isclose(energies, end, rtol=0, atol=1e-12))[0])
    neighbours = [index ^ (1 << i) for i in range(qubo.num_variables)]
    assert energies[neighbours].min() >= end - 1e-12


def test_selection_is_encoded_as_before_under_auto(selection_problem):
    auto, slack = QuantumSolver().encode(selection_problem), QuantumSolver(constraint_encoding="slack").encode(
        selection_problem)
    np.testing.assert_array_equal(auto.encoding.qubo.quadratic, slack.encoding.qubo.quadratic)
    np.testing.assert_array_equal(auto.encoding.qubo.linear, slack.encoding.qubo.linear)
    assert auto.choice is None


def test_config_key_takes_the_four_encodings_and_auto_is_the_default():
    base = {"problem": {"kind": "integer_shares", "budget": 300}}
    assert parse_config(base).problem.constraint_encoding == "auto"
    for value in ("slack", "squared", "unbalanced", "auto"):
        config = parse_config({"problem": {**base["problem"], "constraint_encoding": value}})
        assert config.quantum_solver().constraint_encoding == value
    with pytest.raises(ConfigError, match="constraint_encoding"):
        parse_config({"problem": {**base["problem"], "constraint_encoding": "slackless"}})


def test_report_and_compare_show_the_qubits_saved_against_slack(shares_problem, tmp_path):
    from qportfolio.app.compare import _qubits_saved
    from qportfolio.app.report import write_report

    exact = solve_exact(shares_problem)
    encoded = QuantumSolver().encode(shares_problem, exact.vector, optimal_objective=exact.objective)
    result = {"name": "t", "status": "complete", "problem": shares_problem.describe(),
              "encoding": encoded.describe(shares_problem, exact.vector)}
    saved = encoded.choice["qubits_saved"]
    assert f"- qubits saved against slack: {saved} (slack {encoded.choice['qubits']['slack']}, without slack " \
           f"{encoded.num_qubits};" in write_report(result)
    assert "linear penalty" in write_report(result) or {c.encoding for c in encoded.encoding.constraints} == {"squared"}
    assert _qubits_saved(result) == saved
    assert _qubits_saved({"encoding": QuantumSolver(constraint_encoding="slack").encode(shares_problem).describe(
        shares_problem)}) is None


def test_whole_share_warm_start_is_the_feasible_rounding_of_the_relaxation(shares_problem):
    from qportfolio.classical.heuristics import relax_and_round
    from qportfolio.warmstart import warm_start_probabilities

    encoding = QuantumSolver().encode(shares_problem).encoding
    probabilities = warm_start_probabilities(shares_problem, encoding, 0.25)
    start = encoding.decode((probabilities > 0.5).astype(np.int64))[0]
    rounded = relax_and_round(shares_problem)["allocation"]
    assert start.tolist() == [rounded[t] for t in shares_problem.tickers]
    assert shares_problem.evaluate(start).feasible[0]
    assert set(np.round(probabilities, 12)) <= {0.25, 0.75}


def test_auto_narrows_share_windows_when_even_the_slack_free_encoding_is_too_wide(shares_problem):
    exact = solve_exact(shares_problem)
    full = QuantumSolver().encode(shares_problem, exact.vector, optimal_objective=exact.objective)
    narrow = QuantumSolver(max_qubits=full.num_qubits - 1).encode(shares_problem, exact.vector,
                                                                   optimal_objective=exact.objective)
    assert narrow.window is not None and narrow.num_qubits <= full.num_qubits - 1
    assert narrow.encoding.num_qubits == narrow.encoding.num_decision_qubits  # still no slack register
    assert narrow.choice["qubits"]["no_slack"] == narrow.num_qubits and not narrow.choice["fallback"]
    assert narrow.verification.feasible  # judged on the full problem by enumeration
