"""Noisy simulations (aer_noisy:*, ibm_fake:*): their time estimated from the ISA circuit before they run, a
run expected to take hours refused without --yes, and a long job stopped at once by SIGINT/SIGTERM, recorded
as interrupted and resumable."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from qportfolio.app.cli import main
from qportfolio.app.config import load_config
from qportfolio.app.planning import dry_run
from qportfolio.backends.ibm import AerNoisyBackend, make_hardware_backend
from qportfolio.backends.ibm.noisy import NOISY_COST, estimate_job_seconds, isa_operations
from qportfolio.circuits import qaoa_ansatz
from qportfolio.encoding import Qubo

ROOT = Path(__file__).resolve().parents[1]


def qaoa_circuit(n: int, reps: int = 1):
    rng = np.random.default_rng(n)
    operator, _ = Qubo(np.triu(rng.normal(size=(n, n)), 1), rng.normal(size=n), 0.0).to_ising()
    circuit = qaoa_ansatz(operator, reps).circuit
    return circuit, rng.uniform(0, 1, circuit.num_parameters)


def test_the_estimate_follows_the_cost_model_of_the_isa_circuit():
    """The estimate is the NOISY_COST model of the transpiled circuit (recomputed here from its active qubits and
    operations): statevector trajectories cost in proportion to the shots, the density matrix does not, and both
    grow with the circuit. How close the model is to measured times is the benchmark's business
    (benchmarks/noisy_cost.py, results/benchmarks/noisy_cost.md), not a test's: times move with the machine."""
    small, _ = qaoa_circuit(4)
    large, _ = qaoa_circuit(8, reps=2)
    for method in ("statevector", "density_matrix"):
        backend = make_hardware_backend("aer_noisy:fake_fez", 256, 1, aer_method=method)
        for circuit in (small, large):
            active, ops = isa_operations(backend.compile(circuit).isa)
            expected = estimate_job_seconds(len(active), ops, 256, 1, method)
            assert backend.estimate_seconds(circuit) == pytest.approx(expected, rel=1e-12)
        few, many = backend.estimate_seconds(large, shots=256), backend.estimate_seconds(large, shots=2560)
        if method == "statevector":
            overhead = NOISY_COST["statevector"][0]
            assert many - overhead == pytest.approx(10 * (few - overhead), rel=1e-9)
        else:
            assert many == pytest.approx(few, rel=1e-12)
        assert backend.estimate_seconds(large) > backend.estimate_seconds(small)


def noisy_config(tmp_path: Path, **solver) -> Path:
    config = yaml.safe_load((ROOT / "configs" / "hardware_fake_fez.yaml").read_text())
    config["name"] = "slow_noisy"
    config["problem"]["baselines"] = False
    config["solver"].update({"postprocess": False, **solver})
    config["backend"] = {"name": "aer_noisy:fake_fez", "aer_method": "statevector", "mitigation": "none"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_dry_run_estimates_the_noisy_job_from_the_isa_circuit(tmp_path):
    few, many = (dry_run(load_config(noisy_config(tmp_path, shots=shots))) for shots in (1_000, 100_000))
    backend = make_hardware_backend("aer_noisy:fake_fez", 1_000, 3, aer_method="statevector")
    assert few["circuits"] == 1 and few["hardware"]["num_active_qubits"] == 4
    # the same model as the backend's own estimate, and it grows with the shots (not 0.15 s a job)
    assert many["estimate"]["sampling_s"] > 50 * few["estimate"]["sampling_s"] > 0
    assert isinstance(backend, AerNoisyBackend)


def test_a_noisy_run_expected_to_take_hours_is_refused_without_yes(tmp_path, capsys):
    path = noisy_config(tmp_path, shots=10_000_000)
    assert dry_run(load_config(path))["estimated_seconds"] > 3600
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("qportfolio: error: this run is expected to take about") and "--yes" in error
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_long_job_in_the_worker_stops_at_once_on_sigint_and_says_what_it_did():
    backend = make_hardware_backend("aer_noisy:fake_fez", 2_000_000, 1, aer_method="statevector", mitigation="none")
    circuit, theta = qaoa_circuit(4)
    assert backend.estimate_seconds(circuit) > 60
    heard, progress = [], []
    backend.on_job(heard.append)
    backend.on_progress(progress.append)
    sent = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(4.0, interrupt)
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            backend.sample(circuit, theta, 2_000_000)
        stopped = time.monotonic()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert stopped - sent[0] < 2.0  # not the job's minutes
    assert backend._worker is None  # killed, not left computing
    interrupted = heard[-1]
    started = [h for h in heard if h.get("state") != "interrupted"]  # a readout calibration job may come first
    assert interrupted["state"] == "interrupted" and interrupted["job_id"] == started[-1]["job_id"]
    assert 0 <= interrupted["shots_done"] < 2_000_000
    assert progress[0]["shots_done"] == 0 and progress[0]["estimated_seconds"] > 60


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def interrupt_run(path: Path, out: Path, signum: int, *args: str, into_job: float = 3.0):
    """Run ``path`` with the CLI in a real process, send ``signum`` ``into_job`` seconds after its final job
    was recorded; ``(process, run folder, stderr, seconds from the signal to the process's end)``."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen([sys.executable, "-m", "qportfolio.app.cli", "run", str(path), "--out", str(out),
                                *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            folders = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
            if folders and any(job["kind"] == "final" for job in records(folders[0] / "jobs.jsonl")):
                break
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.05)
        time.sleep(into_job)  # well into the job: the worker is computing
        sent = time.monotonic()
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
    (folder,) = folders
    return process, folder, err, took


def assert_interrupted(process, folder: Path, err: str, took: float, shots: int) -> None:
    """Stopped within seconds, the run and its final job recorded ``interrupted``, and no worker left."""
    assert process.returncode == 130 and took < 5.0, (took, err)
    assert f"final job: 0 of {shots:,} shots" in err  # the progress said what runs and for how long
    assert f"qportfolio resume {folder}" in err and "Traceback" not in err
    assert json.loads((folder / "result.json").read_text())["status"] == "interrupted"
    interrupted = [job for job in records(folder / "jobs.jsonl") if job.get("state") == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0]["kind"] == "final" and interrupted[0]["shots"] == shots
    leftover = subprocess.run(["pgrep", "-f", f"noisy import _serve.* {process.pid}$"], capture_output=True, text=True)
    assert leftover.stdout == ""  # the worker died with it


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_noisy_run_stops_within_seconds_and_is_interrupted(tmp_path, capsys, signum):
    path = noisy_config(tmp_path, shots=10_000_000)
    assert dry_run(load_config(path))["estimated_seconds"] > 3600  # run with --yes, resumed without it
    process, folder, err, took = interrupt_run(path, tmp_path / "out", signum, "--yes")
    assert_interrupted(process, folder, err, took, 10_000_000)
    capsys.readouterr()
    assert main(["status", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "status          interrupted" in shown and f"continue with   qportfolio resume {folder}" in shown
    assert "final  interrupted" in shown
    # resumable: the resume is held to the same guard (refused without --yes, the folder left as it was)
    assert main(["resume", str(folder), "--quiet"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert json.loads((folder / "result.json").read_text())["status"] == "interrupted"


def test_an_ibm_fake_job_stops_within_seconds_on_sigterm(tmp_path, capsys):
    # the runtime's local testing mode on fake_fez: 12–20 s a job (the whole device's noise model), in the worker
    config = yaml.safe_load((ROOT / "configs" / "hardware_fake_fez.yaml").read_text())
    config["problem"]["baselines"] = False
    config["solver"]["postprocess"] = False
    config["backend"]["mitigation"] = "none"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    process, folder, err, took = interrupt_run(path, tmp_path / "out", signal.SIGTERM, into_job=4.0)
    assert_interrupted(process, folder, err, took, config["solver"]["shots"])
    (interrupted,) = [job for job in records(folder / "jobs.jsonl") if job.get("state") == "interrupted"]
    assert 3.0 < interrupted["seconds"] < interrupted["estimated_seconds"]  # mid-job, not after it
    capsys.readouterr()
    assert main(["status", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "status          interrupted" in shown and "final  interrupted" in shown
