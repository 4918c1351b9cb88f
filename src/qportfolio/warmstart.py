"""Warm-start QAOA (Egger, Mareček & Woerner 2021): start from the continuous relaxation.

The continuous relaxation of the problem (:func:`qportfolio.classical.continuous_relaxation`, a convex
QP) gives, per qubit, a probability ``c_q`` of reading 1, regularised to ``[ε, 1 − ε]`` so that the mixer
can still move every qubit:

* binary variables (selection): ``c_i = clip(x*_i, ε, 1 − ε)``;
* integer variables (shares): ``x*`` rounded to a *feasible* allocation (relax-and-round: floor, repair the
  return floor, fill the budget; :func:`qportfolio.classical.heuristics.relax_and_round`), or to the nearest
  integers where that finds none or the encoding cannot hold it, is encoded (slack qubits at their best
  setting); the bits of that encoding become ``c_q = 1 − ε`` for a one and ``ε`` for a zero. On the training
  suite the feasible rounding raised the median P(optimum) of whole shares without slack from 0.60 to 0.72
  and the feasible fraction from 0.69 to 0.85 (results/benchmarks/defaults_train_integer_levers.md).
"""

from __future__ import annotations

import numpy as np

from qportfolio.classical import continuous_relaxation
from qportfolio.classical.heuristics import relax_and_round
from qportfolio.encoding import QuboEncoding
from qportfolio.errors import ProblemError
from qportfolio.problems import DiscreteProblem, SelectionProblem


def warm_start_probabilities(problem: DiscreteProblem, encoding: QuboEncoding, epsilon: float = 0.25) -> np.ndarray:
    """Per-qubit probabilities ``c_q ∈ [ε, 1 − ε]`` for the warm-start initial state and mixer."""
    relaxed, _ = continuous_relaxation(problem)
    if isinstance(problem, SelectionProblem) and encoding.num_qubits == len(relaxed):
        return np.clip(relaxed, epsilon, 1 - epsilon)
    bits = None
    rounded = relax_and_round(problem).get("allocation")
    if rounded is not None:
        try:
            bits = encoding.encode(np.array([rounded[t] for t in problem.tickers], dtype=np.int64))
        except ProblemError:  # outside a share window
            bits = None
    if bits is None:
        bits = encoding.encode(np.round(relaxed).astype(np.int64))
    return np.where(bits == 1, 1 - epsilon, epsilon).astype(float)
