"""The out-of-sample backtest: no look-ahead, value paths from the prices, skfolio's walk-forward, enumeration,
resume, and a user's mistakes in the backtest section."""

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qportfolio
from qportfolio.app import backtest as bt
from qportfolio.app import backtest_book, experiment
from qportfolio.app.cli import main
from qportfolio.app.config import parse_config
from qportfolio.classical import enumerate_optimum
from qportfolio.errors import RunFolderError
from qportfolio.problems import IntegerSharesProblem

TICKERS = ["AAA", "BBB", "CCC", "DDD"]


def write_prices(path, rng, months=40, start=(40.0, 55.0, 70.0, 30.0)):
    """A month-end price CSV of a geometric random walk per ticker."""
    dates = pd.date_range("2016-01-31", periods=months, freq="ME")
    steps = rng.normal([0.012, 0.008, 0.015, 0.005], [0.05, 0.04, 0.07, 0.03], size=(months, len(TICKERS)))
    prices = np.asarray(start) * np.exp(np.cumsum(steps, axis=0))
    frame = pd.DataFrame(prices, index=pd.Index(dates, name="date"), columns=TICKERS)
    frame.to_csv(path)
    return frame


def config_of(csv, kind="integer_shares", methods=("classical_exact", "equal_weight", "buy_and_hold"),
              rebalance=2, cost=10.0, train=12, start="2017-03-01", **problem):
    problem = {"kind": kind, **({"budget": 500, "min_return": 3.0} if kind == "integer_shares" else {}),
               **({"num_assets": 2, "risk_aversion": 2.0} if kind == "selection" else {}), **problem}
    return parse_config({
        "name": "bt", "seed": 3,
        "data": {"source": "csv", "path": str(csv), "frequency": "monthly"},
        "problem": problem,
        "solver": {"maxiter": 20, "reps": 1},
        "backend": {"name": "exact"},
        "backtest": {"start": start, "train": train, "rebalance": rebalance, "methods": list(methods),
                     "initial_capital": 500, "transaction_cost": cost},
    })


def run(config):
    decisions = []
    schedule = bt.load_schedule(config)
    frame = bt.simulate(config, schedule, {}, decisions.append)
    return schedule, frame, decisions


@pytest.fixture
def prices_csv(tmp_path, rng):
    path = tmp_path / "prices.csv"
    write_prices(path, rng)
    return path


METHODS = ("classical_exact", "greedy", "equal_weight", "markowitz_min_variance", "markowitz_max_sharpe",
           "buy_and_hold")


@pytest.mark.parametrize("kind", ["integer_shares", "selection"])
def test_no_decision_reads_a_price_after_its_date(tmp_path, rng, kind):
    original = write_prices(tmp_path / "a.csv", rng)
    config = config_of(tmp_path / "a.csv", kind, METHODS, rebalance=1)
    schedule, _, before = run(config)
    cut = schedule.date(schedule.rebalances[len(schedule.rebalances) // 2])
    changed = original.copy()
    later = changed.index > pd.Timestamp(cut)
    changed.loc[later] *= np.exp(rng.normal(0, 0.2, size=(int(later.sum()), len(TICKERS))))
    changed.to_csv(tmp_path / "b.csv")
    _, _, after = run(config_of(tmp_path / "b.csv", kind, METHODS, rebalance=1))
    early = [(d.date, d.method, d.status, d.shares) for d in before if d.date <= cut]
    assert early == [(d.date, d.method, d.status, d.shares) for d in after if d.date <= cut]
    assert len(early) >= len(METHODS) * 3
    assert [d.shares for d in before if d.date > cut] != [d.shares for d in after if d.date > cut]


def test_equal_weight_and_buy_and_hold_follow_the_prices(prices_csv):
    config = config_of(prices_csv, "selection", ("equal_weight", "buy_and_hold"), rebalance=3, cost=25.0)
    schedule, frame, _ = run(config)
    prices = schedule.prices.to_numpy()[schedule.first:]
    rebalances = {r - schedule.first for r in schedule.rebalances}
    c, capital, n = 25.0 / 1e4, 500.0, len(TICKERS)

    shares, cash, expected = np.zeros(n), capital, []  # equal weight, fractional shares, rebalanced every 3
    for k, p in enumerate(prices):
        value = shares @ p + cash
        if k in rebalances:
            target = value / n / p
            cash += (shares - target) @ p - c * np.abs(target - shares) @ p
            shares = target
        expected.append(shares @ p + cash)
    got = frame[frame["method"] == "equal_weight"]["value"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)

    held = capital / n / prices[0]  # buy and hold: one purchase, then the prices
    np.testing.assert_allclose(frame[frame["method"] == "buy_and_hold"]["value"].to_numpy(),
                               prices @ held - c * capital, rtol=1e-12)


def test_whole_share_equal_weight_keeps_the_leftover_cash(prices_csv):
    config = config_of(prices_csv, "integer_shares", ("buy_and_hold",), cost=0.0)
    schedule, frame, _ = run(config)
    prices = schedule.prices.to_numpy()[schedule.first:]
    shares = np.floor(500.0 / len(TICKERS) / prices[0])
    np.testing.assert_allclose(frame["value"].to_numpy(), prices @ shares + (500.0 - prices[0] @ shares), rtol=1e-12)
    assert frame["turnover"].iloc[1:].eq(0).all()


@pytest.mark.parametrize("rebalance", [1, 3])
def test_continuous_equal_weight_matches_skfolio_walk_forward(prices_csv, rebalance):
    from skfolio.model_selection import WalkForward, cross_val_predict
    from skfolio.optimization import EqualWeighted

    config = config_of(prices_csv, "selection", ("equal_weight",), rebalance=rebalance, cost=0.0)
    schedule, frame, _ = run(config)
    returns = schedule.prices.pct_change().iloc[1:]
    # train on `train` returns, skip the rebalance date's own return (the window ends the period before), hold k
    cv = WalkForward(test_size=rebalance, train_size=config.backtest.train, purged_size=1)
    predicted = cross_val_predict(EqualWeighted(), returns, cv=cv, portfolio_params={"weight_drift": True})
    ours = frame["period_return"].to_numpy()[1:]
    theirs = np.asarray(predicted.returns)
    assert len(theirs) >= len(ours) - rebalance
    np.testing.assert_allclose(ours[:len(theirs)], theirs[:len(ours)], rtol=1e-10, atol=1e-12)


def test_classical_exact_decisions_are_the_enumerated_optimum(prices_csv):
    config = config_of(prices_csv, "integer_shares", ("classical_exact",), rebalance=1, min_return=4.0)
    schedule, _, decisions = run(config)
    solved = 0
    for decision, row in zip(decisions, schedule.rebalances):
        window = schedule.window(row)
        returns = window.pct_change().iloc[1:].to_numpy()
        mu, sigma = returns.mean(axis=0), np.cov(returns, rowvar=False, ddof=1)
        assert max(mu) < 4.0 / 500 or decision.status != "infeasible_window"
        if decision.status == "infeasible_window":
            continue
        problem = IntegerSharesProblem(tuple(TICKERS), mu, sigma, schedule.prices.iloc[row].to_numpy(),
                                       decision.budget, 4.0 * decision.budget / 500)
        optimum = enumerate_optimum(problem)
        got = np.array([decision.shares.get(t, 0) for t in TICKERS])
        assert any(np.array_equal(got, row_) for row_ in optimum.optimal_allocations)
        assert decision.objective == pytest.approx(optimum.objective, rel=1e-12)
        evaluated = problem.evaluate(got).row(0)  # the result shape: the answer's evaluation, as scalars
        assert decision.allocation == decision.shares and decision.feasible is evaluated.pop("feasible") is True
        assert {k: getattr(decision, k) for k in evaluated} == pytest.approx(evaluated, rel=1e-12)
        solved += 1
    assert solved >= 10


def test_a_decision_is_one_line_and_its_record_round_trips(prices_csv):
    config = config_of(prices_csv, "integer_shares", ("greedy", "equal_weight"), min_return=4.0)
    _, _, decisions = run(config)
    for decision in decisions:
        assert bt.Decision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision
        text = repr(decision)
        assert "\n" not in text and len(text) < 200 and decision.date in text and decision.status in text
        if decision.method == "equal_weight":  # solves no problem: nothing to evaluate
            assert decision.objective is decision.variance is decision.feasible is None
        elif decision.status == "ok":
            assert decision.feasible is True and decision.variance > 0 and decision.cost <= decision.budget
        else:
            assert decision.feasible is False and decision.allocation is None


def test_an_unreachable_floor_holds_every_method(prices_csv):
    config = config_of(prices_csv, "integer_shares", ("classical_exact", "equal_weight"), rebalance=1,
                       min_return=500 * 0.5)  # 50% a month: never reachable
    _, frame, decisions = run(config)
    assert {d.status for d in decisions} == {"infeasible_window"}
    assert frame["value"].eq(500.0).all() and frame["turnover"].eq(0).all()


def test_resume_never_recomputes_a_recorded_decision(prices_csv, tmp_path, monkeypatch):
    config = config_of(prices_csv, "integer_shares", ("classical_exact", "greedy", "equal_weight", "buy_and_hold"))
    folder = bt.start_backtest(config, tmp_path / "out")
    first = bt.execute(config, folder)
    table = (folder / "backtest.csv").read_text()
    lines = (folder / bt.DECISIONS).read_text().splitlines()
    kept, dropped = lines[:-5], lines[-5:]
    (folder / bt.DECISIONS).write_text("\n".join(kept) + "\n" + dropped[0][:20])  # a line cut short
    interrupted = {**json.loads((folder / "result.json").read_text()), "status": "interrupted"}
    (folder / "result.json").write_text(json.dumps(interrupted))  # as an interrupt leaves it
    calls = []
    real = bt.decide
    monkeypatch.setattr(backtest_book, "decide", lambda window, prices, value, method, config, date="": calls.append(
        (date, method)) or real(window, prices, value, method, config, date))
    assert main(["backtest", "--resume", str(folder), "--quiet"]) == 0
    expected = {(r["date"], r["method"]) for r in map(json.loads, dropped) if r["status"] != "hold"}
    assert set(calls) == expected and len(calls) == len(expected)
    assert (folder / "backtest.csv").read_text() == table
    again = json.loads((folder / "result.json").read_text())["methods"]
    for method, measured in json.loads(json.dumps(first["methods"])).items():  # the clock aside, the same numbers
        assert {k: v for k, v in again[method].items() if k != "solve_s"} == \
            {k: v for k, v in measured.items() if k != "solve_s"}
    calls.clear()
    assert main(["backtest", "--resume", str(folder), "--quiet"]) == 0
    assert calls == []


def small_selection_backtest(tmp_path, rng, name: str, solver: str, backend: str, backtest: str):
    """A 2-of-n selection backtest on 24 months of synthetic prices, 6 rebalances from 2017 (its config path)."""
    write_prices(tmp_path / "p.csv", rng, months=24)
    config = tmp_path / "bt.yaml"
    config.write_text(f"""
name: {name}
data: {{source: csv, path: {tmp_path / 'p.csv'}, frequency: monthly}}
problem: {{kind: selection, num_assets: 2, risk_aversion: 2.0}}
solver: {{{solver}}}
backend: {{{backend}}}
backtest: {{start: 2017-01-01, train: 8, rebalance: 2, {backtest}}}
""")
    return config


def test_the_command_writes_the_run_folder_with_quantum(tmp_path, rng, capsys):
    config = small_selection_backtest(tmp_path, rng, "small", "reps: 1, maxiter: 15", "name: exact",
                                      "methods: [quantum, classical_exact, equal_weight], initial_capital: 1000, "
                                      "transaction_cost: 5")
    assert main(["backtest", str(config), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "solves" in printed and "estimated_seconds" in printed
    assert main(["backtest", str(config), "--out", str(tmp_path / "out")]) == 0
    # stderr is not a terminal here: one progress line per rebalance date, as a sweep gives one per point
    printed = capsys.readouterr()
    progress = [line for line in printed.err.splitlines() if line.startswith("backtest: rebalance")]
    assert len(progress) == 6 and progress[-1].startswith("backtest: rebalance 6/6 (") and "ETA 0 s" in progress[-1]
    (folder,) = list((tmp_path / "out").iterdir())
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "complete" and result["schedule"]["rebalances"] == 6
    for method in ("quantum", "classical_exact", "equal_weight"):
        assert set(result["methods"][method]) >= {"annualized_return", "annualized_volatility", "sharpe_ratio",
                                                  "sortino_ratio", "max_drawdown", "calmar_ratio", "average_turnover",
                                                  "total_cost"}
    q = result["quantum_equals_exact"]
    assert q["compared"] == 6 and 0 <= q["equal"] <= 6
    frame = pd.read_csv(folder / "backtest.csv")
    assert list(frame.columns[:6]) == ["date", "method", "value", "period_return", "turnover", "cost_paid"]
    assert "holdings" in frame.columns and "cash" in json.loads(frame["holdings"].iloc[0])
    for name in ("report.md", "figures/equity.png", "figures/drawdowns.png", "figures/holdings.png", "decisions.jsonl"):
        assert (folder / name).stat().st_size > 0, name
    assert "quantum = exact" in printed.out


@pytest.mark.parametrize("section, fragment", [
    ({"start": "2017-01-01", "train": 12, "methods": ["quantum"], "rebalnce": 2}, "unknown key 'backtest.rebalnce'"),
    ({"start": "2017-01-01", "train": 12, "methods": ["qaoa"]}, "backtest.methods"),
    ({"start": "2017-01-01", "train": 1, "methods": ["greedy"]}, "backtest.train"),
    ({"start": "2017-01-01", "end": "2016-01-01", "train": 12, "methods": ["greedy"]}, "not after backtest.start"),
    ({"start": "2016-03-01", "train": 12, "methods": ["greedy"]}, "backtest.train 12 needs 13"),
    (None, "no backtest section"),
])
def test_a_bad_backtest_section_is_one_line_and_exit_2(tmp_path, prices_csv, capsys, section, fragment):
    import yaml

    raw = {"name": "bt", "data": {"source": "csv", "path": str(prices_csv), "frequency": "monthly"},
           "problem": {"kind": "selection", "num_assets": 2}}
    if section is not None:
        raw["backtest"] = section
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["backtest", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("qportfolio: error:") and fragment in error, error


def test_markowitz_configs_refuse_discrete_methods(prices_csv, capsys, tmp_path):
    import yaml

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({
        "data": {"source": "csv", "path": str(prices_csv), "frequency": "monthly"}, "problem": {"kind": "markowitz"},
        "backtest": {"start": "2017-03-01", "train": 12, "methods": ["quantum", "equal_weight"]}}))
    assert main(["backtest", str(path)]) == 2
    assert "needs a discrete problem" in capsys.readouterr().err


def test_an_interrupted_backtest_has_one_resume_and_the_wrong_one_is_refused(tmp_path, rng, capsys):
    """Ctrl-C (SIGINT) a real `qportfolio backtest` after a few decisions: it says how to continue; `qportfolio
    resume` continues it (not a QAOA run into it) to the uninterrupted result; resuming it again says it is
    complete; `backtest --resume` on a run's folder, and `experiment.resume` on a backtest's, name the right one."""
    write_prices(tmp_path / "p.csv", rng, months=40)
    config_path = tmp_path / "bt.yaml"
    config_path.write_text(f"""
name: walk
seed: 3
data: {{source: csv, path: {tmp_path / 'p.csv'}, frequency: monthly}}
problem: {{kind: selection, num_assets: 2, risk_aversion: 2.0}}
solver: {{reps: 2, maxiter: 40}}
backend: {{name: exact}}
backtest: {{start: 2017-03-01, train: 12, rebalance: 1, methods: [quantum, classical_exact, equal_weight],
           initial_capital: 1000, transaction_cost: 5}}
""")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(qportfolio.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    walk = subprocess.Popen([sys.executable, "-m", "qportfolio.app.cli", "backtest", str(config_path), "--out",
                             str(tmp_path / "out"), "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and walk.poll() is None:
        logs = list((tmp_path / "out").glob("*/decisions.jsonl"))
        if logs and len(logs[0].read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert walk.poll() is None, "the backtest ended before it could be interrupted"
    walk.send_signal(signal.SIGINT)
    _, err = walk.communicate(timeout=60)
    (folder,) = list((tmp_path / "out").iterdir())
    assert walk.returncode == 130
    assert err == (f"qportfolio: interrupted; what finished is in the run folder: continue with "
                   f"`qportfolio resume {folder}`\n")
    interrupted = json.loads((folder / "result.json").read_text())
    assert interrupted["status"] == "interrupted" and interrupted["kind"] == "backtest"
    recorded = len((folder / bt.DECISIONS).read_text().splitlines())

    capsys.readouterr()
    assert main(["status", str(folder)]) == 0
    assert f"continue with   qportfolio resume {folder}" in capsys.readouterr().out

    # `qportfolio resume` continues the backtest: the decisions recorded kept, the rest made, no QAOA run
    assert main(["resume", str(folder), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "quantum = exact" in out and "qubits" not in out
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "complete" and result["timing"]["decisions_replayed"] == recorded
    assert not (folder / "samples.csv").exists() and not (folder / "history.jsonl").exists()
    config = bt.load_config(config_path)
    whole_folder = bt.start_backtest(config, tmp_path / "whole")
    whole = bt.execute(config, whole_folder)
    assert (folder / "backtest.csv").read_text() == (whole_folder / "backtest.csv").read_text()
    assert result["methods"]["quantum"]["final_value"] == whole["methods"]["quantum"]["final_value"]

    # a complete backtest: either resume says so and changes nothing
    before = (folder / "result.json").read_text()
    for command in (["resume", str(folder)], ["backtest", "--resume", str(folder)]):
        assert main(command + ["--quiet"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{folder} is a complete backtest: nothing to resume\n") and "None" not in out
    assert (folder / "result.json").read_text() == before

    # the wrong folder kind, one line naming the right command
    run = experiment.execute(parse_config({
        "name": "one", "data": {"source": "csv", "path": str(tmp_path / "p.csv"), "frequency": "monthly"},
        "problem": {"kind": "selection", "num_assets": 2}, "solver": {"reps": 1, "maxiter": 10},
        "backend": {"name": "exact"}}), tmp_path / "runs", artifacts=False)
    assert main(["backtest", "--resume", str(run.folder)]) == 2
    assert capsys.readouterr().err == (f"qportfolio: error: {run.folder} is a run, not a backtest: continue it "
                                       f"with `qportfolio resume {run.folder}`\n")
    with pytest.raises(RunFolderError, match=r"is a backtest, not a run: continue it with `qportfolio backtest "
                                             r"--resume"):
        experiment.resume(folder)
    assert main(["resume", str(run.folder)]) == 0
    assert capsys.readouterr().out.startswith(f"{run.folder} is a complete run: nothing to resume\n")


def test_a_backtest_over_its_qpu_budget_is_refused_in_one_line(tmp_path, rng, capsys):
    """The spending guard on a backtest: every rebalance's quantum solve counted, refused before a folder exists."""
    config = small_selection_backtest(tmp_path, rng, "guarded", "reps: 1, maxiter: 5, mixer: x",
                                      'name: "ibm_fake:fake_fez", max_qpu_seconds: 0.001',
                                      "methods: [quantum, equal_weight]")
    assert main(["backtest", str(config), "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("qportfolio: error: estimated QPU time ") and " s for 6 rebalances exceeds " \
        "backend.max_qpu_seconds 0.001 s: fewer rebalances" in line and line.endswith("or pass --yes")
    assert not (tmp_path / "out").exists()


def test_a_noisy_simulator_backtest_is_estimated_and_refused_when_it_would_take_hours(tmp_path, rng, capsys):
    """aer_noisy is simulated here, not billed: its dry run counts the quantum solves' modelled seconds (no QPU
    time), and a backtest expected to simulate for over an hour is refused in one line unless --yes."""
    config = small_selection_backtest(tmp_path, rng, "noisy", "reps: 1, maxiter: 20000, mixer: x, pretrain: none, "
                                      "shots: 4096", 'name: "aer_noisy:fake_fez"', "methods: [quantum, equal_weight]")
    assert main(["backtest", str(config), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    per_solve = float(re.search(r"^  quantum: ([\d.]+)$", printed, re.M).group(1))
    total = float(re.search(r"^estimated_seconds: ([\d.]+)$", printed, re.M).group(1))
    assert per_solve > 0 and total == pytest.approx(6 * per_solve, abs=0.1) and total > 3600
    assert "estimated_qpu_seconds" not in printed and "noisy simulation's cost model" in printed
    assert main(["backtest", str(config), "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("qportfolio: error: this backtest's 6 quantum solves on aer_noisy:fake_fez are expected "
                           "to take about ") and line.endswith("or pass --yes to run it anyway")
    assert not (tmp_path / "out").exists()
