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

import re

from qportfolio.backends.ibm.base import HardwareBackend
from qportfolio.backends.ibm.devices import _connect, fake_device
from qportfolio.backends.ibm.noisy import AerNoisyBackend
from qportfolio.backends.ibm.options import HardwareOptions
from qportfolio.backends.ibm.runtime import RuntimeSamplerBackend
from qportfolio.errors import ConfigError

__all__ = ["AerNoisyBackend", "HardwareBackend", "HardwareOptions", "RuntimeSamplerBackend", "fake_device",
           "make_hardware_backend"]

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
