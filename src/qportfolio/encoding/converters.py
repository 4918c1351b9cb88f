"""The three transformations as converters, each with ``convert`` and ``interpret`` (qiskit-optimization's shape).

``interpret`` always goes back one step: Ising spins → QUBO bits → the problem's allocation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit.quantum_info import SparsePauliOp
from qiskit_optimization import QuadraticProgram

from qportfolio.encoding.penalties import SLACK_RESOLUTION_DIVISOR, QuboEncoding, to_qubo
from qportfolio.encoding.program import build_quadratic_program
from qportfolio.encoding.qubo import Qubo
from qportfolio.problems import DiscreteProblem, PortfolioProblem


class ProblemToProgram:
    """A problem → its constrained ``QuadraticProgram`` (one variable per asset, in ticker order)."""

    def convert(self, problem: PortfolioProblem) -> QuadraticProgram:
        return build_quadratic_program(problem)

    def interpret(self, x) -> np.ndarray:
        """The program's variable values are the allocation itself."""
        return np.asarray(x)


@dataclass(frozen=True)
class ProgramToQubo:
    """A discrete problem's program → a :class:`QuboEncoding`: integers to qubits, constraints to penalties."""

    constraint_encoding: str = "slack"
    penalty: float | dict | str = "auto"
    slack_resolution: float | dict | str = "auto"
    integer_encoding: str = "bounded"
    slack_divisor: int = SLACK_RESOLUTION_DIVISOR

    def convert(self, problem: DiscreteProblem, program: QuadraticProgram | None = None) -> QuboEncoding:
        return to_qubo(problem, self.constraint_encoding, self.penalty, self.slack_resolution, self.integer_encoding,
                       program, self.slack_divisor)

    @staticmethod
    def interpret(encoding: QuboEncoding, bits) -> np.ndarray:
        """Allocations ``(m, n)`` of bit rows ``(m, N)`` (slack bits ignored)."""
        return encoding.decode(bits)


class QuboToIsing:
    """A QUBO → ``(H, offset)`` with ``E(b) = ⟨b|H|b⟩ + offset``, ``b_i = (1 − z_i)/2`` on qubit ``i``."""

    def convert(self, qubo: Qubo) -> tuple[SparsePauliOp, float]:
        return qubo.to_ising()

    @staticmethod
    def interpret(spins) -> np.ndarray:
        """Bits of spin rows (``z = ±1``): ``b = (1 − z)/2``."""
        return ((1 - np.asarray(spins, dtype=np.int64)) // 2).astype(np.int64)
