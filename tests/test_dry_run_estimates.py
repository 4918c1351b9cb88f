"""The dry run's estimate of a command's wall time: its parts are there and add up, the kernels' compilation is
counted only when numba's cache lacks them and the run uses them, and the plan lists only what the command does.
How close the estimate comes to measured times is the benchmark's business (benchmarks/dry_run_accuracy.py,
results/benchmarks/dry_run_accuracy.md), not a test's: times move with the machine."""

from pathlib import Path

import pytest
import yaml

from qportfolio.app import experiment, planning
from qportfolio.app.cli import main
from qportfolio.app.config import load_config
from qportfolio.app.planning import COMPILE_SECONDS, dry_run
from qportfolio.backends.ibm import devices

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def config_with(tmp_path: Path, base: str, **sections) -> Path:
    data = yaml.safe_load((CONFIGS / f"{base}.yaml").read_text())
    for section, changes in sections.items():
        data[section].update(changes)
    path = tmp_path / f"{base}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def parts(plan: dict) -> dict:
    return {k: v for k, v in plan["estimate"].items() if k.endswith("_s")}


def test_the_quickstart_estimate_has_every_part_of_the_run_and_they_add_up(monkeypatch):
    monkeypatch.setattr(planning, "kernels_compiled", lambda: True)
    plan = dry_run(load_config(CONFIGS / "quickstart.yaml"))
    found = parts(plan)
    assert {"startup_s", "classical_exact_s", "encoding_s", "baselines_s", "search_s", "quantum_fixed_s"} <= found.keys()
    assert "kernel_compilation_s" not in found and "note" not in plan["estimate"]
    assert not {"spending_guard_s", "transpilation_s", "qpu_s", "calibration_s"} & found.keys()  # not on exact
    assert plan["estimated_seconds"] == pytest.approx(sum(found.values()), abs=0.1)
    assert found["startup_s"] == planning.STARTUP_SECONDS and found["baselines_s"] == planning.BASELINES_SECONDS


def test_compilation_is_added_only_when_the_kernels_are_not_cached_and_said(monkeypatch):
    config = load_config(CONFIGS / "quickstart.yaml")
    monkeypatch.setattr(planning, "kernels_compiled", lambda: True)
    cached = dry_run(config)
    monkeypatch.setattr(planning, "kernels_compiled", lambda: False)  # as on a fresh install
    fresh = dry_run(config)
    assert parts(fresh)["kernel_compilation_s"] == COMPILE_SECONDS == experiment.COMPILE_SECONDS
    assert "compiles the simulator's kernels" in fresh["estimate"]["note"]
    assert fresh["estimated_seconds"] == pytest.approx(cached["estimated_seconds"] + COMPILE_SECONDS, abs=1.0)


def test_a_run_that_never_touches_the_kernels_is_not_charged_their_compilation(monkeypatch):
    monkeypatch.setattr(planning, "kernels_compiled", lambda: False)
    vqe = dry_run(load_config(CONFIGS / "vqe.yaml"))  # Aer with shots, no pretraining
    markowitz = dry_run(load_config(CONFIGS / "markowitz.yaml"))
    assert "kernel_compilation_s" not in parts(vqe) and "kernel_compilation_s" not in parts(markowitz)


def test_an_exact_run_lists_no_shots_but_the_final_samples_and_vqe_no_mixer(monkeypatch):
    quickstart = dry_run(load_config(CONFIGS / "quickstart.yaml"))
    assert quickstart["final_shots"] == 4096 and quickstart["mixer"] == "x"
    assert not {"circuits", "shots_per_circuit", "total_shots", "calibration_job"} & quickstart.keys()
    vqe = dry_run(load_config(CONFIGS / "vqe.yaml"))  # Aer samples every evaluation's circuit
    assert "mixer" not in vqe and vqe["ansatz"] == "real_amplitudes"
    assert vqe["circuits"] == vqe["evaluations"] + 1 and vqe["total_shots"] == vqe["circuits"] * 2048
    markowitz = dry_run(load_config(CONFIGS / "markowitz.yaml"))
    assert not {"backend", "qubits", "final_shots", "circuits"} & markowitz.keys()


def test_a_run_the_run_refuses_is_refused_by_its_dry_run_and_baseline_plans_it(capsys, tmp_path):
    """eight_assets encodes to more qubits than fit once slack registers are sized with the optimum: the run says
    so, and so does its dry run (the same line), instead of planning a circuit the run never builds."""
    path = CONFIGS / "eight_assets.yaml"
    assert main(["run", str(path), "--dry-run"]) == 2
    refused = capsys.readouterr().err
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert capsys.readouterr().err == refused and refused.startswith("qportfolio: error: ")
    assert main(["baseline", str(path), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "qubits: 62" in plan and "classical answers only" in plan and "backend:" not in plan
    assert "baselines_s:" in plan and "search_s:" not in plan


def test_a_device_target_lists_and_times_its_readout_calibration_job_only_with_mitigation(tmp_path):
    mitigated = dry_run(load_config(CONFIGS / "hardware_fake_fez.yaml"))
    assert mitigated["calibration_job"] == {"circuits": 2, "shots_per_circuit": 10_000}
    # the run's spending guard plans it first (max_qpu_seconds on ibm_fake): that and the transpilation count
    assert {"calibration_s", "sampling_s", "spending_guard_s", "transpilation_s"} <= parts(mitigated).keys()
    plain = dry_run(load_config(config_with(tmp_path, "hardware_fake_fez", backend={"mitigation": "none"})))
    assert "calibration_job" not in plain and "calibration_s" not in parts(plain)
    # the final job is sampled on the device; the angles are pretrained on exact (its kernels)
    assert plain["circuits"] == 1 and plain["evaluations"] == 0 and "pretraining_s" in parts(plain)


def test_a_real_device_estimate_adds_its_qpu_time_and_says_the_queue_is_not_in_it(monkeypatch):
    """configs/hardware_ibm.yaml offline: ibm:least_busy answered by the fake Fez (no account, no network)."""
    import qportfolio.backends.ibm as ibm

    monkeypatch.setattr(ibm, "_connect", lambda settings, device: (None, devices.fake_device("fake_fez")))
    plan = dry_run(load_config(CONFIGS / "hardware_ibm.yaml"))
    found = parts(plan)
    assert found["qpu_s"] == pytest.approx(plan["estimated_qpu_seconds"], rel=1e-2) and 0 < found["qpu_s"] < 120
    assert "queue is not included" in plan["estimate"]["note"]
    assert "search_s" not in found and "sampling_s" not in found  # no simulator time for a real device
    assert plan["estimated_seconds"] > found["qpu_s"]


def test_the_modelled_adaptive_search_spends_what_the_search_may_spend():
    """The model follows the adaptive search: at most ``maxiter`` evaluations, and with a small cap all of them at
    depth 1 (selection_24: 50 evaluations), so that it costs what 50 evaluations at p = 1 cost."""
    from qportfolio.app.instance import build_problem_from_config

    config = load_config(CONFIGS / "selection_24.yaml")
    problem = build_problem_from_config(config)
    solver = config.quantum_solver().resolved(problem)
    one_depth = 50 * (planning.EXACT_SECONDS_PER_EVALUATION + planning.EXACT_SECONDS_PER_LAYER
                      + planning.EXACT_SECONDS_PER_AMPLITUDE_LAYER * 2 * 2.0**24)
    assert planning.exact_search_seconds(solver, problem, 24) == pytest.approx(one_depth, rel=1e-12)
