"""Runs killed as users and machines kill them (SIGINT, SIGTERM, SIGKILL), then resumed.

A real `python -m qportfolio.app.cli run` process is killed once a few evaluations are in history.jsonl. In
between, `qportfolio status` must tell the truth (a run whose process is gone is `interrupted`, with the
command that resumes that folder); `resume` must then finish it without evaluating anything recorded again,
without measuring a readout calibration twice, and with the result of the uninterrupted run.

Backends: `aer_statevector` (18 qubits, so that an evaluation takes long enough to be interrupted) and
`aer_noisy:fake_fez` with mthree readout mitigation (a calibration job, then one job per evaluation).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from qportfolio.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
SP500 = ["AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT", "PEP", "PFE", "PG",
         "RRC", "UNH"]


def statevector_config() -> dict:
    return {"name": "kill_sv", "seed": 5,
            "data": {"source": "sp500", "assets": SP500, "start": "2019-01-01", "end": "2022-12-28", "frequency": "weekly"},
            "problem": {"kind": "selection", "num_assets": 3, "risk_aversion": 2.0, "baselines": False},
            "solver": {"reps": 2, "maxiter": 30, "objective": "cvar", "cvar_alpha": 0.5, "shots": 512,
                       "postprocess": False},
            "backend": {"name": "aer_statevector"}}


def noisy_config() -> dict:
    config = yaml.safe_load((ROOT / "configs" / "hardware_fake_fez.yaml").read_text())
    config["name"] = "kill_noisy"
    config["problem"]["baselines"] = False
    # no pretraining: every evaluation is a noisy job, so the per-job seeds are what a resume must reproduce
    config["solver"].update({"maxiter": 24, "shots": 256, "postprocess": False, "pretrain": "none"})
    config["backend"] = {"name": "aer_noisy:fake_fez", "mitigation": "mthree", "calibration_shots": 512}
    return config


CONFIGS = {"aer_statevector": statevector_config, "aer_noisy:fake_fez": noisy_config}


def records(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut short by SIGKILL
    return out


def essentials(result: dict) -> dict:
    quantum = dict(result["solutions"]["quantum"])
    quantum.pop("time_s", None)
    return {"quantum": quantum, "metrics": result["metrics"], "parameters": result["quantum"]["optimal_parameters"],
            "evaluations": result["quantum"]["evaluations"]}


def kill_midway(config_path: Path, out: Path, signum: int, lines: int = 3) -> Path:
    """Start a run in a subprocess, send ``signum`` once ``lines`` evaluations are recorded; its folder."""
    env = {**os.environ, "PYTHONPATH": f"{SOURCE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen([sys.executable, "-m", "qportfolio.app.cli", "run", str(config_path), "--out", str(out),
                                "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            folders = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
            if folders and len(records(folders[0] / "history.jsonl")) >= lines:
                break
            assert process.poll() is None, f"the run ended before it could be interrupted: {process.stderr.read()}"
            time.sleep(0.01)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0, "the run finished before the signal arrived"
    (folder,) = folders
    if signum != signal.SIGKILL:
        assert f"qportfolio resume {folder}" in err, err  # the folder, not RUN_DIR
        assert "Traceback" not in err
    return folder


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The uninterrupted run of each config: its result and its history length."""
    out = {}
    for backend, make in CONFIGS.items():
        folder = tmp_path_factory.mktemp("reference")
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(make(), sort_keys=False))
        assert main(["run", str(path), "--out", str(folder / "out"), "--quiet"]) == 0
        (run,) = (folder / "out").iterdir()
        out[backend] = (json.loads((run / "result.json").read_text()), len(records(run / "history.jsonl")),
                        records(run / "jobs.jsonl"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("backend", list(CONFIGS))
def test_killed_run_is_told_interrupted_and_resumes_to_the_uninterrupted_result(tmp_path, capsys, references, backend,
                                                                                signum):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIGS[backend](), sort_keys=False))
    folder = kill_midway(path, tmp_path / "out", signum)

    recorded = records(folder / "history.jsonl")
    written = json.loads((folder / "result.json").read_text())["status"]
    assert written == ("running" if signum == signal.SIGKILL else "interrupted")  # SIGKILL leaves no word…
    capsys.readouterr()
    assert main(["status", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "status          interrupted" in shown  # …but status tells the truth from the lock
    assert f"continue with   qportfolio resume {folder}" in shown

    assert main(["resume", str(folder), "--quiet"]) == 0
    result = json.loads((folder / "result.json").read_text())
    reference, evaluations, reference_jobs = references[backend]
    assert result["status"] == "complete"
    assert result["resumed_evaluations"] == len(recorded)  # every recorded evaluation replayed…
    assert len(records(folder / "history.jsonl")) == evaluations  # …and none evaluated again
    assert essentials(result) == essentials(reference)
    if backend.startswith("aer_noisy"):
        jobs = records(folder / "jobs.jsonl")
        assert sum(job["kind"] == "calibration" for job in jobs) == 1  # the calibration is kept, not paid twice
        assert len(records(folder / "calibrations.jsonl")) == 1
        evaluation_jobs = sum(job["kind"] == "evaluation" for job in jobs)
        expected = sum(job["kind"] == "evaluation" for job in reference_jobs)
        assert expected <= evaluation_jobs <= expected + 1  # at most the job in flight when it was killed
