"""The QUBO ``E(b) = bᵀQb + cᵀb + const`` and its Ising form."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from qiskit.quantum_info import SparsePauliOp
from qiskit_optimization import QuadraticProgram

from qportfolio.encoding.energies import qubo_diagonal, qubo_ground_index
from qportfolio.memory import require_memory


@dataclass(frozen=True)
class Qubo:
    """``E(b) = bᵀ Q b + cᵀ b + const`` over bits ``b ∈ {0,1}ᴺ``, ``Q`` strictly upper-triangular."""

    quadratic: np.ndarray
    linear: np.ndarray
    constant: float

    @property
    def num_variables(self) -> int:
        return len(self.linear)

    def energies(self, bits) -> np.ndarray:
        """Energies of the rows of ``bits`` (shape ``(m, N)``)."""
        b = np.atleast_2d(np.asarray(bits, dtype=float))
        return np.einsum("ij,ij->i", b @ self.quadratic, b) + b @ self.linear + self.constant

    def all_energies(self) -> np.ndarray:
        """``E`` for every basis index ``z`` (bit ``i`` of ``z`` is variable ``i``), by the simulator's
        O(2ᴺ) kernel; the table's 8·2ᴺ bytes are checked against free memory first."""
        n = self.num_variables
        require_memory(8 * 2**n, f"the {n}-qubit QUBO's 2^{n} energies")
        return qubo_diagonal(self.quadratic, self.linear, self.constant)

    def ground_index(self) -> int:
        """``argmin_z E(z)`` (the first on ties) over every basis index, without keeping the 2ᴺ table."""
        return qubo_ground_index(self.quadratic, self.linear, self.constant)

    def to_quadratic_program(self, names: list[str] | None = None) -> QuadraticProgram:
        program = QuadraticProgram(name="qubo")
        names = names or [f"b{i}" for i in range(self.num_variables)]
        for name in names:
            program.binary_var(name=name)
        program.minimize(constant=self.constant, linear=self.linear, quadratic=self.quadratic)
        return program

    def to_ising(self) -> tuple[SparsePauliOp, float]:
        """``(H, offset)`` with ``E(b) = ⟨b|H|b⟩ + offset`` (qubit ``i`` ↔ bit ``i``); computed once."""
        return self._ising

    @cached_property
    def _ising(self) -> tuple[SparsePauliOp, float]:
        return self.to_quadratic_program().to_ising()


def bits_of(indices, num_bits: int) -> np.ndarray:
    """Rows of bits (bit ``i`` in column ``i``) of the basis indices ``indices``."""
    return (np.asarray(indices, dtype=np.int64)[:, None] >> np.arange(num_bits)) & 1

