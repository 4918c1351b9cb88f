"""Warm-start QAOA (Egger, Mareček & Woerner 2021): start from the continuous relaxation.

The continuous relaxation of the problem (:func:`qportfolio.classical.continuous_relaxation`, a convex
QP) gives, per qubit, a probability ``c_q`` of reading 1, regularised to ``[ε, 1 − ε]`` so that the mixer
can still move every qubit:

* binary variables (selection): ``c_i = clip(x*_i, ε, 1 − ε)``;
* integer variables (shares): ``x*`` is rounded and encoded (slack qubits at their best setting); the
  bits of that encoding become ``c_q = 1 − ε`` for a one and ``ε`` for a zero.
"""

from __future__ import annotations

import numpy as np

from qportfolio.classical import continuous_relaxation
from qportfolio.encoding import QuboEncoding
from qportfolio.problems import DiscreteProblem, SelectionProblem


def warm_start_probabilities(problem: DiscreteProblem, encoding: QuboEncoding, epsilon: float = 0.25) -> np.ndarray:
    """Per-qubit probabilities ``c_q ∈ [ε, 1 − ε]`` for the warm-start initial state and mixer."""
    relaxed, _ = continuous_relaxation(problem)
    if isinstance(problem, SelectionProblem) and encoding.num_qubits == len(relaxed):
        return np.clip(relaxed, epsilon, 1 - epsilon)
    bits = encoding.encode(np.round(relaxed).astype(np.int64))
    return np.where(bits == 1, 1 - epsilon, epsilon).astype(float)
