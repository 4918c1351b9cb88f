"""Penalties and slack resolution chosen against a known optimum: the faithful slack resolution, penalty
calibration, and the slack-free (unbalanced) coefficients with their check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit_optimization import QuadraticProgram
from qiskit_optimization.problems import Constraint

from qportfolio.encoding.energies import MAX_ENUMERATED_QUBITS
from qportfolio.encoding.program_to_qubo import (
    DEFAULT_UNBALANCED,
    SLACK_DIVISORS,
    SLACK_RESOLUTION_DIVISOR,
    QuboEncoding,
    to_qubo,
    unbalanced_scales,
)
from qportfolio.encoding.program import build_quadratic_program
from qportfolio.encoding.qubo import bits_of
from qportfolio.errors import (
    ProblemError,
)
from qportfolio.problems import (
    DiscreteProblem,
    optimum_tolerance,
)


def faithful_slack_divisor(problem: DiscreteProblem, optimum, encode) -> tuple[int, bool]:
    """The coarsest auto slack resolution (fewest slack qubits) whose encoding keeps ``optimum`` feasible.

    ``encode(divisor)`` builds the encoding. The optimum is kept when its encoding, with the slack at its
    best setting, pays no penalty: its QUBO energy equals its objective. Returns ``(divisor, kept)``; when
    no divisor keeps it, the finest one, with ``kept`` False.
    """
    target = float(problem.evaluate(optimum).objective[0])
    tolerance = optimum_tolerance(target)
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
        bits = bits_of([encoding.qubo.ground_index()], encoding.num_qubits)
        evaluation = problem.evaluate(encoding.decode(bits))
        return bool(evaluation.feasible[0]), float(evaluation.objective[0])

    feasible, target = ground(reference)
    if not feasible:
        return reference, Calibration(False, None, 1.0, 1, "the auto penalties' ground state is infeasible: kept")
    tolerance = optimum_tolerance(target)

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


#: Unbalanced coefficients tried by the calibration (dimensionless, see :data:`DEFAULT_UNBALANCED`): the
#: linear weight α (0 is the squared penalty) shared by the inequalities, and the quadratic weight β …
UNBALANCED_ALPHAS = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
UNBALANCED_BETAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
#: … and centred candidates: each inequality's penalty ``β(u − t)²`` (up to a constant) with its minimum at
#: ``t = k·u*``, a multiple of the room the enumerated optimum leaves (α_c = 2βt_c).
UNBALANCED_CENTRES = (0.5, 1.0, 1.5, 2.0)
#: Decision qubits up to which every candidate is scored on the enumerated states (2ⁿ rows per candidate).
MAX_CALIBRATED_QUBITS = 20
#: η of the calibration's score, the Gibbs weight of the optimum at rate η/std(E) (the Gibbs objective's η).
SCORE_ETA = 8.0
#: Restarts of the bit-flip descents that check an encoding beyond the enumeration limit.
DESCENT_RESTARTS = 256


@dataclass(frozen=True)
class UnbalancedCalibration:
    """How the slack-free encoding was chosen and checked: the coefficients, their score, and the check."""

    verified: bool
    alpha: dict | float | None
    beta: float | None
    candidates: int
    verified_candidates: int
    score: float | None
    checked_by: str
    reason: str

    def describe(self) -> dict:
        return {"verified": self.verified, "alpha": self.alpha, "beta": self.beta, "candidates": self.candidates,
                "verified_candidates": self.verified_candidates, "optimum_gibbs_weight": self.score,
                "checked_by": self.checked_by, "reason": self.reason}


def unbalanced_encoding(problem: DiscreteProblem, program: QuadraticProgram, alpha: float | dict, beta: float,
                        integer_encoding: str = "bounded") -> QuboEncoding:
    """Every inequality ``c`` as ``F·(β u² − α_c u)`` on ``u = s/σ_c`` (:func:`unbalanced_scales`); ``alpha`` one
    number or one per constraint name; α_c = 0 is the squared penalty and is named so."""
    spread, rooms = unbalanced_scales(problem, program)
    names = [c.name for c in program.linear_constraints if c.sense != Constraint.Sense.EQ]
    alphas = alpha if isinstance(alpha, dict) else dict.fromkeys(names, alpha)
    encodings = {name: "squared" if alphas.get(name) == 0 else "unbalanced" for name in names}
    return to_qubo(problem, encodings, {n: beta * spread / rooms[n] ** 2 for n in names}, "auto", integer_encoding,
                   program, linear_penalty={n: alphas.get(n, 0.0) * spread / rooms[n] for n in names})


def calibrate_unbalanced(problem: DiscreteProblem, program: QuadraticProgram | None = None,
                         integer_encoding: str = "bounded", optimum=None, eta: float = SCORE_ETA,
                         candidates: list[tuple[dict, float]] | None = None
                         ) -> tuple[QuboEncoding, UnbalancedCalibration]:
    """The slack-free encoding whose ground state is the feasible optimum and which weighs the optimum most.

    Up to :data:`MAX_CALIBRATED_QUBITS` decision qubits every state is enumerated once: its objective ``f``
    and each inequality's room ``s_c``. A candidate ``(α, β)`` has energies ``E = f + F Σ_c (β u_c² − α_c u_c)``.
    Candidates (``candidates``: ``({name: α_c}, β)`` pairs, else the shared-α grid and the centred ones of
    :data:`UNBALANCED_CENTRES`, whose ``t`` is set by the enumerated optimum as the slack calibration uses it)
    verify when every lowest-energy state is a feasible optimum of the (windowed) box, and score the
    Gibbs weight of the optima, ``Σ_opt e^{−η(E − E_min)/std E} / Σ e^{−η(E − E_min)/std E}`` (what the Gibbs
    training objective pulls towards). The highest score wins. Beyond that size only the default
    :data:`DEFAULT_UNBALANCED` is tried, checked by enumerating the QUBO (≤ ``MAX_ENUMERATED_QUBITS``) or, beyond
    that, by :data:`DESCENT_RESTARTS` bit-flip descents against ``optimum`` (not a proof: said so).
    """
    program = program or build_quadratic_program(problem)
    base = unbalanced_encoding(problem, program, *DEFAULT_UNBALANCED, integer_encoding)
    n = base.num_qubits
    if n > MAX_CALIBRATED_QUBITS:
        return base, _check_default(problem, base, optimum)
    bits = bits_of(np.arange(2**n), n)
    allocations = base.decode(bits)
    evaluation = problem.evaluate(allocations)
    f = evaluation.objective
    feasible = evaluation.feasible
    if not feasible.any():
        return base, UnbalancedCalibration(False, None, None, 0, 0, None, f"enumeration of 2^{n} states",
                                           "no state of the encoded box is feasible")
    best = float(f[feasible].min())
    optimal = feasible & (f <= best + optimum_tolerance(best))
    spread, rooms = unbalanced_scales(problem, program)
    active = {c.name for c in base.constraints if c.encoding in ("unbalanced", "squared")}
    units = {}
    for constraint in program.linear_constraints:
        if constraint.name not in active:
            continue
        room = constraint.rhs - allocations @ constraint.linear.to_array()
        if constraint.sense == Constraint.Sense.GE:
            room = -room
        units[constraint.name] = room / rooms[constraint.name]
    squares = sum(u * u for u in units.values()) if units else np.zeros_like(f)
    first = int(np.flatnonzero(optimal)[0])
    grid = candidates if candidates is not None else [(dict.fromkeys(units, a), b) for a in UNBALANCED_ALPHAS
                                                       for b in UNBALANCED_BETAS] + \
        [({c: 2 * b * k * max(float(u[first]), 0.0) for c, u in units.items()}, b)
         for k in UNBALANCED_CENTRES for b in UNBALANCED_BETAS]
    chosen, score, count = None, -1.0, 0
    for alphas, beta in grid:
        energies = f + spread * beta * squares
        for name, u in units.items():
            energies = energies - spread * alphas.get(name, 0.0) * u
        lowest = float(energies.min())
        ground = energies <= lowest + optimum_tolerance(lowest)
        if not np.all(optimal[ground]):
            continue
        count += 1
        weights = np.exp(-eta * (energies - lowest) / (float(np.std(energies)) or 1.0))
        weight = float(weights[optimal].sum() / weights.sum())
        if weight > score:
            chosen, score = ({c: round(a, 12) for c, a in alphas.items()}, beta), weight
        if not active:
            break  # no penalty: every candidate is the objective alone
    checked = f"enumeration of the 2^{n} states of the slack-free QUBO"
    if chosen is None:
        return base, UnbalancedCalibration(False, None, None, len(grid), 0, None, checked,
                                           "no unbalanced or squared coefficients make the feasible optimum the "
                                           "QUBO's ground state")
    encoding = unbalanced_encoding(problem, program, *chosen, integer_encoding)
    return encoding, UnbalancedCalibration(True, chosen[0], chosen[1], len(grid), count, score, checked,
                                           f"{count} of {len(grid)} candidate coefficients verify; the one that "
                                           f"weighs the optimum most (Gibbs weight {score:.3g}) is used")


def _check_default(problem: DiscreteProblem, encoding: QuboEncoding, optimum) -> UnbalancedCalibration:
    """The default coefficients, checked by enumeration where it fits, else by descents from random states."""
    alpha, beta = DEFAULT_UNBALANCED
    n = encoding.num_qubits
    if n <= MAX_ENUMERATED_QUBITS:
        bits = bits_of([encoding.qubo.ground_index()], n)
        evaluation = problem.evaluate(encoding.decode(bits))
        checked = (f"enumeration of the 2^{n} states (default coefficients only: more than {MAX_CALIBRATED_QUBITS} "
                   "qubits)")
        if optimum is None:
            ok = bool(evaluation.feasible[0])
            reason = ("the ground state is feasible (no exact optimum to compare)" if ok
                      else "the ground state is infeasible")
        else:
            target = float(problem.evaluate(np.asarray(optimum)[None, :]).objective[0])
            ok = bool(evaluation.feasible[0]) and float(evaluation.objective[0]) <= target + optimum_tolerance(target)
            reason = ("the ground state is the feasible optimum" if ok
                      else "the ground state is not the feasible optimum")
        return UnbalancedCalibration(ok, alpha, beta, 1, int(ok), None, checked, reason)
    checked = f"{DESCENT_RESTARTS} bit-flip descents from random states (not a proof)"
    if optimum is None:
        return UnbalancedCalibration(False, alpha, beta, 1, 0, None, checked, "no exact optimum to check against")
    try:
        start = encoding.encode(optimum)
    except ProblemError:
        return UnbalancedCalibration(False, alpha, beta, 1, 0, None, checked, "the encoding cannot hold the optimum")
    target = float(encoding.qubo.energies(start)[0])
    lowest = float(descent_minimum(encoding.qubo, DESCENT_RESTARTS, start).min())
    ok = lowest >= target - optimum_tolerance(target)
    reason = ("no descent found a state below the optimum's energy, and the optimum is a one-flip local minimum"
              if ok else f"a descent found energy {lowest:.6g} below the optimum's {target:.6g}")
    return UnbalancedCalibration(ok, alpha, beta, 1, int(ok), None, checked, reason)


def descent_minimum(qubo, restarts: int, start=None, seed: int = 0) -> np.ndarray:
    """Energies where steepest single-bit-flip descents stop, from ``restarts`` random bit rows (and ``start``)."""
    rng = np.random.default_rng(seed)
    n = qubo.num_variables
    b = rng.integers(0, 2, size=(restarts, n)).astype(float)
    if start is not None:
        b = np.vstack([np.asarray(start, dtype=float)[None, :], b])
    pair = qubo.quadratic + qubo.quadratic.T
    for _ in range(10 * n + 10):
        delta = (1 - 2 * b) * (qubo.linear + b @ pair)  # energy change of flipping each bit
        move = np.argmin(delta, axis=1)
        rows = np.flatnonzero(delta[np.arange(len(b)), move] < 0)
        if rows.size == 0:
            break
        b[rows, move[rows]] = 1 - b[rows, move[rows]]
    return qubo.energies(b)
