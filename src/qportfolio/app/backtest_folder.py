"""A backtest's run folder: ``config.yaml``, ``decisions.jsonl`` (each decision appended as soon as it
completes), then ``backtest.csv``, ``result.json``, the figures and ``report.md``; and resuming it from the
recorded decisions (the simulation replays them, nothing recorded is recomputed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import yaml

from qportfolio.app.backtest_book import simulate
from qportfolio.app.backtest_decide import Decision
from qportfolio.app.backtest_plan import check_backtest_spending
from qportfolio.app.backtest_report import measures, periods_per_year, write_figures, write_report
from qportfolio.app.backtest_schedule import QUANTUM, Schedule, check_backtest, load_schedule
from qportfolio.app.config import ExperimentConfig, load_config
from qportfolio.app.experiment import BACKTEST_KIND, DECISIONS_FILE, is_backtest, provenance, run_lock
from qportfolio.app.results import (
    append_jsonl,
    json_safe,
    load_result,
    new_run_folder,
    read_jsonl,
    write_atomic,
    write_json,
)
from qportfolio.errors import QPortfolioError, RunFolderError

DECISIONS = DECISIONS_FILE


def load_decisions(folder: Path) -> dict[tuple[str, str], dict]:
    """The recorded decisions of a backtest folder by (date, method); a line cut short is ignored."""
    return {(r["date"], r["method"]): r for r in read_jsonl(Path(folder) / DECISIONS) if "date" in r and "method" in r}


def start_backtest(config: ExperimentConfig, out: str | Path) -> Path:
    """A new run folder with the resolved config, and a result.json that marks it a backtest's."""
    check_backtest(config)
    folder = new_run_folder(out, config.name)
    write_atomic(folder / "config.yaml", yaml.safe_dump(config.resolved(), sort_keys=False))
    write_json(folder / "result.json", {"name": config.name, "kind": BACKTEST_KIND, "status": "created",
                                        "provenance": provenance(config)})
    return folder


def execute(config: ExperimentConfig, folder: Path, progress: bool | str | None = None) -> dict:
    """Run (or continue) the backtest in ``folder``: replay its recorded decisions, make and record the rest,
    then write ``backtest.csv``, ``result.json``, the figures and ``report.md``."""
    check_backtest(config)
    folder = Path(folder)
    started = time.perf_counter()
    result = {"name": config.name, "kind": BACKTEST_KIND, "status": "running", "provenance": provenance(config)}
    with run_lock(folder):
        write_json(folder / "result.json", result)
        recorded = load_decisions(folder)
        made = []

        def record(decision: Decision) -> None:
            append_jsonl(folder / DECISIONS, decision.to_dict())
            made.append(decision)

        try:
            schedule = load_schedule(config)
            frame = simulate(config, schedule, recorded, record, progress)
        except BaseException as error:
            result["status"] = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            result["error"] = str(error) if isinstance(error, QPortfolioError) else f"{type(error).__name__}: {error}"
            result["decisions_recorded"] = len(recorded) + len(made)
            write_json(folder / "result.json", json_safe(result))
            raise
        write_atomic(folder / "backtest.csv", backtest_csv(frame))
        decisions = {**{k: Decision.from_dict(r) for k, r in recorded.items()},
                     **{(d.date, d.method): d for d in made}}
        result.update(summarise(config, schedule, frame, decisions))
        result["timing"] = {"total_s": time.perf_counter() - started, "decisions_made": len(made),
                            "decisions_replayed": len(recorded), "solve_s": sum(d.seconds for d in made)}
        figures = write_figures(frame, schedule.tickers, folder / "figures", schedule.prices)
        result["figures"] = [str(p.relative_to(folder)) for p in figures]
        result["status"] = "complete"
        write_json(folder / "result.json", json_safe(result))
        write_atomic(folder / "report.md", write_report(result))
    return result


def resume(folder: str | Path, progress: bool | str | None = None, approve_spending: bool = False) -> dict:
    """Continue the backtest in ``folder`` from its ``config.yaml`` and recorded decisions; a complete one is
    left as it is (its result returned). A run's folder is refused, naming ``qportfolio resume``."""
    folder = Path(folder)
    if not (folder / "config.yaml").is_file():
        raise RunFolderError(f"{folder / 'config.yaml'} does not exist: pass a folder written by `qportfolio backtest`")
    if not is_backtest(folder):
        raise RunFolderError(f"{folder} is a run, not a backtest: continue it with `qportfolio resume {folder}`")
    if (folder / "result.json").is_file():
        previous = load_result(folder)
        if previous.get("status") == "complete":
            return previous
    config = load_config(folder / "config.yaml")
    check_backtest_spending(config, approve_spending)
    return execute(config, folder, progress)


def backtest_csv(frame: pd.DataFrame) -> str:
    """``backtest.csv``: date, method, value, period_return, turnover, cost_paid, decision, holdings (JSON)."""
    table = frame.copy()
    table["holdings"] = [json.dumps(h, separators=(",", ":")) for h in table["holdings"]]
    return table.to_csv(index=False, float_format="%.10g")


def summarise(config: ExperimentConfig, schedule: Schedule, frame: pd.DataFrame, decisions: dict) -> dict:
    """``result.json``'s body: the schedule, infeasible windows, per-method measures and quantum = exact."""
    b = config.backtest
    factor = periods_per_year(schedule.frequency, schedule.prices.index)
    rebalance_dates = [schedule.date(r) for r in schedule.rebalances]
    infeasible = [d for d in rebalance_dates
                  if any(decisions[(d, m)].status == "infeasible_window" for m in b.methods if (d, m) in decisions)]
    methods = {}
    for method in b.methods:
        path = frame[frame["method"] == method]
        made = [decisions[(d, method)] for d in rebalance_dates if (d, method) in decisions]
        methods[method] = {
            **measures(path["period_return"].to_numpy()[1:], factor),
            "final_value": float(path["value"].iloc[-1]),
            "total_return": float(path["value"].iloc[-1] / b.initial_capital - 1.0),
            "average_turnover": float(path.loc[path["decision"].notna(), "turnover"].mean()),
            "total_cost": float(path["cost_paid"].sum()),
            "rebalances": len(made),
            "held": sum(d.status != "ok" for d in made),
            "no_answer": sum(d.status == "no_answer" for d in made),
            "solve_s": sum(d.seconds for d in made),
        }
    summary = {"problem": config.problem.kind, "assets": schedule.tickers, "initial_capital": b.initial_capital,
               "transaction_cost_bps": b.transaction_cost, "rebalance": b.rebalance, "methods_run": list(b.methods),
               "schedule": schedule.describe(), "infeasible_windows": {"count": len(infeasible), "dates": infeasible},
               "methods": methods}
    if QUANTUM in b.methods:
        compared = [decisions[(d, QUANTUM)] for d in rebalance_dates
                    if (d, QUANTUM) in decisions and decisions[(d, QUANTUM)].status != "infeasible_window"]
        equal = sum(bool(d.equals_optimum) for d in compared)
        qubits = [d.qubits for d in compared if d.qubits is not None]
        summary["quantum_equals_exact"] = {
            "equal": equal, "compared": len(compared), "fraction": equal / len(compared) if compared else None,
            "qubits": {"min": min(qubits), "max": max(qubits)} if qubits else None,
            "note": "per rebalance: the quantum answer's objective is the exact optimum of the problem it solved "
                    "(its own budget); a window without a feasible sample counts as unequal"}
    return summary
