"""The quantum solver: a discrete problem in, the sampled answer judged against the exact one out.

``QuantumSolver(...).solve(problem)`` runs the whole pipeline a config run runs:

1. the exact answer (:func:`qportfolio.classical.solve_exact`) unless one is given;
2. the encoding (:meth:`QuantumSolver.encode`): QUBO with the faithful slack resolution, calibrated
   penalties when asked, share windows when the full encoding exceeds the qubit limit, and the
   ground-state check;
3. the ansatz (QAOA with the X or an XY mixer, optionally warm-started, or VQE) and the backend;
4. the parameter search (:func:`qportfolio.optimize.search.variational_search`) and the final samples;
5. decoding, the quality metrics and the classical post-processing of the samples, reported apart.

Every keyword is a ``solver.*``, ``backend.*`` or encoding (``problem.*``) key of a config, with the
same default. The solver writes no file: what a caller wants to keep as it happens (evaluations, job
records, the hardware report) reaches it through :class:`SolveHooks`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qportfolio.backends import EXACT_PROBABILITY_BACKENDS, HARDWARE_PREFIXES, Backend, Distribution, JobBackend, make_backend
from qportfolio.backends.exact import weight_k_states
from qportfolio.backends.ibm.fidelity import predicted_probability
from qportfolio.choices import Algorithm, Mixer, Optimizer, TrainingObjective, check_choice
from qportfolio.circuits import Ansatz, qaoa_ansatz, vqe_ansatz
from qportfolio.classical import ClassicalSolution, enumeration_size, solution_entry, solve_exact
from qportfolio.encoding import (
    MAX_ENUMERATED_QUBITS,
    SLACK_RESOLUTION_DIVISOR,
    Calibration,
    GroundStateCheck,
    QuboEncoding,
    Window,
    bits_of,
    build_quadratic_program,
    UnbalancedCalibration,
    calibrate_penalties,
    calibrate_unbalanced,
    faithful_slack_divisor,
    fit_encoding,
    to_qubo,
    verify_ground_state,
    windowed_program,
)
from qportfolio.errors import ConfigError, QPortfolioError, ResourceError
from qportfolio.evaluation import (
    QualityMetrics,
    SampleTable,
    decode_samples,
    postselected_metrics,
    quality_metrics,
    uniform_distribution,
    uniform_optimum_probability,
)
from qportfolio.objective import Objective
from qportfolio.optimize.hardware_efficient import product_candidate
from qportfolio.optimize.history import Evaluation, Replay, parameter_key
from qportfolio.optimize.objectives import EnergyTable, objective_value
from qportfolio.optimize.runner import VariationalResult, VariationalRunner
from qportfolio.optimize.search import (
    DeviceCandidate,
    adaptive_search,
    best_candidate,
    planned_evaluations,
    variational_search,
)
from qportfolio.optimize.strategies import trained_angles
from qportfolio.postprocess import postprocess
from qportfolio.problems import DiscreteProblem, IntegerSharesProblem, MarkowitzProblem, SelectionProblem
from qportfolio.warmstart import warm_start_probabilities

#: Instances up to this many allocations are enumerated to choose a faithful encoding (dry runs, exports).
ENUMERATE_FOR_ENCODING = 10_000_000

#: The ``backend.*`` keys other than the name, with their defaults (hardware options; ``precision`` for exact).
BACKEND_OPTION_DEFAULTS = {
    "min_qubits": None, "account": None, "channel": None, "instance": None, "connect_timeout": None,
    "calibration_shots": None, "aer_method": None, "execution_mode": "batch", "dynamical_decoupling": False,
    "dd_sequence": "XY4", "twirling": False, "max_execution_time": None, "optimization_level": 2,
    "seed_transpiler": None, "initial_layout": None, "mitigation": "auto", "precision": "complex128",
}
SEARCHES = ("auto", "adaptive", "fixed")
PRETRAINS = ("auto", "none", "exact")
#: Gibbs objective's η (units of the cost scale): chosen on the training suite (η = 4 and 8 within noise).
GIBBS_ETA = 8.0
#: The deepest circuit the adaptive search grows to, by mixer: P(optimum) on the training suite kept rising
#: to p = 16 with the complete XY mixer (subspace evaluations cost ~1 ms); with the X mixer on whole shares
#: encoded without slack (7–16 qubits) the training median rose from 0.27 (p ≤ 8) to 0.48 (16) and 0.60 (24);
#: past ~13 qubits the work budget cuts the depth first.
MAX_AUTO_REPS = {"xy_complete": 16, "xy_ring": 16, "x": 24}
#: The adaptive search's evaluation cap and its work budget (Σ over evaluations of (p + 1)·amplitudes: about
#: 14–24 ns each for the exact kernel's value and gradient at n = 20–22 on this project's 2-core machine, so
#: ≈ 15–25 s).
AUTO_EVALUATIONS = 6000
WORK_BUDGET = 1e9
#: The device search's candidates on hardware targets, ``(mixer, warm start, deepest depth)`` (the XY mixers for
#: selection only): shallow circuits, since every layer costs fidelity on a device; the warm start and the XY
#: mixers' Dicke state cost no cost-layer depth but the latter many two-qubit gates (README "On hardware").
DEVICE_CANDIDATES = (("x", False, 3), ("x", True, 3), ("xy_ring", False, 2), ("xy_complete", False, 1))
#: The fixed search's defaults (the depth and evaluations of a run that sets ``search: fixed``).
FIXED_REPS, FIXED_MAXITER = 2, 100


@dataclass
class SolveHooks:
    """What a caller (a run folder, a study) learns while :meth:`QuantumSolver.solve` runs.

    ``recorded`` evaluations of an earlier attempt are replayed to the optimizer instead of being run
    again; ``previous_jobs`` are that attempt's job records, whose results are collected by id.
    """

    recorded: list[Evaluation] = field(default_factory=list)
    previous_jobs: list[dict] = field(default_factory=list)
    on_evaluation: Callable[[Evaluation], None] | None = None
    on_job: Callable[[dict], None] | None = None
    #: called once before the search with what is known then: ``backend`` (resolved name), ``hardware``
    #: (the device report), ``warm_start`` (per-qubit probabilities)
    on_start: Callable[[dict], None] | None = None


@dataclass
class Encoded:
    """A problem's QUBO encoding with the record of how it was chosen and checked."""

    encoding: QuboEncoding
    slack: dict | None = None
    calibration: Calibration | None = None
    window: Window | None = None
    energies: np.ndarray | None = None
    verification: GroundStateCheck | None = None
    #: how the constraint encoding was chosen (``auto`` / ``unbalanced``): qubits by encoding, the check, any fallback
    choice: dict | None = None

    @property
    def num_qubits(self) -> int:
        return self.encoding.num_qubits

    def describe(self, problem: DiscreteProblem, optimum_allocation=None) -> dict:
        described = self.encoding.describe()
        if self.choice is not None:
            described["choice"] = self.choice
        if self.slack is not None:
            described["slack_resolution"] = self.slack
        if self.calibration is not None:
            described["calibration"] = self.calibration.describe()
        described["window"] = self.window.describe(problem.tickers, optimum_allocation) if self.window \
            else {"applied": False}
        if self.verification is not None:
            described["verification"] = self.verification.describe()
        return described


@dataclass
class QuantumResult:
    """The quantum answer on one instance, beside the exact one.

    ``allocation`` is the best feasible sampled allocation (None when no sample is feasible); the metrics
    are those of :mod:`qportfolio.evaluation` on the final samples.
    """

    problem: DiscreteProblem
    exact: ClassicalSolution
    encoded: Encoded
    ansatz: Ansatz
    search: VariationalResult
    stages: list[dict]
    table: SampleTable
    metrics: QualityMetrics
    backend: str
    seconds: float
    settings: dict
    raw_table: SampleTable | None = None
    metrics_raw: QualityMetrics | None = None
    postprocessed: dict = field(default_factory=dict)
    postprocess_seconds: float = 0.0
    resumed_evaluations: int = 0
    warm_start: np.ndarray | None = None
    #: the uniform-sampling yardstick (:meth:`QuantumSolver._random_sampling`)
    random_sampling: dict = field(default_factory=dict)
    #: the samples that meet the constraints alone (:func:`~qportfolio.evaluation.postselected_metrics`)
    metrics_postselected: dict | None = None
    #: hardware targets: the candidates the device search weighed and the one it chose
    device_search: dict | None = None

    @property
    def uniform_p_optimal(self) -> float | None:
        """P(optimum) of drawing the states the circuit reaches uniformly at random (exact)."""
        return self.random_sampling.get("uniform_p_optimal")

    @property
    def lift(self) -> float | None:
        """``p_optimal / uniform_p_optimal``: how many times more often than chance the optimum is sampled."""
        uniform = self.uniform_p_optimal
        return None if not uniform else self.metrics.p_optimal / uniform

    @property
    def best(self) -> int | None:
        return self.table.best_feasible()

    @property
    def allocation(self) -> dict | None:
        best = self.best
        return None if best is None else self.entry()["allocation"]

    @property
    def objective(self) -> float | None:
        best = self.best
        return None if best is None else float(self.table.evaluation.objective[best])

    @property
    def feasible(self) -> bool:
        return self.best is not None

    @property
    def p_optimal(self) -> float:
        return self.metrics.p_optimal

    @property
    def feasible_fraction(self) -> float:
        return self.metrics.feasible_fraction

    @property
    def approximation_ratio(self) -> float | None:
        return self.metrics.approximation_ratio

    @property
    def history(self) -> list[Evaluation]:
        return self.search.history

    @property
    def samples(self) -> pd.DataFrame:
        """Every distinct sampled bitstring: the columns of ``samples.csv``."""
        return self.table.to_frame(self.problem.tickers)

    def entry(self) -> dict:
        """``solutions.quantum`` of ``result.json``."""
        best = self.best
        if best is None:
            return solution_entry(self.problem, None)
        return solution_entry(self.problem, self.table.allocations[best],
                              probability=float(self.table.probabilities[best]),
                              gap_to_optimum=float(self.table.evaluation.objective[best] - self.exact.objective),
                              time_s=self.seconds)

    def to_dict(self) -> dict:
        """The fields ``result.json`` holds for the quantum run."""
        solutions = {"quantum": self.entry()}
        if self.random_sampling:
            solutions["random_sampling"] = self.random_sampling["entry"]
        for method in ("repaired", "local_search"):
            allocation = self.postprocessed.get(method)
            if allocation is not None:
                objective = float(self.problem.evaluate(np.asarray(allocation)[None, :]).objective[0])
                solutions[f"quantum_{method}"] = solution_entry(
                    self.problem, allocation, time_s=self.postprocess_seconds,
                    gap_to_optimum=objective - self.exact.objective,
                    note="classical post-processing of the quantum samples")
        described = {
            "qubits": self.encoded.num_qubits,
            "solutions": solutions,
            "metrics": {**self.metrics.describe(), "lift": self.lift, "uniform_p_optimal": self.uniform_p_optimal,
                        "reachable_states": self.random_sampling.get("reachable_states")},
            "quantum": {
                **({"warm_start": self.warm_start.tolist()} if self.warm_start is not None else {}),
                "algorithm": self.settings["algorithm"], "reps": self.ansatz.reps, "backend": self.backend,
                "mixer": self.settings["mixer"] if self.settings["algorithm"] == "qaoa" else None,
                "search": self.settings["search"], "objective": self.settings["objective"],
                "pretrain": self.settings["pretrain"],
                "optimizer": self.settings["optimizer"], "evaluations": len(self.search.history),
                "optimizer_message": self.search.optimizer_message, "final_objective_value": self.search.value,
                "optimal_parameters": self.search.parameters.tolist(), "shots": self.settings["shots"],
                "ansatz": self.ansatz.description, "parameters": [p.name for p in self.ansatz.circuit.parameters],
                "circuit_depth": self.ansatz.circuit.decompose().depth(),
            },
            "stages": self.stages,
            "resumed_evaluations": self.resumed_evaluations,
        }
        if self.metrics_raw is not None:
            described["metrics_raw"] = self.metrics_raw.describe()
        if self.metrics_postselected is not None:
            described["metrics_postselected"] = self.metrics_postselected
        if self.device_search is not None:  # the chosen mixer may have its own encoding (selection: x keeps K by penalty)
            described["device_search"] = self.device_search
            described["encoding"] = self.encoded.describe(self.problem, self.exact.allocation)
        return described


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
    constraint_encoding: str = "auto"
    integer_encoding: str = "bounded"
    penalty: float | dict | str = "calibrated"
    slack_resolution: float | dict | str = "auto"
    max_qubits: int | None = None
    narrowing: str = "auto"
    time_limit: float = 60.0
    # backend.*: the name (or a backend object) and its options
    backend: str | Backend = "exact"
    seed: int = 7
    precision: str = "complex128"
    min_qubits: int | None = None
    account: str | None = None
    channel: str | None = None
    instance: str | None = None
    connect_timeout: float | None = None
    calibration_shots: int | None = None
    aer_method: str | None = None
    execution_mode: str = "batch"
    dynamical_decoupling: bool = False
    dd_sequence: str = "XY4"
    twirling: bool = False
    max_execution_time: int | None = None
    optimization_level: int = 2
    seed_transpiler: int | None = None
    initial_layout: list[int] | None = None
    mitigation: str = "auto"
    max_qpu_seconds: float | None = None

    def __post_init__(self):
        self.algorithm = check_choice(self.algorithm, Algorithm, "solver.algorithm", ConfigError)
        if self.mixer != "auto":
            self.mixer = check_choice(self.mixer, Mixer, "solver.mixer", ConfigError)
        if self.optimizer != "auto":
            self.optimizer = check_choice(self.optimizer, Optimizer, "solver.optimizer", ConfigError)
        if self.objective != "auto":
            self.objective = check_choice(self.objective, TrainingObjective, "solver.objective", ConfigError)
        for key, allowed in (("search", SEARCHES), ("pretrain", PRETRAINS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"solver.{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        if self.warm_start not in (True, False, "auto"):
            raise ConfigError(f"solver.warm_start must be true, false or auto, got {self.warm_start!r}")
        if self.algorithm == Algorithm.VQE and (self.mixer not in ("auto", Mixer.X) or self.warm_start is True
                                                or self.layerwise):
            raise ConfigError("solver.mixer, warm_start and layerwise are QAOA options: remove them for VQE")

    def resolved(self, problem: DiscreteProblem) -> QuantumSolver:
        """A copy with every ``auto`` setting chosen for ``problem`` (the defaults measured on the training
        suite, README "Defaults"): the complete XY mixer for selection, the X mixer otherwise; the adaptive
        search (depth grown up to :data:`MAX_AUTO_REPS`, trained angles, ramps, INTERP) unless a fixed-search
        option is set; L-BFGS-B on exact gradients where the training backend has them, else COBYLA; the
        Gibbs objective (η = 8); pretraining on the exact simulator for hardware targets that fit it, where
        (mixer, depth and warm start left to the tool) the device search of :meth:`device_candidates` chooses
        the circuit when the run solves."""
        values = {}
        if self.mixer == "auto":
            values["mixer"] = Mixer.XY_COMPLETE.value if (
                self.algorithm == Algorithm.QAOA and isinstance(problem, SelectionProblem) and self.warm_start is not True
            ) else Mixer.X.value
        mixer = values.get("mixer", self.mixer)
        if self.warm_start == "auto":
            # measured on the training suite: integer shares, median P(optimum) 0.053 warm vs 0.026 from |+⟩ⁿ
            values["warm_start"] = (self.algorithm == Algorithm.QAOA and mixer == Mixer.X
                                    and isinstance(problem, IntegerSharesProblem))
        search = self.search
        if search == "auto":
            fixed = (self.algorithm == Algorithm.VQE or self.layerwise or self.multistart > 1 or self.grid
                     or self.initial_parameters is not None)
            search = values["search"] = "fixed" if fixed else "adaptive"
        if self.pretrain == "auto":
            family = self.backend_name.split(":")[0]
            values["pretrain"] = "exact" if family in HARDWARE_PREFIXES else "none"
        training_backend = "exact" if values.get("pretrain", self.pretrain) == "exact" else self.backend_name
        if self.objective == "auto":
            values["objective"] = TrainingObjective.GIBBS.value
        objective = values.get("objective", self.objective)
        if self.optimizer == "auto":
            gradient = training_backend == "exact" and self.algorithm == Algorithm.QAOA and objective != "cvar"
            values["optimizer"] = Optimizer.L_BFGS_B.value if gradient else Optimizer.COBYLA.value
        if self.reps is None:
            values["reps"] = MAX_AUTO_REPS[mixer] if search == "adaptive" else FIXED_REPS
        if self.maxiter is None:
            values["maxiter"] = AUTO_EVALUATIONS if search == "adaptive" else FIXED_MAXITER
        if not values:
            return self
        resolved = dataclasses.replace(self, **values)
        resolved._auto_budget = self.maxiter is None  # the work budget applies only to a budget left to the tool
        # hardware targets: mixer and depth chosen by the P(optimum) predicted on the device (device_candidates)
        resolved._device_search = (self.backend_name.split(":")[0] in HARDWARE_PREFIXES and self.mixer == "auto"
                                   and self.reps is None and self.warm_start == "auto" and search == "adaptive"
                                   and self.algorithm == Algorithm.QAOA and resolved.pretrain == "exact")
        return resolved

    #: whether the adaptive search also stops at :data:`WORK_BUDGET` (set by :meth:`resolved`)
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
        options = {key: getattr(self, key) for key, default in BACKEND_OPTION_DEFAULTS.items()
                   if getattr(self, key) != default}
        if self.backend_name.split(":")[0] in HARDWARE_PREFIXES:
            options.setdefault("seed_transpiler", self.seed)
        return options

    def qubit_limit(self) -> int | None:
        """``max_qubits``, or what the exact-probability simulators hold (their 2ⁿ energy table); None on hardware."""
        if self.max_qubits is not None:
            return self.max_qubits
        return None if self.backend_name.startswith("ibm") else MAX_ENUMERATED_QUBITS

    def planned_evaluations(self, problem: DiscreteProblem | None = None) -> int:
        """The objective evaluations the search will make at most on the configured backend (one circuit each):
        with pretraining, only the ``refine`` evaluations; the adaptive search's cap; or the fixed search's count."""
        solver = self.resolved(problem) if problem is not None else self
        if solver.pretrain == "exact":  # COBYLA makes at least 2p + 2 evaluations
            return max(solver.refine, 2 * solver.reps + 2) if solver.refine else 0
        if solver.search == "adaptive":
            return solver.maxiter or AUTO_EVALUATIONS
        return planned_evaluations(solver.algorithm, solver.reps or FIXED_REPS, solver.maxiter or FIXED_MAXITER,
                                   solver.optimizer if solver.optimizer != "auto" else "cobyla", solver.layerwise,
                                   solver.multistart, solver.grid)

    # ------------------------------------------------------------------ encoding

    def encode(self, problem: DiscreteProblem, optimum=None, for_circuit: bool = True,
               optimal_objective: float | None = None) -> Encoded:
        """The QUBO encoding of ``problem`` with the record of how it was made: the constraint encoding, the slack
        resolution, penalty calibration (``penalty: calibrated``) and share windows (when the full encoding does
        not fit); and, up to :data:`MAX_ENUMERATED_QUBITS`, the energy table and the ground-state check.

        ``constraint_encoding: auto`` (and ``unbalanced``) with calibrated penalties tries the slack-free encoding
        first (:func:`~qportfolio.encoding.calibrate_unbalanced`: it has the fewest qubits) and keeps it when its
        ground state is checked to be the feasible optimum; otherwise it falls back to slack and says so in
        :attr:`Encoded.choice`. Problems without inequalities (selection) are encoded as with ``slack``.
        With ``slack_resolution: auto`` and a known optimum (given, or found by enumeration when the instance
        is small), the resolution is the coarsest that keeps the optimum feasible in the encoding.
        ``for_circuit=False`` (the QUBO only feeds classical samplers): no qubit limit, no window.
        """
        if isinstance(problem, MarkowitzProblem):
            raise ConfigError("markowitz has continuous weights: it has no QUBO; solve it with solve_exact")
        self = self.resolved(problem)
        requested = self.constraint_encoding
        if requested not in ("auto", "unbalanced") or not isinstance(problem, IntegerSharesProblem):
            return self._encode_as(problem, "slack" if requested == "auto" else requested, optimum, for_circuit,
                                   optimal_objective)
        if self.penalty != "calibrated":
            if requested == "unbalanced":  # the user's coefficients, checked but kept
                return self._encode_as(problem, requested, optimum, for_circuit, optimal_objective)
            encoded = self._encode_as(problem, "slack", optimum, for_circuit, optimal_objective)
            encoded.choice = {"requested": requested, "chosen": "slack", "fallback": False,
                              "reason": "explicit penalties are slack penalties: auto calibrates only its own"}
            return encoded
        if optimum is None and enumeration_size(problem) <= ENUMERATE_FOR_ENCODING:
            optimum = solve_exact(problem).allocation
        calibrations: list[UnbalancedCalibration] = []

        def encode(program):
            encoding, calibration = calibrate_unbalanced(problem, program, self.integer_encoding, optimum)
            calibrations.append(calibration)
            return encoding

        encoding, window = fit_encoding(problem, self.qubit_limit() if for_circuit else None, self.narrowing, encode)
        calibration = calibrations[-1]
        slack_qubits = self._slack_qubits(problem, optimum)
        choice = {"requested": requested, "qubits": {"slack": slack_qubits, "no_slack": encoding.num_qubits},
                  "qubits_saved": None if slack_qubits is None else slack_qubits - encoding.num_qubits,
                  "checked_by": calibration.checked_by, "calibration": calibration.describe()}
        if not calibration.verified:
            encoded = self._encode_as(problem, "slack", optimum, for_circuit, optimal_objective)
            choice.update(chosen="slack", fallback=True, qubits_saved=0,
                          reason=f"fell back to slack: {calibration.reason}")
            encoded.choice = choice
            return encoded
        choice.update(chosen=encoding.constraint_encoding, fallback=False, reason=calibration.reason)
        encoded = Encoded(encoding, window=window, choice=choice)
        if encoding.num_qubits <= MAX_ENUMERATED_QUBITS:
            encoded.energies = encoding.qubo.all_energies()
        encoded.verification = verify_ground_state(problem, encoding, optimal_objective, encoded.energies)
        return encoded

    def _slack_qubits(self, problem: DiscreteProblem, optimum) -> int | None:
        """Qubits of the full slack encoding (at the faithful resolution when the optimum is known): the yardstick
        of the qubits a slack-free encoding saves."""
        try:
            divisor = SLACK_RESOLUTION_DIVISOR
            if optimum is not None and self.slack_resolution == "auto":
                divisor, _ = faithful_slack_divisor(problem, optimum, lambda d: to_qubo(
                    problem, "slack", "auto", "auto", self.integer_encoding, slack_divisor=d))
            return to_qubo(problem, "slack", "auto", self.slack_resolution, self.integer_encoding,
                           slack_divisor=divisor).num_qubits
        except QPortfolioError:
            return None

    def _encode_as(self, problem: DiscreteProblem, constraint_encoding: str, optimum, for_circuit: bool,
                   optimal_objective: float | None) -> Encoded:
        """The encoding with every constraint encoded as ``constraint_encoding`` (slack, squared or unbalanced)."""
        penalty = "auto" if self.penalty == "calibrated" else self.penalty
        if self.mixer != Mixer.X and isinstance(problem, SelectionProblem):
            # The XY mixer keeps 1ᵀx = K on every state it reaches: the cardinality penalty would only
            # add a constant there, so the cost operator is the objective alone.
            penalty = {"cardinality": 0.0}
        encoded = Encoded(None)
        divisor = SLACK_RESOLUTION_DIVISOR
        if self.slack_resolution == "auto" and constraint_encoding == "slack":
            if optimum is None and enumeration_size(problem) <= ENUMERATE_FOR_ENCODING:
                optimum = solve_exact(problem).allocation
            if optimum is not None:
                divisor, kept = faithful_slack_divisor(problem, optimum, lambda d: to_qubo(
                    problem, constraint_encoding, penalty, "auto", self.integer_encoding, slack_divisor=d))
                encoded.slack = {"divisor": divisor, "keeps_exact_optimum": kept,
                                 "rule": "coarsest resolution min|coefficient|/divisor whose encoding keeps the "
                                         "optimum feasible"}

        def encode(program):
            return to_qubo(problem, constraint_encoding, penalty, self.slack_resolution, self.integer_encoding,
                           program, divisor)

        encoding, encoded.window = fit_encoding(problem, self.qubit_limit() if for_circuit else None,
                                                self.narrowing, encode)
        if self.penalty == "calibrated" and penalty == "auto" and constraint_encoding != "unbalanced":
            window = encoded.window
            program = windowed_program(problem, window.lower, window.upper) if window else build_quadratic_program(problem)
            encoding, encoded.calibration = calibrate_penalties(problem, constraint_encoding, self.slack_resolution,
                                                                self.integer_encoding, program, slack_divisor=divisor)
        encoded.encoding = encoding
        if encoding.num_qubits <= MAX_ENUMERATED_QUBITS:
            encoded.energies = encoding.qubo.all_energies()
        encoded.verification = verify_ground_state(problem, encoding, optimal_objective, encoded.energies)
        return encoded

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
        ansatz = vqe_ansatz(encoding.num_qubits, reps, self.ansatz, self.entanglement)
        q = encoding.qubo
        scale = max(float(np.max(np.abs(q.quadratic), initial=0.0)), float(np.max(np.abs(q.linear))))
        return dataclasses.replace(ansatz, cost_scale=scale or 1.0)

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
        same encoding); ``backend_name`` pins a resolved device (a resumed ``ibm:least_busy`` run).
        """
        if isinstance(problem, MarkowitzProblem):
            raise ConfigError("markowitz has continuous weights: it is solved classically, with solve_exact")
        self = self.resolved(problem)
        hooks = hooks or SolveHooks()
        started = time.perf_counter()
        if exact is None:
            exact = solve_exact(problem, self.time_limit, self.seed)
        if encoded is None:
            encoded = self.encode(problem, exact.allocation if exact.proven_optimal else None,
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
            candidates, encodings = self.device_candidates(problem, encoded, exact, backend)
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
        if isinstance(backend, JobBackend):
            if hooks.on_job is not None:
                backend.on_job(hooks.on_job)
            # what the device runs at the final depth: layout, depth, errors, the QPU-time estimate
            circuit = chosen.ansatz.circuit if chosen is not None else self.prepare_ansatz(problem, encoding).circuit
            start_info["hardware"] = backend.hardware_report(circuit, 1, self.shots, self.planned_evaluations() + 1)
        if hooks.on_start is not None:
            hooks.on_start(start_info)

        replay = Replay(hooks.recorded)
        table_of_energies = EnergyTable(encoding.qubo.energies, encoding.num_qubits, energies)

        def build(reps):
            return self.build_ansatz(problem, encoding, reps, warm_start)

        measure = Objective(self.objective, self.cvar_alpha if self.objective == "cvar" else 1.0, self.gibbs_eta,
                            build(1).cost_scale)
        finals = _collect_unrecorded_jobs(hooks.previous_jobs, backend, hooks.recorded, replay, table_of_energies,
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
            work = _work_per_evaluation(encoding.num_qubits, num_selected, warm=warm_start is not None)
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
            search = self._sample_on_target(ansatz, search, stages, backend, make_runner, finals)
        seconds = time.perf_counter() - started
        table = decode_samples(search.final, encoding, problem)
        metrics = quality_metrics(table, exact.objective, exact.worst_feasible_objective)
        result = QuantumResult(problem, exact, encoded, ansatz, search, stages, table, metrics, backend.name,
                               seconds, self.settings(), resumed_evaluations=replay.used, warm_start=warm_start,
                               device_search=device_search)
        result.metrics_postselected = postselected_metrics(table, exact.objective, exact.worst_feasible_objective,
                                                           _optimal_count(exact), exact.num_feasible)
        raw = getattr(backend, "last_raw", None)
        if raw and self.mitigation != "none":  # the final samples before readout mitigation
            result.raw_table = decode_samples(raw[0], encoding, problem)
            result.metrics_raw = quality_metrics(result.raw_table, exact.objective, exact.worst_feasible_objective)
        result.random_sampling = self._random_sampling(problem, encoding, exact)
        if self.postprocess:
            clock = time.perf_counter()
            allocations, probabilities, _, _ = table.by_allocation()
            result.postprocessed = postprocess(problem, allocations, probabilities)
            result.postprocess_seconds = time.perf_counter() - clock
        return result

    # ------------------------------------------------------------------ the device search

    def device_candidates(self, problem: DiscreteProblem, encoded: Encoded, exact: ClassicalSolution,
                          backend) -> tuple[list[DeviceCandidate], dict[str, Encoded]]:
        """Every circuit of :data:`DEVICE_CANDIDATES` (each mixer's adaptive search on the exact simulator up to
        its depth gives one candidate per depth), transpiled for ``backend`` with the run's pass manager, with
        its estimated fidelity ``F`` on that device and its predicted sampled P(optimum)
        ``F·P_ideal + (1 − F)·P_U`` (``P_U``: uniform over all ``2ⁿ`` bitstrings); also each mixer's encoding."""
        self = self.resolved(problem)
        optimum = exact.allocation if exact.proven_optimal else None
        candidates, encodings = [], {}
        for mixer, warm_start, depth in DEVICE_CANDIDATES:
            if mixer != Mixer.X and not isinstance(problem, SelectionProblem):
                continue
            solver = dataclasses.replace(self, mixer=mixer, reps=depth, warm_start=warm_start).resolved(problem)
            same = (mixer == Mixer.X) == (self.mixer == Mixer.X)  # the encoding depends on whether the mixer keeps K
            enc = encodings.get(mixer) or (encoded if same else solver.encode(problem, optimum,
                                                                             optimal_objective=exact.objective))
            if enc.energies is None:
                continue
            encodings[mixer] = enc
            warm = solver.warm_start_probabilities(problem, enc.encoding)
            trainer = make_backend("exact", self.shots, self.seed, energies=enc.energies, precision=self.precision,
                                   qubo=enc.encoding.qubo)
            table = EnergyTable(enc.encoding.qubo.energies, enc.encoding.num_qubits, enc.energies)
            found: list = []
            num_selected = problem.num_selected if mixer != Mixer.X else None
            adaptive_search(
                lambda reps: solver.build_ansatz(problem, enc.encoding, reps, warm), depth,
                lambda ansatz: VariationalRunner(ansatz, trainer, table, solver.objective, solver.cvar_alpha,
                                                 solver.optimizer, solver.maxiter, solver.shots, solver.seed,
                                                 gibbs_eta=solver.gibbs_eta),
                solver.maxiter, _work_per_evaluation(enc.encoding.num_qubits, num_selected, warm is not None),
                WORK_BUDGET, lambda reps: trained_angles(mixer, reps) if warm is None else None,
                on_depth=lambda ansatz, theta, value: found.append((ansatz, np.array(theta), value)))
            noise = _uniform_metrics(problem, enc.encoding, exact)
            for ansatz, theta, value in found:
                ideal = quality_metrics(decode_samples(trainer.distributions(ansatz.circuit, theta)[0], enc.encoding,
                                                       problem), exact.objective, exact.worst_feasible_objective)
                device = backend.fidelity(ansatz.circuit)
                fidelity = device["fidelity"]
                candidates.append(DeviceCandidate(
                    str(mixer), warm is not None, ansatz.reps, ansatz, theta, value, ideal.describe(), device,
                    predicted_probability(fidelity, ideal.p_optimal, noise.p_optimal),
                    predicted_probability(fidelity, ideal.feasible_fraction, noise.feasible_fraction)))
        if not isinstance(problem, SelectionProblem) and Mixer.X in encodings:  # whole shares: the RY product state
            enc = encodings[Mixer.X]
            candidates.append(product_candidate(problem, enc, exact, backend, _uniform_metrics(problem, enc.encoding, exact),
                                                warm_start_probabilities(problem, enc.encoding, self.warm_start_epsilon),
                                                self.shots, self.seed, self.precision))
        return candidates, encodings

    def _sample_on_target(self, ansatz, search: VariationalResult, stages: list[dict], backend: Backend,
                          make_runner, finals: dict) -> VariationalResult:
        """Angles trained on the exact simulator, optionally refined by ``refine`` COBYLA evaluations on the
        target, then sampled there: on hardware one job (plus the refinement's) instead of one per evaluation."""
        theta, value, message = search.parameters, search.value, search.optimizer_message
        if self.refine:
            runner = make_runner(ansatz, on=backend, optimizer="cobyla", maxiter=self.refine)
            runner.history = search.history
            first = len(search.history)
            theta, value, message = runner.optimize(theta, self.refine)
            stages.append({"reps": ansatz.reps, "refine_on": backend.name, "value": float(value),
                           "evaluations": len(search.history) - first})
        final = finals.get(parameter_key(theta)) or backend.sample(ansatz.circuit, theta, self.shots)
        stages.append({"reps": ansatz.reps, "pretrained_on": "exact", "sampled_on": backend.name})
        return VariationalResult(np.asarray(theta), float(value), search.history, message, final, search.seconds)

    def _random_sampling(self, problem: DiscreteProblem, encoding: QuboEncoding, exact: ClassicalSolution) -> dict:
        """The yardstick: the same shots drawn uniformly over the states the circuit reaches, decoded and judged
        the same way, and the exact uniform P(optimum) that :attr:`QuantumResult.lift` divides by."""
        num_selected = problem.num_selected if self.algorithm == Algorithm.QAOA and self.mixer != Mixer.X else None
        rng = np.random.default_rng([self.seed, 1])
        table = decode_samples(uniform_distribution(encoding.num_qubits, self.shots, rng, num_selected), encoding,
                               problem)
        metrics = quality_metrics(table, exact.objective, exact.worst_feasible_objective)
        optimal = exact.optimal_allocations if exact.optimal_allocations is not None else exact.allocation
        uniform = uniform_optimum_probability(encoding, optimal, num_selected) if exact.proven_optimal else None
        best = table.best_feasible()
        entry = solution_entry(problem, None if best is None else table.allocations[best],
                               gap_to_optimum=None if best is None else
                               float(table.evaluation.objective[best] - exact.objective),
                               note="uniform samples over the states the circuit reaches (same shots, same decoding)",
                               **metrics.describe())
        return {"entry": entry, "uniform_p_optimal": uniform,
                "reachable_states": math.comb(encoding.num_qubits, num_selected) if num_selected else 2**encoding.num_qubits}


DEVICE_SEARCH_RULE = ("each candidate pretrained on the exact simulator, transpiled for the target; predicted "
                      "P(optimum) = F·P_ideal + (1 − F)·P_uniform(2ⁿ), F from the target's gate errors (and idle "
                      "time against T2 on a device; readout errors unless mitigated); the highest prediction is run")


def _uniform_metrics(problem: DiscreteProblem, encoding: QuboEncoding, exact: ClassicalSolution) -> QualityMetrics:
    """P(optimum) and the feasible fraction of the uniform distribution over all ``2ⁿ`` bitstrings (exact):
    where global depolarising noise sends a circuit's samples."""
    n = encoding.num_qubits
    uniform = Distribution(np.arange(2**n, dtype=np.int64), np.full(2**n, 2.0**-n), None)
    return quality_metrics(decode_samples(uniform, encoding, problem), exact.objective, exact.worst_feasible_objective)


def _optimal_count(exact: ClassicalSolution) -> int | None:
    """How many allocations are optimal (None when the optimum is not proven)."""
    if not exact.proven_optimal:
        return None
    return 1 if exact.optimal_allocations is None else len(exact.optimal_allocations)


def _work_per_evaluation(num_qubits: int, num_selected: int | None, warm: bool = False):
    """The cost of one evaluation at depth ``p`` in amplitude-layers: ``(p + 1)·2ⁿ`` on the full space (1.25
    times that for warm-start mixers: their value and gradient measured 1.0–1.7× the X mixer's at n = 20–22),
    and on the K-of-N subspace ``(p + 1)·C(n, K)`` times the pairs each state meets (the complete mixer's
    rotations)."""
    size = 2.0**num_qubits if num_selected is None else math.comb(num_qubits, num_selected) * (
        1 + num_selected * (num_qubits - num_selected) / max(num_qubits, 1))
    factor = 1.25 if warm else 1.0
    return lambda reps: factor * (reps + 1) * size


def _collect_unrecorded_jobs(jobs: list[dict], backend: Backend, history: list[Evaluation], replay: Replay,
                             energies: EnergyTable, objective: Objective) -> dict:
    """Jobs an interrupted attempt submitted but never recorded a result for: fetch their results instead of
    paying for them again. Evaluations join the replay; final samples are returned by parameter key.
    A job that cannot be fetched (local testing mode: it lived in the process that died) is run again."""
    if not isinstance(backend, JobBackend):
        return {}
    recorded = {}
    for evaluation in history:
        key = parameter_key(evaluation.parameters)
        recorded[key] = recorded.get(key, 0) + 1
    finals: dict[tuple, Distribution] = {}
    for job in jobs:
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
                replay.add(Evaluation(-1, [float(t) for t in theta], objective_value(distribution, energies, objective), 0.0))
    return finals
