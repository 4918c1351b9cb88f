"""QuadraticProgram → QUBO: integers to qubits and constraints to penalties (:func:`to_qubo`).

:func:`~qportfolio.encoding.program.build_quadratic_program` states a discrete problem faithfully as a
``qiskit_optimization.QuadraticProgram`` (integer or binary variables, linear constraints);
:func:`to_qubo` turns that program into an unconstrained binary problem:

* **Integers to qubits.** ``x = Σ_k c_k b_k``. ``bounded`` (default): ``c = (1, 2, …, 2^{m−2}, U − 2^{m−1} + 1)``
  with ``m = ⌈log₂(U+1)⌉``, so every bit pattern is a value in ``[0, U]`` and the largest is exactly ``U``.
  ``binary``: plain powers of two ``(1, 2, …, 2^{m−1})``; patterns above ``U`` decode to values that the
  evaluation marks infeasible.
* **Constraints to penalties.** ``slack`` (default, exact): an inequality ``gᵀx ≤ h`` is discretised at a
  resolution δ to integers, ``Σ ⌈g_i/δ⌉ x_i + k = ⌊h/δ⌋`` with an integer slack ``k ≥ 0`` on its own qubits,
  and penalised by ``λ·(δ·residual)²``. The rounding is conservative: an allocation that meets the encoded
  equality meets the original inequality; one that does not pays at least ``λδ²``. ``≥`` is ``−g ≤ −h``.
  Constraints whose data are whole numbers (``1ᵀx = K``) use δ = 1 and lose nothing.
  ``squared`` (the seed's form): ``λ·(gᵀx − h)²`` with no slack, so an inequality acts as an equality.
  ``unbalanced`` (Montañez-Barrera et al., arXiv:2211.13914): ``λ₂·s² − λ₁·s`` on the room left
  ``s = h − gᵀx`` with no slack: a feasible ``s ≥ 0`` near ``λ₁/2λ₂`` costs little (even less than nothing),
  an infeasible ``s < 0`` pays ``λ₁|s| + λ₂s²``. Nothing guarantees its ground state: the coefficients are
  calibrated and checked (:func:`~qportfolio.encoding.calibration.calibrate_unbalanced`). An equality is
  never unbalanced (it keeps the slack encoding's exact form). ``constraint_encoding`` may also be a
  mapping by constraint name.
* **Penalties.** ``auto`` sets ``λ = (f_upper − f_lower)/δ²`` from the problem's objective bounds
  (:meth:`objective_bounds`): any encoded-infeasible state then costs more than the feasible optimum,
  so the QUBO's ground state is feasible. The bound is loose, not tuned; :func:`verify_ground_state`
  checks the claim by enumeration where the instance allows it.

Ising: ``x_i = (1 − z_i)/2`` with qubit ``i`` ↔ QUBO variable ``i`` (Qiskit's little-endian order),
via ``QuadraticProgram.to_ising``; ``H = Σ h_i Z_i + Σ J_ij Z_i Z_j`` plus a constant offset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from qiskit_optimization import QuadraticProgram
from qiskit_optimization.problems import Constraint, VarType

from qportfolio.choices import ConstraintEncoding, IntegerEncoding
from qportfolio.encoding.integers import EncodedVariable, _expand, integer_coefficients
from qportfolio.encoding.program import build_quadratic_program
from qportfolio.encoding.qubo import Qubo
from qportfolio.errors import (
    ProblemError,
)
from qportfolio.problems import (
    DiscreteProblem,
    MarkowitzProblem,
)

CONSTRAINT_ENCODINGS = ConstraintEncoding.values()
INTEGER_ENCODINGS = IntegerEncoding.values()
#: Auto slack resolution: the smallest nonzero constraint coefficient divided by this.
SLACK_RESOLUTION_DIVISOR = 4
#: Divisors tried, coarsest first, when the auto resolution is checked against a known optimum.
SLACK_DIVISORS = (1, 2, 4, 8, 16, 32, 64)
#: Margin added to the auto penalty so that ties never favour an infeasible state.
PENALTY_MARGIN = 1e-3
#: The unbalanced penalty's default dimensionless coefficients ``(α, β)``: ``F·(β u² − α u)`` with ``u = s/σ``
#: (``F``, ``σ``: spreads of the objective and of ``s`` over the variables' box, :func:`unbalanced_scales`).
DEFAULT_UNBALANCED = (1.0, 1.0)
#: Allocations drawn from the box to measure those spreads (a fixed seed: the same encoding every time).
SCALE_SAMPLES = 4096


@dataclass(frozen=True)
class EncodedConstraint:
    """How one linear constraint became a penalty."""

    name: str
    sense: str
    encoding: str
    penalty: float
    resolution: float | None
    slack: EncodedVariable | None
    #: slack encoding: the rounded constraint ``row·b + k = rhs`` over the decision bits, in units of δ
    row: np.ndarray | None = field(default=None, repr=False, compare=False)
    rhs: float | None = None
    #: unbalanced: λ₁ of ``λ₂s² − λ₁s`` (``penalty`` is λ₂)
    linear_penalty: float | None = None

    def describe(self) -> dict:
        described = {
            "name": self.name,
            "sense": self.sense,
            "encoding": self.encoding,
            "penalty": self.penalty,
            "resolution": self.resolution,
            "slack_qubits": len(self.slack.qubits) if self.slack else 0,
        }
        if self.linear_penalty is not None:
            described["linear_penalty"] = self.linear_penalty
        return described


@dataclass(frozen=True)
class QuboEncoding:
    """A QUBO together with the map between its bits and the original variables."""

    qubo: Qubo
    variables: tuple[EncodedVariable, ...]
    constraints: tuple[EncodedConstraint, ...]
    constraint_encoding: str
    integer_encoding: str
    _expansion: np.ndarray = field(repr=False, compare=False)

    @property
    def num_qubits(self) -> int:
        return self.qubo.num_variables

    @property
    def num_decision_qubits(self) -> int:
        return sum(len(v.qubits) for v in self.variables)

    def decode(self, bits) -> np.ndarray:
        """Original variable values ``(m, n)`` of bit rows ``(m, N)``; slack bits are ignored."""
        b = np.atleast_2d(np.asarray(bits, dtype=np.int64))
        offsets = np.array([v.offset for v in self.variables], dtype=np.int64)
        return b @ self._expansion + offsets

    def encode(self, values) -> np.ndarray:
        """Bits ``(N,)`` for original integer values ``(n,)``, with every slack at its best setting."""
        bits = np.zeros(self.num_qubits, dtype=np.int64)
        for variable, value in zip(self.variables, np.asarray(values, dtype=np.int64)):
            bits[list(variable.qubits)] = _expand(int(value) - variable.offset, variable.coefficients)
        for constraint in self.constraints:
            if constraint.slack is not None:
                bits = self._best_slack(bits, constraint)
        return bits

    def _best_slack(self, bits: np.ndarray, constraint: EncodedConstraint) -> np.ndarray:
        """``bits`` with the constraint's slack at its lowest-energy value, in closed form.

        The slack ``k`` appears only in its own penalty ``λδ²(row·b + k − h)²`` (integers at resolution δ), so
        its best value is ``h − row·b`` clipped to the register's range ``0 … max_value``: the cost does not
        grow with that range (a budget of 10¹² dollars is as fast as 500).
        """
        slack = constraint.slack
        decision = bits[: len(constraint.row)]
        best = int(np.clip(round(constraint.rhs - float(constraint.row @ decision)), 0, slack.max_value))
        out = bits.copy()
        out[list(slack.qubits)] = _expand(best, slack.coefficients)
        return out

    def describe(self) -> dict:
        return {
            "qubits": self.num_qubits,
            "decision_qubits": self.num_decision_qubits,
            "slack_qubits": self.num_qubits - self.num_decision_qubits,
            "constraint_encoding": self.constraint_encoding,
            "integer_encoding": self.integer_encoding,
            "constraints": [c.describe() for c in self.constraints],
        }



def _is_whole(values) -> bool:
    values = np.asarray(values, dtype=float)
    return bool(np.all(np.abs(values - np.round(values)) <= 1e-9 * np.maximum(1.0, np.abs(values))))


def to_qubo(
    problem: DiscreteProblem,
    constraint_encoding: str | dict[str, str] = "slack",
    penalty: float | dict[str, float] | str = "auto",
    slack_resolution: float | dict[str, float] | str = "auto",
    integer_encoding: str = "bounded",
    program: QuadraticProgram | None = None,
    slack_divisor: int = SLACK_RESOLUTION_DIVISOR,
    linear_penalty: float | dict[str, float] | str = "auto",
) -> QuboEncoding:
    """Encode ``problem`` (via its QuadraticProgram) as a QUBO.

    ``constraint_encoding``, ``penalty``, ``linear_penalty`` and ``slack_resolution`` take one value for every
    constraint or a mapping by constraint name (``budget``, ``return``, ``cardinality``); ``penalty`` is in
    objective units per squared constraint unit (λ₁, λ₂ of the seed; λ₂ of the unbalanced form),
    ``linear_penalty`` (unbalanced λ₁) in objective units per constraint unit, ``slack_resolution`` in
    constraint units (dollars). ``auto`` unbalanced coefficients: :data:`DEFAULT_UNBALANCED` on the box's spreads.
    """
    if isinstance(problem, MarkowitzProblem):
        raise ProblemError("markowitz has continuous weights and no QUBO: use problem.kind selection or integer_shares")
    requested = constraint_encoding
    for value in (requested.values() if isinstance(requested, dict) else [requested]):
        if value not in CONSTRAINT_ENCODINGS or value == "auto":
            allowed = tuple(v for v in CONSTRAINT_ENCODINGS if v != "auto")
            raise ProblemError(f"constraint_encoding must be one of {allowed} (auto is chosen by the solver), "
                               f"got {value!r}")
    if integer_encoding not in INTEGER_ENCODINGS:
        raise ProblemError(f"integer_encoding must be one of {INTEGER_ENCODINGS}, got {integer_encoding!r}")
    program = program or build_quadratic_program(problem)
    lower, upper = problem.objective_bounds()
    objective_range = max(upper - lower, 1e-12) * (1 + PENALTY_MARGIN)

    variables, columns = [], []
    for var in program.variables:
        if var.vartype == VarType.CONTINUOUS:
            raise ProblemError(f"variable {var.name} is continuous and cannot be put on qubits")
        lb, ub = int(round(var.lowerbound)), int(round(var.upperbound))
        coefficients = integer_coefficients(ub - lb, "bounded" if var.vartype == VarType.BINARY else integer_encoding)
        qubits = tuple(range(len(columns), len(columns) + len(coefficients)))
        columns.extend(qubits)
        variables.append(EncodedVariable(var.name, qubits, coefficients, lb))
    num_decision = len(columns)
    # x = offsets + expansion.T-style map: x_j = lb_j + Σ_k C[q, j] b_q
    expansion = np.zeros((num_decision, len(variables)), dtype=np.int64)
    for j, v in enumerate(variables):
        for q, c in zip(v.qubits, v.coefficients):
            expansion[q, j] = c
    offsets = np.array([v.offset for v in variables], dtype=float)

    a = program.objective.quadratic.to_array(symmetric=True)
    c = program.objective.linear.to_array()
    sign = 1.0 if program.objective.sense.value == 1 else -1.0  # maximise → minimise −f
    a, c, const = sign * a, sign * c, sign * program.objective.constant

    terms = []  # (row over decision bits, rhs, λ, slack, δ, λ₁): λ·(row·b + δ·slack − rhs)² + λ₁·(row·b − rhs)
    constraints = []
    scales = None
    for constraint in program.linear_constraints:
        name = constraint.name
        constraint_encoding = requested.get(name, "slack") if isinstance(requested, dict) else requested
        g = constraint.linear.to_array()
        h = constraint.rhs - g @ offsets
        if constraint.sense == Constraint.Sense.GE:
            g, h = -g, -h
        is_equality = constraint.sense == Constraint.Sense.EQ
        sense = {Constraint.Sense.LE: "<=", Constraint.Sense.GE: ">=", Constraint.Sense.EQ: "=="}[constraint.sense]
        nonzero = np.abs(g[np.abs(g) > 0])
        if nonzero.size == 0:
            raise ProblemError(f"constraint {name} has no nonzero coefficient")
        row_real = expansion @ g
        if constraint_encoding in ("slack", "unbalanced") and not is_equality and _box_maximum(program, g) <= h:
            # every allocation in the variables' box meets it (a budget no box allocation can spend): no
            # penalty and no slack register, whose range would grow with the unused room
            constraints.append(EncodedConstraint(name, sense, "redundant", 0.0, None, None))
            continue
        if constraint_encoding == "unbalanced" and not is_equality:
            if scales is None:
                scales = unbalanced_scales(problem, program)
            spread, room = scales[0], scales[1][name]
            alpha, beta = DEFAULT_UNBALANCED
            lam = _choose(penalty, name, beta * spread / room**2, "penalty")
            lam1 = _choose(linear_penalty, name, alpha * spread / room, "linear_penalty")
            # λ₂s² − λ₁s with s = h − g·x: λ₂(g·x − h)² + λ₁(g·x − h)
            terms.append((row_real, h, lam, None, None, lam1))
            constraints.append(EncodedConstraint(name, sense, "unbalanced", lam, None, None, linear_penalty=lam1))
            continue
        if constraint_encoding in ("squared", "unbalanced") or (is_equality and not (_is_whole(g) and _is_whole(h))):
            delta = float(nonzero.min())
            lam = _choose(penalty, name, objective_range / delta**2, "penalty")
            terms.append((row_real, h, lam, None, None, 0.0))
            constraints.append(EncodedConstraint(name, sense, "squared", lam, None, None))
            continue
        if _is_whole(g) and _is_whole(h):
            delta = 1.0
            g_int, h_int = np.round(g), float(np.round(h))
        else:
            delta = _choose(slack_resolution, name, float(nonzero.min()) / slack_divisor, "slack_resolution")
            if delta <= 0:
                raise ProblemError(f"slack_resolution for {name} must be positive, got {delta}")
            g_int, h_int = np.ceil(g / delta - 1e-12), float(np.floor(h / delta + 1e-12))
        lam = _choose(penalty, name, objective_range / delta**2, "penalty")
        row = expansion @ g_int
        slack = None
        if not is_equality:
            least = _relaxed_minimum(program, g_int, offsets)
            slack_range = int(np.floor(h_int - least + 1e-9))
            if slack_range < 0:
                raise ProblemError(
                    f"constraint {name} cannot be met by any allocation at slack resolution {delta:g}: "
                    "loosen it or use a finer problem.slack_resolution"
                )
            coefficients = integer_coefficients(slack_range, "bounded")
            qubits = tuple(range(len(columns), len(columns) + len(coefficients)))
            columns.extend(qubits)
            slack = EncodedVariable(f"slack_{name}", qubits, coefficients)
        # Penalty λ(δ·residual)² so that λ means the same thing (objective per squared unit) in both encodings.
        terms.append((row * delta, h_int * delta, lam, slack, delta, 0.0))
        constraints.append(EncodedConstraint(name, sense, "slack" if slack else "exact", lam, delta, slack, row, h_int))

    n = len(columns)
    quadratic_full = np.zeros((n, n))
    linear = np.zeros(n)
    # Objective in bits: (o + Eb)ᵀA(o + Eb) + cᵀ(o + Eb)
    e = expansion.astype(float)
    quadratic_full[:num_decision, :num_decision] += e @ a @ e.T
    linear[:num_decision] += 2 * e @ (a @ offsets) + e @ c
    const += offsets @ a @ offsets + c @ offsets
    for row, rhs, lam, slack, delta, lam1 in terms:
        full_row = np.zeros(n)
        full_row[:num_decision] = row
        if slack is not None:
            full_row[list(slack.qubits)] = np.array(slack.coefficients, dtype=float) * delta
        # λ(rowᵀb − rhs)² = λ(bᵀ row rowᵀ b − 2 rhs rowᵀb + rhs²), plus λ₁(rowᵀb − rhs)
        quadratic_full += lam * np.outer(full_row, full_row)
        linear += (lam1 - 2 * lam * rhs) * full_row
        const += lam * rhs**2 - lam1 * rhs
    # b_i² = b_i: fold the diagonal into the linear part, keep the strict upper triangle.
    linear += np.diag(quadratic_full)
    quadratic = np.triu(quadratic_full + quadratic_full.T, k=1)
    qubo = Qubo(quadratic, linear, float(const))
    used = {c.encoding for c in constraints if c.encoding not in ("redundant", "exact")}
    summary = requested if isinstance(requested, str) else (used.pop() if len(used) == 1 else "mixed")
    return QuboEncoding(qubo, tuple(variables), tuple(constraints), summary, integer_encoding,
                        np.vstack([expansion, np.zeros((n - num_decision, len(variables)), dtype=np.int64)]))


def unbalanced_scales(problem: DiscreteProblem, program: QuadraticProgram) -> tuple[float, dict[str, float]]:
    """``(F, {name: σ})``: the standard deviations of the objective and of each inequality's room ``s`` over
    :data:`SCALE_SAMPLES` allocations drawn uniformly from the variables' box (seed 0), so that the unbalanced
    coefficients ``(α, β)`` are dimensionless and transfer between instances."""
    rng = np.random.default_rng(0)
    lower = np.array([v.lowerbound for v in program.variables])
    upper = np.array([v.upperbound for v in program.variables])
    x = rng.integers(lower.astype(np.int64), upper.astype(np.int64) + 1, size=(SCALE_SAMPLES, len(lower)))
    objective = problem.evaluate(x).objective
    spread = float(np.std(objective)) or max(1.0, float(np.max(np.abs(objective))))
    rooms = {}
    for constraint in program.linear_constraints:
        room = x @ constraint.linear.to_array()
        rooms[constraint.name] = float(np.std(room)) or 1.0
    return spread, rooms


def _box_maximum(program: QuadraticProgram, row: np.ndarray) -> float:
    """The largest ``row·(x − lower)`` over the variables' box ``lower ≤ x ≤ upper``."""
    widths = np.array([v.upperbound - v.lowerbound for v in program.variables], dtype=float)
    return float(np.sum(np.maximum(row, 0.0) * widths))


def _relaxed_minimum(program: QuadraticProgram, row: np.ndarray, offsets: np.ndarray) -> float:
    """A lower bound on ``row·(x − offsets)`` over the LP relaxation of the program's feasible set.

    A slack only has to reach the values that allocations meeting *every* constraint can give it, so
    this bound (instead of the bare box) keeps slack registers to the few qubits they need.
    """
    from scipy.optimize import linprog

    upper_rows, upper_rhs, eq_rows, eq_rhs = [], [], [], []
    for constraint in program.linear_constraints:
        g = constraint.linear.to_array()
        if constraint.sense == Constraint.Sense.EQ:
            eq_rows.append(g), eq_rhs.append(constraint.rhs)
        elif constraint.sense == Constraint.Sense.LE:
            upper_rows.append(g), upper_rhs.append(constraint.rhs)
        else:
            upper_rows.append(-g), upper_rhs.append(-constraint.rhs)
    bounds = [(v.lowerbound, v.upperbound) for v in program.variables]
    result = linprog(
        row, A_ub=np.array(upper_rows) if upper_rows else None, b_ub=upper_rhs or None,
        A_eq=np.array(eq_rows) if eq_rows else None, b_eq=eq_rhs or None, bounds=bounds, method="highs",
    )
    if result.status == 2:
        raise ProblemError("no allocation meets every constraint even with fractional shares: loosen the budget or return floor")
    if result.status != 0:
        box = np.array([b[1] - b[0] for b in bounds])
        return float(np.sum(np.minimum(row, 0.0) * box))
    return float(result.fun - row @ offsets)


def _choose(value, name: str, default: float, what: str) -> float:
    if isinstance(value, dict):
        value = value.get(name, "auto")
    if value is None or value == "auto":
        return float(default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProblemError(f"problem.{what} must be 'auto', a number or a mapping by constraint, got {value!r}")
    if not math.isfinite(number) or number < 0 or (number == 0 and what not in ("penalty", "linear_penalty")):
        raise ProblemError(f"problem.{what} for {name} must be a positive number, got {value!r}")
    return number


