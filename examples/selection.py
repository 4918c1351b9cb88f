"""Pick 3 of 6 stocks with QAOA (XY mixer from a Dicke state) on the exact simulator, from a DataFrame of prices.

    python examples/selection.py
"""

import qportfolio as qp

prices = qp.load_prices("sp500", ["AAPL", "JPM", "XOM", "KO", "PFE", "MSFT"], start="2018-01-01", end="2022-12-28")
market = qp.estimate_market(prices, frequency="weekly")
problem = qp.SelectionProblem.from_market(market, num_assets=3, risk_aversion=2.0)

solver = qp.QuantumSolver(algorithm="qaoa", reps=3, mixer="xy_complete", optimizer="cobyla", maxiter=120,
                          backend="exact", seed=11)
result = solver.solve(problem)
exact = qp.solve_exact(problem)

print("quantum  ", result.allocation, f"objective {result.objective:.6g}")
print("exact    ", exact.allocation, f"objective {exact.objective:.6g}")
print(f"P(optimum) {result.p_optimal:.3f}   feasible {result.feasible_fraction:.3f}   "
      f"approximation ratio {result.approximation_ratio:.3f}   evaluations {len(result.history)}")
print(result.samples.head(5).to_string(index=False))
