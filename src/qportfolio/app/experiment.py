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
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml
from tqdm import tqdm

from qportfolio.app import plots
from qportfolio.app.config import ExperimentConfig, load_config
from qportfolio.app.instance import build_problem, load_config_market
from qportfolio.app.planning import check_spending
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
from qportfolio.baselines import run_baselines
from qportfolio.classical import solution_entry, solve_exact
from qportfolio.errors import ConfigError, QPortfolioError
from qportfolio.optimize import QuantumResult, SolveHooks
from qportfolio.problems import MarkowitzProblem

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

    def save(self) -> None:
        write_json(self.folder / "result.json", json_safe(self.result))


def start_run(config: ExperimentConfig, out: str | Path) -> Run:
    folder = new_run_folder(out, config.name)
    write_atomic(folder / "config.yaml", yaml.safe_dump(config.resolved(), sort_keys=False))
    run = Run(folder, {"name": config.name, "status": "created", "provenance": provenance(config), "timing": {}})
    run.save()
    return run


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
            progress: bool = False, folder: Path | None = None, artifacts: bool = True, backend=None) -> Run:
    """Run ``config`` into a new folder under ``out`` (or into ``folder``, resuming what it recorded);
    with ``quantum=False``, classical answers only; ``artifacts=False`` writes only config.yaml,
    result.json, history.jsonl and report.md (no samples, circuits or figures: for benchmarks). ``backend``,
    a backend object, replaces the one the config names."""
    if folder is None:
        run = start_run(config, out)
    else:
        previous = load_result(folder)
        run = Run(Path(folder), {"name": config.name, "provenance": provenance(config), "timing": {},
                                 "resumed_from": previous.get("status"),
                                 "backend_resolved": previous.get("backend_resolved")})
    run.artifacts = artifacts
    with run_lock(run.folder):
        return _supervised(config, run, quantum, progress, backend)


def resume(folder: str | Path, progress: bool = False, approve_spending: bool = False, backend=None) -> Run:
    """Continue the run in ``folder`` from its recorded history; a finished run is left as it is."""
    folder = Path(folder)
    previous = load_result(folder)
    if previous.get("status") == "complete":
        return Run(folder, previous)
    config = load_config(folder / "config.yaml")
    quantum = previous.get("mode", "run") == "run"
    if quantum:
        check_spending(config, approve_spending)  # the whole run's estimate: an upper bound on what is left
    return execute(config, quantum=quantum, progress=progress, folder=folder, backend=backend)


def _supervised(config: ExperimentConfig, run: Run, quantum: bool, progress: bool, backend=None) -> Run:
    run.result["status"] = "running"
    run.result["mode"] = "run" if quantum else "baseline"
    try:
        _execute(config, run, quantum, progress, backend)
        run.result["status"] = "complete"
    except KeyboardInterrupt:
        run.result["status"] = "interrupted"
        raise
    except QPortfolioError as error:
        run.result["status"] = "failed"
        run.result["error"] = str(error)
        raise
    except Exception as error:  # a bug: keep what was finished, record it, let it surface
        run.result["status"] = "failed"
        run.result["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        run.save()
        write_atomic(run.folder / "report.md", write_report(run.result))
    return run


def _execute(config: ExperimentConfig, run: Run, quantum: bool, progress: bool, backend=None) -> None:
    timing, result = run.result["timing"], run.result
    started = time.perf_counter()
    market = load_config_market(config)
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
        problem, exact.allocation, proven_optimal=exact.proven_optimal, method=exact.method, time_s=exact.seconds,
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
    optimum = exact.allocation if exact.proven_optimal else None
    encoded = solver.encode(problem, optimum, for_circuit=quantum, optimal_objective=exact.objective)
    result["qubits"] = encoded.num_qubits
    result["encoding"] = encoded.describe(problem, exact.allocation)
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
    with _progress_bar(solver.resolved(problem), progress) as bar:
        outcome = solver.solve(problem, exact, encoded, _hooks(run, bar, config.backend.name),
                               result.get("backend_resolved"))
    timing["quantum_s"] = time.perf_counter() - clock
    described = outcome.to_dict()
    result["solutions"].update(described.pop("solutions"))
    result["quantum"] = {**result.get("quantum", {}), **described.pop("quantum")}
    result.update(described)
    _write_outputs(run, problem, exact, outcome)
    timing["total_s"] = time.perf_counter() - started


@contextlib.contextmanager
def _progress_bar(solver, shown: bool):
    bar = tqdm(total=solver.planned_evaluations(), unit="eval", leave=False, disable=not shown,
               desc=f"{solver.algorithm} p={solver.reps} · {solver.optimizer}")
    try:
        yield bar
    finally:
        bar.close()


def _hooks(run: Run, bar, configured_backend: str) -> SolveHooks:
    """The run folder's side of a solve: replay what it recorded, record what happens."""
    history_path = run.folder / "history.jsonl"

    def on_evaluation(record):
        append_jsonl(history_path, record.__dict__)
        bar.update(1)
        bar.set_postfix(value=f"{record.value:.6g}")

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
