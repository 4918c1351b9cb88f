"""How much of a circuit survives a device: a fidelity estimate from the target's own error data, and the
P(optimum) that sampling it is predicted to give.

For an ISA circuit on a target with gate errors ``e_g``, readout errors ``r_q``, durations and ``T2_q``:

* gate fidelity ``F_gates = Π_g (1 − e_g)`` over every gate (the reported errors already hold the
  relaxation during the gate);
* idle fidelity ``F_idle = Π_q exp(−t_idle,q / T2_q)`` over the active qubits, with ``t_idle,q`` the time
  qubit ``q`` waits in an as-soon-as-possible schedule before its measurement (only where the executor
  lets idle qubits decohere: real devices; Aer applies noise to gates only);
* readout fidelity ``F_readout = Π_q (1 − r_q)`` over the measured qubits (1 when readout is mitigated);
* ``F = (F_gates · F_idle · F_readout)^α`` with the exponent ``α`` (:data:`FIDELITY_EXPONENT`) fitted on
  the training suite against ``aer_noisy`` (an error seldom scrambles the whole register).

A global depolarising model then predicts the sampled distribution ``F·P_ideal + (1 − F)·U`` with ``U``
uniform over all ``2ⁿ`` bitstrings, so ``P(optimum) ≈ F·P_ideal + (1 − F)·P_U(optimum)``.
"""

from __future__ import annotations

import math

from qportfolio.backends.ibm.options import _DIRECTIVES

#: ``F = F_model^α``: α = 0.9 minimised the mean squared log ratio of predicted to measured P(optimum) over the
#: training suite's selection runs on ``aer_noisy:fake_fez`` (α = 1: 0.014, 0.9: 0.008; results/benchmarks/hardware_train.md).
FIDELITY_EXPONENT = 0.9


def _properties(target, name: str, qargs: tuple[int, ...]):
    if name not in target.operation_names:
        return None
    properties = target[name]
    return None if properties is None else properties.get(qargs)


def estimated_fidelity(compiled, target, idle: bool = True, readout: bool = True,
                       exponent: float = FIDELITY_EXPONENT) -> dict:
    """The factors of the module docstring for ``compiled`` (a :class:`~qportfolio.backends.ibm.compilation.CompiledCircuit`)
    on ``target`` and their product ``fidelity``."""
    isa = compiled.isa
    log_gates = 0.0
    clock: dict[int, float] = {}
    busy: dict[int, float] = {}
    for instruction in isa.data:
        name = instruction.operation.name
        if name in _DIRECTIVES or name == "measure":
            continue
        qargs = tuple(isa.find_bit(q).index for q in instruction.qubits)
        entry = _properties(target, name, qargs)
        error = 0.0 if entry is None or entry.error is None else min(float(entry.error), 1.0)
        log_gates += math.log1p(-error) if error < 1.0 else -math.inf
        duration = 0.0 if entry is None or entry.duration is None else float(entry.duration)
        start = max(clock.get(q, 0.0) for q in qargs)
        for q in qargs:
            clock[q] = start + duration
            busy[q] = busy.get(q, 0.0) + duration
    end = max(clock.values(), default=0.0)
    log_idle = 0.0
    properties = target.qubit_properties
    if idle and properties:
        for q in compiled.active_qubits:
            t2 = getattr(properties[q], "t2", None) if q < len(properties) else None
            if t2:
                log_idle -= (end - busy.get(q, 0.0)) / t2
    log_readout = 0.0
    for q in compiled.measured_qubits:
        entry = _properties(target, "measure", (int(q),))
        if entry is not None and entry.error is not None:
            log_readout += math.log1p(-min(float(entry.error), 0.5))
    total = log_gates + (log_idle if idle else 0.0) + (log_readout if readout else 0.0)
    return {"gate_fidelity": math.exp(log_gates), "idle_fidelity": math.exp(log_idle) if idle else None,
            "readout_fidelity": math.exp(log_readout), "readout_included": readout, "exponent": exponent,
            "fidelity": math.exp(exponent * total), "duration_s": end}


def predicted_probability(fidelity: float, ideal: float, noise: float) -> float:
    """``F·P_ideal + (1 − F)·P_noise``: a probability sampled through global depolarising noise."""
    return fidelity * ideal + (1.0 - fidelity) * noise


def has_readout_errors(target) -> bool:
    """Whether the target reports a readout error for its qubits (what readout mitigation by default needs)."""
    if "measure" not in target.operation_names or target["measure"] is None:
        return False
    return any(entry is not None and entry.error for entry in target["measure"].values())
