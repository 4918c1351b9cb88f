"""First contact: the first ``qportfolio run`` after an install (kernels compiled) against the next one (loaded
from numba's cache), on a copy of this tree's ``src`` with no cache, each run the CLI in a fresh process.

    python benchmarks/first_run.py [--config configs/quickstart.yaml] [--repeats 2]
                                   [--out results/benchmarks/first_run.md]

Each repeat copies ``src`` (without ``__pycache__``) to a new temporary folder, so its first run compiles
everything, then runs the config twice from it. The table gives wall times, their difference (the compile
time the CLI announces as ``experiment.COMPILE_SECONDS``) and the load average, since other processes on
the machine slow both runs alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(src: Path, config: Path, out: Path) -> tuple[float, str]:
    """Wall seconds of one CLI run from ``src`` and what it printed on stderr."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from qportfolio.app.cli import main; main()", "run", str(config),
                           "--out", str(out)], env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the run failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return seconds, done.stderr


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="results/benchmarks/first_run.md")
    args = parser.parse_args(argv)
    config = (ROOT / args.config).resolve()
    rows = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="qportfolio-first-run-") as tmp:
            src = Path(tmp) / "src"
            shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
            load_before = os.getloadavg()[0]
            first, said = timed_run(src, config, Path(tmp) / "runs")
            second, _ = timed_run(src, config, Path(tmp) / "runs")
            announced = any("compiling the simulator's kernels" in line for line in said.splitlines())
            rows.append((repeat + 1, first, second, first - second, announced, load_before, os.getloadavg()[0]))
            print(f"repeat {repeat + 1}: first {first:.1f} s, next {second:.1f} s, announced {announced}",
                  file=sys.stderr)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# First run after install", "",
             f"`python benchmarks/first_run.py --config {args.config} --repeats {args.repeats}` — {when}, "
             f"{platform.machine()}, {os.cpu_count()} cores.", "",
             "Each repeat: a copy of `src` without numba's cache, run twice (fresh processes). The first run compiles "
             "the kernels and says so once on stderr; the difference is the compile time.", "",
             "| repeat | first run (s) | next run (s) | compile (s) | announced | load average before / after |",
             "|---:|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} | {'yes' if r[4] else 'no'} | "
                     f"{r[5]:.2f} / {r[6]:.2f} |")
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(out)


if __name__ == "__main__":
    main()
