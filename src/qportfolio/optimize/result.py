"""The quantum answer on one instance (:class:`QuantumResult`), the fields of ``result.json`` it fills and the
uniform-sampling yardstick reported beside it (:func:`random_sampling`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qportfolio.circuits import Ansatz
from qportfolio.classical import ClassicalSolution, solution_entry
from qportfolio.classical.solution import allocation_dict
from qportfolio.encoding import Encoded, QuboEncoding
from qportfolio.evaluation import (
    QualityMetrics,
    SampleTable,
    decode_samples,
    quality_metrics,
    uniform_distribution,
    uniform_optimum_probability,
)
from qportfolio.optimize.history import OptimizerCall
from qportfolio.optimize.runner import VariationalResult
from qportfolio.problems import DiscreteProblem


@dataclass(repr=False)
class QuantumResult:
    """The quantum answer on one instance, beside the exact one.

    ``allocation`` is the best feasible sampled allocation (None when no sample is feasible); the metrics
    are those of :mod:`qportfolio.evaluation` on the final samples; ``objective``, ``variance``,
    ``expected_return``, ``cost`` and ``feasible`` are that allocation's (None without one, but ``feasible``).
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
    #: the uniform-sampling yardstick (:func:`random_sampling`)
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
        return None if best is None else allocation_dict(self.problem, self.table.allocations[best])

    def _measure(self, name: str) -> float | None:
        """The best feasible sample's ``name`` on the original problem (None when no sample is feasible)."""
        best = self.best
        return None if best is None else float(getattr(self.table.evaluation, name)[best])

    objective = property(lambda self: self._measure("objective"))
    variance = property(lambda self: self._measure("variance"))
    expected_return = property(lambda self: self._measure("expected_return"))
    cost = property(lambda self: self._measure("cost"))

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
    def history(self) -> list[OptimizerCall]:
        return self.search.history

    def __repr__(self) -> str:
        objective = None if self.objective is None else float(f"{self.objective:.6g}")
        return (f"QuantumResult(allocation={self.allocation}, objective={objective}, feasible={self.feasible}, "
                f"p_optimal={self.p_optimal:.4g}, qubits={self.encoded.num_qubits}, backend={self.backend!r})")

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
            described["encoding"] = self.encoded.describe(self.problem, self.exact.vector)
        return described


def random_sampling(problem: DiscreteProblem, encoding: QuboEncoding, exact: ClassicalSolution, shots: int, seed: int,
                    num_selected: int | None) -> dict:
    """The yardstick: the same shots drawn uniformly over the states the circuit reaches, decoded and judged
    the same way, and the exact uniform P(optimum) that :attr:`QuantumResult.lift` divides by (``num_selected``:
    the circuit keeps ``K`` ones, the XY mixers)."""
    rng = np.random.default_rng([seed, 1])
    table = decode_samples(uniform_distribution(encoding.num_qubits, shots, rng, num_selected), encoding,
                           problem)
    metrics = quality_metrics(table, exact.objective, exact.worst_feasible_objective)
    optimal = exact.optimal_allocations if exact.optimal_allocations is not None else exact.vector
    uniform = uniform_optimum_probability(encoding, optimal, num_selected) if exact.proven_optimal else None
    best = table.best_feasible()
    entry = solution_entry(problem, None if best is None else table.allocations[best],
                           gap_to_optimum=None if best is None else
                           float(table.evaluation.objective[best] - exact.objective),
                           note="uniform samples over the states the circuit reaches (same shots, same decoding)",
                           **metrics.describe())
    return {"entry": entry, "uniform_p_optimal": uniform,
            "reachable_states": math.comb(encoding.num_qubits, num_selected) if num_selected else 2**encoding.num_qubits}


def optimal_count(exact: ClassicalSolution) -> int | None:
    """How many allocations are optimal (None when the optimum is not proven)."""
    if not exact.proven_optimal:
        return None
    return 1 if exact.optimal_allocations is None else len(exact.optimal_allocations)
