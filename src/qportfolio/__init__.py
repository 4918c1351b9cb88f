"""qportfolio: portfolio optimization with QAOA and VQE, held against the best classical answer.

The library in five calls::

    import qportfolio as qp
    market = qp.estimate_market(prices)                       # a DataFrame of prices, one column per ticker
    problem = qp.SelectionProblem.from_market(market, num_assets=4)
    result = qp.QuantumSolver(backend="exact").solve(problem)  # QAOA, judged against the exact optimum
    result.allocation, result.p_optimal, result.samples
    exact = qp.solve_exact(problem)
"""

from qportfolio.memory import collector_paused as _collector_paused

with _collector_paused():  # numpy, scipy, pandas, qiskit, numba, …: see collector_paused
    from qportfolio.baselines import run_baselines, solve_classical
    from qportfolio.choices import (
        Algorithm,
        ClassicalMethod,
        ConstraintEncoding,
        IntegerEncoding,
        MarkowitzObjective,
        Mixer,
        Optimizer,
        TrainingObjective,
    )
    from qportfolio.classical import ClassicalSolution, efficient_frontier, solve_exact, solve_markowitz
    from qportfolio.data import MarketData, estimate_market, load_market, load_prices
    from qportfolio.encoding import QuboEncoding, build_quadratic_program, to_qubo
    from qportfolio.errors import QPortfolioError
    from qportfolio.optimize import QuantumResult, QuantumSolver, SolveHooks
    from qportfolio.problems import IntegerSharesProblem, MarkowitzProblem, SelectionProblem

__version__ = "0.1.0"

__all__ = [
    "Algorithm", "ClassicalMethod", "ClassicalSolution", "ConstraintEncoding", "IntegerEncoding",
    "IntegerSharesProblem", "MarketData", "MarkowitzObjective", "MarkowitzProblem", "Mixer", "Optimizer",
    "QPortfolioError", "QuantumResult", "QuantumSolver", "QuboEncoding", "SelectionProblem", "SolveHooks",
    "TrainingObjective", "build_quadratic_program", "efficient_frontier", "estimate_market", "load_market",
    "load_prices", "run_baselines", "solve_classical", "solve_exact", "solve_markowitz", "to_qubo",
]
