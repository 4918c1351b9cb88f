"""One experiment end to end: prices → problem → QUBO → ansatz → runner → evaluation, next to the
exact classical answer, written to a run folder with its provenance.

The run folder holds ``config.yaml`` (resolved), ``result.json`` (kept current: ``status`` is
``running`` until the run ends as ``complete``, ``failed`` or ``interrupted``), ``history.jsonl`` (one
line per objective evaluation, written as it happens), ``samples.csv``, ``circuit.qpy``,
``circuit.qasm`` (OpenQASM 3), ``report.md`` and ``figures/``.
"""

from __future__ import annotations

import csv
import io
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

from qportfolio.ansatz import initial_point, qaoa_ansatz, vqe_ansatz
from qportfolio.backends import make_backend
from qportfolio.builder import MAX_ENUMERATED_QUBITS, QuboEncoding, build_quadratic_program, to_qubo, verify_ground_state
from qportfolio.classical import ClassicalSolution, solve_exact, solve_markowitz
from qportfolio.config import ExperimentConfig
from qportfolio.data import MarketData, load_market
from qportfolio.errors import ConfigError, QPortfolioError, ResourceError
from qportfolio.evaluate import SampleTable, decode_samples, quality_metrics
from qportfolio.problem import IntegerSharesProblem, MarkowitzProblem, PortfolioProblem, SelectionProblem
from qportfolio.results import json_safe, new_run_folder, write_atomic, write_json
from qportfolio.runner import EnergyTable, VariationalRunner

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
    return MarkowitzProblem(market.tickers, market.mu, market.sigma, p.target_return, p.allow_short)


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

    def save(self) -> None:
        write_json(self.folder / "result.json", json_safe(self.result))


def start_run(config: ExperimentConfig, out: str | Path) -> Run:
    folder = new_run_folder(out, config.name)
    write_atomic(folder / "config.yaml", yaml.safe_dump(config.resolved(), sort_keys=False))
    run = Run(folder, {"name": config.name, "status": "running", "provenance": provenance(config), "timing": {}})
    run.save()
    return run


def execute(config: ExperimentConfig, out: str | Path = "results", quantum: bool = True,
            progress: bool = False) -> Run:
    """Run ``config`` into a new folder under ``out``; with ``quantum=False``, classical answers only."""
    run = start_run(config, out)
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
    else:
        exact = solve_exact(problem)
    timing["classical_exact_s"] = time.perf_counter() - clock
    result["solutions"]["classical_exact"] = solution_entry(
        problem, exact.allocation, exact.evaluation.row(0), proven_optimal=exact.proven_optimal,
        method=exact.method, time_s=exact.seconds, ties=None if exact.optimal_allocations is None
        else len(exact.optimal_allocations))
    run.save()

    if isinstance(problem, MarkowitzProblem):
        result["solutions"]["quantum"] = None
        result["metrics"] = None
        result["note"] = "markowitz has continuous weights: it is solved classically and is the reference curve"
        _write_outputs(run, config, problem, exact, None, None, None)
        timing["total_s"] = time.perf_counter() - started
        return

    clock = time.perf_counter()
    p = config.problem
    encoding = to_qubo(problem, p.constraint_encoding, p.penalty, p.slack_resolution, p.integer_encoding,
                       build_quadratic_program(problem))
    result["qubits"] = encoding.num_qubits
    result["encoding"] = encoding.describe()
    energies = encoding.qubo.all_energies() if encoding.num_qubits <= MAX_ENUMERATED_QUBITS else None
    check = verify_ground_state(problem, encoding, exact.objective, energies)
    result["encoding"]["verification"] = check.describe()
    timing["build_s"] = time.perf_counter() - clock
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
    if best is None:
        result["solutions"]["quantum"] = {"allocation": None, "objective": None, "variance": None,
                                          "expected_return": None, "cost": None, "feasible": False}
    else:
        result["solutions"]["quantum"] = solution_entry(
            problem, table.allocations[best], table.evaluation.row(best), probability=float(table.probabilities[best]),
            gap_to_optimum=float(table.evaluation.objective[best] - exact.objective),
            time_s=timing["quantum_s"])
    result["quantum"] = {
        "algorithm": config.solver.algorithm, "reps": config.solver.reps, "backend": config.backend.name,
        "optimizer": config.solver.optimizer, "evaluations": len(runner_result.history),
        "optimizer_message": runner_result.optimizer_message, "final_objective_value": runner_result.value,
        "optimal_parameters": runner_result.parameters.tolist(), "shots": config.solver.shots,
        "ansatz": ansatz.description, "parameters": [p.name for p in ansatz.circuit.parameters],
        "circuit_depth": ansatz.circuit.decompose().depth(),
    }
    _write_outputs(run, config, problem, exact, encoding, (ansatz, runner_result), table)
    timing["total_s"] = time.perf_counter() - started


def _quantum(config: ExperimentConfig, run: Run, problem, encoding: QuboEncoding, energies, progress: bool):
    s = config.solver
    if energies is None:
        raise ResourceError(
            f"{encoding.num_qubits} qubits are more than this simulator path handles "
            f"({MAX_ENUMERATED_QUBITS}): use fewer assets or smaller max_shares, or `qportfolio baseline`"
        )
    if s.algorithm == "qaoa":
        operator, _ = encoding.qubo.to_ising()
        ansatz = qaoa_ansatz(operator, s.reps)
    else:
        ansatz = vqe_ansatz(encoding.num_qubits, s.reps, s.ansatz, s.entanglement)
        ansatz = type(ansatz)(ansatz.circuit, ansatz.algorithm, ansatz.reps,
                              float(np.max(np.abs(energies - energies.min()))) or 1.0, ansatz.description)
    backend = make_backend(config.backend.name, s.shots, config.seed)
    runner = VariationalRunner(
        ansatz, backend, EnergyTable(encoding.qubo.energies, encoding.num_qubits, energies), s.objective,
        s.cvar_alpha, s.optimizer, s.maxiter, s.shots, config.seed, run.folder / "history.jsonl", progress)
    rng = np.random.default_rng(config.seed)
    outcome = runner.run(initial_point(ansatz, rng))
    table = decode_samples(outcome.final, encoding, problem)
    return ansatz, outcome, table


def _write_outputs(run, config, problem, exact: ClassicalSolution, encoding, quantum, table: SampleTable | None):
    from qportfolio import plots

    folder = run.folder
    if table is not None:
        write_atomic(folder / "samples.csv", samples_csv(problem, table))
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
    write_atomic(stem.with_suffix(".qpy"), buffer.getvalue())
    write_atomic(stem.with_suffix(".qasm"), qasm3.dumps(circuit))


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
