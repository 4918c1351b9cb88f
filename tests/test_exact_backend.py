"""The exact backend against Aer through the whole run: same config, same parameters, same objective."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from qportfolio.ansatz import qaoa_ansatz, vqe_ansatz
from qportfolio.backends import AerStatevectorBackend, make_backend
from qportfolio.builder import to_qubo
from qportfolio.config import parse_config
from qportfolio.experiment import execute
from qportfolio.runner import cvar

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
def test_a_whole_run_on_exact_retraces_the_aer_run(solver, tmp_path):
    raw = yaml.safe_load((CONFIGS / "selection.yaml").read_text())
    raw["solver"].update(solver, maxiter=25)
    raw["problem"]["baselines"] = False
    runs = {}
    for backend in ("aer_statevector", "exact"):
        raw["backend"] = {"name": backend}
        runs[backend] = execute(parse_config(raw), tmp_path / backend, artifacts=False)
    values = {b: [float(line.split('"value": ')[1].split(",")[0]) for line in
                  (r.folder / "history.jsonl").read_text().splitlines()] for b, r in runs.items()}
    np.testing.assert_allclose(values["exact"], values["aer_statevector"], rtol=1e-8)
    assert runs["exact"].result["quantum"]["optimal_parameters"] == pytest.approx(
        runs["aer_statevector"].result["quantum"]["optimal_parameters"], abs=1e-6)


def test_exact_backend_refuses_options_it_does_not_have():
    from qportfolio.errors import ConfigError

    with pytest.raises(ConfigError, match="do not apply"):
        make_backend("exact", 10, 0, energies=np.zeros(4), twirling=True)
