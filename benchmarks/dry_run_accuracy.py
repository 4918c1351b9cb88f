"""How close is ``--dry-run``'s estimate to the wall time of the command it plans, for every shipped config?

    python benchmarks/dry_run_accuracy.py [--configs quickstart selection ...] [--no-first-run]
                                          [--out results/benchmarks/dry_run_accuracy.md]

For each config in ``configs/``: its dry run, then the real command, each a fresh ``qportfolio`` process (the
wall time a user waits: interpreter, imports, the run and its files), the real one into a new folder under
/tmp. The command is the one the config is shipped for: ``run`` (``baseline`` where ``run --dry-run`` is
refused, as the run is: eight_assets), ``backtest`` for a config with a backtest section, ``sweep
--max-workers 2`` for a study. ``hardware_ibm`` needs an account and the network: its dry run is made with the
least busy device replaced by ``fake_fez`` offline (estimate only). Unless ``--no-first-run``, the quickstart and
the backtest are also measured on a copy of ``src`` without numba's cache: the first command after install, which
compiles the kernels (for the backtest, its dry run already does).

The table gives estimate, measured, their ratio and the 1-minute load average before and after (the machine
is shared), and checks that the plan lists only what the command does (no shots on ``exact``, no mixer for
VQE, the evaluations and jobs the run made within those planned).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: Measured also as the first command after install (a copy of ``src`` without numba's cache).
FIRST_RUN_CONFIGS = ("quickstart", "backtest")
CLI = "from qportfolio.app.cli import main; import sys; sys.exit(main())"
#: ``ibm:least_busy`` offline: the device is the fake Fez (no account, no network), the rest of the path real.
OFFLINE_IBM = ("import sys; import qportfolio.backends.ibm as ibm; from qportfolio.backends.ibm.devices import "
               "fake_device; ibm._connect = lambda settings, device: (None, fake_device('fake_fez')); "
               "from qportfolio.app.cli import main; sys.exit(main())")


def command_for(path: Path) -> list[str]:
    """The command a shipped config is for (without --dry-run / --out)."""
    raw = yaml.safe_load(path.read_text())
    if "grid" in raw or "zip" in raw:
        return ["sweep", str(path), "--max-workers", "2"]
    if raw.get("backtest"):
        return ["backtest", str(path), "--quiet"]
    return ["run", str(path), "--quiet"]


def qportfolio(args: list[str], src: Path, code: str = CLI) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - started, done


def estimate_of(command: str, out: str) -> float | None:
    """The total the dry run printed: ``estimated_seconds`` (run, baseline, backtest) or the sweep's time on its
    workers."""
    if command == "sweep":
        found = re.search(r"about ([\d.]+) s on \d+ worker", out)
    else:
        found = re.search(r"^estimated_seconds:?\s+([\d.]+)", out, re.M)
    return float(found.group(1)) if found else None


def plan_of(out: str) -> dict:
    """The dry run's printed mapping (top-level keys and values; nested keys under ``parent.key``)."""
    plan, parent = {}, None
    for line in out.splitlines():
        if not line.strip() or ":" not in line:
            continue
        key, _, value = line.partition(":")
        if line.startswith("  ") and parent:
            if not line.startswith("    "):
                plan[f"{parent}.{key.strip()}"] = value.strip()
        else:
            parent = key.strip()
            plan[parent] = value.strip()
    return plan


def listed_vs_done(command: str, plan: dict, folder: Path | None) -> str:
    """What the plan lists against what the run did: shots, mixer, evaluations, jobs."""
    if command != "run" or folder is None:
        return "—"
    notes, ok = [], True
    result = json.loads((folder / "result.json").read_text())
    backend = plan.get("backend")
    if backend is None:  # markowitz: nothing quantum listed
        ok &= result.get("solutions", {}).get("quantum") is None and "qubits" not in plan
        return f"{'ok' if ok else 'MISMATCH'}: no backend or circuit listed, none run"
    if backend == "exact":
        ok &= not {"circuits", "total_shots", "shots_per_circuit"} & plan.keys()
        notes.append("shots only for the final samples")
    if plan.get("algorithm") == "vqe":
        ok &= "mixer" not in plan
        notes.append("no mixer (VQE)")
    done = result["quantum"]["evaluations"]
    planned = int(plan["evaluations"]) + int(plan.get("pretraining_evaluations_on_exact", 0))
    ok &= done <= planned
    notes.append(f"evaluations {done} ≤ {planned}" + (" (pretraining on exact included)"
                                                       if "pretraining_evaluations_on_exact" in plan else ""))
    jobs_file = folder / "jobs.jsonl"
    if jobs_file.is_file():
        jobs = [json.loads(line) for line in jobs_file.read_text().splitlines() if line.strip()]
        calibrations = sum(job.get("kind") == "calibration" for job in jobs)
        ok &= len(jobs) - calibrations <= int(plan["circuits"])
        ok &= calibrations == (1 if "calibration_job" in plan else 0)
        notes.append(f"jobs {len(jobs) - calibrations} ≤ {plan['circuits']} + {calibrations} calibration")
    return f"{'ok' if ok else 'MISMATCH'}: " + "; ".join(notes)


def measure(name: str, path: Path, src: Path, tmp: Path) -> dict:
    args = command_for(path)
    command = args[0]
    row = {"config": name, "command": "qportfolio " + " ".join(a if not a.startswith("/") else Path(a).name
                                                              for a in args)}
    if name == "hardware_ibm":
        _, done = qportfolio(["run", str(path), "--dry-run"], src, OFFLINE_IBM)
        row.update(command=f"qportfolio run {path.name} --dry-run (least_busy → fake_fez offline)",
                   estimate=estimate_of("run", done.stdout), measured=None,
                   check="estimate only: a real device needs an account and the network; "
                         + (f"QPU {float(plan_of(done.stdout)['estimated_qpu_seconds']):.1f} s, queue not included"
                            if done.returncode == 0 else done.stderr.strip()[-200:]))
        return row
    row["load_before"] = os.getloadavg()[0]
    _, dry = qportfolio([*args[:2], "--dry-run"], src)
    if dry.returncode != 0 and command == "run":  # refused by the dry run: is the run refused alike?
        refused = dry.stderr.strip()
        _, real = qportfolio([*args, "--out", str(tmp / name)], src)
        same = real.returncode == dry.returncode and real.stderr.strip() == refused
        row["refused"] = f"`run` refused by its dry run {'and by the run alike' if same else 'BUT NOT BY THE RUN'}"
        args = ["baseline", *args[1:]]
        row["command"] = f"qportfolio baseline {path.name}"
        _, dry = qportfolio([*args[:2], "--dry-run"], src)
    if dry.returncode != 0:
        raise SystemExit(f"{name}: the dry run failed: {dry.stderr.strip()[-400:]}")
    out_flag = ["--out", str(tmp / name)]
    seconds, real = qportfolio([*args, *out_flag], src)
    if real.returncode != 0:
        raise SystemExit(f"{name}: the run failed: {real.stderr.strip()[-400:]}")
    folders = [p for p in (tmp / name).iterdir() if p.is_dir()] if (tmp / name).is_dir() else []
    plan = plan_of(dry.stdout)
    row.update(estimate=estimate_of(args[0], dry.stdout), measured=seconds, load_after=os.getloadavg()[0],
               parts={k.split(".", 1)[1]: v for k, v in plan.items() if k.startswith("estimate.")},
               check=listed_vs_done(args[0], plan, folders[0] if len(folders) == 1 else None))
    if row.get("refused"):
        row["check"] = row["refused"] + "; " + row["check"]
    return row


def table(rows: list[dict]) -> list[str]:
    lines = ["| config | command | estimate (s) | measured (s) | ratio measured/estimate | load before / after | "
             "slowdown | parts of the estimate | listed vs done |", "|---|---|---:|---:|---:|---|---:|---|---|"]
    for r in rows:
        ratio = f"{r['measured'] / r['estimate']:.2f}" if r.get("measured") and r.get("estimate") else "—"
        load = f"{r['load_before']:.1f} / {r['load_after']:.1f}" if "load_before" in r else "—"
        found = dict(r.get("parts") or {})
        slow = found.pop("slowdown", "—")
        parts = ", ".join(f"{k.removesuffix('_s')} {v}" for k, v in found.items() if k != "note")
        measured = f"{r['measured']:.1f}" if r.get("measured") else "—"
        estimate = f"{r['estimate']:.1f}" if r.get("estimate") is not None else "—"
        lines.append(f"| {r['config']} | `{r['command']}` | {estimate} | {measured} | {ratio} | {load} | {slow} | "
                     f"{parts or '—'} | {r['check']} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=None, help="config names (default: every one in configs/)")
    parser.add_argument("--no-first-run", action="store_true", help="skip the first-command-after-install rows")
    parser.add_argument("--out", default="results/benchmarks/dry_run_accuracy.md")
    parser.add_argument("--append", action="store_true", help="add this pass to the file instead of replacing it")
    args = parser.parse_args(argv)
    names = args.configs or sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="qportfolio-dry-run-") as tmp:
        tmp = Path(tmp)
        for name in names:
            row = measure(name, ROOT / "configs" / f"{name}.yaml", ROOT / "src", tmp)
            rows.append(row)
            print(f"{name}: estimate {row.get('estimate')} s, measured {row.get('measured')} s", file=sys.stderr)
        for name in () if args.no_first_run else FIRST_RUN_CONFIGS:
            src = tmp / f"fresh-{name}" / "src"
            shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
            row = measure(name, ROOT / "configs" / f"{name}.yaml", src, tmp / f"fresh-{name}")
            row["config"] = f"{name}, first run after install"
            rows.append(row)
            print(f"{name}, first run: estimate {row.get('estimate')} s, measured {row.get('measured')} s",
                  file=sys.stderr)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shown = " ".join(f"--configs {' '.join(args.configs)}".split()) + " " if args.configs else ""
    flags = f"{shown}{'--no-first-run ' if args.no_first_run else ''}{'--append' if args.append else ''}".strip()
    lines = ["# Dry-run estimates against measured wall time", "",
             f"`python benchmarks/dry_run_accuracy.py {flags}`"
             .replace(" `", "`") + f" — {when}, {platform.machine()}, {os.cpu_count()} cores, shared with other "
             "processes (the load average is given per row).", "",
             "Each row: the config's dry run, then the command itself, each a fresh process; measured is the "
             "command's wall time (interpreter, imports, the run, its files). The ratio should lie in 0.5–2. Slowdown: "
             "the dry run's process start against the idle machine's (`planning.slowdown`), which scales the "
             "modelled parts; the other parts are measured by the dry run itself.", "",
             *table(rows), ""]
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and out.is_file():  # another pass under the first: the same rows at another load
        lines = [out.read_text().rstrip("\n"), "", "## Another pass", "", *lines[2:3], "", *lines[6:]]
    out.write_text("\n".join(lines))
    print(out)


if __name__ == "__main__":
    main()
