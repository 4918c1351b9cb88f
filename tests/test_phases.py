"""The QUBO-structured phases (exact.phases) against e^{−igE} from the brute-force energy table, and the
X-mixer simulator with and without the QUBO."""

import numpy as np
import pytest

from qportfolio.backends import make_backend
from qportfolio.backends.exact import ExactBackend, QAOASimulator
from qportfolio.backends.exact.phases import QuboPhases, block_phases, multiply_block_phases, phase_table
from qportfolio.backends.exact.x_mixer import (
    _dot_and_phase_pair,
    _phase_tables,
    _phase_tile,
    pass_phases,
    phase_scratch,
)
from qportfolio.circuits import qaoa_ansatz
from qportfolio.encoding import to_qubo
from qportfolio.encoding.qubo import Qubo


def random_qubo(n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n)), rng.normal(size=n), float(rng.normal())  # Q neither symmetric nor triangular


def brute_energies(q, c, const):
    n = len(c)
    x = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(float)
    return np.einsum("zi,ij,zj->z", x, q, x) + x @ c + const


@pytest.mark.parametrize("n", [1, 2, 5, 9, 10, 11, 13])
def test_phases_match_the_energy_table(n):
    q, c, const = random_qubo(n, n)
    energies = brute_energies(q, c, const)
    phases = QuboPhases(q, c, const)
    assert phases.reproduces(energies)
    m = phases.block_bits()
    out, w = np.empty((2, 1 << m)), np.empty(2 * n)
    for g in (0.37, -2.5):
        psi = np.ones(2**n, dtype=complex)
        table = phase_table(phases.low_energies(m), g)
        for start in range(0, 2**n, 1 << m):
            multiply_block_phases(psi, start, start, m, g, table, *phases.arguments(), out, w)
        np.testing.assert_allclose(psi, np.exp(-1j * g * energies), rtol=0, atol=1e-12)


@pytest.mark.parametrize("m", [0, 1, 3, 4])
def test_every_block_size(m):
    n = 7
    q, c, const = random_qubo(n, 3)
    energies = brute_energies(q, c, const)
    phases = QuboPhases(q, c, const)
    g = 0.9
    out, w = np.empty((2, 1 << m)), np.empty(2 * n)
    for base in range(0, 2**n, 1 << m):
        block_phases(out, base, m, g, phase_table(phases.low_energies(m), g), *phases.arguments(), w)
        expected = np.exp(-1j * g * energies[base:base + (1 << m)])
        np.testing.assert_allclose(out[0] + 1j * out[1], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("run_bits, shift", [(0, 4), (2, 5), (3, 6), (4, 4)])
def test_gathered_tiles_take_their_base_zero_phases_and_factors(run_bits, shift):
    """A tile of the runs of 2^run_bits amplitudes that differ in bits shift…n−1 (a high pass's; shift = run_bits:
    contiguous tiles, the block path) against e^{−igE} of its basis states."""
    n, g = 9, -1.3
    q, c, const = random_qubo(n, 5)
    energies = brute_energies(q, c, const)
    phases = pass_phases(QuboPhases(q, c, const), run_bits)
    size = 1 << (run_bits + n - shift)
    tables = _phase_tables(np.array([0]), np.array([g]), phases, run_bits, shift, size)
    index = np.arange(size)
    for t in range(1 << (shift - run_bits)):
        base = t << run_bits
        states = ((index >> run_bits) << shift) | base | (index & ((1 << run_bits) - 1))
        x = np.ones(size, dtype=complex)
        _phase_tile(x, np.empty(0), g, 0, phases, tables, (base, run_bits, shift), phase_scratch(phases))
        np.testing.assert_allclose(x, np.exp(-1j * g * energies[states]), rtol=0, atol=1e-12)


def test_too_little_scratch_is_refused():
    n, m = 6, 2
    phases = QuboPhases(*random_qubo(n, 2))
    table = phase_table(phases.low_energies(m), 0.5)
    with pytest.raises(ValueError, match="2n floats"):
        block_phases(np.empty((2, 1 << m)), 0, m, 0.5, table, *phases.arguments(), np.empty(2 ** m))


def test_a_different_table_is_not_reproduced():
    q, c, const = random_qubo(6, 1)
    phases = QuboPhases(q, c, const)
    energies = brute_energies(q, c, const)
    assert not phases.reproduces(energies + 1e-6)
    assert not phases.reproduces(energies * 2)
    assert not phases.reproduces(energies[:32])


@pytest.mark.parametrize("n", [3, 8, 17, 18, 19])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_simulator_with_and_without_the_qubo(n, dtype):
    q, c, const = random_qubo(n, 10 + n)
    energies = brute_energies(q, c, const)
    theta = np.random.default_rng(n).normal(size=6)
    table = QAOASimulator(energies, phase_scale=0.7, dtype=dtype, tile_bits=14)
    structured = QAOASimulator(energies, phase_scale=0.7, dtype=dtype, tile_bits=14,
                               qubo=Qubo(np.triu(q + q.T) - np.diag(np.diag(q)), c, const))
    assert structured.qubo_phases is not None and table.qubo_phases is None
    tol = 1e-12 if dtype == np.complex128 else 1e-6
    np.testing.assert_allclose(structured.statevector(theta), table.statevector(theta), rtol=0, atol=tol)
    scale = float(np.max(np.abs(energies)))
    assert structured.expectation(theta) == pytest.approx(table.expectation(theta), abs=tol * scale)
    value, gradient = structured.expectation_and_gradient(theta)
    value_table, gradient_table = table.expectation_and_gradient(theta)
    assert value == pytest.approx(value_table, abs=tol * scale)
    np.testing.assert_allclose(gradient, gradient_table, rtol=0, atol=tol * scale * n)
    assert structured.cvar(theta, 0.2) == pytest.approx(table.cvar(theta, 0.2), abs=tol * scale)


def test_a_qubo_that_is_not_the_table_falls_back():
    q, c, const = random_qubo(6, 4)
    energies = brute_energies(q, c, const)
    simulator = QAOASimulator(energies + 1.0, qubo=QuboPhases(q, c, const))
    assert simulator.qubo_phases is None
    theta = [0.3, 0.4, 0.5, 0.6]
    reference = QAOASimulator(energies + 1.0)
    assert simulator.expectation(theta) == pytest.approx(reference.expectation(theta), abs=1e-12)


def test_traffic_per_amplitude_counts_the_energy_reads():
    energies = np.zeros(2**18)
    table = QAOASimulator(energies, tile_bits=14)
    structured = QAOASimulator(energies, tile_bits=14, qubo=QuboPhases(np.zeros((18, 18)), np.zeros(18)))
    # p = 2: write | read, write (+E) | read (+E): 4 state moves of 16 bytes
    assert table.traffic_per_amplitude(2) == 4 * 16 + 3 * 8
    assert structured.traffic_per_amplitude(2) == 4 * 16 + 8


def test_exact_backend_with_the_encodings_qubo(selection_problem):
    encoding = to_qubo(selection_problem)
    energies = encoding.qubo.all_energies()
    ansatz = qaoa_ansatz(encoding.qubo.to_ising()[0], 2)
    with_qubo = make_backend("exact", 0, 1, energies=energies, qubo=encoding.qubo)
    assert isinstance(with_qubo, ExactBackend)
    assert with_qubo._prepare(ansatz.circuit)[0].qubo_phases is not None
    without = make_backend("exact", 0, 1, energies=energies)
    theta = np.array([0.2, 0.5, 0.7, 0.3])
    assert with_qubo.objective_values(ansatz.circuit, theta, 1.0)[0] == pytest.approx(
        without.objective_values(ansatz.circuit, theta, 1.0)[0], abs=1e-10)
    value, gradient = with_qubo.value_and_gradient(ansatz.circuit, theta)
    value_without, gradient_without = without.value_and_gradient(ansatz.circuit, theta)
    assert value == pytest.approx(value_without, abs=1e-10)
    np.testing.assert_allclose(gradient, gradient_without, atol=1e-9)


def test_dot_and_phase_of_the_adjoint():
    n = 12
    q, c, const = random_qubo(n, 8)
    energies = brute_energies(q, c, const)
    rng = np.random.default_rng(0)
    phi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    lam = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
    expected_dot = np.vdot(lam, energies * phi)
    phase = np.exp(-0.6j * energies)
    expected_phi, expected_lam = phase * phi, phase * lam
    phases = QuboPhases(q, c, const)
    m = phases.block_bits()
    low = phases.low_energies(m)
    dot = _dot_and_phase_pair(phi, lam, energies, 0.6, (*phases.arguments(), m, low), phase_table(low, 0.6), 0)
    assert dot == pytest.approx(expected_dot, abs=1e-9)
    np.testing.assert_allclose(phi, expected_phi, atol=1e-12)
    np.testing.assert_allclose(lam, expected_lam, atol=1e-12)
