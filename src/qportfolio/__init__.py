"""qportfolio: portfolio optimization with QAOA and VQE, held against the best classical answer."""

from qportfolio.builder import Qubo, QuboEncoding, build_quadratic_program, to_qubo, verify_ground_state
from qportfolio.classical import solve_exact, solve_markowitz
from qportfolio.config import ExperimentConfig, load_config
from qportfolio.data import MarketData, load_market
from qportfolio.errors import QPortfolioError
from qportfolio.problem import IntegerSharesProblem, MarkowitzProblem, SelectionProblem

__version__ = "0.1.0"

__all__ = [
    "ExperimentConfig", "IntegerSharesProblem", "MarketData", "MarkowitzProblem", "QPortfolioError", "Qubo",
    "QuboEncoding", "SelectionProblem", "build_quadratic_program", "load_config", "load_market", "solve_exact",
    "solve_markowitz", "to_qubo", "verify_ground_state",
]
