"""Whole shares of three stocks with $500 and a return floor: warm-started QAOA with calibrated penalties, the
same instance as configs/quickstart.yaml, through the Python API.

    python examples/integer_shares.py
"""

import qportfolio as qp

prices = qp.load_prices("sp500", ["AAPL", "JPM", "XOM"], start="2020-01-01", end="2022-12-28")
market = qp.estimate_market(prices, frequency="daily", covariance="sample")
problem = qp.IntegerSharesProblem.from_market(market, budget=500, min_return=0.44)

solver = qp.QuantumSolver(reps=2, maxiter=60, warm_start=True, objective="cvar", cvar_alpha=0.5,
                          penalty="calibrated", backend="aer_statevector", seed=7)
result = solver.solve(problem)
print("quantum  ", result.allocation, f"variance {result.objective:.6g} $²")
print("exact    ", result.exact.allocation, f"variance {result.exact.objective:.6g} $²")
print(f"P(optimum) {result.p_optimal:.4f}   qubits {result.encoded.num_qubits}")
for method in ("greedy", "relax_round", "simulated_annealing"):
    print(qp.solve_classical(problem, method=method, seed=7))  # one line: method, allocation, objective, feasible
