"""compare_runs / comparison_figure on real run folders written by the CLI, and the frontier alone."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from qportfolio.app.cli import main
from qportfolio.app.compare import (
    COLUMNS,
    RunFolderError,
    allocation_weights,
    compare_runs,
    comparison_figure,
    comparison_rows,
    frontier_points,
    frontier_table,
    instance_estimates,
)
from qportfolio.app.config import load_config
from qportfolio.app.instance import build_problem
from qportfolio.app.plots import frontier_figure
from qportfolio.baselines import run_baselines
from qportfolio.classical import efficient_frontier, solve_exact, solve_markowitz
from qportfolio.data import load_market
from qportfolio.errors import QPortfolioError
from qportfolio.problems import MarkowitzProblem

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def add_baselines(folder: Path) -> None:
    """What `qportfolio run`/`baseline` records once the baselines are wired in (skipped if already there)."""
    result = json.loads((folder / "result.json").read_text())
    if "scip" in result["solutions"]:
        return
    config = load_config(folder / "config.yaml")
    d = config.data
    problem = build_problem(config, load_market(d.source, d.assets, d.path, d.start, d.end, d.frequency, d.covariance))
    encoding = config.quantum_solver().encode(problem, for_circuit=False).encoding
    result["solutions"].update(run_baselines(problem, encoding, solve_exact(problem), config.seed, 20.0,
                                             sa_reads=30, tabu_reads=20))
    (folder / "result.json").write_text(json.dumps(result))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", str(CONFIGS / "quickstart.yaml"), "--out", str(out / "a"), "--quiet"]) == 0
    assert main(["baseline", str(CONFIGS / "quickstart.yaml"), "--out", str(out / "b"), "--quiet", "--seed", "2"]) == 0
    folders = [next((out / sub).iterdir()) for sub in ("a", "b")]
    for folder in folders:
        add_baselines(folder)
    return folders


def methods_of(folder: Path) -> list[str]:
    solutions = json.loads((folder / "result.json").read_text())["solutions"]
    return [name for name, entry in solutions.items() if entry is not None]


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_compare_has_a_row_for_every_method_of_every_run(runs, fmt):
    text = compare_runs(runs, fmt)
    expected = [(f.name, m) for f in runs for m in methods_of(f)]
    assert {"classical_exact", "scip", "relax_round", "greedy", "simulated_annealing", "tabu"} <= {m for _, m in expected}
    assert "quantum" in methods_of(runs[0])
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert tuple(rows[0]) == COLUMNS
        assert [(r["run"], r["method"]) for r in rows] == expected
        exact = next(r for r in rows if r["method"] == "classical_exact")
        assert float(exact["gap_to_optimum"]) == 0.0 and exact["feasible"] == "true"
    else:
        lines = [line for line in text.splitlines() if any(f.name in line for f in runs)]
        assert len(lines) == len(expected)
        for line, (run, method) in zip(lines, expected):
            assert run in line and method in line
        if fmt == "markdown":
            assert text.splitlines()[0].startswith("| run | method |")


def test_gap_is_measured_against_the_proven_optimum(runs):
    rows = comparison_rows(runs)
    for folder in runs:
        result = json.loads((folder / "result.json").read_text())
        optimum = result["solutions"]["classical_exact"]["objective"]
        for row in (r for r in rows if r["run"] == folder.name and r["objective"] is not None):
            assert row["gap_to_optimum"] == pytest.approx(row["objective"] - optimum, abs=1e-9)
            assert row["gap_to_optimum"] >= -1e-9  # nothing beats the proven optimum


def test_the_figure_puts_every_answer_on_or_inside_the_frontier(runs, tmp_path):
    path = comparison_figure(runs, tmp_path / "compare.png")
    assert path.stat().st_size > 10_000
    result = json.loads((runs[0] / "result.json").read_text())
    tickers, mu, sigma = instance_estimates(runs[0])
    assert tickers == tuple(result["data"]["tickers"])
    for method, entry in result["solutions"].items():
        if not entry or not entry.get("allocation"):
            continue
        w = allocation_weights(result, entry["allocation"], tickers)
        assert w.sum() == pytest.approx(1.0) and np.all(w >= 0)
        # dollars held d = p∘x normalised: the variance of w is the dollar variance / (cost)²
        assert w @ sigma @ w == pytest.approx(entry["variance"] / entry["cost"] ** 2, rel=1e-9)
        # no discrete answer beats the continuous frontier at its own return
        target = float(mu @ w)
        best = solve_markowitz(MarkowitzProblem(tickers, mu, sigma, min(target, float(mu.max()))))
        assert w @ sigma @ w >= best.variance * (1 - 1e-6), method


def test_missing_and_broken_runs_are_one_line_errors(tmp_path, runs):
    with pytest.raises(RunFolderError, match="does not exist"):
        compare_runs([tmp_path / "nowhere"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "result.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="not readable JSON"):
        compare_runs([broken])
    with pytest.raises(QPortfolioError, match="unknown format"):
        compare_runs(runs, "xlsx")
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    (no_config / "result.json").write_text((runs[0] / "result.json").read_text())
    with pytest.raises(RunFolderError, match="config.yaml"):
        comparison_figure([no_config], tmp_path / "x.png")
    assert issubclass(RunFolderError, QPortfolioError)


def test_compare_through_a_cli_run_folder_with_a_markowitz_run(tmp_path):
    assert main(["baseline", str(CONFIGS / "markowitz.yaml"), "--out", str(tmp_path), "--quiet"]) == 0
    folder = next(tmp_path.iterdir())
    (row,) = comparison_rows([folder])
    assert row["method"] == "classical_exact" and row["gap_to_optimum"] is None  # continuous: no gap
    assert comparison_figure([folder], tmp_path / "m.png").exists()


def frontier_problem(**options):
    market = load_market("sp500", ["AAPL", "JPM", "XOM", "KO", "PFE"], None, "2018-01-01", "2022-12-28",
                         covariance="ledoit_wolf")
    return MarkowitzProblem(market.tickers, market.mu, market.sigma, **options)


@pytest.mark.parametrize("allow_short", [False, True])
def test_frontier_table_matches_the_frontier_and_single_solves(allow_short, tmp_path):
    problem = frontier_problem(allow_short=allow_short, objective="max_sharpe")
    rows = frontier_points(problem, 7)
    curve = efficient_frontier(problem, 7)
    assert [r["point"] for r in rows] == [f"frontier {k}" for k in range(1, 8)] + ["gmv", "max_sharpe", "max_sharpe"]
    for row, (volatility, target, _) in zip(rows, curve):
        assert row["volatility"] == pytest.approx(volatility, rel=1e-9)
        assert row["expected_return"] == pytest.approx(target, rel=1e-6)
        assert sum(row[t] for t in problem.tickers) == pytest.approx(1.0)
    gmv = rows[7]
    assert gmv["volatility"] == pytest.approx(rows[0]["volatility"], rel=1e-6)
    sharpe = rows[8]["sharpe"]
    assert all(r["sharpe"] <= sharpe * (1 + 1e-6) for r in rows)  # the tangency portfolio has the best Sharpe
    for fmt in ("table", "markdown", "csv"):
        text = frontier_table(problem, 7, fmt)
        assert "gmv" in text and "max_sharpe" in text and "AAPL" in text
    assert frontier_figure(problem, tmp_path / "frontier.png").stat().st_size > 10_000
