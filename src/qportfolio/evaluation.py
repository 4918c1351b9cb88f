"""From sampled basis states to allocations, judged on the original constrained problem.

For a distribution ``P`` over decoded allocations with objectives ``f`` (lower is better), the exact
optimum ``f*`` and the worst feasible objective ``f_worst``:

* ``p_optimal = Σ P(x)`` over the optimal allocations (``f(x) = f*``, feasible);
* ``feasible_fraction = Σ P(x)`` over feasible allocations;
* ``approximation_ratio = Σ P(x)·r(x)`` with ``r(x) = (f_worst − f(x)) / (f_worst − f*)`` for feasible ``x``
  and ``r = 0`` for infeasible ones: 1.0 means all mass on optima, 0 the worst feasible answer or worse.

The quantum answer is the best feasible sampled allocation.

Post-selection keeps only the samples whose decoded allocation meets every constraint (for a selection:
the samples that hold K assets) and renormalises: ``p_optimal_postselected = p_optimal / feasible_fraction``;
its yardstick is uniform sampling of the feasible allocations, ``#optimal / #feasible``
(:func:`postselected_metrics`). The raw metrics stay the run's ``metrics``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qportfolio.backends.base import Distribution
from qportfolio.classical import optimum_tolerance
from qportfolio.encoding import QuboEncoding, bits_of
from qportfolio.memory import require_memory
from qportfolio.problems import DiscreteProblem, Evaluation


@dataclass(frozen=True)
class SampleTable:
    """Distinct sampled states with their probability, decoded allocation and metrics."""

    indices: np.ndarray
    probabilities: np.ndarray
    allocations: np.ndarray
    evaluation: Evaluation
    qubo_energies: np.ndarray
    shots: int | None
    num_qubits: int

    def bitstrings(self) -> list[str]:
        """Qiskit-order labels: qubit 0 is the rightmost character."""
        width = f"0{self.num_qubits}b"
        return [format(i, width) for i in np.asarray(self.indices, dtype=np.int64).tolist()]

    def to_frame(self, tickers) -> pd.DataFrame:
        """One row per distinct sampled bitstring: probability, count, the decoded allocation by ticker, its
        metrics on the original problem and its QUBO energy (the columns of ``samples.csv``)."""
        e = self.evaluation
        counts = None if self.shots is None else np.rint(self.probabilities * self.shots).astype(np.int64)
        frame = pd.DataFrame({"bitstring": self.bitstrings(), "probability": self.probabilities, "count": counts})
        for column, ticker in enumerate(tickers):
            frame[ticker] = self.allocations[:, column]
        for name in ("objective", "variance", "expected_return", "cost", "feasible"):
            frame[name] = getattr(e, name)
        frame["qubo_energy"] = self.qubo_energies
        return frame

    def by_allocation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Distinct allocations (bitstrings differing only in slack bits merged), most likely first:
        ``(allocations, probabilities, objectives, feasible)``."""
        unique, inverse = np.unique(self.allocations, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        probabilities = np.bincount(inverse, weights=self.probabilities, minlength=len(unique))
        first = np.full(len(unique), -1)
        first[inverse[::-1]] = np.arange(len(inverse))[::-1]
        order = np.argsort(-probabilities, kind="stable")
        return (unique[order], probabilities[order], self.evaluation.objective[first][order],
                self.evaluation.feasible[first][order])

    def best_feasible(self) -> int | None:
        """Row of the feasible sample with the lowest objective, or None."""
        if not np.any(self.evaluation.feasible):
            return None
        objective = np.where(self.evaluation.feasible, self.evaluation.objective, np.inf)
        return int(np.argmin(objective))


#: Peak bytes of decoding one state, per qubit and per asset, and fixed (tracemalloc at 14 and 18 qubits: 48 a qubit
#: for selection, where assets = qubits, and about 70 more).
DECODE_BYTES_PER_COLUMN, DECODE_BYTES_PER_STATE = 24, 100


def decode_samples(distribution: Distribution, encoding: QuboEncoding, problem: DiscreteProblem) -> SampleTable:
    """The distribution's states as a table: bits, allocations, their evaluation and QUBO energies, most probable
    first (memory checked first: a full 2ⁿ distribution at 26 qubits needs tens of GiB)."""
    columns = encoding.num_qubits + len(problem.tickers)
    if len(distribution.indices) > 1 << 16:  # a sample of shots never comes near it
        require_memory(len(distribution.indices) * (DECODE_BYTES_PER_COLUMN * columns + DECODE_BYTES_PER_STATE),
                       f"decoding {len(distribution.indices):,} states of {encoding.num_qubits} qubits")
    bits = bits_of(distribution.indices, encoding.num_qubits)
    allocations = encoding.decode(bits)
    order = np.argsort(-distribution.probabilities, kind="stable")
    return SampleTable(
        distribution.indices[order], distribution.probabilities[order], allocations[order],
        problem.evaluate(allocations[order]), encoding.qubo.energies(bits[order]), distribution.shots,
        encoding.num_qubits,
    )


@dataclass(frozen=True)
class QualityMetrics:
    p_optimal: float
    feasible_fraction: float
    approximation_ratio: float | None

    def describe(self) -> dict:
        return {"p_optimal": self.p_optimal, "feasible_fraction": self.feasible_fraction,
                "approximation_ratio": self.approximation_ratio}


def quality_metrics(table: SampleTable, optimum: float, worst_feasible: float | None) -> QualityMetrics:
    """The three metrics; the approximation ratio is None when the worst feasible objective is unknown
    (an instance too large to enumerate, whose optimum came from SCIP)."""
    feasible = table.evaluation.feasible
    objective = table.evaluation.objective
    tolerance = optimum_tolerance(optimum)
    optimal = feasible & (objective <= optimum + tolerance)
    p = table.probabilities / table.probabilities.sum()
    if worst_feasible is None:
        return QualityMetrics(float(p[optimal].sum()), float(p[feasible].sum()), None)
    span = worst_feasible - optimum
    if span > tolerance:
        ratio = np.where(feasible, (worst_feasible - objective) / span, 0.0)
    else:
        ratio = np.where(feasible, 1.0, 0.0)
    return QualityMetrics(float(p[optimal].sum()), float(p[feasible].sum()), float(np.clip(ratio, 0, 1) @ p))


def uniform_distribution(num_qubits: int, shots: int, rng: np.random.Generator,
                         num_selected: int | None = None) -> Distribution:
    """``shots`` basis states drawn uniformly from those a circuit can reach: all ``2ⁿ`` bitstrings, or with an
    XY mixer (``num_selected`` = K) the ``C(n, K)`` states of weight K — the honest yardstick for a sampler."""
    if num_selected is None:
        drawn = rng.integers(0, 1 << num_qubits, size=shots, dtype=np.int64)
    else:
        chosen = np.argsort(rng.random((shots, num_qubits)), axis=1)[:, :num_selected]
        drawn = np.sum(np.left_shift(np.int64(1), chosen.astype(np.int64)), axis=1)
    indices, counts = np.unique(drawn, return_counts=True)
    return Distribution(indices, counts / shots, shots)


def uniform_optimum_probability(encoding: QuboEncoding, optimal_allocations: np.ndarray,
                                num_selected: int | None = None) -> float:
    """P(optimum) of uniform sampling over the reachable states, exactly: the share of reachable bitstrings that
    decode to an optimal allocation. A variable's value ``x`` has as many bit patterns as subsets of its
    coefficients sum to ``x − offset``; slack bits are free; under an XY mixer every optimum is one of ``C(n, K)``."""
    optimal = np.atleast_2d(np.asarray(optimal_allocations, dtype=np.int64))
    if num_selected is not None:
        return len(optimal) / math.comb(encoding.num_qubits, num_selected)
    patterns = 0
    for allocation in optimal:
        ways = 1
        for variable, value in zip(encoding.variables, allocation):
            sums = bits_of(np.arange(1 << len(variable.coefficients)), len(variable.coefficients)) @ np.asarray(
                variable.coefficients, dtype=np.int64)
            ways *= int(np.count_nonzero(sums == value - variable.offset))
        patterns += ways
    free = encoding.num_qubits - encoding.num_decision_qubits
    return patterns * 2.0**free / 2.0**encoding.num_qubits


def postselected_metrics(table: SampleTable, optimum: float, worst_feasible: float | None,
                         optimal_count: int | None = None, feasible_count: int | None = None) -> dict:
    """The metrics of the samples that meet the constraints, renormalised among themselves, with the share of
    shots kept and the lift over uniform sampling of the ``feasible_count`` feasible allocations (of which
    ``optimal_count`` are optimal). Nothing kept: P(optimum) None, kept 0."""
    feasible = table.evaluation.feasible
    p = table.probabilities / table.probabilities.sum()
    kept = float(p[feasible].sum())
    uniform = optimal_count / feasible_count if optimal_count and feasible_count else None
    out = {"p_optimal": None, "approximation_ratio": None, "kept_fraction": kept,
           "shots": table.shots, "shots_kept": None if table.shots is None else int(round(kept * table.shots)),
           "uniform_p_optimal": uniform, "feasible_allocations": feasible_count, "lift": None,
           "rule": "samples whose decoded allocation meets every constraint, renormalised"}
    if kept <= 0:
        return out
    selected = SampleTable(table.indices[feasible], table.probabilities[feasible], table.allocations[feasible],
                           Evaluation(**{name: getattr(table.evaluation, name)[feasible]
                                         for name in Evaluation.__dataclass_fields__}),
                           table.qubo_energies[feasible], table.shots, table.num_qubits)
    metrics = quality_metrics(selected, optimum, worst_feasible)
    out.update(p_optimal=metrics.p_optimal, approximation_ratio=metrics.approximation_ratio,
               lift=None if uniform is None else metrics.p_optimal / uniform)
    return out
