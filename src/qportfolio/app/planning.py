"""Before anything runs: the dry-run plan, circuit export and the spending guard."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

from qportfolio.app.config import ExperimentConfig
from qportfolio.optimize.auto import WORK_BUDGET
from qportfolio.app.instance import build_problem_from_config
from qportfolio.app.results import check_output_folder, write_circuit
from qportfolio.backends.exact.kernels import kernels_compiled
from qportfolio.backends import EXACT_PROBABILITY_BACKENDS, JobBackend, is_hardware, is_noisy
from qportfolio.classical import solve_exact
from qportfolio.optimize.device_search import best_candidate
from qportfolio.errors import ConfigError, ResourceError
from qportfolio.problems import MarkowitzProblem


def dry_run(config: ExperimentConfig, problem=None, quantum: bool = True, started: float | None = None) -> dict:
    """Everything up to submission: the instance, its exact classical answer (which the run's encoding uses),
    the encoding, the circuit and the expected wall time of the command with its parts (``estimate``; see
    :func:`_with_estimate`), and, on hardware targets, the transpiled circuit's report and the estimated QPU time.
    Nothing is submitted or written. ``problem``: the instance, when the caller has it (a run folder's prices);
    ``quantum=False``: the plan of ``qportfolio baseline`` (classical answers only); ``started``: the seconds
    this process took to start (the CLI measures them), which tell how loaded the machine is now
    (:func:`slowdown`)."""
    began = time.perf_counter()
    solver = config.quantum_solver()
    problem = problem if problem is not None else build_problem_from_config(config)
    plan = {"name": config.name, "problem": problem.kind, "assets": list(problem.tickers)}
    measured: dict[str, float] = {}
    clock = time.perf_counter()
    exact = solve_exact(problem, config.problem.time_limit, config.seed)
    measured["classical_exact"] = time.perf_counter() - clock
    if isinstance(problem, MarkowitzProblem):
        plan["note"] = "markowitz is solved classically: nothing would be submitted"
        return _with_estimate(plan, measured, {}, started=started)
    baselines = {"baselines": BASELINES_SECONDS} if config.problem.baselines else {}
    optimum = exact.vector if exact.proven_optimal else None
    if not quantum:
        clock = time.perf_counter()
        encoded = solver.encode(problem, optimum, for_circuit=False, optimal_objective=exact.objective)
        measured["encoding"] = time.perf_counter() - clock
        plan["qubits"] = encoded.num_qubits
        plan["note"] = "classical answers only: nothing would be submitted"
        return _with_estimate(plan, measured, baselines, started=started)
    plan["backend"] = config.backend.name
    solver = solver.resolved(problem)
    backend = None
    clock = time.perf_counter()
    candidates = device_candidates_plan(solver, problem, exact)
    if candidates is not None:
        solver, encoding, ansatz, plan["device_candidates"], backend = candidates
        measured["device_search"] = time.perf_counter() - clock  # pretraining every candidate on exact
    else:
        encoding = solver.encode(problem, optimum, optimal_objective=exact.objective).encoding
        measured["encoding"] = time.perf_counter() - clock
        ansatz = solver.prepare_ansatz(problem, encoding)
    logical = ansatz.circuit.decompose()
    evaluations = solver.planned_evaluations()
    plan.update({"qubits": encoding.num_qubits, "algorithm": solver.algorithm, "reps": solver.reps})
    # only what the circuit has: a VQE ansatz has no mixer
    plan.update({"mixer": solver.mixer} if solver.algorithm == "qaoa" else {"ansatz": solver.ansatz})
    plan.update({
        "search": solver.search, "pretrain": solver.pretrain,
        "parameters": ansatz.num_parameters, "logical_depth": logical.depth(),
        "logical_two_qubit_gates": logical.num_nonlocal_gates(), "evaluations": evaluations,
    })
    if solver.pretrain == "exact" and candidates is None:  # the angles trained on exact first, at most maxiter
        plan["pretraining_evaluations_on_exact"] = solver.maxiter
    family = config.backend.name.split(":")[0]
    hardware = is_hardware(config.backend.name)
    clock = time.perf_counter()
    if hardware and backend is None:
        backend = solver.make_backend()
    if solver.backend_name in EXACT_PROBABILITY_BACKENDS:  # exact probabilities while training: shots only at the end
        plan["final_shots"] = solver.shots
    else:
        plan.update({"circuits": evaluations + 1, "shots_per_circuit": solver.shots,
                     "total_shots": (evaluations + 1) * solver.shots})
    calibration = hardware and isinstance(backend, JobBackend) and backend.options.mitigation != "none"
    if calibration:  # readout calibration: one job of two circuits (all zeros, all ones)
        plan["calibration_job"] = {"circuits": 2, "shots_per_circuit": backend.options.calibration_shots}
    modelled = dict(baselines)
    modelled.update(quantum_seconds(solver, problem, encoding.num_qubits, ansatz.circuit, backend,
                                    calibration, pretrained=candidates is not None))
    if not hardware:
        return _with_estimate(plan, measured, modelled, uses_kernels=uses_kernels(solver), started=started)
    if isinstance(backend, JobBackend):
        # one job per objective evaluation and one for the final sampling; readout calibration adds a job
        # of two circuits (all zeros, all ones) at the calibration shots
        plan["hardware"] = backend.hardware_report(ansatz.circuit, 1, solver.shots, evaluations + 1)
        qpu = plan["hardware"]["estimated_qpu_seconds"]
        if calibration:
            qpu += backend.estimate_qpu_seconds(ansatz.circuit, 2, backend.options.calibration_shots, jobs=1)
        plan["estimated_qpu_seconds"] = qpu
    measured["transpilation"] = time.perf_counter() - clock  # for the device, as the run does it
    if qpu_guarded(config) or is_noisy(config.backend.name):
        # the run's spending guard plans it first, as this dry run did (a simulator with --yes skips it)
        measured["spending_guard"] = time.perf_counter() - began
    return _with_estimate(plan, measured, modelled, uses_kernels=uses_kernels(solver),
                          qpu=plan.get("estimated_qpu_seconds") if family == "ibm" else None, started=started)


def device_candidates_plan(solver, problem, exact=None):
    """Hardware targets with the default search: the candidates the device search weighs (each pretrained on
    the exact simulator, transpiled for the target: ISA two-qubit depth, estimated fidelity, predicted
    P(optimum)) and the one a run would send, as ``(solver, encoding, ansatz, rows, backend)``; None when the
    device search does not apply (settings given, or too many qubits to pretrain). ``exact``: the problem's
    classical answer, when the caller has it."""
    if not solver._device_search:
        return None
    exact = exact if exact is not None else solve_exact(problem, solver.time_limit, solver.seed)
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
    chosen_solver = dataclasses.replace(solver, **chosen.settings()).resolved(problem)  # as the run sets it
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
        if not is_hardware(target) or ":" not in target:
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
    noisy = is_noisy(config.backend.name)
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


#: A noisy simulation (``backends.NOISY_PREFIXES``, timed by the cost model of :mod:`qportfolio.backends.ibm.noisy`)
#: expected to take longer than this is refused unless approved (``--yes``).
MAX_UNAPPROVED_SIMULATION_SECONDS = 3600.0

# The cost model of a command's wall time on this project's 2-core machine when idle, scaled by :func:`slowdown`
# (the load average is a poor guide: 5 s runs at load 2 and at load 9 alike), checked against measured runs by
# benchmarks/dry_run_accuracy.py (results/benchmarks/dry_run_accuracy.md).
#: This process's start up to the dry run on the idle machine, and the most :func:`slowdown` makes of it (the
#: cost model was fitted with psutil's start time, 0.78 s late on that machine; 1.0 s keeps the fit's slowdowns).
IDLE_START_SECONDS = 1.0
MAX_SLOWDOWN = 4.0
#: The interpreter and the imports, and the run folder's files and figures: markowitz's whole run (nothing else)
#: 2.0 s at slowdown 1.25.
STARTUP_SECONDS = 1.6
#: The first run after install compiles the simulator's kernels: 28 s at slowdown 1.26 (load 3), 95 s at load 8
#: (dry_run_accuracy.py's first-run row), 31.6 s at load 3 (benchmarks/first_run.py, results/benchmarks/first_run.md).
COMPILE_SECONDS = 25
#: The classical baselines (relax-and-round, greedy, simulated annealing, tabu, SCIP on the QUBO): 0.35–0.9 s
#: at 6–62 qubits on the shared machine.
BASELINES_SECONDS = 0.45
#: The exact simulator: seconds per evaluation (the optimizer's step and the history line), per layer of an
#: evaluation, and per amplitude-layer ((p + 1)·2ⁿ, or the K-of-N subspace's size; value only: the gradient
#: costs :data:`GRADIENT_FACTOR` times more). Fitted to measured runs divided by their slowdown: the quickstart
#: and the selection config (≈ 5,000 evaluations at 6–7 qubits, p ≤ 16–24) for the first two, selection_24
#: (50 COBYLA evaluations at 24 qubits, p = 1) for the third.
EXACT_SECONDS_PER_EVALUATION = 3.6e-5
EXACT_SECONDS_PER_LAYER = 1.1e-5
EXACT_SECONDS_PER_AMPLITUDE_LAYER = 2.0e-9
GRADIENT_FACTOR = 2.0
#: The adaptive search's evaluations per depth: L-BFGS-B stops after 200–420 at each depth (the quickstart
#: 4,909 over p = 1…24, the selection config 4,879 over p = 1…16).
EVALUATIONS_PER_DEPTH = 250
#: Aer's sampling backends: seconds per circuit (bind, transpile, run) and per gate per amplitude.
AER_SECONDS_PER_CIRCUIT = 0.010
AER_SECONDS_PER_GATE_AMPLITUDE = 1.1e-9
#: The quantum part's fixed work: the final samples decoded and judged, post-processing, the uniform yardstick.
QUANTUM_FIXED_SECONDS = 0.3


def uses_kernels(solver) -> bool:
    """Whether a run trains or samples on the exact simulator (its compiled kernels)."""
    return solver.backend_name == "exact" or solver.pretrain == "exact"


def slowdown(started: float | None) -> float:
    """How much slower than idle this machine runs now, from this process's start (``started`` seconds up to
    its dry run: interpreter, imports, config and prices) against the same on the idle machine
    (:data:`IDLE_START_SECONDS`); 1 when not measured, at most :data:`MAX_SLOWDOWN`."""
    return 1.0 if started is None else min(max(started / IDLE_START_SECONDS, 1.0), MAX_SLOWDOWN)


def _with_estimate(plan: dict, measured: dict, modelled: dict, uses_kernels: bool = False,
                   qpu: float | None = None, started: float | None = None) -> dict:
    """``plan`` with ``estimated_seconds`` (the command's expected wall time) and ``estimate``, its parts:
    ``measured`` by the dry run itself; ``modelled`` by the cost model, as are the start (interpreter, imports,
    the run folder's files) and the kernels' compilation when the run uses them and numba's cache lacks them,
    scaled by :func:`slowdown`; ``qpu``: a real device's QPU seconds (its queue is not included)."""
    factor = slowdown(started)
    parts = {"startup": STARTUP_SECONDS}
    if uses_kernels and not kernels_compiled():
        parts["kernel_compilation"] = COMPILE_SECONDS
    parts.update(modelled)
    parts = {name: seconds * factor for name, seconds in parts.items()}
    parts.update(measured)
    if qpu is not None:
        parts["qpu"] = qpu
    plan["estimated_seconds"] = round(sum(parts.values()), 1)
    estimate = {f"{name}_s": round(seconds, 3 if seconds < 1 else 1) for name, seconds in parts.items()}
    if started is not None:
        estimate["slowdown"] = round(factor, 2)
    notes = []
    if started is not None and factor > 1:
        notes.append(f"modelled parts ×{factor:.2f}: this process started in {started:.1f} s, "
                     f"{IDLE_START_SECONDS:g} s on the idle machine")
    if "kernel_compilation_s" in estimate:
        notes.append("the first run after install compiles the simulator's kernels (once; later runs load them)")
    if qpu is not None:
        notes.append("the device's queue is not included")
    if notes:
        estimate["note"] = "; ".join(notes)
    plan["estimate"] = estimate
    return plan


def quantum_seconds(solver, problem, num_qubits: int, circuit, backend=None, calibration: bool = False,
                    pretrained: bool = False) -> dict:
    """The modelled seconds of a run's quantum part, by part: ``pretraining`` on the exact
    simulator (unless the dry run did it: ``pretrained``), the ``search`` (the evaluations on the configured
    backend), ``sampling`` (the final job or samples, and on hardware the readout ``calibration`` job), and the
    fixed work around them. A real device (``ibm:*``) has no modelled search or sampling: its time is QPU time."""
    parts = {}
    family = solver.backend_name.split(":")[0]
    evaluations = solver.planned_evaluations()
    if solver.pretrain == "exact" and not pretrained:
        trainer = dataclasses.replace(solver, backend="exact", pretrain="none", refine=0)
        parts["pretraining"] = exact_search_seconds(trainer, problem, num_qubits)
    if is_noisy(family):
        from qportfolio.backends.ibm.noisy import IN_PROCESS_SECONDS

        parts["search"] = noisy_seconds(solver, circuit, evaluations, backend) if evaluations else 0.0
        parts["sampling"] = noisy_seconds(solver, circuit, 1, backend)
        if calibration:
            parts["calibration"] = calibration_seconds(backend, circuit)
        if family == "ibm_fake" or parts["sampling"] >= IN_PROCESS_SECONDS:  # jobs run in a worker process
            parts["job_worker_start"] = STARTUP_SECONDS
    elif solver.backend_name == "exact":
        parts["search"] = exact_search_seconds(solver, problem, num_qubits)
    elif solver.backend_name in ("aer_shots", "aer_statevector"):
        size = circuit.decompose().size() * 2.0**num_qubits
        parts["search"] = (evaluations + 1) * (AER_SECONDS_PER_CIRCUIT + AER_SECONDS_PER_GATE_AMPLITUDE * size)
    parts["quantum_fixed"] = QUANTUM_FIXED_SECONDS
    return parts


def exact_search_seconds(solver, problem, num_qubits: int) -> float:
    """The search on the exact simulator: Σ over its depths of evaluations × (per evaluation + per layer + per
    amplitude-layer), the depths and evaluations those of :func:`search_depths`."""
    size, warm = _state_size(solver, problem, num_qubits), 1.25 if solver.warm_start is True else 1.0
    gradient = GRADIENT_FACTOR if solver.optimizer == "l_bfgs_b" else 1.0
    return sum(evaluations * (EXACT_SECONDS_PER_EVALUATION + EXACT_SECONDS_PER_LAYER * reps
                              + EXACT_SECONDS_PER_AMPLITUDE_LAYER * gradient * warm * (reps + 1) * size)
               for reps, evaluations in search_depths(solver, problem, num_qubits))


def expected_evaluations(solver, problem, num_qubits: int) -> int:
    """The evaluations a search of ``solver`` (resolved) is expected to make (:func:`search_depths`)."""
    return sum(evaluations for _, evaluations in search_depths(solver, problem, num_qubits))


def search_depths(solver, problem, num_qubits: int) -> list[tuple[int, int]]:
    """``(depth, evaluations)`` of the search: a fixed search's planned evaluations at its depth; the adaptive
    search followed depth by depth as it spends :data:`EVALUATIONS_PER_DEPTH` a depth, at most ``maxiter``
    in all, and (the budget left to the tool) stopping before a depth that would pass the solver's work budget."""
    if solver.search != "adaptive":
        return [(solver.reps, solver.planned_evaluations())]
    size, warm = _state_size(solver, problem, num_qubits), 1.25 if solver.warm_start is True else 1.0
    depths, work, left = [], 0.0, solver.maxiter
    for reps in range(1, solver.reps + 1):
        evaluations = min(left, EVALUATIONS_PER_DEPTH)
        depths.append((reps, evaluations))
        work += evaluations * warm * (reps + 1) * size
        left -= evaluations
        projected = evaluations * (reps + 1) / reps * 1.3 * warm * (reps + 2) * size
        if left <= 0 or (solver._auto_budget and work + projected > WORK_BUDGET):
            break
    return depths


def _state_size(solver, problem, num_qubits: int) -> float:
    """Amplitudes an evaluation sweeps a layer: 2ⁿ, or on the complete XY mixer's K-of-N subspace its C(n, K)
    states, each meeting K(n − K)/n of the mixer's pair rotations."""
    k = getattr(problem, "num_selected", None)
    if solver.algorithm == "qaoa" and solver.mixer != "x" and k:
        return math.comb(num_qubits, k) * (1 + k * (num_qubits - k) / max(num_qubits, 1))
    return 2.0**num_qubits


def calibration_seconds(backend, circuit) -> float:
    """The readout calibration job: two circuits (all zeros, all ones) at the calibration shots."""
    from qportfolio.backends.ibm import AerNoisyBackend
    from qportfolio.backends.ibm.noisy import local_testing_job_seconds

    shots = backend.options.calibration_shots
    if isinstance(backend, AerNoisyBackend):
        return backend.estimate_seconds(circuit, 2, shots, jobs=1)
    return local_testing_job_seconds(backend.compile(circuit).isa, shots, circuits=2)


def estimated_seconds(solver, problem, num_qubits: int, circuit, backend=None) -> float:
    """The modelled seconds of a run's quantum part (:func:`quantum_seconds`)."""
    return sum(quantum_seconds(solver, problem, num_qubits, circuit, backend).values())


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
