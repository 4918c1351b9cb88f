"""Before anything runs: the dry-run plan, circuit export and the spending guard."""

from __future__ import annotations

from pathlib import Path

from qportfolio.app.config import ExperimentConfig
from qportfolio.app.instance import build_problem_from_config
from qportfolio.app.results import write_circuit
from qportfolio.backends import JobBackend
from qportfolio.errors import ConfigError, ResourceError
from qportfolio.problems import MarkowitzProblem


def dry_run(config: ExperimentConfig) -> dict:
    """Everything up to submission: the instance, the encoding, the circuit (and, on hardware targets,
    the transpiled circuit's report and the estimated QPU time). Nothing is run or written."""
    solver = config.quantum_solver()
    problem = build_problem_from_config(config)
    plan = {"name": config.name, "problem": problem.kind, "assets": list(problem.tickers), "backend": config.backend.name}
    if isinstance(problem, MarkowitzProblem):
        plan["note"] = "markowitz is solved classically: nothing would be submitted"
        return plan
    solver = solver.resolved(problem)
    encoding = solver.encode(problem).encoding
    ansatz = solver.prepare_ansatz(problem, encoding)
    logical = ansatz.circuit.decompose()
    evaluations = solver.planned_evaluations()
    plan.update({
        "qubits": encoding.num_qubits, "algorithm": solver.algorithm, "reps": solver.reps, "mixer": solver.mixer,
        "search": solver.search, "pretrain": solver.pretrain,
        "parameters": ansatz.num_parameters, "logical_depth": logical.depth(),
        "logical_two_qubit_gates": logical.num_nonlocal_gates(), "evaluations": evaluations,
        "circuits": evaluations + 1, "shots_per_circuit": solver.shots, "total_shots": (evaluations + 1) * solver.shots,
    })
    if config.backend.name.split(":")[0] not in ("ibm", "ibm_fake", "aer_noisy"):
        return plan
    backend = solver.make_backend()
    if isinstance(backend, JobBackend):
        # one job per objective evaluation and one for the final sampling; readout calibration adds a job
        # of two circuits (all zeros, all ones) at the calibration shots
        plan["hardware"] = backend.hardware_report(ansatz.circuit, 1, solver.shots, evaluations + 1)
        estimate = plan["hardware"]["estimated_qpu_seconds"]
        if config.backend.mitigation != "none":
            estimate += backend.estimate_qpu_seconds(ansatz.circuit, 2, backend.options.calibration_shots, jobs=1)
        plan["estimated_qpu_seconds"] = estimate
    return plan


def export_circuits(config: ExperimentConfig, folder: str | Path = "circuits", target: str | None = None) -> list[Path]:
    """The config's logical ansatz (and, with ``target``, its ISA form) as OpenQASM 3 and QPY."""
    solver = config.quantum_solver()
    problem = build_problem_from_config(config)
    if isinstance(problem, MarkowitzProblem):
        raise ConfigError(f"config {config.name!r} is a markowitz problem (continuous weights, solved classically): "
                          "it has no circuit to export")
    ansatz = solver.prepare_ansatz(problem, solver.encode(problem).encoding)
    stem = Path(folder) / config.name
    write_circuit(ansatz.measured(), stem)
    written = [Path(f"{stem}.qpy"), Path(f"{stem}.qasm")]
    if target is not None:
        backend = solver.make_backend(name=target)
        if not isinstance(backend, JobBackend):
            raise ConfigError(f"{target} is a simulator target with no ISA: use aer_noisy:<device>, ibm_fake:<device> or ibm:<device>")
        isa_stem = Path(folder) / f"{config.name}.{target.replace(':', '_')}"
        write_circuit(backend.compile(ansatz.circuit).isa, isa_stem)
        written += [Path(f"{isa_stem}.qpy"), Path(f"{isa_stem}.qasm")]
    return written


def check_spending(config: ExperimentConfig, approved: bool) -> float | None:
    """Refuse a run whose estimated QPU time exceeds ``backend.max_qpu_seconds`` unless ``approved``."""
    limit = config.backend.max_qpu_seconds
    if limit is None or not config.backend.name.startswith(("ibm:", "ibm_fake:")):
        return None
    estimate = dry_run(config).get("estimated_qpu_seconds")
    if estimate is not None and estimate > limit and not approved:
        raise ResourceError(
            f"estimated QPU time {estimate:,.4g} s exceeds backend.max_qpu_seconds {limit:g} s: "
            "lower solver.maxiter or solver.shots, raise the limit, or pass --yes"
        )
    return estimate
