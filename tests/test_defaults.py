"""The measured defaults and their machinery: the uniform-sampling yardstick, the Gibbs objective's gradient,
the adaptive depth search, pretraining on the exact simulator, and gradient replay on resume."""

import json
import math

import numpy as np
import pytest

import qportfolio as qp
from qportfolio.app import experiment
from qportfolio.app.config import parse_config
from qportfolio.backends import make_backend
from qportfolio.circuits import qaoa_ansatz
from qportfolio.encoding import to_qubo
from qportfolio.evaluation import uniform_optimum_probability
from qportfolio.objective import Objective

from conftest import all_bits


def test_uniform_optimum_probability_equals_brute_force(shares_problem, selection_problem):
    encoding = to_qubo(shares_problem, integer_encoding="bounded")
    exact = qp.solve_exact(shares_problem)
    decoded = encoding.decode(all_bits(encoding.num_qubits))  # every bitstring, independently
    share = np.mean(np.all(decoded == exact.vector, axis=1))
    assert uniform_optimum_probability(encoding, exact.optimal_allocations) == pytest.approx(share)
    k, n = selection_problem.num_selected, selection_problem.num_assets
    assert uniform_optimum_probability(to_qubo(selection_problem), [qp.solve_exact(selection_problem).vector],
                                       k) == pytest.approx(1 / math.comb(n, k))


def test_defaults_report_lift_and_a_random_sampling_row(selection_problem):
    result = qp.QuantumSolver(seed=4, reps=3).solve(selection_problem)
    assert result.settings["mixer"] == "xy_complete" and result.settings["optimizer"] == "l_bfgs_b"
    n, k = selection_problem.num_assets, selection_problem.num_selected
    assert result.uniform_p_optimal == pytest.approx(1 / math.comb(n, k))
    assert result.lift == pytest.approx(result.p_optimal * math.comb(n, k))
    row = result.to_dict()["solutions"]["random_sampling"]
    assert row["feasible_fraction"] == 1.0  # uniform over the weight-K states the XY mixer reaches
    assert abs(row["p_optimal"] - 1 / math.comb(n, k)) < 5 * math.sqrt(0.1 * 0.9 / result.settings["shots"])
    assert result.feasible_fraction == pytest.approx(1.0)
    assert result.p_optimal > row["p_optimal"]  # better than chance on this easy instance


@pytest.mark.parametrize("mixer", ["x", "xy_complete"])
def test_gibbs_objective_and_its_gradient(selection_problem, rng, mixer):
    encoding = to_qubo(selection_problem, penalty={"cardinality": 0.0} if mixer != "x" else "auto")
    energies = encoding.qubo.all_energies()
    ansatz = qaoa_ansatz(encoding.qubo.to_ising()[0], 2, mixer, selection_problem.num_selected)
    backend = make_backend("exact", 100, 0, energies=energies)
    measure = Objective("gibbs", eta=8.0, scale=ansatz.cost_scale)
    theta = rng.uniform(-1, 1, 4)
    value, gradient = backend.value_and_gradient(ansatz.circuit, theta, measure)
    # independently: Qiskit's statevector probabilities and the formula −(s/η) log Σ P e^{−ηE/s}
    from qiskit.quantum_info import Statevector

    probabilities = Statevector(ansatz.circuit.assign_parameters(theta)).probabilities()
    rate = 8.0 / ansatz.cost_scale
    assert value == pytest.approx(-np.log(probabilities @ np.exp(-rate * energies)) / rate, rel=1e-9)
    step = 1e-6
    numeric = [(backend.objective_values(ansatz.circuit, theta + step * e, measure)[0]
                - backend.objective_values(ansatz.circuit, theta - step * e, measure)[0]) / (2 * step)
               for e in np.eye(4)]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-10)


def test_adaptive_search_never_ends_a_depth_worse_and_keeps_to_its_budget(selection_problem):
    result = qp.QuantumSolver(seed=2, reps=5, maxiter=400).solve(selection_problem)
    values = [stage["value"] for stage in result.stages]
    assert all(later <= earlier + 1e-12 for earlier, later in zip(values, values[1:]))
    assert len(result.history) <= 400 + 40  # the optimizer may overrun its last iteration's line search
    assert len(result.search.parameters) == 2 * result.ansatz.reps
    assert result.stages[-1]["value"] == pytest.approx(min(h.value for h in result.history))


def test_pretraining_turns_the_evaluations_into_one_job(tmp_path):
    raw = {"name": "pretrain", "seed": 3,
           "data": {"source": "sp500", "assets": ["AAPL", "JPM", "XOM", "KO"], "start": "2018-01-01",
                    "end": "2022-12-28", "frequency": "weekly"},
           "problem": {"kind": "selection", "num_assets": 2, "risk_aversion": 2.0, "baselines": False},
           "solver": {"reps": 1, "mixer": "x", "shots": 256, "refine": 2},
           "backend": {"name": "aer_noisy:fake_fez"}}
    config = parse_config(raw)
    run = experiment.execute(config, tmp_path)
    jobs = [json.loads(line) for line in (run.folder / "jobs.jsonl").read_text().splitlines()]
    assert run.result["quantum"]["pretrain"] == "exact"
    # readout calibration (mitigation by default on a device with readout errors), refine (COBYLA: at least
    # 2p + 2 = 4 evaluations), then sample once
    kinds = [job["kind"] for job in jobs]
    assert kinds == ["calibration"] + ["evaluation"] * 4 + ["final"]
    assert run.result["quantum"]["evaluations"] > 2  # the search itself ran on the exact simulator
    from qportfolio.app.planning import dry_run

    assert dry_run(config)["evaluations"] == 4


class CountingGradients:
    """The exact backend, counting value-and-gradient calls and interrupting after ``fail_after`` of them."""

    def __init__(self, backend, fail_after=None):
        self.backend, self.fail_after, self.calls = backend, fail_after, 0
        self.name = backend.name

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def value_and_gradient(self, circuit, theta, objective=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.backend.value_and_gradient(circuit, theta, objective)


def test_a_resumed_gradient_search_replays_every_recorded_gradient(tmp_path):
    raw = {"name": "gradients", "seed": 5,
           "data": {"source": "sp500", "assets": ["AAPL", "JPM", "XOM", "KO", "PFE"], "start": "2018-01-01",
                    "end": "2022-12-28", "frequency": "weekly"},
           "problem": {"kind": "selection", "num_assets": 2, "baselines": False},
           "solver": {"reps": 3, "maxiter": 300, "postprocess": False}}
    config = parse_config(raw)
    from qportfolio.app.instance import build_problem_from_config

    problem = build_problem_from_config(config)
    solver = config.quantum_solver()
    energies = solver.encode(problem).energies

    def backend(fail_after=None):
        return CountingGradients(make_backend("exact", 4096, config.seed, energies=energies), fail_after)

    reference_backend = backend()
    reference = experiment.execute(config, tmp_path / "reference", backend=reference_backend)
    with pytest.raises(KeyboardInterrupt):
        experiment.execute(config, tmp_path / "interrupted", backend=backend(fail_after=40))
    (folder,) = (tmp_path / "interrupted").iterdir()
    resumed_backend = backend()
    resumed = experiment.resume(folder, backend=resumed_backend)
    assert resumed_backend.calls == reference_backend.calls - 40  # every recorded gradient was replayed
    assert resumed.result["quantum"]["optimal_parameters"] == reference.result["quantum"]["optimal_parameters"]
    assert resumed.result["metrics"]["p_optimal"] == reference.result["metrics"]["p_optimal"]
