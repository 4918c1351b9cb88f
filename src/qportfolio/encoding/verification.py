"""Is the QUBO's ground state the feasible optimum of the constrained problem? Checked by enumeration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qportfolio.combinations import weight_k_states
from qportfolio.encoding.energies import MAX_ENUMERATED_QUBITS
from qportfolio.encoding.program_to_qubo import QuboEncoding
from qportfolio.encoding.qubo import bits_of
from qportfolio.problems import (
    DiscreteProblem,
    SelectionProblem,
    optimum_tolerance,
)


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
    reachable = _reachable_states(problem, encoding)
    if reachable is not None:  # the penalty of a constraint the mixer keeps was dropped on purpose
        energies = energies[reachable]
    lowest = energies.min()
    ground = np.flatnonzero(energies <= lowest + optimum_tolerance(lowest))
    ground_energy = float(energies[ground[0]])
    if reachable is not None:
        ground = reachable[ground]
    bits = bits_of(ground, encoding.num_qubits)
    evaluation = problem.evaluate(encoding.decode(bits))
    feasible = bool(np.all(evaluation.feasible))
    tolerance = optimum_tolerance(optimal_objective) if optimal_objective is not None else 0.0
    optimal = None if optimal_objective is None else bool(
        feasible and np.all(evaluation.objective <= optimal_objective + tolerance))
    where = " over the states the XY mixer reaches (exactly K assets)" if reachable is not None else ""
    if optimal:
        reason = f"the QUBO's ground state{where} is a feasible optimum of the constrained problem"
    elif not feasible:
        reason = f"the QUBO's ground state{where} is infeasible: raise the penalty"
    elif optimal is False:
        reason = ("the QUBO's ground state is feasible but not optimal: the encoding excludes the optimum "
                  "(squared penalties act as equalities; slack rounding is conservative; use a finer slack_resolution)")
    else:
        reason = "feasible; optimality not checked (no exact optimum given)"
    allocation = encoding.decode(bits[:1])[0].tolist()
    return GroundStateCheck(True, feasible, optimal, ground_energy, allocation, reason)




def _reachable_states(problem: DiscreteProblem, encoding: QuboEncoding) -> np.ndarray | None:
    """The basis states an XY mixer reaches (Hamming weight K, ascending) when the selection's cardinality
    penalty was dropped for it (penalty 0); None when every state counts."""
    if not isinstance(problem, SelectionProblem):
        return None
    if not any(c.name == "cardinality" and c.penalty == 0 for c in encoding.constraints):
        return None
    return weight_k_states(encoding.num_qubits, problem.num_selected)
