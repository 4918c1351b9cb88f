"""Fitting realistic integer instances into few qubits: a window of share counts per asset.

The full range ``x_i ∈ [0, U_i]`` takes ``⌈log₂(U_i + 1)⌉`` qubits per asset. A window ``[l_i, l_i + w_i]`` with
``w_i = 2^{m_i} − 1`` takes ``m_i``. Windows are centred on the continuous relaxation ``x*``:
``l_i = clip(round(x*_i) − ⌊w_i/2⌋, 0, U_i − w_i)``. Bits come off the widest window first, until
decision and slack qubits together fit. The window is an encoding choice, not a change to the problem:
samples are judged on the full problem, and the exact optimum is the full problem's. Where the full box
can be enumerated, the result says whether the window contains that optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qportfolio.classical.relaxation import continuous_relaxation
from qportfolio.encoding.program_to_qubo import QuboEncoding
from qportfolio.encoding.program import build_quadratic_program
from qportfolio.errors import (
    ProblemError,
)
from qportfolio.problems import (
    IntegerSharesProblem,
)


@dataclass(frozen=True)
class Window:
    lower: np.ndarray
    upper: np.ndarray
    relaxed: np.ndarray
    full_qubits: int
    qubits: int

    def describe(self, tickers, optimum=None) -> dict:
        out = {"applied": True, "lower": dict(zip(tickers, self.lower.tolist())),
               "upper": dict(zip(tickers, self.upper.tolist())),
               "relaxation": dict(zip(tickers, np.round(self.relaxed, 4).tolist())),
               "full_encoding_qubits": self.full_qubits, "qubits": self.qubits}
        if optimum is not None:
            out["contains_exact_optimum"] = bool(np.all((optimum >= self.lower) & (optimum <= self.upper)))
        return out


def windowed_program(problem: IntegerSharesProblem, lower: np.ndarray, upper: np.ndarray):
    program = build_quadratic_program(problem)
    for variable, low, high in zip(program.variables, lower, upper):
        variable.lowerbound, variable.upperbound = int(low), int(high)
    return program


def narrow(problem: IntegerSharesProblem, max_qubits: int, encode, full_qubits: int) -> tuple[QuboEncoding, Window]:
    """The widest windows whose encoding fits ``max_qubits``; ``encode(program)`` builds the QUBO."""
    relaxed, _ = continuous_relaxation(problem)
    upper_bounds = problem.upper_bounds.astype(np.int64)
    bits = np.array([int(u).bit_length() for u in upper_bounds])
    while True:
        widths = np.minimum(2**bits - 1, upper_bounds)
        lower = np.clip(np.round(relaxed).astype(np.int64) - widths // 2, 0, upper_bounds - widths)
        upper = lower + widths
        try:
            encoding = encode(windowed_program(problem, lower, upper))
        except ProblemError:
            encoding = None  # this window admits no feasible allocation: narrow further from the centre
        if encoding is not None and encoding.num_qubits <= max_qubits:
            return encoding, Window(lower, upper, relaxed, full_qubits, encoding.num_qubits)
        if bits.max() <= 1:
            raise ProblemError(
                f"even one qubit per asset does not fit problem.max_qubits = {max_qubits} with the slack qubits: "
                "raise max_qubits, use fewer assets, or constraint_encoding: squared (no slack)"
            )
        bits[int(np.argmax(bits))] -= 1


def fit_encoding(problem, max_qubits: int | None, narrowing: str, encode) -> tuple[QuboEncoding, Window | None]:
    """The full encoding if it fits (or narrowing is off), else the narrowed one."""
    full = encode(build_quadratic_program(problem))
    if max_qubits is None or full.num_qubits <= max_qubits or narrowing == "off" \
            or not isinstance(problem, IntegerSharesProblem):
        return full, None
    return narrow(problem, max_qubits, encode, full.num_qubits)
