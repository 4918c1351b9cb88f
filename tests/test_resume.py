"""Interrupt a run midway (an injected failure around the real backend), resume it, and check that
nothing finished is redone and the result is the one an uninterrupted run gives."""

import json
from pathlib import Path

import pytest
import yaml

from qportfolio.app import experiment
from qportfolio.app.cli import main
from qportfolio.app.config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "selection.yaml"


class Counting:
    """The real backend, counting its circuit evaluations and failing after ``fail_after`` of them."""

    def __init__(self, backend, fail_after=None):
        self.backend, self.fail_after, self.calls = backend, fail_after, 0
        self.name, self.exact = backend.name, backend.exact

    def distributions(self, circuit, thetas):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += len(thetas)
        return self.backend.distributions(circuit, thetas)

    def sample(self, circuit, parameters, shots):
        return self.backend.sample(circuit, parameters, shots)


def fixed_config(tmp_path, optimizer="cobyla", backend="aer_statevector"):
    """configs/selection.yaml with a fixed search on a gradient-free optimizer, so every evaluation is a call."""
    raw = yaml.safe_load(CONFIG.read_text())
    raw["solver"] = {"algorithm": "qaoa", "reps": 2, "mixer": "x", "search": "fixed", "optimizer": optimizer,
                     "maxiter": 20, "objective": "cvar", "cvar_alpha": 0.25, "shots": 256}
    raw["problem"]["penalty"] = "auto"
    raw["backend"] = {"name": backend}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    return load_config(tmp_path / "c.yaml")


def counting(config, fail_after=None) -> Counting:
    """The config's real backend in a Counting wrapper, to pass to the run."""
    return Counting(config.quantum_solver().make_backend(), fail_after)


@pytest.mark.parametrize("optimizer, backend", [("cobyla", "aer_statevector"), ("spsa", "aer_shots")])
def test_interrupted_run_resumes_without_repeating_an_evaluation(tmp_path, monkeypatch, optimizer, backend):
    config = fixed_config(tmp_path, optimizer, backend)

    backend = counting(config)
    reference = experiment.execute(config, tmp_path / "reference", backend=backend)
    total = backend.calls

    with pytest.raises(KeyboardInterrupt):
        experiment.execute(config, tmp_path / "interrupted", backend=counting(config, fail_after=total // 2))
    (folder,) = (tmp_path / "interrupted").iterdir()
    partial = json.loads((folder / "result.json").read_text())
    assert partial["status"] == "interrupted"
    assert partial["solutions"]["classical_exact"]["proven_optimal"]  # what finished is kept
    assert len((folder / "history.jsonl").read_text().splitlines()) == total // 2

    backend = counting(config)
    resumed = experiment.resume(folder, backend=backend)
    assert backend.calls == total - total // 2  # only the evaluations never made
    assert resumed.result["status"] == "complete"
    assert resumed.result["resumed_evaluations"] == total // 2
    assert resumed.result["quantum"]["optimal_parameters"] == reference.result["quantum"]["optimal_parameters"]
    assert resumed.result["solutions"]["quantum"] == {**reference.result["solutions"]["quantum"],
                                                      "time_s": resumed.result["solutions"]["quantum"]["time_s"]}
    history = [json.loads(line)["value"] for line in (folder / "history.jsonl").read_text().splitlines()]
    assert len(history) == total


def test_resume_of_a_complete_run_does_nothing(tmp_path, capsys):
    config = fixed_config(tmp_path)
    run = experiment.execute(config, tmp_path, backend=counting(config))
    backend = counting(config)
    assert experiment.resume(run.folder, backend=backend).result["status"] == "complete"
    assert backend.calls == 0  # nothing was evaluated
    assert main(["resume", str(run.folder), "--quiet"]) == 0
    assert "quantum = exact" in capsys.readouterr().out


def test_status_and_resume_reject_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "pass a run folder" in capsys.readouterr().err
