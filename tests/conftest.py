import numba
import numpy as np
import pytest

from qportfolio.problems import IntegerSharesProblem, SelectionProblem


def random_covariance(n: int, rng: np.random.Generator, scale: float = 1e-4) -> np.ndarray:
    a = rng.normal(size=(n, n + 2))
    return a @ a.T / (n + 2) * scale


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def shares_problem(rng):
    """Three assets, a budget of $300 and a return floor: 6 decision qubits."""
    sigma = random_covariance(3, rng)
    mu = np.array([0.0011, 0.0004, 0.0009])
    prices = np.array([125.7, 64.6, 106.6])
    bound = IntegerSharesProblem(("A", "B", "C"), mu, sigma, prices, 300.0).max_relaxed_return()
    return IntegerSharesProblem(("A", "B", "C"), mu, sigma, prices, 300.0, min_return=0.6 * bound)


@pytest.fixture
def selection_problem(rng):
    sigma = random_covariance(5, rng, 1e-3)
    mu = rng.uniform(0.001, 0.01, 5)
    return SelectionProblem(tuple("VWXYZ"), mu, sigma, 2, risk_aversion=2.0)


def all_bits(n: int) -> np.ndarray:
    """Row z holds the bits of z, bit i in column i (Qiskit's little-endian order)."""
    return (np.arange(2**n)[:, None] >> np.arange(n)) & 1


def engine_on_one_and_two_threads(simulator, theta, observable):
    """(final state, ⟨E⟩, (⟨O⟩, gradient)) of a QAOA engine's kernels on 1 and on 2 threads, called below the
    public methods (which run small states on one thread)."""
    p = len(theta) // 2
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            results.append((simulator._evolve(theta).copy(), simulator._run(theta, expect=True),
                            simulator._adjoint(theta[:p], theta[p:], observable)))
    finally:
        numba.set_num_threads(previous)
    return results


def ideal_p_optimal(result, problem) -> float:
    """P(optimum) of a quantum result's circuit at its final parameters on the exact simulator (the encoding the
    run used): the independent check of what the device search records as ``ideal_p_optimal``."""
    from qportfolio.backends import make_backend
    from qportfolio.evaluation import decode_samples, quality_metrics

    encoded = result.encoded
    exact = make_backend("exact", 100, 3, energies=encoded.energies, qubo=encoded.encoding.qubo)
    distribution = exact.distributions(result.ansatz.circuit, result.search.parameters)[0]
    return quality_metrics(decode_samples(distribution, encoded.encoding, problem), result.exact.objective,
                           result.exact.worst_feasible_objective).p_optimal
