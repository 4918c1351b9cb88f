import numpy as np
import pytest

from qportfolio.ansatz import qaoa_ansatz
from qportfolio.strategies import linear_ramp
from qportfolio.backends import AerStatevectorBackend
from qportfolio.builder import to_qubo
from qportfolio.errors import ConfigError
from qportfolio.runner import EnergyTable, VariationalRunner, cvar, spsa


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
def test_runner_improves_on_its_start_and_keeps_every_evaluation(optimizer, selection_problem, tmp_path):
    encoding = to_qubo(selection_problem)
    ansatz = qaoa_ansatz(encoding.qubo.to_ising()[0], reps=1)
    energies = EnergyTable(encoding.qubo.energies, encoding.num_qubits, encoding.qubo.all_energies())
    runner = VariationalRunner(ansatz, AerStatevectorBackend(seed=2), energies, optimizer=optimizer, maxiter=30,
                               shots=512, seed=2, history_path=tmp_path / "history.jsonl")
    result = runner.run(linear_ramp(1))
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == len(result.history) >= 30
    assert result.value == min(h.value for h in result.history) <= result.history[0].value
    # the recorded value is the exact expectation at the recorded parameters
    probabilities = AerStatevectorBackend().distributions(ansatz.circuit, result.parameters)[0].probabilities
    assert result.value == pytest.approx(probabilities @ energies.table, rel=1e-9)
    assert result.final.shots == 512
