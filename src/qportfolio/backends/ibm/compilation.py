"""ISA transpilation for a device target, and the restriction of a target to the qubits a circuit uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit

from qportfolio.backends.ibm.options import (
    _DIRECTIVES,
    HardwareOptions,
)
from qportfolio.errors import (
    BackendError,
    ConfigError,
)

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
    seed_transpiler: int | None = None  # the seed of the transpilation kept

    def parameter_array(self, parameter_sets: np.ndarray) -> np.ndarray:
        thetas = np.atleast_2d(np.asarray(parameter_sets, dtype=float))
        return thetas[:, self.columns]


#: Transpilations tried per circuit (seeds ``seed_transpiler``, +1, …): the one whose ISA circuit has the
#: highest estimated fidelity on the target (gate and readout errors) is kept — routing differs by seed, and on
#: the training suite the best of 4 had ~10% higher fidelity than the first (results/benchmarks/hardware_train.md).
TRANSPILE_TRIALS = 4


def compile_circuit(circuit: QuantumCircuit, target, options: HardwareOptions, seed: int | None) -> CompiledCircuit:
    """Transpile with the preset pass manager for ``target`` (:data:`TRANSPILE_TRIALS` seeds, the best kept)
    and measure logical qubit i into bit i."""
    from qiskit.transpiler import generate_preset_pass_manager

    if circuit.num_clbits:
        raise BackendError("hardware backends take the ansatz without measurements; they add their own")
    if circuit.num_qubits > target.num_qubits:
        raise BackendError(f"the circuit has {circuit.num_qubits} qubits and the device only {target.num_qubits}")
    if options.initial_layout is not None and len(options.initial_layout) != circuit.num_qubits:
        raise ConfigError(f"backend.initial_layout lists {len(options.initial_layout)} physical qubits for a "
                          f"{circuit.num_qubits}-qubit circuit")
    if options.initial_layout is not None:
        layout = [int(q) for q in options.initial_layout]
        outside = [q for q in layout if not 0 <= q < target.num_qubits]
        if outside:
            raise ConfigError(f"backend.initial_layout names qubit {outside[0]}, which the device does not have "
                              f"(it has qubits 0 to {target.num_qubits - 1})")
        if len(set(layout)) != len(layout):
            raise ConfigError(f"backend.initial_layout {layout} names a physical qubit twice: list distinct qubits")
    from qportfolio.backends.ibm.fidelity import estimated_fidelity

    first = options.seed_transpiler if options.seed_transpiler is not None else (seed or 0)
    best, best_fidelity = None, -1.0
    for seed_transpiler in range(first, first + TRANSPILE_TRIALS):
        manager = generate_preset_pass_manager(
            optimization_level=options.optimization_level, target=target, seed_transpiler=seed_transpiler,
            initial_layout=list(options.initial_layout) if options.initial_layout is not None else None)
        compiled = _measured(circuit, manager.run(circuit), seed_transpiler)
        fidelity = estimated_fidelity(compiled, target, idle=False, exponent=1.0)["fidelity"]
        if fidelity > best_fidelity:
            best, best_fidelity = compiled, fidelity
    return best


def _measured(circuit: QuantumCircuit, isa: QuantumCircuit, seed_transpiler: int) -> CompiledCircuit:
    """The transpiled ``isa`` with logical qubit i measured into bit i."""
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
    return CompiledCircuit(isa, n, tuple(initial), tuple(final), tuple(active), columns, seed_transpiler)



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


