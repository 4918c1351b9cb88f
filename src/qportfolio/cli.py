"""The ``qportfolio`` command.

``qportfolio run CONFIG [--out DIR] [--seed N]`` — the quantum run beside the exact classical answer.
``qportfolio baseline CONFIG [--out DIR]`` — classical answers only, same folder layout.

A user's mistake prints one line (``qportfolio: error: …``) and exits 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys

from qportfolio.errors import QPortfolioError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qportfolio", description="Portfolio optimization with QAOA/VQE, "
                                     "held against the exact classical answer on the same instance.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an experiment config (quantum and classical)")
    baseline = commands.add_parser("baseline", help="classical answers only, same run folder layout")
    for command in (run, baseline):
        command.add_argument("config", help="YAML experiment config, e.g. configs/quickstart.yaml")
        command.add_argument("--out", default="results", help="parent folder of the run folder (default: results)")
        command.add_argument("--seed", type=int, default=None, help="override the config's seed")
        command.add_argument("--quiet", action="store_true", help="no progress bar")
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
    quantum = solutions.get("quantum")
    exact = solutions.get("classical_exact")
    if quantum and exact and quantum.get("objective") is not None:
        same = abs(quantum["objective"] - exact["objective"]) <= 1e-9 * max(1.0, abs(exact["objective"]))
        lines.append(f"{'quantum = exact':<16} {'yes' if same else 'no'}")
    lines.append(f"{'qubits':<16} {result.get('qubits')}")
    lines.append(f"{'time':<16} {result['timing'].get('total_s', 0.0):.2f} s")
    lines.append(f"{'run folder':<16} {folder}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from qportfolio.config import load_config
        from qportfolio.experiment import execute

        config = load_config(args.config, {"seed": args.seed})
        run = execute(config, args.out, quantum=args.command == "run", progress=not args.quiet and sys.stderr.isatty())
        print(summary(run.result, run.folder))
        return 0
    except QPortfolioError as error:
        print(f"qportfolio: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qportfolio: interrupted; what finished is in the run folder (result.json status: interrupted)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
