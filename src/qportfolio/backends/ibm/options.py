"""Hardware options: execution mode, error suppression, transpilation, mitigation, the account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qportfolio.choices import AerMethod, DDSequence, ExecutionMode, Mitigation
from qportfolio.errors import (
    ConfigError,
)

EXECUTION_MODES = ExecutionMode.values()
DD_SEQUENCES = DDSequence.values()
MITIGATIONS = Mitigation.values()
AER_METHODS = AerMethod.values()
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

#: The ``backend.*`` keys other than the name, with their defaults: the one home the solver's keywords, the
#: config's keys and :class:`HardwareOptions` read. None leaves the value to :class:`HardwareOptions` (or to
#: the saved account); ``precision`` is the exact simulator's state.
BACKEND_OPTION_DEFAULTS = {
    "min_qubits": None, "account": None, "channel": None, "instance": None, "connect_timeout": None,
    "calibration_shots": None, "aer_method": None, "execution_mode": "batch", "dynamical_decoupling": False,
    "dd_sequence": "XY4", "twirling": False, "max_execution_time": None, "optimization_level": 2,
    "seed_transpiler": None, "initial_layout": None, "mitigation": "auto", "precision": "complex128",
}
_DEFAULT = BACKEND_OPTION_DEFAULTS


@dataclass(frozen=True)
class HardwareOptions:
    """The options of a hardware backend (``backend.*`` in a config).

    ``dynamical_decoupling`` accepts ``false``, ``true``, a sequence name (``XX``, ``XpXm``, ``XY4``) or
    ``{enable, sequence}``; ``twirling`` accepts a bool (gates and measurements) or ``{gates, measure}``.
    """

    optimization_level: int = _DEFAULT["optimization_level"]
    seed_transpiler: int | None = None
    initial_layout: tuple[int, ...] | None = None
    execution_mode: str = _DEFAULT["execution_mode"]
    dynamical_decoupling: bool = _DEFAULT["dynamical_decoupling"]
    dd_sequence: str = _DEFAULT["dd_sequence"]
    twirling_gates: bool = _DEFAULT["twirling"]
    twirling_measure: bool = _DEFAULT["twirling"]
    max_execution_time: int | None = None
    mitigation: str = _DEFAULT["mitigation"]
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


def _known_keys(value: dict, option: str, keys: tuple[str, str]) -> None:
    unknown = set(value) - set(keys)
    if unknown:
        raise ConfigError(f"backend.{option} takes {keys[0]} and {keys[1]}, not {sorted(unknown)}")


def _dd_option(value) -> dict:
    if isinstance(value, bool):
        return {"dynamical_decoupling": value}
    if isinstance(value, str):
        return {"dynamical_decoupling": True, "dd_sequence": value}
    if isinstance(value, dict):
        _known_keys(value, "dynamical_decoupling", ("enable", "sequence"))
        out = {"dynamical_decoupling": bool(value.get("enable", True))}
        if value.get("sequence") is not None:
            out["dd_sequence"] = value["sequence"]
        return out
    raise ConfigError(f"backend.dynamical_decoupling must be a bool, a sequence name or a mapping, got {value!r}")


def _twirling_option(value) -> dict:
    if isinstance(value, bool):
        return {"twirling_gates": value, "twirling_measure": value}
    if isinstance(value, dict):
        _known_keys(value, "twirling", ("gates", "measure"))
        return {"twirling_gates": bool(value.get("gates", False)),
                "twirling_measure": bool(value.get("measure", False))}
    raise ConfigError(f"backend.twirling must be a bool or {{gates, measure}}, got {value!r}")


