"""Problem → QuadraticProgram → QUBO → Ising.

:func:`build_quadratic_program` states a discrete problem faithfully as a
``qiskit_optimization.QuadraticProgram`` (integer or binary variables, linear constraints).
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
from functools import cached_property

import numpy as np
from qiskit.quantum_info import SparsePauliOp
from qiskit_optimization import QuadraticProgram
from qiskit_optimization.problems import Constraint, VarType

from qportfolio.errors import ProblemError
from qportfolio.memory import require_memory
from qportfolio.problem import DiscreteProblem, IntegerSharesProblem, MarkowitzProblem, SelectionProblem

CONSTRAINT_ENCODINGS = ("slack", "squared")
INTEGER_ENCODINGS = ("bounded", "binary")
#: Auto slack resolution: the smallest nonzero constraint coefficient divided by this.
SLACK_RESOLUTION_DIVISOR = 4
#: Divisors tried, coarsest first, when the auto resolution is checked against a known optimum.
SLACK_DIVISORS = (1, 2, 4, 8, 16, 32, 64)
#: Margin added to the auto penalty so that ties never favour an infeasible state.
PENALTY_MARGIN = 1e-3
#: Largest number of qubits the QUBO is enumerated for (2ⁿ energies, 8·2ⁿ bytes).
MAX_ENUMERATED_QUBITS = 26


def variable_name(ticker: str) -> str:
    return f"x_{ticker}"


def build_quadratic_program(problem: DiscreteProblem | MarkowitzProblem) -> QuadraticProgram:
    """The problem as a constrained ``QuadraticProgram``, variables in ticker order."""
    program = QuadraticProgram(name=problem.kind)
    names = [variable_name(t) for t in problem.tickers]
    if isinstance(problem, IntegerSharesProblem):
        for name, upper in zip(names, problem.upper_bounds):
            program.integer_var(lowerbound=0, upperbound=int(upper), name=name)
        variance = problem.share_covariance
        gains = problem.return_coefficients
        if problem.min_return is None:
            program.minimize(quadratic=problem.risk_aversion * variance, linear=-gains)
        else:
            program.minimize(quadratic=variance)
        program.linear_constraint(linear=problem.prices, sense="<=", rhs=problem.budget, name="budget")
        if problem.min_return is not None:
            program.linear_constraint(linear=gains, sense=">=", rhs=problem.min_return, name="return")
    elif isinstance(problem, SelectionProblem):
        for name in names:
            program.binary_var(name=name)
        program.minimize(quadratic=problem.risk_aversion * problem.sigma, linear=-problem.mu)
        program.linear_constraint(
            linear=np.ones(problem.num_assets), sense="==", rhs=problem.num_selected, name="cardinality"
        )
    elif isinstance(problem, MarkowitzProblem):
        lower = -1e6 if problem.allow_short else 0.0
        for name in names:
            program.continuous_var(lowerbound=lower, upperbound=1e6, name=name)
        program.minimize(quadratic=problem.sigma)
        program.linear_constraint(linear=np.ones(problem.num_assets), sense="==", rhs=1.0, name="budget")
        if problem.target_return is not None:
            program.linear_constraint(linear=problem.mu, sense="==", rhs=problem.target_return, name="return")
    else:
        raise ProblemError(f"unknown problem type {type(problem).__name__}")
    return program


@dataclass(frozen=True)
class Qubo:
    """``E(b) = bᵀ Q b + cᵀ b + const`` over bits ``b ∈ {0,1}ᴺ``, ``Q`` strictly upper-triangular."""

    quadratic: np.ndarray
    linear: np.ndarray
    constant: float

    @property
    def num_variables(self) -> int:
        return len(self.linear)

    def energies(self, bits) -> np.ndarray:
        """Energies of the rows of ``bits`` (shape ``(m, N)``)."""
        b = np.atleast_2d(np.asarray(bits, dtype=float))
        return np.einsum("ij,ij->i", b @ self.quadratic, b) + b @ self.linear + self.constant

    def all_energies(self) -> np.ndarray:
        """``E`` for every basis index ``z`` (bit ``i`` of ``z`` is variable ``i``), by the simulator's
        O(2ᴺ) kernel; the table's 8·2ᴺ bytes are checked against free memory first."""
        from qportfolio.simulate import qubo_diagonal

        n = self.num_variables
        require_memory(8 * 2**n, f"the {n}-qubit QUBO's 2^{n} energies")
        return qubo_diagonal(self.quadratic, self.linear, self.constant)

    def to_quadratic_program(self, names: list[str] | None = None) -> QuadraticProgram:
        program = QuadraticProgram(name="qubo")
        names = names or [f"b{i}" for i in range(self.num_variables)]
        for name in names:
            program.binary_var(name=name)
        program.minimize(constant=self.constant, linear=self.linear, quadratic=self.quadratic)
        return program

    def to_ising(self) -> tuple[SparsePauliOp, float]:
        """``(H, offset)`` with ``E(b) = ⟨b|H|b⟩ + offset`` (qubit ``i`` ↔ bit ``i``); computed once."""
        return self._ising

    @cached_property
    def _ising(self) -> tuple[SparsePauliOp, float]:
        return self.to_quadratic_program().to_ising()


def bits_of(indices, num_bits: int) -> np.ndarray:
    """Rows of bits (bit ``i`` in column ``i``) of the basis indices ``indices``."""
    return (np.asarray(indices, dtype=np.int64)[:, None] >> np.arange(num_bits)) & 1


@dataclass(frozen=True)
class EncodedVariable:
    """One original variable (or a slack) spread over qubits: ``value = offset + Σ coefficients·bits``."""

    name: str
    qubits: tuple[int, ...]
    coefficients: tuple[int, ...]
    offset: int = 0

    @property
    def max_value(self) -> int:
        return self.offset + sum(self.coefficients)


@dataclass(frozen=True)
class EncodedConstraint:
    """How one linear constraint became a penalty."""

    name: str
    sense: str
    encoding: str
    penalty: float
    resolution: float | None
    slack: EncodedVariable | None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "sense": self.sense,
            "encoding": self.encoding,
            "penalty": self.penalty,
            "resolution": self.resolution,
            "slack_qubits": len(self.slack.qubits) if self.slack else 0,
        }


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
            if constraint.slack is None:
                continue
            slack = constraint.slack
            best, best_energy = None, np.inf
            # The slack register is small (a few qubits); trying its values is exact and cheap.
            for k in range(slack.max_value + 1):
                trial = bits.copy()
                trial[list(slack.qubits)] = _expand(k, slack.coefficients)
                energy = self.qubo.energies(trial)[0]
                if energy < best_energy:
                    best, best_energy = trial, energy
            bits = best
        return bits

    def describe(self) -> dict:
        return {
            "qubits": self.num_qubits,
            "decision_qubits": self.num_decision_qubits,
            "slack_qubits": self.num_qubits - self.num_decision_qubits,
            "constraint_encoding": self.constraint_encoding,
            "integer_encoding": self.integer_encoding,
            "constraints": [c.describe() for c in self.constraints],
        }


def integer_coefficients(upper: int, encoding: str = "bounded") -> tuple[int, ...]:
    """Coefficients ``c`` with ``{Σ c_k b_k} = [0, upper]`` (bounded) or ``[0, 2^m − 1]`` (binary)."""
    if upper < 0:
        raise ProblemError(f"an integer variable's upper bound must be ≥ 0, got {upper}")
    if upper == 0:
        return ()
    m = int(upper).bit_length()
    powers = tuple(2**k for k in range(m - 1))
    if encoding == "binary":
        return powers + (2 ** (m - 1),)
    return powers + (int(upper) - (2 ** (m - 1) - 1),)


def _expand(value: int, coefficients: tuple[int, ...]) -> np.ndarray:
    """Bits of ``value`` in the (bounded) expansion ``coefficients``; greedy from the top is exact here."""
    bits = np.zeros(len(coefficients), dtype=np.int64)
    if not 0 <= value <= sum(coefficients):
        raise ProblemError(f"value {value} is outside the encodable range [0, {sum(coefficients)}]")
    if coefficients and value > sum(coefficients[:-1]):
        bits[-1], value = 1, value - coefficients[-1]
    for k in range(len(coefficients) - 2, -1, -1):
        if value >= coefficients[k]:
            bits[k], value = 1, value - coefficients[k]
    return bits


def _is_whole(values) -> bool:
    values = np.asarray(values, dtype=float)
    return bool(np.all(np.abs(values - np.round(values)) <= 1e-9 * np.maximum(1.0, np.abs(values))))


def to_qubo(
    problem: DiscreteProblem,
    constraint_encoding: str = "slack",
    penalty: float | dict[str, float] | str = "auto",
    slack_resolution: float | dict[str, float] | str = "auto",
    integer_encoding: str = "bounded",
    program: QuadraticProgram | None = None,
    slack_divisor: int = SLACK_RESOLUTION_DIVISOR,
) -> QuboEncoding:
    """Encode ``problem`` (via its QuadraticProgram) as a QUBO.

    ``penalty`` and ``slack_resolution`` take one number for every constraint or a mapping by
    constraint name (``budget``, ``return``, ``cardinality``); ``penalty`` is in objective units per
    squared constraint unit (λ₁, λ₂ of the seed), ``slack_resolution`` in constraint units (dollars).
    """
    if isinstance(problem, MarkowitzProblem):
        raise ProblemError("markowitz has continuous weights and no QUBO: use problem.kind selection or integer_shares")
    if constraint_encoding not in CONSTRAINT_ENCODINGS:
        raise ProblemError(f"constraint_encoding must be one of {CONSTRAINT_ENCODINGS}, got {constraint_encoding!r}")
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

    terms = []  # (row over decision bits, rhs, λ, slack, δ): λ·(row·b + δ·slack − rhs)²
    constraints = []
    for constraint in program.linear_constraints:
        name = constraint.name
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
        if constraint_encoding == "squared" or (is_equality and not (_is_whole(g) and _is_whole(h))):
            delta = float(nonzero.min())
            lam = _choose(penalty, name, objective_range / delta**2, "penalty")
            terms.append((row_real, h, lam, None, None))
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
        terms.append((row * delta, h_int * delta, lam, slack, delta))
        constraints.append(EncodedConstraint(name, sense, "slack" if slack else "exact", lam, delta, slack))

    n = len(columns)
    quadratic_full = np.zeros((n, n))
    linear = np.zeros(n)
    # Objective in bits: (o + Eb)ᵀA(o + Eb) + cᵀ(o + Eb)
    e = expansion.astype(float)
    quadratic_full[:num_decision, :num_decision] += e @ a @ e.T
    linear[:num_decision] += 2 * e @ (a @ offsets) + e @ c
    const += offsets @ a @ offsets + c @ offsets
    for row, rhs, lam, slack, delta in terms:
        full_row = np.zeros(n)
        full_row[:num_decision] = row
        if slack is not None:
            full_row[list(slack.qubits)] = np.array(slack.coefficients, dtype=float) * delta
        # λ(rowᵀb − rhs)² = λ(bᵀ row rowᵀ b − 2 rhs rowᵀb + rhs²)
        quadratic_full += lam * np.outer(full_row, full_row)
        linear -= 2 * lam * rhs * full_row
        const += lam * rhs**2
    # b_i² = b_i: fold the diagonal into the linear part, keep the strict upper triangle.
    linear += np.diag(quadratic_full)
    quadratic = np.triu(quadratic_full + quadratic_full.T, k=1)
    qubo = Qubo(quadratic, linear, float(const))
    return QuboEncoding(qubo, tuple(variables), tuple(constraints), constraint_encoding, integer_encoding,
                        np.vstack([expansion, np.zeros((n - num_decision, len(variables)), dtype=np.int64)]))


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
    if not math.isfinite(number) or number < 0 or (number == 0 and what != "penalty"):
        raise ProblemError(f"problem.{what} for {name} must be a positive number, got {value!r}")
    return number


@dataclass(frozen=True)
class GroundStateCheck:
    """Whether the QUBO's lowest-energy state is a feasible optimum of the constrained problem."""

    verified: bool
    feasible: bool | None
    optimal: bool | None
    ground_energy: float | None
    ground_allocation: list | None
    reason: str

    def describe(self) -> dict:
        return {
            "verified": self.verified,
            "ground_state_feasible": self.feasible,
            "ground_state_optimal": self.optimal,
            "ground_energy": self.ground_energy,
            "ground_allocation": self.ground_allocation,
            "reason": self.reason,
        }


def verify_ground_state(problem: DiscreteProblem, encoding: QuboEncoding, optimal_objective: float | None,
                        energies: np.ndarray | None = None) -> GroundStateCheck:
    """Enumerate the QUBO (N ≤ ``MAX_ENUMERATED_QUBITS``) and judge its minimum on the original problem."""
    if encoding.num_qubits > MAX_ENUMERATED_QUBITS:
        return GroundStateCheck(False, None, None, None, None,
                                f"not enumerated: {encoding.num_qubits} qubits > {MAX_ENUMERATED_QUBITS}")
    if energies is None:
        energies = encoding.qubo.all_energies()
    ground = np.flatnonzero(energies <= energies.min() + 1e-9 * max(1.0, abs(energies.min())))
    bits = bits_of(ground, encoding.num_qubits)
    evaluation = problem.evaluate(encoding.decode(bits))
    feasible = bool(np.all(evaluation.feasible))
    tolerance = 1e-9 * max(1.0, abs(optimal_objective)) if optimal_objective is not None else 0.0
    optimal = None if optimal_objective is None else bool(
        feasible and np.all(evaluation.objective <= optimal_objective + tolerance))
    if optimal:
        reason = "the QUBO's ground state is a feasible optimum of the constrained problem"
    elif not feasible:
        reason = "the QUBO's ground state is infeasible: raise the penalty"
    elif optimal is False:
        reason = ("the QUBO's ground state is feasible but not optimal: the encoding excludes the optimum "
                  "(squared penalties act as equalities; slack rounding is conservative; use a finer slack_resolution)")
    else:
        reason = "feasible; optimality not checked (no exact optimum given)"
    allocation = encoding.decode(bits[:1])[0].tolist()
    return GroundStateCheck(True, feasible, optimal, float(energies[ground[0]]), allocation, reason)


def faithful_slack_divisor(problem: DiscreteProblem, optimum, encode) -> tuple[int, bool]:
    """The coarsest auto slack resolution (fewest slack qubits) whose encoding keeps ``optimum`` feasible.

    ``encode(divisor)`` builds the encoding. The optimum is kept when its encoding, with the slack at its
    best setting, pays no penalty: its QUBO energy equals its objective. Returns ``(divisor, kept)``; when
    no divisor keeps it, the finest one, with ``kept`` False.
    """
    target = float(problem.evaluate(optimum).objective[0])
    tolerance = 1e-9 * max(1.0, abs(target))
    for divisor in SLACK_DIVISORS:
        try:
            encoding = encode(divisor)
            if all(c.slack is None for c in encoding.constraints):
                return divisor, True
            energy = float(encoding.qubo.energies(encoding.encode(optimum))[0])
        except ProblemError:  # too coarse: the rounded constraint excludes every allocation
            continue
        if abs(energy - target) <= tolerance:
            return divisor, True
    return SLACK_DIVISORS[-1], False


@dataclass(frozen=True)
class Calibration:
    """How the penalties were calibrated: the smallest verified scale of the auto penalties, and the one used."""

    calibrated: bool
    smallest_scale: float | None
    scale: float
    steps: int
    reason: str

    def describe(self) -> dict:
        return {"calibrated": self.calibrated, "smallest_verified_scale": self.smallest_scale, "scale": self.scale,
                "steps": self.steps, "reason": self.reason}


def calibrate_penalties(problem: DiscreteProblem, constraint_encoding: str = "slack",
                        slack_resolution="auto", integer_encoding: str = "bounded", program: QuadraticProgram | None = None,
                        margin: float = 2.0, steps: int = 24,
                        slack_divisor: int = SLACK_RESOLUTION_DIVISOR) -> tuple[QuboEncoding, Calibration]:
    """Shrink the auto penalties as far as the QUBO's ground state stays the same feasible optimum.

    With ``s`` scaling every auto λ, ``good(s)`` enumerates the QUBO and asks whether its ground state is
    feasible with the objective of the ground state at ``s = 1`` (where the bound guarantees
    feasibility). Bisection on ``log s`` finds the smallest good ``s``; the encoding uses ``margin·s``
    (capped at 1) so that the ground state is not balanced on a knife edge. Past
    ``MAX_ENUMERATED_QUBITS`` nothing can be verified and the auto penalties are kept.
    """
    program = program or build_quadratic_program(problem)
    reference = to_qubo(problem, constraint_encoding, "auto", slack_resolution, integer_encoding, program, slack_divisor)
    if reference.num_qubits > MAX_ENUMERATED_QUBITS:
        return reference, Calibration(False, None, 1.0, 0, f"{reference.num_qubits} qubits cannot be enumerated: "
                                      "auto penalties kept")
    auto = {c.name: c.penalty for c in reference.constraints}

    def encode(scale: float) -> QuboEncoding:
        return to_qubo(problem, constraint_encoding, {k: v * scale for k, v in auto.items()}, slack_resolution,
                       integer_encoding, program, slack_divisor)

    def ground(encoding: QuboEncoding):
        energies = encoding.qubo.all_energies()
        bits = bits_of([int(np.argmin(energies))], encoding.num_qubits)
        evaluation = problem.evaluate(encoding.decode(bits))
        return bool(evaluation.feasible[0]), float(evaluation.objective[0])

    feasible, target = ground(reference)
    if not feasible:
        return reference, Calibration(False, None, 1.0, 1, "the auto penalties' ground state is infeasible: kept")
    tolerance = 1e-9 * max(1.0, abs(target))

    def good(scale: float) -> bool:
        ok, objective = ground(encode(scale))
        return ok and objective <= target + tolerance

    low, high = -12.0, 0.0  # log10 of the scale
    if good(10**low):
        high = low
    else:
        for _ in range(steps):
            middle = 0.5 * (low + high)
            low, high = (low, middle) if good(10**middle) else (middle, high)
            if high - low < 0.02:
                break
    smallest = 10**high
    scale = min(1.0, margin * smallest)
    return encode(scale), Calibration(True, smallest, scale, steps,
                                      f"smallest verified penalty scale {smallest:.3g} of auto; using {scale:.3g}")
