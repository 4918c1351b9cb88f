"""Studies: expansion and validation of a study file, a sweep on an embedded Ray (resumable, same numbers as
`qportfolio run`), and a sweep joining a Ray head node started here. Ray listens on 127.0.0.1 only."""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

import qportfolio
from qportfolio.app.cli import main
from qportfolio.app.experiment import execute
from qportfolio.app.ray_executor import ray_session
from qportfolio.app.study import load_study, parse_study, sweep
from qportfolio.app.study_results import read_results
from qportfolio.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SELECTION = str(ROOT / "configs" / "selection.yaml")
FAST = {"solver.maxiter": [12], "backend.name": ["exact"]}  # zip of one: fixed for every point


def write_study(folder: Path, **spec) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "base": SELECTION, **spec}, sort_keys=False))
    return path


def test_expansion_crosses_grid_with_zip():
    study = parse_study({"name": "s", "base": SELECTION, "grid": {"solver.reps": [1, 2], "seed": [1, 2, 3]},
                         "zip": {"data.assets": [["AAPL", "JPM", "XOM", "KO"], ["MSFT", "PG", "JNJ", "PFE", "WMT"]],
                                 "problem.num_assets": [2, 3]}})
    assert len(study.points) == 2 * 3 * 2
    last = study.points[-1]
    assert last.index == 12 and last.values == {"solver.reps": 2, "seed": 3, "data.assets": ["MSFT", "PG", "JNJ", "PFE",
                                                                                             "WMT"], "problem.num_assets": 3}
    assert last.config.data.assets == ["MSFT", "PG", "JNJ", "PFE", "WMT"] and last.config.problem.num_assets == 3
    assert [p.qubits for p in study.points[:2]] == [4, 5]
    assert len({p.config_hash for p in study.points}) == 12


@pytest.mark.parametrize("spec, message", [
    ({"grid": {"seed": [1]}, "zip": {"solver.reps": [1, 2], "seed": [1]}}, "in both grid and zip"),
    ({"zip": {"solver.reps": [1, 2], "seed": [1]}}, "equal lengths"),
    ({"grid": {"seed": [1]}, "sweep": 3}, "unknown key 'sweep'"),
    ({"grid": {"solver.reps": [1, 0]}}, "point 2 (solver.reps=0): solver.reps"),
    ({"grid": {"problem.num_assets": [3, 9]}}, "point 2 (problem.num_assets=9)"),
])
def test_invalid_studies_are_one_line_errors(spec, message):
    with pytest.raises(ConfigError) as error:
        parse_study({"name": "s", "base": SELECTION, **spec})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_point_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    study = write_study(tmp_path, grid={"solver.mixer": ["x", "xy_sideways"]}, zip=FAST)
    assert main(["sweep", str(study), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("qportfolio: error: point 2 (solver.mixer=xy_sideways, solver.maxiter=12, "
                            "backend.name=exact): ") and "\n" not in error
    assert not (tmp_path / "out").exists()


def test_dry_run_prints_points_qubits_and_estimate(tmp_path, capsys):
    study = write_study(tmp_path, grid={"solver.reps": [1, 2]}, zip=FAST)
    assert main(["sweep", str(study), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 points" in out and "estimated time" in out and "nothing was run" in out
    assert [line.split()[1] for line in out.splitlines() if line.strip()[:1].isdigit()] == ["6", "6"]
    assert not (tmp_path / "out").exists()


def test_sweep_on_local_ray_matches_run_resumes_and_retries_failures(tmp_path):
    study_file = write_study(tmp_path, grid={"solver.reps": [1, 2], "solver.initial_parameters": [None, [0.1]]},
                             zip=FAST)
    study = load_study(study_file)
    out = tmp_path / "out"
    with ray_session(None, 2):  # one embedded Ray for both invocations (each would otherwise start its own)
        table = sweep(study, out, max_workers=2, progress=False)
        lines = (table.folder / "points.jsonl").read_text().splitlines()
        sweep(study, out, max_workers=2, progress=False)
    frame = read_results(table.folder)
    assert len(lines) == 4
    assert list(frame.point) == [1, 2, 3, 4]
    assert list(frame.status) == ["complete", "failed", "complete", "failed"]
    assert "initial_parameters" in frame.error[1]
    assert set(frame.columns) >= {"config_hash", "solver.reps", "solver.initial_parameters", "p_optimal", "gap",
                                  "feasible_fraction", "approximation_ratio", "quantum_objective", "exact_objective",
                                  "qubits", "evaluations", "seconds", "backend"}
    assert (table.folder / "results.csv").is_file() and (table.folder / "summary.md").is_file()
    assert (table.folder / "figures" / "p_optimal_by_depth.png").is_file()

    # the same config through `qportfolio run` gives the same P(optimum)
    point = study.points[2]
    run = execute(point.config, tmp_path / "runs", artifacts=False).result
    assert frame.p_optimal[2] == run["metrics"]["p_optimal"]
    assert frame.config_hash[2] == run["provenance"]["config_sha256"]

    # the second invocation ran nothing complete again and retried the failed points
    again = [json.loads(line) for line in (table.folder / "points.jsonl").read_text().splitlines()[len(lines):]]
    assert sorted(record["point"] for record in again) == [2, 4]
    assert read_results(table.folder).p_optimal[0] == frame.p_optimal[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the Ray head node did not listen on {port} (exit {process.poll()})")


def test_sweep_joins_a_token_authenticated_ray_head_node(tmp_path):
    """`ray start --head` as a user runs it: a token in ~/.ray/auth_token (any earlier ray.init() writes one)
    makes the head require it. Its own HOME here, so the token and the head are this test's alone."""
    home, port = tmp_path / "home", free_port()
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    scratch = tempfile.mkdtemp(prefix="qpray", dir="/tmp")  # short: Ray's socket paths
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_AUTH")}
    env.update({"HOME": str(home), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                "PYTHONPATH": os.pathsep.join([str(Path(qportfolio.__file__).parents[1]),
                                               os.environ.get("PYTHONPATH", "")])})
    log = tmp_path / "head.log"
    with open(log, "w") as head_log:
        head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                                 f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                                 "--node-ip-address=127.0.0.1", f"--temp-dir={scratch}", "--disable-usage-stats"],
                                env=env, stdout=head_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_listening(port, head)
        study = write_study(tmp_path, grid={"solver.reps": [1, 2]}, zip=FAST)

        def qportfolio_sweep(out: str, *extra: str, **variables: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "qportfolio.app.cli", "sweep", str(study), "--out",
                                   str(tmp_path / out), *extra], env={**env, **variables}, capture_output=True,
                                  text=True, timeout=300)

        joined = qportfolio_sweep("joined", "--address", f"127.0.0.1:{port}")
        assert joined.returncode == 0, joined.stderr[-2000:]
        assert "Token authentication is enabled" in log.read_text()
        frame = read_results(tmp_path / "joined" / "tiny")
        assert list(frame.status) == ["complete", "complete"]
        listening = [c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
        assert listening and all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip in listening)

        # the rows equal an embedded run's, but for the timings
        embedded = qportfolio_sweep("embedded")
        assert embedded.returncode == 0, embedded.stderr[-2000:]
        alone = read_results(tmp_path / "embedded" / "tiny")
        timing = [column for column in frame.columns if "second" in column]
        assert timing and list(frame.columns) == list(alone.columns)
        assert frame.drop(columns=timing).equals(alone.drop(columns=timing))

        # a wrong token is refused in one line naming what to set (a short connect window: Ray's own knob)
        refused = qportfolio_sweep("refused", "--address", f"127.0.0.1:{port}", RAY_AUTH_TOKEN="0" * 64,
                                   RAY_gcs_server_port_wait_time_s="2")
        assert refused.returncode == 2
        assert refused.stderr == (f"qportfolio: error: the Ray cluster at 127.0.0.1:{port} refused the "
                                  "authentication token from RAY_AUTH_TOKEN: set RAY_AUTH_TOKEN to the cluster's "
                                  "token (`ray get-auth-token` on its head node prints it) or RAY_AUTH_TOKEN_PATH "
                                  "to a file holding it\n")
        assert not (tmp_path / "refused").exists()
        tokenless = qportfolio_sweep("refused", "--address", f"127.0.0.1:{port}", HOME=str(tmp_path),
                                     RAY_gcs_server_port_wait_time_s="2")
        assert tokenless.returncode == 2
        assert tokenless.stderr.startswith(f"qportfolio: error: the Ray cluster at 127.0.0.1:{port} requires an "
                                           "authentication token and none was found: set RAY_AUTH_TOKEN")
        assert tokenless.stderr.count("\n") == 1 and not (tmp_path / "refused").exists()
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its processes; `ray stop` would stop every Ray here
        try:
            head.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):  # anything of this head left behind: its own session
                os.killpg(head.pid, signal.SIGKILL)
