"""What a device will run: the ISA report and the QPU-time estimate."""

from __future__ import annotations

import math

from qportfolio.backends.ibm.compilation import CompiledCircuit
from qportfolio.backends.ibm.options import (
    _DIRECTIVES,
    DEFAULT_REP_DELAY_S,
    JOB_OVERHEAD_S,
)

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


