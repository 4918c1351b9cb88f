"""Final-state sampling by the inverse CDF against NumPy's multinomial (the distribution it must equal)."""

import numpy as np
import pytest
from scipy.stats import chi2_contingency, chisquare

from qportfolio.sampling import sample_counts


def dense(states, counts, size):
    out = np.zeros(size, dtype=np.int64)
    out[states] = counts
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_follow_the_probabilities(seed):
    rng = np.random.default_rng(100 + seed)
    probabilities = rng.random(64) ** 3
    probabilities[[5, 17, 40]] = 0.0
    shots = 200_000
    states, counts = sample_counts(probabilities, shots, np.random.default_rng(seed))
    assert counts.sum() == shots and np.all(np.diff(states) > 0) and np.all(counts > 0)
    observed = dense(states, counts, 64)
    assert not observed[[5, 17, 40]].any()
    mass = probabilities > 0
    expected = shots * probabilities[mass] / probabilities.sum()
    assert chisquare(observed[mass], expected).pvalue > 1e-3


@pytest.mark.parametrize("seed", [3, 4])
def test_counts_are_indistinguishable_from_the_multinomial(seed):
    probabilities = np.random.default_rng(seed).dirichlet(np.full(32, 0.5))
    shots = 100_000
    states, counts = sample_counts(probabilities, shots, np.random.default_rng(seed))
    ours = dense(states, counts, 32)
    theirs = np.random.default_rng(seed + 50).multinomial(shots, probabilities)
    keep = (ours + theirs) > 0
    assert chi2_contingency(np.vstack([ours[keep], theirs[keep]])).pvalue > 1e-3


def test_a_seed_reproduces_the_samples_and_weights_need_not_be_normalised():
    weights = np.arange(1.0, 1025.0)
    first = sample_counts(weights, 4096, np.random.default_rng(7))
    again = sample_counts(weights / weights.sum(), 4096, np.random.default_rng(7))
    other = sample_counts(weights, 4096, np.random.default_rng(8))
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not (np.array_equal(first[0], other[0]) and np.array_equal(first[1], other[1]))


def test_one_state_and_trailing_zeros():
    states, counts = sample_counts(np.array([0.0, 0.0, 1.0, 0.0]), 1000, np.random.default_rng(0))
    assert states.tolist() == [2] and counts.tolist() == [1000]
    states, counts = sample_counts(np.array([0.5, 0.5, 0.0, 0.0]), 10_000, np.random.default_rng(0))
    assert set(states.tolist()) <= {0, 1} and counts.sum() == 10_000
    with pytest.raises(ValueError, match="positive probability"):
        sample_counts(np.zeros(8), 10, np.random.default_rng(0))


@pytest.mark.parametrize("kind", ["x", "xy_ring", "vqe"])
def test_backends_sample_their_own_final_state(kind, selection_problem, rng):
    """The exact backend's shots (X mixer, the XY subspace's state indices, the circuit path) and Aer's follow
    the exact distribution, and a backend seed reproduces them."""
    from qportfolio.backends import AerStatevectorBackend, make_backend
    from qportfolio.circuits import qaoa_ansatz, vqe_ansatz
    from qportfolio.encoding import to_qubo

    encoding = to_qubo(selection_problem, penalty={"cardinality": 0.0} if kind.startswith("xy") else "auto")
    energies = encoding.qubo.all_energies()
    operator, _ = encoding.qubo.to_ising()
    if kind == "vqe":
        ansatz = vqe_ansatz(encoding.num_qubits, 2, "real_amplitudes", "linear")
    else:
        ansatz = qaoa_ansatz(operator, 2, kind, selection_problem.num_selected)
    theta = rng.uniform(-1, 1, ansatz.num_parameters)
    size = 2**encoding.num_qubits
    shots = 50_000
    for backend, again in ((make_backend("exact", shots, 5, energies=energies),
                            make_backend("exact", shots, 5, energies=energies)),
                           (AerStatevectorBackend(seed=5), AerStatevectorBackend(seed=5))):
        exact = backend.distributions(ansatz.circuit, theta)[0]
        probabilities = np.zeros(size)
        probabilities[exact.indices] = exact.probabilities
        sampled = backend.sample(ansatz.circuit, theta, shots)
        repeated = again.sample(ansatz.circuit, theta, shots)
        assert np.array_equal(sampled.indices, repeated.indices)
        assert np.array_equal(sampled.probabilities, repeated.probabilities)
        observed = np.zeros(size)
        observed[sampled.indices] = sampled.probabilities * shots
        assert sampled.shots == shots and observed.sum() == pytest.approx(shots)
        mass = probabilities > 1e-12
        assert not observed[~mass].any()
        expected = shots * probabilities[mass] / probabilities[mass].sum()
        assert chisquare(np.round(observed[mass]), expected).pvalue > 1e-3


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_amplitudes_are_drawn_as_their_probabilities(dtype):
    """Given a statevector, the draws are those of its |ψ|² vector (computed in the amplitudes' precision):
    the same states and counts from the same seed."""
    rng = np.random.default_rng(3)
    psi = (rng.normal(size=512) + 1j * rng.normal(size=512)).astype(dtype)
    psi[::7] = 0
    probabilities = (psi.real * psi.real + psi.imag * psi.imag).astype(np.float64)
    from_state = sample_counts(psi, 20_000, np.random.default_rng(11))
    from_probabilities = sample_counts(probabilities, 20_000, np.random.default_rng(11))
    assert np.array_equal(from_state[0], from_probabilities[0])
    assert np.array_equal(from_state[1], from_probabilities[1])
    assert not np.isin(np.arange(0, 512, 7), from_state[0]).any()
