"""The variational loop and what drives it: objectives (mean, CVaR, Gibbs), the runner, the parameter search and
its strategies, the settings the tool chooses (:mod:`.auto`), the device search, job recovery, and
:class:`QuantumSolver`, which runs the whole pipeline on one problem into a :class:`QuantumResult`."""

from qportfolio.encoding import Encoded
from qportfolio.optimize.history import OptimizerCall, Replay, parameter_key
from qportfolio.optimize.energy_table import EnergyTable, objective_value
from qportfolio.optimize.result import QuantumResult
from qportfolio.optimize.runner import VariationalResult, VariationalRunner, spsa
from qportfolio.optimize.search import planned_evaluations, variational_search
from qportfolio.optimize.solver import QuantumSolver, SolveHooks

__all__ = ["Encoded", "EnergyTable", "OptimizerCall", "QuantumResult", "QuantumSolver", "Replay", "SolveHooks",
           "VariationalResult", "VariationalRunner", "objective_value", "parameter_key", "planned_evaluations",
           "spsa", "variational_search"]
