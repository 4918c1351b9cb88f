"""Before a backtest runs: the dry run's estimate (solves, seconds per solve, total), on device targets the QPU
seconds of every rebalance's quantum solve with the spending guard applied to the total, and on noisy simulators
the refusal of a backtest expected to simulate for hours."""

from __future__ import annotations

from qportfolio.app.backtest_decide import decide, infeasible_window, window_market, window_problem
from qportfolio.app.backtest_schedule import QUANTUM, Schedule, check_backtest, load_schedule
from qportfolio.app.config import ExperimentConfig
from qportfolio.app.planning import (
    MAX_UNAPPROVED_SIMULATION_SECONDS,
    estimated_seconds,
    qpu_guarded,
    refuse_over_budget,
)
from qportfolio.backends import JobBackend, is_hardware, is_noisy
from qportfolio.backends.exact.kernels import kernels_compiled
from qportfolio.errors import ResourceError


def plan(config: ExperimentConfig, measure: bool = True) -> dict:
    """The dry run: solves (rebalances × methods), the time each method took on the first window (measured by
    solving it; on a noisy simulator the quantum solve's time is the cost model's; on a device, untimed), the
    estimated total and, on device targets, the QPU seconds with the spending guard applied to the total."""
    check_backtest(config)
    schedule = load_schedule(config)
    b = config.backtest
    rebalances = len(schedule.rebalances)
    row = timing_row(config, schedule)
    prices, value = schedule.prices_at(row), b.initial_capital
    noisy = is_noisy(config.backend.name)
    device = is_hardware(config.backend.name) and not config.backend.name.startswith("aer_noisy:")  # QPU time
    summary = {"name": config.name, "problem": config.problem.kind, "assets": schedule.tickers,
               **schedule.describe(), "methods": list(b.methods), "solves": rebalances * len(b.methods),
               "timed_on": f"the window of {schedule.date(row)} (the first feasible one), at the initial capital"}
    seconds = {}
    for method in b.methods:
        if method == QUANTUM and noisy and measure:
            seconds[method] = noisy_solve_seconds(config, schedule, row)
            summary["quantum_estimated_by"] = "the noisy simulation's cost model (not timed: a solve can take hours)"
            continue
        if (method == QUANTUM and device) or not measure:
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
    if QUANTUM in b.methods and device:
        per_solve = quantum_qpu_seconds(config, schedule, row)
        summary["estimated_qpu_seconds_per_solve"] = per_solve
        if per_solve is not None:
            summary["estimated_qpu_seconds"] = per_solve * rebalances
            limit = config.backend.max_qpu_seconds
            summary["spending_guard"] = ("no limit (backend.max_qpu_seconds unset)" if limit is None else
                                         f"{'within' if per_solve * rebalances <= limit else 'ABOVE'} "
                                         f"backend.max_qpu_seconds {limit:g}")
        if not noisy:
            summary["note"] = "quantum on hardware is not timed by a dry run: queue and QPU time come on top"
    return summary


def timing_row(config: ExperimentConfig, schedule: Schedule) -> int:
    """The first rebalance row whose window is feasible (the first row when none is)."""
    for row in schedule.rebalances:
        if infeasible_window(config, window_market(config, schedule.window(row)).mu) is None:
            return row
    return schedule.first


def _window_problem(config: ExperimentConfig, schedule: Schedule, row: int | None = None):
    """The problem of the timed window (:func:`timing_row`) at the initial capital."""
    row = timing_row(config, schedule) if row is None else row
    market = window_market(config, schedule.window(row))
    return window_problem(config, market, schedule.prices_at(row), config.backtest.initial_capital)


def noisy_solve_seconds(config: ExperimentConfig, schedule: Schedule, row: int | None = None) -> float:
    """The modelled seconds of one quantum solve of the timed window on a noisy simulator
    (:func:`~qportfolio.app.planning.estimated_seconds`, as ``qportfolio run`` announces it)."""
    problem = _window_problem(config, schedule, row)
    solver = config.quantum_solver().resolved(problem)
    encoded = solver.encode(problem)
    ansatz = solver.prepare_ansatz(problem, encoded.encoding)
    return estimated_seconds(solver, problem, encoded.num_qubits, ansatz.circuit)


def quantum_qpu_seconds(config: ExperimentConfig, schedule: Schedule, row: int | None = None) -> float | None:
    """The estimated QPU seconds of one quantum solve of the timed window's problem (one job per evaluation and
    one for the final samples, as ``qportfolio run --dry-run`` counts them)."""
    solver = config.quantum_solver()
    problem = _window_problem(config, schedule, row)
    backend = solver.make_backend()
    if not isinstance(backend, JobBackend):
        return None
    ansatz = solver.prepare_ansatz(problem, solver.encode(problem).encoding)
    report = backend.hardware_report(ansatz.circuit, 1, solver.shots, solver.planned_evaluations() + 1)
    return float(report["estimated_qpu_seconds"])


def check_backtest_spending(config: ExperimentConfig, approved: bool) -> float | None:
    """The spending guard (:func:`~qportfolio.app.planning.refuse_over_budget`) on a backtest's total estimated
    QPU time, every rebalance's quantum solve; and, unless ``approved``, a noisy simulation of them all expected
    to take more than :data:`~qportfolio.app.planning.MAX_UNAPPROVED_SIMULATION_SECONDS`."""
    if config.backtest is None or QUANTUM not in config.backtest.methods:
        return None
    noisy = is_noisy(config.backend.name) and not approved
    if not qpu_guarded(config) and not noisy:
        return None
    schedule = load_schedule(config)
    if noisy:
        seconds = noisy_solve_seconds(config, schedule) * len(schedule.rebalances)
        if seconds > MAX_UNAPPROVED_SIMULATION_SECONDS:
            raise ResourceError(
                f"this backtest's {len(schedule.rebalances)} quantum solves on {config.backend.name} are expected to "
                f"take about {seconds / 3600:.1f} h of noisy simulation: lower solver.shots or solver.reps, fewer "
                "rebalances (backtest.rebalance, start, end), or pass --yes to run it anyway")
    if not qpu_guarded(config):
        return None
    per_solve = quantum_qpu_seconds(config, schedule)
    total = None if per_solve is None else per_solve * len(schedule.rebalances)
    refuse_over_budget(total, config.backend.max_qpu_seconds, approved, f" for {len(schedule.rebalances)} rebalances",
                       "fewer rebalances (backtest.rebalance, start, end), lower solver.maxiter or solver.shots")
    return total
