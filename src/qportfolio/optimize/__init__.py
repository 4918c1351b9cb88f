"""The variational loop and what drives it: objectives (mean, CVaR), the runner, the parameter search and
its strategies, and :class:`QuantumSolver`, which runs the whole pipeline on one problem."""

from qportfolio.optimize.history import Evaluation, Replay, parameter_key
from qportfolio.optimize.objectives import EnergyTable, objective_value
from qportfolio.optimize.runner import VariationalResult, VariationalRunner, spsa
from qportfolio.optimize.search import planned_evaluations, variational_search
from qportfolio.optimize.solver import Encoded, QuantumResult, QuantumSolver, SolveHooks

__all__ = ["Encoded", "EnergyTable", "Evaluation", "QuantumResult", "QuantumSolver", "Replay", "SolveHooks",
           "VariationalResult", "VariationalRunner", "objective_value", "parameter_key", "planned_evaluations",
           "spsa", "variational_search"]
