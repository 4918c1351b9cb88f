"""Every allowed value of a choice, once: the core validates with these, the config schema imports them.

Members are strings (``Mixer.XY_RING == "xy_ring"``), so a plain string works wherever a choice is taken.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A string-valued choice that prints as its value."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)


class DataSource(Choice):
    SP500 = "sp500"
    CSV = "csv"
    YFINANCE = "yfinance"


class Frequency(Choice):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    AS_IS = "as_is"


class Covariance(Choice):
    SAMPLE = "sample"
    LEDOIT_WOLF = "ledoit_wolf"


class ProblemKind(Choice):
    INTEGER_SHARES = "integer_shares"
    SELECTION = "selection"
    MARKOWITZ = "markowitz"


class MarkowitzObjective(Choice):
    MIN_VARIANCE = "min_variance"
    MAX_RETURN = "max_return"
    MAX_SHARPE = "max_sharpe"
    UTILITY_VARIANCE = "utility_variance"
    UTILITY_VOLATILITY = "utility_volatility"


class MarkowitzMethod(Choice):
    """How :func:`~qportfolio.classical.solve_markowitz` solves: ``closed_form`` (shorts only), ``convex``
    (cvxpy + Clarabel, any case), ``auto`` (closed form with shorts, convex long-only)."""

    AUTO = "auto"
    CLOSED_FORM = "closed_form"
    CONVEX = "convex"


class ConstraintEncoding(Choice):
    """How an inequality becomes a penalty: ``slack`` (an integer slack register, exact), ``squared`` (the
    seed's ``λ(gᵀx − h)²``, an equality in effect), ``unbalanced`` (``λ₂h² − λ₁h`` on ``h = rhs − gᵀx``, no slack,
    calibrated and verified), ``auto`` (what verifies with the fewest qubits)."""

    SLACK = "slack"
    SQUARED = "squared"
    UNBALANCED = "unbalanced"
    AUTO = "auto"


class IntegerEncoding(Choice):
    BOUNDED = "bounded"
    BINARY = "binary"


class Narrowing(Choice):
    AUTO = "auto"
    OFF = "off"


class Algorithm(Choice):
    QAOA = "qaoa"
    VQE = "vqe"


class Mixer(Choice):
    X = "x"
    XY_RING = "xy_ring"
    XY_COMPLETE = "xy_complete"


class VQEForm(Choice):
    REAL_AMPLITUDES = "real_amplitudes"
    EFFICIENT_SU2 = "efficient_su2"


class Entanglement(Choice):
    LINEAR = "linear"
    REVERSE_LINEAR = "reverse_linear"
    CIRCULAR = "circular"
    FULL = "full"
    PAIRWISE = "pairwise"
    SCA = "sca"


class Search(Choice):
    """How the angles are searched: ``adaptive`` (grow the depth while it pays), ``fixed`` (the given depth
    and budget), ``auto`` (the tool decides by problem and target)."""

    AUTO = "auto"
    ADAPTIVE = "adaptive"
    FIXED = "fixed"


class Pretrain(Choice):
    """Where the angles are trained before the target samples: ``exact`` (the exact simulator), ``none``
    (on the target itself), ``auto`` (exact for hardware targets)."""

    AUTO = "auto"
    NONE = "none"
    EXACT = "exact"


class Optimizer(Choice):
    COBYLA = "cobyla"
    NELDER_MEAD = "nelder_mead"
    SPSA = "spsa"
    POWELL = "powell"
    L_BFGS_B = "l_bfgs_b"


class TrainingObjective(Choice):
    EXPECTATION = "expectation"
    CVAR = "cvar"
    GIBBS = "gibbs"


class Precision(Choice):
    COMPLEX128 = "complex128"
    COMPLEX64 = "complex64"


class ExecutionMode(Choice):
    JOB = "job"
    BATCH = "batch"
    SESSION = "session"


class DDSequence(Choice):
    XX = "XX"
    XPXM = "XpXm"
    XY4 = "XY4"


class Mitigation(Choice):
    """``auto``: mthree where the target reports readout errors, else none."""

    AUTO = "auto"
    NONE = "none"
    MTHREE = "mthree"


class AerMethod(Choice):
    AUTO = "auto"
    DENSITY_MATRIX = "density_matrix"
    STATEVECTOR = "statevector"


class ClassicalMethod(Choice):
    SCIP = "scip"
    RELAX_ROUND = "relax_round"
    GREEDY = "greedy"
    SIMULATED_ANNEALING = "simulated_annealing"
    TABU = "tabu"


class BacktestMethod(Choice):
    """What a backtest compares: the quantum solver, the exact and classical solvers on the same problem,
    and the continuous and naive portfolios beside them."""

    QUANTUM = "quantum"
    CLASSICAL_EXACT = "classical_exact"
    SCIP = "scip"
    RELAX_ROUND = "relax_round"
    GREEDY = "greedy"
    SIMULATED_ANNEALING = "simulated_annealing"
    TABU = "tabu"
    EQUAL_WEIGHT = "equal_weight"
    MARKOWITZ_MIN_VARIANCE = "markowitz_min_variance"
    MARKOWITZ_MAX_SHARPE = "markowitz_max_sharpe"
    BUY_AND_HOLD = "buy_and_hold"


class TableFormat(Choice):
    """How ``compare`` and ``frontier`` print their tables."""

    TABLE = "table"
    MARKDOWN = "markdown"
    CSV = "csv"


def check_choice(value, choice: type[Choice], name: str, error=ValueError) -> str:
    """``value`` as the plain string of a member of ``choice``, or ``error`` naming ``name`` and the allowed values."""
    try:
        return choice(value).value
    except ValueError:
        raise error(f"{name} must be one of {', '.join(choice.values())}, got {value!r}") from None
