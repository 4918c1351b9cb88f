"""Penalties and slack resolution chosen against a known optimum: the faithful slack resolution and penalty calibration."""

from __future__ import annotations

from dataclasses import dataclass

from qiskit_optimization import QuadraticProgram

from qportfolio.encoding.energies import MAX_ENUMERATED_QUBITS
from qportfolio.encoding.penalties import (
    SLACK_DIVISORS,
    SLACK_RESOLUTION_DIVISOR,
    QuboEncoding,
    to_qubo,
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
