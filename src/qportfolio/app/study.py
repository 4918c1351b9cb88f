"""A study: one base config swept over a grid of values, every point one quantum run held against the exact answer.

A study file (YAML; unknown keys are errors)::

    name: mixers
    base: configs/selection.yaml      # a config path (relative to the study file) or an inline config mapping
    grid:                             # cartesian product of dotted config keys
      solver.reps: [1, 2, 3]
      seed: [1, 2, 3]
    zip:                              # lists that vary together (equal lengths), crossed with the grid
      data.assets: [[AAPL, JPM, XOM, KO], [MSFT, PG, JNJ, PFE, WMT, UNH]]
      problem.num_assets: [2, 3]

expands to |grid₁|·…·|gridₖ|·L points (L: the zip length). Every point is validated (schema, instance,
encoding) before anything runs. Each point is one Ray task calling the core API in-process (config → market
→ problem → ``solve_exact`` → ``QuantumSolver.solve``); its row lands in ``DIR/<name>/`` as it finishes
(:mod:`qportfolio.app.study_results`), and a rerun skips the points whose config hash has a complete row.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import itertools
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from qportfolio.app.config import ExperimentConfig, load_config, parse_config
from qportfolio.app.instance import build_problem, load_config_market
from qportfolio.app.planning import expected_evaluations
from qportfolio.app.results import write_atomic
from qportfolio.app.ray_executor import Task, ray_session, run_tasks
from qportfolio.app.study_results import StudyTable, cell, write_summary
from qportfolio.classical import solve_exact
from qportfolio.errors import ConfigError, QPortfolioError
from qportfolio.memory import GIB, simulation_bytes
from qportfolio.problems import MarkowitzProblem

#: Memory a task asks for beyond its simulation: the worker's interpreter with qiskit loaded, and scratch
#: for a second state (kernels and Aer copy the statevector).
TASK_BASE_BYTES = 0.5 * GIB
SCRATCH_STATES = 2
#: A short search measures the time of one objective evaluation for the dry run's estimate.
PROBE_EVALUATIONS = 8
#: The command's start, Ray's and the workers' imports, and the summary's figures: the shipped 27-point sweep,
#: about 2 s of work on 2 workers, ran 9.9–11.0 s at load 1 and 15.9–23.5 s at load 4–7
#: (benchmarks/dry_run_accuracy.py).
SWEEP_START_SECONDS = 10.0


class StudySpec(BaseModel):
    """The study file's schema."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    base: Union[str, dict[str, Any]]
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip_: dict[str, list[Any]] = Field(default_factory=dict, alias="zip")
    description: Optional[str] = None


@dataclass
class Point:
    """One configuration of the study: ``index`` counts from 1 in expansion order."""

    index: int
    values: dict[str, Any]
    config: ExperimentConfig
    qubits: int | None = None
    #: the point's solver with every ``auto`` setting chosen for its problem (set by validation)
    solver: Any = None

    @functools.cached_property
    def config_hash(self) -> str:
        return self.config.digest()

    @property
    def label(self) -> str:
        return ", ".join(f"{key}={cell(value)}" for key, value in self.values.items())

    def memory_bytes(self) -> int:
        """What its task asks Ray for: a base for the worker, plus the statevector with scratch and the energy
        table (:func:`qportfolio.memory.simulation_bytes`)."""
        n = self.qubits or 0
        state = simulation_bytes(n, self.config.backend.precision) - 8.0 * 2**n
        return int(TASK_BASE_BYTES + SCRATCH_STATES * state + 8.0 * 2**n)


@dataclass
class Study:
    spec: StudySpec
    source: Path | None
    points: list[Point] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def varied(self) -> list[str]:
        return [*self.spec.grid, *self.spec.zip_]


# ---------------------------------------------------------------------- reading and expanding


def load_study(path: str | Path) -> Study:
    """Read, validate and expand a study file: every point is checked (see :func:`validate`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study file {path} does not exist: pass a YAML study such as configs/study_selection.yaml")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML: fix the syntax") from None
    return parse_study(raw, path)


def parse_study(raw: dict, source: Path | None = None) -> Study:
    """A study from its mapping (``source``: the file, for the base config's relative path)."""
    where = str(source or "study")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping (name, base, grid, zip)")
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: unknown key '{key}': a study has name, base, grid, zip, description") from None
        raise ConfigError(f"{where}: {key}: {first['msg']}") from None
    study = Study(spec, source)
    study.points = expand(spec, _base_config(spec, source))
    validate(study)
    return study


def _base_config(spec: StudySpec, source: Path | None) -> dict:
    if isinstance(spec.base, dict):
        return spec.base
    path = Path(spec.base)
    if not path.is_absolute() and source is not None:
        path = source.parent / path
    load_config(path)  # a one-line error for a missing or invalid base
    return yaml.safe_load(path.read_text()) or {}


def set_dotted(raw: dict, key: str, value) -> None:
    """``raw[a][b] = value`` for ``key = "a.b"``, creating the sections on the way."""
    *sections, last = key.split(".")
    node = raw
    for section in sections:
        if not isinstance(node.get(section, {}), dict):
            raise ConfigError(f"study key {key!r}: {section!r} is not a section of the config")
        node = node.setdefault(section, {})
    node[last] = value


def expand(spec: StudySpec, base: dict) -> list[Point]:
    """The points: the grid's cartesian product crossed with the zip's rows, each a validated config."""
    for key, values in {**spec.grid, **spec.zip_}.items():
        if not values:
            raise ConfigError(f"study key {key!r} has no values: give it a non-empty list")
    both = set(spec.grid) & set(spec.zip_)
    if both:
        raise ConfigError(f"study keys {sorted(both)} are in both grid and zip: keep each key in one")
    lengths = {key: len(values) for key, values in spec.zip_.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"zip lists must have equal lengths (they vary together): got {lengths}")
    zipped = [dict(zip(spec.zip_, row)) for row in zip(*spec.zip_.values())] or [{}]
    points = []
    for combination in itertools.product(*spec.grid.values()):
        for zip_values in zipped:
            values = {**dict(zip(spec.grid, combination)), **zip_values}
            raw = copy.deepcopy(base)
            index = len(points) + 1
            label = ", ".join(f"{k}={cell(v)}" for k, v in values.items())
            for key, value in values.items():
                set_dotted(raw, key, value)
            points.append(Point(index, values, parse_config(raw, f"point {index} ({label})")))
    return points


def validate(study: Study) -> None:
    """Check every point before anything runs: its solver settings, its instance (data and problem) and its
    encoding, which gives its qubits. Instances and encodings shared by several points are built once."""
    problems, qubits = {}, {}
    seen: dict[str, int] = {}
    for point in study.points:
        config = point.config
        try:
            if point.config_hash in seen:
                raise ConfigError(f"the same config as point {seen[point.config_hash]}: remove the duplicate value")
            seen[point.config_hash] = point.index
            instance = json.dumps({"data": config.resolved()["data"], "problem": config.resolved()["problem"]})
            if instance not in problems:
                problems[instance] = build_problem(config, load_config_market(config))
            problem = problems[instance]
            if isinstance(problem, MarkowitzProblem):
                raise ConfigError("markowitz is solved classically: a study sweeps the quantum solver")
            solver = point.solver = config.quantum_solver().resolved(problem)
            encoding = json.dumps([instance, solver.mixer, solver.algorithm, solver.backend_name])
            if encoding not in qubits:
                qubits[encoding] = solver.encode(problem).num_qubits
            point.qubits = qubits[encoding]
        except QPortfolioError as error:
            raise ConfigError(f"point {point.index} ({point.label}): {error}") from None


# ---------------------------------------------------------------------- one point


def solve_point(raw_config: dict, runs_dir: str | None = None) -> dict:
    """Run one point (in a Ray worker) and return its row: the core API in-process, or with ``runs_dir``
    (``--keep-runs``) :func:`qportfolio.app.experiment.execute` into a run folder. Never raises: a failure
    is the row's ``status`` and ``error``."""
    started = time.perf_counter()
    try:
        config = parse_config(raw_config)
        row = _run_in_folder(config, runs_dir) if runs_dir else _run_in_process(config)
        row.update(status="complete", error=None)
    except Exception as error:  # recorded, never stops the study
        message = str(error) if isinstance(error, QPortfolioError) else f"{type(error).__name__}: {error}"
        row = {"status": "failed", "error": message}
    row["seconds"] = time.perf_counter() - started
    return row


def _run_in_process(config: ExperimentConfig) -> dict:
    problem = build_problem(config, load_config_market(config))
    exact = solve_exact(problem, config.problem.time_limit, config.seed)
    result = config.quantum_solver().solve(problem, exact)
    quantum = result.objective
    return {"p_optimal": result.p_optimal, "feasible_fraction": result.feasible_fraction,
            "approximation_ratio": result.approximation_ratio, "lift": result.lift, "reps": result.ansatz.reps,
            "quantum_objective": quantum,
            "exact_objective": exact.objective, "gap": None if quantum is None else quantum - exact.objective,
            "qubits": result.encoded.num_qubits, "assets": len(problem.tickers),
            "evaluations": len(result.history), "backend": result.backend}


def _run_in_folder(config: ExperimentConfig, runs_dir: str) -> dict:
    from qportfolio.app.experiment import execute

    result = execute(config, runs_dir).result
    quantum, exact = result["solutions"]["quantum"], result["solutions"]["classical_exact"]
    gap = None if quantum.get("objective") is None else quantum["objective"] - exact["objective"]
    return {**{k: result["metrics"].get(k) for k in ("p_optimal", "feasible_fraction", "approximation_ratio", "lift")},
            "reps": result["quantum"]["reps"],
            "quantum_objective": quantum.get("objective"), "exact_objective": exact["objective"], "gap": gap,
            "qubits": result["qubits"], "assets": len(result["problem"]["tickers"]),
            "evaluations": result["quantum"]["evaluations"], "backend": result["quantum"]["backend"]}


# ---------------------------------------------------------------------- dry run


def dry_run(study: Study, max_workers: int | None = None) -> list[str]:
    """The plan: points, qubits per point, and the estimated time. The estimate times a short search
    (:data:`PROBE_EVALUATIONS` evaluations) on the point with the most qubits and scales the per-evaluation
    time t₀ by depth and state size: t(point) = setup₀ + expected evaluations · t₀ · (p/p₀) · 2^(n−n₀)
    (:func:`~qportfolio.app.planning.expected_evaluations`), spread over the workers after their start."""
    points = study.points
    probe = max(points, key=lambda p: (p.qubits, p.solver.reps))
    setup, per_evaluation = _probe(probe)
    seconds = []
    for point in points:
        solver = point.solver
        scale = (solver.reps / probe.solver.reps) * 2.0 ** (point.qubits - probe.qubits)
        seconds.append(setup + expected_evaluations(solver, None, point.qubits) * per_evaluation * scale)
    workers = max_workers or os.cpu_count() or 1
    total = sum(seconds)
    wall = SWEEP_START_SECONDS + total / min(workers, len(points))
    lines = [f"study {study.name}: {len(points)} points, varied {', '.join(study.varied) or 'nothing'}",
             f"{'point':>5}  {'qubits':>6}  {'evaluations':>11}  {'est. s':>7}  values"]
    for point, estimate in zip(points, seconds):
        lines.append(f"{point.index:>5}  {point.qubits:>6}  {point.solver.planned_evaluations():>11}"
                     f"  {estimate:>7.1f}  {point.label}")
    lines += [f"estimated time: {total:.1f} s of work, about {wall:.1f} s on {workers} worker(s) with Ray's start and "
              f"the workers' imports ({SWEEP_START_SECONDS:g} s; kernel compilation not included) (measured on "
              f"point {probe.index}: setup {setup:.2f} s, {1e3 * per_evaluation:.1f} ms per evaluation at {probe.qubits} qubits, p = {probe.solver.reps}; scaled by p·2ⁿ)",
              "nothing was run"]
    return lines


def _probe(point: Point) -> tuple[float, float]:
    """(setup seconds, seconds per objective evaluation) of a short search on ``point``."""
    config = point.config
    clock = time.perf_counter()
    problem = build_problem(config, load_config_market(config))
    exact = solve_exact(problem, config.problem.time_limit, config.seed)
    solver = dataclasses.replace(point.solver, maxiter=PROBE_EVALUATIONS, multistart=1, grid=0,
                                 layerwise=False, postprocess=False)
    encoded = solver.encode(problem, exact.vector, optimal_objective=exact.objective)
    setup = time.perf_counter() - clock
    with warnings.catch_warnings():  # COBYLA warns of so few evaluations
        warnings.simplefilter("ignore")
        dataclasses.replace(solver, maxiter=2).solve(problem, exact, encoded)  # compiles the kernels: not timed
        clock = time.perf_counter()
        result = solver.solve(problem, exact, encoded)
    return setup, (time.perf_counter() - clock) / max(len(result.history), 1)


# ---------------------------------------------------------------------- the sweep


def sweep(study: Study, out: str | Path = "results/studies", address: str | None = None,
          max_workers: int | None = None, keep_runs: bool = False, progress: bool | None = None) -> StudyTable:
    """Run the study's points not yet complete in ``out/<name>/`` on Ray; rows are written as each point
    finishes, and ``summary.md`` with its figures at the end (also after an interrupt); ``study.yaml`` is the
    study as run (an inline base included)."""
    folder = Path(out) / study.name
    with contextlib.ExitStack() as session:
        if not folder.exists():  # every point to run: connect before writing, so a refusal leaves nothing
            session.enter_context(ray_session(address, max_workers))
        table = StudyTable(folder, study)
        write_atomic(table.folder / "study.yaml",
                     yaml.safe_dump(study.spec.model_dump(by_alias=True, exclude_none=True), sort_keys=False))
        todo = [p for p in study.points if table.status(p.config_hash) != "complete"]
        if progress is None:
            progress = sys.stderr.isatty()
        log = _Progress(len(todo), len(study.points) - len(todo), progress)
        runs_dir = str(table.folder / "runs") if keep_runs else None
        tasks = [Task(point, (point.config.resolved(), runs_dir), point.memory_bytes()) for point in todo]

        def finished(task: Task, row: dict | None, error: BaseException | None) -> None:
            if row is None:
                row = {"status": "failed", "error": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
            table.record(task.key, row)
            log.update(task.key, row)

        try:
            if tasks:
                with ray_session(address, max_workers) as slots:  # the session above, when one was opened
                    run_tasks(solve_point, tasks, slots, finished)
        finally:
            log.close()
            if table.rows():
                write_summary(table)
    return table


class _Progress:
    """A tqdm bar with an ETA on a terminal; otherwise one line per finished point on stderr."""

    def __init__(self, total: int, skipped: int, bar: bool):
        self.total, self.done, self.started = total, 0, time.perf_counter()
        if skipped:
            print(f"sweep: {skipped} point(s) already complete, {total} to run", file=sys.stderr)
        self.bar = tqdm(total=total, unit="point", disable=not bar, file=sys.stderr) if bar else None

    def update(self, point: Point, row: dict) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"point {point.index} {row['status']}")
            return
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        outcome = (f"p_optimal {row['p_optimal']:.4f}" if row["status"] == "complete" else f"failed: {row['error']}")
        print(f"[{self.done}/{self.total}] point {point.index} ({point.label}) {outcome} · {row['seconds']:.1f} s"
              f" · ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(args) -> int:
    """``qportfolio sweep``: validate, then either print the plan (``--dry-run``) or run and report."""
    study = load_study(args.study)
    if args.dry_run:
        print("\n".join(dry_run(study, args.max_workers)))
        return 0
    try:
        table = sweep(study, args.out, args.address, args.max_workers, args.keep_runs)
    except KeyboardInterrupt:
        print(f"qportfolio: interrupted; finished points are in {Path(args.out) / study.name}: run the same command "
              "again to continue", file=sys.stderr)
        return 130
    rows = table.rows()
    complete = sum(r["status"] == "complete" for r in rows)
    print(f"study {study.name}: {complete}/{len(study.points)} points complete, {len(rows) - complete} failed")
    print(f"results   {table.parquet_path}  {table.csv_path}")
    print(f"summary   {table.folder / 'summary.md'}")
    return 0
