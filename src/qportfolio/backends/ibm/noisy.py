"""Aer with a device's noise model restricted to the qubits the ISA circuit uses: its cost model, and the
worker process a long job runs in (stopped at once on Ctrl-C or SIGTERM, its progress reported)."""

from __future__ import annotations

import math
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from qportfolio.backends.ibm.base import HardwareBackend, _Job
from qportfolio.backends.ibm.compilation import _RestrictedDevice, compact_circuit, restrict_target
from qportfolio.backends.ibm.mitigation import _bit_array_counts
from qportfolio.backends.ibm.options import (
    _DIRECTIVES,
    HardwareOptions,
)
from qportfolio.errors import BackendError

#: Seconds of one noisy Aer job, ``overhead + per_op·work + per_amplitude·work·size``. Statevector
#: trajectories: ``work = circuits·shots·ops^DEPTH_EXPONENT``, ``size = 2ⁿ``: per shot, an operation costs more
#: the deeper the circuit (shot branching: the trajectories of a shallow circuit share their state longer);
#: density matrix: ``work = circuits·ops``, ``size = 4ⁿ`` (``n`` active qubits, ``ops`` ISA operations).
#: Fitted by ``PYTHONPATH=src python benchmarks/noisy_cost.py --repeats 1`` (results/benchmarks/noisy_cost.md) on
#: this project's 2-core machine, idle (load average 0.7–1.3): within 0.87–1.17× of every measured statevector
#: job and 0.9–1.1× of the density-matrix ones but one (6 qubits, 3.8×). The same benchmark under load 14 gave
#: times about 2.5× longer (statevector) and up to 7× (density matrix). A deeper circuit than measured (the
#: quickstart instance at p = 8, 9,645 ISA operations, 12 qubits) ran 400 shots in 595 s at load 8.
NOISY_COST = {"statevector": (0.01, 1.98e-7, 1.78e-11), "density_matrix": (0.046, 4.82e-5, 8.16e-10)}
DEPTH_EXPONENT = 1.65
#: ``ibm_fake:*`` (the runtime's local testing mode) also rebuilds the whole device's noise model every job
#: (7.9 s a job beyond the model idle, the same benchmark; 14.5 s and 19.9 s at load 8 and 14).
IBM_FAKE_JOB_SECONDS = 8.0
#: Jobs expected to take less than this run in this process. Aer holds the interpreter while it simulates,
#: so nothing (not Ctrl-C, not SIGTERM) runs until it returns: longer jobs run in a worker process.
IN_PROCESS_SECONDS = 2.0
#: A job in the worker runs in chunks of shots expected to take about this long (progress between chunks).
CHUNK_SECONDS = 5.0
#: How often the waiting process looks at the worker (and lets signals in).
POLL_SECONDS = 0.1


def simulation_method(num_active: int, aer_method: str = "auto", samples: int | None = None) -> str:
    """The Aer method a noisy job uses: ``auto`` is aer_noisy's rule (density matrix up to 10 active qubits,
    else statevector trajectories); ``automatic`` is Aer's own (the density matrix when it is the cheaper,
    ``samples`` = circuits·shots > 2ⁿ), as the runtime's local testing mode uses it."""
    if aer_method == "auto":
        return "density_matrix" if num_active <= 10 else "statevector"
    if aer_method == "automatic":
        return "density_matrix" if samples is not None and samples > 2**num_active and num_active <= 14 \
            else "statevector"
    return aer_method


def isa_operations(isa) -> tuple[tuple[int, ...], int]:
    """The physical qubits an ISA circuit acts on and its number of operations (measurements included)."""
    active, ops = set(), 0
    for instruction in isa.data:
        if instruction.operation.name in _DIRECTIVES:
            continue
        ops += 1
        active.update(isa.find_bit(q).index for q in instruction.qubits)
    return tuple(sorted(active)), ops


def estimate_job_seconds(num_active: int, ops: int, shots: int, circuits: int, method: str) -> float:
    """The :data:`NOISY_COST` model for one job of ``circuits`` circuits × ``shots``."""
    work, size = cost_units(num_active, ops, shots, circuits, method)
    overhead, per_op, per_amplitude = NOISY_COST["density_matrix" if method == "density_matrix" else "statevector"]
    return overhead + per_op * work + per_amplitude * work * size


def local_testing_job_seconds(isa, shots: int, circuits: int = 1) -> float:
    """One ``ibm_fake`` job (the runtime's local testing mode): the whole device's noise model rebuilt
    (:data:`IBM_FAKE_JOB_SECONDS`), then Aer's ``automatic`` method on the ISA circuit."""
    active, ops = isa_operations(isa)
    method = simulation_method(len(active), "automatic", circuits * shots)
    return IBM_FAKE_JOB_SECONDS + estimate_job_seconds(len(active), ops, shots, circuits, method)


def cost_units(num_active: int, ops: int, shots: int, circuits: int, method: str) -> tuple[float, float]:
    """``(work, size)`` of the :data:`NOISY_COST` model."""
    if method == "density_matrix":
        return float(circuits * ops), 4.0**num_active
    return float(circuits * shots * ops**DEPTH_EXPONENT), 2.0**num_active


class _WorkerJobs:
    """Mixin of a :class:`HardwareBackend` whose jobs run in a :class:`_Worker`: ``on_progress`` callbacks
    hear ``{job_id, kind, shots_done, shots, seconds, estimated_seconds}`` as a job advances; interrupted
    (KeyboardInterrupt, which the CLI makes of SIGTERM too), the worker is killed at once and the job
    callbacks hear the job's record again with ``state: interrupted`` and the shots done."""

    _worker: _Worker | None = None
    _progress: list[Callable[[dict], None]]
    _callbacks: list[Callable[[dict], None]]

    def on_progress(self, callback: Callable[[dict], None]) -> None:
        """Call ``callback(progress)`` as a job that runs in the worker advances (see the class docstring)."""
        self._progress.append(callback)

    def _in_worker(self, job: _Job, task: Callable, key, state, args: tuple, shots: int, estimate: float):
        """``task(state, *args, progress=…)`` in the worker (``state`` sent once per ``key``), reporting."""
        started, done = time.monotonic(), [0]

        def progress(shots_done: int) -> None:
            done[0] = shots_done
            report = {"job_id": job.record["job_id"], "kind": job.record["kind"], "shots_done": shots_done,
                      "shots": shots, "seconds": time.monotonic() - started, "estimated_seconds": estimate}
            for callback in self._progress:
                callback(report)

        progress(0)
        if self._worker is None or not self._worker.alive():
            self._worker = _Worker()
        try:
            return self._worker.run(task, key, state, args, progress)
        except BaseException:
            self._worker.kill()
            self._worker = None
            record = {**job.record, "state": "interrupted", "shots_done": done[0],
                      "seconds": round(time.monotonic() - started, 3), "estimated_seconds": estimate}
            for callback in self._callbacks:
                callback(dict(record))
            raise

    def _close_worker(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None


class AerNoisyBackend(_WorkerJobs, HardwareBackend):
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

    A job expected (:func:`estimate_job_seconds`) to take more than :data:`IN_PROCESS_SECONDS` runs in a
    worker process, statevector jobs in chunks of shots of about :data:`CHUNK_SECONDS` (chunk ``k`` seeded
    ``seed + k``); ``on_progress`` callbacks hear ``{job_id, kind, shots_done, shots, seconds,
    estimated_seconds}`` after each chunk. Interrupted (KeyboardInterrupt, which the CLI makes of SIGTERM
    too), the worker is killed at once and the job callbacks hear the job's record again with
    ``state: interrupted`` and the shots done.
    """

    idle_decoherence = False

    def __init__(self, name: str, device, shots: int, seed: int | None, options: HardwareOptions):
        super().__init__(name, device, shots, seed, options)
        self._simulators: dict[tuple[int, ...], Any] = {}
        self._progress: list[Callable[[dict], None]] = []
        self._worker: _Worker | None = None

    def _method(self, num_active: int) -> str:
        return simulation_method(num_active, self.options.aer_method)

    def estimate_seconds(self, circuit, num_circuits: int = 1, shots: int | None = None, jobs: int = 1) -> float:
        """Expected wall time of ``jobs`` jobs of ``num_circuits`` parameter sets of ``circuit`` × ``shots``."""
        active, ops = isa_operations(self.compile(circuit).isa)
        shots = int(shots or self.shots)
        return jobs * estimate_job_seconds(len(active), ops, shots, num_circuits, self._method(len(active)))

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

            method = self._method(len(active))
            size = 2 ** (2 * len(active)) if method == "density_matrix" else 2 ** len(active)
            require_memory(16 * size * 2, f"a noisy simulation of {len(active)} active qubits ({method})")
            extra = {"shot_branching_enable": True} if method == "statevector" else {}
            simulator = AerSimulator(noise_model=noise, method=method, **extra)
            self._simulators[active] = simulator
        return simulator

    def _submit(self, pubs, shots, seed):
        circuit = pubs[0][0]
        active = tuple(sorted({circuit.find_bit(q).index for c, *_ in pubs for inst in c.data
                               if inst.operation.name not in _DIRECTIVES for q in inst.qubits}))
        simulator = self._simulator(active)
        compact = [(compact_circuit(c, active), *rest) for c, *rest in pubs]
        circuits = sum(len(rest[0]) if rest and rest[0] is not None and len(rest[0]) else 1 for _, *rest in pubs)
        _, ops = isa_operations(compact[0][0])
        estimate = estimate_job_seconds(len(active), ops, shots, circuits, self._method(len(active)))
        job_id = f"aer_noisy-{uuid.uuid4()}"
        return job_id, {"active": active, "simulator": simulator, "pubs": compact, "shots": shots, "seed": seed,
                        "estimate": estimate}

    def _counts(self, job: _Job):
        handle = job.handle
        if handle["estimate"] < IN_PROCESS_SECONDS:
            return _run_chunks(handle["simulator"], handle["pubs"], [handle["shots"]], handle["seed"])
        method = self._method(len(handle["active"]))
        shots = handle["shots"]
        chunks = 1 if method == "density_matrix" else min(shots, math.ceil(handle["estimate"] / CHUNK_SECONDS))
        sizes = [shots // chunks + (1 if k < shots % chunks else 0) for k in range(chunks)]
        return self._in_worker(job, _run_chunks, handle["active"], handle["simulator"],
                               (handle["pubs"], sizes, handle["seed"]), shots, handle["estimate"])

    def _status(self, job: _Job) -> dict:
        return {"state": "DONE" if job.counts is not None else "QUEUED", "quantum_seconds": 0.0, "usage": {},
                "local": True}

    def _sampler_description(self) -> dict:
        described = self.options.sampler_options()
        described["simulated"] = "aer_noisy runs the ISA circuit on Aer; dynamical decoupling, twirling and " \
                                 "max_execution_time are not applied"
        return described

    def close(self) -> None:
        self._close_worker()



def _run_chunks(simulator, pubs, sizes: list[int], seed: int, progress: Callable[[int], None] | None = None):
    """Counts per parameter set, summed over chunks of ``sizes`` shots (chunk ``k`` seeded ``seed + k``)."""
    from qiskit_aer.primitives import SamplerV2

    total, done = None, 0
    for k, size in enumerate(sizes):
        result = SamplerV2.from_backend(simulator, seed=seed + k).run(pubs, shots=size).result()
        counts = [c for pub_result in result for c in _bit_array_counts(pub_result.data)]
        if total is None:
            total = counts
        else:
            for into, more in zip(total, counts):
                for key, value in more.items():
                    into[key] = into.get(key, 0) + value
        done += size
        if progress is not None:
            progress(done)
    return total


class _Worker:
    """A child Python process that runs jobs sent to it (pickled), one at a time: ``task(state, *args,
    progress=…)`` with ``task`` a module-level function; killed, it stops at once. It keeps the states it was
    sent (simulators, devices) by their keys and dies with this process."""

    def __init__(self):
        from multiprocessing.connection import Connection

        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        command = [sys.executable, "-c", "from qportfolio.backends.ibm.noisy import _serve; _serve()",
                   str(to_child), str(from_child), str(os.getpid())]
        self.process = subprocess.Popen(command, pass_fds=(to_child, from_child), env=env, stdin=subprocess.DEVNULL)
        os.close(to_child), os.close(from_child)
        self._send = Connection(from_parent, readable=False)
        self._receive = Connection(to_parent, writable=False)
        self._known: set[tuple[int, ...]] = set()

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, task: Callable, key, state, args: tuple, progress: Callable[[int], None]):
        payload = pickle.dumps((task, key, None if key in self._known else state, args))
        self._send.send_bytes(payload)
        self._known.add(key)
        while True:
            while not self._receive.poll(POLL_SECONDS):
                if not self.alive():
                    raise BackendError(f"the simulation's worker process ended (exit code "
                                       f"{self.process.returncode}): see its message above")
            kind, value = self._receive.recv()
            if kind == "progress":
                progress(value)
            elif kind == "done":
                return value
            else:
                raise BackendError(f"the simulation failed: {value}")

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        self._send.close(), self._receive.close()


def _serve() -> None:
    """The worker's loop (``python -c`` entry): read a job, run it (reporting its progress), report, repeat."""
    from multiprocessing.connection import Connection

    receive, send, parent = Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]),
                                                                                     readable=False), int(sys.argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides: a terminal's Ctrl-C reaches both
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        return
    states = {}
    while True:
        try:
            task, key, state, args = pickle.loads(receive.recv_bytes())
        except EOFError:
            return
        try:
            if state is not None:
                states[key] = state
            counts = task(states[key], *args, progress=lambda done: send.send(("progress", done)))
            send.send(("done", counts))
        except Exception as error:  # noqa: BLE001 — reported to the parent, which raises it
            send.send(("error", f"{type(error).__name__}: {error}"))
