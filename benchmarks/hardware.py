"""The defaults on noise models of real devices: the suite with only the problem and the target given.

    python benchmarks/hardware.py [--suite heldout|train] [--targets aer_noisy:fake_fez exact ...]
                                  [--seeds 1 2 3] [--kinds selection integer_shares] [--max-assets 12]
                                  [--max-qubits 16] [--shots 4096] [--integer-shots 1024]
                                  [--out results/benchmarks] [--tables-only]

Every instance of ``benchmarks/suites.yaml``'s suite (selection N = 6–12; integer shares up to
``--max-qubits`` qubits) runs with the tool's defaults on each target, crossed with the seeds, one run at a
time in this process. On a hardware-like target the defaults are the device search (README "On hardware"):
the run records the candidates, the chosen circuit's ISA two-qubit depth, its estimated fidelity and predicted
P(optimum); this script adds the measured fidelity — the weight ``F`` of the depolarised mixture
``F·P_ideal + (1 − F)·U`` (U uniform over 2ⁿ) that best fits the sampled distribution in least squares,
``F = ⟨m − u, i − u⟩ / ⟨i − u, i − u⟩`` — beside the estimate. Lifts are over uniform sampling of the feasible
allocations (``#optimal / #feasible``), raw and post-selected.

Records go to ``<out>/hardware_<suite>.jsonl`` as they finish (a rerun skips what is there); the tables to
``<out>/hardware_<suite>.md``, beside the whole-share runs of the device search before its product candidate
(``hardware_<suite>_qaoa_only.jsonl``: the same command on the commit before it). Whole-share runs made with
slack encoding (before issue 22) are kept in ``hardware_<suite>_slack.jsonl``; ``--max-qubits`` filters by the
instance name's qubit count, which is the slack encoding's. On the training suite the tables end with the fidelity exponent α that makes
``F_est^α`` match the measured fidelities (median of ``ln F_meas / ln F_est``), the setting
:data:`qportfolio.backends.ibm.fidelity.FIDELITY_EXPONENT` takes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from qportfolio.app.config import parse_config
from qportfolio.app.experiment import prepare
from qportfolio.backends import make_backend
from qportfolio.backends.ibm.fidelity import FIDELITY_EXPONENT

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "benchmarks" / "suites.yaml"


def config_for(kind: str, instance: dict, target: str, seed: int, shots: int, covariance: str):
    problem = {"kind": kind, "baselines": False}
    problem.update({k: instance[k] for k in (("num_assets", "risk_aversion") if kind == "selection"
                                             else ("budget", "min_return"))})
    raw = {"name": instance["name"], "seed": seed,
           "data": {"source": "sp500", "covariance": covariance,
                    **{k: instance[k] for k in ("assets", "start", "end", "frequency")}},
           "problem": problem, "solver": {"shots": shots, "postprocess": False}, "backend": {"name": target}}
    return parse_config(raw, instance["name"])


def dense(indices, probabilities, size: int) -> np.ndarray:
    out = np.zeros(size)
    np.add.at(out, np.asarray(indices, dtype=np.int64), probabilities)
    return out


def run_one(kind: str, instance: dict, target: str, seed: int, shots: int, covariance: str) -> dict:
    config = config_for(kind, instance, target, seed, shots, covariance)
    _, _, problem = prepare(config)
    started = time.perf_counter()
    result = config.quantum_solver().solve(problem)
    seconds = time.perf_counter() - started
    described = result.to_dict()
    post = described["metrics_postselected"]
    n = result.encoded.num_qubits
    record = {"kind": kind, "instance": instance["name"], "assets": len(instance["assets"]), "qubits": n,
              "target": target, "seed": seed, "shots": shots, "mixer": described["quantum"]["mixer"],
              "constraint_encoding": result.encoded.encoding.constraint_encoding,
              "warm_start": result.warm_start is not None,
              "reps": result.ansatz.reps, "p_optimal": result.p_optimal, "feasible_fraction": result.feasible_fraction,
              "p_optimal_postselected": post["p_optimal"], "shots_kept": post["shots_kept"],
              "uniform_feasible": post["uniform_p_optimal"], "lift_postselected": post["lift"],
              "lift_raw": None if not post["uniform_p_optimal"] else result.p_optimal / post["uniform_p_optimal"],
              "seconds": seconds, "load": os.getloadavg()[0], "fidelity_exponent": FIDELITY_EXPONENT}
    raw = described.get("metrics_raw")
    record["p_optimal_unmitigated"] = raw["p_optimal"] if raw else None
    chosen = (described.get("device_search") or {}).get("chosen")
    if chosen:
        record["mixer"] = chosen["mixer"]  # the circuit the device search sent (ry_product: the VQE product state)
        energies = result.encoded.energies
        exact = make_backend("exact", shots, seed, energies=energies, qubo=result.encoded.encoding.qubo)
        ideal = exact.distributions(result.ansatz.circuit, result.search.parameters)[0]
        i = dense(ideal.indices, ideal.probabilities, 2**n)
        m = dense(result.table.indices, result.table.probabilities, 2**n)
        u = np.full(2**n, 2.0**-n)
        record.update(isa_two_qubit_depth=chosen["two_qubit_depth"], estimated_fidelity=chosen["estimated_fidelity"],
                      measured_fidelity=float((m - u) @ (i - u) / ((i - u) @ (i - u))),
                      ideal_p_optimal=chosen["ideal_p_optimal"], predicted_p_optimal=chosen["predicted_p_optimal"],
                      predicted_p_optimal_postselected=chosen["predicted_p_optimal_postselected"],
                      candidates=described["device_search"]["candidates"])
    return record


def median(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.median(values)) if values else None


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def tables(records: list[dict], suite: str, seeds: list[int]) -> str:
    lines = [f"# Defaults on device noise models ({suite} suite)", "",
             f"Written {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `python benchmarks/"
             f"{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}` (the records: the runs of every command that "
             "appended to the JSONL). Machine: 2 cores shared with other jobs (load average at each run's end in the JSONL, median "
             f"{fmt(median(r['load'] for r in records), 2)}). Only the problem, the target and the shots given. Lifts "
             "over uniform sampling of the feasible allocations; post-selected = the samples whose allocation meets "
             "every constraint. Estimated F: the device search's fidelity model; measured F: the depolarised-mixture "
             "weight fitted to the sampled distribution. Integer shares use the slack-free encoding (issue 22)" + (
                 f"; the runs made before it, with slack qubits (13–16), are kept in `hardware_{suite}_slack.jsonl`."
                 if (ROOT / "results" / "benchmarks" / f"hardware_{suite}_slack.jsonl").exists() else "."), ""]
    targets = sorted({r["target"] for r in records}, key=lambda t: (t == "exact", t))
    lines += ["## Run by run (median over seeds)", "",
              "| target | instance | qubits | circuit | ISA 2q depth | est. F | meas. F | predicted P(opt) | P(opt) raw "
              "| P(opt) post-selected | kept | lift raw | lift post-selected | seeds |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for target in targets:
        for name in sorted({r["instance"] for r in records if r["target"] == target}):
            rs = [r for r in records if r["target"] == target and r["instance"] == name]
            circuits = sorted({f"{r['mixer']}{' warm' if r.get('warm_start') else ''} p={r['reps']}" for r in rs})
            lines.append(
                f"| {target} | {name} | {rs[0]['qubits']} | {', '.join(circuits)} | "
                f"{fmt(median(r.get('isa_two_qubit_depth') for r in rs))} | "
                f"{fmt(median(r.get('estimated_fidelity') for r in rs))} | {fmt(median(r.get('measured_fidelity') for r in rs))} | "
                f"{fmt(median(r.get('predicted_p_optimal') for r in rs))} | {fmt(median(r['p_optimal'] for r in rs))} | "
                f"{fmt(median(r['p_optimal_postselected'] for r in rs))} | {fmt(median(r['feasible_fraction'] for r in rs))} | "
                f"{fmt(median(r['lift_raw'] for r in rs))} | {fmt(median(r['lift_postselected'] for r in rs))} | {len(rs)} |")
    lines += ["", "## Against the aims (medians over runs)", "",
              "| target | group | runs | median P(opt) raw | median lift post-selected | median lift raw | "
              "predicted within 2× of measured |", "|---|---|---:|---:|---:|---:|---:|"]
    groups = [("selection N ≤ 10", lambda r: r["kind"] == "selection" and r["assets"] <= 10),
              ("selection N = 11–12", lambda r: r["kind"] == "selection" and r["assets"] > 10),
              ("whole shares, ≤ 16 qubits with slack (name's qN)",
               lambda r: r["kind"] == "integer_shares" and int(r["instance"].rsplit("_q", 1)[1]) <= 16),
              ("whole shares, every instance", lambda r: r["kind"] == "integer_shares")]
    baseline = [dict(r, target=f"{r['target']} (QAOA candidates only)") for r in qaoa_only(suite)]
    for target in targets + sorted({r["target"] for r in baseline}):
        for label, keep in groups:
            rs = [r for r in records + baseline if r["target"] == target and keep(r)]
            if not rs:
                continue
            predicted = [r for r in rs if r.get("predicted_p_optimal") is not None]
            within = sum(1 for r in predicted if r["p_optimal"] > 0 and 0.5 <= r["predicted_p_optimal"] / r["p_optimal"] <= 2)
            share = f"{within}/{len(predicted)}" if predicted else "—"
            lines.append(f"| {target} | {label} | {len(rs)} | {fmt(median(r['p_optimal'] for r in rs))} | "
                         f"{fmt(median(r['lift_postselected'] for r in rs))} | {fmt(median(r['lift_raw'] for r in rs))} | "
                         f"{share} |")
    if suite != "train":  # α is chosen on the training suite only: no fit is offered on another
        return "\n".join(lines) + "\n"
    for label, keep in (("selection", lambda r: r["kind"] == "selection"), ("every run", lambda r: True)):
        fit = exponent_fit([r for r in records if r.get("predicted_p_optimal") and r["p_optimal"] > 0 and keep(r)])
        if fit:
            lines += ["", f"Fidelity exponent fitted on P(optimum), {label}: " + ", ".join(
                f"α = {a:g}: mean squared ln(measured / predicted) {e:.4f}" for a, e in fit) + "."]
    fitted = [math.log(r["measured_fidelity"]) / math.log(r["estimated_fidelity"]) for r in records
              if r.get("measured_fidelity") and 0 < r["measured_fidelity"] < 1 and 0 < r.get("estimated_fidelity", 0) < 1]
    if fitted:
        lines += ["", f"Fidelity exponent α = median(ln F_meas / ln F_est) over {len(fitted)} runs: "
                      f"**{np.median(fitted):.3f}** (quartiles {np.quantile(fitted, 0.25):.3f}–{np.quantile(fitted, 0.75):.3f})."]
    return "\n".join(lines) + "\n"


def qaoa_only(suite: str) -> list[dict]:
    """Whole-share runs of the device search before the product candidate (QAOA candidates only, the same
    slack-free encoding; ``hardware_<suite>_qaoa_only.jsonl``): the yardstick the product state is measured by."""
    path = ROOT / "results" / "benchmarks" / f"hardware_{suite}_qaoa_only.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def exponent_fit(records: list[dict], exponents=(0.7, 0.8, 0.9, 1.0, 1.1)) -> list[tuple[float, float]]:
    """For each exponent α: the mean squared ln(measured / predicted P(optimum)) had the runs predicted with
    ``F_model^α`` (``F_model`` recovered from the recorded estimate and the exponent it was made with)."""
    out = []
    for alpha in exponents:
        errors = []
        for r in records:
            used = r.get("fidelity_exponent", 1.0)
            fidelity, ideal = r["estimated_fidelity"], r["ideal_p_optimal"]
            if not 0 < fidelity < 1:
                continue
            noise = (r["predicted_p_optimal"] - fidelity * ideal) / (1 - fidelity)
            model = fidelity ** (alpha / used)
            errors.append(math.log(r["p_optimal"] / (model * ideal + (1 - model) * noise)))
        if errors:
            out.append((alpha, float(np.mean(np.square(errors)))))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="heldout", help="a suite of --suite-file: train, heldout (suites.yaml) "
                        "or fresh (suites_fresh.yaml: drawn after the defaults were chosen)")
    parser.add_argument("--suite-file", default=str(SUITES))
    parser.add_argument("--targets", nargs="+", default=["aer_noisy:fake_fez", "aer_noisy:fake_sherbrooke", "exact"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--kinds", nargs="+", default=["selection", "integer_shares"])
    parser.add_argument("--instances", nargs="*", default=None, help="only these instance names")
    parser.add_argument("--max-assets", type=int, default=12)
    parser.add_argument("--max-qubits", type=int, default=16, help="integer shares: instances up to this many qubits")
    parser.add_argument("--shots", type=int, default=4096, help="shots of a selection run")
    parser.add_argument("--integer-shots", type=int, default=1024,
                        help="shots of an integer-shares run (13–16 qubits: Aer's noisy trajectories cost ∝ shots)")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args(argv)
    suites = yaml.safe_load(Path(args.suite_file).read_text())
    if args.suite not in suites:
        parser.error(f"{args.suite_file} has no suite {args.suite!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"hardware_{args.suite}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    done = {(r["instance"], r["target"], r["seed"]) for r in records}
    if not args.tables_only:
        for kind in args.kinds:
            for instance in suites[args.suite].get(kind, []):
                if args.instances and instance["name"] not in args.instances:
                    continue
                if kind == "selection" and len(instance["assets"]) > args.max_assets:
                    continue
                if kind == "integer_shares" and int(instance["name"].rsplit("_q", 1)[1]) > args.max_qubits:
                    continue
                for target in args.targets:
                    for seed in args.seeds:
                        if (instance["name"], target, seed) in done:
                            continue
                        shots = args.shots if kind == "selection" else args.integer_shots
                        record = run_one(kind, instance, target, seed, shots, suites.get("covariance", "sample"))
                        records.append(record)
                        with path.open("a") as handle:
                            handle.write(json.dumps(record) + "\n")
                        print(f"{record['instance']} {target} seed {seed}: {record['mixer']} p={record['reps']} "
                              f"P(opt) {record['p_optimal']:.4f} post-selected {fmt(record['p_optimal_postselected'])} "
                              f"predicted {fmt(record.get('predicted_p_optimal'))} ({record['seconds']:.0f} s)",
                              file=sys.stderr, flush=True)
    (out / f"hardware_{args.suite}.md").write_text(tables(records, args.suite, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
