import numpy as np
import pytest

from qportfolio.backends import AerStatevectorBackend
from qportfolio.circuits import qaoa_ansatz
from qportfolio.objective import cvar
from qportfolio.encoding import to_qubo
from qportfolio.errors import ConfigError
from qportfolio.optimize import EnergyTable, VariationalRunner, spsa
from qportfolio.optimize.strategies import linear_ramp


def test_cvar_by_hand():
    energies = np.array([3.0, 1.0, 2.0, 10.0])
    probabilities = np.array([0.25, 0.25, 0.25, 0.25])
    assert cvar(energies, probabilities, 1.0) == pytest.approx(4.0)
    assert cvar(energies, probabilities, 0.25) == pytest.approx(1.0)
    assert cvar(energies, probabilities, 0.5) == pytest.approx(1.5)
    assert cvar(energies, probabilities, 0.3) == pytest.approx((0.25 * 1 + 0.05 * 2) / 0.3)
    with pytest.raises(ConfigError, match="cvar_alpha"):
        cvar(energies, probabilities, 0.0)


def test_spsa_minimises_a_quadratic():
    rng = np.random.default_rng(0)
    theta, _ = spsa(lambda t: float(np.sum((t - 1.0) ** 2)), np.zeros(3), 200, rng)
    assert np.allclose(theta, 1.0, atol=0.05)


@pytest.mark.parametrize("optimizer", ["cobyla", "nelder_mead", "spsa"])
def test_runner_improves_on_its_start_and_reports_every_evaluation(optimizer, selection_problem):
    encoding = to_qubo(selection_problem)
    ansatz = qaoa_ansatz(encoding.qubo.to_ising()[0], reps=1)
    energies = EnergyTable(encoding.qubo.energies, encoding.num_qubits, encoding.qubo.all_energies())
    reported = []
    runner = VariationalRunner(ansatz, AerStatevectorBackend(seed=2), energies, optimizer=optimizer, maxiter=30,
                               shots=512, seed=2, on_evaluation=reported.append)
    start = linear_ramp(1)
    result = runner.run(start)
    assert [r.parameters for r in reported] == [h.parameters for h in result.history] and len(reported) >= 30

    # every value is the exact expectation at its parameters, recomputed on a fresh, independent backend
    independent = AerStatevectorBackend()

    def expectation(theta):
        return independent.distributions(ansatz.circuit, np.asarray(theta))[0].probabilities @ energies.table

    for record in reported[:: max(1, len(reported) // 5)]:
        assert record.value == pytest.approx(expectation(record.parameters), rel=1e-9)
    assert expectation(result.parameters) == pytest.approx(result.value, rel=1e-9)
    assert expectation(result.parameters) < expectation(start)  # the optimizer really improved on the ramp
    # the final samples come from the best parameters: their mean energy is within 5 standard errors of it
    exact = independent.distributions(ansatz.circuit, result.parameters)[0].probabilities
    spread = np.sqrt(exact @ (energies.table - result.value) ** 2 / 512)
    sampled = result.final.probabilities @ energies(result.final.indices)
    assert abs(sampled - result.value) < 5 * spread
    assert result.final.shots == 512
