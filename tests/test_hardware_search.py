"""The device search (issue 23): circuits chosen by the P(optimum) predicted on the target, the fidelity model
against the target's own numbers, post-selected metrics against a brute-force count, readout mitigation by
default, and the exact path untouched."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from qiskit import QuantumCircuit
from qiskit.circuit.library import CZGate, Measure, SXGate
from qiskit.transpiler import InstructionProperties, Target

from qportfolio.app.cli import main
from qportfolio.backends import make_backend
from qportfolio.backends.base import Distribution
from qportfolio.backends.ibm.compilation import CompiledCircuit
from qportfolio.backends.ibm.fidelity import estimated_fidelity, has_readout_errors, predicted_probability
from qportfolio.classical import solve_exact
from qportfolio.evaluation import decode_samples, postselected_metrics, quality_metrics
from qportfolio.optimize import QuantumSolver
from qportfolio.optimize.device_search import DEVICE_CANDIDATES

from conftest import all_bits, ideal_p_optimal

ROOT = Path(__file__).resolve().parents[1]


def line_target(readout: bool = True) -> Target:
    """Three qubits on a line with made-up errors, durations and T2."""
    from qiskit.providers import QubitProperties

    target = Target(num_qubits=3, dt=1e-9, qubit_properties=[QubitProperties(t1=2e-4, t2=t) for t in (1e-4, 5e-5, 2e-5)])
    target.add_instruction(SXGate(), {(q,): InstructionProperties(duration=3e-8, error=1e-3 * (q + 1)) for q in range(3)})
    target.add_instruction(CZGate(), {(0, 1): InstructionProperties(duration=1e-7, error=0.01),
                                      (1, 2): InstructionProperties(duration=1e-7, error=0.02)})
    target.add_instruction(Measure(), {(q,): InstructionProperties(duration=1e-6, error=0.05 if readout else None)
                                       for q in range(3)})
    return target


def test_fidelity_is_the_product_of_the_targets_numbers():
    isa = QuantumCircuit(3, 3)
    isa.sx(0), isa.sx(0), isa.cz(0, 1), isa.sx(2), isa.cz(1, 2)
    isa.measure([0, 1, 2], [0, 1, 2])
    compiled = CompiledCircuit(isa, 3, (0, 1, 2), (0, 1, 2), (0, 1, 2), np.zeros(0, dtype=int))
    f = estimated_fidelity(compiled, line_target(), idle=True, readout=True, exponent=1.0)
    gates = (1 - 1e-3) ** 2 * (1 - 0.01) * (1 - 3e-3) * (1 - 0.02)
    assert f["gate_fidelity"] == pytest.approx(gates, rel=1e-12)
    # schedule: q0 busy 60 ns + 100 ns (cz at 60–160), q1 cz 60–160 then cz 160–260, q2 sx 0–30 then cz 160–260
    end = 2.6e-7
    idle = math.exp(-(end - 1.6e-7) / 1e-4 - (end - 2e-7) / 5e-5 - (end - 1.3e-7) / 2e-5)
    assert f["idle_fidelity"] == pytest.approx(idle, rel=1e-9) and f["duration_s"] == pytest.approx(end)
    assert f["readout_fidelity"] == pytest.approx(0.95**3)
    assert f["fidelity"] == pytest.approx(gates * idle * 0.95**3)
    mitigated = estimated_fidelity(compiled, line_target(), idle=False, readout=False, exponent=2.0)
    assert mitigated["fidelity"] == pytest.approx(gates**2) and mitigated["idle_fidelity"] is None


def test_predicted_probability_is_a_depolarised_mixture():
    rng = np.random.default_rng(3)
    ideal = rng.dirichlet(np.ones(16))
    optimal = [3, 9]
    for fidelity in (0.0, 0.3, 1.0):
        mixed = fidelity * ideal + (1 - fidelity) / 16  # the sampled distribution under global depolarising noise
        assert predicted_probability(fidelity, ideal[optimal].sum(), 2 / 16) == pytest.approx(mixed[optimal].sum())


def test_readout_mitigation_by_default_where_the_target_reports_readout_errors():
    assert has_readout_errors(line_target()) and not has_readout_errors(line_target(readout=False))
    assert make_backend("aer_noisy:fake_fez", 100, 1).options.mitigation == "mthree"
    assert make_backend("aer_noisy:fake_fez", 100, 1, mitigation="none").options.mitigation == "none"


def test_postselected_metrics_against_a_brute_force_count(selection_problem):
    solver = QuantumSolver(mixer="x", backend="exact")
    encoding = solver.encode(selection_problem).encoding
    exact = solve_exact(selection_problem)
    n = encoding.num_qubits
    rng = np.random.default_rng(5)
    probabilities = rng.dirichlet(np.ones(2**n))
    table = decode_samples(Distribution(np.arange(2**n), probabilities, 1000), encoding, selection_problem)
    out = postselected_metrics(table, exact.objective, exact.worst_feasible_objective, 1, math.comb(5, 2))
    # brute force: a sample is kept iff it holds K = 2 assets; the optimum is the exact allocation
    bits = all_bits(n)
    kept = bits.sum(axis=1) == 2
    optimal = np.all(bits == exact.vector, axis=1)
    assert out["kept_fraction"] == pytest.approx(probabilities[kept].sum())
    assert out["p_optimal"] == pytest.approx(probabilities[optimal].sum() / probabilities[kept].sum())
    assert out["shots_kept"] == round(probabilities[kept].sum() * 1000) and out["shots"] == 1000
    assert out["uniform_p_optimal"] == pytest.approx(1 / 10) and out["lift"] == pytest.approx(out["p_optimal"] * 10)
    raw = quality_metrics(table, exact.objective, exact.worst_feasible_objective)
    assert out["p_optimal"] == pytest.approx(raw.p_optimal / raw.feasible_fraction)


def test_device_search_chooses_the_best_predicted_circuit_on_aer_noisy(selection_problem):
    solver = QuantumSolver(backend="aer_noisy:fake_fez", shots=2000, seed=3)
    result = solver.solve(selection_problem)
    device = result.to_dict()["device_search"]
    candidates = device["candidates"]
    expected = [(m, w, p) for m, w, deepest in DEVICE_CANDIDATES for p in range(1, deepest + 1)]
    assert [(c["mixer"], c["warm_start"], c["reps"]) for c in candidates] == expected
    best = max(c["predicted_p_optimal"] for c in candidates)
    assert device["chosen"]["predicted_p_optimal"] == best
    assert (result.settings["mixer"], result.settings["warm_start"], result.ansatz.reps) == (
        device["chosen"]["mixer"], device["chosen"]["warm_start"], device["chosen"]["reps"])
    # the chosen circuit's ideal P(optimum): the exact simulator on the encoding the run used
    assert device["chosen"]["ideal_p_optimal"] == pytest.approx(ideal_p_optimal(result, selection_problem), rel=1e-9)
    # deeper circuits of one mixer are never estimated to survive better on the device
    for mixer, warm, _ in DEVICE_CANDIDATES:
        fidelities = [c["estimated_fidelity"] for c in candidates if (c["mixer"], c["warm_start"]) == (mixer, warm)]
        assert fidelities == sorted(fidelities, reverse=True)
    post = result.metrics_postselected
    assert post["p_optimal"] == pytest.approx(result.p_optimal / result.feasible_fraction)
    assert post["uniform_p_optimal"] == pytest.approx(1 / 10)
    assert result.to_dict()["metrics"]["p_optimal"] == result.p_optimal  # metrics keep the raw figures


def test_settings_given_or_exact_target_skip_the_device_search(selection_problem):
    assert not QuantumSolver(backend="exact").resolved(selection_problem)._device_search
    assert not QuantumSolver(backend="aer_noisy:fake_fez", mixer="x").resolved(selection_problem)._device_search
    assert not QuantumSolver(backend="aer_noisy:fake_fez", reps=2).resolved(selection_problem)._device_search
    assert QuantumSolver(backend="ibm_fake:fake_fez").resolved(selection_problem)._device_search
    described = QuantumSolver(backend="exact", shots=500).solve(selection_problem).to_dict()
    assert "device_search" not in described and described["metrics_postselected"]["kept_fraction"] == pytest.approx(1.0)


def test_dry_run_lists_the_device_candidates(tmp_path, capsys):
    config = yaml.safe_load((ROOT / "configs" / "hardware_fake_fez.yaml").read_text())
    config["solver"] = {"shots": 512}
    config["backend"] = {"name": "aer_noisy:fake_fez"}
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "device_candidates:" in out and "x p=1" in out and "x warm p=1" in out and "xy_ring p=1" in out
    assert out.count("(chosen)") == 1 and "isa_two_qubit_depth" in out and "predicted_p_optimal" in out
    assert "mitigation: mthree" in out


def test_the_kept_transpilation_is_the_most_faithful_of_the_seeds_tried(selection_problem):
    from qiskit.transpiler import generate_preset_pass_manager

    from qportfolio.backends.ibm.compilation import TRANSPILE_TRIALS

    solver = QuantumSolver(backend="aer_noisy:fake_fez", mixer="x", reps=1).resolved(selection_problem)
    circuit = solver.prepare_ansatz(selection_problem, solver.encode(selection_problem).encoding).circuit
    backend = make_backend("aer_noisy:fake_fez", 100, 11)
    target = backend.target

    def product_of_errors(isa):  # every gate and measurement: Π (1 − error), from the target directly
        value = 1.0
        for instruction in isa.data:
            qargs = tuple(isa.find_bit(q).index for q in instruction.qubits)
            name = instruction.operation.name
            if name in target.operation_names and target[name] and target[name].get(qargs) is not None:
                value *= 1 - (target[name][qargs].error or 0.0)
        return value

    scores = {}
    for seed in range(11, 11 + TRANSPILE_TRIALS):
        isa = generate_preset_pass_manager(optimization_level=2, target=target, seed_transpiler=seed).run(circuit)
        scores[seed] = product_of_errors(isa) * math.prod(
            1 - target["measure"][(q,)].error for q in isa.layout.final_index_layout())
    compiled = backend.compile(circuit)
    assert compiled.seed_transpiler == max(scores, key=scores.get)
    assert backend.hardware_report(circuit)["transpile"]["seed_transpiler"] == compiled.seed_transpiler


def test_report_and_compare_show_postselected_beside_raw(selection_problem, tmp_path):
    import json

    from qportfolio.app.compare import comparison_rows
    from qportfolio.app.report import write_report

    result = QuantumSolver(backend="aer_noisy:fake_fez", shots=1000, seed=2, mixer="x", reps=1).solve(selection_problem)
    described = result.to_dict()
    post = described["metrics_postselected"]
    assert post["shots"] == 1000 and 0 < post["shots_kept"] < 1000  # the X mixer leaves the K-asset states
    document = {"name": "t", "status": "complete", "metrics": described["metrics"], "metrics_postselected": post,
                "solutions": described["solutions"], "device_search": {"rule": "r", "chosen": None, "candidates": []}}
    page = write_report(document)
    assert f"{post['shots_kept']} of 1000 shots" in page and "Post-selected" in page and "## Device search" in page
    (tmp_path / "result.json").write_text(json.dumps(document))
    (row,) = [r for r in comparison_rows([tmp_path]) if r["method"] == "quantum"]
    assert row["p_optimal"] == described["metrics"]["p_optimal"]
    assert row["p_optimal_postselected"] == post["p_optimal"] and row["lift_postselected"] == post["lift"]
    assert post["p_optimal"] > row["p_optimal"] or post["p_optimal"] == row["p_optimal"] == 0
