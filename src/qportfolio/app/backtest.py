"""Out-of-sample backtest: walk through the test period, re-solve the config's problem at every rebalance date
on the window before it, and hold each answer at real prices.

Its parts, one module each: the calendar (:mod:`~qportfolio.app.backtest_schedule`: rebalance dates, windows,
the methods a problem takes), one decision (:mod:`~qportfolio.app.backtest_decide`: :func:`decide`, a pure
function of the window's prices, the date's prices, the value, the method and the config), the simulation
(:mod:`~qportfolio.app.backtest_book`: each method's book at real prices, decisions replayed or made), the run
folder and resume (:mod:`~qportfolio.app.backtest_folder`), the dry run and the QPU spending guard
(:mod:`~qportfolio.app.backtest_plan`), the measures, figures and report (:mod:`~qportfolio.app.backtest_report`);
here, the command. Every name stays importable from this module.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from qportfolio.app.backtest_book import Book, simulate
from qportfolio.app.backtest_decide import (
    Decision,
    decide,
    equal_weight_shares,
    holding_shares,
    infeasible_window,
    window_problem,
)
from qportfolio.app.backtest_folder import (
    DECISIONS,
    backtest_csv,
    execute,
    load_decisions,
    resume,
    start_backtest,
    summarise,
)
from qportfolio.app.backtest_plan import check_backtest_spending, plan, quantum_qpu_seconds, timing_row
from qportfolio.app.backtest_schedule import (
    MARKOWITZ_METHODS,
    NAIVE_METHODS,
    QUANTUM,
    SOLVER_METHODS,
    Schedule,
    check_backtest,
    load_schedule,
)
from qportfolio.app.config import load_config
from qportfolio.app.experiment import RunInterrupted, is_backtest
from qportfolio.app.results import load_result
from qportfolio.errors import ConfigError

__all__ = [
    "DECISIONS", "MARKOWITZ_METHODS", "NAIVE_METHODS", "QUANTUM", "SOLVER_METHODS", "Book", "Decision", "Schedule",
    "backtest_csv", "check_backtest", "check_backtest_spending", "command", "decide", "equal_weight_shares",
    "execute", "holding_shares", "infeasible_window", "load_config", "load_decisions", "load_schedule", "plan",
    "quantum_qpu_seconds", "resume", "resume_command", "simulate", "start_backtest", "summarise", "summary_table",
    "timing_row", "window_problem",
]


def command(args, progress: str | None, show_plan) -> int:
    """``qportfolio backtest CONFIG [--out DIR] [--dry-run] [--yes]`` or ``qportfolio backtest --resume RUN_DIR``;
    ``progress`` as the CLI shows it, ``show_plan`` prints the dry run's plan as the CLI prints every plan."""
    if (args.config is None) == (args.resume is None):
        raise ConfigError("qportfolio backtest takes a CONFIG to start a backtest or --resume RUN_DIR to continue one "
                          "(not both)")
    if args.resume is not None:
        if args.dry_run:
            raise ConfigError("--dry-run plans a new backtest: pass the CONFIG instead of --resume")
        return resume_command(args.resume, progress, args.yes)
    config = load_config(args.config)
    if args.dry_run:
        show_plan(plan(config))
        return 0
    check_backtest(config)
    check_backtest_spending(config, args.yes)
    folder = start_backtest(config, args.out)
    with _interruptible(folder):
        result = execute(config, folder, progress)
    print(summary_table(result))
    print(f"run folder  {folder}")
    return 0


def resume_command(folder: str | Path, progress: bool | str | None = None, approve_spending: bool = False) -> int:
    """``qportfolio backtest --resume RUN_DIR`` (and ``qportfolio resume`` on a backtest's folder)."""
    folder = Path(folder)
    with _interruptible(folder):
        was_complete = (folder / "result.json").is_file() and is_backtest(folder) \
            and load_result(folder).get("status") == "complete"
        result = resume(folder, progress, approve_spending)
    if was_complete:
        print(f"{folder} is a complete backtest: nothing to resume")
    print(summary_table(result))
    print(f"run folder  {folder}")
    return 0


@contextlib.contextmanager
def _interruptible(folder: Path):
    """An interrupt (Ctrl-C, SIGTERM) once the folder exists says how to continue it."""
    try:
        yield
    except RunInterrupted:
        raise
    except KeyboardInterrupt:
        raise RunInterrupted(folder) from None


def summary_table(result: dict) -> str:
    """The short table printed after a backtest."""
    lines = [f"{'method':<24}{'final $':>12}{'ann. return':>13}{'ann. vol':>10}{'Sharpe':>8}{'max DD':>8}"
             f"{'turnover':>10}{'cost $':>9}{'held':>6}"]
    for method, m in result["methods"].items():
        def cell(key, fmt):
            return format(m[key], fmt) if m.get(key) is not None else "—"
        lines.append(f"{method:<24}{cell('final_value', ',.2f'):>12}{cell('annualized_return', '.2%'):>13}"
                     f"{cell('annualized_volatility', '.2%'):>10}{cell('sharpe_ratio', '.2f'):>8}"
                     f"{cell('max_drawdown', '.1%'):>8}{cell('average_turnover', '.2f'):>10}"
                     f"{cell('total_cost', '.2f'):>9}{m['held']:>6}")
    lines.append(f"rebalances  {result['schedule']['rebalances']} ({result['schedule']['first_rebalance']} … "
                 f"{result['schedule']['last_rebalance']}), infeasible windows {result['infeasible_windows']['count']}")
    q = result.get("quantum_equals_exact")
    if q:
        lines.append(f"quantum = exact  {q['equal']}/{q['compared']} rebalances")
    return "\n".join(lines)
