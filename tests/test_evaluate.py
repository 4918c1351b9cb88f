import numpy as np
import pytest

from qportfolio.backends import Distribution
from qportfolio.classical import solve_exact
from qportfolio.encoding import to_qubo
from qportfolio.evaluation import decode_samples, quality_metrics


def test_metrics_by_hand(selection_problem):
    encoding = to_qubo(selection_problem)
    exact = solve_exact(selection_problem)
    optimum_bits = encoding.encode(exact.vector)
    index_optimal = int(np.dot(optimum_bits, 2 ** np.arange(encoding.num_qubits)))
    infeasible = 0  # no asset selected
    from qportfolio.classical.enumeration import _candidates

    feasible = next(_candidates(selection_problem))[0]
    objectives = selection_problem.evaluate(feasible).objective
    worst = feasible[int(np.argmax(objectives))]
    index_worst = int(np.dot(encoding.encode(worst), 2 ** np.arange(encoding.num_qubits)))
    distribution = Distribution(np.array([index_optimal, infeasible, index_worst]), np.array([0.5, 0.3, 0.2]), 1000)
    table = decode_samples(distribution, encoding, selection_problem)
    metrics = quality_metrics(table, exact.objective, exact.worst_feasible_objective)
    assert metrics.p_optimal == pytest.approx(0.5)
    assert metrics.feasible_fraction == pytest.approx(0.7)
    assert metrics.approximation_ratio == pytest.approx(0.5)
    assert table.best_feasible() == 0
    assert table.bitstrings()[1] == "0" * encoding.num_qubits
