"""The device search on hardware targets: which circuit to run, chosen by the P(optimum) predicted on the device.

Each candidate of :data:`DEVICE_CANDIDATES` is pretrained on the exact simulator (:func:`device_candidates`),
transpiled for the target and weighed by ``F·P_ideal + (1 − F)·P_uniform`` (:func:`best_candidate`); the
chosen one is sampled on the target (:func:`sample_on_target`), after an optional refinement there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from qportfolio.backends import Backend, Distribution, make_backend
from qportfolio.backends.ibm.fidelity import predicted_probability
from qportfolio.choices import Mixer
from qportfolio.circuits import Ansatz
from qportfolio.classical import ClassicalSolution
from qportfolio.encoding import Encoded, QuboEncoding
from qportfolio.evaluation import QualityMetrics, decode_samples, quality_metrics
from qportfolio.optimize.auto import WORK_BUDGET, work_per_evaluation
from qportfolio.optimize.hardware_efficient import PRODUCT_SETTINGS, train_product
from qportfolio.optimize.history import parameter_key
from qportfolio.optimize.energy_table import EnergyTable
from qportfolio.optimize.runner import VariationalResult, VariationalRunner
from qportfolio.optimize.search import adaptive_search
from qportfolio.optimize.strategies import trained_angles
from qportfolio.problems import DiscreteProblem, SelectionProblem
from qportfolio.warmstart import warm_start_probabilities

#: The device search's candidates on hardware targets, ``(mixer, warm start, deepest depth)`` (the XY mixers for
#: selection only): shallow circuits, since every layer costs fidelity on a device; the warm start and the XY
#: mixers' Dicke state cost no cost-layer depth but the latter many two-qubit gates (README "On hardware").
DEVICE_CANDIDATES = (("x", False, 3), ("x", True, 3), ("xy_ring", False, 2), ("xy_complete", False, 1))
DEVICE_SEARCH_RULE = ("each candidate pretrained on the exact simulator, transpiled for the target; predicted "
                      "P(optimum) = F·P_ideal + (1 − F)·P_uniform(2ⁿ), F from the target's gate errors (and idle "
                      "time against T2 on a device; readout errors unless mitigated); the highest prediction is run")


@dataclass
class DeviceCandidate:
    """One circuit the device search weighs: its angles pretrained on the exact simulator, what sampling it
    exactly would give (``ideal``: P(optimum), feasible fraction), what the device makes of it (``device``:
    ISA two-qubit depth, estimated fidelity F) and the prediction ``F·P_ideal + (1 − F)·P_noise``."""

    mixer: str
    warm_start: bool
    reps: int
    ansatz: Ansatz
    parameters: np.ndarray
    value: float
    ideal: dict
    device: dict
    predicted_p_optimal: float
    predicted_feasible_fraction: float
    #: a hardware-efficient candidate's form (``ry_product``) and the ``QuantumSolver`` settings that run it
    form: str | None = None
    form_settings: dict | None = None

    def settings(self) -> dict:
        """The ``QuantumSolver`` settings that run this circuit."""
        return dict(self.form_settings or {"mixer": self.mixer, "reps": self.reps, "warm_start": self.warm_start})

    @property
    def predicted_p_optimal_postselected(self) -> float | None:
        """Predicted P(optimum) among the feasible samples."""
        return self.predicted_p_optimal / self.predicted_feasible_fraction if self.predicted_feasible_fraction else None

    def describe(self) -> dict:
        return {"mixer": self.form or str(self.mixer), "warm_start": self.warm_start, "reps": self.reps, "two_qubit_depth": self.device.get("two_qubit_depth"),
                "two_qubit_gates": self.device.get("two_qubit_gate_count"),
                "estimated_fidelity": self.device.get("fidelity"), "ideal_p_optimal": self.ideal["p_optimal"],
                "predicted_p_optimal": self.predicted_p_optimal,
                "predicted_p_optimal_postselected": self.predicted_p_optimal_postselected}


def best_candidate(candidates: list[DeviceCandidate]) -> DeviceCandidate:
    """The candidate with the highest predicted sampled P(optimum); ties go to the shallower ISA circuit."""
    if not candidates:
        raise ValueError("no device candidates")
    return max(candidates, key=lambda c: (round(c.predicted_p_optimal, 12), -(c.device.get("two_qubit_depth") or 0)))


def device_candidates(solver, problem: DiscreteProblem, encoded: Encoded, exact: ClassicalSolution,
                      backend) -> tuple[list[DeviceCandidate], dict[str, Encoded]]:
    """Every circuit of :data:`DEVICE_CANDIDATES` for the :class:`~qportfolio.optimize.QuantumSolver` ``solver``
    (each mixer's adaptive search on the exact simulator up to its depth gives one candidate per depth),
    transpiled for ``backend`` with the run's pass manager, with its estimated fidelity ``F`` on that device and
    its predicted sampled P(optimum) ``F·P_ideal + (1 − F)·P_U`` (``P_U``: uniform over all ``2ⁿ`` bitstrings);
    also each mixer's encoding."""
    base = solver.resolved(problem)
    optimum = exact.vector if exact.proven_optimal else None
    candidates, encodings, noise = [], {}, {}  # noise: each encoding's uniform-distribution metrics
    for mixer, warm_start, depth in DEVICE_CANDIDATES:
        if mixer != Mixer.X and not isinstance(problem, SelectionProblem):
            continue
        trial = dataclasses.replace(base, mixer=mixer, reps=depth, warm_start=warm_start).resolved(problem)
        same = (mixer == Mixer.X) == (base.mixer == Mixer.X)  # the encoding depends on whether the mixer keeps K
        enc = encodings.get(mixer) or (encoded if same else trial.encode(problem, optimum,
                                                                        optimal_objective=exact.objective))
        if enc.energies is None:
            continue
        if mixer not in encodings:
            encodings[mixer], noise[mixer] = enc, uniform_metrics(problem, enc.encoding, exact)
        warm = trial.warm_start_probabilities(problem, enc.encoding)
        trainer = make_backend("exact", base.shots, base.seed, energies=enc.energies, precision=base.precision,
                               qubo=enc.encoding.qubo)
        table = EnergyTable(enc.encoding.qubo.energies, enc.encoding.num_qubits, enc.energies)
        found: list = []
        num_selected = problem.num_selected if mixer != Mixer.X else None
        adaptive_search(
            lambda reps: trial.build_ansatz(problem, enc.encoding, reps, warm), depth,
            lambda ansatz: VariationalRunner(ansatz, trainer, table, trial.objective, trial.cvar_alpha, trial.optimizer,
                                             trial.maxiter, trial.shots, trial.seed, gibbs_eta=trial.gibbs_eta),
            trial.maxiter, work_per_evaluation(enc.encoding.num_qubits, num_selected, warm is not None),
            WORK_BUDGET, lambda reps: trained_angles(mixer, reps) if warm is None else None,
            on_depth=lambda ansatz, theta, value: found.append((ansatz, np.array(theta), value)))
        for ansatz, theta, value in found:
            candidates.append(_candidate(problem, enc, exact, noise[mixer], backend, trainer, ansatz, theta, value,
                                         str(mixer), warm is not None))
    if not isinstance(problem, SelectionProblem) and Mixer.X in encodings:  # whole shares: the RY product state
        enc = encodings[Mixer.X]
        warm = warm_start_probabilities(problem, enc.encoding, base.warm_start_epsilon)
        ansatz, theta, value, trainer = train_product(enc, warm, base.shots, base.seed, base.precision)
        candidates.append(_candidate(problem, enc, exact, noise[Mixer.X], backend, trainer, ansatz, theta, value,
                                     Mixer.X.value, False, form="ry_product", form_settings=PRODUCT_SETTINGS))
    return candidates, encodings


def _candidate(problem: DiscreteProblem, enc: Encoded, exact: ClassicalSolution, noise: QualityMetrics, backend,
               trainer: Backend, ansatz: Ansatz, theta: np.ndarray, value: float, mixer: str, warm_start: bool,
               **form) -> DeviceCandidate:
    """One trained circuit as a candidate: its ideal metrics on ``trainer`` (the exact simulator), its fidelity
    ``F`` on ``backend`` and the prediction ``F·P_ideal + (1 − F)·P_U`` (``noise``: :func:`uniform_metrics`)."""
    ideal = quality_metrics(decode_samples(trainer.distributions(ansatz.circuit, theta)[0], enc.encoding, problem),
                            exact.objective, exact.worst_feasible_objective)
    device = backend.fidelity(ansatz.circuit)
    fidelity = device["fidelity"]
    return DeviceCandidate(mixer, warm_start, ansatz.reps, ansatz, theta, value, ideal.describe(), device,
                           predicted_probability(fidelity, ideal.p_optimal, noise.p_optimal),
                           predicted_probability(fidelity, ideal.feasible_fraction, noise.feasible_fraction), **form)


def sample_on_target(ansatz: Ansatz, search: VariationalResult, stages: list[dict], backend: Backend, make_runner,
                     finals: dict[tuple, Distribution], refine: int, shots: int) -> VariationalResult:
    """Angles trained on the exact simulator, optionally refined by ``refine`` COBYLA evaluations on the
    target, then sampled there: on hardware one job (plus the refinement's) instead of one per evaluation."""
    theta, value, message = search.parameters, search.value, search.optimizer_message
    if refine:
        runner = make_runner(ansatz, on=backend, optimizer="cobyla", maxiter=refine)
        runner.history = search.history
        first = len(search.history)
        theta, value, message = runner.optimize(theta, refine)
        stages.append({"reps": ansatz.reps, "refine_on": backend.name, "value": float(value),
                       "evaluations": len(search.history) - first})
    final = finals.get(parameter_key(theta)) or backend.sample(ansatz.circuit, theta, shots)
    stages.append({"reps": ansatz.reps, "pretrained_on": "exact", "sampled_on": backend.name})
    return VariationalResult(np.asarray(theta), float(value), search.history, message, final, search.seconds)


def uniform_metrics(problem: DiscreteProblem, encoding: QuboEncoding, exact: ClassicalSolution) -> QualityMetrics:
    """P(optimum) and the feasible fraction of the uniform distribution over all ``2ⁿ`` bitstrings (exact):
    where global depolarising noise sends a circuit's samples."""
    n = encoding.num_qubits
    uniform = Distribution(np.arange(2**n, dtype=np.int64), np.full(2**n, 2.0**-n), None)
    return quality_metrics(decode_samples(uniform, encoding, problem), exact.objective, exact.worst_feasible_objective)
