"""Where circuits run, behind one :class:`~qportfolio.backends.base.Backend` protocol.

* ``exact`` — qportfolio's own statevector simulator (:mod:`.exact`);
* ``aer_statevector``, ``aer_shots`` — Aer (:mod:`.aer`);
* ``ibm:<device>``, ``ibm:least_busy``, ``ibm_fake:<fake device>``, ``aer_noisy:<fake device>`` — IBM
  Quantum hardware, its local testing mode and a noisy Aer stand-in (:mod:`.ibm`).
"""

from __future__ import annotations

from qportfolio.backends.aer import AerShotsBackend, AerStatevectorBackend
from qportfolio.backends.base import Backend, Distribution, ExactGradient, ExactObjective, JobBackend
from qportfolio.backends.exact import ExactBackend
from qportfolio.backends.ibm import make_hardware_backend
from qportfolio.backends.ibm.options import BACKEND_OPTION_DEFAULTS
from qportfolio.errors import ConfigError

BACKENDS = ("aer_statevector", "aer_shots")
#: Backend name prefixes handled by :mod:`qportfolio.backends.ibm` (``prefix:device``).
HARDWARE_PREFIXES = ("ibm", "ibm_fake", "aer_noisy")
#: the hardware families simulated here with a device's noise (their cost is estimated, not billed)
NOISY_PREFIXES = ("aer_noisy", "ibm_fake")
#: Backends whose probabilities are exact (they need the 2ⁿ energy table).
EXACT_PROBABILITY_BACKENDS = ("exact", "aer_statevector")

__all__ = ["BACKENDS", "EXACT_PROBABILITY_BACKENDS", "HARDWARE_PREFIXES", "NOISY_PREFIXES", "AerShotsBackend", "AerStatevectorBackend",
           "Backend", "is_hardware", "is_noisy", "Distribution", "ExactBackend", "ExactGradient", "ExactObjective", "JobBackend", "make_backend"]


def is_hardware(name: str) -> bool:
    """Whether ``name`` (``family:device``) is a hardware target: a device, its local testing mode or its noise
    model (:data:`HARDWARE_PREFIXES`)."""
    return name.split(":", 1)[0] in HARDWARE_PREFIXES


def is_noisy(name: str) -> bool:
    """Whether ``name`` is a device's noise simulated here (:data:`NOISY_PREFIXES`): estimated, not billed."""
    return name.split(":", 1)[0] in NOISY_PREFIXES


def make_backend(name: str, shots: int, seed: int | None, **options):
    """The backend called ``name`` in a config.

    ``options`` (``None`` values are ignored) are the hardware options of :mod:`qportfolio.backends.ibm`
    (``optimization_level``, ``seed_transpiler``, ``initial_layout``, ``execution_mode``,
    ``dynamical_decoupling``, ``twirling``, ``max_execution_time``, ``mitigation``, ``min_qubits``,
    ``account``, ``channel``, ``instance``, …); the Aer simulators take none. ``exact`` takes ``energies``
    (required), ``precision`` and ``qubo`` (the QUBO of the energies: phases without the table).
    """
    options = {key: value for key, value in options.items() if value is not None}
    if name == "exact":
        energies = options.pop("energies", None)
        if energies is None:
            raise ConfigError("the exact backend needs the QUBO's energy table: it is built by qportfolio run")
        precision = options.pop("precision", BACKEND_OPTION_DEFAULTS["precision"])
        qubo = options.pop("qubo", None)
        if options:
            raise ConfigError(f"backend options {sorted(options)} do not apply to the exact backend")
        return ExactBackend(energies, seed, precision, qubo=qubo)
    if name in BACKENDS:
        options.pop("energies", None)
        options.pop("qubo", None)
        if options:
            raise ConfigError(f"backend options {sorted(options)} apply only to the "
                              f"{'/'.join(p + ':*' for p in HARDWARE_PREFIXES)} backends, not {name}")
        if name == "aer_statevector":
            return AerStatevectorBackend(seed)
        return AerShotsBackend(shots, seed)
    if is_hardware(name) and ":" in name:
        return make_hardware_backend(name, shots, seed, **options)
    raise ConfigError(f"backend.name must be one of {BACKENDS} or ibm:<device>, ibm:least_busy, "
                      f"ibm_fake:<fake device>, aer_noisy:<fake device> (e.g. aer_noisy:fake_fez), got {name!r}")
