"""Circuits against independent paths: Aer vs qiskit.quantum_info.Statevector vs a numpy formula."""

import numpy as np
import pytest
from qiskit.quantum_info import Statevector

from qportfolio.backends import AerShotsBackend, AerStatevectorBackend
from qportfolio.circuits import qaoa_ansatz, vqe_ansatz
from qportfolio.encoding import to_qubo
from qportfolio.optimize.strategies import linear_ramp


def qaoa_by_formula(energies, scale, theta, n):
    """|ψ⟩ = Π_l e^{−iβ_l ΣX} e^{−iγ_l E/scale} |+⟩ with explicit 2×2 rotations."""
    p = len(theta) // 2
    beta, gamma = theta[:p], theta[p:]
    psi = np.full(2**n, 2 ** (-n / 2), dtype=complex)
    for layer in range(p):
        psi = psi * np.exp(-1j * gamma[layer] * energies / scale)
        rx = np.array([[np.cos(beta[layer]), -1j * np.sin(beta[layer])],
                       [-1j * np.sin(beta[layer]), np.cos(beta[layer])]])
        for q in range(n):
            psi = psi.reshape(2 ** (n - q - 1), 2, 2**q)
            psi = np.einsum("ab,ibj->iaj", rx, psi).reshape(-1)
    return psi


def test_qaoa_circuit_is_the_textbook_evolution(selection_problem, rng):
    encoding = to_qubo(selection_problem)
    operator, _ = encoding.qubo.to_ising()
    ansatz = qaoa_ansatz(operator, reps=2)
    assert [p.name for p in ansatz.circuit.parameters] == ["beta[0]", "beta[1]", "gamma[0]", "gamma[1]"]
    theta = rng.uniform(-1, 1, 4)
    circuit_state = Statevector(ansatz.circuit.assign_parameters(theta)).data
    formula = qaoa_by_formula(encoding.qubo.all_energies(), ansatz.cost_scale, theta, encoding.num_qubits)
    overlap = abs(np.vdot(formula, circuit_state))
    assert overlap == pytest.approx(1.0, abs=1e-10)  # equal up to the global phase of the offset


@pytest.mark.parametrize("algorithm", ["qaoa", "vqe"])
def test_aer_statevector_probabilities_equal_quantum_info(algorithm, shares_problem, rng):
    encoding = to_qubo(shares_problem)
    if algorithm == "qaoa":
        ansatz = qaoa_ansatz(encoding.qubo.to_ising()[0], reps=2)
    else:
        ansatz = vqe_ansatz(encoding.num_qubits, 2, "efficient_su2", "circular")
    thetas = rng.uniform(-np.pi, np.pi, (2, ansatz.num_parameters))
    aer = AerStatevectorBackend(seed=1).distributions(ansatz.circuit, thetas)
    for theta, distribution in zip(thetas, aer):
        reference = Statevector(ansatz.circuit.assign_parameters(theta)).probabilities()
        np.testing.assert_allclose(distribution.probabilities, reference, atol=1e-10)


def test_aer_shots_sample_the_exact_distribution(selection_problem, rng):
    encoding = to_qubo(selection_problem)
    ansatz = qaoa_ansatz(encoding.qubo.to_ising()[0], reps=1)
    theta = linear_ramp(1)
    exact = Statevector(ansatz.circuit.assign_parameters(theta)).probabilities()
    shots = 20000
    sampled = AerShotsBackend(shots, seed=3).sample(ansatz.circuit, theta, shots)
    empirical = np.zeros_like(exact)
    empirical[sampled.indices] = sampled.probabilities
    assert sampled.shots == shots
    assert 0.5 * np.abs(empirical - exact).sum() < 0.03  # total variation distance
