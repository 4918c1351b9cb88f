"""One experiment end to end: prices → problem → QUBO → ansatz → runner → evaluation, next to the
exact classical answer, written to a run folder with its provenance.

The run folder holds ``config.yaml`` (resolved), ``result.json`` (kept current: ``status`` is
``running`` until the run ends as ``complete``, ``failed`` or ``interrupted``), ``history.jsonl`` (one
line per objective evaluation, written as it happens), ``samples.csv``, ``circuit.qpy``,
``circuit.qasm`` (OpenQASM 3), ``report.md`` and ``figures/``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

from qportfolio.ansatz import qaoa_ansatz, vqe_ansatz
from qportfolio.backends import make_backend
from qportfolio.baselines import run_baselines
from qportfolio.builder import (
    MAX_ENUMERATED_QUBITS,
    SLACK_RESOLUTION_DIVISOR,
    QuboEncoding,
    bits_of,
    build_quadratic_program,
    calibrate_penalties,
    faithful_slack_divisor,
    to_qubo,
    verify_ground_state,
)
from qportfolio.classical import (
    MAX_ENUMERATED,
    ClassicalSolution,
    enumeration_size,
    solve_exact,
    solve_markowitz,
    solve_scip,
)
from qportfolio.config import ExperimentConfig
from qportfolio.data import MarketData, load_market
from qportfolio.errors import ConfigError, QPortfolioError, ResourceError
from qportfolio.evaluate import SampleTable, decode_samples, quality_metrics
from qportfolio.narrowing import fit_encoding, windowed_program
from qportfolio.postprocess import postprocess
from qportfolio.problem import IntegerSharesProblem, MarkowitzProblem, PortfolioProblem, SelectionProblem
from qportfolio.results import json_safe, load_result, new_run_folder, write_atomic, write_json
from qportfolio.runner import (
    EnergyTable,
    Evaluation,
    Replay,
    VariationalRunner,
    load_history,
    objective_value,
    parameter_key,
    variational_search,
)

#: Instances up to this many allocations are enumerated to choose a faithful encoding (dry runs, exports).
ENUMERATE_FOR_ENCODING = 10_000_000
PACKAGES = ("qportfolio", "qiskit", "qiskit-aer", "qiskit-optimization", "qiskit-ibm-runtime", "numpy", "scipy",
            "pandas", "skfolio", "cvxpy")


def build_problem(config: ExperimentConfig, market: MarketData) -> PortfolioProblem:
    """The problem the config describes, on the market estimates."""
    p = config.problem
    if p.kind == "integer_shares":
        if p.budget is None:
            raise ConfigError("problem.budget is required for integer_shares: give the dollars to invest")
        return IntegerSharesProblem(market.tickers, market.mu, market.sigma, market.last_prices, p.budget,
                                    p.min_return, p.max_shares, p.risk_aversion)
    if p.kind == "selection":
        if p.num_assets is None:
            raise ConfigError("problem.num_assets (K) is required for selection: how many assets to pick")
        return SelectionProblem(market.tickers, market.mu, market.sigma, p.num_assets, p.risk_aversion)
    return MarkowitzProblem(market.tickers, market.mu, market.sigma, p.target_return, p.allow_short, p.objective,
                            p.max_volatility, p.risk_free, p.risk_aversion)


def build_problem_from_config(config: ExperimentConfig) -> PortfolioProblem:
    d = config.data
    return build_problem(config, load_market(d.source, d.assets, d.path, d.start, d.end, d.frequency, d.covariance))


def provenance(config: ExperimentConfig) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"seed": config.seed, "config_sha256": config.digest(), "packages": versions,
            "python": platform.python_version(), "platform": platform.platform()}


def allocation_dict(problem: PortfolioProblem, allocation) -> dict:
    values = np.asarray(allocation)
    if isinstance(problem, MarkowitzProblem):
        return {t: float(v) for t, v in zip(problem.tickers, values)}
    return {t: int(v) for t, v in zip(problem.tickers, values)}


def solution_entry(problem: PortfolioProblem, allocation, evaluation_row: dict, **extra) -> dict:
    return {"allocation": allocation_dict(problem, allocation), **evaluation_row, **extra}


@dataclass
class Run:
    """A run folder and the result document that grows as the run proceeds."""

    folder: Path
    result: dict = field(default_factory=dict)
    approve_spending: bool = False
    artifacts: bool = True
    raw_table: SampleTable | None = None

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
    import fcntl

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
            progress: bool = False, folder: Path | None = None, approve_spending: bool = False,
            artifacts: bool = True) -> Run:
    """Run ``config`` into a new folder under ``out`` (or into ``folder``, resuming what it recorded);
    with ``quantum=False``, classical answers only; ``artifacts=False`` writes only config.yaml,
    result.json, history.jsonl and report.md (no samples, circuits or figures: for benchmarks)."""
    if folder is None:
        run = start_run(config, out)
    else:
        previous = load_result(folder)
        run = Run(Path(folder), {"name": config.name, "provenance": provenance(config), "timing": {},
                                 "resumed_from": previous.get("status"),
                                 "backend_resolved": previous.get("backend_resolved")})
    run.artifacts = artifacts
    with run_lock(run.folder):
        return _supervised(config, run, quantum, progress, approve_spending)


def resume(folder: str | Path, progress: bool = False, approve_spending: bool = False) -> Run:
    """Continue the run in ``folder`` from its recorded history; a finished run is left as it is."""
    from qportfolio.config import load_config

    folder = Path(folder)
    previous = load_result(folder)
    if previous.get("status") == "complete":
        return Run(folder, previous)
    config = load_config(folder / "config.yaml")
    quantum = previous.get("mode", "run") == "run"
    if quantum:
        check_spending(config, approve_spending)  # the whole run's estimate: an upper bound on what is left
    return execute(config, quantum=quantum, progress=progress, folder=folder, approve_spending=approve_spending)


def _supervised(config: ExperimentConfig, run: Run, quantum: bool, progress: bool, approve_spending: bool) -> Run:
    run.result["status"] = "running"
    run.result["mode"] = "run" if quantum else "baseline"
    run.approve_spending = approve_spending
    try:
        _execute(config, run, quantum, progress)
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
        from qportfolio.report import write_report

        write_atomic(run.folder / "report.md", write_report(run.result))
    return run


def _execute(config: ExperimentConfig, run: Run, quantum: bool, progress: bool) -> None:
    timing, result = run.result["timing"], run.result
    started = time.perf_counter()
    d = config.data
    market = load_market(d.source, d.assets, d.path, d.start, d.end, d.frequency, d.covariance)
    problem = build_problem(config, market)
    timing["data_s"] = time.perf_counter() - started
    result["data"] = market.describe()
    result["problem"] = problem.describe()
    result["solutions"] = {}
    result["qubits"] = 0

    clock = time.perf_counter()
    if isinstance(problem, MarkowitzProblem):
        exact = solve_markowitz(problem)
    elif enumeration_size(problem) <= MAX_ENUMERATED:
        exact = solve_exact(problem)
    else:  # too many allocations to enumerate: SCIP proves the optimum (or reports its gap)
        exact = solve_scip(problem, config.problem.time_limit, config.seed)
    timing["classical_exact_s"] = time.perf_counter() - clock
    result["solutions"]["classical_exact"] = solution_entry(
        problem, exact.allocation, exact.evaluation.row(0), proven_optimal=exact.proven_optimal,
        method=exact.method, time_s=exact.seconds, ties=None if exact.optimal_allocations is None
        else len(exact.optimal_allocations), gap=exact.gap, status=exact.status or "ok")
    run.save()

    if isinstance(problem, MarkowitzProblem):
        result["solutions"]["quantum"] = None
        result["metrics"] = None
        result["note"] = "markowitz has continuous weights: it is solved classically and is the reference curve"
        _write_outputs(run, config, problem, exact, None, None, None)
        timing["total_s"] = time.perf_counter() - started
        return

    clock = time.perf_counter()
    encoding, notes = encode_problem(config, problem, exact.allocation if exact.proven_optimal else None, quantum)
    result["qubits"] = encoding.num_qubits
    result["encoding"] = encoding.describe()
    if "slack" in notes:
        result["encoding"]["slack_resolution"] = notes["slack"]
    if "calibration" in notes:
        result["encoding"]["calibration"] = notes["calibration"].describe()
    result["encoding"]["window"] = notes["window"].describe(problem.tickers, exact.allocation) \
        if "window" in notes else {"applied": False}
    energies = encoding.qubo.all_energies() if encoding.num_qubits <= MAX_ENUMERATED_QUBITS else None
    check = verify_ground_state(problem, encoding, exact.objective, energies)
    result["encoding"]["verification"] = check.describe()
    timing["build_s"] = time.perf_counter() - clock
    run.save()
    if config.problem.baselines:
        clock = time.perf_counter()
        result["solutions"].update(run_baselines(problem, encoding, exact if exact.proven_optimal else None,
                                                 config.seed, config.problem.time_limit))
        timing["baselines_s"] = time.perf_counter() - clock
        run.save()
    if not quantum:
        result["solutions"]["quantum"] = None
        result["metrics"] = None
        _write_outputs(run, config, problem, exact, encoding, None, None)
        timing["total_s"] = time.perf_counter() - started
        return

    clock = time.perf_counter()
    ansatz, runner_result, table = _quantum(config, run, problem, encoding, energies, progress)
    timing["quantum_s"] = time.perf_counter() - clock
    best = table.best_feasible()
    metrics = quality_metrics(table, exact.objective, exact.worst_feasible_objective)
    result["metrics"] = metrics.describe()
    if run.raw_table is not None:
        result["metrics_raw"] = quality_metrics(run.raw_table, exact.objective,
                                                exact.worst_feasible_objective).describe()
    if best is None:
        result["solutions"]["quantum"] = {"allocation": None, "objective": None, "variance": None,
                                          "expected_return": None, "cost": None, "feasible": False}
    else:
        result["solutions"]["quantum"] = solution_entry(
            problem, table.allocations[best], table.evaluation.row(best), probability=float(table.probabilities[best]),
            gap_to_optimum=float(table.evaluation.objective[best] - exact.objective),
            time_s=timing["quantum_s"])
    if config.solver.postprocess:
        clock = time.perf_counter()
        allocations, probabilities, _, _ = table.by_allocation()
        improved = postprocess(problem, allocations, probabilities)
        seconds = time.perf_counter() - clock
        for method in ("repaired", "local_search"):
            if improved[method] is not None:
                evaluation = problem.evaluate(improved[method])
                result["solutions"][f"quantum_{method}"] = solution_entry(
                    problem, improved[method], evaluation.row(0), time_s=seconds,
                    gap_to_optimum=float(evaluation.objective[0] - exact.objective),
                    note="classical post-processing of the quantum samples")
    result["quantum"] = {
        **result.get("quantum", {}),
        "algorithm": config.solver.algorithm, "reps": config.solver.reps,
        "backend": result.get("backend_resolved") or config.backend.name,
        "optimizer": config.solver.optimizer, "evaluations": len(runner_result.history),
        "optimizer_message": runner_result.optimizer_message, "final_objective_value": runner_result.value,
        "optimal_parameters": runner_result.parameters.tolist(), "shots": config.solver.shots,
        "ansatz": ansatz.description, "parameters": [p.name for p in ansatz.circuit.parameters],
        "circuit_depth": ansatz.circuit.decompose().depth(),
    }
    _write_outputs(run, config, problem, exact, encoding, (ansatz, runner_result), table)
    timing["total_s"] = time.perf_counter() - started


def qubit_limit(config: ExperimentConfig) -> int | None:
    """``problem.max_qubits``, or what the chosen simulator can hold (its 2ⁿ energy table); None on hardware."""
    if config.problem.max_qubits is not None:
        return config.problem.max_qubits
    return None if config.backend.name.startswith("ibm") else MAX_ENUMERATED_QUBITS


def encode_problem(config: ExperimentConfig, problem, optimum=None, for_circuit: bool = True):
    """The configured QUBO encoding, with a record of how it was made: the slack resolution, penalty
    calibration (``problem.penalty: calibrated``) and share windows (when the full encoding does not fit).

    With ``slack_resolution: auto`` and a known optimum (given, or found by enumeration when the instance
    is small), the resolution is the coarsest that keeps the optimum feasible in the encoding."""
    p = config.problem
    notes = {}
    penalty = "auto" if p.penalty == "calibrated" else p.penalty
    if config.solver.mixer != "x" and isinstance(problem, SelectionProblem):
        # The XY mixer keeps 1ᵀx = K on every state it reaches: the cardinality penalty would only
        # add a constant there, so the cost operator is the objective alone.
        penalty = {"cardinality": 0.0}

    divisor = SLACK_RESOLUTION_DIVISOR
    if p.slack_resolution == "auto" and p.constraint_encoding == "slack":
        if optimum is None and enumeration_size(problem) <= ENUMERATE_FOR_ENCODING:
            optimum = solve_exact(problem).allocation
        if optimum is not None:
            divisor, kept = faithful_slack_divisor(problem, optimum, lambda d: to_qubo(
                problem, p.constraint_encoding, penalty, "auto", p.integer_encoding, slack_divisor=d))
            notes["slack"] = {"divisor": divisor, "keeps_exact_optimum": kept,
                              "rule": "coarsest resolution min|coefficient|/divisor whose encoding keeps the optimum feasible"}

    def encode(program):
        return to_qubo(problem, p.constraint_encoding, penalty, p.slack_resolution, p.integer_encoding, program,
                       divisor)

    # a classical run's QUBO only feeds annealing and tabu: no qubit limit, no window
    encoding, window = fit_encoding(problem, qubit_limit(config) if for_circuit else None, p.narrowing, encode)
    if window is not None:
        notes["window"] = window
    if p.penalty == "calibrated" and penalty == "auto":
        program = windowed_program(problem, window.lower, window.upper) if window else build_quadratic_program(problem)
        encoding, calibration = calibrate_penalties(problem, p.constraint_encoding, p.slack_resolution,
                                                    p.integer_encoding, program, slack_divisor=divisor)
        notes["calibration"] = calibration
    return encoding, notes


def build_ansatz(config: ExperimentConfig, encoding: QuboEncoding, reps: int | None = None, problem=None,
                 warm_start: np.ndarray | None = None):
    """The configured ansatz for ``encoding`` (VQE's cost scale: the QUBO's largest |coefficient|)."""
    s = config.solver
    reps = reps or s.reps
    if s.algorithm == "qaoa":
        operator, _ = encoding.qubo.to_ising()
        num_selected = problem.num_selected if isinstance(problem, SelectionProblem) else None
        if s.mixer != "x" and num_selected is None:
            raise ConfigError("solver.mixer xy_ring / xy_complete keeps the number of ones fixed: "
                              "use it with problem.kind: selection")
        scale = None
        if s.mixer != "x":
            # The XY mixer never leaves the weight-K states: scale by the energy spread over those states,
            # not over all bitstrings (where the spread between Hamming weights would dwarf it).
            from qportfolio.simulate import weight_k_states

            states = weight_k_states(encoding.num_qubits, num_selected)
            scale = float(np.std(encoding.qubo.energies(bits_of(states, encoding.num_qubits))))
        return qaoa_ansatz(operator, reps, s.mixer, num_selected, warm_start, scale)
    if s.mixer != "x" or s.warm_start or s.layerwise:
        raise ConfigError("solver.mixer, warm_start and layerwise are QAOA options: remove them for VQE")
    ansatz = vqe_ansatz(encoding.num_qubits, reps, s.ansatz, s.entanglement)
    scale = max(float(np.max(np.abs(encoding.qubo.quadratic), initial=0.0)), float(np.max(np.abs(encoding.qubo.linear))))
    return dataclasses.replace(ansatz, cost_scale=scale or 1.0)


def warm_start_for(config: ExperimentConfig, problem, encoding: QuboEncoding) -> np.ndarray | None:
    """The warm-start probabilities when ``solver.warm_start`` is on, else None."""
    if not config.solver.warm_start:
        return None
    from qportfolio.warmstart import warm_start_probabilities

    return warm_start_probabilities(problem, encoding, config.solver.warm_start_epsilon)


def prepare_ansatz(config: ExperimentConfig, problem, encoding: QuboEncoding):
    """The circuit a run of ``config`` executes at its final depth (dry runs and exports use this too)."""
    return build_ansatz(config, encoding, config.solver.reps, problem, warm_start_for(config, problem, encoding))


def planned_evaluations(config: ExperimentConfig) -> int:
    """An upper estimate of the objective evaluations (one circuit each), following
    :func:`runner.variational_search`: the depth-1 grid, then per depth and start a budget of at least
    5 — and COBYLA never makes fewer than ``2p + 2``; SPSA uses two per step plus ten to calibrate."""
    s = config.solver
    depths = list(range(1, s.reps + 1)) if s.layerwise and s.algorithm == "qaoa" else [s.reps]
    per_depth = max(s.maxiter // len(depths), 5)
    total = 0
    for depth in depths:
        spent = s.grid**2 if s.grid and s.algorithm == "qaoa" and depth == 1 else 0
        starts = s.multistart if depth == depths[-1] else 1
        budget = max((per_depth - spent) // starts, 5)
        parameters = 2 * depth if s.algorithm == "qaoa" else 2 * depth + 2
        each = 2 * budget + 10 if s.optimizer == "spsa" else max(budget, parameters + 2)
        total += spent + starts * each
    return total


def _quantum(config: ExperimentConfig, run: Run, problem, encoding: QuboEncoding, energies, progress: bool):
    s = config.solver
    if energies is None and config.backend.name in ("exact", "aer_statevector"):
        # exact probabilities need every state's energy; sampled backends score their samples directly
        raise ResourceError(
            f"{encoding.num_qubits} qubits are more than the exact-probability paths hold ({MAX_ENUMERATED_QUBITS}): "
            "use fewer assets or a smaller max_shares / max_qubits, a sampling backend (aer_shots, ibm:*), "
            "or `qportfolio baseline`"
        )
    warm_start = warm_start_for(config, problem, encoding)
    if warm_start is not None:
        run.result.setdefault("quantum", {})["warm_start"] = warm_start.tolist()
    # ibm:least_busy resolves to a device once; a resumed run stays on that device
    name = run.result.get("backend_resolved") or config.backend.name
    extra = {"energies": energies} if name == "exact" else {}
    backend = make_backend(name, s.shots, config.seed, **config.backend_options(), **extra)
    if backend.name != config.backend.name:
        run.result["backend_resolved"] = backend.name
        run.save()
    if hasattr(backend, "on_job"):
        backend.on_job(lambda record: _record_job(run.folder, backend.name, record))
    if hasattr(backend, "hardware_report"):  # what the device runs at the final depth: layout, depth, errors
        run.result["hardware"] = backend.hardware_report(prepare_ansatz(config, problem, encoding).circuit, 1, s.shots,
                                                         planned_evaluations(config) + 1)
        run.save()
    history_path = run.folder / "history.jsonl"
    history = load_history(history_path)
    replay = Replay(history)
    table_of_energies = EnergyTable(encoding.qubo.energies, encoding.num_qubits, energies)
    alpha = s.cvar_alpha if s.objective == "cvar" else 1.0
    finals = _collect_unrecorded_jobs(run.folder, backend, history, replay, table_of_energies, alpha)

    def make_runner(ansatz):
        return VariationalRunner(ansatz, backend, table_of_energies, s.objective, s.cvar_alpha, s.optimizer,
                                 s.maxiter, s.shots, config.seed, history_path, progress, replay)

    rng = np.random.default_rng(config.seed)
    ansatz, outcome, stages = variational_search(
        lambda reps: build_ansatz(config, encoding, reps, problem, warm_start), s.reps, make_runner, s.maxiter, rng,
        s.layerwise, s.multistart, s.initial_parameters, lambda theta: finals.get(parameter_key(theta)), s.grid)
    run.result["resumed_evaluations"] = replay.used
    run.result["stages"] = stages
    table = decode_samples(outcome.final, encoding, problem)
    raw = getattr(backend, "last_raw", None)
    if raw and config.backend.mitigation != "none":  # the final samples before readout mitigation
        run.raw_table = decode_samples(raw[0], encoding, problem)
    return ansatz, outcome, table


def _write_outputs(run, config, problem, exact: ClassicalSolution, encoding, quantum, table: SampleTable | None):
    from qportfolio import plots

    folder = run.folder
    if not run.artifacts:
        return
    if table is not None:
        write_atomic(folder / "samples.csv", samples_csv(problem, table))
    if run.raw_table is not None:
        write_atomic(folder / "samples_raw.csv", samples_csv(problem, run.raw_table))
    if quantum is not None:
        ansatz, _ = quantum
        write_circuit(ansatz.measured(), folder / "circuit")
    run.save()
    figures = plots.run_figures(folder / "figures", problem, exact, quantum, table)
    run.result["figures"] = [str(path.relative_to(folder)) for path in figures]
    run.save()


def write_circuit(circuit, stem: Path) -> None:
    """The circuit as QPY (exact, reloadable) and OpenQASM 3 (readable, portable)."""
    from qiskit import qasm3, qpy

    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    write_atomic(Path(f"{stem}.qpy"), buffer.getvalue())
    write_atomic(Path(f"{stem}.qasm"), qasm3.dumps(circuit))


def samples_csv(problem, table: SampleTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["bitstring", "probability", "count", *problem.tickers, "objective", "variance",
                     "expected_return", "cost", "feasible", "qubo_energy"])
    e = table.evaluation
    for k, label in enumerate(table.bitstrings()):
        count = "" if table.shots is None else int(round(table.probabilities[k] * table.shots))
        writer.writerow([label, f"{table.probabilities[k]:.8g}", count, *[int(v) for v in table.allocations[k]],
                         f"{e.objective[k]:.10g}", f"{e.variance[k]:.10g}", f"{e.expected_return[k]:.10g}",
                         f"{e.cost[k]:.10g}", bool(e.feasible[k]), f"{table.qubo_energies[k]:.10g}"])
    return buffer.getvalue()


def dry_run(config: ExperimentConfig) -> dict:
    """Everything up to submission: the instance, the encoding, the circuit (and, on hardware targets,
    the transpiled circuit's report and the estimated QPU time). Nothing is run or written."""
    s = config.solver
    problem = build_problem_from_config(config)
    plan = {"name": config.name, "problem": problem.kind, "assets": list(problem.tickers), "backend": config.backend.name}
    if isinstance(problem, MarkowitzProblem):
        plan["note"] = "markowitz is solved classically: nothing would be submitted"
        return plan
    encoding, _ = encode_problem(config, problem)
    ansatz = prepare_ansatz(config, problem, encoding)
    logical = ansatz.circuit.decompose()
    evaluations = planned_evaluations(config)
    plan.update({
        "qubits": encoding.num_qubits, "algorithm": s.algorithm, "reps": s.reps, "parameters": ansatz.num_parameters,
        "logical_depth": logical.depth(), "logical_two_qubit_gates": logical.num_nonlocal_gates(),
        "evaluations": evaluations, "circuits": evaluations + 1, "shots_per_circuit": s.shots,
        "total_shots": (evaluations + 1) * s.shots,
    })
    if config.backend.name.split(":")[0] not in ("ibm", "ibm_fake", "aer_noisy"):
        return plan
    backend = make_backend(config.backend.name, s.shots, config.seed, **config.backend_options())
    if hasattr(backend, "hardware_report"):
        # one job per objective evaluation and one for the final sampling; readout calibration adds a job
        # of two circuits (all zeros, all ones) at the calibration shots
        plan["hardware"] = backend.hardware_report(ansatz.circuit, 1, s.shots, evaluations + 1)
        estimate = plan["hardware"]["estimated_qpu_seconds"]
        if config.backend.mitigation != "none":
            estimate += backend.estimate_qpu_seconds(ansatz.circuit, 2, backend.options.calibration_shots, jobs=1)
        plan["estimated_qpu_seconds"] = estimate
    return plan


def export_circuits(config: ExperimentConfig, folder: str | Path = "circuits", target: str | None = None) -> list[Path]:
    """The config's logical ansatz (and, with ``target``, its ISA form) as OpenQASM 3 and QPY."""
    problem = build_problem_from_config(config)
    if isinstance(problem, MarkowitzProblem):
        raise ConfigError(f"config {config.name!r} is a markowitz problem (continuous weights, solved classically): "
                          "it has no circuit to export")
    encoding, _ = encode_problem(config, problem)
    ansatz = prepare_ansatz(config, problem, encoding)
    stem = Path(folder) / config.name
    write_circuit(ansatz.measured(), stem)
    written = [Path(f"{stem}.qpy"), Path(f"{stem}.qasm")]
    if target is not None:
        backend = make_backend(target, config.solver.shots, config.seed, **config.backend_options())
        if not hasattr(backend, "compile"):
            raise ConfigError(f"{target} is a simulator target with no ISA: use aer_noisy:<device>, ibm_fake:<device> or ibm:<device>")
        isa_stem = Path(folder) / f"{config.name}.{target.replace(':', '_')}"
        write_circuit(backend.compile(ansatz.circuit).isa, isa_stem)
        written += [Path(f"{isa_stem}.qpy"), Path(f"{isa_stem}.qasm")]
    return written


def load_jobs(folder: Path) -> list[dict]:
    """The job records of a run folder (a line cut short by an interruption is ignored)."""
    path = Path(folder) / "jobs.jsonl"
    if not path.exists():
        return []
    jobs = []
    for line in path.read_text().splitlines():
        try:
            jobs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return jobs


def _collect_unrecorded_jobs(folder: Path, backend, history, replay: Replay, energies: EnergyTable,
                             alpha: float) -> dict:
    """Jobs an interrupted attempt submitted but never recorded a result for: fetch their results instead of
    paying for them again. Evaluations join the replay; final samples are returned by parameter key.
    A job that cannot be fetched (local testing mode: it lived in the process that died) is run again."""
    if not hasattr(backend, "collect"):
        return {}
    recorded = {}
    for evaluation in history:
        key = parameter_key(evaluation.parameters)
        recorded[key] = recorded.get(key, 0) + 1
    finals = {}
    for job in load_jobs(folder):
        if job.get("kind") not in ("evaluation", "final"):
            continue
        thetas = np.atleast_2d(np.asarray(job.get("parameters", []), dtype=float))
        keys = [parameter_key(theta) for theta in thetas]
        if job["kind"] == "evaluation" and all(recorded.get(k, 0) > 0 for k in keys):
            for k in keys:
                recorded[k] -= 1
            continue
        try:
            distributions = backend.collect(job["job_id"], job.get("measured_qubits"))
        except QPortfolioError:
            continue
        for key, theta, distribution in zip(keys, thetas, distributions):
            if job["kind"] == "final":
                finals[key] = distribution
            else:
                replay.add(Evaluation(-1, [float(t) for t in theta], objective_value(distribution, energies, alpha), 0.0))
    return finals


def _record_job(folder: Path, backend_name: str, record: dict) -> None:
    """Append a job to ``jobs.jsonl`` the moment its id exists (never a credential: ids and counts only)."""
    with open(folder / "jobs.jsonl", "a") as handle:
        handle.write(json.dumps({"backend": backend_name, **record}, default=str) + "\n")


def check_spending(config: ExperimentConfig, approved: bool) -> float | None:
    """Refuse a run whose estimated QPU time exceeds ``backend.max_qpu_seconds`` unless ``approved``."""
    limit = config.backend.max_qpu_seconds
    if limit is None or not config.backend.name.startswith(("ibm:", "ibm_fake:")):
        return None
    plan = dry_run(config)
    estimate = plan.get("estimated_qpu_seconds")
    if estimate is not None and estimate > limit and not approved:
        raise ResourceError(
            f"estimated QPU time {estimate:,.4g} s exceeds backend.max_qpu_seconds {limit:g} s: "
            "lower solver.maxiter or solver.shots, raise the limit, or pass --yes"
        )
    return estimate
