"""The three portfolio problems, validated on construction.

Notation (README, "The problems"): ``n`` assets, ``mu`` the expected return per period per dollar held (n),
``sigma`` the covariance of per-period returns (n × n), ``prices`` the last close in dollars per share.

* :class:`IntegerSharesProblem` — whole shares ``x_i ∈ {0, …, U_i}``, dollars held ``d = p ∘ x``,
  ``min dᵀΣd  s.t.  pᵀx ≤ B,  μᵀd ≥ R`` (no short selling, no fractions, no costs); without a return
  floor, ``min q·dᵀΣd − μᵀd  s.t.  pᵀx ≤ B``.
* :class:`SelectionProblem` — ``x ∈ {0,1}ⁿ``, ``min q·xᵀΣx − μᵀx  s.t.  1ᵀx = K``.
* :class:`MarkowitzProblem` — continuous weights, ``1ᵀw = 1 (, w ≥ 0)``: minimum variance (at a target
  return), maximum return at a volatility cap, maximum Sharpe ratio, or a mean–variance / mean–volatility utility.

Every problem evaluates many candidate allocations at once (one per row) on the *original*
constrained problem: objective, variance, expected return, cost and feasibility.
"""

from qportfolio.problems._base import FEASIBILITY_TOLERANCE, Evaluation, optimum_tolerance
from qportfolio.problems.integer_shares import IntegerSharesProblem
from qportfolio.problems.markowitz import MARKOWITZ_OBJECTIVES, MarkowitzProblem
from qportfolio.problems.selection import SelectionProblem

PortfolioProblem = IntegerSharesProblem | SelectionProblem | MarkowitzProblem
DiscreteProblem = IntegerSharesProblem | SelectionProblem

__all__ = ["FEASIBILITY_TOLERANCE", "MARKOWITZ_OBJECTIVES", "DiscreteProblem", "Evaluation", "IntegerSharesProblem",
           "MarkowitzProblem", "PortfolioProblem", "SelectionProblem", "optimum_tolerance"]
