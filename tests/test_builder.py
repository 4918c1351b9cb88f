import itertools

import numpy as np
import pytest
from conftest import all_bits
from qiskit_optimization.converters import QuadraticProgramToQubo

from qportfolio.classical import solve_exact
from qportfolio.encoding import build_quadratic_program, integer_coefficients, to_qubo, verify_ground_state
from qportfolio.errors import ProblemError


def box(problem):
    return np.array(list(itertools.product(*[range(u + 1) for u in problem.upper_bounds])))


@pytest.mark.parametrize("upper", range(0, 40))
@pytest.mark.parametrize("encoding", ["bounded", "binary"])
def test_integer_expansion_reaches_exactly_the_range(upper, encoding):
    c = integer_coefficients(upper, encoding)
    values = {int(np.dot(bits, c)) for bits in itertools.product((0, 1), repeat=len(c))}
    top = upper if encoding == "bounded" else (2 ** len(c) - 1 if c else 0)
    assert values == set(range(top + 1))
    assert len(c) == int(upper).bit_length()


def test_quadratic_program_agrees_with_problem(shares_problem):
    program = build_quadratic_program(shares_problem)
    for x in box(shares_problem):
        row = shares_problem.evaluate(x).row(0)
        assert program.objective.evaluate(x) == pytest.approx(row["objective"], rel=1e-12, abs=1e-12)
        assert program.is_feasible(x) == row["feasible"]


@pytest.mark.parametrize("constraint_encoding", ["slack", "squared"])
def test_qubo_equals_objective_plus_penalties_for_every_bitstring(shares_problem, constraint_encoding):
    encoding = to_qubo(shares_problem, constraint_encoding)
    bits = all_bits(encoding.num_qubits)
    x = encoding.decode(bits)
    f = shares_problem.evaluate(x).objective
    expected = f.copy()
    prices, gains = shares_problem.prices, shares_problem.return_coefficients
    for constraint in encoding.constraints:
        if constraint.name == "budget":
            row, rhs = prices, shares_problem.budget
        else:
            row, rhs = -gains, -shares_problem.min_return
        if constraint_encoding == "squared":
            residual = x @ row - rhs
        else:
            delta = constraint.resolution
            slack = bits[:, list(constraint.slack.qubits)] @ np.array(constraint.slack.coefficients)
            residual = delta * (x @ np.ceil(row / delta - 1e-12) + slack - np.floor(rhs / delta + 1e-12))
        expected += constraint.penalty * residual**2
    np.testing.assert_allclose(encoding.qubo.energies(bits), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    np.testing.assert_allclose(encoding.qubo.all_energies(), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("which", ["shares", "selection"])
def test_ising_energy_equals_qubo_energy_for_every_bitstring(which, shares_problem, selection_problem):
    problem = shares_problem if which == "shares" else selection_problem
    encoding = to_qubo(problem)
    operator, offset = encoding.qubo.to_ising()
    diagonal = operator.to_matrix(sparse=True).diagonal().real + offset
    energies = encoding.qubo.energies(all_bits(encoding.num_qubits))
    np.testing.assert_allclose(diagonal, energies, rtol=1e-9, atol=1e-9 * np.abs(energies).max())


def test_selection_qubo_matches_qiskit_optimizations_converter(selection_problem):
    ours = to_qubo(selection_problem, penalty=3.0)
    theirs = QuadraticProgramToQubo(penalty=3.0).convert(build_quadratic_program(selection_problem))
    for bits in all_bits(5):
        assert ours.qubo.energies(bits)[0] == pytest.approx(theirs.objective.evaluate(bits), rel=1e-12, abs=1e-12)


def test_decode_inverts_encode_and_slack_is_set_to_zero_residual(shares_problem):
    encoding = to_qubo(shares_problem)
    evaluation = shares_problem.evaluate(box(shares_problem))
    for x, feasible, objective in zip(box(shares_problem), evaluation.feasible, evaluation.objective):
        bits = encoding.encode(x)
        assert encoding.decode(bits)[0].tolist() == x.tolist()
        if feasible and encoding.qubo.energies(bits)[0] == pytest.approx(objective, rel=1e-9):
            continue
        # infeasible, or lost to conservative rounding: the penalty is then at least λδ² > 0
        assert encoding.qubo.energies(bits)[0] > objective


@pytest.mark.parametrize("which", ["shares", "selection"])
def test_auto_penalty_ground_state_is_feasible_and_checked(which, shares_problem, selection_problem):
    problem = shares_problem if which == "shares" else selection_problem
    encoding = to_qubo(problem)
    exact = solve_exact(problem)
    check = verify_ground_state(problem, encoding, exact.objective)
    assert check.verified and check.feasible
    if which == "selection":  # whole-number constraint data: the encoding is exact
        assert check.optimal


def test_xy_verification_judges_the_lowest_weight_k_state(selection_problem):
    """Cardinality penalty dropped (XY mixer): the ground state is the lowest of the weight-K states only,
    found here by masking the full table."""
    encoding = to_qubo(selection_problem, penalty={"cardinality": 0.0})
    energies = encoding.qubo.all_energies()
    weight = all_bits(encoding.num_qubits).sum(axis=1)
    masked = np.where(weight == selection_problem.num_selected, energies, np.inf)
    check = verify_ground_state(selection_problem, encoding, solve_exact(selection_problem).objective)
    assert check.ground_energy == masked.min() and check.optimal
    assert check.ground_allocation == encoding.decode(all_bits(encoding.num_qubits)[[np.argmin(masked)]])[0].tolist()


def test_squared_encoding_is_reported_as_such(shares_problem):
    encoding = to_qubo(shares_problem, "squared", penalty={"budget": 2.0, "return": 5.0})
    assert encoding.num_qubits == encoding.num_decision_qubits
    assert [(c.name, c.encoding, c.penalty) for c in encoding.constraints] == [
        ("budget", "squared", 2.0), ("return", "squared", 5.0)]


def test_bad_penalty_is_a_clear_error(shares_problem):
    with pytest.raises(ProblemError, match="penalty"):
        to_qubo(shares_problem, penalty=-1)
    with pytest.raises(ProblemError, match="constraint_encoding"):
        to_qubo(shares_problem, "quadratic")


def test_faithful_slack_resolution_recovers_an_optimum_that_coarse_rounding_loses(shares_problem):
    from qportfolio.encoding import faithful_slack_divisor

    exact = solve_exact(shares_problem)
    coarse = to_qubo(shares_problem)  # a quarter of the smallest coefficient: excludes this optimum
    assert not verify_ground_state(shares_problem, coarse, exact.objective).optimal
    divisor, kept = faithful_slack_divisor(shares_problem, exact.vector,
                                           lambda d: to_qubo(shares_problem, slack_divisor=d))
    assert kept and divisor > 4
    fine = to_qubo(shares_problem, slack_divisor=divisor)
    check = verify_ground_state(shares_problem, fine, exact.objective)
    assert check.feasible and check.optimal
    coarser = to_qubo(shares_problem, slack_divisor=divisor // 2)  # and it is the coarsest that works
    assert coarser.qubo.energies(coarser.encode(exact.vector))[0] > exact.objective
