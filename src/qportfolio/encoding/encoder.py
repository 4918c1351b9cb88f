"""The encoding policy: which QUBO a discrete problem gets, and the record of how it was chosen and checked.

:class:`Encoder` holds the ``problem.*`` encoding keys (constraint and integer encodings, penalties, slack
resolution, the qubit limit and how to narrow to it) and whether the circuit keeps ``1ᵀx = K`` by
construction. :meth:`Encoder.encode` applies them in one order — the faithful slack resolution, the slack-free
(unbalanced) coefficients or calibrated penalties, share windows when the full encoding exceeds the qubit limit,
and up to :data:`MAX_ENUMERATED_QUBITS` the energy table and the ground-state check — for the quantum solver,
the classical samplers' QUBO and the backtest alike. An :class:`Encoded`'s bits are read back with
``encoded.encoding.decode`` (slack bits ignored, window offsets added).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qportfolio.classical import enumeration_size, solve_exact
from qportfolio.encoding.calibration import (
    Calibration,
    calibrate_penalties,
    calibrate_unbalanced,
    faithful_slack_divisor,
    unbalanced_encoding,
)
from qportfolio.encoding.energies import MAX_ENUMERATED_QUBITS
from qportfolio.encoding.program import build_quadratic_program
from qportfolio.encoding.program_to_qubo import DEFAULT_UNBALANCED, SLACK_RESOLUTION_DIVISOR, QuboEncoding, to_qubo
from qportfolio.encoding.verification import GroundStateCheck, verify_ground_state
from qportfolio.encoding.windows import Window, fit_encoding, windowed_program
from qportfolio.errors import ConfigError, QPortfolioError
from qportfolio.problems import DiscreteProblem, IntegerSharesProblem, MarkowitzProblem, SelectionProblem

#: Instances up to this many allocations are enumerated to choose a faithful encoding (dry runs, exports).
ENUMERATE_FOR_ENCODING = 10_000_000


@dataclass
class Encoded:
    """A problem's QUBO encoding with the record of how it was chosen and checked."""

    encoding: QuboEncoding
    slack: dict | None = None
    calibration: Calibration | None = None
    window: Window | None = None
    energies: np.ndarray | None = None
    verification: GroundStateCheck | None = None
    #: how the constraint encoding was chosen (``auto`` / ``unbalanced``): qubits by encoding, the check, any fallback
    choice: dict | None = None

    @property
    def num_qubits(self) -> int:
        return self.encoding.num_qubits

    def describe(self, problem: DiscreteProblem, optimum_allocation=None) -> dict:
        described = self.encoding.describe()
        if self.choice is not None:
            described["choice"] = self.choice
        if self.slack is not None:
            described["slack_resolution"] = self.slack
        if self.calibration is not None:
            described["calibration"] = self.calibration.describe()
        described["window"] = self.window.describe(problem.tickers, optimum_allocation) if self.window \
            else {"applied": False}
        if self.verification is not None:
            described["verification"] = self.verification.describe()
        return described


@dataclass
class Encoder:
    """The encoding keys of a config (``problem.*``); their defaults are the config's.

    ``qubit_limit`` (None: no limit) narrows integer shares to windows when the full encoding exceeds it;
    ``keeps_cardinality``: the circuit keeps ``1ᵀx = K`` on every state it reaches (the XY mixers), so
    selection's cardinality penalty would only add a constant there and is dropped.
    """

    constraint_encoding: str | dict = "auto"
    integer_encoding: str = "bounded"
    penalty: float | dict | str = "calibrated"
    slack_resolution: float | dict | str = "auto"
    qubit_limit: int | None = MAX_ENUMERATED_QUBITS
    narrowing: str = "auto"
    keeps_cardinality: bool = False

    @staticmethod
    def interpret(encoded: Encoded, bits) -> np.ndarray:
        """The problem's allocations ``(m, n)`` of measured bit rows ``(m, N)``: each variable's register read
        back through its coefficients and offset, slack bits ignored (the inverse of :meth:`encode` on the
        decision qubits)."""
        return encoded.encoding.decode(bits)

    def encode(self, problem: DiscreteProblem, optimum=None, for_circuit: bool = True,
               optimal_objective: float | None = None, check: bool = True) -> Encoded:
        """The QUBO encoding of ``problem`` with the record of how it was made: the constraint encoding, the slack
        resolution, penalty calibration (``penalty: calibrated``) and share windows (when the full encoding does
        not fit); and, with ``check``, up to :data:`MAX_ENUMERATED_QUBITS`, the energy table and the ground-state
        check.

        ``constraint_encoding: auto`` (and ``unbalanced``) with calibrated penalties tries the slack-free encoding
        first (:func:`~qportfolio.encoding.calibrate_unbalanced`: it has the fewest qubits) and keeps it when its
        ground state is checked to be the feasible optimum; otherwise it falls back to slack and says so in
        :attr:`Encoded.choice`. Problems without inequalities (selection) are encoded as with ``slack``.
        With ``slack_resolution: auto`` and a known optimum (given, or found by enumeration when the instance
        is small), the resolution is the coarsest that keeps the optimum feasible in the encoding.
        ``for_circuit=False`` (the QUBO only feeds classical samplers): no qubit limit, no window.
        """
        if isinstance(problem, MarkowitzProblem):
            raise ConfigError("markowitz has continuous weights: it has no QUBO; solve it with solve_exact")
        requested = self.constraint_encoding
        args = (optimum, for_circuit, optimal_objective, check)
        if requested not in ("auto", "unbalanced") or not isinstance(problem, IntegerSharesProblem):
            return self._encode_as(problem, "slack" if requested == "auto" else requested, *args)
        if self.penalty != "calibrated":
            if requested == "unbalanced":  # the user's coefficients, checked but kept
                return self._encode_as(problem, requested, *args)
            encoded = self._encode_as(problem, "slack", *args)
            encoded.choice = {"requested": requested, "chosen": "slack", "fallback": False,
                              "reason": "explicit penalties are slack penalties: auto calibrates only its own"}
            return encoded
        if optimum is None and enumeration_size(problem) <= ENUMERATE_FOR_ENCODING:
            optimum = solve_exact(problem).vector
        # the window is sized with the default coefficients (a slack-free encoding's qubits do not depend on
        # them); only the program that fits is calibrated
        _, window = fit_encoding(problem, self.qubit_limit if for_circuit else None, self.narrowing,
                                 lambda program: unbalanced_encoding(problem, program, *DEFAULT_UNBALANCED,
                                                                     self.integer_encoding))
        program = windowed_program(problem, window.lower, window.upper) if window else build_quadratic_program(problem)
        encoding, calibration = calibrate_unbalanced(problem, program, self.integer_encoding, optimum)
        slack_qubits = self.slack_qubits(problem, optimum)
        choice = {"requested": requested, "qubits": {"slack": slack_qubits, "no_slack": encoding.num_qubits},
                  "qubits_saved": None if slack_qubits is None else slack_qubits - encoding.num_qubits,
                  "checked_by": calibration.checked_by, "calibration": calibration.describe()}
        if not calibration.verified:
            encoded = self._encode_as(problem, "slack", optimum, for_circuit, optimal_objective, check)
            choice.update(chosen="slack", fallback=True, qubits_saved=0,
                          reason=f"fell back to slack: {calibration.reason}")
            encoded.choice = choice
            return encoded
        choice.update(chosen=encoding.constraint_encoding, fallback=False, reason=calibration.reason)
        return self._checked(Encoded(encoding, window=window, choice=choice), problem, optimal_objective, check)

    def slack_qubits(self, problem: DiscreteProblem, optimum) -> int | None:
        """Qubits of the full slack encoding (at the faithful resolution when the optimum is known): the yardstick
        of the qubits a slack-free encoding saves."""
        try:
            divisor = SLACK_RESOLUTION_DIVISOR
            if optimum is not None and self.slack_resolution == "auto":
                divisor, _ = faithful_slack_divisor(problem, optimum, lambda d: to_qubo(
                    problem, "slack", "auto", "auto", self.integer_encoding, slack_divisor=d))
            return to_qubo(problem, "slack", "auto", self.slack_resolution, self.integer_encoding,
                           slack_divisor=divisor).num_qubits
        except QPortfolioError:
            return None

    def _encode_as(self, problem: DiscreteProblem, constraint_encoding: str, optimum, for_circuit: bool,
                   optimal_objective: float | None, check: bool) -> Encoded:
        """The encoding with every constraint encoded as ``constraint_encoding`` (slack, squared or unbalanced)."""
        penalty = "auto" if self.penalty == "calibrated" else self.penalty
        if self.keeps_cardinality and isinstance(problem, SelectionProblem):
            penalty = {"cardinality": 0.0}
        encoded = Encoded(None)
        divisor = SLACK_RESOLUTION_DIVISOR
        if self.slack_resolution == "auto" and constraint_encoding == "slack":
            if optimum is None and enumeration_size(problem) <= ENUMERATE_FOR_ENCODING:
                optimum = solve_exact(problem).vector
            if optimum is not None:
                divisor, kept = faithful_slack_divisor(problem, optimum, lambda d: to_qubo(
                    problem, constraint_encoding, penalty, "auto", self.integer_encoding, slack_divisor=d))
                encoded.slack = {"divisor": divisor, "keeps_exact_optimum": kept,
                                 "rule": "coarsest resolution min|coefficient|/divisor whose encoding keeps the "
                                         "optimum feasible"}

        def encode(program):
            return to_qubo(problem, constraint_encoding, penalty, self.slack_resolution, self.integer_encoding,
                           program, divisor)

        encoding, encoded.window = fit_encoding(problem, self.qubit_limit if for_circuit else None,
                                                self.narrowing, encode)
        if self.penalty == "calibrated" and penalty == "auto" and constraint_encoding != "unbalanced":
            window = encoded.window
            program = windowed_program(problem, window.lower, window.upper) if window else build_quadratic_program(problem)
            encoding, encoded.calibration = calibrate_penalties(problem, constraint_encoding, self.slack_resolution,
                                                                self.integer_encoding, program, slack_divisor=divisor)
        encoded.encoding = encoding
        return self._checked(encoded, problem, optimal_objective, check)

    @staticmethod
    def _checked(encoded: Encoded, problem: DiscreteProblem, optimal_objective: float | None, check: bool) -> Encoded:
        """Up to :data:`MAX_ENUMERATED_QUBITS`, the energy table; then the ground-state check (``check`` only)."""
        if check:
            if encoded.num_qubits <= MAX_ENUMERATED_QUBITS:
                encoded.energies = encoded.encoding.qubo.all_energies()
            encoded.verification = verify_ground_state(problem, encoded.encoding, optimal_objective, encoded.energies)
        return encoded
