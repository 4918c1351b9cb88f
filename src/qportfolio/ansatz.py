"""QAOA and VQE circuit factory.

QAOA (X mixer): ``|ψ(β, γ)⟩ = Π_{l=1..p} e^{−iβ_l Σ X_i} e^{−iγ_l H_C} |+⟩^{⊗n}`` with the diagonal cost
``H_C = Σ h_i Z_i + Σ_{i<j} J_ij Z_i Z_j``, built as ``RZ(2γh_i)`` and ``RZZ(2γJ_ij)`` followed by
``RX(2β)`` (``RZ(θ) = e^{−iθZ/2}``). The cost operator is divided by ``cost_scale`` (its largest
coefficient) so that angles of order one are meaningful whatever the units of the portfolio.

Parameter order everywhere in qportfolio: ``θ = (β_1, …, β_p, γ_1, …, γ_p)`` for QAOA (Qiskit's
``QAOAAnsatz`` order), and the ansatz's own ``circuit.parameters`` order for VQE.

VQE: a hardware-efficient ansatz, ``real_amplitudes`` (RY layers) or ``efficient_su2`` (RY, RZ layers),
with ``reps`` entangling layers of CX in the chosen ``entanglement`` pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import efficient_su2, real_amplitudes
from qiskit.quantum_info import SparsePauliOp

from qportfolio.errors import ConfigError

ALGORITHMS = ("qaoa", "vqe")
VQE_FORMS = ("real_amplitudes", "efficient_su2")
ENTANGLEMENTS = ("linear", "reverse_linear", "circular", "full", "pairwise", "sca")


@dataclass(frozen=True)
class Ansatz:
    """A parametrised circuit (no measurements) and what it was built from."""

    circuit: QuantumCircuit
    algorithm: str
    reps: int
    cost_scale: float
    description: dict

    @property
    def num_parameters(self) -> int:
        return self.circuit.num_parameters

    def measured(self) -> QuantumCircuit:
        circuit = self.circuit.copy()
        circuit.measure_all()
        return circuit


def ising_terms(operator: SparsePauliOp) -> tuple[np.ndarray, dict[tuple[int, int], float]]:
    """Split a diagonal operator (Z and ZZ strings only) into fields ``h`` and couplings ``J``."""
    n = operator.num_qubits
    fields, couplings = np.zeros(n), {}
    for pauli, coefficient in zip(operator.paulis, operator.coeffs):
        if np.any(pauli.x):
            raise ConfigError("the cost operator must be diagonal (Z strings only)")
        support = tuple(int(q) for q in np.flatnonzero(pauli.z))
        if len(support) == 1:
            fields[support[0]] += coefficient.real
        elif len(support) == 2:
            couplings[support] = couplings.get(support, 0.0) + coefficient.real
        elif len(support) > 2:
            raise ConfigError("the cost operator has terms on more than two qubits; QUBOs never do")
    return fields, couplings


def qaoa_ansatz(operator: SparsePauliOp, reps: int) -> Ansatz:
    """QAOA with the X mixer for the Ising ``operator``; parameters ``(β_1..β_p, γ_1..γ_p)``."""
    if reps < 1:
        raise ConfigError(f"solver.reps must be ≥ 1, got {reps}")
    fields, couplings = ising_terms(operator)
    scale = max(np.max(np.abs(fields), initial=0.0), max((abs(v) for v in couplings.values()), default=0.0))
    scale = float(scale) if scale > 0 else 1.0
    n = operator.num_qubits
    beta, gamma = ParameterVector("beta", reps), ParameterVector("gamma", reps)
    circuit = QuantumCircuit(n, name="qaoa")
    circuit.h(range(n))
    for layer in range(reps):
        for (i, j), value in sorted(couplings.items()):
            circuit.rzz(2 * gamma[layer] * value / scale, i, j)
        for i, value in enumerate(fields):
            if value != 0:
                circuit.rz(2 * gamma[layer] * value / scale, i)
        circuit.rx(2 * beta[layer], range(n))
    return Ansatz(circuit, "qaoa", reps, scale, {"mixer": "x", "initial_state": "uniform", "cost_scale": scale})


def vqe_ansatz(num_qubits: int, reps: int, form: str = "real_amplitudes", entanglement: str = "linear") -> Ansatz:
    """Hardware-efficient ansatz for VQE (parameters in ``circuit.parameters`` order)."""
    if reps < 1:
        raise ConfigError(f"solver.reps must be ≥ 1, got {reps}")
    if entanglement not in ENTANGLEMENTS:
        raise ConfigError(f"solver.entanglement must be one of {ENTANGLEMENTS}, got {entanglement!r}")
    if form == "real_amplitudes":
        circuit = real_amplitudes(num_qubits, reps=reps, entanglement=entanglement)
    elif form == "efficient_su2":
        circuit = efficient_su2(num_qubits, reps=reps, entanglement=entanglement)
    else:
        raise ConfigError(f"solver.ansatz must be one of {VQE_FORMS}, got {form!r}")
    return Ansatz(circuit, "vqe", reps, 1.0, {"form": form, "entanglement": entanglement})


def initial_point(ansatz: Ansatz, rng: np.random.Generator) -> np.ndarray:
    """A starting θ: a linear ramp for QAOA (annealing-like), small random angles for VQE."""
    if ansatz.algorithm == "qaoa":
        p = ansatz.reps
        fractions = (np.arange(p) + 0.5) / p
        return np.concatenate([0.5 * (1 - fractions), 0.5 * fractions]) * np.pi / 2
    return rng.uniform(-np.pi / 8, np.pi / 8, ansatz.num_parameters)
