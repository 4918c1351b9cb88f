"""The hardware path end to end, offline, through the `qportfolio` command and `qportfolio.app.experiment`:
dry run, spending guard, a run in qiskit-ibm-runtime's local testing mode (ibm_fake:*), a run interrupted
midway and resumed with no evaluation repeated, `status`, and no credential in anything a run produces.

The backends are real (ibm_fake:* = the runtime Sampler in local testing mode, aer_noisy:* = Aer with the
device noise model). The only injection is a wrapper around the real backend that raises KeyboardInterrupt
at a chosen point, as tests/test_resume.py does. The instance is configs/hardware_fake_fez.yaml's
(4 assets, K = 2, 4 qubits, QAOA p = 1), written to tmp_path with smaller budgets.

ibm_fake:fake_fez rebuilds Fez's 156-qubit noise model for every job (about 10 s a job on two cores), so the
default end-to-end run uses ibm_fake:fake_manila (5 qubits: the same local-testing code path); the Fez run
is kept under `-m slow`.
"""

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from qportfolio.app import experiment
from qportfolio.app.cli import main
from qportfolio.app.config import load_config
from qportfolio.app.planning import check_spending

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "configs" / "hardware_fake_fez.yaml"
TOKEN = "SENTINEL-TOKEN-1234567890"
INSTANCE = "SENTINEL-INSTANCE-0987654321"


#: Train on the device itself, one job per evaluation (the path the job records and resume logic serve).
EVERY_EVALUATION_A_JOB = {"pretrain": "none", "search": "fixed", "optimizer": "cobyla", "objective": "cvar",
                          "cvar_alpha": 0.25}


def write_config(tmp_path: Path, filename: str = "config.yaml", **sections) -> Path:
    """configs/hardware_fake_fez.yaml with ``sections`` ({section: {key: value or None to drop}}) applied."""
    data = yaml.safe_load(BASE.read_text())
    for section, changes in sections.items():
        for key, value in changes.items():
            if value is None:
                data[section].pop(key, None)
            else:
                data[section][key] = value
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def small(tmp_path, backend: str, filename="config.yaml", maxiter=6, **backend_changes) -> Path:
    return write_config(tmp_path, filename, solver={"maxiter": maxiter, "shots": 256, **EVERY_EVALUATION_A_JOB},
                        backend={"name": backend, "mitigation": "none", "max_qpu_seconds": None, **backend_changes})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def only_run_folder(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


# --------------------------------------------------------------------------- dry run and spending guard


def test_dry_run_prints_the_hardware_report_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # where the default results/ would go
    assert main(["run", str(BASE), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "backend: ibm_fake:fake_fez" in out and "  device: fake_fez" in out
    assert re.search(r"^  two_qubit_gates:\n    cz: \d+$", out, re.M)
    success = float(re.search(r"estimated_success_probability: (\S+)", out).group(1))
    seconds = float(re.search(r"^estimated_qpu_seconds: (\S+)", out, re.M).group(1))
    assert 0 < success < 1 and 0 < seconds < 600  # the shipped limit
    assert "qubits: 4" in out and "logical_qubits: 4" in out and "mitigation: mthree" in out
    assert list(tmp_path.iterdir()) == []  # no run folder, no results/


@pytest.mark.parametrize("command", ["run", "submit"])
def test_spending_guard_refuses_without_yes(tmp_path, capsys, command):
    config = write_config(tmp_path, backend={"max_qpu_seconds": 0.001})
    out = tmp_path / "out"
    assert main([command, str(config), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("qportfolio: error: ")
    assert "max_qpu_seconds" in captured.err and "--yes" in captured.err
    assert not out.exists()
    # --yes lets it through; under the limit it passes without --yes; simulators are not guarded
    loaded = load_config(config)
    estimate = check_spending(loaded, True)
    assert estimate is not None and estimate > 0.001
    assert check_spending(load_config(write_config(tmp_path, "roomy.yaml", backend={"max_qpu_seconds": 1e6})),
                          False) == estimate
    noisy = write_config(tmp_path, "noisy.yaml", backend={"name": "aer_noisy:fake_fez", "max_qpu_seconds": 0.001})
    assert check_spending(load_config(noisy), False) is None


# --------------------------------------------------------------------------- a run in local testing mode


@pytest.mark.parametrize("device", ["fake_manila", pytest.param("fake_fez", marks=pytest.mark.slow)])
def test_run_on_fake_backend_end_to_end_then_status(tmp_path, capsys, device):
    # max_qpu_seconds far below the estimate: only --yes lets the run start
    config = small(tmp_path, f"ibm_fake:{device}", maxiter=5, max_qpu_seconds=0.001)
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--yes", "--quiet"]) == 0
    assert "quantum = exact" in capsys.readouterr().out
    folder = only_run_folder(out)
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "complete" and "error" not in result
    assert result["quantum"]["backend"] == f"ibm_fake:{device}"
    assert result["solutions"]["quantum"]["allocation"] is not None
    assert result["solutions"]["classical_exact"]["proven_optimal"]
    history = read_jsonl(folder / "history.jsonl")
    jobs = read_jsonl(folder / "jobs.jsonl")
    assert len(history) == result["quantum"]["evaluations"] >= 5
    assert [j["kind"] for j in jobs] == ["evaluation"] * len(history) + ["final"]
    assert all(isinstance(j["job_id"], str) and j["job_id"] for j in jobs)
    assert len({j["job_id"] for j in jobs}) == len(jobs)
    assert all(j["backend"] == f"ibm_fake:{device}" and j["shots"] == 256 for j in jobs)
    assert [j["parameters"] for j in jobs[:-1]] == [[h["parameters"]] for h in history]
    assert jobs[-1]["parameters"] == [result["quantum"]["optimal_parameters"]]
    assert all(len(j["measured_qubits"]) == 4 for j in jobs)
    for name in ("config.yaml", "samples.csv", "circuit.qpy", "circuit.qasm", "report.md"):
        assert (folder / name).exists()

    assert main(["status", str(folder)]) == 0
    status = capsys.readouterr().out
    assert re.search(r"^status\s+complete$", status, re.M)
    assert re.search(rf"^evaluations\s+{len(history)} ", status, re.M)
    assert re.search(rf"^jobs\s+{len(jobs)}$", status, re.M)
    for job in jobs[-10:]:  # status lists the last ten
        assert re.search(rf"^  {re.escape(job['job_id'])}  {job['kind']}  recorded$", status, re.M)
    assert "quantum = exact" in status


# --------------------------------------------------------------------------- interrupted and resumed


class Faulty:
    """The real hardware backend, counting the parameter sets it is asked to evaluate and raising
    KeyboardInterrupt once ``fail_after`` have been evaluated: ``before`` the next job is submitted, or
    ``in_flight``: after the next job is submitted (its id recorded) and before its result is collected.
    Everything else is the real backend's. Several wrappers may share one real backend (a stand-in for
    IBM Quantum keeping submitted jobs); only the newest one's job callbacks fire."""

    def __init__(self, backend, fail_after=None, when="before"):
        self.backend, self.fail_after, self.when = backend, fail_after, when
        self.evaluated = 0
        self.active = True

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def on_job(self, callback):
        self.backend.on_job(lambda record: callback(record) if self.active else None)

    def distributions(self, circuit, parameter_sets, shots=None, kind="evaluation"):
        if self.fail_after is not None and self.when == "before" and self.evaluated >= self.fail_after:
            raise KeyboardInterrupt
        job_id = self.backend.submit(circuit, parameter_sets, shots, kind)
        self.evaluated += len(np.atleast_2d(parameter_sets))
        if self.fail_after is not None and self.when == "in_flight" and self.evaluated > self.fail_after:
            raise KeyboardInterrupt
        return self.backend.collect(job_id)


def faulty(config, fail_after=None, when="before", reuse=None) -> Faulty:
    """A Faulty around the config's real backend (``reuse``'s real backend if given), to pass to the run."""
    if reuse is not None:
        reuse.active = False
    return Faulty(reuse.backend if reuse is not None else config.quantum_solver().make_backend(), fail_after, when)


@pytest.fixture(scope="module")
def resume_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    path = write_config(tmp, solver={"maxiter": 8, "shots": 256, **EVERY_EVALUATION_A_JOB}, problem={"baselines": False},
                        backend={"name": "aer_noisy:fake_fez", "mitigation": "none", "max_qpu_seconds": None})
    return load_config(path)


@pytest.fixture(scope="module")
def total_evaluations(resume_config, tmp_path_factory):
    """Evaluations of the uninterrupted run (COBYLA stops at maxiter function evaluations)."""
    backend = faulty(resume_config)
    run = experiment.execute(resume_config, tmp_path_factory.mktemp("reference"), backend=backend)
    assert run.result["status"] == "complete"
    assert backend.evaluated == run.result["quantum"]["evaluations"] == 8
    return backend.evaluated


@pytest.mark.parametrize("when, service_keeps_jobs", [
    ("before", False),     # stopped between two jobs
    ("in_flight", False),  # stopped with a job submitted: local jobs die with their process, so it is rerun
    ("in_flight", True),   # ... on a real account the job is still there: resume collects it by id
])
def test_interrupted_run_resumes_without_repeating_an_evaluation(tmp_path, monkeypatch, resume_config,
                                                                 total_evaluations, when, service_keeps_jobs):
    total, k = total_evaluations, 3
    first = faulty(resume_config, fail_after=k, when=when)
    with pytest.raises(KeyboardInterrupt):
        experiment.execute(resume_config, tmp_path, backend=first)
    folder = only_run_folder(tmp_path)
    interrupted = json.loads((folder / "result.json").read_text())
    assert interrupted["status"] == "interrupted"
    assert len(read_jsonl(folder / "history.jsonl")) == k
    first_jobs = read_jsonl(folder / "jobs.jsonl")
    in_flight = 1 if when == "in_flight" else 0
    assert [j["kind"] for j in first_jobs] == ["evaluation"] * (k + in_flight)

    backend = faulty(resume_config, reuse=first if service_keeps_jobs else None)
    resumed = experiment.resume(folder, backend=backend)
    collected = in_flight if service_keeps_jobs else 0
    assert backend.evaluated == total - k - collected  # nothing recorded (or collectable) is evaluated again
    assert resumed.result["status"] == "complete"
    assert resumed.result["resumed_evaluations"] == k + collected
    assert resumed.result["quantum"]["evaluations"] == total
    history = read_jsonl(folder / "history.jsonl")
    assert len(history) == total
    jobs = read_jsonl(folder / "jobs.jsonl")
    assert jobs[:len(first_jobs)] == first_jobs
    assert len({j["job_id"] for j in jobs}) == len(jobs)  # no job recorded twice
    evaluations = [j for j in jobs if j["kind"] == "evaluation"]
    assert len(evaluations) == total + in_flight - collected
    assert [j["kind"] for j in jobs].count("final") == 1
    if service_keeps_jobs:  # the collected job's result became evaluation k, at its parameters
        assert [history[k]["parameters"]] == first_jobs[k]["parameters"]
    assert json.loads((folder / "result.json").read_text())["status"] == "complete"


# --------------------------------------------------------------------------- credentials


def test_no_credential_reaches_the_run_folder_or_the_log(tmp_path, monkeypatch, capfd, caplog):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", TOKEN)
    monkeypatch.setenv("QISKIT_IBM_INSTANCE", INSTANCE)
    caplog.set_level(logging.DEBUG)
    records = []
    runtime_logger = logging.getLogger("qiskit_ibm_runtime")  # it does not propagate to the root logger
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    runtime_logger.addHandler(handler)
    monkeypatch.setattr(runtime_logger, "level", logging.DEBUG)
    try:
        noisy = small(tmp_path, "aer_noisy:fake_fez", "noisy.yaml", maxiter=5, mitigation="mthree")
        assert main(["run", str(noisy), "--out", str(tmp_path / "noisy"), "--quiet"]) == 0
        ibm = small(tmp_path, "ibm:least_busy", "ibm.yaml", maxiter=5, min_qubits=4)
        assert main(["run", str(ibm), "--out", str(tmp_path / "ibm"), "--quiet"]) == 2
    finally:
        runtime_logger.removeHandler(handler)
    out, err = capfd.readouterr()
    assert "quantum = exact" in out
    # offline the cause is the network ("cannot reach"); with a network but a bad token, "cannot use"
    assert len(re.findall(r"^qportfolio: error: cannot (use|reach) IBM Quantum (backend |for )ibm:least_busy", err, re.M)) == 1
    failed = json.loads((only_run_folder(tmp_path / "ibm") / "result.json").read_text())
    assert failed["status"] == "failed" and "QISKIT_IBM_TOKEN" in failed["error"]  # the advice, not the value
    noisy_folder = only_run_folder(tmp_path / "noisy")
    assert [j["kind"] for j in read_jsonl(noisy_folder / "jobs.jsonl")][0] == "calibration"
    files = [p for out_dir in ("noisy", "ibm") for p in (tmp_path / out_dir).rglob("*") if p.is_file()]
    assert any(p.name == "result.json" for p in files) and len(files) > 6
    texts = {str(p): p.read_bytes() for p in files}
    texts.update({"stdout": out.encode(), "stderr": err.encode(), "caplog": caplog.text.encode()})
    texts.update({f"log record {k}": str(r.getMessage()).encode() for k, r in
                  enumerate([*caplog.records, *records])})
    for secret in (TOKEN, INSTANCE):
        leaked = [where for where, text in texts.items() if secret.encode() in text]
        assert not leaked, f"{secret} found in {leaked}"
