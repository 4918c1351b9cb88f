"""Hardware backends, verified offline: qiskit-ibm-runtime's local testing mode (fake devices as the
Sampler's mode) and Aer with a device noise model restricted to the used qubits. Nothing of ours is
mocked; IBM Quantum itself is unreachable here, which the ibm:* tests rely on."""

import json
import logging
import math
import time

import numpy as np
import pytest
from conftest import random_covariance
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from qportfolio.backends import AerShotsBackend, Distribution, make_backend
from qportfolio.backends.ibm import AerNoisyBackend, HardwareOptions, RuntimeSamplerBackend
from qportfolio.backends.ibm.compilation import compact_circuit, restrict_target
from qportfolio.backends.ibm.credentials import _one_line, redact
from qportfolio.backends.ibm.report import estimate_qpu_seconds
from qportfolio.circuits import qaoa_ansatz
from qportfolio.encoding import to_qubo
from qportfolio.errors import BackendError, ConfigError
from qportfolio.problems import SelectionProblem

SENTINEL = "SENTINEL-qportfolio-token-7f3a9c"
THETAS = np.array([[0.4, 0.6], [0.2, 1.0]])


@pytest.fixture(scope="module")
def qaoa_circuit():
    """QAOA p = 1 for a 3-asset, K = 2 selection problem: 3 qubits, all pairs coupled."""
    rng = np.random.default_rng(3)
    problem = SelectionProblem(tuple("ABC"), rng.uniform(0.001, 0.01, 3), random_covariance(3, rng, 1e-3), 2)
    operator, _ = to_qubo(problem).qubo.to_ising()
    return qaoa_ansatz(operator, 1).circuit


def basis_state_circuit() -> tuple[QuantumCircuit, int]:
    """Prepares a basis state through entangling gates that need routing on a heavy-hex device."""
    circuit = QuantumCircuit(4)
    circuit.x([0, 2])
    circuit.cx(0, 3)
    circuit.cx(2, 1)
    circuit.cx(3, 1)
    circuit.cx(1, 0)
    probabilities = Statevector(circuit).probabilities()
    expected = int(np.argmax(probabilities))
    assert probabilities[expected] == pytest.approx(1.0)
    return circuit, expected


def dense(distribution: Distribution, n: int) -> np.ndarray:
    out = np.zeros(2**n)
    out[distribution.indices] = distribution.probabilities
    return out


def tv(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def check_close_to_ideal(circuit, thetas, distributions):
    n = circuit.num_qubits
    assert len(distributions) == len(thetas)
    for theta, distribution in zip(thetas, distributions):
        assert distribution.indices.dtype == np.int64
        assert distribution.probabilities.sum() == pytest.approx(1.0)
        ideal = Statevector(circuit.assign_parameters(theta)).probabilities()
        to_ideal, to_uniform = tv(dense(distribution, n), ideal), tv(dense(distribution, n), np.full(2**n, 2.0**-n))
        assert to_ideal < 0.12
        assert to_ideal < to_uniform / 3


# --------------------------------------------------------------------------- ISA reports


@pytest.mark.parametrize("device", ["fake_fez", "fake_sherbrooke"])
def test_isa_report_matches_independent_counts(qaoa_circuit, device):
    backend = make_backend(f"aer_noisy:{device}", 1000, 11, optimization_level=2)
    report = backend.hardware_report(qaoa_circuit, num_circuits=3, shots=1000, jobs=2)
    isa = backend.compile(qaoa_circuit).isa
    target = backend.device.target
    ops = isa.count_ops()
    two_qubit_name = "cz" if device == "fake_fez" else "ecr"
    assert report["device"] == device and report["device_qubits"] == backend.device.num_qubits
    assert report["depth"] == isa.depth()
    assert report["two_qubit_gates"] == {two_qubit_name: ops[two_qubit_name]}
    assert report["two_qubit_gate_count"] == ops[two_qubit_name] > 0
    assert report["gate_count"] == sum(c for name, c in ops.items() if name not in ("measure", "barrier"))
    assert report["count_ops"]["measure"] == qaoa_circuit.num_qubits
    assert set(isa.count_ops()) <= set(target.operation_names) | {"barrier"}
    # Success probability by hand: gate errors of every instruction, readout errors of measured qubits.
    expected = 1.0
    for instruction in isa.data:
        qargs = tuple(isa.find_bit(q).index for q in instruction.qubits)
        if instruction.operation.name == "measure":
            expected *= 1 - target["measure"][qargs].error
        elif instruction.operation.name != "barrier":
            error = target[instruction.operation.name][qargs].error
            expected *= 1 - (error or 0.0)
    assert report["estimated_success_probability"] == pytest.approx(expected, rel=1e-9)
    assert 0 < expected < 1
    # Layout: logical qubit i is measured into bit i from where routing left it.
    measured = {isa.find_bit(i.clbits[0]).index: isa.find_bit(i.qubits[0]).index
                for i in isa.data if i.operation.name == "measure"}
    assert [measured[k] for k in range(qaoa_circuit.num_qubits)] == report["measured_qubits"]
    assert report["measured_qubits"] == list(isa.layout.final_index_layout())
    assert report["layout"] == list(isa.layout.initial_index_layout(filter_ancillas=True))
    assert set(report["measured_qubits"]) <= set(report["active_qubits"])
    # QPU time: the documented model.
    duration = isa.estimate_duration(target, unit="s")
    assert report["circuit_duration_s"] == pytest.approx(duration)
    assert report["estimated_qpu_seconds"] == pytest.approx(2 * 2.0 + 6 * 1000 * (duration + report["rep_delay_s"]))
    assert estimate_qpu_seconds(1e-6, 10, 100, 1, 250e-6) == pytest.approx(2.0 + 10 * 100 * 251e-6)
    assert "estimate" in report["qpu_time_model"]


def test_isa_is_transpiled_once_per_circuit(qaoa_circuit):
    backend = make_backend("aer_noisy:fake_fez", 100, 1)
    assert backend.compile(qaoa_circuit) is backend.compile(qaoa_circuit)
    assert backend.compile(qaoa_circuit.copy()) is not backend.compile(qaoa_circuit)


# --------------------------------------------------------------------------- runs


def test_runtime_sampler_on_fake_fez_local_testing_mode(qaoa_circuit):
    backend = make_backend("ibm_fake:fake_fez", 2000, 5, execution_mode="batch", mitigation="none")
    assert isinstance(backend, RuntimeSamplerBackend) and not backend.exact
    records = []
    backend.on_job(records.append)
    distributions = backend.distributions(qaoa_circuit, THETAS)
    check_close_to_ideal(qaoa_circuit, THETAS, distributions)
    assert [r["kind"] for r in records] == ["evaluation"]
    record = records[0]
    assert record["job_id"] and record["shots"] == 2000 and record["parameters"] == THETAS.tolist()
    assert record["measured_qubits"] == backend.hardware_report(qaoa_circuit)["measured_qubits"]
    json.dumps(record)
    status = backend.status(record["job_id"])
    assert status["state"] == "DONE" and status["quantum_seconds"] == 0
    again = backend.collect(record["job_id"])
    assert [d.counts() for d in again] == [d.counts() for d in distributions]
    assert all(d.shots == 2000 for d in distributions)
    with pytest.raises(BackendError, match="QiskitRuntimeService.job"):
        backend.collect("not-a-job-of-this-process")
    assert backend.status("not-a-job-of-this-process")["state"] == "UNKNOWN"
    backend.close()


def test_layout_decodes_basis_state_on_fake_device():
    circuit, expected = basis_state_circuit()
    # On the line 0-1-2-3 the circuit needs routing, so the final layout differs from the initial one.
    backend = make_backend("ibm_fake:fake_fez", 500, 2, execution_mode="job", optimization_level=1,
                           initial_layout=[0, 1, 2, 3], mitigation="none")
    compiled = backend.compile(circuit)
    assert list(compiled.measured_qubits) != list(compiled.initial_layout)
    records = []
    backend.on_job(records.append)
    final = backend.sample(circuit, np.zeros(0), 500)
    assert records[0]["kind"] == "final"
    assert dense(final, 4)[expected] > 0.8


def test_aer_noisy_qaoa_and_basis_state(qaoa_circuit):
    backend = make_backend("aer_noisy:fake_fez", 2000, 5, mitigation="none")
    assert isinstance(backend, AerNoisyBackend)
    records = []
    backend.on_job(records.append)
    check_close_to_ideal(qaoa_circuit, THETAS, backend.distributions(qaoa_circuit, THETAS))
    circuit, expected = basis_state_circuit()
    routed = make_backend("aer_noisy:fake_fez", 1000, 2, optimization_level=1, initial_layout=[0, 1, 2, 3])
    compiled = routed.compile(circuit)
    assert list(compiled.measured_qubits) != list(compiled.initial_layout)
    assert dense(routed.sample(circuit, np.zeros(0), 1000), 4)[expected] > 0.8
    assert [r["kind"] for r in records] == ["evaluation"]
    assert backend.status(records[0]["job_id"])["state"] == "DONE"


def test_restricted_noise_model_is_exact():
    """The restricted model reproduces, sample for sample, Aer with the whole device's noise model."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel
    from qiskit_aer.primitives import SamplerV2

    from qportfolio.backends.ibm.compilation import _RestrictedDevice

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    backend = make_backend("aer_noisy:fake_torino", 1000, 1)
    compiled = backend.compile(circuit)
    active = compiled.active_qubits
    full = SamplerV2.from_backend(AerSimulator.from_backend(backend.device), seed=9)
    full_counts = full.run([compiled.isa], shots=2000).result()[0].data.meas.get_counts()
    reduced_target = restrict_target(backend.device.target, active)
    assert reduced_target.num_qubits == len(active)
    noise = NoiseModel.from_backend(_RestrictedDevice(reduced_target, "restricted"))
    small = SamplerV2.from_backend(AerSimulator(noise_model=noise), seed=9)
    small_counts = small.run([compact_circuit(compiled.isa, active)], shots=2000).result()[0].data.meas.get_counts()
    assert small_counts == full_counts
    assert sum(v for k, v in full_counts.items() if k in ("00", "11")) > 1700


def test_mthree_mitigation_moves_basis_state_closer():
    pytest.importorskip("mthree")
    circuit = QuantumCircuit(4)
    circuit.x([0, 2])  # |0101⟩: index 5
    # fake_torino reports readout errors of 0.17–0.26 on physical qubits 58, 59, 0 and 19.
    backend = make_backend("aer_noisy:fake_torino", 4000, 3, mitigation="mthree", calibration_shots=4000,
                           initial_layout=[58, 59, 0, 19])
    records = []
    backend.on_job(records.append)
    mitigated = backend.distributions(circuit, np.zeros((1, 0)))[0]
    raw = backend.last_raw[0]
    assert [r["kind"] for r in records] == ["calibration", "evaluation"]
    assert records[0]["measured_qubits"] == [58, 59, 0, 19]
    assert raw.probabilities.sum() == pytest.approx(1) and mitigated.probabilities.sum() == pytest.approx(1)
    assert np.all(mitigated.probabilities >= 0)
    assert dense(raw, 4)[5] < 0.6
    assert dense(mitigated, 4)[5] > dense(raw, 4)[5] + 0.25
    ideal = np.zeros(16)
    ideal[5] = 1
    assert tv(dense(mitigated, 4), ideal) < tv(dense(raw, 4), ideal) / 2
    matrices = backend.calibration([58, 59, 0, 19])
    assert matrices is not None and matrices[0][1][0] > 0.05  # P(read 1 | prepared 0) on qubit 58
    assert backend.hardware_report(circuit)["mitigation"] == "mthree"
    # A second call reuses the calibration: one more job, an evaluation.
    backend.distributions(circuit, np.zeros((2, 0)))
    assert [r["kind"] for r in records] == ["calibration", "evaluation", "evaluation"]


# --------------------------------------------------------------------------- credentials and options


def test_ibm_without_network_fails_fast_without_leaking_the_token(monkeypatch, caplog, capsys):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SENTINEL)
    monkeypatch.setenv("QISKIT_IBM_INSTANCE", "qportfolio-test-instance")
    caplog.set_level(logging.DEBUG)
    messages = []
    for name in ("ibm:ibm_fez", "ibm:least_busy"):
        started = time.perf_counter()
        with pytest.raises(BackendError) as raised:
            make_backend(name, 100, 1, min_qubits=3, connect_timeout=20)
        assert time.perf_counter() - started < 20
        message = str(raised.value)
        messages.append(message)
        assert "\n" not in message and "QISKIT_IBM_TOKEN" in message and "ibm_fake:" in message
    with pytest.raises(BackendError, match="did not answer"):
        make_backend("ibm:ibm_fez", 100, 1, connect_timeout=1e-6)
    out, err = capsys.readouterr()
    for text in [*messages, caplog.text, out, err]:
        assert SENTINEL not in text
    # The redaction our messages go through.
    assert SENTINEL not in _one_line(RuntimeError(f"bad token {SENTINEL} given"))
    assert redact(f"x {SENTINEL} y") == "x *** y"


def test_nothing_produced_contains_the_token(monkeypatch, caplog, qaoa_circuit, tmp_path):
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SENTINEL)
    caplog.set_level(logging.DEBUG)
    backend = make_backend("aer_noisy:fake_fez", 200, 1, mitigation="none")
    records = []
    backend.on_job(records.append)
    backend.distributions(qaoa_circuit, THETAS)
    produced = json.dumps([backend.hardware_report(qaoa_circuit), records, backend.jobs,
                           backend.status(records[0]["job_id"])], default=str)
    assert SENTINEL not in produced + repr(backend) + caplog.text


def test_make_backend_names_and_options():
    assert isinstance(make_backend("aer_shots", 100, 1), AerShotsBackend)
    assert isinstance(make_backend("aer_shots", 100, 1, mitigation=None), AerShotsBackend)
    with pytest.raises(ConfigError, match="apply only"):
        make_backend("aer_statevector", 100, 1, mitigation="mthree")
    with pytest.raises(ConfigError, match="unknown fake device"):
        make_backend("aer_noisy:fake_nowhere", 100, 1)
    with pytest.raises(ConfigError, match="backend.name"):
        make_backend("ibm_somewhere", 100, 1)
    with pytest.raises(ConfigError, match="execution_mode"):
        make_backend("ibm_fake:fake_fez", 100, 1, execution_mode="dedicated")
    with pytest.raises(ConfigError, match="unknown backend option"):
        make_backend("ibm_fake:fake_fez", 100, 1, shotz=3)
    options = HardwareOptions.from_options(dynamical_decoupling="XY4", twirling={"gates": True},
                                           max_execution_time=300, initial_layout=[1, 2])
    assert options.dynamical_decoupling and options.dd_sequence == "XY4"
    assert options.twirling_gates and not options.twirling_measure
    assert options.execution_mode == "batch" and options.initial_layout == (1, 2)
    with pytest.raises(ConfigError, match="sequence"):
        HardwareOptions.from_options(dynamical_decoupling="XZ")
    assert make_backend("aer_noisy:FakeSherbrooke", 100, 1).device_name == "fake_sherbrooke"
    assert math.isclose(make_backend("ibm_fake:torino", 100, 1).device.num_qubits, 133)
