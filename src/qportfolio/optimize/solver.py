"""The quantum solver: a discrete problem in, the sampled answer judged against the exact one out.

``QuantumSolver(...).solve(problem)`` runs the whole pipeline a config run runs:

1. the exact answer (:func:`qportfolio.classical.solve_exact`) unless one is given;
2. the encoding (:class:`~qportfolio.encoding.Encoder`, from the solver's ``problem.*`` keys);
3. the ansatz (QAOA with the X or an XY mixer, optionally warm-started, or VQE) and the backend; on hardware
   targets the circuit the device search chooses (:mod:`.device_search`);
4. the parameter search (:mod:`.search`) and the final samples;
5. decoding, the quality metrics and the classical post-processing of the samples, reported apart
   (:class:`~qportfolio.optimize.result.QuantumResult`).

Every keyword is a ``solver.*``, ``backend.*`` or encoding (``problem.*``) key of a config, with the
same default; ``auto`` settings are chosen per problem by :mod:`.auto`. The solver writes no file: what a
caller wants to keep as it happens (evaluations, job records, the hardware report) reaches it through
:class:`SolveHooks`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from qportfolio.backends import EXACT_PROBABILITY_BACKENDS, Backend, JobBackend, is_hardware, make_backend
from qportfolio.backends.exact import weight_k_states
from qportfolio.backends.ibm.options import BACKEND_OPTION_DEFAULTS
from qportfolio.choices import Algorithm, Mixer
from qportfolio.circuits import Ansatz, qaoa_ansatz, qubo_scale, vqe_ansatz
from qportfolio.classical import ClassicalSolution, solve_exact
from qportfolio.encoding import MAX_ENUMERATED_QUBITS, Encoded, Encoder, QuboEncoding, bits_of
from qportfolio.errors import ConfigError, ResourceError
from qportfolio.evaluation import decode_samples, postselected_metrics, quality_metrics
from qportfolio.objective import Objective
from qportfolio.optimize.auto import GIBBS_ETA, WORK_BUDGET, check_settings, resolve, work_per_evaluation
from qportfolio.optimize.auto import planned_evaluations as planned_calls
from qportfolio.optimize.device_search import DEVICE_SEARCH_RULE, best_candidate, device_candidates, sample_on_target
from qportfolio.optimize.history import OptimizerCall, Replay, parameter_key
from qportfolio.optimize.energy_table import EnergyTable
from qportfolio.optimize.recovery import collect_unrecorded_jobs
from qportfolio.optimize.result import QuantumResult, optimal_count, random_sampling
from qportfolio.optimize.runner import VariationalResult, VariationalRunner
from qportfolio.optimize.search import adaptive_search, variational_search
from qportfolio.optimize.strategies import trained_angles
from qportfolio.postprocess import postprocess
from qportfolio.problems import DiscreteProblem, MarkowitzProblem, SelectionProblem
from qportfolio.warmstart import warm_start_probabilities

_BACKEND = BACKEND_OPTION_DEFAULTS


@dataclass
class SolveHooks:
    """What a caller (a run folder, a study) learns while :meth:`QuantumSolver.solve` runs.

    ``recorded`` evaluations of an earlier attempt are replayed to the optimizer instead of being run
    again; ``previous_jobs`` are that attempt's job records, whose results are collected by id.
    """

    recorded: list[OptimizerCall] = field(default_factory=list)
    previous_jobs: list[dict] = field(default_factory=list)
    on_evaluation: Callable[[OptimizerCall], None] | None = None
    on_job: Callable[[dict], None] | None = None
    #: called once before the search with what is known then: ``backend`` (resolved name), ``hardware``
    #: (the device report), ``warm_start`` (per-qubit probabilities)
    on_start: Callable[[dict], None] | None = None


@dataclass
class QuantumSolver:
    """QAOA or VQE on a discrete portfolio problem; every keyword is the config key of the same name."""

    # solver.* ("auto" and None: chosen per problem kind by :meth:`resolved`)
    algorithm: str = "qaoa"
    reps: int | None = None
    optimizer: str = "auto"
    maxiter: int | None = None
    objective: str = "auto"
    cvar_alpha: float = 1.0
    gibbs_eta: float = GIBBS_ETA
    search: str = "auto"
    pretrain: str = "auto"
    refine: int = 0
    shots: int = 4096
    ansatz: str = "real_amplitudes"
    entanglement: str = "linear"
    mixer: str = "auto"
    warm_start: bool | str = "auto"
    #: training suite, whole shares without slack: median P(optimum) 0.85 at ε = 0.15, 0.72 at 0.25, 0.64 at 0.35
    warm_start_epsilon: float = 0.15
    layerwise: bool = False
    multistart: int = 1
    initial_parameters: list[float] | None = None
    grid: int = 0
    postprocess: bool = True
    # problem.* keys about the encoding
    constraint_encoding: str = Encoder.constraint_encoding
    integer_encoding: str = Encoder.integer_encoding
    penalty: float | dict | str = Encoder.penalty
    slack_resolution: float | dict | str = Encoder.slack_resolution
    max_qubits: int | None = None
    narrowing: str = Encoder.narrowing
    time_limit: float = 60.0
    # backend.*: the name (or a backend object) and its options
    backend: str | Backend = "exact"
    seed: int = 7
    precision: str = _BACKEND["precision"]
    min_qubits: int | None = _BACKEND["min_qubits"]
    account: str | None = _BACKEND["account"]
    channel: str | None = _BACKEND["channel"]
    instance: str | None = _BACKEND["instance"]
    connect_timeout: float | None = _BACKEND["connect_timeout"]
    calibration_shots: int | None = _BACKEND["calibration_shots"]
    aer_method: str | None = _BACKEND["aer_method"]
    execution_mode: str = _BACKEND["execution_mode"]
    dynamical_decoupling: bool = _BACKEND["dynamical_decoupling"]
    dd_sequence: str = _BACKEND["dd_sequence"]
    twirling: bool = _BACKEND["twirling"]
    max_execution_time: int | None = _BACKEND["max_execution_time"]
    optimization_level: int = _BACKEND["optimization_level"]
    seed_transpiler: int | None = _BACKEND["seed_transpiler"]
    initial_layout: list[int] | None = _BACKEND["initial_layout"]
    mitigation: str = _BACKEND["mitigation"]
    max_qpu_seconds: float | None = None

    def __post_init__(self):
        check_settings(self)

    def resolved(self, problem: DiscreteProblem) -> QuantumSolver:
        """A copy with every ``auto`` setting chosen for ``problem`` (:func:`~qportfolio.optimize.auto.resolve`)."""
        return resolve(self, problem)

    #: whether the adaptive search also stops at :data:`~.auto.WORK_BUDGET` (set by :meth:`resolved`)
    _auto_budget = False
    #: whether the device search chooses mixer and depth (set by :meth:`resolved`)
    _device_search = False

    # ------------------------------------------------------------------ settings

    @property
    def backend_name(self) -> str:
        return self.backend if isinstance(self.backend, str) else getattr(self.backend, "name", type(self.backend).__name__)

    def settings(self) -> dict:
        """Every setting as plain values (the backend by name)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["backend"] = self.backend_name
        return values

    def backend_options(self) -> dict:
        """The backend options that differ from their defaults (a simulator is never handed hardware options
        it would reject); hardware transpiles with the run's seed unless ``seed_transpiler`` is given."""
        options = {key: getattr(self, key) for key, default in _BACKEND.items()
                   if getattr(self, key) != default}
        if is_hardware(self.backend_name):
            options.setdefault("seed_transpiler", self.seed)
        elif options.get("mitigation") == "none":  # what a simulator does anyway
            del options["mitigation"]
        return options

    def qubit_limit(self) -> int | None:
        """``max_qubits``, or what the 2ⁿ energy table holds; None on ``ibm:*``/``ibm_fake:*`` (the device decides)."""
        if self.max_qubits is not None:
            return self.max_qubits
        return None if self.backend_name.startswith("ibm") else MAX_ENUMERATED_QUBITS

    def planned_evaluations(self, problem: DiscreteProblem | None = None) -> int:
        """:func:`~qportfolio.optimize.auto.planned_evaluations` of this solver (resolved for ``problem``)."""
        return planned_calls(self.resolved(problem) if problem is not None else self)

    # ------------------------------------------------------------------ encoding

    def encoder(self, problem: DiscreteProblem) -> Encoder:
        """The encoding policy of this solver's ``problem.*`` keys for ``problem``: the qubit limit of
        :meth:`qubit_limit`; selection's cardinality penalty dropped where the XY mixers keep ``1ᵀx = K``."""
        self = self.resolved(problem)
        keeps = self.mixer != Mixer.X and isinstance(problem, SelectionProblem)
        return Encoder(self.constraint_encoding, self.integer_encoding, self.penalty, self.slack_resolution,
                       self.qubit_limit(), self.narrowing, keeps_cardinality=keeps)

    def encode(self, problem: DiscreteProblem, optimum=None, for_circuit: bool = True,
               optimal_objective: float | None = None) -> Encoded:
        """:meth:`Encoder.encode <qportfolio.encoding.Encoder.encode>` with this solver's :meth:`encoder`."""
        return self.encoder(problem).encode(problem, optimum, for_circuit, optimal_objective)

    # ------------------------------------------------------------------ circuits

    def warm_start_probabilities(self, problem: DiscreteProblem, encoding: QuboEncoding) -> np.ndarray | None:
        """The warm-start probabilities when ``warm_start`` is on, else None."""
        if self.resolved(problem).warm_start is not True:
            return None
        return warm_start_probabilities(problem, encoding, self.warm_start_epsilon)

    def build_ansatz(self, problem: DiscreteProblem, encoding: QuboEncoding, reps: int | None = None,
                     warm_start: np.ndarray | None = None) -> Ansatz:
        """The configured ansatz for ``encoding`` at depth ``reps`` (VQE's cost scale: the QUBO's largest
        |coefficient|)."""
        self = self.resolved(problem)
        reps = reps or self.reps
        if self.algorithm == Algorithm.QAOA:
            operator, _ = encoding.qubo.to_ising()
            num_selected = problem.num_selected if isinstance(problem, SelectionProblem) else None
            if self.mixer != Mixer.X and num_selected is None:
                raise ConfigError("solver.mixer xy_ring / xy_complete keeps the number of ones fixed: "
                                  "use it with problem.kind: selection")
            scale = None
            if self.mixer != Mixer.X:
                # The XY mixer never leaves the weight-K states: scale by the energy spread over those states,
                # not over all bitstrings (where the spread between Hamming weights would dwarf it).
                states = weight_k_states(encoding.num_qubits, num_selected)
                scale = float(np.std(encoding.qubo.energies(bits_of(states, encoding.num_qubits))))
            return qaoa_ansatz(operator, reps, self.mixer, num_selected, warm_start, scale)
        return vqe_ansatz(encoding.num_qubits, reps, self.ansatz, self.entanglement, qubo_scale(encoding.qubo))

    def prepare_ansatz(self, problem: DiscreteProblem, encoding: QuboEncoding) -> Ansatz:
        """The circuit a run executes at its final depth (dry runs and exports use it too)."""
        self = self.resolved(problem)
        return self.build_ansatz(problem, encoding, self.reps, self.warm_start_probabilities(problem, encoding))

    def make_backend(self, energies: np.ndarray | None = None, name: str | None = None, qubo=None) -> Backend:
        """The configured backend (``name`` overrides, e.g. the device ``ibm:least_busy`` resolved to);
        ``qubo``: the QUBO of ``energies``, for the exact backend's phases."""
        if not isinstance(self.backend, str) and (name is None or name == self.backend_name):
            return self.backend
        name = name or self.backend
        extra = {"energies": energies, "qubo": qubo} if name == "exact" else {}
        return make_backend(name, self.shots, self.seed, **self.backend_options(), **extra)

    # ------------------------------------------------------------------ solving

    def solve(self, problem: DiscreteProblem, exact: ClassicalSolution | None = None, encoded: Encoded | None = None,
              hooks: SolveHooks | None = None, backend_name: str | None = None) -> QuantumResult:
        """Run the variational algorithm on ``problem`` and judge its samples against the exact answer.

        ``exact`` and ``encoded`` may be given when the caller has them (the app runs baselines on the
        same encoding); ``backend_name`` pins a resolved device (a resumed ``ibm:least_busy`` run). One BLAS
        thread: on two, L-BFGS-B's small calls each wait a scheduler slice under load (24–50 s, not 5 s)."""
        with threadpool_limits(1, user_api="blas"):
            return self._solve(problem, exact, encoded, hooks, backend_name)

    def _solve(self, problem: DiscreteProblem, exact: ClassicalSolution | None, encoded: Encoded | None,
               hooks: SolveHooks | None, backend_name: str | None) -> QuantumResult:
        if isinstance(problem, MarkowitzProblem):
            raise ConfigError("markowitz has continuous weights: it is solved classically, with solve_exact")
        self, hooks, started = self.resolved(problem), hooks or SolveHooks(), time.perf_counter()
        if exact is None:
            exact = solve_exact(problem, self.time_limit, self.seed)
        if encoded is None:
            encoded = self.encode(problem, exact.vector if exact.proven_optimal else None,
                                  optimal_objective=exact.objective)
        encoding, energies = encoded.encoding, encoded.energies
        name = backend_name or self.backend_name
        pretrain = self.pretrain == "exact" and energies is not None
        if energies is None and name in EXACT_PROBABILITY_BACKENDS:
            # exact probabilities need every state's energy; sampled backends score their samples directly
            raise ResourceError(
                f"{encoding.num_qubits} qubits are more than the exact-probability paths hold "
                f"({MAX_ENUMERATED_QUBITS}): use fewer assets or a smaller max_shares / max_qubits, a sampling "
                "backend (aer_shots, ibm:*), or `qportfolio baseline`")
        backend = self.make_backend(energies, backend_name, encoding.qubo)
        chosen, device_search = None, None
        if pretrain and self._device_search and hasattr(backend, "fidelity"):
            candidates, encodings = device_candidates(self, problem, encoded, exact, backend)
            chosen = best_candidate(candidates)
            device_search = {"rule": DEVICE_SEARCH_RULE, "chosen": chosen.describe(),
                             "candidates": [c.describe() for c in candidates]}
            self = dataclasses.replace(self, **chosen.settings()).resolved(problem)
            encoded = encodings[chosen.mixer]
            encoding, energies = encoded.encoding, encoded.energies
        warm_start = self.warm_start_probabilities(problem, encoding)
        trainer = make_backend("exact", self.shots, self.seed, energies=energies, precision=self.precision,
                               qubo=encoding.qubo) \
            if pretrain else backend
        start_info = {"backend": backend.name, "warm_start": warm_start}

        @functools.cache  # one circuit per depth: the report's and the search's are one object, transpiled once
        def build(reps):
            return self.build_ansatz(problem, encoding, reps, warm_start)

        if isinstance(backend, JobBackend):
            if hooks.on_job is not None:
                backend.on_job(hooks.on_job)
            # what the device runs at the final depth: layout, depth, errors, the QPU-time estimate
            circuit = chosen.ansatz.circuit if chosen is not None else build(self.reps).circuit
            start_info["hardware"] = backend.hardware_report(circuit, 1, self.shots, self.planned_evaluations() + 1)
        if hooks.on_start is not None:
            hooks.on_start(start_info)

        replay = Replay(hooks.recorded)
        table_of_energies = EnergyTable(encoding.qubo.energies, encoding.num_qubits, energies)
        measure = Objective(self.objective, self.cvar_alpha if self.objective == "cvar" else 1.0, self.gibbs_eta,
                            build(1).cost_scale)
        finals = collect_unrecorded_jobs(hooks.previous_jobs, backend, hooks.recorded, replay, table_of_energies,
                                         measure)

        def make_runner(ansatz, on=trainer, optimizer=self.optimizer, maxiter=self.maxiter):
            return VariationalRunner(ansatz, on, table_of_energies, self.objective, self.cvar_alpha, optimizer,
                                     maxiter, self.shots, self.seed, hooks.on_evaluation, replay, self.gibbs_eta)

        # with pretraining the final samples (and any refinement) come from the target backend, not the trainer
        recorded = None if pretrain else (lambda theta: finals.get(parameter_key(theta)))
        if chosen is not None:  # pretrained while the device search weighed it
            ansatz, stages = chosen.ansatz, [{"reps": chosen.reps, "device_search": chosen.describe()}]
            search = VariationalResult(chosen.parameters, chosen.value, [], "pretrained on exact (device search)",
                                       None, time.perf_counter() - started)
        elif self.search == "adaptive":
            num_selected = problem.num_selected if self.mixer != Mixer.X else None
            work = work_per_evaluation(encoding.num_qubits, num_selected, warm=warm_start is not None)
            ansatz, search, stages = adaptive_search(
                build, self.reps, make_runner, self.maxiter, work,
                WORK_BUDGET if self._auto_budget and trainer.name == "exact" else None,
                lambda reps: trained_angles(self.mixer, reps) if self.algorithm == Algorithm.QAOA and warm_start is None
                else None, recorded_final=recorded)
        else:
            rng = np.random.default_rng(self.seed)
            ansatz, search, stages = variational_search(
                build, self.reps, make_runner, self.maxiter, rng, self.layerwise, self.multistart,
                self.initial_parameters, recorded, self.grid)
        if pretrain:
            search = sample_on_target(ansatz, search, stages, backend, make_runner, finals, self.refine, self.shots)
        seconds = time.perf_counter() - started
        table = decode_samples(search.final, encoding, problem)
        metrics = quality_metrics(table, exact.objective, exact.worst_feasible_objective)
        result = QuantumResult(problem, exact, encoded, ansatz, search, stages, table, metrics, backend.name,
                               seconds, self.settings(), resumed_evaluations=replay.used, warm_start=warm_start,
                               device_search=device_search)
        result.metrics_postselected = postselected_metrics(table, exact.objective, exact.worst_feasible_objective,
                                                           optimal_count(exact), exact.num_feasible)
        raw = getattr(backend, "last_raw", None)
        if raw and isinstance(backend, JobBackend) and backend.options.mitigation == "mthree":  # before mitigation
            result.raw_table = decode_samples(raw[0], encoding, problem)
            result.metrics_raw = quality_metrics(result.raw_table, exact.objective, exact.worst_feasible_objective)
        num_selected = problem.num_selected if self.algorithm == Algorithm.QAOA and self.mixer != Mixer.X else None
        result.random_sampling = random_sampling(problem, encoding, exact, self.shots, self.seed, num_selected)
        if self.postprocess:
            clock = time.perf_counter()
            allocations, probabilities, _, _ = table.by_allocation()
            result.postprocessed = postprocess(problem, allocations, probabilities)
            result.postprocess_seconds = time.perf_counter() - clock
        return result

    def device_candidates(self, problem: DiscreteProblem, encoded: Encoded, exact: ClassicalSolution, backend):
        """:func:`~qportfolio.optimize.device_search.device_candidates` of this solver."""
        return device_candidates(self, problem, encoded, exact, backend)
