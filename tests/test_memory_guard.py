"""The memory guard on every 2ⁿ allocation a backend makes per call, not only when it is built: the exact
backend's distributions (16 bytes a state per parameter set: index and probability), its circuit path's
probability vector and energy order, and Aer's batch of statevectors. Memory is made scarce after the backend
holds its state, so each check is the one under test; with memory enough, the same calls agree with Aer."""

from collections import namedtuple

import numpy as np
import pytest

import qportfolio.memory
from qportfolio.backends import AerStatevectorBackend, make_backend
from qportfolio.circuits import qaoa_ansatz, vqe_ansatz
from qportfolio.encoding import to_qubo
from qportfolio.errors import ResourceError

Memory = namedtuple("Memory", "available")


def scarce(monkeypatch, available: float) -> None:
    monkeypatch.setattr(qportfolio.memory.psutil, "virtual_memory", lambda: Memory(int(available)))


def ansatz_and_energies(kind: str, problem):
    encoding = to_qubo(problem)
    if kind == "vqe":
        return vqe_ansatz(encoding.num_qubits, 1, "real_amplitudes", "linear"), encoding.qubo.all_energies()
    return qaoa_ansatz(encoding.qubo.to_ising()[0], 1), encoding.qubo.all_energies()


@pytest.mark.parametrize("kind", ["qaoa", "vqe"])
def test_exact_distributions_check_memory_first(kind, monkeypatch, rng, selection_problem):
    ansatz, energies = ansatz_and_energies(kind, selection_problem)
    N = len(energies).bit_length() - 1
    backend = make_backend("exact", 64, 0, energies=energies)
    thetas = rng.uniform(-1, 1, (3, ansatz.num_parameters))
    first = backend.distributions(ansatz.circuit, thetas)  # builds the simulator with memory to spare
    assert len(first) == 3 and all(len(d.indices) == 2**N for d in first)
    # room for one probability vector (8·2ⁿ) but not for three distributions (3·16·2ⁿ)
    scarce(monkeypatch, 12.0 * 2**N / qportfolio.memory.HEADROOM)
    with pytest.raises(ResourceError, match=rf"3 exact distribution\(s\) over {2**N:,} states needs"):
        backend.distributions(ansatz.circuit, thetas)


def test_exact_circuit_path_checks_its_probability_vector_and_energy_order(monkeypatch, rng, selection_problem):
    ansatz, energies = ansatz_and_energies("vqe", selection_problem)
    N = len(energies).bit_length() - 1
    backend = make_backend("exact", 64, 0, energies=energies)
    theta = rng.uniform(-1, 1, ansatz.num_parameters)
    simulator, _ = backend._prepare(ansatz.circuit)
    scarce(monkeypatch, 4.0 * 2**N / qportfolio.memory.HEADROOM)
    with pytest.raises(ResourceError, match="the probability vector needs"):
        simulator.probabilities(theta)
    with pytest.raises(ResourceError, match="the energy order and sorted energies needs"):
        backend.objective_values(ansatz.circuit, theta[None, :], 0.5)


def test_aer_statevector_checks_each_batch(monkeypatch, rng, selection_problem):
    ansatz, energies = ansatz_and_energies("qaoa", selection_problem)
    N = len(energies).bit_length() - 1
    aer = AerStatevectorBackend(seed=0)
    exact = make_backend("exact", 64, 0, energies=energies)
    thetas = rng.uniform(-1, 1, (4, ansatz.num_parameters))
    for d_aer, d_exact in zip(aer.distributions(ansatz.circuit, thetas), exact.distributions(ansatz.circuit, thetas)):
        np.testing.assert_allclose(d_aer.probabilities, d_exact.probabilities, atol=1e-10)
    # the circuit's own check (3·16·2ⁿ, made once) passes; four sets at once (4·32·2ⁿ) do not
    scarce(monkeypatch, 60.0 * 2**N / qportfolio.memory.HEADROOM)
    with pytest.raises(ResourceError, match=rf"4 {N}-qubit statevector\(s\) and their distributions needs"):
        aer.distributions(ansatz.circuit, thetas)


def test_decoding_a_distribution_checks_memory_first(monkeypatch, rng):
    """Decoding every state of a distribution (the device search's ideal metrics) is refused in one
    ResourceError when its table would not fit, instead of the process being killed."""
    from conftest import random_covariance

    from qportfolio.backends.base import Distribution
    from qportfolio.evaluation import decode_samples
    from qportfolio.problems import SelectionProblem

    selection_problem = SelectionProblem(tuple(f"A{i}" for i in range(17)), rng.uniform(0.001, 0.01, 17),
                                         random_covariance(17, rng, 1e-3), 5)
    encoding = to_qubo(selection_problem)
    n = encoding.num_qubits
    full = Distribution(np.arange(2**n, dtype=np.int64), np.full(2**n, 2.0**-n), None)
    assert len(decode_samples(full, encoding, selection_problem).indices) == 2**n  # memory to spare
    scarce(monkeypatch, 2**n * 10)  # ten bytes a state
    with pytest.raises(ResourceError, match=rf"decoding {2**n:,} states of {n} qubits needs"):
        decode_samples(full, encoding, selection_problem)
