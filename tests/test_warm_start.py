"""The warm-start QAOA engine against Qiskit's Statevector of the very circuit, and its adjoint gradient."""

import numpy as np
import pytest
from conftest import engine_on_one_and_two_threads
from qiskit.quantum_info import Statevector

from qportfolio.backends import make_backend
from qportfolio.backends.exact import WarmStartQAOASimulator
from qportfolio.backends.exact.single_qubit import apply_rotations, apply_unitaries
from qportfolio.circuits import qaoa_ansatz
from qportfolio.encoding.qubo import Qubo
from qportfolio.objective import Objective


def random_instance(n, p, seed, edges=False):
    """A QUBO, warm-start probabilities (with ``edges``, c_0 = 1 and c_1 = 0), its ansatz and angles."""
    rng = np.random.default_rng(seed)
    qubo = Qubo(np.triu(rng.normal(size=(n, n)), 1), rng.normal(size=n), float(rng.normal()))
    probabilities = rng.uniform(0.05, 0.95, n)
    if edges:
        probabilities[:2] = [1.0, 0.0][:n]
    ansatz = qaoa_ansatz(qubo.to_ising()[0], p, warm_start=probabilities)
    return qubo, probabilities, ansatz, rng.uniform(-1.5, 1.5, 2 * p)


def same_up_to_global_phase(state, reference, atol):
    phase = np.vdot(state, reference)
    np.testing.assert_allclose(abs(phase), 1.0, atol=atol)
    np.testing.assert_allclose(state * phase / abs(phase), reference, atol=atol)


@pytest.mark.parametrize("with_qubo", [False, True])
@pytest.mark.parametrize("n, p, tile_bits", [(1, 1, None), (4, 2, None), (7, 3, None), (9, 2, 4), (10, 3, 5),
                                             (8, 4, 3), (9, 1, 2), (12, 2, 8)])
def test_state_equals_the_circuits_statevector(n, p, tile_bits, with_qubo):
    """Phases from the energy table or the QUBO (:mod:`.phases`); c_q = 1 and 0 included for n ≥ 4."""
    qubo, probabilities, ansatz, theta = random_instance(n, p, 100 * n + p, edges=n >= 4)
    reference = Statevector(ansatz.circuit.assign_parameters(theta)).data
    simulator = WarmStartQAOASimulator(qubo.all_energies(), probabilities, phase_scale=1 / ansatz.cost_scale,
                                       tile_bits=tile_bits, qubo=qubo if with_qubo else None)
    assert (simulator.qubo_phases is not None) == with_qubo
    same_up_to_global_phase(simulator.statevector(theta), reference, 1e-12)
    offset = qubo.to_ising()[1]  # the global phase is the Ising offset's
    np.testing.assert_allclose(np.vdot(simulator.statevector(theta), reference),
                               np.exp(1j * offset * theta[p:].sum() / ansatz.cost_scale), atol=1e-12)
    energies = qubo.all_energies()
    np.testing.assert_allclose(simulator.expectation(theta), np.vdot(reference, energies * reference).real,
                               rtol=1e-12, atol=1e-12)


def test_complex64_agrees():
    qubo, probabilities, ansatz, theta = random_instance(9, 2, 5)
    energies = qubo.all_energies()
    exact = WarmStartQAOASimulator(energies, probabilities, phase_scale=0.4)
    single = WarmStartQAOASimulator(energies, probabilities, phase_scale=0.4, dtype=np.complex64, tile_bits=4)
    np.testing.assert_allclose(single.probabilities(theta), exact.probabilities(theta), atol=1e-6)


@pytest.mark.parametrize("n, p, tile_bits, with_qubo", [(6, 1, None, False), (8, 3, None, True), (9, 2, 4, False),
                                                        (10, 3, 3, True), (11, 2, 4, True)])
def test_gradient_equals_central_differences(n, p, tile_bits, with_qubo):
    qubo, probabilities, _, theta = random_instance(n, p, 7 * n + p, edges=n > 8)
    energies = qubo.all_energies()
    simulator = WarmStartQAOASimulator(energies, probabilities, phase_scale=0.6, tile_bits=tile_bits,
                                       qubo=qubo if with_qubo else None)
    observable = np.exp(-energies)
    for obs in (None, observable):
        target = energies if obs is None else obs
        value, gradient = simulator.expectation_and_gradient(theta, obs)
        np.testing.assert_allclose(value, simulator.probabilities(theta) @ target, rtol=1e-12)
        step = 1e-5
        numeric = [(simulator.probabilities(theta + step * e) @ target - simulator.probabilities(theta - step * e)
                    @ target) / (2 * step) for e in np.eye(2 * p)]
        np.testing.assert_allclose(gradient, numeric, rtol=1e-7, atol=1e-8 * np.abs(numeric).max())


def test_parallel_and_serial_kernels_agree():
    """The engine's kernels on 2 threads and on 1 (small states normally run on one thread)."""
    qubo, probabilities, _, theta = random_instance(11, 3, 3)
    simulator = WarmStartQAOASimulator(qubo.all_energies(), probabilities, phase_scale=0.5, tile_bits=4)
    observable = np.exp(-qubo.all_energies())
    results = engine_on_one_and_two_threads(simulator, theta, observable)
    (s1, e1, (v1, g1)), (s2, e2, (v2, g2)) = results
    np.testing.assert_allclose(s1, s2, atol=1e-14)
    np.testing.assert_allclose([e1, v1], [e2, v2], rtol=1e-13)
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7, 10])
def test_single_qubit_kernel_against_kronecker_products(k):
    """Complex factors on a complex tile and real ones on its float view, on every bit window."""
    rng = np.random.default_rng(k)
    x = rng.normal(size=2**k) + 1j * rng.normal(size=2**k)
    for real in (False, True):
        u = rng.normal(size=(k, 4)) + (0 if real else 1j * rng.normal(size=(k, 4)))
        for b0 in range(k):
            for width in range(1, k - b0 + 1):
                y = x.copy()
                apply_unitaries(y.view(np.float64), u[:width], b0 + 1) if real else apply_unitaries(y, u[:width], b0)
                expected = np.ones((1, 1))
                for q in range(k):  # qubit q is bit q: the Kronecker product lists the highest qubit first
                    expected = np.kron(u[q - b0].reshape(2, 2) if b0 <= q < b0 + width else np.eye(2), expected)
                np.testing.assert_allclose(y, expected @ x, atol=1e-12)


def test_backend_routes_warm_starts_to_the_engine_with_a_gradient():
    qubo, probabilities, ansatz, theta = random_instance(6, 2, 11)
    energies = qubo.all_energies()
    backend = make_backend("exact", 100, 0, energies=energies)
    assert isinstance(backend._prepare(ansatz.circuit)[0], WarmStartQAOASimulator)
    assert backend.has_gradient(ansatz.circuit)
    for objective in (Objective(), Objective(kind="gibbs", eta=2.0)):
        value, gradient = backend.value_and_gradient(ansatz.circuit, theta, objective)
        step = 1e-6
        numeric = [(backend.objective_values(ansatz.circuit, [theta + step * e], objective)[0]
                    - backend.objective_values(ansatz.circuit, [theta - step * e], objective)[0]) / (2 * step)
                   for e in np.eye(4)]
        np.testing.assert_allclose(value, backend.objective_values(ansatz.circuit, [theta], objective)[0], rtol=1e-12)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("k", [1, 3, 4, 7, 9])
def test_shear_rotations_against_kronecker_products(k):
    """apply_rotations: [[1, −t], [t, 1]] per qubit on the float view, in float64 and float32, every bit window."""
    rng = np.random.default_rng(k)
    x = rng.normal(size=2**k) + 1j * rng.normal(size=2**k)
    t = rng.uniform(-1, 1, k)
    for real, complex_, atol in ((np.float64, np.complex128, 1e-12), (np.float32, np.complex64, 1e-4)):
        for b0 in range(k):
            for width in range(1, k - b0 + 1):
                y = x.astype(complex_)
                apply_rotations(y.view(real), t[:width].astype(real), b0 + 1)
                expected = np.ones((1, 1))
                for q in range(k):
                    factor = np.array([[1, -t[q - b0]], [t[q - b0], 1]]) if b0 <= q < b0 + width else np.eye(2)
                    expected = np.kron(factor, expected)
                np.testing.assert_allclose(y, expected @ x, atol=atol * np.abs(expected @ x).max())
