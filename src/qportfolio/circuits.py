"""QAOA and VQE circuit factory.

QAOA (X mixer): ``|ψ(β, γ)⟩ = Π_{l=1..p} e^{−iβ_l Σ X_i} e^{−iγ_l H_C} |+⟩^{⊗n}`` with the diagonal cost
``H_C = Σ h_i Z_i + Σ_{i<j} J_ij Z_i Z_j``, built as ``RZ(2γh_i)`` and ``RZZ(2γJ_ij)`` followed by
``RX(2β)`` (``RZ(θ) = e^{−iθZ/2}``). The cost operator is divided by ``cost_scale``, the standard
deviation of its energy over uniformly random bitstrings, so that angles of order one are meaningful
whatever the units of the portfolio. XY mixers (from a Dicke state) and warm starts: see :func:`qaoa_ansatz`.

Parameter order everywhere in qportfolio: ``θ = (β_1, …, β_p, γ_1, …, γ_p)`` for QAOA (Qiskit's
``QAOAAnsatz`` order), and the ansatz's own ``circuit.parameters`` order for VQE.

VQE: a hardware-efficient ansatz, ``real_amplitudes`` (RY layers) or ``efficient_su2`` (RY, RZ layers),
with ``reps`` entangling layers of CX in the chosen ``entanglement`` pattern; ``reps = 0`` is the rotation layer
alone, a product state (``⊗ RY(θ_i)|0⟩`` for ``real_amplitudes``): no two-qubit gate, classically simulable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import XXPlusYYGate, efficient_su2, real_amplitudes
from qiskit.quantum_info import SparsePauliOp

from qportfolio.choices import Algorithm, Entanglement, Mixer, VQEForm
from qportfolio.errors import ConfigError

ALGORITHMS = Algorithm.values()
MIXERS = Mixer.values()
VQE_FORMS = VQEForm.values()
ENTANGLEMENTS = Entanglement.values()


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


def xy_pairs(n: int, topology: str = "ring") -> list[tuple[int, int]]:
    """Qubit pairs of one XY-mixer layer, in application order: ``ring`` or ``complete``."""
    if topology == "ring":
        return [(0, 1)] if n == 2 else [(i, (i + 1) % n) for i in range(n)]
    if topology == "complete":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    raise ConfigError(f"unknown XY topology {topology!r}: use ring or complete")


def dicke_state_circuit(n: int, k: int) -> QuantumCircuit:
    """``|D^n_k⟩``, the uniform superposition of all weight-k basis states (Bärtschi & Eidenbenz 2019):
    ones on the top k qubits, then split-and-cyclic-shift blocks SCS_{m,min(k,m−1)}, m = n…2: O(nk) gates."""
    if not 0 <= k <= n:
        raise ConfigError(f"a Dicke state needs 0 ≤ k ≤ n, got k={k}, n={n}")
    circuit = QuantumCircuit(n, name=f"dicke_{n}_{k}")
    for qubit in range(n - k, n):
        circuit.x(qubit)
    for m in range(n, 1, -1):
        _split_and_shift(circuit, m, min(k, m - 1))
    return circuit


def _split_and_shift(circuit: QuantumCircuit, m: int, k: int) -> None:
    """SCS_{m,k} on qubits 0..m−1 (qubit m−1 the one split off), from the paper's 1-indexed form."""
    top = m - 1
    for l in range(1, k + 1):
        source = top - l
        angle = 2 * np.arccos(np.sqrt(l / m))
        circuit.cx(source, top)
        if l == 1:
            circuit.cry(angle, top, source)
        else:
            _ccry(circuit, angle, top, source + 1, source)
        circuit.cx(source, top)


def _ccry(circuit: QuantumCircuit, angle: float, first: int, second: int, target: int) -> None:
    """RY(angle) on ``target`` when ``first`` and ``second`` are both 1, from standard gates (so QPY files are
    the same on every export): RY(θ/2)·CCX·RY(−θ/2)·CCX is RY(θ) when the controls are set (X·RY(−a)·X =
    RY(a)) and the identity otherwise."""
    circuit.ry(angle / 2, target)
    circuit.ccx(first, second, target)
    circuit.ry(-angle / 2, target)
    circuit.ccx(first, second, target)


def cost_scale(fields: np.ndarray, couplings: dict) -> float:
    """``√(Σh² + ΣJ²)``: the standard deviation of the cost energy over uniformly random bitstrings
    (Z strings are orthonormal), so that ``γ`` of order one turns the phase by about a radian."""
    scale = float(np.sqrt(np.sum(fields**2) + sum(v * v for v in couplings.values())))
    return scale if scale > 0 else 1.0


def qaoa_ansatz(operator: SparsePauliOp, reps: int, mixer: str = "x", num_selected: int | None = None,
                warm_start: np.ndarray | None = None, scale: float | None = None) -> Ansatz:
    """QAOA for the Ising ``operator``; parameters ``(β_1..β_p, γ_1..γ_p)``.

    ``mixer``: ``x`` (from ``|+⟩ⁿ``), ``xy_ring`` or ``xy_complete`` (``e^{−iβ(XX+YY)/2}`` on each pair, from the
    Dicke state with ``num_selected`` ones: every state keeps exactly that many ones). ``warm_start``
    (Egger et al. 2021): probabilities ``c_i ∈ (0, 1)``; the start is ``⊗ RY(θ_i)|0⟩`` with
    ``θ_i = 2 arcsin √c_i`` and the mixer ``RY(θ_i) RZ(−2β) RY(−θ_i)`` on each qubit (X mixer only).
    ``scale`` replaces :func:`cost_scale` (e.g. the energy spread over the states an XY mixer can reach).
    """
    if reps < 1:
        raise ConfigError(f"solver.reps must be ≥ 1, got {reps}")
    if mixer not in MIXERS:
        raise ConfigError(f"solver.mixer must be one of {MIXERS}, got {mixer!r}")
    fields, couplings = ising_terms(operator)
    scale = float(scale) if scale else cost_scale(fields, couplings)
    n = operator.num_qubits
    beta, gamma = ParameterVector("beta", reps), ParameterVector("gamma", reps)
    circuit = QuantumCircuit(n, name="qaoa")
    description = {"mixer": mixer, "cost_scale": scale}
    if mixer != "x":
        if warm_start is not None:
            raise ConfigError("warm start goes with the X mixer: set solver.mixer: x")
        if num_selected is None:
            raise ConfigError("XY mixers keep the number of selected assets: they need problem.kind: selection")
        circuit.compose(dicke_state_circuit(n, num_selected), inplace=True)
        pairs = xy_pairs(n, mixer.removeprefix("xy_"))
        description.update(initial_state=f"dicke({n},{num_selected})", num_selected=num_selected, pairs=pairs)
    elif warm_start is not None:
        thetas = 2 * np.arcsin(np.sqrt(np.asarray(warm_start, dtype=float)))
        for i, theta in enumerate(thetas):
            circuit.ry(theta, i)
        description.update(initial_state="warm_start", warm_start=[float(c) for c in warm_start])
    else:
        circuit.h(range(n))
        description.update(initial_state="uniform")
    for layer in range(reps):
        for (i, j), value in sorted(couplings.items()):
            circuit.rzz(2 * gamma[layer] * value / scale, i, j)
        for i, value in enumerate(fields):
            if value != 0:
                circuit.rz(2 * gamma[layer] * value / scale, i)
        if mixer != "x":
            for i, j in pairs:
                circuit.append(XXPlusYYGate(2 * beta[layer], 0.0), [i, j])
        elif warm_start is not None:
            for i, theta in enumerate(thetas):
                circuit.ry(-theta, i)
                circuit.rz(-2 * beta[layer], i)
                circuit.ry(theta, i)
        else:
            circuit.rx(2 * beta[layer], range(n))
    circuit.metadata = {"algorithm": "qaoa", "reps": reps, **description}
    return Ansatz(circuit, "qaoa", reps, scale, description)


def qubo_scale(qubo) -> float:
    """VQE's cost scale: the QUBO's largest |coefficient| (1 for an empty QUBO)."""
    scale = max(float(np.max(np.abs(qubo.quadratic), initial=0.0)), float(np.max(np.abs(qubo.linear), initial=0.0)))
    return scale or 1.0


def vqe_ansatz(num_qubits: int, reps: int, form: str = "real_amplitudes", entanglement: str = "linear",
               scale: float = 1.0) -> Ansatz:
    """Hardware-efficient ansatz for VQE (parameters in ``circuit.parameters`` order), its cost divided by
    ``scale`` (:func:`qubo_scale`); ``reps = 0``: one rotation layer, a product state."""
    if reps < 0:
        raise ConfigError(f"solver.reps must be ≥ 0 for VQE, got {reps}")
    if entanglement not in ENTANGLEMENTS:
        raise ConfigError(f"solver.entanglement must be one of {ENTANGLEMENTS}, got {entanglement!r}")
    if form == "real_amplitudes":
        circuit = real_amplitudes(num_qubits, reps=reps, entanglement=entanglement)
    elif form == "efficient_su2":
        circuit = efficient_su2(num_qubits, reps=reps, entanglement=entanglement)
    else:
        raise ConfigError(f"solver.ansatz must be one of {VQE_FORMS}, got {form!r}")
    circuit.metadata = {"algorithm": "vqe", "form": form, "entanglement": entanglement}
    return Ansatz(circuit, "vqe", reps, scale, {"form": form, "entanglement": entanglement})
