"""The hardware backend: one compile per circuit, job records, collection, calibration."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from hashlib import sha256
from typing import Any

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit

from qportfolio.backends.ibm.compilation import TRANSPILE_TRIALS, CompiledCircuit, compile_circuit
from qportfolio.backends.ibm.fidelity import estimated_fidelity, has_readout_errors
from qportfolio.backends.ibm.mitigation import _distribution, _mitigate
from qportfolio.backends.ibm.options import (
    JOB_KINDS,
    QPU_TIME_MODEL,
    HardwareOptions,
)
from qportfolio.backends.ibm.report import _rep_delay, estimate_qpu_seconds, isa_report
from qportfolio.errors import (
    BackendError,
)

# --------------------------------------------------------------------------- the backends


@dataclass
class _Job:
    record: dict
    handle: Any = None
    counts: list[dict[int, int]] | None = None
    extra: dict = field(default_factory=dict)


class HardwareBackend(ABC):
    """Shared logic: ISA cache, job records and callbacks, reports, readout mitigation.

    Subclasses provide the device (``self.device``: a ``BackendV2`` whose ``target`` the circuits are
    transpiled for) and ``_submit(compiled, values, shots) -> (job_id, handle)`` / ``_counts(job)``.
    """

    exact = False
    #: whether idle qubits decohere where the jobs run (a device; Aer applies noise to gates only)
    idle_decoherence = True

    def __init__(self, name: str, device, shots: int, seed: int | None, options: HardwareOptions):
        self.name = name
        self.device = device
        self.shots = int(shots)
        self.seed = seed
        if options.mitigation == "auto":  # readout mitigation by default where the target reports readout errors
            options = replace(options, mitigation="mthree" if has_readout_errors(device.target) else "none")
        self.options = options
        self._job_counts: dict[str, int] = {}
        self._callbacks: list[Callable[[dict], None]] = []
        self._calibration_callbacks: list[Callable[[dict], None]] = []
        self._compiled: dict[int, tuple[QuantumCircuit, CompiledCircuit]] = {}
        self._jobs: dict[str, _Job] = {}
        self._calibrations: dict[tuple[int, ...], list[np.ndarray]] = {}
        self.last_raw: list | None = None
        if options.mitigation == "mthree":
            try:
                import mthree  # noqa: F401
            except ImportError as exc:
                raise BackendError("backend.mitigation: mthree needs the mthree package: pip install mthree") from exc

    # -- interface ---------------------------------------------------------------------------------

    @property
    def target(self):
        return self.device.target

    @property
    def device_name(self) -> str:
        return str(self.device.name)

    def on_job(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(record)`` as soon as each job has an id (before its result)."""
        self._callbacks.append(callback)

    def compile(self, circuit: QuantumCircuit) -> CompiledCircuit:
        """The measured ISA circuit for ``circuit`` (transpiled once per circuit object)."""
        key = id(circuit)
        cached = self._compiled.get(key)
        if cached is None or cached[0] is not circuit:
            cached = (circuit, compile_circuit(circuit, self.target, self.options, self.seed))
            self._compiled[key] = cached
        return cached[1]

    def distributions(self, circuit: QuantumCircuit, parameter_sets: np.ndarray, shots: int | None = None,
                      kind: str = "evaluation") -> list:
        """One job with all parameter sets in one PUB; distributions over logical indices."""
        job_id = self.submit(circuit, parameter_sets, shots, kind)
        return self.collect(job_id)

    def sample(self, circuit: QuantumCircuit, parameters: np.ndarray, shots: int):
        return self.distributions(circuit, np.atleast_2d(parameters), shots, kind="final")[0]

    def submit(self, circuit: QuantumCircuit, parameter_sets: np.ndarray, shots: int | None = None,
               kind: str = "evaluation") -> str:
        """Submit without waiting; returns the job id (the callbacks have fired by then)."""
        if kind not in JOB_KINDS:
            raise ValueError(f"kind must be one of {JOB_KINDS}")
        compiled = self.compile(circuit)
        thetas = np.atleast_2d(np.asarray(parameter_sets, dtype=float))
        if thetas.shape[1] != circuit.num_parameters:
            raise BackendError(f"{thetas.shape[1]} parameters given for a circuit with {circuit.num_parameters}")
        shots = int(shots or self.shots)
        if self.options.mitigation == "mthree" and kind != "calibration":
            self._ensure_calibration(compiled.measured_qubits)
        return self._start(compiled.isa, compiled.parameter_array(thetas), len(thetas), shots, kind,
                           [[float(t) for t in theta] for theta in thetas], compiled.measured_qubits)

    def collect(self, job_id: str, measured_qubits: list[int] | None = None) -> list:
        """The distributions of a submitted job (waits for it). Mitigated when mitigation is on."""
        job = self._jobs.get(job_id) or self._fetch(job_id)
        if job.counts is None:
            job.counts = self._counts(job)
        raw = [_distribution(c) for c in job.counts]
        if self.options.mitigation != "mthree" or job.record["kind"] == "calibration":
            self.last_raw = raw
            return raw
        qubits = measured_qubits if measured_qubits is not None else job.record.get("measured_qubits")
        if qubits is None:
            raise BackendError(f"job {job_id}: pass measured_qubits (from its job record) to mitigate it")
        matrices = self._ensure_calibration(tuple(int(q) for q in qubits))
        self.last_raw = raw
        return [_mitigate(c, matrices, self.options) for c in job.counts]

    def status(self, job_id: str) -> dict:
        """State and usage of a job: ``state``, ``quantum_seconds`` (None until known)."""
        job = self._jobs.get(job_id)
        if job is None:
            try:
                job = self._fetch(job_id)
            except BackendError as exc:
                return {"job_id": job_id, "backend": self.name, "state": "UNKNOWN", "quantum_seconds": None,
                        "error": str(exc)}
        return {"job_id": job_id, "backend": self.name, "kind": job.record.get("kind"), **self._status(job)}

    @property
    def jobs(self) -> list[dict]:
        """The records of the jobs submitted through this object."""
        return [dict(job.record) for job in self._jobs.values()]

    def hardware_report(self, circuit: QuantumCircuit, num_circuits: int = 1, shots: int | None = None,
                        jobs: int = 1) -> dict:
        """What the device will run for ``circuit`` and the estimated QPU seconds for ``jobs`` jobs of
        ``num_circuits`` circuits × ``shots`` each (an estimate; see :data:`QPU_TIME_MODEL`)."""
        compiled = self.compile(circuit)
        report = isa_report(compiled, self.target)
        shots = int(shots or self.shots)
        rep_delay = _rep_delay(self.device)
        report = {
            "backend": self.name, "device": self.device_name, **report,
            "transpile": {"optimization_level": self.options.optimization_level,
                          "seed_transpiler": compiled.seed_transpiler, "trials": TRANSPILE_TRIALS,
                          "initial_layout": list(self.options.initial_layout) if self.options.initial_layout else None},
            "sampler": self._sampler_description(),
            "mitigation": self.options.mitigation,
            "rep_delay_s": rep_delay,
            "estimate": {"jobs": jobs, "circuits_per_job": num_circuits, "shots": shots},
            "estimated_qpu_seconds": estimate_qpu_seconds(report["circuit_duration_s"], num_circuits * jobs, shots,
                                                          jobs, rep_delay),
            "qpu_time_model": QPU_TIME_MODEL,
        }
        return report

    def fidelity(self, circuit: QuantumCircuit) -> dict:
        """The ISA circuit's two-qubit depth and gate count, and its estimated fidelity on this device
        (:func:`~qportfolio.backends.ibm.fidelity.estimated_fidelity`; readout counted only when unmitigated)."""
        compiled = self.compile(circuit)
        report = isa_report(compiled, self.target)
        return {"two_qubit_depth": report["two_qubit_depth"], "two_qubit_gate_count": report["two_qubit_gate_count"],
                **estimated_fidelity(compiled, self.target, idle=self.idle_decoherence,
                                     readout=self.options.mitigation == "none")}

    def estimate_qpu_seconds(self, circuit: QuantumCircuit, num_circuits: int, shots: int, jobs: int = 1) -> float:
        compiled = self.compile(circuit)
        duration = isa_report(compiled, self.target)["circuit_duration_s"]
        return estimate_qpu_seconds(duration, num_circuits, shots, jobs, _rep_delay(self.device))

    def close(self) -> None:
        """Close an open batch or session (nothing to do otherwise)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # -- jobs ---------------------------------------------------------------------------------------

    def _start(self, isa: QuantumCircuit, values: np.ndarray | None, count: int, shots: int, kind: str,
               parameters: list, measured_qubits: tuple[int, ...], pubs: list | None = None) -> str:
        if pubs is None:
            pubs = [(isa, values)] if values is not None and values.shape[1] else [(isa,)] * count
        job_id, handle = self._submit(pubs, shots, self._job_seed(kind, parameters, measured_qubits, shots))
        record = {"job_id": job_id, "kind": kind, "parameters": parameters, "shots": shots,
                  "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "backend": self.name, "measured_qubits": [int(q) for q in measured_qubits]}
        self._jobs[job_id] = _Job(record, handle, extra={"num_pubs": len(pubs)})
        for callback in self._callbacks:
            callback(dict(record))
        return job_id

    def _job_seed(self, kind: str, parameters: list, measured_qubits, shots: int) -> int:
        """The simulator seed of a job, from the run seed and the job itself (its kind, parameters, qubits,
        shots, and how many identical jobs came before it): a resumed run gives every job it runs the seed
        the uninterrupted run gave it, whatever this process ran before."""
        content = repr((self.seed, kind, [[float(t).hex() for t in theta] for theta in parameters],
                        [int(q) for q in measured_qubits], int(shots)))
        index = self._job_counts.get(content, 0)
        self._job_counts[content] = index + 1
        return int.from_bytes(sha256(f"{content}#{index}".encode()).digest()[:4], "big") % (2**31 - 1)

    @abstractmethod
    def _submit(self, pubs: list, shots: int, seed: int) -> tuple[str, Any]:
        """Send ``pubs`` as one job; return its id and a handle to fetch it."""

    @abstractmethod
    def _counts(self, job: _Job) -> list[dict[int, int]]:
        """Counts per PUB of a finished job (logical bit order)."""

    @abstractmethod
    def _status(self, job: _Job) -> dict:
        """The job's state and QPU usage."""

    def _fetch(self, job_id: str) -> _Job:
        raise BackendError(f"job {job_id} is not known to this process: {self.name} keeps its jobs in memory "
                           f"only (resume across processes needs an ibm:* backend)")

    def _sampler_description(self) -> dict:
        return self.options.sampler_options()

    # -- readout mitigation ---------------------------------------------------------------------------

    def _ensure_calibration(self, qubits: tuple[int, ...]) -> list[np.ndarray]:
        """Per-qubit assignment matrices A[measured, prepared] for ``qubits`` (one job, cached)."""
        if qubits in self._calibrations:
            return self._calibrations[qubits]
        n, width = len(qubits), self.target.num_qubits
        circuits = []
        for prepared in (0, 1):
            circuit = QuantumCircuit(width)
            circuit.add_register(ClassicalRegister(n, "meas"))
            if prepared:
                circuit.x(list(qubits))
            circuit.measure(list(qubits), range(n))
            circuits.append(circuit)
        job_id = self._start(circuits[0], None, 2, self.options.calibration_shots, "calibration", [],
                             qubits, pubs=[(c,) for c in circuits])
        zeros, ones = self.collect(job_id)
        matrices = []
        for i in range(n):
            p1_given0 = float(zeros.probabilities[(zeros.indices >> i) & 1 == 1].sum())
            p0_given1 = float(ones.probabilities[(ones.indices >> i) & 1 == 0].sum())
            matrices.append(np.array([[1 - p1_given0, p0_given1], [p1_given0, 1 - p0_given1]], dtype=np.float32))
        self._calibrations[qubits] = matrices
        record = {"job_id": job_id, "measured_qubits": [int(q) for q in qubits], "shots": self.options.calibration_shots,
                  "matrices": [m.tolist() for m in matrices]}
        for callback in self._calibration_callbacks:
            callback(record)
        return matrices

    def on_calibration(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(record)`` when a readout calibration is measured: ``job_id``, ``measured_qubits``,
        ``shots`` and the per-qubit assignment ``matrices`` (to keep it, and never pay for it twice)."""
        self._calibration_callbacks.append(callback)

    def restore_calibration(self, record: dict) -> None:
        """Reuse a calibration recorded by :meth:`on_calibration` (a resumed run) instead of measuring it again."""
        qubits = tuple(int(q) for q in record["measured_qubits"])
        self._calibrations[qubits] = [np.asarray(m, dtype=np.float32) for m in record["matrices"]]

    def calibration(self, qubits) -> list[list[list[float]]] | None:
        """The assignment matrices measured for ``qubits`` (None if not calibrated)."""
        matrices = self._calibrations.get(tuple(int(q) for q in qubits))
        return None if matrices is None else [m.tolist() for m in matrices]


