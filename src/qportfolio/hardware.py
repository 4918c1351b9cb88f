"""IBM Quantum hardware and its offline stand-ins, behind the backend interface of :mod:`qportfolio.backends`.

Backend names (``backend.name`` in a config):

* ``ibm:<device>`` / ``ibm:least_busy`` — a real IBM Quantum device through ``QiskitRuntimeService``. The
  account comes from ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_INSTANCE`` or Qiskit's saved account
  (``account`` = its name; ``channel``, ``instance`` override). This module never reads, prints, logs,
  returns or writes the token; qiskit-ibm-runtime reads it itself.
* ``ibm_fake:<fake device>`` (``fake_fez``, ``fake_torino``, ``fake_sherbrooke``, …) — the same Sampler,
  the same options and the same job handling, in qiskit-ibm-runtime's *local testing mode*: the fake
  device object is the Sampler's ``mode`` and the job runs on Aer with the whole device's noise model.
* ``aer_noisy:<fake device>`` — Aer with that device's noise model restricted to the physical qubits the
  ISA circuit touches (see :class:`AerNoisyBackend`); the fast offline stand-in for a variational run.

The sampler is qiskit-ibm-runtime's client-side ``qiskit_ibm_runtime.executor_sampler.Sampler``
(built on the Executor primitive). In 0.50+ the top-level ``SamplerV2`` is deprecated in its favour; the
top-level ``Sampler`` name will be switched to it in a later release.

Circuits: the logical ansatz (no measurements) is transpiled ONCE per circuit object with Qiskit's preset
pass manager for the device's target (``optimization_level``, ``seed_transpiler``, ``initial_layout``).
Measurements are then appended using the final layout: logical qubit ``i`` (wherever routing left it) is
measured into classical bit ``i``, so every returned index ``z`` has bit ``i`` = logical qubit ``i``, and a
job's result can be decoded without knowing its layout (which is what makes resuming simple). All
parameter sets of one call go in ONE PUB with a parameter array of shape ``(m, k)``.

Jobs: every submission calls the ``on_job`` callbacks with ``{"job_id", "kind", "parameters", "shots",
"submitted_at", "backend", "measured_qubits"}`` as soon as the job id exists; ``kind`` is
``"evaluation"``, ``"final"`` or ``"calibration"`` (readout-mitigation calibration). ``collect(job_id)``
fetches the distributions of a job (for ``ibm:*``, from ``QiskitRuntimeService.job(job_id)``, which works
across processes; local-testing and ``aer_noisy`` jobs live in this process only) and ``status(job_id)``
reports its state and QPU usage.

Readout mitigation (``mitigation: mthree``): one calibration job per set of measured qubits (two circuits,
all qubits prepared in 0 and all in 1, mthree's "marginal" method), then ``mthree`` corrects every
sampled distribution; its quasi-probabilities are projected onto the nearest probability distribution.
``distributions`` and ``sample`` return the mitigated distributions; the raw ones stay in ``last_raw``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit

from qportfolio.errors import BackendError, ConfigError

PREFIXES = ("ibm", "ibm_fake", "aer_noisy")
EXECUTION_MODES = ("job", "batch", "session")
DD_SEQUENCES = ("XX", "XpXm", "XY4")
MITIGATIONS = ("none", "mthree")
AER_METHODS = ("auto", "density_matrix", "statevector")
JOB_KINDS = ("evaluation", "final", "calibration")

#: Fixed per-job QPU overhead in the usage estimate (seconds): loading, calibration checks, readout.
JOB_OVERHEAD_S = 2.0
#: Repetition delay assumed when the device reports none (IBM's usual default, seconds).
DEFAULT_REP_DELAY_S = 250e-6
#: Non-gate instructions that carry no error and no time of their own in the reports.
_DIRECTIVES = ("barrier", "delay")

QPU_TIME_MODEL = (
    f"estimate: jobs × {JOB_OVERHEAD_S} s + circuits × shots × (ISA circuit duration from the target's gate "
    "and measure durations + the device's repetition delay); real usage also depends on the queue-side "
    "compilation, twirling randomizations and the device's own overheads"
)


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class HardwareOptions:
    """The options of a hardware backend (``backend.*`` in a config).

    ``dynamical_decoupling`` accepts ``false``, ``true``, a sequence name (``XX``, ``XpXm``, ``XY4``) or
    ``{enable, sequence}``; ``twirling`` accepts a bool (gates and measurements) or ``{gates, measure}``.
    """

    optimization_level: int = 2
    seed_transpiler: int | None = None
    initial_layout: tuple[int, ...] | None = None
    execution_mode: str = "batch"
    dynamical_decoupling: bool = False
    dd_sequence: str = "XY4"
    twirling_gates: bool = False
    twirling_measure: bool = False
    max_execution_time: int | None = None
    mitigation: str = "none"
    calibration_shots: int = 10_000
    min_qubits: int | None = None
    account: str | None = None
    channel: str | None = None
    instance: str | None = None
    connect_timeout: float = 30.0
    aer_method: str = "auto"

    @classmethod
    def from_options(cls, **options) -> HardwareOptions:
        values: dict[str, Any] = {}
        names = set(cls.__dataclass_fields__)
        for key, value in options.items():
            if value is None:
                continue
            if key == "dynamical_decoupling":
                values.update(_dd_option(value))
            elif key == "twirling":
                values.update(_twirling_option(value))
            elif key == "initial_layout":
                values[key] = tuple(int(q) for q in value)
            elif key in names:
                values[key] = value
            else:
                raise ConfigError(f"unknown backend option {key!r}; known: {sorted(names | {'twirling'})}")
        made = cls(**values)
        made.validate()
        return made

    def validate(self) -> None:
        if self.optimization_level not in (0, 1, 2, 3):
            raise ConfigError(f"backend.optimization_level must be 0, 1, 2 or 3, got {self.optimization_level!r}")
        if self.execution_mode not in EXECUTION_MODES:
            raise ConfigError(f"backend.execution_mode must be one of {EXECUTION_MODES}, got {self.execution_mode!r}")
        if self.dd_sequence not in DD_SEQUENCES:
            raise ConfigError(f"backend.dynamical_decoupling sequence must be one of {DD_SEQUENCES}, "
                              f"got {self.dd_sequence!r}")
        if self.mitigation not in MITIGATIONS:
            raise ConfigError(f"backend.mitigation must be one of {MITIGATIONS}, got {self.mitigation!r}")
        if self.aer_method not in AER_METHODS:
            raise ConfigError(f"backend.aer_method must be one of {AER_METHODS}, got {self.aer_method!r}")
        if self.max_execution_time is not None and self.max_execution_time <= 0:
            raise ConfigError(f"backend.max_execution_time must be a positive number of seconds, "
                              f"got {self.max_execution_time!r}")
        if self.calibration_shots < 1:
            raise ConfigError(f"backend.calibration_shots must be ≥ 1, got {self.calibration_shots!r}")
        if self.min_qubits is not None and self.min_qubits < 1:
            raise ConfigError(f"backend.min_qubits must be ≥ 1, got {self.min_qubits!r}")

    def sampler_options(self) -> dict:
        """The options this run gives the runtime Sampler (recorded in the report)."""
        return {
            "dynamical_decoupling": {"enable": self.dynamical_decoupling, "sequence_type": self.dd_sequence},
            "twirling": {"enable_gates": self.twirling_gates, "enable_measure": self.twirling_measure},
            "max_execution_time": self.max_execution_time,
            "execution_mode": self.execution_mode,
        }


def _dd_option(value) -> dict:
    if isinstance(value, bool):
        return {"dynamical_decoupling": value}
    if isinstance(value, str):
        return {"dynamical_decoupling": True, "dd_sequence": value}
    if isinstance(value, dict):
        unknown = set(value) - {"enable", "sequence"}
        if unknown:
            raise ConfigError(f"backend.dynamical_decoupling takes enable and sequence, not {sorted(unknown)}")
        out = {"dynamical_decoupling": bool(value.get("enable", True))}
        if value.get("sequence") is not None:
            out["dd_sequence"] = value["sequence"]
        return out
    raise ConfigError(f"backend.dynamical_decoupling must be a bool, a sequence name or a mapping, got {value!r}")


def _twirling_option(value) -> dict:
    if isinstance(value, bool):
        return {"twirling_gates": value, "twirling_measure": value}
    if isinstance(value, dict):
        unknown = set(value) - {"gates", "measure"}
        if unknown:
            raise ConfigError(f"backend.twirling takes gates and measure, not {sorted(unknown)}")
        return {"twirling_gates": bool(value.get("gates", False)),
                "twirling_measure": bool(value.get("measure", False))}
    raise ConfigError(f"backend.twirling must be a bool or {{gates, measure}}, got {value!r}")


# --------------------------------------------------------------------------- credentials


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with the IBM token (from the environment, and any ``secrets`` given) replaced by ***."""
    candidates = [os.environ.get("QISKIT_IBM_TOKEN"), *secrets]
    for secret in candidates:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _one_line(exc: BaseException, *secrets: str | None) -> str:
    message = redact(str(exc), *secrets).strip().splitlines()
    first = message[0] if message else ""
    return f"{type(exc).__name__}: {first}"[:300]


# --------------------------------------------------------------------------- devices


def fake_device(name: str):
    """A fake device of qiskit-ibm-runtime by name: ``fake_fez``, ``FakeFez``, ``fez`` are the same."""
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    def key(text: str) -> str:
        text = text.lower().replace("_", "").replace("-", "")
        text = text.removeprefix("fake").removeprefix("ibm")
        return text.removesuffix("v2")

    wanted = key(name)
    classes = {}
    for attribute in dir(fake_provider):
        cls = getattr(fake_provider, attribute)
        if isinstance(cls, type) and issubclass(cls, FakeBackendV2) and attribute.startswith("Fake"):
            classes[key(attribute)] = cls
    if wanted not in classes:
        examples = ", ".join(f"fake_{k}" for k in ("fez", "torino", "sherbrooke", "kyiv", "marrakesh"))
        raise ConfigError(f"unknown fake device {name!r}: use one of qiskit-ibm-runtime's fake devices, "
                          f"e.g. {examples}")
    return classes[wanted]()


def _connect(options: HardwareOptions, device: str):
    """``QiskitRuntimeService`` and the device, or a one-line :class:`BackendError` within the timeout."""
    outcome: dict[str, Any] = {}

    def attempt():
        try:
            from qiskit_ibm_runtime import QiskitRuntimeService

            kwargs = {k: v for k, v in (("name", options.account), ("channel", options.channel),
                                        ("instance", options.instance)) if v is not None}
            service = QiskitRuntimeService(**kwargs)
            if device == "least_busy":
                backend = service.least_busy(min_num_qubits=options.min_qubits, operational=True, simulator=False)
            else:
                backend = service.backend(device)
            outcome["value"] = (service, backend)
        except BaseException as exc:  # noqa: BLE001 - reported as one line below
            outcome["error"] = exc

    thread = threading.Thread(target=attempt, name="qportfolio-ibm-connect", daemon=True)
    thread.start()
    thread.join(options.connect_timeout)
    advice = ("save an account (QiskitRuntimeService.save_account) or set QISKIT_IBM_TOKEN and "
              "QISKIT_IBM_INSTANCE, or run offline with ibm_fake:<device> or aer_noisy:<device> "
              "(e.g. ibm_fake:fake_fez)")
    if thread.is_alive():
        raise BackendError(f"IBM Quantum did not answer within {options.connect_timeout:g} s for "
                           f"ibm:{device}: check the network, or {advice}")
    if "error" in outcome:
        raise BackendError(f"cannot use IBM Quantum backend ibm:{device} ({_one_line(outcome['error'])}): {advice}")
    return outcome["value"]


# --------------------------------------------------------------------------- compilation


@dataclass
class CompiledCircuit:
    """A logical circuit transpiled to a device's ISA, measured into logical bit order."""

    isa: QuantumCircuit
    num_logical: int
    initial_layout: tuple[int, ...]
    measured_qubits: tuple[int, ...]
    active_qubits: tuple[int, ...]
    columns: np.ndarray  # for each parameter of ``isa`` (in its order), its column in the logical order

    def parameter_array(self, parameter_sets: np.ndarray) -> np.ndarray:
        thetas = np.atleast_2d(np.asarray(parameter_sets, dtype=float))
        return thetas[:, self.columns]


def compile_circuit(circuit: QuantumCircuit, target, options: HardwareOptions, seed: int | None) -> CompiledCircuit:
    """Transpile with the preset pass manager for ``target`` and measure logical qubit i into bit i."""
    from qiskit.transpiler import generate_preset_pass_manager

    if circuit.num_clbits:
        raise BackendError("hardware backends take the ansatz without measurements; they add their own")
    if circuit.num_qubits > target.num_qubits:
        raise BackendError(f"the circuit has {circuit.num_qubits} qubits and the device only {target.num_qubits}")
    if options.initial_layout is not None and len(options.initial_layout) != circuit.num_qubits:
        raise ConfigError(f"backend.initial_layout lists {len(options.initial_layout)} physical qubits for a "
                          f"{circuit.num_qubits}-qubit circuit")
    seed_transpiler = options.seed_transpiler if options.seed_transpiler is not None else seed
    manager = generate_preset_pass_manager(
        optimization_level=options.optimization_level, target=target, seed_transpiler=seed_transpiler,
        initial_layout=list(options.initial_layout) if options.initial_layout is not None else None)
    isa = manager.run(circuit)
    n = circuit.num_qubits
    if isa.layout is not None:
        final = [int(q) for q in isa.layout.final_index_layout()]
        initial = [int(q) for q in isa.layout.initial_index_layout(filter_ancillas=True)]
    else:  # nothing to lay out (cannot happen for a device target, kept for safety)
        final = initial = list(range(n))
    register = ClassicalRegister(n, "meas")
    isa.add_register(register)
    for i, physical in enumerate(final):
        isa.measure(physical, register[i])
    active = sorted({isa.find_bit(q).index for instruction in isa.data
                     if instruction.operation.name not in _DIRECTIVES for q in instruction.qubits})
    logical = {p: k for k, p in enumerate(circuit.parameters)}
    missing = [p.name for p in isa.parameters if p not in logical]
    if missing:
        raise BackendError(f"transpilation introduced parameters {missing}")
    columns = np.array([logical[p] for p in isa.parameters], dtype=int)
    return CompiledCircuit(isa, n, tuple(initial), tuple(final), tuple(active), columns)


# --------------------------------------------------------------------------- reports


def isa_report(compiled: CompiledCircuit, target) -> dict:
    """What the device will run: size, two-qubit gates, and an error-rate success estimate."""
    isa = compiled.isa
    ops = {name: int(count) for name, count in isa.count_ops().items()}
    two_qubit: dict[str, int] = {}
    log_success = 0.0
    for instruction in isa.data:
        name = instruction.operation.name
        if name in _DIRECTIVES:
            continue
        qargs = tuple(isa.find_bit(q).index for q in instruction.qubits)
        if len(qargs) == 2:
            two_qubit[name] = two_qubit.get(name, 0) + 1
        error = _instruction_error(target, name, qargs)
        log_success += math.log1p(-min(error, 1.0)) if error < 1.0 else -math.inf
    gate_count = sum(c for name, c in ops.items() if name not in _DIRECTIVES and name != "measure")
    try:
        duration = float(isa.estimate_duration(target, unit="s"))
    except Exception:  # noqa: BLE001 - a target without durations
        duration = None
    return {
        "device_qubits": int(target.num_qubits),
        "logical_qubits": compiled.num_logical,
        "layout": list(compiled.initial_layout),
        "measured_qubits": list(compiled.measured_qubits),
        "active_qubits": list(compiled.active_qubits),
        "num_active_qubits": len(compiled.active_qubits),
        "depth": int(isa.depth()),
        "two_qubit_depth": int(isa.depth(lambda x: x.operation.num_qubits == 2 and x.operation.name not in _DIRECTIVES)),
        "two_qubit_gates": two_qubit,
        "two_qubit_gate_count": int(sum(two_qubit.values())),
        "gate_count": int(gate_count),
        "count_ops": ops,
        "estimated_success_probability": float(math.exp(log_success)),
        "success_probability_model": "Π over ISA gates (1 − gate error) × Π over measured qubits (1 − readout "
                                     "error), from the device's reported error rates",
        "circuit_duration_s": duration,
    }


def _instruction_error(target, name: str, qargs: tuple[int, ...]) -> float:
    if name not in target.operation_names:
        return 0.0
    properties = target[name]
    if properties is None:
        return 0.0
    entry = properties.get(qargs)
    if entry is None or entry.error is None:
        return 0.0
    return float(entry.error)


def estimate_qpu_seconds(duration_s: float | None, num_circuits: int, shots: int, jobs: int = 1,
                         rep_delay_s: float = DEFAULT_REP_DELAY_S) -> float:
    """QPU usage estimate (see :data:`QPU_TIME_MODEL`); an estimate, not IBM's bill."""
    per_shot = (duration_s or 0.0) + rep_delay_s
    return float(jobs * JOB_OVERHEAD_S + num_circuits * shots * per_shot)


def _rep_delay(device) -> float:
    value = getattr(device, "default_rep_delay", None)
    if value is None:
        try:
            value = getattr(device.configuration(), "default_rep_delay", None)
        except Exception:  # noqa: BLE001
            value = None
    if value is None:
        return DEFAULT_REP_DELAY_S
    value = float(value)
    return value * 1e-6 if value > 1e-2 else value  # some configurations give microseconds


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

    def __init__(self, name: str, device, shots: int, seed: int | None, options: HardwareOptions):
        self.name = name
        self.device = device
        self.shots = int(shots)
        self.seed = seed
        self.options = options
        self._rng = np.random.default_rng(seed)
        self._callbacks: list[Callable[[dict], None]] = []
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
                          "seed_transpiler": (self.options.seed_transpiler if self.options.seed_transpiler
                                              is not None else self.seed),
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
        job_seed = int(self._rng.integers(2**31 - 1))
        job_id, handle = self._submit(pubs, shots, job_seed)
        record = {"job_id": job_id, "kind": kind, "parameters": parameters, "shots": shots,
                  "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "backend": self.name, "measured_qubits": [int(q) for q in measured_qubits]}
        self._jobs[job_id] = _Job(record, handle, extra={"num_pubs": len(pubs)})
        for callback in self._callbacks:
            callback(dict(record))
        return job_id

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
        return matrices

    def calibration(self, qubits) -> list[list[list[float]]] | None:
        """The assignment matrices measured for ``qubits`` (None if not calibrated)."""
        matrices = self._calibrations.get(tuple(int(q) for q in qubits))
        return None if matrices is None else [m.tolist() for m in matrices]


def _distribution(counts: dict[int, int]):
    from qportfolio.backends import Distribution

    return Distribution.from_counts(counts)


def _mitigate(counts: dict[int, int], matrices: list[np.ndarray], options: HardwareOptions):
    """mthree correction of ``counts``, projected onto the nearest probability distribution."""
    import mthree

    from qportfolio.backends import Distribution

    n = len(matrices)
    mitigator = mthree.M3Mitigation()
    mitigator.cals_from_matrices(matrices)
    labelled = {format(k, f"0{n}b"): int(v) for k, v in counts.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quasi = mitigator.apply_correction(labelled, list(range(n)))
    probabilities = quasi.nearest_probability_distribution()
    shots = int(sum(counts.values()))
    items = [(int(label, 2), float(p)) for label, p in probabilities.items() if p > 0]
    indices = np.array([k for k, _ in items], dtype=np.int64)
    values = np.array([p for _, p in items])
    return Distribution(indices, values / values.sum(), shots)


def _bit_array_counts(data) -> list[dict[int, int]]:
    bits = data.meas
    if bits.ndim == 0:
        return [bits.get_int_counts()]
    return [bits[k].get_int_counts() for k in range(bits.shape[0])]


class RuntimeSamplerBackend(HardwareBackend):
    """``ibm:*`` and ``ibm_fake:*``: qiskit-ibm-runtime's client-side Sampler (``executor_sampler``).

    ``ibm_fake`` gives the fake device itself as the ``mode`` (local testing mode): everything but the
    service and device construction is the code path of a real account. Batch and session modes are
    accepted in local testing mode and ignored by it. Note that local testing mode rebuilds the whole
    device's Aer noise model for every job (4–6 s on a 156-qubit device before any simulation).
    """

    def __init__(self, name: str, device, shots: int, seed: int | None, options: HardwareOptions,
                 service=None, local: bool = False):
        super().__init__(name, device, shots, seed, options)
        self._service = service
        self._local = local
        self._mode = None
        self._mode_lock = threading.Lock()

    def _execution_mode(self):
        if self.options.execution_mode == "job":
            return self.device
        with self._mode_lock:
            if self._mode is None:
                from qiskit_ibm_runtime import Batch, Session

                try:
                    factory = Batch if self.options.execution_mode == "batch" else Session
                    self._mode = factory(backend=self.device)
                except Exception as exc:  # noqa: BLE001
                    hint = (" (open-plan accounts cannot open sessions: use execution_mode: batch)"
                            if self.options.execution_mode == "session" else "")
                    raise BackendError(f"cannot open a {self.options.execution_mode} on {self.device_name}: "
                                       f"{_one_line(exc)}{hint}") from None
            return self._mode

    def _sampler(self, seed: int):
        from qiskit_ibm_runtime.executor_sampler import Sampler

        sampler = Sampler(mode=self._execution_mode())
        o = self.options
        sampler.options.dynamical_decoupling.enable = o.dynamical_decoupling
        sampler.options.dynamical_decoupling.sequence_type = o.dd_sequence
        sampler.options.twirling.enable_gates = o.twirling_gates
        sampler.options.twirling.enable_measure = o.twirling_measure
        if o.max_execution_time is not None:
            sampler.options.max_execution_time = int(o.max_execution_time)
        if self._local:
            sampler.options.simulator.seed_simulator = seed
        return sampler

    def _submit(self, pubs, shots, seed):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # local mode: "options have no effect"
                job = self._sampler(seed).run(pubs, shots=shots)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"{self.name}: the job was not submitted ({_one_line(exc)})") from None
        return str(job.job_id()), job

    def _counts(self, job: _Job):
        try:
            result = job.handle.result()
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"{self.name}: job {job.record['job_id']} failed ({_one_line(exc)})") from None
        out = []
        for pub_result in result:
            out.extend(_bit_array_counts(pub_result.data))
        return out

    def _status(self, job: _Job) -> dict:
        handle = job.handle
        state = handle.status()
        state = str(getattr(state, "name", state))
        seconds = None
        usage: dict = {}
        with contextlib.suppress(Exception):  # metrics are best effort
            usage = dict(handle.metrics().get("usage", {}) or {})
            seconds = usage.get("quantum_seconds", usage.get("qpu_charge_time_seconds"))
        if seconds is None:
            try:
                seconds = float(handle.usage())
            except Exception:  # noqa: BLE001
                seconds = None
        out = {"state": state, "quantum_seconds": seconds, "usage": usage, "local": self._local}
        if state in ("ERROR", "CANCELLED"):
            with contextlib.suppress(Exception):
                out["error"] = redact(str(handle.error_message()))
        return out

    def _fetch(self, job_id: str) -> _Job:
        if self._local or self._service is None:
            raise BackendError(f"job {job_id} is not known to this process: local testing mode ({self.name}) "
                               f"keeps jobs in memory only; a real account resumes with "
                               f"QiskitRuntimeService.job(job_id)")
        try:
            handle = self._service.job(job_id)
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"cannot fetch job {job_id} from IBM Quantum ({_one_line(exc)})") from None
        record = {"job_id": job_id, "kind": "evaluation", "backend": self.name}
        job = _Job(record, handle)
        self._jobs[job_id] = job
        return job

    def close(self) -> None:
        with self._mode_lock:
            if self._mode is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    self._mode.close()
                self._mode = None


class AerNoisyBackend(HardwareBackend):
    """``aer_noisy:<fake device>``: the ISA circuit on Aer with the device's noise model, restricted.

    The logical circuit is transpiled for the full fake device (same layout and routing as the real
    device would get). The measured ISA circuit is then compacted onto the physical qubits it touches
    (``active_qubits``), and the noise model is built from the device's target restricted to those qubits
    (their gate errors and durations, T1/T2, readout errors). Aer would drop idle qubits from the
    simulation anyway (truncation), so the restriction saves building the whole device's noise model
    (4–6 s for 156 qubits, per job in local testing mode), not simulation time.

    Simulation method ``aer_method``: ``auto`` = ``density_matrix`` up to 10 active qubits (cost
    independent of shots), else ``statevector`` trajectories with shot branching. The runtime Sampler's
    dynamical decoupling and twirling are *not* simulated here (the report says so).
    """

    def __init__(self, name: str, device, shots: int, seed: int | None, options: HardwareOptions):
        super().__init__(name, device, shots, seed, options)
        self._simulators: dict[tuple[int, ...], Any] = {}

    def _simulator(self, active: tuple[int, ...]):
        simulator = self._simulators.get(active)
        if simulator is None:
            from qiskit_aer import AerSimulator
            from qiskit_aer.noise import NoiseModel

            device = _RestrictedDevice(restrict_target(self.target, active), f"{self.device_name}_restricted")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                noise = NoiseModel.from_backend(device)
            from qportfolio.memory import require_memory

            method = self.options.aer_method
            if method == "auto":
                method = "density_matrix" if len(active) <= 10 else "statevector"
            size = 2 ** (2 * len(active)) if method == "density_matrix" else 2 ** len(active)
            require_memory(16 * size * 2, f"a noisy simulation of {len(active)} active qubits ({method})")
            extra = {"shot_branching_enable": True} if method == "statevector" else {}
            simulator = AerSimulator(noise_model=noise, method=method, **extra)
            self._simulators[active] = simulator
        return simulator

    def _submit(self, pubs, shots, seed):
        from qiskit_aer.primitives import SamplerV2

        circuit = pubs[0][0]
        active = tuple(sorted({circuit.find_bit(q).index for c, *_ in pubs for inst in c.data
                               if inst.operation.name not in _DIRECTIVES for q in inst.qubits}))
        simulator = self._simulator(active)
        compact = [(compact_circuit(c, active), *rest) for c, *rest in pubs]
        sampler = SamplerV2.from_backend(simulator, seed=seed)
        job_id = f"aer_noisy-{uuid.uuid4()}"
        return job_id, (sampler, compact, shots)

    def _counts(self, job: _Job):
        sampler, pubs, shots = job.handle
        result = sampler.run(pubs, shots=shots).result()
        out = []
        for pub_result in result:
            out.extend(_bit_array_counts(pub_result.data))
        return out

    def _status(self, job: _Job) -> dict:
        return {"state": "DONE" if job.counts is not None else "QUEUED", "quantum_seconds": 0.0, "usage": {},
                "local": True}

    def _sampler_description(self) -> dict:
        described = self.options.sampler_options()
        described["simulated"] = "aer_noisy runs the ISA circuit on Aer; dynamical decoupling, twirling and " \
                                 "max_execution_time are not applied"
        return described


# --------------------------------------------------------------------------- restriction helpers


def restrict_target(target, qubits: tuple[int, ...]):
    """A ``Target`` on ``len(qubits)`` qubits holding ``target``'s data for ``qubits`` (renumbered 0..k-1)."""
    from qiskit.transpiler import Target

    index = {p: i for i, p in enumerate(qubits)}
    qubit_properties = [target.qubit_properties[p] for p in qubits] if target.qubit_properties else None
    reduced = Target(num_qubits=len(qubits), dt=target.dt, qubit_properties=qubit_properties)
    for name in target.operation_names:
        operation = target.operation_from_name(name)
        properties = target[name]
        if properties is None or None in properties:
            reduced.add_instruction(operation, name=name)
            continue
        kept = {tuple(index[q] for q in qargs): value for qargs, value in properties.items()
                if all(q in index for q in qargs)}
        if kept:
            reduced.add_instruction(operation, kept, name=name)
    return reduced


def compact_circuit(circuit: QuantumCircuit, qubits: tuple[int, ...]) -> QuantumCircuit:
    """``circuit`` (device width) on only ``qubits``, renumbered 0..k-1; classical bits unchanged."""
    index = {p: i for i, p in enumerate(qubits)}
    out = QuantumCircuit(len(qubits), name=circuit.name, global_phase=circuit.global_phase)
    for register in circuit.cregs:
        out.add_register(ClassicalRegister(register.size, register.name))
    clbits = {bit: out.clbits[k] for k, bit in enumerate(circuit.clbits)}
    for instruction in circuit.data:
        if instruction.operation.name == "barrier":
            continue
        positions = [circuit.find_bit(q).index for q in instruction.qubits]
        if instruction.operation.name == "delay" and any(p not in index for p in positions):
            continue
        out.append(instruction.operation, [out.qubits[index[p]] for p in positions],
                   [clbits[c] for c in instruction.clbits])
    return out


class _RestrictedDevice:
    """The minimum of a ``BackendV2`` that ``NoiseModel.from_backend`` reads (version, target, dt)."""

    version = 2

    def __init__(self, target, name: str):
        self.target = target
        self.name = name
        self.dt = target.dt
        self.operation_names = list(target.operation_names)

    def __repr__(self) -> str:
        return f"<restricted device {self.name}>"


# --------------------------------------------------------------------------- construction


_NAME = re.compile(r"^(ibm|ibm_fake|aer_noisy):([A-Za-z0-9_\-]+)$")


def make_hardware_backend(name: str, shots: int, seed: int | None, **options) -> HardwareBackend:
    """``ibm:<device>``, ``ibm:least_busy``, ``ibm_fake:<fake device>`` or ``aer_noisy:<fake device>``."""
    match = _NAME.match(name)
    if match is None:
        raise ConfigError(f"backend.name {name!r}: use ibm:<device>, ibm:least_busy, ibm_fake:<fake device> or "
                          f"aer_noisy:<fake device> (e.g. aer_noisy:fake_fez)")
    prefix, device = match.groups()
    settings = HardwareOptions.from_options(**options)
    if prefix == "aer_noisy":
        return AerNoisyBackend(name, fake_device(device), shots, seed, settings)
    if prefix == "ibm_fake":
        return RuntimeSamplerBackend(name, fake_device(device), shots, seed, settings, local=True)
    service, backend = _connect(settings, device)
    label = f"ibm:{backend.name}" if device == "least_busy" else name
    return RuntimeSamplerBackend(label, backend, shots, seed, settings, service=service)
