"""The exact backend against Aer through the whole run: same config, same parameters, same objective."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from qportfolio.app.config import parse_config
from qportfolio.app.experiment import execute
from qportfolio.backends import AerStatevectorBackend, make_backend
from qportfolio.circuits import qaoa_ansatz, vqe_ansatz
from qportfolio.objective import cvar
from qportfolio.encoding import to_qubo

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("kind", ["x", "xy_ring", "xy_complete", "warm", "vqe"])
def test_exact_objective_equals_aer_objective(kind, selection_problem, rng):
    encoding = to_qubo(selection_problem, penalty={"cardinality": 0.0} if kind.startswith("xy") else "auto")
    energies = encoding.qubo.all_energies()
    operator, _ = encoding.qubo.to_ising()
    if kind == "vqe":
        ansatz = vqe_ansatz(encoding.num_qubits, 2, "real_amplitudes", "linear")
    elif kind == "warm":
        ansatz = qaoa_ansatz(operator, 2, warm_start=rng.uniform(0.2, 0.8, encoding.num_qubits))
    else:
        ansatz = qaoa_ansatz(operator, 2, kind, selection_problem.num_selected)
    exact = make_backend("exact", 100, 0, energies=energies)
    aer = AerStatevectorBackend(seed=0)
    thetas = rng.uniform(-1, 1, (3, ansatz.num_parameters))
    for alpha in (1.0, 0.3):
        reference = [cvar(energies[d.indices], d.probabilities, alpha) for d in aer.distributions(ansatz.circuit, thetas)]
        np.testing.assert_allclose(exact.objective_values(ansatz.circuit, thetas, alpha), reference, rtol=1e-9, atol=1e-12)
    for d_exact, d_aer in zip(exact.distributions(ansatz.circuit, thetas), aer.distributions(ansatz.circuit, thetas)):
        full = np.zeros(2**encoding.num_qubits)
        full[d_exact.indices] = d_exact.probabilities
        np.testing.assert_allclose(full, d_aer.probabilities, atol=1e-10)


@pytest.mark.parametrize("solver", [{"mixer": "x"}, {"mixer": "xy_complete"}, {"warm_start": True}])
def test_every_value_a_run_records_is_reproduced_by_the_other_backend(solver, tmp_path):
    """Whole runs on each backend; each recorded (θ, value) is re-evaluated on the other one.
    (Trajectories themselves may part: COBYLA's discrete choices can flip on 1e-16 differences.)"""
    from qportfolio.app.instance import build_problem_from_config
    from qportfolio.app.results import load_history

    raw = yaml.safe_load((CONFIGS / "selection.yaml").read_text())
    raw["solver"].update({"reps": 2, "mixer": "x", "search": "fixed", "optimizer": "cobyla", "objective": "cvar",
                          "cvar_alpha": 0.25}, **solver, maxiter=20)
    raw["problem"]["baselines"] = False
    backends = {}
    for name in ("aer_statevector", "exact"):
        raw["backend"] = {"name": name}
        config = parse_config(raw)
        run = execute(config, tmp_path / name, artifacts=False)
        problem = build_problem_from_config(config)
        quantum = config.quantum_solver()
        encoding = quantum.encode(problem).encoding
        energies = encoding.qubo.all_energies()
        ansatz = quantum.build_ansatz(problem, encoding, warm_start=np.array(
            run.result["quantum"]["warm_start"]) if solver.get("warm_start") else None)
        backends[name] = (load_history(run.folder / "history.jsonl"), ansatz, energies)
    alpha = 0.25  # selection.yaml's CVaR α
    for name, other in (("aer_statevector", "exact"), ("exact", "aer_statevector")):
        history, ansatz, energies = backends[name]
        thetas = np.array([h.parameters for h in history])
        if other == "exact":
            again = make_backend("exact", 10, 0, energies=energies).objective_values(ansatz.circuit, thetas, alpha)
        else:
            again = [cvar(energies[d.indices], d.probabilities, alpha)
                     for d in AerStatevectorBackend().distributions(ansatz.circuit, thetas)]
        np.testing.assert_allclose(again, [h.value for h in history], rtol=1e-9, atol=1e-14)


def test_exact_backend_refuses_options_it_does_not_have():
    from qportfolio.errors import ConfigError

    with pytest.raises(ConfigError, match="do not apply"):
        make_backend("exact", 10, 0, energies=np.zeros(4), twirling=True)


def test_l_bfgs_b_with_the_adjoint_gradient(selection_problem, tmp_path):
    from qportfolio.optimize import EnergyTable, VariationalRunner
    from qportfolio.optimize.strategies import linear_ramp

    encoding = to_qubo(selection_problem)
    energies = encoding.qubo.all_energies()
    ansatz = qaoa_ansatz(encoding.qubo.to_ising()[0], 2)
    backend = make_backend("exact", 256, 0, energies=energies)
    theta = np.array([0.3, 0.2, 0.4, 0.7])
    value, gradient = backend.value_and_gradient(ansatz.circuit, theta)
    step = 1e-6
    numeric = [(backend.objective_values(ansatz.circuit, theta + step * e, 1.0)[0]
                - backend.objective_values(ansatz.circuit, theta - step * e, 1.0)[0]) / (2 * step) for e in np.eye(4)]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-9 * abs(value))
    reported = []
    runner = VariationalRunner(ansatz, backend, EnergyTable(encoding.qubo.energies, 5, energies), "expectation",
                               optimizer="l_bfgs_b", maxiter=40, shots=256, seed=0, on_evaluation=reported.append)
    result = runner.run(linear_ramp(2))
    assert result.value < result.history[0].value
    assert len(reported) == len(result.history) <= 40 + 5


def test_l_bfgs_b_is_refused_where_there_is_no_gradient(selection_problem):
    from qportfolio.errors import ConfigError
    from qportfolio.optimize import EnergyTable, VariationalRunner

    encoding = to_qubo(selection_problem)
    ansatz = qaoa_ansatz(encoding.qubo.to_ising()[0], 1)
    with pytest.raises(ConfigError, match="l_bfgs_b"):
        VariationalRunner(ansatz, AerStatevectorBackend(), EnergyTable(encoding.qubo.energies, 5), "expectation",
                          optimizer="l_bfgs_b")
