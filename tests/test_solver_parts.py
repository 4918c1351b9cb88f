"""The solver's parts in their own modules (issue 24): one encoding policy for the solver and the samplers, one
home for the backend option defaults, one result shape; each checked against enumeration or the problem itself."""

import dataclasses

import numpy as np
import pytest
from conftest import all_bits

import qportfolio.optimize as optimize
from qportfolio.app.config import BackendConfig
from qportfolio.backends.ibm.options import BACKEND_OPTION_DEFAULTS, HardwareOptions
from qportfolio.baselines import sampler_encoding
from qportfolio.classical import solve_exact
from qportfolio.encoding import MAX_ENUMERATED_QUBITS, Encoder
from qportfolio.optimize import QuantumSolver
from qportfolio.problems import Evaluation


def enumerated_ground(problem, encoding, states=None):
    """The allocation of the lowest-energy bitstring among ``states`` (all 2ⁿ by default), by brute force."""
    bits = all_bits(encoding.num_qubits) if states is None else states
    return encoding.decode(bits[int(np.argmin(encoding.qubo.energies(bits)))][None, :])[0]


def test_the_solver_encodes_through_the_encoder(shares_problem, selection_problem):
    exact = solve_exact(shares_problem)
    direct = Encoder().encode(shares_problem, exact.vector, optimal_objective=exact.objective)
    through = QuantumSolver().encode(shares_problem, exact.vector, optimal_objective=exact.objective)
    assert through.choice == direct.choice and through.num_qubits == direct.num_qubits
    assert np.array_equal(through.energies, direct.energies)
    # the XY mixer keeps 1ᵀx = K: the cardinality penalty is dropped, and on the weight-K states the QUBO is the
    # objective up to a constant (every such state checked against the problem's own evaluation)
    encoded = QuantumSolver(mixer="xy_complete").encode(selection_problem)
    assert encoded.encoding.constraints[0].penalty == 0.0
    bits = all_bits(encoded.num_qubits)
    weight_k = bits[bits.sum(axis=1) == selection_problem.num_selected]
    energies = encoded.encoding.qubo.energies(weight_k)
    objectives = selection_problem.evaluate(encoded.encoding.decode(weight_k)).objective
    assert np.allclose(energies - objectives, (energies - objectives)[0], atol=1e-12)
    assert selection_problem.evaluate(enumerated_ground(selection_problem, encoded.encoding, weight_k)[None, :]) \
        .objective[0] == solve_exact(selection_problem).objective


def test_the_encoder_interprets_what_it_encodes(shares_problem):
    """Every allocation within the share bounds, encoded to bits and interpreted back, is itself (slack encoding:
    its register bits set too); and every bitstring interprets to an allocation within the bounds."""
    encoder = Encoder(constraint_encoding="slack")
    encoded = encoder.encode(shares_problem)
    grid = np.stack(np.meshgrid(*[np.arange(u + 1) for u in shares_problem.upper_bounds], indexing="ij"), -1)
    allocations = grid.reshape(-1, shares_problem.num_assets)
    bits = np.array([encoded.encoding.encode(x) for x in allocations])
    assert np.array_equal(encoder.interpret(encoded, bits), allocations)
    every = encoder.interpret(encoded, all_bits(encoded.num_qubits))
    assert (every >= 0).all() and (every <= np.asarray(shares_problem.upper_bounds)).all()


def test_the_samplers_default_qubo_is_the_encoders_slack_encoding_and_its_ground_state_the_optimum(shares_problem):
    exact = solve_exact(shares_problem)
    encoding, which = sampler_encoding(shares_problem)
    encoded = Encoder(constraint_encoding="slack").encode(shares_problem, for_circuit=False)
    assert encoding.num_qubits == encoded.num_qubits <= MAX_ENUMERATED_QUBITS
    assert np.array_equal(encoding.qubo.all_energies(), encoded.energies)
    assert which == f"the problem's QUBO ({encoded.calibration.reason})"
    ground = enumerated_ground(shares_problem, encoding)
    assert shares_problem.evaluate(ground[None, :]).objective[0] == exact.objective


def test_backend_option_defaults_have_one_home():
    solver = {f.name: f.default for f in dataclasses.fields(QuantumSolver)}
    config = BackendConfig.model_fields
    hardware = {f.name: f.default for f in dataclasses.fields(HardwareOptions)}
    for key, default in BACKEND_OPTION_DEFAULTS.items():
        assert solver[key] == default, key
        assert config[key].default == default, key
        if default is not None and key in hardware:  # None: HardwareOptions' own choice
            assert hardware[key] == default, key
    assert hardware["twirling_gates"] == hardware["twirling_measure"] == BACKEND_OPTION_DEFAULTS["twirling"]
    assert QuantumSolver().backend_options() == {}


def test_one_name_per_concept():
    assert optimize.OptimizerCall is not Evaluation and not hasattr(optimize, "Evaluation")


def test_the_quantum_result_has_the_solution_shape(selection_problem):
    result = QuantumSolver(reps=1, maxiter=30, search="fixed").solve(selection_problem)
    assert result.feasible
    vector = np.array([result.allocation[t] for t in selection_problem.tickers])
    row = selection_problem.evaluate(vector[None, :]).row(0)
    for name in ("objective", "variance", "expected_return", "cost"):
        value = getattr(result, name)
        assert isinstance(value, float) and value == row[name], name
    entry = result.to_dict()["solutions"]["quantum"]
    assert {k: entry[k] for k in row} == row and entry["allocation"] == result.allocation
    text = repr(result)
    assert text.startswith("QuantumResult(") and "\n" not in text and len(text) < 300
    assert f"objective={float(f'{result.objective:.6g}')}" in text


def test_mitigation_none_is_accepted_by_the_simulators(selection_problem):
    """``mitigation: none`` says what a simulator does anyway: it is not handed to the exact backend (which
    rejects hardware options), and the answer equals the default run's."""
    plain = QuantumSolver(backend="exact", seed=1).solve(selection_problem)
    none = QuantumSolver(backend="exact", seed=1, mitigation="none").solve(selection_problem)
    assert "mitigation" not in QuantumSolver(backend="exact", mitigation="none").backend_options()
    assert none.allocation == plain.allocation and none.p_optimal == pytest.approx(plain.p_optimal, abs=1e-12)
    assert none.raw_table is None  # nothing was mitigated, so there is no "before mitigation" table
