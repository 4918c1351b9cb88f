"""Where a whole ``qportfolio run`` spends its time: the share in objective evaluations, and the peak memory.

    python benchmarks/whole_run.py [--config configs/selection_24.yaml] [--baseline REF] [--repeats 2]
                                   [--profile] [--out results/benchmarks/whole_run.md]

Each measured run is the CLI in a fresh process under ``/usr/bin/time -v`` (wall time and peak RSS of the
whole process, imports included). Time in evaluations is the sum of the per-evaluation ``seconds`` the run
records in ``history.jsonl``; the share is that over the wall time; each variant is reported by its run with
the least wall time (the machine's other load only adds). ``--baseline REF`` also measures the
``src`` of a git commit (exported with ``git archive``, no worktree), the runs of both alternating so that
the machine's load hits them alike, and reports the ratios. Every variant first runs once unmeasured to
fill its numba cache. ``--profile`` adds a cProfile run of the current tree and lists the seconds of each
step outside the evaluations (:data:`STEPS`). The reference memory is the simulation's state and energy table,
``(16 + 8)·2ⁿ`` bytes (complex128). Under the peak RSS lies what does not grow with n: the libraries (a process
that only imports the CLI loads fewer of them than a run does) and the compiled kernels. The floor is therefore the
same run on its first ``--floor-qubits`` assets (K scaled alike; a selection config), whose state and energies
are small: peak − floor, over the state and energies the n-qubit run adds, is what the run needs beyond them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import pstats
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GIB = float(1 << 30)


def export_source(ref: str, into: Path) -> Path:
    """The ``src`` folder of commit ``ref``, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_cli(source: Path, config: Path, out: Path, profile: Path | None = None) -> dict:
    """One ``qportfolio run`` in a fresh process: wall seconds, peak RSS, the run's own timing and evaluations."""
    out.mkdir(parents=True, exist_ok=True)
    python = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    command = ["/usr/bin/time", "-v", *python, "-m", "qportfolio.app.cli", "run", str(config), "--out", str(out),
               "--quiet"]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(source)}, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    folder = max(out.iterdir(), key=lambda p: p.stat().st_mtime)
    result = json.loads((folder / "result.json").read_text())
    tickers = result.get("data", {}).get("tickers", [])
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines() if line.strip()]
    shutil.rmtree(folder)
    return {"wall_s": seconds, "peak_gib": peak_kib * 1024 / GIB, "timing": result.get("timing", {}),
            "evaluations": len(history), "evaluation_s": sum(float(h.get("seconds") or 0.0) for h in history),
            "qubits": int(result["qubits"]), "tickers": tickers}


def floor_config(config: Path, tickers: list[str], qubits: int, into: Path) -> Path | None:
    """``config`` on the first ``qubits`` of its run's ``tickers`` (K in proportion), written under ``into``; None
    unless a selection with fewer assets than the run's."""
    data = yaml.safe_load(config.read_text())
    problem = data.get("problem", {})
    if problem.get("kind") != "selection" or not problem.get("num_assets") or not 0 < qubits < len(tickers):
        return None
    source = data.setdefault("data", {})
    if source.get("path"):
        source["path"] = str((config.parent / source["path"]).resolve())
    source["assets"] = tickers[:qubits]
    problem["num_assets"] = max(1, round(int(problem["num_assets"]) * qubits / len(tickers)))
    data["name"] = f"{data.get('name', 'run')}_floor{qubits}"
    path = into / f"floor_{qubits}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def import_rss(source: Path) -> float:
    """Peak RSS (GiB) of a process that only imports the CLI: the floor under every run."""
    command = ["/usr/bin/time", "-v", sys.executable, "-c", "import qportfolio.app.cli"]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(source)}, capture_output=True,
                          text=True, check=True)
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) * 1024 / GIB


#: The steps of a run outside its evaluations, as ``(file, function)`` in the cProfile output.
STEPS = (("app/instance.py", "load_config_prices"), ("classical/enumeration.py", "enumerate_optimum"),
         ("encoding/calibration.py", "calibrate_penalties"), ("encoding/qubo.py", "all_energies"),
         ("encoding/verification.py", "verify_ground_state"), ("baselines.py", "run_baselines"),
         ("backends/exact/backend.py", "_prepare"), ("backends/exact/backend.py", "sample"),
         ("sampling.py", "sample_counts"), ("evaluation.py", "decode_samples"), ("postprocess.py", "postprocess"),
         ("optimize/result.py", "random_sampling"), ("app/experiment.py", "_write_outputs"))


def outside_evaluations(profile: Path) -> list[tuple[str, float]]:
    """Cumulative seconds of each step in :data:`STEPS` (the final sample includes one state evolution)."""
    stats = pstats.Stats(str(profile)).stats
    rows = []
    for suffix, name in STEPS:
        seconds = sum(v[3] for k, v in stats.items() if k[0].endswith(suffix) and k[2] == name)
        if seconds:
            rows.append((f"{suffix}:{name}", seconds))
    return rows


def summarise(runs: list[dict]) -> dict:
    """The variant's least disturbed run (least wall time: the machine's other load only ever adds), and the
    largest peak RSS of all its runs."""
    best = min(runs, key=lambda r: r["wall_s"])
    return {"wall_s": best["wall_s"], "evaluation_s": best["evaluation_s"], "share": best["evaluation_s"] / best["wall_s"],
            "total_s": float(best["timing"].get("total_s", float("nan"))),
            "peak_gib": max(r["peak_gib"] for r in runs), "runs": runs}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/selection_24.yaml")
    parser.add_argument("--baseline", help="git ref whose src is measured beside the current tree")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--floor-qubits", type=int, default=16,
                        help="the memory floor: the same run on this many assets (0: the imports only)")
    parser.add_argument("--out", default="results/benchmarks/whole_run.md")
    args = parser.parse_args(argv)
    if args.floor_qubits < 0:
        parser.error(f"--floor-qubits must be 0 (no floor run) or a number of assets, got {args.floor_qubits}")
    config = (ROOT / args.config).resolve()
    work = Path(tempfile.mkdtemp(prefix="whole_run_"))
    args.load = [os.getloadavg()]  # the machine's other load, before and after (1-, 5-, 15-minute averages)
    try:
        variants = {"current": ROOT / "src"}
        if args.baseline:
            variants[f"baseline {args.baseline}"] = export_source(args.baseline, work / "baseline")
        for name, source in variants.items():
            print(f"warm-up ({name}) …", flush=True)
            run_cli(source, config, work / "runs")
        measured: dict[str, list[dict]] = {name: [] for name in variants}
        for repeat in range(args.repeats):
            for name, source in variants.items():
                measured[name].append(run_cli(source, config, work / "runs"))
                r = measured[name][-1]
                print(f"{name} #{repeat + 1}: {r['wall_s']:.1f} s, evaluations {r['evaluation_s']:.1f} s, "
                      f"peak {r['peak_gib']:.2f} GiB", flush=True)
        summary = {name: summarise(runs) for name, runs in measured.items()}
        imports = import_rss(ROOT / "src")
        small = None
        if args.floor_qubits:
            first = next(iter(summary.values()))["runs"][0]
            derived = floor_config(config, first["tickers"], args.floor_qubits, work)
            if derived is not None:
                small = min((run_cli(ROOT / "src", derived, work / "runs") for _ in range(2)),
                            key=lambda r: r["peak_gib"])  # the smaller peak: the floor is not overstated
        floor = {"imports": imports, "small": small}
        profile_rows = []
        if args.profile:
            profile = work / "run.prof"
            run_cli(ROOT / "src", config, work / "runs", profile)
            profile_rows = outside_evaluations(profile)
        args.load.append(os.getloadavg())
        write_report(ROOT / args.out, args, config, summary, floor, profile_rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def state_gib(qubits: int) -> float:
    """The exact simulation's state and energy table, complex128: (16 + 8)·2ⁿ bytes."""
    return (16 + 8) * 2.0**qubits / GIB if qubits else float("nan")


def write_report(path: Path, args, config: Path, summary: dict, floor: dict, profile_rows) -> None:
    qubits = next(iter(summary.values()))["runs"][0]["qubits"]
    state = state_gib(qubits)
    small = floor["small"]
    command = "python benchmarks/whole_run.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "python benchmarks/whole_run.py"
    lines = [
        "# Whole run: time in evaluations and peak memory",
        "",
        f"`{command}` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Config `{args.config}` ({qubits} qubits). "
        "Load average (1, 5, 15 min) before: " + ", ".join(f"{v:.2f}" for v in args.load[0]) + "; after: "
        + ", ".join(f"{v:.2f}" for v in args.load[-1]) + ".",
        "",
        "Each variant's row is its run with the least wall time (other jobs on the machine only ever add to it); wall: "
        "the whole process, imports included; evaluations: the sum of the per-evaluation seconds in `history.jsonl`; "
        "share: evaluations / wall (evaluations / run total in brackets); run total: `result.json` "
        "`timing.total_s` (no imports); peak RSS: the largest over the variant's runs. State + energies = "
        f"(16 + 8)·2ⁿ = {state:.2f} GiB; a process that only imports the CLI peaks at {floor['imports']:.2f} GiB"
        + ("." if small is None else
           f"; the same run on its first {small['qubits']} assets (what does not grow with n: every library the "
           f"run loads and the compiled kernels) peaks at {small['peak_gib']:.2f} GiB, and its state and "
           f"energies are {state_gib(small['qubits']) * 1024:.1f} MiB."),
        "",
        "| variant | wall s | run total s | evaluations s | share in evaluations | peak RSS GiB | peak − imports "
        "(× state + energies) | peak − small run (× the state + energies added) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        above = "—" if small is None else (
            f"{s['peak_gib'] - small['peak_gib']:.2f} "
            f"({(s['peak_gib'] - small['peak_gib']) / (state - state_gib(small['qubits'])):.2f}×)")
        lines.append(f"| {name} | {s['wall_s']:.1f} | {s['total_s']:.1f} | {s['evaluation_s']:.1f} | "
                     f"{100 * s['share']:.0f}% ({100 * s['evaluation_s'] / s['total_s']:.0f}%) | {s['peak_gib']:.2f} | "
                     f"{s['peak_gib'] - floor['imports']:.2f} ({(s['peak_gib'] - floor['imports']) / state:.2f}×) | "
                     f"{above} |")
    if len(summary) == 2:
        (_, new), (_, old) = summary.items()
        lines += ["", f"Ratios old/new: wall {old['wall_s'] / new['wall_s']:.2f}×, time outside evaluations "
                      f"{(old['wall_s'] - old['evaluation_s']) / (new['wall_s'] - new['evaluation_s']):.2f}×, "
                      f"peak RSS {old['peak_gib'] / new['peak_gib']:.2f}×."]
    lines += ["", "Per-run timing (`result.json`):", ""]
    for name, s in summary.items():
        for r in s["runs"]:
            timing = ", ".join(f"{k} {v:.1f}" for k, v in r["timing"].items() if isinstance(v, (int, float)))
            lines.append(f"* {name}: wall {r['wall_s']:.1f} s, {r['evaluations']} evaluations "
                         f"{r['evaluation_s']:.1f} s; {timing}")
    if profile_rows:
        lines += ["", "Steps outside the evaluations (one cProfile run of the current tree, cumulative seconds, "
                      "profiler overhead included; `sample` includes the final state's evolution):", "", "| step | s |", "|---|---|"]
        lines += [f"| `{where}` | {seconds:.2f} |" for where, seconds in profile_rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    main()
