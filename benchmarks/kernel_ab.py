"""A/B of the X-mixer QAOA kernel: the old code (another source tree) against this one, interleaved.

    python benchmarks/kernel_ab.py [--qubits 20 22 24] [--p 2] [--rounds 7] [--old-src /work/main/src] [--old-qubo]

Each side is a worker process with its own PYTHONPATH; both get the same dense portfolio QUBO
(:func:`benchmarks.simulator.portfolio_qubo`) and angles. Every round times one expectation and one
expectation-and-gradient on each side, alternating which side goes first; the table reports the
minimum over rounds (the machine is shared: the minimum is the least disturbed run) and new/old.
"new" runs with the QUBO (phases from its structure); "new, table" without it (phases from the
2ⁿ energy table, the old path); ``--old-qubo`` gives the old side the QUBO too (an A/B of two versions of
the structured phases). Writes results/benchmarks/kernel_ab.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIDES = {"old": False, "new": True, "new, table": False}  # side → whether the simulator gets the QUBO


# --------------------------------------------------------------------------- worker (one per side)


def worker() -> None:
    """Answer JSON lines: {"setup": npz, "qubo": bool} builds the simulator; {"time": "expectation" |
    "gradient"} runs it once and answers the seconds (and the value)."""
    from qportfolio.backends.exact import QAOASimulator
    from qportfolio.encoding import qubo_diagonal

    simulator = theta = None
    for line in sys.stdin:
        command = json.loads(line)
        if "setup" in command:
            data = np.load(command["setup"])
            quad, lin, const = data["quadratic"], data["linear"], float(data["constant"])
            theta = data["theta"]
            simulator = None
            energies = qubo_diagonal(quad, lin, const)
            options = {"qubo": _Qubo(quad, lin, const)} if command["qubo"] else {}
            simulator = QAOASimulator(energies, phase_scale=float(data["phase_scale"]), **options)
            simulator.expectation(theta)
            simulator.expectation_and_gradient(theta)  # compiled and warm
            traffic = getattr(simulator, "traffic_per_amplitude", None)
            answer = {"traffic": traffic(len(theta) // 2) if traffic else None}
        else:
            run = simulator.expectation if command["time"] == "expectation" else simulator.expectation_and_gradient
            started = time.perf_counter()
            value = run(theta)
            answer = {"seconds": time.perf_counter() - started,
                      "value": float(value if np.isscalar(value) else value[0])}
        print(json.dumps(answer), flush=True)


class _Qubo:
    def __init__(self, quadratic, linear, constant):
        self.quadratic, self.linear, self.constant = quadratic, linear, constant


# --------------------------------------------------------------------------- driver


class Side:
    def __init__(self, name: str, src: Path):
        env = dict(os.environ, PYTHONPATH=str(src))
        self.name = name
        self.process = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qubits", type=int, nargs="+", default=[20, 22, 24])
    parser.add_argument("--p", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--old-src", type=Path, default=Path("/work/main/src"))
    parser.add_argument("--old-qubo", action="store_true", help="the old side gets the QUBO too")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "benchmarks" / "kernel_ab.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from simulator import portfolio_qubo

    sides = {name: Side(name, args.old_src if name == "old" else ROOT / "src") for name in SIDES}
    qubo = {**SIDES, "old": args.old_qubo}
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.qubits:
                quad, lin, const = portfolio_qubo(n)
                theta = np.random.default_rng(n).uniform(0.1, 0.8, 2 * args.p)
                phase_scale = 1.0 / max(float(np.max(np.abs(quad))), float(np.max(np.abs(lin))))
                path = Path(tmp) / f"qubo{n}.npz"
                np.savez(path, quadratic=quad, linear=lin, constant=const, theta=theta, phase_scale=phase_scale)
                traffic = {name: side.ask(setup=str(path), qubo=qubo[name])["traffic"] for name, side in sides.items()}
                times = {(name, what): [] for name in sides for what in ("expectation", "gradient")}
                values = {}
                order = list(sides)
                for r in range(args.rounds):
                    for what in ("expectation", "gradient"):
                        for name in order if r % 2 == 0 else order[::-1]:
                            answer = sides[name].ask(time=what)
                            times[name, what].append(answer["seconds"])
                            values[name, what] = answer["value"]
                best = {key: min(value) for key, value in times.items()}
                rows.append((n, best, traffic, values))
                print(f"n={n}: " + ", ".join(f"{name} {what} {1e3 * t:.0f} ms" for (name, what), t in best.items()),
                      flush=True)
    finally:
        for side in sides.values():
            side.close()
    write_report(args, rows)


def write_report(args, rows) -> None:
    lines = [
        "# X-mixer kernel A/B",
        "",
        f"`python benchmarks/kernel_ab.py --qubits {' '.join(map(str, args.qubits))} --p {args.p} "
        f"--rounds {args.rounds}{' --old-qubo' if args.old_qubo else ''}` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores "
        "(shared with other work: minimum over interleaved rounds). old: "
        f"`{args.old_src}`{' with the QUBO' if args.old_qubo else ''}; new: this tree with the QUBO's structured phases; new, table: this tree without it.",
        "",
        "| n | what | old ms | new ms | new/old | new, table ms | table/old | traffic B/amp (old → new) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, best, traffic, values in rows:
        for what in ("expectation", "gradient"):
            old, new, table = (best[name, what] for name in SIDES)
            flow = f"{traffic['new, table']:.0f} → {traffic['new']:.0f}" if traffic["new"] is not None else "–"
            lines.append(f"| {n} | {what} | {1e3 * old:.1f} | {1e3 * new:.1f} | {new / old:.2f} | {1e3 * table:.1f} | "
                         f"{table / old:.2f} | {flow if what == 'expectation' else ''} |")
        drift = max(abs(values[name, what] - values["old", what])
                    for name in SIDES for what in ("expectation", "gradient"))
        lines.append(f"| {n} | max value difference vs old | {drift:.1e} | | | | | |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
