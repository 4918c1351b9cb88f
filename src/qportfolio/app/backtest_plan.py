"""Before a backtest runs: the dry run's estimate (solves, seconds per solve, total) and, on hardware
backends, the QPU seconds of every rebalance's quantum solve with the spending guard applied to the total."""

from __future__ import annotations

from qportfolio.app.backtest_decide import decide, infeasible_window, window_market, window_problem
from qportfolio.app.backtest_schedule import QUANTUM, Schedule, check_backtest, load_schedule
from qportfolio.app.config import ExperimentConfig
from qportfolio.app.planning import qpu_guarded, refuse_over_budget
from qportfolio.backends import JobBackend, is_hardware
from qportfolio.backends.exact.kernels import kernels_compiled


def plan(config: ExperimentConfig, measure: bool = True) -> dict:
    """The dry run: solves (rebalances × methods), the time each method took on the first window (measured by
    solving it, except on hardware), the estimated total and, on hardware backends, the QPU seconds with the
    spending guard applied to the total."""
    check_backtest(config)
    schedule = load_schedule(config)
    b = config.backtest
    rebalances = len(schedule.rebalances)
    row = timing_row(config, schedule)
    prices, value = schedule.prices_at(row), b.initial_capital
    hardware = is_hardware(config.backend.name)
    summary = {"name": config.name, "problem": config.problem.kind, "assets": schedule.tickers,
               **schedule.describe(), "methods": list(b.methods), "solves": rebalances * len(b.methods),
               "timed_on": f"the window of {schedule.date(row)} (the first feasible one), at the initial capital"}
    seconds = {}
    for method in b.methods:
        if (method == QUANTUM and hardware) or not measure:
            continue
        compiles = method == QUANTUM and not kernels_compiled()
        decision = decide(schedule.window(row), prices, value, method, config, schedule.date(row))
        if compiles:  # that solve compiled the kernels (once after install): time the next one, count it once
            summary["kernel_compilation_s"] = round(decision.seconds, 1)
            decision = decide(schedule.window(row), prices, value, method, config, schedule.date(row))
        seconds[method] = decision.seconds
        if method == QUANTUM and decision.qubits is not None:
            summary["qubits_timed_window"] = decision.qubits
    if seconds:
        summary["seconds_per_solve_first_window"] = {m: round(s, 3) for m, s in seconds.items()}
        summary["estimated_seconds"] = round(sum(s * (1 if m == "buy_and_hold" else rebalances)
                                                 for m, s in seconds.items()), 1)
        if "kernel_compilation_s" in summary:
            summary["note"] = ("the dry run compiled the simulator's kernels (once after install, "
                               f"{summary['kernel_compilation_s']} s): the backtest itself will not")
    if QUANTUM in b.methods and hardware:
        per_solve = quantum_qpu_seconds(config, schedule)
        summary["estimated_qpu_seconds_per_solve"] = per_solve
        if per_solve is not None:
            summary["estimated_qpu_seconds"] = per_solve * rebalances
            limit = config.backend.max_qpu_seconds
            summary["spending_guard"] = ("no limit (backend.max_qpu_seconds unset)" if limit is None else
                                         f"{'within' if per_solve * rebalances <= limit else 'ABOVE'} "
                                         f"backend.max_qpu_seconds {limit:g}")
        summary["note"] = "quantum on hardware is not timed by a dry run: queue and QPU time come on top"
    return summary


def timing_row(config: ExperimentConfig, schedule: Schedule) -> int:
    """The first rebalance row whose window is feasible (the first row when none is)."""
    for row in schedule.rebalances:
        if infeasible_window(config, window_market(config, schedule.window(row)).mu) is None:
            return row
    return schedule.first


def quantum_qpu_seconds(config: ExperimentConfig, schedule: Schedule) -> float | None:
    """The estimated QPU seconds of one quantum solve of the first window's problem (one job per evaluation and
    one for the final samples, as ``qportfolio run --dry-run`` counts them)."""
    solver = config.quantum_solver()
    row = timing_row(config, schedule)
    market = window_market(config, schedule.window(row))
    problem = window_problem(config, market, schedule.prices_at(row), config.backtest.initial_capital)
    backend = solver.make_backend()
    if not isinstance(backend, JobBackend):
        return None
    ansatz = solver.prepare_ansatz(problem, solver.encode(problem).encoding)
    report = backend.hardware_report(ansatz.circuit, 1, solver.shots, solver.planned_evaluations() + 1)
    return float(report["estimated_qpu_seconds"])


def check_backtest_spending(config: ExperimentConfig, approved: bool) -> float | None:
    """The spending guard (:func:`~qportfolio.app.planning.refuse_over_budget`) on a backtest's total estimated
    QPU time: every rebalance's quantum solve."""
    if config.backtest is None or QUANTUM not in config.backtest.methods or not qpu_guarded(config):
        return None
    schedule = load_schedule(config)
    per_solve = quantum_qpu_seconds(config, schedule)
    total = None if per_solve is None else per_solve * len(schedule.rebalances)
    refuse_over_budget(total, config.backend.max_qpu_seconds, approved, f" for {len(schedule.rebalances)} rebalances",
                       "fewer rebalances (backtest.rebalance, start, end), lower solver.maxiter or solver.shots")
    return total
