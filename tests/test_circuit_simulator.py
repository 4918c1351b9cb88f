"""The circuit engine's stages (layers, CX networks, other gates) against Qiskit's Statevector."""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import efficient_su2, real_amplitudes
from qiskit.quantum_info import Statevector

from qportfolio.backends.exact import CircuitSimulator
from qportfolio.circuits import vqe_ansatz


def random_circuit(n, depth, seed):
    """Single-qubit rotations, CX and SWAP in random order, with CZ / RZZ / CRY in between (applied on their own),
    a global phase and a parameter expression."""
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(n, global_phase=0.3)
    theta = Parameter("t")
    for _ in range(depth):
        kind = rng.integers(8)
        q, r = (int(v) for v in rng.choice(n, 2, replace=False))
        angle = float(rng.uniform(-np.pi, np.pi))
        if kind == 0:
            circuit.ry(angle, q)
        elif kind == 1:
            circuit.rz(2 * theta + angle, q)
        elif kind == 2:
            circuit.h(q)
            circuit.sx(r)
        elif kind in (3, 4):
            circuit.cx(q, r)
        elif kind == 5:
            circuit.swap(q, r)
        elif kind == 6:
            circuit.cz(q, r)
            circuit.rzz(angle, q, r)
        else:
            circuit.cry(angle, q, r)
    return circuit


@pytest.mark.parametrize("n, tile_bits", [(1, None), (3, None), (5, 2), (7, 3), (8, 4), (9, 5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_circuits_equal_the_statevector(n, tile_bits, seed):
    circuit = random_circuit(n, 6 * n, 10 * n + seed) if n > 1 else QuantumCircuit(1)
    if n == 1:
        circuit.ry(Parameter("t"), 0)
    simulator = CircuitSimulator(circuit, tile_bits=tile_bits)
    values = np.random.default_rng(seed).uniform(-np.pi, np.pi, circuit.num_parameters)
    reference = Statevector(circuit.assign_parameters(values)).data
    np.testing.assert_allclose(simulator.statevector(values), reference, atol=1e-12)
    np.testing.assert_allclose(simulator.probabilities(values), np.abs(reference) ** 2, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: real_amplitudes(9, reps=3, entanglement="linear"),
    lambda: real_amplitudes(7, reps=2, entanglement="full"),
    lambda: real_amplitudes(8, reps=2, entanglement="reverse_linear"),
    lambda: efficient_su2(7, reps=2, entanglement="circular"),
    lambda: efficient_su2(6, reps=2, entanglement="sca"),
    lambda: efficient_su2(9, reps=1, entanglement="pairwise"),
])
@pytest.mark.parametrize("tile_bits", [None, 3, 4])
def test_vqe_ansatze_equal_the_statevector(make, tile_bits):
    circuit = make()
    simulator = CircuitSimulator(circuit, tile_bits=tile_bits)
    assert {stage.kind for stage in simulator._stages} == {"layer", "cx"}  # no gate applied on its own
    values = np.random.default_rng(circuit.num_qubits).uniform(-np.pi, np.pi, circuit.num_parameters)
    reference = Statevector(circuit.assign_parameters(values)).data
    np.testing.assert_allclose(simulator.statevector(values), reference, atol=1e-12)
    single = CircuitSimulator(circuit, dtype=np.complex64, tile_bits=tile_bits)
    np.testing.assert_allclose(single.probabilities(values), np.abs(reference) ** 2, atol=1e-6)


def test_the_default_vqe_ansatz_is_three_layers_and_two_cx_networks():
    simulator = CircuitSimulator(vqe_ansatz(6, 2).circuit)
    assert [stage.kind for stage in simulator._stages] == ["layer", "cx", "layer", "cx", "layer"]


def test_a_circuit_that_starts_and_ends_with_cx():
    circuit = QuantumCircuit(4)
    circuit.cx(0, 3)
    circuit.ry(Parameter("a"), 1)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.swap(2, 3)
    simulator = CircuitSimulator(circuit, tile_bits=2)
    reference = Statevector(circuit.assign_parameters([0.7])).data
    np.testing.assert_allclose(simulator.statevector([0.7]), reference, atol=1e-12)


@pytest.mark.parametrize("blocks", ["cz", "rzz", ["cp", "crz"]])
@pytest.mark.parametrize("n, tile_bits", [(5, None), (9, 4)])
def test_diagonal_ladders_are_one_stage_each(blocks, n, tile_bits):
    from qiskit.circuit.library import n_local

    circuit = n_local(n, ["ry", "rz"], blocks, "circular", reps=2)
    simulator = CircuitSimulator(circuit, tile_bits=tile_bits)
    assert [stage.kind for stage in simulator._stages] == ["layer", "diagonal"] * 2 + ["layer"]
    values = np.random.default_rng(n).uniform(-np.pi, np.pi, circuit.num_parameters)
    reference = Statevector(circuit.assign_parameters(values)).data
    np.testing.assert_allclose(simulator.statevector(values), reference, atol=1e-12)


def test_random_circuits_use_every_kind_of_stage():
    assert {stage.kind for stage in CircuitSimulator(random_circuit(7, 42, 70))._stages} == {
        "layer", "cx", "diagonal", "gate"}


def test_parallel_and_serial_kernels_agree():
    """The passes on 2 threads and on 1 (small states normally run on one thread)."""
    import numba

    circuit = random_circuit(9, 60, 5)
    simulator = CircuitSimulator(circuit, tile_bits=4)
    values = np.random.default_rng(5).uniform(-np.pi, np.pi, circuit.num_parameters)
    states = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            states.append(simulator._run(values).copy())
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_allclose(states[0], states[1], atol=1e-14)
