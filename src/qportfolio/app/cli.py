"""The ``qportfolio`` command.

``run CONFIG [--out DIR] [--seed N] [--dry-run] [--yes]`` — the quantum run beside the exact classical answer.
``baseline CONFIG [--out DIR]`` — classical answers only, same folder layout.
``submit CONFIG [--out DIR] [--yes]`` — start the run detached from this terminal; returns at once.
``status RUN_DIR`` — where a run stands: status, evaluations, jobs.
``resume RUN_DIR [--yes]`` — continue an interrupted run from its history (nothing finished is redone).
``backtest CONFIG [--out DIR] [--dry-run] [--yes]`` or ``backtest --resume RUN_DIR`` — out-of-sample backtest.
``export-circuits CONFIG [--target BACKEND] [--out circuits]`` — logical (and ISA) circuits as QASM 3 and QPY.
``sweep STUDY [--out DIR] [--address ADDR] [--max-workers N] [--dry-run] [--keep-runs]`` — a study on Ray.

A user's mistake prints one line (``qportfolio: error: …``) and exits 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from qportfolio.app import backtest, experiment
from qportfolio.app.compare import as_markowitz, compare_runs, comparison_figure, frontier_table
from qportfolio.app.config import load_config
from qportfolio.app.experiment import load_jobs, start_run
from qportfolio.app.instance import build_problem_from_config
from qportfolio.app.planning import check_spending, dry_run, export_circuits
from qportfolio.app.plots import frontier_figure
from qportfolio.app.results import load_history, load_result
from qportfolio.errors import QPortfolioError
from qportfolio.problems import optimum_tolerance


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qportfolio", description="Portfolio optimization with QAOA/VQE, "
                                     "held against the exact classical answer on the same instance.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an experiment config (quantum and classical)")
    baseline = commands.add_parser("baseline", help="classical answers only, same run folder layout")
    submit = commands.add_parser("submit", help="start a run in the background; job ids go to its folder")
    for command in (run, baseline, submit):
        command.add_argument("config", help="YAML experiment config, e.g. configs/quickstart.yaml")
        command.add_argument("--out", default="results", help="parent folder of the run folder (default: results)")
        command.add_argument("--seed", type=int, default=None, help="override the config's seed")
    for command in (run, baseline):
        command.add_argument("--quiet", action="store_true", help="no progress bar")
    for command in (run, submit):
        command.add_argument("--yes", action="store_true", help="allow more QPU time than backend.max_qpu_seconds")
    run.add_argument("--dry-run", action="store_true", help="build and transpile, print the plan, submit nothing")
    status = commands.add_parser("status", help="the state of a run folder and its jobs")
    status.add_argument("run_dir")
    resume = commands.add_parser("resume", help="continue an interrupted run from its recorded history")
    resume.add_argument("run_dir")
    resume.add_argument("--yes", action="store_true", help="allow more QPU time than backend.max_qpu_seconds")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    compare = commands.add_parser("compare", help="one table across run folders and methods, and a frontier figure")
    compare.add_argument("run_dirs", nargs="+")
    compare.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    compare.add_argument("--figure", default=None, help="where to write the figure (default: comparison.png beside "
                         "the first run folder)")
    frontier = commands.add_parser("frontier", help="the continuous efficient frontier of a config's assets")
    frontier.add_argument("config")
    frontier.add_argument("--points", type=int, default=20)
    frontier.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    frontier.add_argument("--figure", default="frontier.png", help="figure path (default: frontier.png)")
    walk = commands.add_parser("backtest", help="out-of-sample backtest: re-solve at each rebalance date, hold at real prices")
    walk.add_argument("config", nargs="?", help="YAML config with a backtest section, e.g. configs/backtest.yaml")
    walk.add_argument("--out", default="results", help="parent folder of the run folder (default: results)")
    walk.add_argument("--resume", metavar="RUN_DIR", help="continue the backtest in RUN_DIR (recorded decisions are kept)")
    walk.add_argument("--dry-run", action="store_true", help="count the solves, time one of each, estimate the total")
    walk.add_argument("--yes", action="store_true", help="allow more QPU time than backend.max_qpu_seconds")
    walk.add_argument("--quiet", action="store_true", help="no progress bar")
    export = commands.add_parser("export-circuits", help="write the config's circuits as OpenQASM 3 and QPY")
    export.add_argument("config")
    export.add_argument("--target", default=None, help="also the ISA circuit for this backend, e.g. aer_noisy:fake_fez")
    export.add_argument("--out", default="circuits", help="folder (default: circuits)")
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
        allocation = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry["allocation"].items())
        lines.append(f"{name:<16} {allocation:<40} objective {entry['objective']:.6g}  return {entry['expected_return']:.4g}"
                     f"  cost {entry['cost']:.6g}  feasible {'yes' if entry['feasible'] else 'no'}")
    metrics = result.get("metrics")
    if metrics:
        lines.append(f"{'p_optimal':<16} {metrics['p_optimal']:.4f}   feasible_fraction {metrics['feasible_fraction']:.4f}"
                     f"   approximation_ratio {metrics['approximation_ratio']:.4f}")
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
    print(f"run folder      {folder}")
    print(f"status          {result.get('status')}" + (f" ({result['error']})" if result.get("error") else ""))
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
    if result.get("status") == "complete":
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
    check_spending(config, args.yes)
    run = start_run(config, args.out)
    log = open(run.folder / "log.txt", "ab")
    command = [sys.executable, "-m", "qportfolio.app.cli", "resume", str(run.folder), "--quiet"] + (["--yes"] if args.yes else [])
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env=os.environ.copy())
    print(f"submitted       {run.folder} (process {process.pid}; log in log.txt)")
    print(f"watch           qportfolio status {run.folder}")
    print(f"if it stops     qportfolio resume {run.folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("run", "baseline"):
            config = load_config(args.config, {"seed": args.seed})
            if getattr(args, "dry_run", False):
                _print_mapping(dry_run(config))
                return 0
            quantum = args.command == "run"
            if quantum:
                check_spending(config, args.yes)
            run = experiment.execute(config, args.out, quantum=quantum, progress=not args.quiet and sys.stderr.isatty())
            print(summary(run.result, run.folder))
        elif args.command == "submit":
            return _submit(args)
        elif args.command == "status":
            _status(Path(args.run_dir))
        elif args.command == "resume":
            run = experiment.resume(args.run_dir, progress=not args.quiet and sys.stderr.isatty(), approve_spending=args.yes)
            print(summary(run.result, run.folder))
        elif args.command == "compare":
            print(compare_runs([Path(d) for d in args.run_dirs], args.format))
            figure = Path(args.figure) if args.figure else Path(args.run_dirs[0]).parent / "comparison.png"
            print(f"figure: {comparison_figure([Path(d) for d in args.run_dirs], figure)}")
        elif args.command == "frontier":
            problem = as_markowitz(build_problem_from_config(load_config(args.config)))
            print(frontier_table(problem, args.points, args.format))
            print(f"figure: {frontier_figure(problem, Path(args.figure), max(args.points, 40))}")
        elif args.command == "sweep":
            from qportfolio.app import study

            return study.main(args)
        elif args.command == "backtest":
            return backtest.command(args)
        elif args.command == "export-circuits":
            for path in export_circuits(load_config(args.config), args.out, args.target):
                print(path)
        return 0
    except QPortfolioError as error:
        print(f"qportfolio: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qportfolio: interrupted; what finished is in the run folder: continue with `qportfolio resume RUN_DIR`",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
