"""A/B timing of the warm-start QAOA and VQE engines: a reference commit against the working tree, interleaved.

Each version runs in its own long-lived worker process (its ``src`` first on ``sys.path``); the driver asks
them in turn for one timed evaluation per case and round, and reports the minimum over rounds (the machine is
shared, so the minimum is the least disturbed run). Cases at each n: warm-start QAOA expectation and adjoint
gradient (p = 2), one evaluation of the default VQE ansatz (real_amplitudes, linear, reps = 2), and the X-mixer
QAOA expectation and gradient (p = 2) as the yardsticks for the warm start. The cost is a random QUBO's energy
table, given to both QAOA engines with ``qubo=`` (as the exact backend does; ``--phases table``: without it, so
that the phases read the table), where the version takes it.

    python benchmarks/warm_vqe_ab.py --ref 8dc4bb7 --sizes 20 22 24 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("warm_expectation", "warm_gradient", "vqe_evaluation", "x_expectation", "x_gradient")
YARDSTICK = {"warm_expectation": "x_expectation", "warm_gradient": "x_gradient"}

WORKER = r"""
import json, sys, time
import numpy as np
from qportfolio.backends.exact import CircuitSimulator, QAOASimulator, WarmStartQAOASimulator
from qportfolio.circuits import vqe_ansatz
from qportfolio.encoding.qubo import Qubo


def make(engine, *args, qubo=None, **kwargs):
    try:
        return engine(*args, qubo=qubo, **kwargs)
    except TypeError:  # a version without qubo=
        return engine(*args, **kwargs)

sims = {}
for line in sys.stdin:
    command = json.loads(line)
    if command["op"] == "setup":
        sims.clear()
        n = command["n"]
        rng = np.random.default_rng(n)
        qubo = Qubo(np.triu(rng.normal(size=(n, n)), 1), rng.normal(size=n), 0.5)
        cost = qubo.all_energies()
        given = qubo if command["phases"] == "qubo" else None
        warm = make(WarmStartQAOASimulator, cost, rng.uniform(0.05, 0.95, n), phase_scale=0.7, qubo=given)
        x = make(QAOASimulator, cost, phase_scale=0.7, qubo=given)
        circuit = vqe_ansatz(n, 2).circuit
        theta = rng.uniform(-1, 1, 4)
        values = rng.uniform(-np.pi, np.pi, circuit.num_parameters)
        sims = {"warm_expectation": lambda: warm.expectation(theta),
                "warm_gradient": lambda: warm.expectation_and_gradient(theta),
                "vqe_evaluation": (lambda vqe=CircuitSimulator(circuit): vqe.probabilities(values)),
                "x_expectation": lambda: x.expectation(theta),
                "x_gradient": lambda: x.expectation_and_gradient(theta)}
        for run in sims.values():  # compile / load the numba cache
            run()
        print(json.dumps({"ok": True}), flush=True)
    else:
        start = time.perf_counter()
        sims[command["case"]]()
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
"""


class Worker:
    def __init__(self, src: Path):
        self.process = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env={**os.environ, "PYTHONPATH": str(src)})

    def ask(self, **command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="cd6e177", help="the reference commit (its src is exported with git archive)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 22, 24])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phases", choices=("qubo", "table"), default="qubo",
                        help="QAOA phases from the QUBO (qubo=) or from the energy table")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "warm_vqe_ab.md")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.ref, "src"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        workers = {"old": Worker(Path(tmp) / "src"), "new": Worker(ROOT / "src")}
        best = {}
        for n in args.sizes:
            for worker in workers.values():
                worker.ask(op="setup", n=n, phases=args.phases)
            for _ in range(args.rounds):
                for case in CASES:
                    for name, worker in workers.items():
                        seconds = worker.ask(op="time", case=case)["seconds"]
                        key = (n, case, name)
                        best[key] = min(best.get(key, float("inf")), seconds)
            print(n, {f"{c}/{v}": round(best[(n, c, v)], 3) for c in CASES for v in workers}, flush=True)
        for worker in workers.values():
            worker.close()
    lines = [f"# Warm-start QAOA and VQE: {args.ref} (old) against the working tree (new)", "",
             f"`python benchmarks/warm_vqe_ab.py --ref {args.ref} --sizes {' '.join(map(str, args.sizes))} "
             f"--rounds {args.rounds} --phases {args.phases}`; min over {args.rounds} interleaved rounds, seconds per "
             f"evaluation; p = 2, complex128, NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'all')}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average before/after "
             f"{load[0]:.2f}/{os.getloadavg()[0]:.2f}. Warm-start rows: new / the X mixer's same case (new).", "",
             "| n | case | old (s) | new (s) | old/new | warm / X (new) |", "|---|---|---|---|---|---|"]
    for n in args.sizes:
        for case in CASES:
            old, new = best[(n, case, "old")], best[(n, case, "new")]
            vs_x = f"{new / best[(n, YARDSTICK[case], 'new')]:.2f}" if case in YARDSTICK else ""
            lines.append(f"| {n} | {case} | {old:.3f} | {new:.3f} | {old / new:.2f} | {vs_x} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
