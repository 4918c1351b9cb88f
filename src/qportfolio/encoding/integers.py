"""Integers to qubits: ``x = offset + Σ_k c_k b_k`` with bounded or binary coefficients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qportfolio.errors import (
    ProblemError,
)


@dataclass(frozen=True)
class EncodedVariable:
    """One original variable (or a slack) spread over qubits: ``value = offset + Σ coefficients·bits``."""

    name: str
    qubits: tuple[int, ...]
    coefficients: tuple[int, ...]
    offset: int = 0

    @property
    def max_value(self) -> int:
        return self.offset + sum(self.coefficients)




def integer_coefficients(upper: int, encoding: str = "bounded") -> tuple[int, ...]:
    """Coefficients ``c`` with ``{Σ c_k b_k} = [0, upper]`` (bounded) or ``[0, 2^m − 1]`` (binary)."""
    if upper < 0:
        raise ProblemError(f"an integer variable's upper bound must be ≥ 0, got {upper}")
    if upper == 0:
        return ()
    m = int(upper).bit_length()
    powers = tuple(2**k for k in range(m - 1))
    if encoding == "binary":
        return powers + (2 ** (m - 1),)
    return powers + (int(upper) - (2 ** (m - 1) - 1),)


def _expand(value: int, coefficients: tuple[int, ...]) -> np.ndarray:
    """Bits of ``value`` in the (bounded) expansion ``coefficients``; greedy from the top is exact here."""
    bits = np.zeros(len(coefficients), dtype=np.int64)
    if not 0 <= value <= sum(coefficients):
        raise ProblemError(f"value {value} is outside the encodable range [0, {sum(coefficients)}]")
    if coefficients and value > sum(coefficients[:-1]):
        bits[-1], value = 1, value - coefficients[-1]
    for k in range(len(coefficients) - 2, -1, -1):
        if value >= coefficients[k]:
            bits[k], value = 1, value - coefficients[k]
    return bits


