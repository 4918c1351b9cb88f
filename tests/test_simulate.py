"""The simulators agree with Qiskit's Statevector (and Aer) on circuits built with Qiskit."""

from itertools import combinations
from math import comb

import numpy as np
import pytest
from conftest import engine_on_one_and_two_threads
from qiskit import QuantumCircuit
from qiskit.circuit.library import StatePreparation, XXPlusYYGate, efficient_su2, real_amplitudes
from qiskit.quantum_info import SparsePauliOp, Statevector

from qportfolio.backends.exact import (
    CircuitSimulator,
    QAOASimulator,
    SubspaceQAOASimulator,
    XYQAOASimulator,
    dicke_state,
    weight_k_states,
)
from qportfolio.backends.exact.single_qubit import apply_x_rotations, apply_x_rotations_pair, x_rotation_coefficients
from qportfolio.circuits import xy_pairs
from qportfolio.encoding import qubo_diagonal, qubo_energies
from qportfolio.errors import ResourceError

TOL = 1e-9


def random_qubo(n, seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, n))  # deliberately neither symmetric nor triangular
    return q, rng.normal(size=n), float(rng.normal())


def brute_energies(q, c, const):
    n = len(c)
    x = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(float)
    return np.einsum("zi,ij,zj->z", x, q, x) + x @ c + const


def ising(q, c, const):
    """E = offset + Σ h_i Z_i + Σ_{i<j} J_ij Z_i Z_j, using x_i = (1 - Z_i)/2."""
    n = len(c)
    s = q + q.T
    h = np.zeros(n)
    j = np.zeros((n, n))
    offset = const
    for i in range(n):
        offset += (q[i, i] + c[i]) / 2
        h[i] -= (q[i, i] + c[i]) / 2
        for k in range(i + 1, n):
            offset += s[i, k] / 4
            h[i] -= s[i, k] / 4
            h[k] -= s[i, k] / 4
            j[i, k] = s[i, k] / 4
    return offset, h, j


def cost_layer(qc, gamma, h, j):
    n = len(h)
    for i in range(n):
        qc.rz(2 * gamma * h[i], i)
    for i, k in combinations(range(n), 2):
        qc.rzz(2 * gamma * j[i, k], i, k)


def x_mixer_circuit(theta, h, j, scale=1.0):
    n, p = len(h), len(theta) // 2
    qc = QuantumCircuit(n)
    qc.h(range(n))
    for layer in range(p):
        cost_layer(qc, scale * theta[p + layer], h, j)
        for i in range(n):
            qc.rx(2 * theta[layer], i)
    return qc


def xy_circuit(theta, h, j, k, pairs):
    n, p = len(h), len(theta) // 2
    qc = QuantumCircuit(n)
    qc.append(StatePreparation(dicke_state(n, k)), range(n))
    for layer in range(p):
        cost_layer(qc, theta[p + layer], h, j)
        for a, b in pairs:
            qc.append(XXPlusYYGate(2 * theta[layer], 0.0), [a, b])
    return qc


def reference_cvar(prob, energy, alpha):
    order = np.argsort(energy)
    mass, total = 0.0, 0.0
    for z in order:
        take = min(prob[z], alpha - mass)
        if take <= 0:
            break
        total += take * energy[z]
        mass += take
    return total / alpha


def test_qubo_diagonal_matches_brute_force():
    for n, seed in [(1, 0), (5, 1), (13, 2)]:
        q, c, const = random_qubo(n, seed)
        np.testing.assert_allclose(qubo_diagonal(q, c, const), brute_energies(q, c, const), atol=1e-10)
    q, c, const = random_qubo(6, 3)
    np.testing.assert_allclose(qubo_diagonal(np.triu(q + q.T) - np.diag(np.diag(q)), c, const),
                               brute_energies(q, c, const), atol=1e-10)
    states = weight_k_states(6, 2)
    np.testing.assert_allclose(qubo_energies(q, c, const, states), brute_energies(q, c, const)[states], atol=1e-10)


@pytest.mark.parametrize("n", [1, 4, 12, 13, 15])
def test_qubo_ground_index_is_the_first_minimum_of_brute_force(n):
    from qportfolio.encoding.energies import qubo_ground_index

    rng = np.random.default_rng(n)
    for integer in (False, True):  # small integers: many tied minima, the first must win
        q, c = (np.triu(rng.integers(-2, 3, (n, n))).astype(float), rng.integers(-2, 3, n).astype(float)) \
            if integer else random_qubo(n, n)[:2]
        energies = brute_energies(q, c, 0.5)
        assert qubo_ground_index(q, c, 0.5) == int(np.argmin(energies))


def test_dicke_state_is_uniform_on_the_weight_k_states():
    for n, k in [(1, 0), (1, 1), (5, 2), (8, 4)]:
        expected = np.zeros(2**n)
        expected[[sum(1 << i for i in c) for c in combinations(range(n), k)]] = 1.0 / np.sqrt(comb(n, k))
        np.testing.assert_array_equal(dicke_state(n, k), expected)


def test_ising_form_is_the_diagonal():
    q, c, const = random_qubo(5, 4)
    offset, h, j = ising(q, c, const)
    op = SparsePauliOp.from_sparse_list(
        [("Z", [i], h[i]) for i in range(5)] + [("ZZ", [a, b], j[a, b]) for a, b in combinations(range(5), 2)],
        num_qubits=5,
    ) + SparsePauliOp("I" * 5, offset)
    np.testing.assert_allclose(np.real(np.diag(op.to_matrix())), brute_energies(q, c, const), atol=1e-10)


@pytest.mark.parametrize("p, tile_bits", [(1, None), (2, None), (3, None), (1, 3), (2, 5), (3, 4), (4, 3)])
def test_x_mixer_matches_qiskit(p, tile_bits):
    n = 9
    q, c, const = random_qubo(n, 10 + p)
    energy = qubo_diagonal(q, c, const)
    offset, h, j = ising(q, c, const)
    theta = np.random.default_rng(p).uniform(-1.5, 1.5, 2 * p)
    scale = 0.37
    sim = QAOASimulator(energy, phase_scale=scale, tile_bits=tile_bits)
    ref = Statevector(x_mixer_circuit(theta, h, j, scale)).data
    ref = ref * np.exp(-1j * scale * offset * theta[p:].sum())  # the Ising offset is a global phase
    np.testing.assert_allclose(sim.statevector(theta), ref, atol=TOL)
    np.testing.assert_allclose(sim.probabilities(theta), np.abs(ref) ** 2, atol=TOL)
    expected = float(np.abs(ref) ** 2 @ energy)
    assert abs(sim.expectation(theta) - expected) < TOL
    np.testing.assert_allclose(sim.expectations(np.stack([theta, theta / 2])),
                               [expected, QAOASimulator(energy, phase_scale=scale).expectation(theta / 2)],
                               atol=TOL)


def test_cvar():
    q, c, const = random_qubo(8, 5)
    energy = qubo_diagonal(q, c, const)
    sim = QAOASimulator(energy)
    theta = np.array([0.4, -0.2, 0.3, 0.9])
    prob = sim.probabilities(theta)
    for alpha in (0.01, 0.1, 0.5):
        assert abs(sim.cvar(theta, alpha) - reference_cvar(prob, energy, alpha)) < TOL
    assert abs(sim.cvar(theta, 1.0) - sim.expectation(theta)) < TOL
    np.testing.assert_allclose(sim.cvars([theta, theta], 0.2), [sim.cvar(theta, 0.2)] * 2, atol=TOL)
    with pytest.raises(ValueError):
        sim.cvar(theta, 0.0)


@pytest.mark.parametrize("tile_bits", [None, 4, 5])
def test_adjoint_gradient_matches_finite_differences(tile_bits):
    q, c, const = random_qubo(9, 6)
    sim = QAOASimulator(qubo_diagonal(q, c, const), phase_scale=0.3, tile_bits=tile_bits)
    theta = np.array([0.3, -0.7, 0.5, 0.8, 0.2, -0.4])
    value, grad = sim.expectation_and_gradient(theta)
    assert abs(value - sim.expectation(theta)) < TOL
    eps = 1e-5
    fd = np.array([(sim.expectation(theta + eps * e) - sim.expectation(theta - eps * e)) / (2 * eps)
                   for e in np.eye(theta.size)])
    np.testing.assert_allclose(grad, fd, atol=1e-6)


@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-12), (np.complex64, 2e-6)])
def test_one_stage_a_qubit_mixer_equals_w_d_w(dtype, tol):
    """The mixer as e^{−iβX} stages (shear form, flipped past |β| = π/4, and the pair kernels of the gradient)
    against the W·D·W transforms, with a high pass (tile_bits 6 at n = 10), β over several half-periods."""
    q, c, const = random_qubo(10, 12)
    energy = qubo_diagonal(q, c, const) / 10
    stages = QAOASimulator(energy, phase_scale=0.6, dtype=dtype, tile_bits=6)
    transforms = QAOASimulator(energy, phase_scale=0.6, dtype=dtype, tile_bits=6)
    transforms.direct = False
    assert stages.direct and stages.low_bits < stages.n
    for theta in ([0.3, -0.2, 0.7, 1.1], [1.2, -2.9, 0.4, -0.8], [4.0, 7.3, -0.5, 0.9], [np.pi / 4, -np.pi / 2, 1, 2]):
        np.testing.assert_allclose(stages.statevector(theta), transforms.statevector(theta), atol=tol)
        value, grad = stages.expectation_and_gradient(theta)
        reference, reference_grad = transforms.expectation_and_gradient(theta)
        assert abs(value - reference) < tol
        np.testing.assert_allclose(grad, reference_grad, atol=10 * tol)


def _mixer_reference(x, b0, k, beta):
    """(e^{−iβX})^{⊗k} on bits b0 … b0+k−1 by tensor contractions (bit q is axis n−1−q)."""
    n = x.size.bit_length() - 1
    u = np.array([[np.cos(beta), -1j * np.sin(beta)], [-1j * np.sin(beta), np.cos(beta)]])
    psi = x.astype(complex).reshape([2] * n)
    for q in range(b0, b0 + k):
        psi = np.moveaxis(np.tensordot(u, psi, axes=([1], [n - 1 - q])), 0, n - 1 - q)
    return psi.reshape(-1)


@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-12), (np.complex64, 3e-5)])
def test_x_rotation_kernels_against_tensor_contractions(dtype, tol):
    """apply_x_rotations (shear form, flipped past |β| = π/4, the n-qubit factor with bits 0–3) and the adjoint's
    pair kernel (both states and Im⟨y|Σ X_i|x⟩) against numpy, β over several half-periods."""
    rng = np.random.default_rng(5)
    real = np.float64 if dtype == np.complex128 else np.float32
    for n, split, b0, k in [(10, 4, 0, 5), (12, 7, 1, 5), (11, 10, 4, 1)]:
        for beta in (0.1, -0.7, 1.2, 2.0, -2.9, 7.3, np.pi / 4):
            x = (rng.normal(size=2**n) + 1j * rng.normal(size=2**n)).astype(dtype)
            y = (rng.normal(size=2**n) + 1j * rng.normal(size=2**n)).astype(dtype)
            scale = float(np.max(np.abs(x)))
            c, flip = x_rotation_coefficients(beta, n)
            c = tuple(real(v) for v in c)
            z = x.copy()
            apply_x_rotations(z.view(real), 0, split, c, flip)
            apply_x_rotations(z.view(real), split, n - split, c, flip)
            assert np.max(np.abs(z - _mixer_reference(x, 0, n, beta))) < tol * scale
            xs, ys = x.copy(), y.copy()
            overlap = apply_x_rotations_pair(xs.view(real), ys.view(real), b0, k, beta)
            x_sum = sum(x.astype(complex)[np.arange(x.size) ^ (1 << q)] for q in range(b0, b0 + k))
            expected = np.vdot(y.astype(complex), x_sum).imag
            assert abs(overlap - expected) < tol * float(np.sum(np.abs(x) * np.abs(y)))
            assert np.max(np.abs(xs - _mixer_reference(x, b0, k, beta))) < tol * scale
            assert np.max(np.abs(ys - _mixer_reference(y, b0, k, beta))) < tol * scale


def test_x_mixer_parallel_and_serial_kernels_agree():
    """The one-stage-a-qubit passes and the adjoint on 2 threads and on 1 (small states run on one thread)."""
    q, c, const = random_qubo(11, 4)
    simulator = QAOASimulator(qubo_diagonal(q, c, const), phase_scale=0.5, tile_bits=6)
    theta = np.array([0.4, -1.1, 2.2, 0.3, 0.8, -0.5])
    results = engine_on_one_and_two_threads(simulator, theta, simulator.cost)
    (s1, e1, (v1, g1)), (s2, e2, (v2, g2)) = results
    np.testing.assert_allclose(s1, s2, atol=1e-14)
    np.testing.assert_allclose([e1, v1], [e2, v2], rtol=1e-13)
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-14)


def test_complex64_agrees():
    q, c, const = random_qubo(10, 7)
    energy = qubo_diagonal(q, c, const) / 10
    theta = np.array([0.3, 0.6, -0.2, 0.5, 0.9, 0.1])
    exact = QAOASimulator(energy)
    for tile_bits in (None, 5):
        single = QAOASimulator(energy, dtype=np.complex64, tile_bits=tile_bits)
        assert single.statevector(theta).dtype == np.complex64
        np.testing.assert_allclose(single.probabilities(theta), exact.probabilities(theta), atol=1e-5)
        assert abs(single.expectation(theta) - exact.expectation(theta)) < 1e-5


@pytest.mark.parametrize("topology, k", [("ring", 3), ("complete", 2), ([(0, 3), (5, 1), (2, 4), (3, 5)], 3)])
def test_xy_mixer_matches_qiskit(topology, k):
    n = 6
    q, c, const = random_qubo(n, 8)
    energy = qubo_diagonal(q, c, const)
    offset, h, j = ising(q, c, const)
    pairs = xy_pairs(n, topology) if isinstance(topology, str) else topology
    theta = np.array([0.7, -0.4, 0.3, 0.8])
    sim = XYQAOASimulator(energy, k, topology)
    ref = Statevector(xy_circuit(theta, h, j, k, pairs)).data
    np.testing.assert_allclose(sim.probabilities(theta), np.abs(ref) ** 2, atol=TOL)
    assert abs(sim.expectation(theta) - np.abs(ref) ** 2 @ energy) < TOL
    ref = ref * np.exp(-1j * offset * theta[2:].sum())
    np.testing.assert_allclose(sim.statevector(theta), ref, atol=TOL)


def test_xy_pairs():
    assert xy_pairs(2) == [(0, 1)]
    assert xy_pairs(4) == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert xy_pairs(4, "complete") == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


@pytest.mark.parametrize("topology", ["ring", "complete", [(4, 0), (1, 6), (2, 3), (7, 5), (0, 1)]])
def test_subspace_matches_full_space(topology):
    n, k = 8, 3
    q, c, const = random_qubo(n, 9)
    energy = qubo_diagonal(q, c, const)
    states = weight_k_states(n, k)
    assert states.size == comb(n, k) and np.all(np.diff(states) > 0)
    assert all(int(z).bit_count() == k for z in states)
    theta = np.array([0.5, -0.3, 1.1, 0.4, 0.2, -0.6])
    full = XYQAOASimulator(energy, k, topology, phase_scale=0.8)
    sub = SubspaceQAOASimulator(qubo_energies(q, c, const, states), n, k, topology, phase_scale=0.8)
    psi = full.statevector(theta)
    np.testing.assert_allclose(sub.statevector(theta), psi[states], atol=TOL)
    assert abs(np.linalg.norm(psi[states]) - 1) < TOL
    assert abs(sub.expectation(theta) - full.expectation(theta)) < TOL
    assert abs(sub.cvar(theta, 0.25) - full.cvar(theta, 0.25)) < TOL


def test_subspace_forty_choose_four_runs():
    n, k = 40, 4
    rng = np.random.default_rng(11)
    a = rng.normal(size=(n, n))
    states = weight_k_states(n, k)
    sim = SubspaceQAOASimulator(qubo_energies(a @ a.T / n, -rng.random(n), 0.0, states), n, k, "ring")
    theta = np.array([0.2, 0.4, 0.6, 0.1, 0.2, 0.3])
    prob = sim.probabilities(theta)
    assert prob.size == comb(40, 4) and abs(prob.sum() - 1) < 1e-9


@pytest.mark.parametrize("make", [
    lambda: real_amplitudes(5, reps=2, entanglement="full"),
    lambda: real_amplitudes(4, reps=3, entanglement="reverse_linear"),
    lambda: efficient_su2(4, reps=2, entanglement="linear"),
    lambda: efficient_su2(5, su2_gates=["rx", "y", "h"], reps=1, entanglement="circular"),
])
def test_circuit_simulator_matches_statevector(make):
    circuit = make()
    sim = CircuitSimulator(circuit)
    rng = np.random.default_rng(circuit.num_parameters)
    for _ in range(2):
        values = rng.uniform(-np.pi, np.pi, circuit.num_parameters)
        ref = Statevector(circuit.assign_parameters(values)).data
        np.testing.assert_allclose(sim.statevector(values), ref, atol=TOL)
        np.testing.assert_allclose(sim.probabilities(values), np.abs(ref) ** 2, atol=TOL)


def test_memory_guard_raises_before_allocating():
    with pytest.raises(ResourceError, match=r"GiB.*GiB.*complex64"):
        qubo_diagonal(np.zeros((45, 45)))
    with pytest.raises(ResourceError, match="subspace"):
        weight_k_states(60, 30)
    with pytest.raises(ResourceError, match="fewer qubits"):
        CircuitSimulator(QuantumCircuit(42))
    assert QAOASimulator.required_bytes(28, np.complex64) == 16 * 2**28


def test_aer_statevector_agrees():
    aer = pytest.importorskip("qiskit_aer")
    n = 7
    q, c, const = random_qubo(n, 12)
    energy = qubo_diagonal(q, c, const)
    offset, h, j = ising(q, c, const)
    theta = np.array([0.3, -0.5, 0.7, 0.2])
    circuit = x_mixer_circuit(theta, h, j)
    circuit.save_statevector()
    result = aer.AerSimulator(method="statevector").run(circuit).result()
    ref = np.asarray(result.get_statevector()) * np.exp(-1j * offset * theta[2:].sum())
    np.testing.assert_allclose(QAOASimulator(energy).statevector(theta), ref, atol=TOL)


def test_parallel_xy_kernels_match_serial_ones():
    n, k = 20, 2  # the full-space path takes its parallel kernels (2^18 pairs per rotation)
    q, c, const = random_qubo(n, 13)
    states = weight_k_states(n, k)
    theta = np.array([0.4, 0.9])
    full = XYQAOASimulator(qubo_diagonal(q, c, const), k, "ring")
    sub = SubspaceQAOASimulator(qubo_energies(q, c, const, states), n, k, "ring")
    np.testing.assert_allclose(sub.statevector(theta), full.statevector(theta)[states], atol=TOL)
