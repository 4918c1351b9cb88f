"""Before anything runs: the dry-run plan, circuit export and the spending guard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from qportfolio.app.config import ExperimentConfig
from qportfolio.optimize.auto import WORK_BUDGET
from qportfolio.app.instance import build_problem_from_config
from qportfolio.app.results import check_output_folder, write_circuit
from qportfolio.backends import EXACT_PROBABILITY_BACKENDS, HARDWARE_PREFIXES, NOISY_PREFIXES, JobBackend
from qportfolio.classical import solve_exact
from qportfolio.optimize.device_search import best_candidate
from qportfolio.errors import ConfigError, ResourceError
from qportfolio.problems import MarkowitzProblem


def dry_run(config: ExperimentConfig, problem=None) -> dict:
    """Everything up to submission: the instance, the encoding, the circuit, the expected duration on a
    simulator (and, on hardware targets, the transpiled circuit's report and the estimated QPU time).
    Nothing is run or written. ``problem``: the instance, when the caller has it (a run folder's prices)."""
    solver = config.quantum_solver()
    problem = problem if problem is not None else build_problem_from_config(config)
    plan = {"name": config.name, "problem": problem.kind, "assets": list(problem.tickers), "backend": config.backend.name}
    if isinstance(problem, MarkowitzProblem):
        plan["note"] = "markowitz is solved classically: nothing would be submitted"
        return plan
    solver = solver.resolved(problem)
    backend = None
    candidates = device_candidates_plan(solver, problem)
    if candidates is not None:
        solver, encoding, ansatz, plan["device_candidates"], backend = candidates
    else:
        encoding = solver.encode(problem).encoding
        ansatz = solver.prepare_ansatz(problem, encoding)
    logical = ansatz.circuit.decompose()
    evaluations = solver.planned_evaluations()
    plan.update({
        "qubits": encoding.num_qubits, "algorithm": solver.algorithm, "reps": solver.reps, "mixer": solver.mixer,
        "search": solver.search, "pretrain": solver.pretrain,
        "parameters": ansatz.num_parameters, "logical_depth": logical.depth(),
        "logical_two_qubit_gates": logical.num_nonlocal_gates(), "evaluations": evaluations,
    })
    if solver.backend_name in EXACT_PROBABILITY_BACKENDS:  # exact probabilities while training: shots only at the end
        plan["final_shots"] = solver.shots
    else:
        plan.update({"circuits": evaluations + 1, "shots_per_circuit": solver.shots,
                     "total_shots": (evaluations + 1) * solver.shots})
    hardware = config.backend.name.split(":")[0] in HARDWARE_PREFIXES
    if hardware and backend is None:
        backend = solver.make_backend()
    seconds = estimated_seconds(solver, ansatz.circuit, evaluations + 1, backend)
    if seconds is not None:
        plan["estimated_seconds"] = round(seconds, 3 if seconds < 1 else 1)
    if not hardware:
        return plan
    if isinstance(backend, JobBackend):
        # one job per objective evaluation and one for the final sampling; readout calibration adds a job
        # of two circuits (all zeros, all ones) at the calibration shots
        plan["hardware"] = backend.hardware_report(ansatz.circuit, 1, solver.shots, evaluations + 1)
        estimate = plan["hardware"]["estimated_qpu_seconds"]
        if backend.options.mitigation != "none":
            estimate += backend.estimate_qpu_seconds(ansatz.circuit, 2, backend.options.calibration_shots, jobs=1)
        plan["estimated_qpu_seconds"] = estimate
    return plan


def device_candidates_plan(solver, problem):
    """Hardware targets with the default search: the candidates the device search weighs (each pretrained on
    the exact simulator, transpiled for the target: ISA two-qubit depth, estimated fidelity, predicted
    P(optimum)) and the one a run would send, as ``(solver, encoding, ansatz, rows, backend)``; None when the
    device search does not apply (settings given, or too many qubits to pretrain)."""
    if not solver._device_search:
        return None
    exact = solve_exact(problem, solver.time_limit, solver.seed)
    encoded = solver.encode(problem, exact.vector if exact.proven_optimal else None,
                            optimal_objective=exact.objective)
    if encoded.energies is None:
        return None
    backend = solver.make_backend()
    candidates, encodings = solver.device_candidates(problem, encoded, exact, backend)
    chosen = best_candidate(candidates)
    rows = {}
    for c in candidates:
        d = c.describe()
        rows[f"{d['mixer']}{' warm' if d['warm_start'] else ''} p={d['reps']}" + (" (chosen)" if c is chosen else "")] = {
            "isa_two_qubit_depth": d["two_qubit_depth"], "isa_two_qubit_gates": d["two_qubit_gates"],
            "estimated_fidelity": round(d["estimated_fidelity"], 4), "ideal_p_optimal": round(d["ideal_p_optimal"], 4),
            "predicted_p_optimal": round(d["predicted_p_optimal"], 4),
            "predicted_p_optimal_postselected": None if d["predicted_p_optimal_postselected"] is None
            else round(d["predicted_p_optimal_postselected"], 4)}
    chosen_solver = dataclasses.replace(solver, mixer=chosen.mixer, reps=chosen.reps,
                                        warm_start=chosen.warm_start).resolved(problem)
    return chosen_solver, encodings[chosen.mixer].encoding, chosen.ansatz, rows, backend


def export_circuits(config: ExperimentConfig, folder: str | Path = "results/circuits", target: str | None = None) -> list[Path]:
    """The config's logical ansatz (and, with ``target``, its ISA form) as OpenQASM 3 and QPY."""
    solver = config.quantum_solver()
    problem = build_problem_from_config(config)
    if isinstance(problem, MarkowitzProblem):
        raise ConfigError(f"config {config.name!r} is a markowitz problem (continuous weights, solved classically): "
                          "it has no circuit to export")
    ansatz = solver.prepare_ansatz(problem, solver.encode(problem).encoding)
    isa = None
    if target is not None:  # the target is checked (and compiled for) before any file is written
        if target.split(":")[0] not in HARDWARE_PREFIXES or ":" not in target:
            raise ConfigError(f"--target {target} is not a device target with an ISA: use aer_noisy:<device>, "
                              "ibm_fake:<device> or ibm:<device> (e.g. aer_noisy:fake_fez)")
        backend = solver.make_backend(name=target)
        if not isinstance(backend, JobBackend):
            raise ConfigError(f"{target} is a simulator target with no ISA: use aer_noisy:<device>, ibm_fake:<device> or ibm:<device>")
        isa = backend.compile(ansatz.circuit).isa
    folder = check_output_folder(folder)
    stem = folder / config.name
    write_circuit(ansatz.measured(), stem)
    written = [Path(f"{stem}.qpy"), Path(f"{stem}.qasm")]
    if isa is not None:
        isa_stem = folder / f"{config.name}.{target.replace(':', '_')}"
        write_circuit(isa, isa_stem)
        written += [Path(f"{isa_stem}.qpy"), Path(f"{isa_stem}.qasm")]
    return written


def qpu_guarded(config: ExperimentConfig) -> bool:
    """Whether the spending guard applies: a ``backend.max_qpu_seconds`` on a device target (``ibm:*``, or
    ``ibm_fake:*``, which estimates the same QPU time offline)."""
    return config.backend.max_qpu_seconds is not None and config.backend.name.startswith(("ibm:", "ibm_fake:"))


def refuse_over_budget(estimate: float | None, limit: float, approved: bool, scope: str = "",
                       advice: str = "lower solver.maxiter or solver.shots") -> None:
    """The spending guard's one rule: an estimate over ``backend.max_qpu_seconds`` is refused unless approved."""
    if estimate is not None and estimate > limit and not approved:
        raise ResourceError(f"estimated QPU time {estimate:,.4g} s{scope} exceeds backend.max_qpu_seconds {limit:g} s: "
                            f"{advice}, raise the limit, or pass --yes")


def check_spending(config: ExperimentConfig, approved: bool, problem=None) -> float | None:
    """Refuse, unless ``approved``, a run whose estimated QPU time exceeds ``backend.max_qpu_seconds``, or a
    noisy simulation (``aer_noisy:*``, ``ibm_fake:*``) expected to take more than
    :data:`MAX_UNAPPROVED_SIMULATION_SECONDS`."""
    noisy = config.backend.name.split(":")[0] in NOISY_PREFIXES
    if not qpu_guarded(config) and not (noisy and not approved):
        return None
    plan = dry_run(config, problem)
    seconds = plan.get("estimated_seconds")
    if noisy and not approved and seconds is not None and seconds > MAX_UNAPPROVED_SIMULATION_SECONDS:
        isa = plan.get("hardware", {})
        raise ResourceError(
            f"this run is expected to take about {seconds / 3600:.1f} h on {config.backend.name} ({plan['circuits']} "
            f"job(s) of {plan['shots_per_circuit']:,} shots of a {isa.get('gate_count', '?')}-gate ISA circuit on "
            f"{isa.get('num_active_qubits', '?')} qubits, simulated with noise): lower solver.shots or solver.reps, "
            "use fewer assets, or pass --yes to run it anyway")
    if not qpu_guarded(config):
        return None
    estimate = plan.get("estimated_qpu_seconds")
    refuse_over_budget(estimate, config.backend.max_qpu_seconds, approved)
    return estimate


#: Seconds per gate per amplitude of the state, measured on two shared cores (results/benchmarks/simulator.md
#: and a 26-qubit warm-started QAOA at 135 s per evaluation on Aer): a coarse model, right within a factor ~2.
SECONDS_PER_GATE_AMPLITUDE = {"aer_statevector": 1.1e-9, "aer_shots": 1.1e-9, "exact": 2.2e-9}
#: The exact backend's QAOA fast paths (X or XY mixer, no warm start): seconds per layer per amplitude.
EXACT_SECONDS_PER_LAYER_AMPLITUDE = 7e-9
#: A noisy simulation (``backends.NOISY_PREFIXES``, timed by the cost model of :mod:`qportfolio.backends.ibm.noisy`)
#: expected to take longer than this is refused unless approved (``--yes``).
MAX_UNAPPROVED_SIMULATION_SECONDS = 3600.0


#: Seconds per unit of the adaptive search's work budget ((p + 1)·amplitudes of value and gradient), measured.
SECONDS_PER_WORK_UNIT = 35e-9


def estimated_seconds(solver, circuit, circuits: int, backend=None) -> float | None:
    """Expected wall time of ``circuits`` evaluations of ``circuit`` on the solver's simulator (None on a
    real device, whose time is the QPU estimate); ``backend``: the solver's backend object, when made."""
    name = solver.backend_name
    if name.split(":")[0] in NOISY_PREFIXES:
        return noisy_seconds(solver, circuit, circuits, backend)
    if name not in SECONDS_PER_GATE_AMPLITUDE:
        return None
    amplitudes = 2.0 ** circuit.num_qubits
    if name == "exact" and solver.search == "adaptive" and solver._auto_budget:
        # the adaptive search stops at its work budget: an upper bound whatever the evaluation cap says
        bounded = WORK_BUDGET * SECONDS_PER_WORK_UNIT
        layers = EXACT_SECONDS_PER_LAYER_AMPLITUDE * solver.reps * amplitudes * circuits
        return min(bounded, layers)
    if name == "exact" and solver.algorithm == "qaoa" and not solver.warm_start:
        return circuits * EXACT_SECONDS_PER_LAYER_AMPLITUDE * solver.reps * amplitudes
    return circuits * SECONDS_PER_GATE_AMPLITUDE[name] * circuit.decompose().size() * amplitudes


def noisy_seconds(solver, circuit, circuits: int, backend=None) -> float:
    """Expected wall time of ``circuits`` jobs (one circuit × ``solver.shots`` each) on ``aer_noisy:*`` or
    ``ibm_fake:*``: the cost model of the noisy simulation of the ISA circuit (``ibm_fake`` with Aer's
    automatic method and the whole device's noise model rebuilt every job)."""
    from qportfolio.backends.ibm import AerNoisyBackend
    from qportfolio.backends.ibm.noisy import local_testing_job_seconds

    backend = backend or solver.make_backend()
    if isinstance(backend, AerNoisyBackend):
        return backend.estimate_seconds(circuit, 1, solver.shots, jobs=circuits)
    return circuits * local_testing_job_seconds(backend.compile(circuit).isa, solver.shots)
