"""Problem → QuadraticProgram → QUBO → Ising, one function per transformation.

* :func:`build_quadratic_program` (:mod:`.program`): the constrained problem as a QuadraticProgram;
* :func:`to_qubo` (:mod:`.program_to_qubo`): integers to qubits and constraints to penalties, a :class:`QuboEncoding`
  (``encode``/``decode`` between allocations and bits);
* :meth:`Qubo.to_ising` (:mod:`.qubo`): the QUBO as a diagonal Pauli operator and an offset.

Around them: penalty calibration, the faithful slack resolution and the slack-free (unbalanced) coefficients
(:mod:`.calibration`), the ground-state check (:mod:`.verification`), share windows for instances larger than
the qubit limit (:mod:`.windows`), and the policy that applies them all in one order (:class:`Encoder`).
"""

from qportfolio.encoding.calibration import (
    Calibration,
    UnbalancedCalibration,
    calibrate_penalties,
    calibrate_unbalanced,
    descent_minimum,
    faithful_slack_divisor,
    unbalanced_encoding,
)
from qportfolio.encoding.encoder import ENUMERATE_FOR_ENCODING, Encoded, Encoder
from qportfolio.encoding.energies import MAX_ENUMERATED_QUBITS, qubo_diagonal, qubo_energies
from qportfolio.encoding.integers import EncodedVariable, integer_coefficients
from qportfolio.encoding.program_to_qubo import (
    CONSTRAINT_ENCODINGS,
    DEFAULT_UNBALANCED,
    INTEGER_ENCODINGS,
    SLACK_RESOLUTION_DIVISOR,
    EncodedConstraint,
    QuboEncoding,
    to_qubo,
    unbalanced_scales,
)
from qportfolio.encoding.program import build_quadratic_program
from qportfolio.encoding.qubo import Qubo, bits_of
from qportfolio.encoding.verification import GroundStateCheck, verify_ground_state
from qportfolio.encoding.windows import Window, fit_encoding, windowed_program

__all__ = [
    "CONSTRAINT_ENCODINGS", "DEFAULT_UNBALANCED", "UnbalancedCalibration", "calibrate_unbalanced", "descent_minimum",
    "unbalanced_encoding", "unbalanced_scales", "INTEGER_ENCODINGS", "MAX_ENUMERATED_QUBITS",
    "SLACK_RESOLUTION_DIVISOR", "Calibration",
    "ENUMERATE_FOR_ENCODING", "Encoded", "EncodedConstraint", "EncodedVariable", "Encoder", "GroundStateCheck",
    "Qubo", "QuboEncoding", "Window", "bits_of", "build_quadratic_program", "calibrate_penalties",
    "faithful_slack_divisor", "fit_encoding", "integer_coefficients", "qubo_diagonal", "qubo_energies", "to_qubo",
    "verify_ground_state", "windowed_program",
]
