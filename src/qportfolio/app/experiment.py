"""One experiment end to end into a run folder: config → market → problem → solver → result.json.

The run folder holds ``config.yaml`` (resolved), ``result.json`` (kept current: ``status`` is
``running`` until the run ends as ``complete``, ``failed`` or ``interrupted``), ``history.jsonl`` (one
line per objective evaluation, written as it happens), ``jobs.jsonl`` (hardware jobs, as they start),
``samples.csv``, ``circuit.qpy``, ``circuit.qasm`` (OpenQASM 3), ``report.md`` and ``figures/``.
The algorithm is the core's (:class:`qportfolio.QuantumSolver`); this module only keeps the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml
from tqdm import tqdm

from qportfolio.app import plots
from qportfolio.app.config import ExperimentConfig, load_config
from qportfolio.app.instance import build_problem, load_config_prices
from qportfolio.app.planning import COMPILE_SECONDS, check_spending, estimated_seconds, uses_kernels
from qportfolio.app.report import write_report
from qportfolio.app.results import (
    append_jsonl,
    json_safe,
    load_history,
    load_result,
    new_run_folder,
    read_jsonl,
    samples_csv,
    write_atomic,
    write_circuit,
    write_json,
)
from qportfolio.backends import EXACT_PROBABILITY_BACKENDS, is_hardware, is_noisy
from qportfolio.backends.exact.kernels import kernels_compiled
from qportfolio.backends.ibm.base import HardwareBackend
from qportfolio.baselines import run_baselines
from qportfolio.classical import solution_entry, solve_exact
from qportfolio.data import estimate_market, load_prices
from qportfolio.encoding import MAX_ENUMERATED_QUBITS
from qportfolio.errors import ConfigError, QPortfolioError, ResourceError, RunFolderError
from qportfolio.optimize import QuantumResult, SolveHooks
from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, SelectionProblem

#: The price table a run used, kept in its folder so that resume and compare work from anywhere.
PRICES_FILE = "prices.csv"
#: Readout calibrations measured for a run (one JSON line each), reused when it is resumed.
CALIBRATIONS_FILE = "calibrations.jsonl"
#: A run expected to take longer than this says so before its quantum part starts.
LONG_RUN_SECONDS = 180
#: Seconds between progress lines written to a log (no terminal).
LOG_EVERY_SECONDS = 30
#: ``result.json``'s ``kind`` in a backtest's folder (a run's has none), and the backtest's decision log.
BACKTEST_KIND = "backtest"
DECISIONS_FILE = "decisions.jsonl"

PACKAGES = ("qportfolio", "qiskit", "qiskit-aer", "qiskit-optimization", "qiskit-ibm-runtime", "numpy", "scipy",
            "pandas", "skfolio", "cvxpy")


def provenance(config: ExperimentConfig) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"seed": config.seed, "config_sha256": config.digest(), "packages": versions,
            "python": platform.python_version(), "platform": platform.platform()}


@dataclass
class Run:
    """A run folder and the result document that grows as the run proceeds."""

    folder: Path
    result: dict = field(default_factory=dict)
    artifacts: bool = True
    #: the result.json an interrupted run had when this process took it over (None for a new run)
    previous: dict | None = None

    def save(self) -> None:
        write_json(self.folder / "result.json", json_safe(self.result))


def prepare(config: ExperimentConfig, quantum: bool = True):
    """Everything a run checks before its folder exists: the prices, the market estimates, the problem and
    the solver's settings. A mistake here is one line and leaves nothing on disk."""
    prices = load_config_prices(config)
    market = estimate_market(prices, config.data.frequency, config.data.covariance)
    problem = build_problem(config, market)
    if quantum and not isinstance(problem, MarkowitzProblem):
        config.quantum_solver().planned_evaluations()  # the search's settings (e.g. a grid beyond the budget)
        check_size(config, problem)
    return prices, market, problem


def check_size(config: ExperimentConfig, problem) -> None:
    """Refuse a circuit wider than the exact-probability simulators hold (their 2ⁿ energy table), before
    anything is estimated or written. Whole shares get that wide only with a limit above it (``max_qubits``)
    or ``narrowing: off``, a selection with more assets than it: only then is the problem encoded here (its
    slack registers sized without the optimum the run finds first, unless the instance is small enough to
    enumerate: a qubit or two more than the run's, see :meth:`QuantumSolver.encode`)."""
    solver = config.quantum_solver().resolved(problem)
    if isinstance(problem, MarkowitzProblem) or solver.backend_name not in EXACT_PROBABILITY_BACKENDS:
        return
    if isinstance(problem, IntegerSharesProblem) and solver.narrowing != "off" \
            and solver.qubit_limit() <= MAX_ENUMERATED_QUBITS:
        return
    if isinstance(problem, SelectionProblem) and problem.num_assets <= MAX_ENUMERATED_QUBITS:  # a qubit an asset
        return
    qubits = solver.encode(problem).encoding.num_qubits
    if qubits > MAX_ENUMERATED_QUBITS:
        raise ResourceError(
            f"{qubits} qubits are more than {solver.backend_name} holds ({MAX_ENUMERATED_QUBITS}, its 2ⁿ energy "
            f"table): use fewer assets or a smaller max_shares, max_qubits ≤ {MAX_ENUMERATED_QUBITS} with narrowing "
            "auto, a sampling backend (aer_shots, ibm:*), or `qportfolio baseline`")


def start_run(config: ExperimentConfig, out: str | Path, prices=None) -> Run:
    folder = new_run_folder(out, config.name)
    write_atomic(folder / "config.yaml", yaml.safe_dump(config.resolved(), sort_keys=False))
    if prices is not None:
        write_atomic(folder / PRICES_FILE, prices.to_csv(index_label="date"))
    run = Run(folder, {"name": config.name, "status": "created", "provenance": provenance(config), "timing": {}})
    run.save()
    return run


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; what it finished is in ``folder``."""

    def __init__(self, folder: Path):
        super().__init__(str(folder))
        self.folder = Path(folder)


def driven(folder: Path) -> bool:
    """Whether a live process holds the run folder's lock (its driver); False once that process is gone,
    however it ended (SIGKILL, the OOM killer, a closed terminal)."""
    path = Path(folder) / ".lock"
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def live_status(folder: Path, result: dict) -> str:
    """The run's status as it really is: ``running`` (or ``created``) only while a process drives it,
    ``interrupted`` once that process is gone."""
    status = result.get("status")
    if status in ("running", "created") and not driven(folder):
        if status == "created" and time.time() - (Path(folder) / "result.json").stat().st_mtime < 10:
            return status  # submit's process may still be starting
        return "interrupted"
    return status


@contextlib.contextmanager
def run_lock(folder: Path):
    """Hold the run folder's lock for the life of a run, so two processes never drive the same run."""
    handle = open(Path(folder) / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"{folder} is being run by another process: wait for it, or check `qportfolio status {folder}`") from None
    try:
        handle.seek(0), handle.truncate(), handle.write(str(os.getpid())), handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def execute(config: ExperimentConfig, out: str | Path = "results", quantum: bool = True,
            progress: bool | str | None = None, folder: Path | None = None, artifacts: bool = True, backend=None) -> Run:
    """Run ``config`` into a new folder under ``out`` (or into ``folder``, resuming what it recorded);
    with ``quantum=False``, classical answers only; ``artifacts=False`` writes only config.yaml,
    result.json, history.jsonl and report.md (no samples, circuits or figures: for benchmarks). ``backend``,
    a backend object, replaces the one the config names. ``progress``: ``"bar"`` (or True) a progress bar,
    ``"log"`` a progress line every half minute (no terminal), None nothing."""
    progress = "bar" if progress is True else (progress or None)
    if folder is None:
        prices, _, problem = prepare(config, quantum)  # a mistake is refused before the notice below
        if progress and quantum and not isinstance(problem, MarkowitzProblem) \
                and uses_kernels(config.quantum_solver().resolved(problem)):
            announce_compilation()
        run = start_run(config, out, prices)
    else:
        if progress and quantum and (config.backend.name == "exact" or config.solver.pretrain != "none"):
            announce_compilation()  # the problem is built from the run folder's prices later: judged by the config
        previous = load_result(folder)
        run = Run(Path(folder), {"name": config.name, "provenance": provenance(config), "timing": {},
                                 "resumed_from": live_status(folder, previous),
                                 "backend_resolved": previous.get("backend_resolved")}, previous=previous)
    run.artifacts = artifacts
    with run_lock(run.folder):
        return _supervised(config, run, quantum, progress, backend)


def is_backtest(folder: str | Path) -> bool:
    """Whether ``folder`` was written by ``qportfolio backtest`` (its result.json says so, or it holds decisions)."""
    folder = Path(folder)
    if (folder / DECISIONS_FILE).is_file():
        return True
    with contextlib.suppress(QPortfolioError):
        return load_result(folder).get("kind") == BACKTEST_KIND
    return False


def resume(folder: str | Path, progress: bool | str | None = None, approve_spending: bool = False, backend=None) -> Run:
    """Continue the run in ``folder`` from its recorded history; a finished run is left as it is. A backtest's
    folder is refused (``qportfolio backtest --resume`` continues it; the ``resume`` command routes there)."""
    folder = Path(folder)
    previous = load_result(folder)
    if is_backtest(folder):
        raise RunFolderError(f"{folder} is a backtest, not a run: continue it with "
                             f"`qportfolio backtest --resume {folder}`")
    if previous.get("status") == "complete":
        return Run(folder, previous)
    config = load_config(folder / "config.yaml")
    quantum = previous.get("mode", "run") == "run"
    if quantum and (config.backend.max_qpu_seconds is not None
                    or is_noisy(config.backend.name)):
        # the whole run's estimate (an upper bound on what is left), on the prices the run used
        check_spending(config, approve_spending, build_problem(config, _market(config, folder)))
    return execute(config, quantum=quantum, progress=progress, folder=folder, backend=backend)


def _supervised(config: ExperimentConfig, run: Run, quantum: bool, progress, backend=None) -> Run:
    run.result["status"] = "running"
    run.result["mode"] = "run" if quantum else "baseline"
    try:
        _execute(config, run, quantum, progress, backend)
        run.result["status"] = "complete"
    except KeyboardInterrupt:
        run.result["status"] = "interrupted"
        raise RunInterrupted(run.folder) from None
    except Exception as error:  # a user's mistake, or a bug: keep what was finished, record it, let it surface
        message = str(error) if isinstance(error, QPortfolioError) else f"{type(error).__name__}: {error}"
        if run.previous is not None and run.result["resumed_from"] == "interrupted":
            # a resume that fails keeps the interrupted run as it was, to be resumed once the cause is fixed
            run.result = {**run.previous, "status": "interrupted", "resume_error": message}
        else:
            run.result["status"] = "failed"
            run.result["error"] = message
        raise
    finally:
        run.save()
        write_atomic(run.folder / "report.md", write_report(run.result))
    return run


def _execute(config: ExperimentConfig, run: Run, quantum: bool, progress, backend=None) -> None:
    timing, result = run.result["timing"], run.result
    started = time.perf_counter()
    market = _market(config, run.folder)
    problem = build_problem(config, market)
    timing["data_s"] = time.perf_counter() - started
    result["data"] = market.describe()
    result["problem"] = problem.describe()
    result["solutions"] = {}
    result["qubits"] = 0

    clock = time.perf_counter()
    solver = config.quantum_solver()
    if backend is not None:
        solver.backend = backend
    exact = solve_exact(problem, config.problem.time_limit, config.seed)
    timing["classical_exact_s"] = time.perf_counter() - clock
    result["solutions"]["classical_exact"] = solution_entry(
        problem, exact.vector, proven_optimal=exact.proven_optimal, method=exact.method, time_s=exact.seconds,
        ties=None if exact.optimal_allocations is None else len(exact.optimal_allocations), gap=exact.gap,
        status=exact.status or "ok")
    run.save()

    if isinstance(problem, MarkowitzProblem):
        result["solutions"]["quantum"] = None
        result["metrics"] = None
        result["note"] = "markowitz has continuous weights: it is solved classically and is the reference curve"
        _write_outputs(run, problem, exact, None)
        timing["total_s"] = time.perf_counter() - started
        return

    clock = time.perf_counter()
    optimum = exact.vector if exact.proven_optimal else None
    encoded = solver.encode(problem, optimum, for_circuit=quantum, optimal_objective=exact.objective)
    result["qubits"] = encoded.num_qubits
    result["encoding"] = encoded.describe(problem, exact.vector)
    timing["build_s"] = time.perf_counter() - clock
    run.save()
    if config.problem.baselines:
        clock = time.perf_counter()
        result["solutions"].update(run_baselines(problem, encoded.encoding, exact if exact.proven_optimal else None,
                                                 config.seed, config.problem.time_limit))
        timing["baselines_s"] = time.perf_counter() - clock
        run.save()
    if not quantum:
        result["solutions"]["quantum"] = None
        result["metrics"] = None
        _write_outputs(run, problem, exact, None)
        timing["total_s"] = time.perf_counter() - started
        return

    clock = time.perf_counter()
    solver.backend = _job_backend(config, solver, run, progress) or solver.backend
    solver = solver.resolved(problem)
    _announce_duration(solver, problem, encoded, run.folder)
    with _progress_bar(solver, progress) as bar:
        outcome = solver.solve(problem, exact, encoded, _hooks(run, bar, config.backend.name, progress == "log"),
                               result.get("backend_resolved"))
    timing["quantum_s"] = time.perf_counter() - clock
    described = outcome.to_dict()
    result["solutions"].update(described.pop("solutions"))
    result["quantum"] = {**result.get("quantum", {}), **described.pop("quantum")}
    result.update(described)
    _write_outputs(run, problem, exact, outcome)
    timing["total_s"] = time.perf_counter() - started


def _market(config: ExperimentConfig, folder: Path):
    """The config's market estimates, from the price table kept in the run folder when there is one (a
    resumed run), else from the config's data section (then kept there)."""
    d = config.data
    kept = folder / PRICES_FILE
    if kept.is_file():
        prices = load_prices("csv", path=str(kept))
    else:
        prices = load_config_prices(config)
        write_atomic(kept, prices.to_csv(index_label="date"))
    return estimate_market(prices, d.frequency, d.covariance)


def _job_backend(config: ExperimentConfig, solver, run: Run, progress=None):
    """For IBM-family backends: the backend object, with the readout calibrations the run folder recorded
    restored and new ones recorded as they are measured, and a long noisy simulation's progress shown;
    None otherwise (or when a backend was given)."""
    if not isinstance(solver.backend, str) or not is_hardware(config.backend.name):
        return None
    backend = solver.make_backend(name=run.result.get("backend_resolved"))
    if isinstance(backend, HardwareBackend):
        path = run.folder / CALIBRATIONS_FILE
        for record in read_jsonl(path):
            backend.restore_calibration(record)
        backend.on_calibration(lambda record: append_jsonl(path, record))
    if hasattr(backend, "on_progress") and progress is not None:
        backend.on_progress(_job_progress(progress))
    return backend


def announce_compilation() -> None:
    """Say once, before a first run after install spends half a minute compiling the kernels, that it does."""
    if not kernels_compiled():
        print(f"qportfolio: compiling the simulator's kernels for this machine (once after install, about "
              f"{COMPILE_SECONDS} s on 2 idle cores); later runs load them", file=sys.stderr, flush=True)


def _job_progress(shown: str):
    """A long noisy job's progress: a bar of shots on a terminal, a line every :data:`LOG_EVERY_SECONDS` in a log."""
    state = {"bar": None, "line": 0.0}

    def report(info: dict) -> None:
        done, shots = info["shots_done"], info["shots"]
        if shown == "bar":
            if state["bar"] is None:
                state["bar"] = tqdm(total=shots, unit="shot", leave=False,
                                    desc=f"{info['kind']} job, about {_duration(info['estimated_seconds'])}")
            state["bar"].update(done - state["bar"].n)
            if done >= shots:
                state["bar"].close()
                state["bar"] = None
        elif done == 0 or done >= shots or time.monotonic() - state["line"] >= LOG_EVERY_SECONDS:
            state["line"] = time.monotonic()
            print(f"qportfolio: {info['kind']} job: {done:,} of {shots:,} shots after {info['seconds']:.0f} s "
                  f"(expected about {_duration(info['estimated_seconds'])})", file=sys.stderr, flush=True)

    return report


def _announce_duration(solver, problem, encoded, folder: Path) -> None:
    """Say before a long run starts how long it is expected to take, and how to stop and continue it."""
    evaluations = solver.planned_evaluations()
    seconds = estimated_seconds(solver, problem, encoded.num_qubits,
                                solver.prepare_ansatz(problem, encoded.encoding).circuit,
                                None if isinstance(solver.backend, str) else solver.backend)
    if seconds is not None and seconds > LONG_RUN_SECONDS:
        print(f"qportfolio: this run is expected to take about {_duration(seconds)} ({evaluations} evaluations of "
              f"{encoded.num_qubits} qubits on {solver.backend_name}); Ctrl-C stops it and "
              f"`qportfolio resume {folder}` continues it", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@contextlib.contextmanager
def _progress_bar(solver, shown):
    bar = tqdm(total=solver.planned_evaluations(), unit="eval", leave=False, disable=shown != "bar",
               desc=f"{solver.algorithm} p={solver.reps} · {solver.optimizer}")
    try:
        yield bar
    finally:
        bar.close()


def _hooks(run: Run, bar, configured_backend: str, log: bool = False) -> SolveHooks:
    """The run folder's side of a solve: replay what it recorded, record what happens (and, with ``log``,
    a progress line on stderr every :data:`LOG_EVERY_SECONDS`, for a log with no terminal)."""
    history_path = run.folder / "history.jsonl"
    last_line = [time.monotonic()]

    def on_evaluation(record):
        append_jsonl(history_path, record.__dict__)
        bar.update(1)
        bar.set_postfix(value=f"{record.value:.6g}")
        if log and time.monotonic() - last_line[0] >= LOG_EVERY_SECONDS:
            last_line[0] = time.monotonic()
            print(f"qportfolio: evaluation {record.index + 1} of at most {bar.total}, value {record.value:.6g}",
                  file=sys.stderr, flush=True)

    def on_job(record):  # the moment its id exists; ids and counts only, never a credential
        append_jsonl(run.folder / "jobs.jsonl", record)

    def on_start(info):
        if info["backend"] != configured_backend:  # ibm:least_busy resolved to a device: a resume stays on it
            run.result["backend_resolved"] = info["backend"]
        if info.get("warm_start") is not None:
            run.result.setdefault("quantum", {})["warm_start"] = info["warm_start"].tolist()
        if "hardware" in info:
            run.result["hardware"] = info["hardware"]
        run.save()

    return SolveHooks(load_history(history_path), load_jobs(run.folder), on_evaluation, on_job, on_start)


def load_jobs(folder: Path) -> list[dict]:
    """The job records of a run folder (a line cut short by an interruption is ignored)."""
    return read_jsonl(Path(folder) / "jobs.jsonl")


def _write_outputs(run: Run, problem, exact, outcome: QuantumResult | None) -> None:
    folder = run.folder
    if not run.artifacts:
        return
    if outcome is not None:
        write_atomic(folder / "samples.csv", samples_csv(problem, outcome.table))
        if outcome.raw_table is not None:
            write_atomic(folder / "samples_raw.csv", samples_csv(problem, outcome.raw_table))
        write_circuit(outcome.ansatz.measured(), folder / "circuit")
    run.save()
    figures = plots.run_figures(folder / "figures", problem, exact, outcome)
    run.result["figures"] = [str(path.relative_to(folder)) for path in figures]
    run.save()
