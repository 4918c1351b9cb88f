"""Draw whole-share instances for benchmarks/suites.yaml, sized by the qubits their slack encoding needs.

    python benchmarks/integer_suite.py --suite train --qubits 23 24 25 26 28 --seed 22 [--prefix train_int]

Each instance: 3–6 tickers of the bundled S&P 500 sample, a window of 1.5–9 years inside the suite's years
(train 1991–2006, held-out 2008–2022), daily, weekly or monthly returns, a budget of $100–$600 and a return
floor at 30–85 % of the most the budget can return (fractional knapsack). Draws are kept when the *slack*
encoding (the faithful resolution against the exact optimum, :meth:`~qportfolio.encoding.Encoder.slack_qubits`) needs the
next wanted number of qubits, and the ticker list is new to the suite file. Prints the YAML entries
(``name``, ``assets``, ``start``, ``end``, ``frequency``, ``budget``, ``min_return``) to paste into the suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from qportfolio.classical import solve_exact
from qportfolio.data import _load_sp500, estimate_market, load_prices
from qportfolio.errors import QPortfolioError
from qportfolio.optimize import QuantumSolver
from qportfolio.problems import IntegerSharesProblem

ROOT = Path(__file__).resolve().parents[1]
YEARS = {"train": (1991, 2006), "heldout": (2008, 2022)}


def slack_qubits(problem: IntegerSharesProblem) -> tuple[int | None, int]:
    """(qubits of the slack encoding, decision qubits)."""
    exact = solve_exact(problem, 30.0)
    solver = QuantumSolver(constraint_encoding="slack")
    decision = sum(int(u).bit_length() for u in problem.upper_bounds)
    return solver.encoder(problem).slack_qubits(problem, exact.vector), decision


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=tuple(YEARS), required=True)
    parser.add_argument("--qubits", type=int, nargs="+", required=True, help="slack-encoding qubits wanted, one each")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--prefix", default=None)
    parser.add_argument("--start-index", type=int, default=7, help="number of the first new instance")
    args = parser.parse_args(argv)
    suites = yaml.safe_load((ROOT / "benchmarks" / "suites.yaml").read_text())
    taken = {tuple(sorted(i["assets"])) for s in ("train", "heldout") for k in suites[s] for i in suites[s][k]}
    tickers = list(_load_sp500().columns)
    rng = np.random.default_rng(args.seed)
    first, last = YEARS[args.suite]
    wanted = list(args.qubits)
    out, index, tries = [], args.start_index, 0
    while wanted and tries < 5000:
        tries += 1
        assets = sorted(rng.choice(tickers, size=int(rng.integers(3, 7)), replace=False).tolist())
        if tuple(assets) in taken:
            continue
        frequency = str(rng.choice(["daily", "weekly", "monthly"]))
        years = float(rng.uniform(1.5, 9.0)) if frequency != "monthly" else float(rng.uniform(5.0, 9.0))
        begin = pd.Timestamp(f"{first}-01-01") + pd.Timedelta(days=int(rng.integers(0, 365 * (last - first + 1))))
        end = begin + pd.Timedelta(days=int(years * 365))
        if end > pd.Timestamp(f"{last}-12-31"):
            continue
        budget = float(rng.integers(100, 601))
        try:
            prices = load_prices("sp500", assets, start=begin.date().isoformat(), end=end.date().isoformat())
            market = estimate_market(prices, frequency=frequency, covariance=suites["covariance"])
            bound = IntegerSharesProblem.from_market(market, budget).max_relaxed_return()
            if bound <= 0:
                continue
            floor = round(float(rng.uniform(0.3, 0.85) * bound), 6)
            problem = IntegerSharesProblem.from_market(market, budget, floor)
            qubits, decision = slack_qubits(problem)
        except QPortfolioError:
            continue
        if qubits not in wanted:
            continue
        wanted.remove(qubits)
        taken.add(tuple(assets))
        prefix = args.prefix or f"{args.suite}_int"
        out.append({"name": f"{prefix}_{index:02d}_q{qubits}", "assets": assets,
                    "start": begin.date().isoformat(), "end": end.date().isoformat(), "frequency": frequency,
                    "budget": budget, "min_return": floor})
        print(f"# {out[-1]['name']}: {len(assets)} assets, {decision} decision qubits", file=sys.stderr)
        index += 1
    print(yaml.safe_dump(out, sort_keys=False))
    return 0 if not wanted else 1


if __name__ == "__main__":
    sys.exit(main())
