"""Gate-by-gate statevector simulation of bound circuits (VQE and any other circuit)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qportfolio.backends.exact.kernels import (
    _dtype,
    _threads,
    check_memory,
)

# --------------------------------------------------------------------------- VQE circuits


@njit(cache=True, parallel=True)
def _apply_1q(psi, q, m00, m01, m10, m11):
    h = 1 << q
    for r in prange(psi.size >> 1):
        a = ((r >> q) << (q + 1)) | (r & (h - 1))
        b = a | h
        x0 = psi[a]
        x1 = psi[b]
        psi[a] = m00 * x0 + m01 * x1
        psi[b] = m10 * x0 + m11 * x1


@njit(cache=True, parallel=True)
def _apply_2q(psi, q0, q1, m):
    """4×4 gate on (q0, q1); local index = bit(q0) + 2·bit(q1) (Qiskit's matrix convention)."""
    lo = min(q0, q1)
    hi = max(q0, q1)
    for r in prange(psi.size >> 2):
        z = ((r >> lo) << (lo + 1)) | (r & ((1 << lo) - 1))
        z = ((z >> hi) << (hi + 1)) | (z & ((1 << hi) - 1))
        i0 = z
        i1 = z | (1 << q0)
        i2 = z | (1 << q1)
        i3 = i1 | (1 << q1)
        x0 = psi[i0]
        x1 = psi[i1]
        x2 = psi[i2]
        x3 = psi[i3]
        psi[i0] = m[0, 0] * x0 + m[0, 1] * x1 + m[0, 2] * x2 + m[0, 3] * x3
        psi[i1] = m[1, 0] * x0 + m[1, 1] * x1 + m[1, 2] * x2 + m[1, 3] * x3
        psi[i2] = m[2, 0] * x0 + m[2, 1] * x1 + m[2, 2] * x2 + m[2, 3] * x3
        psi[i3] = m[3, 0] * x0 + m[3, 1] * x1 + m[3, 2] * x2 + m[3, 3] * x3


_BASIS = ["rx", "ry", "rz", "p", "u", "h", "x", "y", "z", "s", "sdg", "sx", "t", "tdg",
          "cx", "cz", "cy", "swap", "rzz", "rxx", "ryy", "cp", "crx", "cry", "crz", "xx_plus_yy"]


class CircuitSimulator:
    """Statevector of a parametrised Qiskit circuit (e.g. ``real_amplitudes``, ``efficient_su2``).

    The circuit is transpiled once to 1- and 2-qubit standard gates; each evaluation binds the
    values (ordered as ``circuit.parameters``) into that gate list and applies numba kernels.
    Starts from |0…0⟩; measurements and barriers are ignored.
    """

    def __init__(self, circuit, *, dtype=np.complex128):
        from qiskit import transpile

        self.dtype = _dtype(dtype)
        self.n = circuit.num_qubits
        check_memory(self.dtype.itemsize * 2.0**self.n, f"the {self.n}-qubit circuit state")
        self.parameters = list(circuit.parameters)
        compiled = transpile(circuit.remove_final_measurements(inplace=False), basis_gates=_BASIS,
                             optimization_level=0)
        index = {p: i for i, p in enumerate(self.parameters)}
        self._ops = []
        for inst in compiled.data:
            op = inst.operation
            if op.name in ("barrier", "measure", "delay"):
                continue
            qubits = tuple(compiled.find_bit(q).index for q in inst.qubits)
            if len(qubits) > 2:
                raise ValueError(f"gate {op.name} acts on {len(qubits)} qubits: only 1- and 2-qubit gates")
            params = [self._compile_param(p, index) for p in op.params]
            self._ops.append((type(op), qubits, params, op if not params else None))
        self._phase = self._compile_param(compiled.global_phase, index)
        self._psi = np.empty(1 << self.n, dtype=self.dtype)

    @staticmethod
    def _compile_param(p, index):
        from qiskit.circuit import Parameter, ParameterExpression

        if isinstance(p, Parameter):
            return ("var", index[p])
        if isinstance(p, ParameterExpression):
            if not p.parameters:
                return ("const", complex(p).real)
            return ("expr", p, [(q, index[q]) for q in p.parameters])
        return ("const", float(p))

    @staticmethod
    def _value(spec, values):
        if spec[0] == "const":
            return spec[1]
        if spec[0] == "var":
            return values[spec[1]]
        expr = spec[1].bind({q: values[i] for q, i in spec[2]})
        return complex(expr).real

    def statevector(self, values) -> np.ndarray:
        """The state after the circuit with ``values`` bound (ordered as ``circuit.parameters``)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size != len(self.parameters):
            raise ValueError(f"the circuit has {len(self.parameters)} parameters, got {values.size} values")
        with _threads(self._psi.size):
            return self._run(values)

    def _run(self, values):
        psi = self._psi
        psi[:] = 0.0
        psi[0] = 1.0
        for cls, qubits, params, fixed in self._ops:
            gate = fixed if fixed is not None else cls(*[self._value(s, values) for s in params])
            m = np.asarray(gate.to_matrix(), dtype=np.complex128)
            if len(qubits) == 1:
                _apply_1q(psi, qubits[0], m[0, 0], m[0, 1], m[1, 0], m[1, 1])
            else:
                _apply_2q(psi, qubits[0], qubits[1], m)
        phase = self._value(self._phase, values)
        if phase:
            psi *= np.exp(1j * phase)
        return psi.copy()

    def probabilities(self, values) -> np.ndarray:
        """|ψ_z|² after the circuit with ``values`` bound, float64."""
        psi = self.statevector(values)
        return psi.real**2 + psi.imag**2
