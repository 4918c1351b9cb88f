"""The ``qportfolio`` command.

``run CONFIG [--out DIR] [--seed N] [--dry-run] [--yes]`` — the quantum run beside the exact classical answer.
``baseline CONFIG [--out DIR] [--dry-run]`` — classical answers only, same folder layout.
``submit CONFIG [--out DIR] [--yes]`` — start the run detached from this terminal; returns at once.
``status RUN_DIR`` — where a run stands: status, evaluations, jobs.
``resume RUN_DIR [--yes]`` — continue an interrupted run or backtest from what it recorded (nothing finished is redone).
``backtest CONFIG [--out DIR] [--dry-run] [--yes]`` or ``backtest --resume RUN_DIR`` — out-of-sample backtest.
``compare RUN_DIR... [--format F] [--figure PATH]`` — one table across runs, and the frontier figure.
``frontier CONFIG [--points N] [--figure PATH]`` — the continuous efficient frontier (figure: results/).
``export-circuits CONFIG [--target BACKEND] [--out results/circuits]`` — logical (and ISA) circuits as QASM 3 and QPY.
``sweep STUDY [--out DIR] [--address ADDR] [--max-workers N] [--dry-run] [--keep-runs]`` — a study on Ray.

A user's mistake prints one line (``qportfolio: error: …``) and exits 2; no traceback. SIGTERM and SIGHUP
stop a run like Ctrl-C: it is recorded as interrupted and ``resume`` continues it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import psutil

from qportfolio.choices import TableFormat
from qportfolio.memory import collector_paused

with collector_paused():  # matplotlib, pydantic, …; the command freezes them in main()
    from qportfolio.app import backtest, experiment
    from qportfolio.app.compare import as_markowitz, compare_runs, comparison_figure, frontier_table
    from qportfolio.app.config import load_config
    from qportfolio.app.experiment import load_jobs, start_run
    from qportfolio.app.instance import build_problem_from_config
    from qportfolio.app.planning import check_spending, dry_run, export_circuits
    from qportfolio.app.plots import frontier_figure
    from qportfolio.app.results import check_output_file, load_history, load_result
    from qportfolio.classical import allocation_text
    from qportfolio.errors import QPortfolioError
    from qportfolio.problems import optimum_tolerance


def _version() -> str:
    try:
        return metadata.version("qportfolio")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _positive_points(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value} is too few: a frontier needs at least 2 points")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with the project's one-line error format (still exit 2)."""

    def error(self, message):
        self.exit(2, f"qportfolio: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qportfolio", description="Portfolio optimization with QAOA/VQE, "
                     "held against the exact classical answer on the same instance.")
    parser.add_argument("--version", action="version", version=f"qportfolio {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run an experiment config (quantum and classical)")
    baseline = commands.add_parser("baseline", help="classical answers only, same run folder layout")
    submit = commands.add_parser("submit", help="start a run in the background; job ids go to its folder")
    for command in (run, baseline, submit):
        command.add_argument("config", help="YAML experiment config, e.g. configs/quickstart.yaml")
        command.add_argument("--out", default="results", help="parent folder of the run folder (default: results)")
        command.add_argument("--seed", type=int, default=None, help="override the config's seed")
    for command in (run, baseline):
        command.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    for command in (run, submit):
        command.add_argument("--yes", action="store_true", help="allow more QPU time than backend.max_qpu_seconds")
    for command in (run, baseline):
        command.add_argument("--dry-run", action="store_true", help="build (and for hardware transpile), print the "
                             "plan with the expected time and its parts; run and write nothing")
    status = commands.add_parser("status", help="the state of a run folder and its jobs")
    status.add_argument("run_dir", help="a run folder, e.g. results/quickstart-20261121T071359Z")
    resume = commands.add_parser("resume", help="continue an interrupted run or backtest from what it recorded")
    resume.add_argument("run_dir", help="the run folder to continue (see `qportfolio status`)")
    resume.add_argument("--yes", action="store_true", help="allow more QPU time than backend.max_qpu_seconds")
    resume.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    compare = commands.add_parser("compare", help="one table across run folders and methods, and a frontier figure")
    compare.add_argument("run_dirs", nargs="+", help="one or more run folders")
    compare.add_argument("--format", choices=TableFormat.values(), default="table",
                         help="output format (default: table)")
    compare.add_argument("--figure", default=None, help="where to write the figure (default: comparison.png beside "
                         "the first run folder)")
    frontier = commands.add_parser("frontier", help="the continuous efficient frontier of a config's assets")
    frontier.add_argument("config", help="YAML experiment config whose data section gives the assets")
    frontier.add_argument("--points", type=_positive_points, default=20, help="points on the frontier, ≥ 2 (default: 20)")
    frontier.add_argument("--format", choices=TableFormat.values(), default="table",
                          help="output format (default: table)")
    frontier.add_argument("--figure", default=None, help="figure path (default: results/<config name>-frontier.png)")
    walk = commands.add_parser("backtest", help="out-of-sample backtest: re-solve at each rebalance date, hold at real prices")
    walk.add_argument("config", nargs="?", help="YAML config with a backtest section, e.g. configs/backtest.yaml")
    walk.add_argument("--out", default="results", help="parent folder of the run folder (default: results)")
    walk.add_argument("--resume", metavar="RUN_DIR", help="continue the backtest in RUN_DIR (recorded decisions are kept)")
    walk.add_argument("--dry-run", action="store_true", help="count the solves, time one of each, estimate the total")
    walk.add_argument("--yes", action="store_true", help="allow more QPU time than backend.max_qpu_seconds")
    walk.add_argument("--quiet", action="store_true", help="no progress bar")
    export = commands.add_parser("export-circuits", help="write the config's circuits as OpenQASM 3 and QPY")
    export.add_argument("config", help="YAML experiment config")
    export.add_argument("--target", default=None, help="also the ISA circuit for this backend, e.g. aer_noisy:fake_fez")
    export.add_argument("--out", default="results/circuits",
                        help="folder (default: results/circuits, untracked; --out circuits refreshes the committed ones)")
    sweep = commands.add_parser("sweep", help="run a study (a grid of configs) on Ray, resumable, into one table")
    sweep.add_argument("study", help="YAML study file, e.g. configs/study_selection.yaml")
    sweep.add_argument("--out", default="results/studies", help="parent of the study folder (default: results/studies)")
    sweep.add_argument("--address", default=None, help="join a Ray cluster (auto, host:port, ray://host:port); "
                       "default: an embedded Ray on this machine")
    sweep.add_argument("--max-workers", type=int, default=None, help="points at once (default: the CPUs)")
    sweep.add_argument("--dry-run", action="store_true", help="points, qubits and an estimated time; run nothing")
    sweep.add_argument("--keep-runs", action="store_true", help="also write each point's run folder")
    return parser


def summary(result: dict, folder) -> str:
    """The short table printed after a run."""
    solutions = result.get("solutions") or {}
    lines = []
    for name in ("quantum", "classical_exact"):
        entry = solutions.get(name)
        if name not in solutions:
            continue
        if entry is None:
            lines.append(f"{name:<16} — ({result.get('note') or 'not run'})")
            continue
        if entry.get("allocation") is None:
            lines.append(f"{name:<16} no feasible sample")
            continue
        allocation = allocation_text(entry["allocation"])
        lines.append(f"{name:<16} {allocation:<40} objective {entry['objective']:.6g}  return {entry['expected_return']:.4g}"
                     f"  cost {entry['cost']:.6g}  feasible {'yes' if entry['feasible'] else 'no'}")
    metrics = result.get("metrics")
    if metrics:
        ratio = metrics.get("approximation_ratio")
        ratio = "— (the worst feasible allocation is unknown: too many to enumerate)" if ratio is None else f"{ratio:.4f}"
        lines.append(f"{'p_optimal':<16} {metrics['p_optimal']:.4f}   feasible_fraction {metrics['feasible_fraction']:.4f}"
                     f"   approximation_ratio {ratio}")
        if metrics.get("lift") is not None:
            lines.append(f"{'lift':<16} {metrics['lift']:.1f}× uniform sampling over {metrics['reachable_states']} "
                         f"states (P(optimum) {metrics['uniform_p_optimal']:.4g})")
    quantum = solutions.get("quantum")
    exact = solutions.get("classical_exact")
    if quantum and exact and quantum.get("objective") is not None:
        same = abs(quantum["objective"] - exact["objective"]) <= optimum_tolerance(exact["objective"])
        lines.append(f"{'quantum = exact':<16} {'yes' if same else 'no'}")
    lines.append(f"{'qubits':<16} {result.get('qubits')}")
    lines.append(f"{'time':<16} {result['timing'].get('total_s', 0.0):.2f} s")
    lines.append(f"{'run folder':<16} {folder}")
    return "\n".join(lines)


def _print_mapping(mapping: dict, indent: str = "") -> None:
    for key, value in mapping.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_mapping(value, indent + "  ")
        else:
            print(f"{indent}{key}: {value}")


def _status(folder: Path) -> None:
    result = load_result(folder)
    history = load_history(folder / "history.jsonl")
    status = experiment.live_status(folder, result)
    print(f"run folder      {folder}")
    shown = status if status == result.get("status") else f"{status} (the process that ran it is gone)"
    print(f"status          {shown}" + (f" ({result['error']})" if result.get("error") else ""))
    if result.get("resume_error"):
        print(f"last resume     failed: {result['resume_error']}")
    if status == "interrupted":
        print(f"continue with   qportfolio resume {folder}")
    if result.get("kind") == experiment.BACKTEST_KIND:
        print(f"decisions       {len(backtest.load_decisions(folder))} recorded")
        if status == "complete":
            print(backtest.summary_table(result))
        return
    if history:
        best = min(h.value for h in history)
        print(f"evaluations     {len(history)} (best objective value {best:.6g}, last {history[-1].value:.6g})")
    jobs = load_jobs(folder)
    if jobs:
        print(f"jobs            {len(jobs)}")
        backend = _live_backend(folder)
        for job in jobs[-10:]:
            state = backend.status(job["job_id"]).get("state") if backend is not None else job.get("state", "recorded")
            print(f"  {job['job_id']}  {job.get('kind', '')}  {state}")
    if status == "complete":
        print(summary(result, folder))


def _live_backend(folder: Path):
    """The run's IBM backend, to ask the service for live job states; None for local backends."""
    config = load_config(folder / "config.yaml")
    if not config.backend.name.startswith("ibm:"):
        return None
    try:
        return config.quantum_solver().make_backend()
    except QPortfolioError as error:
        print(f"                (no live job states: {error})")
        return None


def _submit(args) -> int:
    config = load_config(args.config, {"seed": args.seed})
    prices, _, problem = experiment.prepare(config)  # every input checked before anything is detached
    check_spending(config, args.yes, problem)
    run = start_run(config, args.out, prices)
    log = open(run.folder / "log.txt", "ab")
    command = [sys.executable, "-m", "qportfolio.app.cli", "resume", str(run.folder)] + (["--yes"] if args.yes else [])
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env=os.environ.copy())
    print(f"submitted       {run.folder} (process {process.pid}; log in log.txt)")
    print(f"watch           qportfolio status {run.folder}")
    print(f"if it stops     qportfolio resume {run.folder}")
    return 0


def _process_age() -> float:
    """Seconds since this process started. On Linux from the kernel's own clock ticks (``/proc/self/stat``
    against the boot clock): psutil's start time rests on a boot time rounded to whole seconds, up to 1 s off."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time() - psutil.Process().create_time()


def _progress(args) -> str | None:
    """A progress bar on a terminal, progress lines in a log (stderr not a terminal), nothing with --quiet."""
    if args.quiet:
        return None
    return "bar" if sys.stderr.isatty() else "log"


def _terminate(signum, frame):
    """SIGTERM (``kill``, ``timeout``) and SIGHUP stop a run the way Ctrl-C does: it is recorded as interrupted."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        # A program, not a call: what the imports built lives until the exit, so the cyclic collector stops
        # scanning it (gc.freeze); frozen again at the end, so that the interpreter's exit does not scan what
        # the command built either (together about half a second of a 24-qubit run).
        gc.freeze()
    args = _parser().parse_args(argv)
    args.program = argv is None  # the command as a process (its start time tells the dry run the machine's load)
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            handlers[signum] = signal.signal(signum, _terminate)
    try:
        return _command(args)
    except experiment.RunInterrupted as interrupted:
        print(f"qportfolio: interrupted; what finished is in the run folder: continue with "
              f"`qportfolio resume {interrupted.folder}`", file=sys.stderr)
        if argv is None:  # a program, not a call: do not wait for a simulator thread to finish its evaluation
            sys.stdout.flush(), sys.stderr.flush()
            os._exit(130)
        return 130
    except QPortfolioError as error:
        print(f"qportfolio: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qportfolio: interrupted before a run folder was written; nothing to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if argv is None:
            gc.freeze()


def _command(args) -> int:
    if args.command in ("run", "baseline"):
        config = load_config(args.config, {"seed": args.seed})
        quantum = args.command == "run"
        if args.dry_run:
            started = _process_age()  # how loaded the machine is (planning.slowdown)
            _, _, problem = experiment.prepare(config, quantum)  # a run that would be refused is refused, not planned
            _print_mapping(dry_run(config, problem, quantum, started if args.program else None))
            return 0
        if quantum:
            check_spending(config, args.yes)
        run = experiment.execute(config, args.out, quantum=quantum, progress=_progress(args))
        print(summary(run.result, run.folder))
    elif args.command == "submit":
        return _submit(args)
    elif args.command == "status":
        _status(Path(args.run_dir))
    elif args.command == "resume":
        if experiment.is_backtest(args.run_dir):  # one resume for every run folder
            return backtest.resume_command(args.run_dir, _progress(args), args.yes)
        run = experiment.resume(args.run_dir, progress=_progress(args), approve_spending=args.yes)
        if run.previous is None:  # left as it was
            print(f"{run.folder} is a complete run: nothing to resume")
        print(summary(run.result, run.folder))
    elif args.command == "compare":
        table = compare_runs([Path(d) for d in args.run_dirs], args.format)
        figure = Path(args.figure) if args.figure else Path(args.run_dirs[0]).parent / "comparison.png"
        check_output_file(figure, "--figure")
        print(table)
        print(f"figure: {comparison_figure([Path(d) for d in args.run_dirs], figure)}")
    elif args.command == "frontier":
        config = load_config(args.config)
        problem = as_markowitz(build_problem_from_config(config))
        table = frontier_table(problem, args.points, args.format)
        figure = check_output_file(Path(args.figure) if args.figure else Path("results") / f"{config.name}-frontier.png",
                                   "--figure")
        print(table)
        print(f"figure: {frontier_figure(problem, figure, max(args.points, 40))}")
    elif args.command == "sweep":
        from qportfolio.app import study

        return study.main(args)
    elif args.command == "backtest":
        return backtest.command(args, _progress(args), _print_mapping)
    elif args.command == "export-circuits":
        for path in export_circuits(load_config(args.config), args.out, args.target):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
