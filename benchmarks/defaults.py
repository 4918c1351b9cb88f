"""The defaults on instances nobody tuned for: defaults-only QAOA on the held-out suite (or the training suite).

    python benchmarks/defaults.py [--suite heldout|train] [--seeds 1 2 3] [--kinds selection integer_shares]
                                  [--max-workers N] [--out results/benchmarks] [--solver K=V ...] [--problem K=V ...]
                                  [--instances NAME ...]

Every instance of ``benchmarks/suites.yaml``'s suite runs with only the problem given (backend ``exact``,
everything else the tool's defaults: README "Defaults"), crossed with the seeds; selection also runs with
``solver.reps: 3`` given. ``--solver`` / ``--problem KEY=VALUE`` compare a setting against the defaults (e.g.
``--problem constraint_encoding=slack``, the encoding before issue 22); integer shares are grouped by the
qubits their slack encoding needs (13–22, 23–28) and each row gives the qubits of both encodings. The points run through the sweep runner (``qportfolio sweep``'s code, on Ray);
rerunning skips what is complete. Writes ``results/benchmarks/defaults_<suite>.md``: instance by instance
(median over seeds), the medians against the aims, and the published figures beside them. The defaults were
chosen on the ``train`` suite; the ``heldout`` suite reports them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from qportfolio.app.config import parse_config
from qportfolio.app.instance import build_problem_from_config
from qportfolio.app.ray_executor import ray_session
from qportfolio.app.study import parse_study, sweep

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "benchmarks" / "suites.yaml"
PUBLISHED = [
    ("XY-mixer QAOA, ternary portfolio mixers study (2026)", "N = 5 and 8", "ground-state probability ~0.6, AR > 0.99"),
    ("warm-start QAOA (Egger et al. 2021)", "6 assets, p = 1", "P(optimum) 0.56"),
    ("qiskit-finance tutorial, QAOA", "selection, 4 assets, p = 3", "P(optimum) 0.18"),
]
AIMS = {
    ("selection", "N ≤ 10"): "P(optimum) ≥ 0.5, feasible 1.0, lift ≥ 25 (issue 14)",
    ("selection", "N = 12"): "P(optimum) ≥ 0.2 (issue 14)",
    ("selection, reps = 3", "N ≤ 10"): "P(optimum) ≥ 0.2 (issue 14)",
    ("integer_shares", "slack encoding 13–22 qubits"): "median P(optimum) ≥ 0.3 (stretch 0.5), median feasible ≥ 0.8, "
                                                        "optimum sampled every run (issue 22)",
    ("integer_shares", "slack encoding 23–28 qubits"): "median P(optimum) ≥ 0.1, optimum sampled every run (issue 22)",
}


def slack_qubits_of(instance: dict) -> int | None:
    """The qubits the instance's slack encoding needs, as its name records (``…_q<N>``, set when it was drawn)."""
    match = re.search(r"_q(\d+)$", instance["name"])
    return int(match.group(1)) if match else None


def encoding_qubits(instance: dict, covariance: str) -> dict:
    """Qubits of each constraint encoding on the instance (``slack`` and the slack-free one) and what ``auto``
    chose, from this checkout's encoder; empty where the code has no choice record (an older checkout)."""
    config = parse_config({"data": {"source": "sp500", "covariance": covariance,
                                    **{k: instance[k] for k in ("assets", "start", "end", "frequency")}},
                           "problem": {"kind": "integer_shares", "budget": instance["budget"],
                                       "min_return": instance["min_return"]}})
    problem = build_problem_from_config(config)
    choice = getattr(config.quantum_solver().encode(problem), "choice", None) or {}
    qubits = choice.get("qubits") or {}
    return {"slack": qubits.get("slack"), "no_slack": qubits.get("no_slack"), "chosen": choice.get("chosen")}


def study_for(kind: str, instances: list[dict], seeds: list[int], covariance: str, reps: int | None, name: str,
              settings: dict | None = None, problem_settings: dict | None = None) -> dict:
    """One study: the instances zipped (data and problem keys together), crossed with the seeds."""
    problem_keys = ["num_assets", "risk_aversion"] if kind == "selection" else ["budget", "min_return"]
    base = {"name": name, "seed": seeds[0],
            "data": {"source": "sp500", "covariance": covariance, **{k: instances[0][k] for k in
                                                                     ("assets", "start", "end", "frequency")}},
            "problem": {"kind": kind, "baselines": False, **{k: instances[0][k] for k in problem_keys},
                        **(problem_settings or {})},
            "solver": {"shots": 4096, "postprocess": False, **({"reps": reps} if reps else {}), **(settings or {})},
            "backend": {"name": "exact"}}
    zipped = {f"data.{k}": [i[k] for i in instances] for k in ("assets", "start", "end", "frequency")}
    zipped.update({f"problem.{k}": [i[k] for i in instances] for k in problem_keys})
    return {"name": name, "base": base, "zip": zipped, "grid": {"seed": seeds}}


def summarise(frame: pd.DataFrame, instances: list[dict], label: str, qubits: dict | None = None) -> list[str]:
    """Instance by instance (median over seeds), then the medians of those; ``qubits`` by instance name: the
    qubits of each encoding (integer shares)."""
    names = {tuple(i["assets"]) + (i["start"],): i["name"] for i in instances}
    frame = frame[frame["status"] == "complete"].copy()
    frame["instance"] = [names.get(tuple(str(a).strip("[]").replace("'", "").split(", ")) + (s,), "?")
                         for a, s in zip(frame["data.assets"], frame["data.start"])]
    frame["hit"] = (frame["quantum_objective"] - frame["exact_objective"]).abs() <= 1e-9 * np.maximum(
        1.0, frame["exact_objective"].abs())
    per = frame.groupby("instance").agg(qubits=("qubits", "first"), assets=("assets", "first"), reps=("reps", "median"),
                                        p_optimal=("p_optimal", "median"), p_low=("p_optimal", "min"),
                                        p_high=("p_optimal", "max"), feasible=("feasible_fraction", "median"),
                                        lift=("lift", "median"), ratio=("approximation_ratio", "median"),
                                        hits=("hit", "sum"), runs=("hit", "size"),
                                        evaluations=("evaluations", "median"), seconds=("seconds", "median"),
                                        slowest=("seconds", "max"))
    per["assets"] = per.assets.astype(int)
    per["hits"], per["runs"] = per.hits.astype(int), per.runs.astype(int)
    shares = qubits is not None
    lines = [f"### {label}", "",
             "| instance | assets | qubits" + (" (slack / without slack → used)" if shares else "") +
             " | depth | P(optimum) median [min–max over seeds] | feasible | lift | "
             "approximation ratio | best sample optimal | evaluations | seconds (max) |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in per.iterrows():
        used = f"{r.qubits:.0f}"
        if shares:
            q = qubits.get(name, {})
            used = f"{q.get('slack') or '—'} / {q.get('no_slack') or '—'} → {used}"
        lines.append(f"| {name} | {r.assets} | {used} | {r.reps:.0f} | {r.p_optimal:.3f} [{r.p_low:.3f}–{r.p_high:.3f}] | "
                     f"{r.feasible:.3f} | {r.lift:.1f} | {r.ratio:.3f} | {r.hits}/{r.runs} | {r.evaluations:.0f} | "
                     f"{r.seconds:.1f} ({r.slowest:.1f}) |")
    lines.append("")
    groups = [("all", per)]
    if "selection" in label:
        groups = [("N ≤ 10", per[per.assets <= 10]), ("N = 11–12", per[per.assets > 10]), ("all", per)]
    elif shares:
        slack = pd.Series({name: slack_qubits_of({"name": name}) or 0 for name in per.index})
        groups = [("slack 13–22 qubits", per[slack <= 22]), ("slack 23–28 qubits", per[slack > 22]), ("all", per)]
    lines += ["| instances | count | median P(optimum) | median feasible | median lift | median AR | best sample optimal | "
              "slowest run (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for group, rows in groups:
        if len(rows):
            lines.append(f"| {group} | {len(rows)} | {rows.p_optimal.median():.3f} | {rows.feasible.median():.3f} | "
                         f"{rows.lift.median():.1f} | {rows.ratio.median():.3f} | {int(rows.hits.sum())}/{int(rows.runs.sum())} | "
                         f"{rows.slowest.max():.1f} |")
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("heldout", "train"), default="heldout")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--kinds", nargs="+", default=["selection", "integer_shares"],
                        choices=["selection", "integer_shares"])
    parser.add_argument("--max-workers", type=int, default=None)
    parser.add_argument("--address", default=None)
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    parser.add_argument("--solver", nargs="*", default=[], metavar="KEY=VALUE",
                        help="solver settings to compare against the defaults (on the training suite), e.g. warm_start=true")
    parser.add_argument("--problem", nargs="*", default=[], metavar="KEY=VALUE",
                        help="encoding settings (problem.*) to compare, e.g. constraint_encoding=slack")
    parser.add_argument("--instances", nargs="*", default=None, help="only these instances (by name)")
    args = parser.parse_args(argv)
    settings = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.solver)}
    problem_settings = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.problem)}
    suites = yaml.safe_load(SUITES.read_text())
    suite = suites[args.suite]
    started = time.perf_counter()
    sections = []
    variants = [(kind, None) for kind in args.kinds] + ([("selection", 3)] if "selection" in args.kinds else [])
    extra = {**settings, **problem_settings}
    with ray_session(args.address, args.max_workers):
        for kind, reps in variants:
            instances = [i for i in suite[kind] if args.instances is None or i["name"] in args.instances]
            if not instances:
                continue
            name = f"defaults_{args.suite}_{kind}" + (f"_reps{reps}" if reps else "") + "".join(
                f"_{k}-{v}" for k, v in extra.items()) + (
                "_" + hashlib.sha256(" ".join(i["name"] for i in instances).encode()).hexdigest()[:8]
                if args.instances else "")
            study = parse_study(study_for(kind, instances, args.seeds, suites["covariance"], reps, name, settings,
                                          problem_settings))
            table = sweep(study, Path(args.out) / "defaults_studies", progress=sys.stderr.isatty())
            frame = pd.DataFrame(table.rows())
            label = (f", reps = {reps} given" if reps else "") + (f", {extra}" if extra else "")
            qubits = {i["name"]: encoding_qubits(i, suites["covariance"]) for i in instances} \
                if kind == "integer_shares" else None
            sections += summarise(frame, instances, kind + (label or ", defaults only"), qubits)
    minutes = (time.perf_counter() - started) / 60
    header = [f"# Defaults on the {args.suite} suite", "",
              f"`python benchmarks/defaults.py {' '.join(argv if argv is not None else sys.argv[1:])}` — "
              f"{dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, {minutes:.1f} min "
              f"(load average at the end {os.getloadavg()[0]:.1f}).", "",
              "Only the problem is given (backend `exact`); everything else is the tool's default. Seeds "
              f"{args.seeds}; per instance the median over seeds. Lift = P(optimum) ÷ the P(optimum) of uniform sampling "
              "over the states the circuit reaches. The defaults were chosen on the `train` suite "
              "(benchmarks/suites.yaml); the `heldout` suite shares no window and no ticker list with it.", "",
              "Aims: " + "; ".join(f"{k[0]} {k[1]}: {v}" for k, v in AIMS.items()) + ".", "",
              "Integer shares: qubits of the slack encoding / of the slack-free one (this checkout's encoder) → "
              "the qubits the run used.", ""]
    published = ["### Published figures on instances of this size", "", "| source | instance | figure |", "|---|---|---|",
                 *[f"| {a} | {b} | {c} |" for a, b, c in PUBLISHED], ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (f"defaults_{args.suite}" + "".join(f"_{k}-{v}" for k, v in extra.items()) + ".md")
    path.write_text("\n".join(header + sections + published))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
