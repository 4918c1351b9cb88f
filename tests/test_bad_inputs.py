"""A catalogue of bad inputs a user can produce: config files, data, numbers, paths and commands.

Every case runs `qportfolio` in-process on tiny files and must end the same way: exit 2, exactly one line on
stderr starting `qportfolio: error:`, no traceback, and nothing left on disk (no run folder, no partial
export, no figure). Each case names a pattern the line must contain, so that the message is the right one.
"""

import re

import numpy as np
import pytest
import yaml

from qportfolio.app.cli import main

TICKERS = ("AAA", "BBB", "CCC")


def price_csv(rows: int = 60, tickers=TICKERS, seed: int = 5) -> str:
    """A small daily price table (date column, then one column per ticker)."""
    rng = np.random.default_rng(seed)
    dates = np.datetime64("2021-01-04") + np.arange(rows)
    prices = 100 * np.cumprod(1 + rng.normal(0.001, 0.01, (rows, len(tickers))), axis=0) * (1 + np.arange(len(tickers)))
    lines = ["date," + ",".join(tickers)]
    lines += [f"{d}," + ",".join(f"{p:.4f}" for p in row) for d, row in zip(dates, prices)]
    return "\n".join(lines) + "\n"


BASE = {
    "name": "tiny",
    "seed": 1,
    "data": {"source": "csv", "path": "prices.csv", "frequency": "daily"},
    "problem": {"kind": "integer_shares", "budget": 400, "min_return": 0.05},
    "solver": {"reps": 1, "maxiter": 5, "shots": 64},
    "backend": {"name": "aer_statevector"},
}


def config(**changes) -> str:
    """BASE with ``section={key: value}`` changes (value None drops the key), as YAML text."""
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for section, values in changes.items():
        if not isinstance(values, dict):
            data[section] = values
            continue
        for key, value in values.items():
            if value is None:
                data[section].pop(key, None)
            else:
                data[section][key] = value
    return yaml.safe_dump(data, sort_keys=False)


GOOD = config()
CSV = price_csv()
SELECTION = config(problem={"kind": "selection", "num_assets": 2, "budget": None, "min_return": None})
MARKOWITZ = config(problem={"kind": "markowitz", "budget": None, "min_return": None})


def case(name, argv, files=None, pattern="", written=()):
    """``argv`` (with {c} = the config path, {d} = the case folder, {o} = its --out folder); ``files`` to
    write first (default: the good config and prices); ``written``: paths that may exist afterwards."""
    return pytest.param(argv, {"config.yaml": GOOD, "prices.csv": CSV, **(files or {})}, pattern, written, id=name)


RUN = ["run", "{c}", "--out", "{o}", "--quiet"]

CASES = [
    # ---------------------------------------------------------------- the config file
    case("yaml-syntax", RUN, {"config.yaml": "name: [unclosed\n"}, "not valid YAML"),
    case("yaml-latin1-comment", RUN, {"config.yaml": ("# caf\xe9\n" + GOOD).encode("latin-1")}, "not UTF-8"),
    case("yaml-utf16", RUN, {"config.yaml": GOOD.encode("utf-16")}, "not UTF-8"),
    case("yaml-duplicate-top-key", RUN, {"config.yaml": GOOD + "name: again\n"}, "'name' is given twice"),
    case("yaml-duplicate-nested-key", RUN, {"config.yaml": GOOD.replace("  budget: 400\n", "  budget: 400\n  budget: 500\n")},
         "'budget' is given twice"),
    case("yaml-month-13", RUN, {"config.yaml": config(data={"start": "DATE"}).replace("DATE", "2020-13-45")},
         "2020-13-45' is not a date"),
    case("yaml-february-30", RUN, {"config.yaml": config(data={"end": "DATE"}).replace("DATE", "2022-02-30")},
         "2022-02-30' is not a date"),
    case("yaml-unknown-key", RUN, {"config.yaml": config(problem={"budgte": 3})}, "unknown key 'problem.budgte'"),
    case("yaml-top-level-list", RUN, {"config.yaml": "- a\n- b\n"}, "top level must be a mapping"),
    case("config-is-a-folder", ["run", "{d}", "--out", "{o}"], None, "is a folder, not a file"),
    case("config-missing", ["run", "{d}/nope.yaml", "--out", "{o}"], None, "does not exist"),
    case("name-with-slash", RUN, {"config.yaml": config(name="a/b")}, "name"),
    case("seed-negative", RUN, {"config.yaml": config(seed=-3)}, "seed"),
    case("reps-zero", RUN, {"config.yaml": config(solver={"reps": 0})}, "solver.reps"),
    case("maxiter-zero", RUN, {"config.yaml": config(solver={"maxiter": 0})}, "solver.maxiter"),
    case("cvar-alpha-above-1", RUN, {"config.yaml": config(solver={"cvar_alpha": 1.5})}, "solver.cvar_alpha"),
    case("cvar-alpha-zero", RUN, {"config.yaml": config(solver={"cvar_alpha": 0})}, "solver.cvar_alpha"),
    case("initial-parameters-nan", RUN, {"config.yaml": config(solver={"initial_parameters": [0.1, "NAN"]}).replace(
        "'NAN'", ".nan")}, "solver.initial_parameters.*finite"),
    case("initial-parameters-inf", RUN, {"config.yaml": config(solver={"initial_parameters": [0.1, "INF"]}).replace(
        "'INF'", ".inf")}, "solver.initial_parameters.*finite"),
    case("min-return-nan", RUN, {"config.yaml": config(problem={"min_return": "NAN"}).replace("'NAN'", ".nan")},
         "problem.min_return.*finite"),
    case("budget-nan", RUN, {"config.yaml": config(problem={"budget": "NAN"}).replace("'NAN'", ".nan")},
         "problem.budget.*finite"),
    case("budget-negative", RUN, {"config.yaml": config(problem={"budget": -5})}, "problem.budget"),
    case("budget-text", RUN, {"config.yaml": config(problem={"budget": "lots"})}, "problem.budget"),
    case("optimizer-unknown", RUN, {"config.yaml": config(solver={"optimizer": "adam"})}, "solver.optimizer"),
    case("backend-unknown", RUN, {"config.yaml": config(backend={"name": "quantum_computer"})},
         r"backend.name: not a backend name: use exact, aer_statevector, aer_shots, aer_noisy:<fake device>"),
    case("penalty-negative", RUN, {"config.yaml": SELECTION.replace("num_assets: 2", "num_assets: 2\n  penalty: -5")},
         r"problem.penalty: must be a positive number \(or auto / calibrated\) \(got -5\)"),
    case("penalty-negative-by-constraint", RUN, {"config.yaml": config(problem={"penalty": {"budget": "auto",
         "return": -1.0}})}, r"problem.penalty for return must be a positive number"),
    case("grid-beyond-budget", RUN, {"config.yaml": config(solver={"grid": 100, "maxiter": 5})},
         "solver.grid 100 scans 10,000.*solver.grid ≤ 2"),
    case("shots-zero", RUN, {"config.yaml": config(solver={"shots": 0})}, "solver.shots"),
    case("warm-start-epsilon", RUN, {"config.yaml": config(solver={"warm_start_epsilon": 0.7})}, "warm_start_epsilon"),
    case("kind-unknown", RUN, {"config.yaml": config(problem={"kind": "options"})}, "problem.kind"),
    case("frequency-unknown", RUN, {"config.yaml": config(data={"frequency": "hourly"})}, "data.frequency"),
    case("covariance-unknown", RUN, {"config.yaml": config(data={"covariance": "shrunk"})}, "data.covariance"),
    case("optimization-level-5", RUN, {"config.yaml": config(backend={"optimization_level": 5})}, "optimization_level"),
    case("time-limit-zero", RUN, {"config.yaml": config(problem={"time_limit": 0})}, "problem.time_limit"),
    case("vqe-with-warm-start", RUN, {"config.yaml": config(solver={"algorithm": "vqe", "warm_start": True})},
         "QAOA options"),
    case("baseline-unknown-key", ["baseline", "{c}", "--out", "{o}", "--quiet"],
         {"config.yaml": config(solver={"maxiters": 3})}, "unknown key 'solver.maxiters'"),
    # ---------------------------------------------------------------- data
    case("data-path-missing", RUN, {"config.yaml": config(data={"path": "nope.csv"})}, "not found"),
    case("data-path-is-a-folder", RUN, {"config.yaml": config(data={"path": "."})}, "is a folder, not a file"),
    case("csv-without-path", RUN, {"config.yaml": config(data={"path": None})}, "data.path is required"),
    case("csv-duplicate-ticker", RUN, {"prices.csv": CSV.replace("date,AAA,BBB,CCC", "date,AAA,BBB,AAA")},
         "'AAA' heads two columns"),
    case("csv-non-numeric", RUN, {"prices.csv": re.sub(r"\n(2021-01-10),[0-9.]+,", r"\n\1,abc,", CSV)},
         "non-numeric price 'abc'"),
    case("csv-unparsable-date", RUN, {"prices.csv": CSV.replace("2021-01-10", "someday")}, "unparsable date"),
    case("csv-one-column", RUN, {"prices.csv": "date\n2021-01-04\n2021-01-05\n"}, "1 column"),
    case("csv-empty", RUN, {"prices.csv": ""}, "cannot read price file"),
    case("csv-negative-price", RUN, {"prices.csv": CSV.replace("\n2021-01-12,", "\n2021-01-12,-", 1)},
         "not a positive number"),
    case("csv-missing-price", RUN, {"prices.csv": re.sub(r"\n(2021-01-12),[0-9.]+,", r"\n\1,,", CSV)},
         "missing price for 'AAA'"),
    case("unknown-ticker", RUN, {"config.yaml": config(data={"assets": ["AAA", "ZZZ"]})}, "unknown ticker 'ZZZ'"),
    case("duplicate-asset", RUN, {"config.yaml": config(data={"assets": ["AAA", "AAA"]})}, "appears twice"),
    case("start-after-end", RUN, {"config.yaml": config(data={"start": "2021-02-01", "end": "2021-01-10"})},
         "is after data.end"),
    case("window-too-short", RUN, {"config.yaml": config(data={"start": "2021-01-04", "end": "2021-01-05"})},
         "need at least 3"),
    case("path-with-sp500", RUN, {"config.yaml": config(data={"source": "sp500"})}, "only used with data.source: csv"),
    case("assets-empty", RUN, {"config.yaml": config(data={"assets": []})}, "data.assets is empty"),
    case("weekly-too-few-returns", RUN, {"config.yaml": config(data={"frequency": "monthly", "end": "2021-02-10"})},
         "monthly return"),
    # ---------------------------------------------------------------- numbers
    case("budget-below-cheapest-share", RUN, {"config.yaml": config(problem={"budget": 20})}, "below the cheapest share"),
    case("min-return-unreachable", RUN, {"config.yaml": config(problem={"min_return": 500.0})}, "above the most"),
    case("max-shares-wrong-length", RUN, {"config.yaml": config(problem={"max_shares": [1, 2]})}, "max_shares"),
    case("max-shares-negative", RUN, {"config.yaml": config(problem={"max_shares": -1})}, "max_shares"),
    case("max-shares-zero", RUN, {"config.yaml": config(problem={"max_shares": 0, "min_return": None})},
         "problem.max_shares 0 leaves no share of any asset to buy"),
    case("budget-beyond-whole-shares", RUN, {"config.yaml": config(problem={"budget": 1e12})},
         r"problem.budget \$1,000,000,000,000 buys up to [0-9,]+ shares of AAA, more than 2,147,483,647"),
    case("wider-than-the-simulator-narrowing-off", RUN, {"config.yaml": config(problem={
         "budget": 1e5, "min_return": None, "narrowing": "off"})},
         r"^qportfolio: error: 40 qubits are more than aer_statevector holds \(26"),
    case("wider-than-the-simulator-max-qubits", RUN, {"config.yaml": config(problem={
         "budget": 1e5, "min_return": None, "max_qubits": 42}, backend={"name": "exact"})},
         r"^qportfolio: error: 40 qubits are more than exact holds \(26"),
    case("wider-than-the-simulator-dry-run", ["run", "{c}", "--dry-run"], {"config.yaml": config(problem={
         "budget": 1e5, "min_return": None, "narrowing": "off"})}, r"qubits are more than aer_statevector holds"),
    case("selection-k-too-large", RUN, {"config.yaml": SELECTION.replace("num_assets: 2", "num_assets: 7")},
         "num_assets"),
    case("selection-k-zero", RUN, {"config.yaml": SELECTION.replace("num_assets: 2", "num_assets: 0")}, "num_assets"),
    case("markowitz-target-above-best", RUN, {"config.yaml": MARKOWITZ.replace("kind: markowitz",
         "kind: markowitz\n  target_return: 0.5")}, "above the best asset"),
    case("markowitz-max-return-without-volatility", RUN, {"config.yaml": MARKOWITZ.replace(
        "kind: markowitz", "kind: markowitz\n  objective: max_return")}, "max_volatility"),
    case("markowitz-rank-deficient", RUN, {"config.yaml": MARKOWITZ, "prices.csv": price_csv(
        5, tuple(f"T{i}" for i in range(8)))}, "singular.*ledoit_wolf.*longer window"),
    case("risk-aversion-negative", RUN, {"config.yaml": SELECTION.replace("num_assets: 2",
         "num_assets: 2\n  risk_aversion: -1")}, "risk_aversion"),
    # ---------------------------------------------------------------- paths
    case("out-is-a-file", ["run", "{c}", "--out", "{d}/prices.csv", "--quiet"], None, "is a file, not a folder"),
    case("out-under-a-file", ["run", "{c}", "--out", "{d}/prices.csv/results", "--quiet"], None, "under a file"),
    case("out-dev-null", ["run", "{c}", "--out", "/dev/null", "--quiet"], None, "is a file, not a folder"),
    case("out-unwritable", ["run", "{c}", "--out", "/proc/qportfolio-results", "--quiet"], None, "cannot create"),
    case("submit-out-is-a-file", ["submit", "{c}", "--out", "{d}/prices.csv"], None, "is a file, not a folder"),
    case("export-out-is-a-file", ["export-circuits", "{c}", "--out", "{d}/prices.csv"], None, "is a file"),
    case("frontier-figure-under-a-file", ["frontier", "{c}", "--figure", "{d}/prices.csv/f.png"], None, "under a file"),
    case("frontier-figure-is-a-folder", ["frontier", "{c}", "--figure", "{d}"], None, "is a folder"),
    case("compare-not-a-run", ["compare", "{d}"], None, "pass a run folder"),
    case("status-missing-folder", ["status", "{d}/nope"], None, "does not exist"),
    case("resume-broken-result", ["resume", "{d}"], {"result.json": "{not json"}, "not readable JSON"),
    # ---------------------------------------------------------------- commands
    case("frontier-points-negative", ["frontier", "{c}", "--points", "-4"], None, "too few"),
    case("frontier-points-text", ["frontier", "{c}", "--points", "many"], None, "not a whole number"),
    case("unknown-command", ["optimise", "{c}"], None, "invalid choice"),
    case("run-without-config", ["run"], None, "required: config"),
    case("compare-format-unknown", ["compare", "{d}", "--format", "xml"], None, "invalid choice"),
    case("seed-not-a-number", ["run", "{c}", "--seed", "seven"], None, "invalid int"),
    case("export-simulator-target", ["export-circuits", "{c}", "--out", "{o}", "--target", "aer_statevector"], None,
         "not a device target"),
    case("export-unknown-device", ["export-circuits", "{c}", "--out", "{o}", "--target", "aer_noisy:fake_nowhere"],
         None, "unknown fake device"),
    case("export-markowitz", ["export-circuits", "{c}", "--out", "{o}"], {"config.yaml": MARKOWITZ}, "no circuit"),
    case("submit-missing-data", ["submit", "{c}", "--out", "{o}"], {"config.yaml": config(data={"path": "gone.csv"})},
         "not found"),
    case("layout-qubit-repeated", ["run", "{c}", "--dry-run"], {"config.yaml": SELECTION.replace(
        "name: aer_statevector", "name: aer_noisy:fake_manila\n  initial_layout: [0, 0, 1]")},
         "names a physical qubit twice"),
    case("layout-qubit-out-of-range", ["run", "{c}", "--dry-run"], {"config.yaml": SELECTION.replace(
        "name: aer_statevector", "name: aer_noisy:fake_manila\n  initial_layout: [0, 1, 999]")},
         "qubit 999, which the device does not have"),
]


@pytest.mark.parametrize("argv, files, pattern, written", CASES)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, monkeypatch, capsys, argv, files, pattern, written):
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        target = tmp_path / name
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    filled = [a.format(c=tmp_path / "config.yaml", d=tmp_path, o=tmp_path / "out") for a in argv]
    try:
        code = main(filled)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("qportfolio: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert re.search(pattern, err), err
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"left on disk: {set(after) - set(before)}"


def test_the_catalogue_is_large():
    assert len(CASES) >= 60


def test_narrowing_off_as_the_readme_writes_it(tmp_path, monkeypatch, capsys):
    """`narrowing: off` unquoted is YAML's false: the documented spelling, so it means "off"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prices.csv").write_text(CSV)
    text = config(problem={"narrowing": "NARROWING"}).replace("'NARROWING'", "off").replace("NARROWING", "off")
    assert "narrowing: off\n" in text
    (tmp_path / "config.yaml").write_text(text)
    assert main(["run", "config.yaml", "--dry-run"]) == 0, capsys.readouterr().err
    from qportfolio.app.config import load_config

    assert load_config(tmp_path / "config.yaml").problem.narrowing == "off"


def test_a_large_budget_with_a_floor_reports_an_unknown_ratio_instead_of_crashing(tmp_path, monkeypatch, capsys):
    """$1M on three assets with a return floor is a valid run: too many allocations to enumerate, so the worst
    feasible one (and the approximation ratio) is unknown; the summary says so."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prices.csv").write_text(CSV)
    (tmp_path / "config.yaml").write_text(config(problem={"budget": 1e6, "min_return": 50.0, "max_qubits": 16},
                                                 backend={"name": "exact"}))
    assert main(["run", "config.yaml", "--out", "out", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "approximation_ratio — (the worst feasible allocation is unknown: too many to enumerate)" in out
    (folder,) = list((tmp_path / "out").iterdir())
    import json

    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "complete" and result["metrics"]["approximation_ratio"] is None


def test_yfinance_offline_is_one_line(tmp_path, monkeypatch, capsys):
    """What yfinance does offline (a stand-in, as the library is an optional extra): log a failure per ticker
    and a summary, warn, print, return an empty table. The user sees one line with the reason."""
    import logging
    import sys
    import types
    import warnings

    import pandas as pd

    def download(tickers, **options):
        log = logging.getLogger("yfinance")
        for ticker in tickers:
            log.warning("Cookie/crumb fetch failed (DNSError), continuing without crumb")
            log.error(f"Failed to get ticker '{ticker}' reason: Could not resolve host: query2.finance.yahoo.com")
        log.error(f"\n{len(tickers)} Failed downloads:")
        log.error(f"{list(tickers)}: DNSError('Could not resolve host: query2.finance.yahoo.com')")
        warnings.warn("The inplace keyword in DataFrame.rename is deprecated", FutureWarning)
        print("retrying", file=sys.stderr)
        return pd.DataFrame()

    monkeypatch.setitem(sys.modules, "yfinance", types.SimpleNamespace(download=download))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(config(data={"source": "yfinance", "path": None, "assets": ["AAPL", "MSFT"]}))
    assert main(["run", "config.yaml", "--out", "out", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("qportfolio: error: yfinance returned no prices for AAPL, MSFT (['AAPL', 'MSFT']: "
                            "DNSError('Could not resolve host: query2.finance.yahoo.com')); check the network, the "
                            "tickers and data.start/data.end, or use data.source: csv\n")
    assert captured.out == "" and not (tmp_path / "out").exists()
