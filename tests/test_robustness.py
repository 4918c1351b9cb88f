"""One test (or a few) per class of issue 12: hangs, dead runs, paid twice, tracebacks, silent acceptance,
portable run folders, misleading words and what a newcomer trips on. The bad-input catalogue is in
tests/test_bad_inputs.py and the kill-and-resume runs in tests/test_interruptions.py."""

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml

from qportfolio.app import experiment
from qportfolio.app.cli import _parser, main
from qportfolio.app.config import load_config
from qportfolio.app.results import append_jsonl, read_jsonl
from qportfolio.backends import make_backend
from qportfolio.backends.aer import AerStatevectorBackend
from qportfolio.encoding import to_qubo
from qportfolio.errors import BackendError
from qportfolio.optimize import QuantumSolver
from qportfolio.classical import solve_exact
from qportfolio.problems import IntegerSharesProblem

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def price_csv(rows: int = 80, tickers=("AAA", "BBB", "CCC", "DDD"), seed: int = 2) -> str:
    rng = np.random.default_rng(seed)
    dates = np.datetime64("2021-01-04") + np.arange(rows)
    prices = 50 * np.cumprod(1 + rng.normal(0.002, 0.01, (rows, len(tickers))), axis=0) * (1 + np.arange(len(tickers)))
    return "date," + ",".join(tickers) + "\n" + "".join(
        f"{d}," + ",".join(f"{p:.4f}" for p in row) + "\n" for d, row in zip(dates, prices))


def tiny_run_config(folder: Path, relative: bool = False, **solver) -> Path:
    """K = 2 of 4 assets from a CSV file (``relative``: by a path relative to the current folder), QAOA p = 1 on
    aer_statevector: a run of about a second."""
    (folder / "prices.csv").write_text(price_csv())
    path = "prices.csv" if relative else str(folder / "prices.csv")
    config = {"name": "tiny", "seed": 3, "data": {"source": "csv", "path": path},
              "problem": {"kind": "selection", "num_assets": 2, "baselines": False},
              "solver": {"reps": 1, "maxiter": 12, "shots": 128, "postprocess": False, **solver},
              "backend": {"name": "aer_statevector"}}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def only_folder(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


# --------------------------------------------------------------------------- 1. hangs


def test_best_slack_is_closed_form_whatever_the_budget():
    """The slack register of a $10⁹ budget spans ~10⁹ values; encoding an allocation must not try them all."""
    sigma = np.array([[4e-4, 1e-4], [1e-4, 3e-4]])
    mu, prices = np.array([1e-3, 2e-3]), np.array([50.0, 80.0])
    huge = to_qubo(IntegerSharesProblem(("A", "B"), mu, sigma, prices, 1e9))
    (budget,) = [c for c in huge.constraints if c.slack]
    assert budget.slack.max_value > 10**8
    started = time.perf_counter()
    bits = huge.encode([3, 4])
    assert time.perf_counter() - started < 1
    slack = int(bits[list(budget.slack.qubits)] @ np.array(budget.slack.coefficients))
    assert budget.row @ bits[: len(budget.row)] + slack == budget.rhs  # the encoded equality holds exactly

    small = IntegerSharesProblem(("A", "B"), mu, sigma, prices, 700.0, min_return=0.3)
    encoding = to_qubo(small)
    for allocation in ([0, 0], [3, 4], [6, 5], [14, 0]):
        brute = encoding.decode(encoding.encode(allocation)[None, :])  # closed form…
        bits = encoding.encode(allocation)
        for constraint in (c for c in encoding.constraints if c.slack):  # …equals the best of every slack value
            energies = []
            for k in range(constraint.slack.max_value + 1):
                from qportfolio.encoding.integers import _expand

                trial = bits.copy()
                trial[list(constraint.slack.qubits)] = _expand(k, constraint.slack.coefficients)
                energies.append(encoding.qubo.energies(trial)[0])
            assert encoding.qubo.energies(bits)[0] == pytest.approx(min(energies), rel=1e-12, abs=1e-9)
        assert brute.tolist() == [allocation]


@pytest.mark.parametrize("budget, floor", [(1e11, 0.44), (1e7, 100.0)])  # 1e12: past 2³¹ shares, refused
def test_huge_budgets_get_their_plan_within_seconds(tmp_path, capsys, budget, floor):
    text = (CONFIGS / "quickstart.yaml").read_text().replace("budget: 500", f"budget: {budget:g}").replace(
        "min_return: 0.44", f"min_return: {floor}")
    (tmp_path / "c.yaml").write_text(text)
    started = time.perf_counter()
    assert main(["run", str(tmp_path / "c.yaml"), "--dry-run"]) == 0
    assert time.perf_counter() - started < 30
    out = capsys.readouterr().out
    assert "estimated_seconds:" in out and "qubits:" in out


# --------------------------------------------------------------------------- 2. dead runs


def test_a_run_whose_process_is_gone_reads_interrupted(tmp_path, capsys):
    path = tiny_run_config(tmp_path)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    folder = only_folder(tmp_path / "out")
    result = json.loads((folder / "result.json").read_text())
    (folder / "result.json").write_text(json.dumps({**result, "status": "running"}))  # as SIGKILL leaves it
    capsys.readouterr()
    assert main(["status", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "status          interrupted" in shown and f"qportfolio resume {folder}" in shown
    import fcntl

    with open(folder / ".lock", "a+") as handle:  # a live driver holds the lock
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["status", str(folder)]) == 0
        assert "status          running" in capsys.readouterr().out
        assert main(["resume", str(folder), "--quiet"]) == 2  # resume never takes over a live run
    assert main(["resume", str(folder), "--quiet"]) == 0  # …but takes over a dead one
    assert json.loads((folder / "result.json").read_text())["status"] == "complete"


def test_sigterm_is_an_interruption_and_names_the_folder(tmp_path, capsys, monkeypatch):
    calls = []
    original = AerStatevectorBackend.distributions

    def terminated_midway(self, circuit, thetas):
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, circuit, thetas)

    class NotHandled(Exception):
        pass

    def fail(*_):
        raise NotHandled("SIGTERM reached the test: the run did not handle it")

    previous = signal.signal(signal.SIGTERM, fail)
    try:
        monkeypatch.setattr(AerStatevectorBackend, "distributions", terminated_midway)
        code = main(["run", str(tiny_run_config(tmp_path)), "--out", str(tmp_path / "out"), "--quiet"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    folder = only_folder(tmp_path / "out")
    assert code == 130
    assert json.loads((folder / "result.json").read_text())["status"] == "interrupted"
    assert f"`qportfolio resume {folder}`" in capsys.readouterr().err
    assert len(read_jsonl(folder / "history.jsonl")) >= 3


class Interrupting:
    """Aer's statevector backend, interrupted (as by Ctrl-C) at its fourth batch of evaluations."""

    name, exact = "aer_statevector", True

    def __init__(self):
        self.backend, self.calls = AerStatevectorBackend(3), 0

    def distributions(self, circuit, thetas):
        self.calls += 1
        if self.calls > 3:
            raise KeyboardInterrupt
        return self.backend.distributions(circuit, thetas)

    def sample(self, circuit, theta, shots):
        return self.backend.sample(circuit, theta, shots)


def test_a_failed_resume_keeps_the_interrupted_run(tmp_path, monkeypatch, capsys):
    config = load_config(tiny_run_config(tmp_path))
    monkeypatch.chdir(tmp_path)

    with pytest.raises(KeyboardInterrupt):
        experiment.execute(config, tmp_path / "out", backend=Interrupting())
    folder = only_folder(tmp_path / "out")
    before = json.loads((folder / "result.json").read_text())

    class Broken(Interrupting):
        def distributions(self, circuit, thetas):
            raise BackendError("the service went away")

    with pytest.raises(BackendError):
        experiment.resume(folder, backend=Broken())
    after = json.loads((folder / "result.json").read_text())
    assert after["status"] == "interrupted" and after["resume_error"] == "the service went away"
    assert after["solutions"] == before["solutions"]


# --------------------------------------------------------------------------- 3. paid twice / not reproducible


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    path = tmp_path / "history.jsonl"
    append_jsonl(path, {"index": 0, "value": 1.0})
    with open(path, "a") as handle:
        handle.write('{"index": 1, "val')  # the process died mid-line
    append_jsonl(path, {"index": 1, "value": 2.0})
    assert read_jsonl(path) == [{"index": 0, "value": 1.0}, {"index": 1, "value": 2.0}]


def test_job_seeds_come_from_the_run_seed_and_the_job_not_from_what_ran_before():
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    theta = Parameter("t")
    circuit = QuantumCircuit(2)
    circuit.rx(theta, 0), circuit.cx(0, 1)
    first, resumed = (make_backend("aer_noisy:fake_manila", 200, 11) for _ in range(2))
    first.distributions(circuit, np.array([[0.3]]))  # the job a resumed process replays instead of running
    a = first.distributions(circuit, np.array([[1.1]]))[0]
    b = resumed.distributions(circuit, np.array([[1.1]]))[0]
    assert a.counts() == b.counts()


def test_a_recorded_calibration_is_reused_not_measured_again():
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(2)
    circuit.h(0), circuit.cx(0, 1)
    first = make_backend("aer_noisy:fake_manila", 200, 11, mitigation="mthree", calibration_shots=256)
    kept = []
    first.on_calibration(kept.append)
    a = first.distributions(circuit, np.zeros((1, 0)))[0]
    assert [job["kind"] for job in first.jobs] == ["calibration", "evaluation"] and len(kept) == 1

    resumed = make_backend("aer_noisy:fake_manila", 200, 11, mitigation="mthree", calibration_shots=256)
    resumed.restore_calibration(json.loads(json.dumps(kept[0])))  # as read back from calibrations.jsonl
    b = resumed.distributions(circuit, np.zeros((1, 0)))[0]
    assert [job["kind"] for job in resumed.jobs] == ["evaluation"]
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.probabilities, b.probabilities)


# --------------------------------------------------------------------------- 4. tracebacks


def test_output_piped_into_head_ends_quietly(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    shell = (f"{sys.executable} -m qportfolio.app.cli frontier {CONFIGS / 'markowitz.yaml'} --points 400 "
             f"--figure {tmp_path / 'f.png'} | head -1")
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.stdout.startswith("point")


# --------------------------------------------------------------------------- 6. portable run folders


def test_a_run_folder_resumes_and_compares_from_anywhere(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    config = load_config(tiny_run_config(work, relative=True))
    monkeypatch.chdir(work)  # data.path is relative to here

    with pytest.raises(KeyboardInterrupt):
        experiment.execute(config, work / "out", backend=Interrupting())
    folder = only_folder(work / "out")
    assert (folder / "prices.csv").is_file()
    (work / "prices.csv").unlink()  # the original data is gone, and we are elsewhere
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["resume", str(folder), "--quiet"]) == 0
    assert json.loads((folder / "result.json").read_text())["status"] == "complete"
    assert main(["compare", str(folder), "--figure", str(elsewhere / "c.png")]) == 0
    assert (elsewhere / "c.png").stat().st_size > 0


# --------------------------------------------------------------------------- 7. misleading words


def test_xy_mixer_verification_judges_the_states_the_mixer_reaches(selection_problem):
    exact = solve_exact(selection_problem)
    encoded = QuantumSolver(mixer="xy_ring", reps=1).encode(selection_problem, exact.vector,
                                                            optimal_objective=exact.objective)
    verification = encoded.verification.describe()
    assert verification["ground_state_feasible"] is True and verification["ground_state_optimal"] is True
    assert "raise the penalty" not in verification["reason"] and "XY mixer" in verification["reason"]


def test_offline_with_a_token_says_no_network_not_bad_token(monkeypatch):
    import qiskit_ibm_runtime

    from qportfolio.backends.ibm.devices import _connect
    from qportfolio.backends.ibm.options import HardwareOptions

    class InvalidAccountError(Exception):
        pass

    def offline(**_):
        try:
            raise ConnectionError("Failed to resolve 'iam.cloud.ibm.com'")
        except ConnectionError as cause:
            raise InvalidAccountError("Please check that you are using a valid API token.") from cause

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", offline)
    with pytest.raises(BackendError, match="no network") as raised:
        _connect(HardwareOptions(connect_timeout=10), "least_busy")
    assert "valid API token" not in str(raised.value)


# --------------------------------------------------------------------------- 8. what a newcomer trips on


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("qportfolio ")


def test_every_positional_and_option_has_help():
    parser = _parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    missing = [f"{name} {action.dest}" for name, sub in commands.choices.items() for action in sub._actions
               if action.dest != "help" and not action.help]
    assert missing == []


def test_mthree_is_a_main_dependency():
    """`pip install -e .` (the README's first command) must run both shipped hardware configs' dry runs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("mthree") for d in project["dependencies"])


def test_frontier_figure_goes_under_results_not_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["frontier", str(CONFIGS / "markowitz.yaml"), "--points", "5"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
    assert (tmp_path / "results" / "markowitz-frontier.png").stat().st_size > 0


def test_export_circuits_by_default_writes_under_results_not_the_tracked_circuits(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export-circuits", str(CONFIGS / "selection.yaml")]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
    assert sorted(p.name for p in (tmp_path / "results" / "circuits").iterdir()) == ["selection.qasm", "selection.qpy"]


def test_export_circuits_writes_the_same_bytes_every_time(tmp_path, capsys):
    for out in ("a", "b"):
        assert main(["export-circuits", str(CONFIGS / "selection.yaml"), "--out", str(tmp_path / out)]) == 0
    assert (tmp_path / "a" / "selection.qpy").read_bytes() == (tmp_path / "b" / "selection.qpy").read_bytes()
    # The committed file is the same circuit; its angles may differ in the last bit on another CPU (numpy's
    # SIMD paths round differently), so it is compared gate by gate with every parameter bound alike.
    assert_same_circuits(tmp_path / "a" / "selection.qpy", ROOT / "circuits" / "selection.qpy")


def assert_same_circuits(path_a, path_b):
    from qiskit import qpy

    with open(path_a, "rb") as fa, open(path_b, "rb") as fb:
        circuits_a, circuits_b = qpy.load(fa), qpy.load(fb)
    assert len(circuits_a) == len(circuits_b)
    for a, b in zip(circuits_a, circuits_b):
        assert (a.name, a.num_qubits, len(a.data)) == (b.name, b.num_qubits, len(b.data))
        assert [p.name for p in a.parameters] == [p.name for p in b.parameters]
        values = {name: 0.1 + 0.37 * i for i, name in enumerate(p.name for p in a.parameters)}
        for ga, gb in zip(a.data, b.data):
            assert ga.operation.name == gb.operation.name
            assert [a.find_bit(q).index for q in ga.qubits] == [b.find_bit(q).index for q in gb.qubits]
            bound_a = [_bound_value(x, values) for x in ga.operation.params]
            bound_b = [_bound_value(x, values) for x in gb.operation.params]
            np.testing.assert_allclose(bound_a, bound_b, rtol=1e-12, atol=1e-14)
        assert a.metadata.keys() == b.metadata.keys()


def _bound_value(param, values):
    """A gate parameter as a float, its free parameters set from ``values`` (by name)."""
    if hasattr(param, "parameters"):
        param = param.bind({p: values[p.name] for p in param.parameters})
    return float(param)


def test_long_runs_say_so_first_and_log_progress_without_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(experiment, "LONG_RUN_SECONDS", 0)  # every run counts as long
    monkeypatch.setattr(experiment, "LOG_EVERY_SECONDS", 0)  # a line per evaluation
    assert main(["run", str(tiny_run_config(tmp_path)), "--out", str(tmp_path / "out")]) == 0  # stderr: no terminal
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith("qportfolio: this run is expected to take about")
    assert f"qportfolio resume {only_folder(tmp_path / 'out')}" in lines[0]
    assert any(line.startswith("qportfolio: evaluation 2 of at most") for line in lines)


def test_dry_run_estimates_simulator_time(capsys):
    assert main(["run", str(CONFIGS / "quickstart.yaml"), "--dry-run"]) == 0
    seconds = float(next(line for line in capsys.readouterr().out.splitlines()
                         if line.startswith("estimated_seconds:")).split()[1])
    assert 0 < seconds < 60


def test_dry_run_on_exact_lists_no_shots_it_does_not_take(capsys):
    """The exact simulator trains on exact probabilities: only the final sampling takes shots."""
    assert main(["run", str(CONFIGS / "quickstart.yaml"), "--dry-run"]) == 0
    keys = {line.split(":")[0] for line in capsys.readouterr().out.splitlines()}
    assert "final_shots" in keys and not keys & {"circuits", "shots_per_circuit", "total_shots"}
