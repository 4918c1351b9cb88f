"""Continuous Markowitz weights: the minimum-variance portfolio at a target return, the maximum-Sharpe
portfolio and a few points of the efficient frontier, long-only.

    python examples/markowitz.py
"""

import qportfolio as qp

prices = qp.load_prices("sp500", ["AAPL", "JPM", "XOM", "KO", "PFE", "MSFT", "WMT", "JNJ"],
                        start="2018-01-01", end="2022-12-28")
market = qp.estimate_market(prices, frequency="weekly")

target = qp.MarkowitzProblem.from_market(market, objective="min_variance", target_return=0.004)
sharpe = qp.MarkowitzProblem.from_market(market, objective="max_sharpe")
for problem in (target, sharpe):
    solution = qp.solve_exact(problem)
    weights = {t: round(w, 4) for t, w in solution.allocation.items() if w > 1e-6}
    print(f"{problem.objective:<12}", weights, f"objective {solution.objective:.6g}")
for volatility, expected, _ in qp.efficient_frontier(target, points=5):
    print(f"frontier  return {expected:.5f}  volatility {volatility:.5f}")
