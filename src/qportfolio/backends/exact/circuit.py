"""Statevector simulation of bound circuits (VQE and any other circuit), stage by stage in tiled passes.

The transpiled gates are regrouped (each moved only past gates on other qubits) into stages:

* a *layer* — one 2×2 per qubit, the product of that qubit's consecutive single-qubit gates;
* a *CX network* — CX and SWAP gates, a linear map ``z ↦ A z`` over GF(2) of the basis index, so that
  ``ψ'[y] = ψ[A⁻¹ y]`` is one gather;
* a *diagonal* — CZ, CP, RZZ and CRZ gates, together ``e^{iφ(z)}`` with φ quadratic in the bits of z;
* any other (two-qubit) gate, applied on its own over the whole state.

One pass over the contiguous tiles of 2^L amplitudes applies a CX network (gathered from the other state
buffer), the diagonal after it and the layer after that on qubits 0…L−1 (the lowest inside L1-sized
sub-blocks); a second pass, over gathered tiles of runs as in :mod:`.warm_start`, applies the layer on the
others. A first layer on |0…0⟩ is written directly as a product state; real layers (RY, X, H, …) run on the
float view (:mod:`.single_qubit`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from qportfolio.backends.exact.kernels import (
    _dtype,
    _high_tiles,
    _probabilities,
    _sincos,
    _threads,
    check_memory,
)
from qportfolio.backends.exact.single_qubit import apply_unitaries
from qportfolio.sampling import sample_counts

_TILE_BITS = 16
_SUB_BITS = 10  # 2^10 amplitudes (16 KiB in complex128) stay in L1 for the lowest qubits of a layer

# --------------------------------------------------------------------------- kernels


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


@njit(cache=True)
def _apply_layer(x, real, cplx, b0):
    """⊗_i u[i] on tile bits b0+i: real factors on the float view, complex ones directly (one of them empty)."""
    apply_unitaries(x.view(real.dtype), real, b0 + 1)
    apply_unitaries(x, cplx, b0)


@njit(cache=True)
def _diagonal_tile(x, t, bits, quad_low, cross, lin_high, quad_high):
    """x_j ← e^{iφ(z)} x_j on the tile t (z = t·2^bits + j) for the quadratic form φ = quad_low[j] +
    Σ_{a<bits, b} cross[a, b] z_a t_b + Σ_b lin_high[b] t_b + Σ_{b<b'} quad_high[b, b'] t_b t_b'."""
    nh = lin_high.size
    offset = 0.0
    for b in range(nh):
        if (t >> b) & 1:
            offset += lin_high[b]
            for c in range(b + 1, nh):
                if (t >> c) & 1:
                    offset += quad_high[b, c]
    sub = min(bits, _SUB_BITS)
    lin_sub = np.zeros(1 << sub)  # Σ_a cross[a, ·]·t over the low bits, split into sub-block and top tables
    lin_top = np.zeros(1 << (bits - sub))
    for a in range(bits):
        c = 0.0
        for b in range(nh):
            if (t >> b) & 1:
                c += cross[a, b]
        table, bit = (lin_sub, a) if a < sub else (lin_top, a - sub)
        for j in range(1 << bit):
            table[j | (1 << bit)] = table[j] + c
    mask = (1 << sub) - 1
    for j in range(x.size):
        s, c = _sincos(offset + quad_low[j] + lin_sub[j & mask] + lin_top[j >> sub])
        x[j] = x[j] * complex(c, s)


@njit(cache=True, parallel=True)
def _layer_low(dst, src, low_map, high_cols, quad_low, cross, lin_high, quad_high, bits, real, cplx):
    """On each contiguous tile of dst (qubits 0…bits−1): gather through a CX network (non-empty ``low_map``),
    then a diagonal (non-empty ``quad_low``, :func:`_diagonal_tile`), then the layer. The gather reads
    dst[y] = src[A⁻¹y], A⁻¹y = (⊕ high_cols[b] over the tile index's bits b) ⊕ low_map[y mod 2^bits]."""
    size = 1 << bits
    sub = min(bits, _SUB_BITS)
    k = max(real.shape[0], cplx.shape[0])
    for t in prange(dst.size >> bits):
        x = dst[t * size:(t + 1) * size]
        if low_map.size:
            base = 0
            for b in range(high_cols.size):
                if (t >> b) & 1:
                    base ^= high_cols[b]
            for j in range(size):
                x[j] = src[base ^ low_map[j]]
        if quad_low.size:
            _diagonal_tile(x, t, bits, quad_low, cross, lin_high, quad_high)
        if sub < k:
            _apply_layer(x, real[sub:], cplx[sub:], sub)
        if k:
            for start in range(0, size, 1 << sub):
                _apply_layer(x[start:start + (1 << sub)], real[:sub], cplx[:sub], 0)


@njit(cache=True, parallel=True)
def _layer_high(psi, low_bits, run_bits, real, cplx):
    """Layer on qubits low_bits…n−1: a tile gathers the runs of 2^run_bits amplitudes that differ only in them."""
    nh, _, run, size, ntiles = _high_tiles(psi.size, low_bits, run_bits)
    for t in prange(ntiles):
        x = np.empty(size, dtype=psi.dtype)
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            x[h * run:(h + 1) * run] = psi[src:src + run]
        _apply_layer(x, real, cplx, run_bits)
        for h in range(nh):
            src = (h << low_bits) | (t << run_bits)
            psi[src:src + run] = x[h * run:(h + 1) * run]


@njit(cache=True, parallel=True)
def _product_state(psi, low, high):
    """ψ[t·2^L + j] = low[j]·high[t]."""
    size = low.size
    for t in prange(high.size):
        a = high[t]
        for j in range(size):
            psi[t * size + j] = low[j] * a


# --------------------------------------------------------------------------- stages


class _Stage:
    """A layer (``gates``: qubit → its gates in order), a CX network (``pairs``: (control, target) in order,
    ``gather``: its A⁻¹ as (low_map, high_cols) of :func:`_layer_low`), a diagonal (``terms``: its two-qubit
    diagonal gates) or one other gate (``gate``)."""

    def __init__(self, kind, gate=None):
        self.kind = kind
        self.gates: dict[int, list] = {}
        self.pairs: list[tuple[int, int]] = []
        self.gate = gate
        self.terms: list = []
        self.gather = None
        self.qubits: set[int] = set()


_PERMUTATIONS = {"cx": lambda c, t: [(c, t)], "swap": lambda c, t: [(c, t), (t, c), (c, t)]}
_DIAGONALS = ("cz", "cp", "rzz", "crz")  # diagonal for every angle


def _group(ops) -> list[_Stage]:
    """Stages equivalent to the gate list ``ops`` (module docstring): a gate joins the earliest stage of its kind
    after the last stage that shares a qubit with it (or that stage itself, for a CX network)."""
    stages: list[_Stage] = []

    def last_touching(qubits, kinds):
        return max((i for i, s in enumerate(stages) if s.kind in kinds and s.qubits & qubits), default=-1)

    def stage_after(i, kind):
        j = next((j for j in range(i + 1, len(stages)) if stages[j].kind == kind), None)
        if j is None:
            stages.append(_Stage(kind))
            j = len(stages) - 1
        return stages[j]

    for op in ops:
        name, _, qubits, _, _ = op
        touched = set(qubits)
        if len(qubits) == 1:
            stage = stage_after(last_touching(touched, ("cx", "diagonal", "gate")), "layer")
            stage.gates.setdefault(qubits[0], []).append(op)
        elif name in _PERMUTATIONS:
            i = last_touching(touched, ("layer", "cx", "diagonal", "gate"))
            stage = stages[i] if i >= 0 and stages[i].kind == "cx" else stage_after(i, "cx")
            stage.pairs += _PERMUTATIONS[name](*qubits)
        elif name in _DIAGONALS:  # diagonals commute: only the other kinds order them
            i = last_touching(touched, ("layer", "cx", "gate"))
            stage = stages[i] if i >= 0 and stages[i].kind == "diagonal" else stage_after(i, "diagonal")
            stage.terms.append(op)
        else:
            stage = _Stage("gate", op)
            stages.append(stage)
        stage.qubits |= touched
    return stages


def _gather(pairs, n, low_bits) -> tuple[np.ndarray, np.ndarray]:
    """A⁻¹ of the CX network (CX(c, t): bit t ^= bit c, in order) as (A⁻¹y for y < 2^low_bits, A⁻¹ of each
    higher unit vector)."""
    rows = np.eye(n, dtype=np.int64)
    for c, t in reversed(pairs):  # A⁻¹ = CX_1 CX_2 … CX_m: row operations from the last one
        rows[t] ^= rows[c]
    cols = (rows << np.arange(n)[:, None]).sum(axis=0)  # column k as a bit mask
    low = np.zeros(1, dtype=np.int64)
    for col in cols[:low_bits]:
        low = np.concatenate([low, low ^ col])
    return low, np.ascontiguousarray(cols[low_bits:])


# --------------------------------------------------------------------------- simulator


_BASIS = ["rx", "ry", "rz", "p", "u", "h", "x", "y", "z", "s", "sdg", "sx", "t", "tdg",
          "cx", "cz", "cy", "swap", "rzz", "rxx", "ryy", "cp", "crx", "cry", "crz", "xx_plus_yy"]


class CircuitSimulator:
    """Statevector of a parametrised Qiskit circuit (e.g. ``real_amplitudes``, ``efficient_su2``).

    The circuit is transpiled once to 1- and 2-qubit standard gates and grouped into stages (module docstring);
    each evaluation binds the values (ordered as ``circuit.parameters``) and applies them. Starts from |0…0⟩;
    measurements and barriers are ignored.
    """

    def __init__(self, circuit, *, dtype=np.complex128, tile_bits: int | None = None):
        from qiskit import transpile

        self.dtype = _dtype(dtype)
        self.n = circuit.num_qubits
        check_memory(self.dtype.itemsize * 2.0**self.n, f"the {self.n}-qubit circuit state")
        self.parameters = list(circuit.parameters)
        compiled = transpile(circuit.remove_final_measurements(inplace=False), basis_gates=_BASIS,
                             optimization_level=0)
        index = {p: i for i, p in enumerate(self.parameters)}
        ops = []
        for inst in compiled.data:
            op = inst.operation
            if op.name in ("barrier", "measure", "delay"):
                continue
            qubits = tuple(compiled.find_bit(q).index for q in inst.qubits)
            if len(qubits) > 2:
                raise ValueError(f"gate {op.name} acts on {len(qubits)} qubits: only 1- and 2-qubit gates")
            params = [self._compile_param(p, index) for p in op.params]
            ops.append((op.name, type(op), qubits, params, op if not params else None))
        self._phase = self._compile_param(compiled.global_phase, index)
        self._stages = _group(ops)
        tile_bits = _TILE_BITS if tile_bits is None else tile_bits
        self.low_bits = min(self.n, max(tile_bits, (self.n + 3) // 2))
        self.run_bits = max(0, min(self.low_bits, tile_bits - (self.n - self.low_bits)))
        for stage in self._stages:
            if stage.kind == "cx":
                stage.gather = _gather(stage.pairs, self.n, self.low_bits)
        copies = 2 if any(stage.kind == "cx" for stage in self._stages) else 1
        check_memory(copies * self.dtype.itemsize * 2.0**self.n, f"the {self.n}-qubit circuit state"
                     + (" and its copy" if copies == 2 else ""))
        self._psi = np.empty(1 << self.n, dtype=self.dtype)
        self._spare = np.empty_like(self._psi) if copies == 2 else None

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

    def _matrix(self, op, values) -> np.ndarray:
        _, cls, _, params, fixed = op
        gate = fixed if fixed is not None else cls(*[self._value(s, values) for s in params])
        return np.asarray(gate.to_matrix(), dtype=np.complex128)

    def _factor(self, stage, values, q) -> np.ndarray:
        """The layer's 2×2 on qubit q: the product of its gates there."""
        m = np.eye(2, dtype=np.complex128)
        for op in stage.gates.get(q, ()):
            m = self._matrix(op, values) @ m
        return m

    def _layer(self, stage, values, qubits) -> tuple[np.ndarray, np.ndarray]:
        """The layer's factors on ``qubits``, row-major: (real, empty) when all are real, else (empty, complex);
        none for an empty layer."""
        qubits = qubits if stage.gates else ()
        u = np.array([self._factor(stage, values, q).ravel() for q in qubits], dtype=np.complex128).reshape(-1, 4)
        real = self.dtype.type(0).real.dtype
        if np.all(u.imag == 0):
            return np.ascontiguousarray(u.real, dtype=real), np.empty((0, 4), dtype=self.dtype)
        return np.empty((0, 4), dtype=real), u.astype(self.dtype)

    def _check(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size != len(self.parameters):
            raise ValueError(f"the circuit has {len(self.parameters)} parameters, got {values.size} values")
        return values

    def statevector(self, values) -> np.ndarray:
        """The state after the circuit with ``values`` bound (ordered as ``circuit.parameters``)."""
        values = self._check(values)
        with _threads(self._psi.size):
            psi = self._run(values).copy()
        phase = self._value(self._phase, values)
        if phase:
            psi *= np.exp(1j * phase)
        return psi

    def probabilities(self, values) -> np.ndarray:
        """|ψ_z|² after the circuit with ``values`` bound, float64."""
        values = self._check(values)
        check_memory(8.0 * self._psi.size, "the probability vector")
        with _threads(self._psi.size):
            return _probabilities(self._run(values))

    def sample(self, values, shots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(states, counts)`` of ``shots`` draws from |ψ_z|², read off the final state in place."""
        values = self._check(values)
        with _threads(self._psi.size):
            psi = self._run(values)
        return sample_counts(psi, shots, rng)

    def _product(self, stage, values, qubits) -> np.ndarray:
        """Amplitudes of ⊗_q U_q|0⟩ over ``qubits`` (the lowest one the lowest bit)."""
        out = np.ones(1, dtype=self.dtype)
        for q in qubits:
            column = self._factor(stage, values, q)[:, 0]
            out = np.concatenate([out * column[0], out * column[1]])
        return out

    def _run(self, values):
        low, high = range(self.low_bits), range(self.low_bits, self.n)
        stages = list(self._stages)
        if stages and stages[0].kind == "layer":
            first = stages.pop(0)
            _product_state(self._psi, self._product(first, values, low), self._product(first, values, high))
        else:
            self._psi[:] = 0.0
            self._psi[0] = 1.0
        none = np.empty(0, dtype=np.int64)
        no_diagonal = (np.empty(0), np.empty((0, 0)), np.empty(0), np.empty((0, 0)))
        while stages:
            if stages[0].kind == "gate":
                op = stages.pop(0).gate  # a two-qubit gate of no other stage's kind
                _apply_2q(self._psi, *op[2], self._matrix(op, values))
                continue
            gather, diagonal, layer, source = (none, none), no_diagonal, _Stage("layer"), self._psi
            if stages[0].kind == "cx":
                gather = stages.pop(0).gather
                self._psi, self._spare = self._spare, self._psi
            if stages and stages[0].kind == "diagonal":
                diagonal = self._quadratic_form(stages.pop(0), values)
            if stages and stages[0].kind == "layer":
                layer = stages.pop(0)
            _layer_low(self._psi, source, *gather, *diagonal, self.low_bits, *self._layer(layer, values, low))
            if any(q >= self.low_bits for q in layer.gates):
                _layer_high(self._psi, self.low_bits, self.run_bits, *self._layer(layer, values, high))
        return self._psi

    def _quadratic_form(self, stage, values):
        """The diagonal's phase φ(z) = c + Σ_a h_a z_a + Σ_{a<b} w_ab z_a z_b as the arguments of
        :func:`_diagonal_tile`."""
        n, low = self.n, self.low_bits
        const, h, w = 0.0, np.zeros(n), np.zeros((n, n))
        for op in stage.terms:
            phi = np.angle(np.diag(self._matrix(op, values)))  # index bit(q0) + 2·bit(q1)
            a, b = op[2]
            const += phi[0]
            h[a] += phi[1] - phi[0]
            h[b] += phi[2] - phi[0]
            w[a, b] += phi[3] - phi[1] - phi[2] + phi[0]
        w = w + w.T
        quad_low = np.array([const])
        for a in range(low):
            j = np.arange(quad_low.size)
            step = h[a] + sum(w[a, b] * ((j >> b) & 1) for b in range(a))
            quad_low = np.concatenate([quad_low, quad_low + step])
        return (quad_low, np.ascontiguousarray(w[:low, low:]), np.ascontiguousarray(h[low:]),
                np.ascontiguousarray(w[low:, low:]))
