"""The IBM Runtime Sampler: real devices, and the same Sampler in local testing mode on fake devices."""

from __future__ import annotations

import contextlib
import threading
import uuid
import warnings

from qportfolio.backends.ibm.base import HardwareBackend, _Job
from qportfolio.backends.ibm.credentials import _one_line, redact
from qportfolio.backends.ibm.mitigation import _bit_array_counts
from qportfolio.backends.ibm.noisy import _WorkerJobs, local_testing_job_seconds
from qportfolio.backends.ibm.options import (
    HardwareOptions,
)
from qportfolio.errors import (
    BackendError,
)


class RuntimeSamplerBackend(_WorkerJobs, HardwareBackend):
    """``ibm:*`` and ``ibm_fake:*``: qiskit-ibm-runtime's client-side Sampler (``executor_sampler``).

    ``ibm_fake`` gives the fake device itself as the ``mode`` (local testing mode): everything but the
    service and device construction is the code path of a real account. Batch and session modes are
    accepted in local testing mode and ignored by it. Note that local testing mode rebuilds the whole
    device's Aer noise model for every job (4–6 s on a 156-qubit device before any simulation).

    A local testing mode job runs in the noisy simulations' worker process (:class:`~qportfolio.backends.ibm.
    noisy._WorkerJobs`): the same Sampler, options and seed on the fake device there, so Ctrl-C or SIGTERM
    stops it at once (recorded ``interrupted``); progress is the job's start and end.
    """

    def __init__(self, name: str, device, shots: int, seed: int | None, options: HardwareOptions,
                 service=None, local: bool = False):
        super().__init__(name, device, shots, seed, options)
        self._service = service
        self._local = local
        self.idle_decoherence = not local  # local testing mode runs on Aer: noise on gates only
        self._mode = None
        self._mode_lock = threading.Lock()
        self._progress = []
        self._worker = None

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

    def _submit(self, pubs, shots, seed):
        if self._local:  # run by _counts, in the worker
            circuits = sum(len(rest[0]) if rest and rest[0] is not None and len(rest[0]) else 1
                           for _, *rest in pubs)
            estimate = local_testing_job_seconds(pubs[0][0], shots, circuits)
            return str(uuid.uuid4()), {"pubs": pubs, "shots": shots, "seed": seed, "estimate": estimate}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # local mode: "options have no effect"
                job = _sampler(self._execution_mode(), self.options, None).run(pubs, shots=shots)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"{self.name}: the job was not submitted ({_one_line(exc)})") from None
        return str(job.job_id()), job

    def _counts(self, job: _Job):
        if self._local:
            handle = job.handle
            return self._in_worker(job, _run_local, ("device", self.device_name), self.device,
                                   (self.options, handle["pubs"], handle["shots"], handle["seed"]),
                                   handle["shots"], handle["estimate"])
        try:
            result = job.handle.result()
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"{self.name}: job {job.record['job_id']} failed ({_one_line(exc)})") from None
        out = []
        for pub_result in result:
            out.extend(_bit_array_counts(pub_result.data))
        return out

    def _status(self, job: _Job) -> dict:
        if self._local:
            return {"state": "DONE" if job.counts is not None else "QUEUED", "quantum_seconds": 0.0,
                    "usage": {}, "local": True}
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
        self._close_worker()
        with self._mode_lock:
            if self._mode is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    self._mode.close()
                self._mode = None




def _sampler(mode, options: HardwareOptions, seed: int | None):
    """The runtime Sampler on ``mode`` with the run's options (``seed``: local testing mode's simulator seed)."""
    from qiskit_ibm_runtime.executor_sampler import Sampler

    sampler = Sampler(mode=mode)
    sampler.options.dynamical_decoupling.enable = options.dynamical_decoupling
    sampler.options.dynamical_decoupling.sequence_type = options.dd_sequence
    sampler.options.twirling.enable_gates = options.twirling_gates
    sampler.options.twirling.enable_measure = options.twirling_measure
    if options.max_execution_time is not None:
        sampler.options.max_execution_time = int(options.max_execution_time)
    if seed is not None:
        sampler.options.simulator.seed_simulator = seed
    return sampler


def _run_local(device, options: HardwareOptions, pubs, shots: int, seed: int, progress=None) -> list:
    """One local testing mode job on the fake ``device`` (in the worker): counts per parameter set. Batch and
    session modes are ignored by local testing mode, so the device is the mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # local mode: "options have no effect"
        result = _sampler(device, options, seed).run(pubs, shots=shots).result()
    counts = [c for pub_result in result for c in _bit_array_counts(pub_result.data)]
    if progress is not None:
        progress(shots)
    return counts
