"""Levers for whole shares on a device, measured on the training suite's integer-share instances (ideal: the
exact simulator, no noise), to choose the device search's settings without the held-out suite.

    python benchmarks/hardware_levers.py [--suite train] [--out results/benchmarks]

For every instance (the slack-free encoding the defaults pick, the target ``aer_noisy:fake_fez``'s device
search) it reports the post-selected lift over uniform sampling of the feasible allocations, ideal:

* the device search's QAOA candidates (X mixer from |+⟩ⁿ and warm-started, p = 1–3), the one it would choose
  without the product candidate marked;
* (a)+(c) hardware-efficient circuits trained by CVaR on the exact simulator: the RY product state
  (real_amplitudes, reps 0) and real_amplitudes reps 1 (linear CX), each from the warm-start state and from the
  uniform state, under CVaR schedules (α raised stage by stage, the start with the lower final objective kept);
* (b) the warm-start ε of the X-mixer candidates (p = 1, 2).

Writes ``<out>/hardware_levers_<suite>.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from qportfolio.app.experiment import prepare
from qportfolio.backends import make_backend
from qportfolio.circuits import vqe_ansatz
from qportfolio.classical import solve_exact
from qportfolio.evaluation import decode_samples, postselected_metrics, quality_metrics
from qportfolio.optimize.hardware_efficient import annealed_cvar
from qportfolio.optimize.energy_table import EnergyTable
from qportfolio.optimize.runner import VariationalRunner
from qportfolio.optimize.search import adaptive_search, best_candidate
from qportfolio.optimize.solver import WORK_BUDGET, _optimal_count, _work_per_evaluation
from qportfolio.warmstart import warm_start_probabilities

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import ROOT, SUITES, config_for  # noqa: E402

TARGET = "aer_noisy:fake_fez"
SCHEDULES = {"0.05": (0.05,), "0.2": (0.2,), "0.5": (0.5,), "0.2→0.5": (0.2, 0.5),
             "0.05→0.2→0.5": (0.05, 0.2, 0.5), "0.1→0.25→0.5→0.75": (0.1, 0.25, 0.5, 0.75),
             "0.1→0.3→1": (0.1, 0.3, 1.0), "0.05→0.2→0.5→1": (0.05, 0.2, 0.5, 1.0)}
EPSILONS = (0.25, 0.15, 0.05)


def lift(distribution, encoding, problem, exact) -> float:
    table = decode_samples(distribution, encoding, problem)
    post = postselected_metrics(table, exact.objective, exact.worst_feasible_objective, _optimal_count(exact),
                                exact.num_feasible)
    return post["lift"] or 0.0


def instance_rows(instance: dict, covariance: str) -> dict:
    config = config_for("integer_shares", instance, TARGET, 1, 1024, covariance)
    _, _, problem = prepare(config)
    solver = config.quantum_solver().resolved(problem)
    exact = solve_exact(problem, 60, 1)
    encoded = solver.encode(problem, exact.vector, optimal_objective=exact.objective)
    encoding, n = encoded.encoding, encoded.encoding.num_qubits
    trainer = make_backend("exact", 1024, 1, energies=encoded.energies, qubo=encoding.qubo)
    table = EnergyTable(encoding.qubo.energies, n, encoded.energies)
    row = {"instance": instance["name"], "qubits": n, "feasible": exact.num_feasible}
    backend = solver.make_backend(encoded.energies, None, encoding.qubo)
    candidates, _ = solver.device_candidates(problem, encoded, exact, backend)
    qaoa = [c for c in candidates if c.form is None]
    chosen = best_candidate(qaoa)
    row["qaoa"] = {f"{c.mixer}{' warm' if c.warm_start else ''} p={c.reps}":
                   lift(trainer.distributions(c.ansatz.circuit, c.parameters)[0], encoding, problem, exact) for c in qaoa}
    row["qaoa_chosen"] = f"{chosen.mixer}{' warm' if chosen.warm_start else ''} p={chosen.reps}"
    qubo = encoding.qubo
    scale = max(float(np.max(np.abs(qubo.quadratic), initial=0.0)), float(np.max(np.abs(qubo.linear)))) or 1.0
    warm = warm_start_probabilities(problem, encoding, solver.warm_start_epsilon)
    base = [2 * np.arcsin(np.sqrt(warm)), np.full(n, np.pi / 2)]
    for form, reps in (("ry_product", 0), ("real_amplitudes reps 1", 1)):
        ansatz = dataclasses.replace(vqe_ansatz(n, reps, "real_amplitudes", "linear"), cost_scale=scale)
        starts = base if reps == 0 else [np.concatenate([np.zeros(n), b]) for b in base]
        for name, schedule in SCHEDULES.items():
            theta, _ = annealed_cvar(lambda alpha: VariationalRunner(ansatz, trainer, table, "cvar", alpha, "cobyla",
                                                                     300, 1024, 1), starts, schedule)
            distribution = trainer.distributions(ansatz.circuit, theta)[0]
            row[(form, name)] = lift(distribution, encoding, problem, exact)
    for epsilon in EPSILONS:
        s = dataclasses.replace(solver, mixer="x", reps=2, warm_start=True, warm_start_epsilon=epsilon).resolved(problem)
        probabilities = warm_start_probabilities(problem, encoding, epsilon)
        found = []
        adaptive_search(lambda r: s.build_ansatz(problem, encoding, r, probabilities), 2,
                        lambda a: VariationalRunner(a, trainer, table, s.objective, s.cvar_alpha, s.optimizer, s.maxiter,
                                                    s.shots, s.seed, gibbs_eta=s.gibbs_eta),
                        s.maxiter, _work_per_evaluation(n, None, True), WORK_BUDGET, lambda r: None,
                        on_depth=lambda a, th, v: found.append((a, np.array(th))))
        for a, th in found:
            row[("epsilon", epsilon, a.reps)] = lift(trainer.distributions(a.circuit, th)[0], encoding, problem, exact)
    return row


def summary(values: list[float]) -> str:
    return f"{np.median(values):.3g} ({sum(v >= 3 for v in values)}/{len(values)} ≥ 3; min {min(values):.3g})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=("train", "heldout"), default="train")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    args = parser.parse_args(argv)
    suites = yaml.safe_load(SUITES.read_text())
    started = time.perf_counter()
    rows = []
    for instance in suites[args.suite]["integer_shares"]:
        rows.append(instance_rows(instance, suites.get("covariance", "sample")))
        print(f"{instance['name']}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    lines = [f"# Whole-share levers for the device search ({args.suite} suite, ideal)", "",
             f"`python benchmarks/hardware_levers.py --suite {args.suite}` ({time.perf_counter() - started:.0f} s on a "
             "shared 2-core machine). Post-selected lift = P(optimum | the allocation meets every constraint) over "
             "1/#feasible allocations, on the exact simulator (no noise); encodings and candidates as the defaults "
             f"make them for `{TARGET}`. Medians over instances, then (instances with lift ≥ 3; the lowest).", "",
             "## Per instance", "",
             "| instance | qubits | feasible | QAOA chosen (without the product) | its lift | best QAOA lift | RY product, "
             "0.05→0.2→0.5→1 | real_amplitudes reps 1, 0.05→0.2→0.5→1 |", "|---|---:|---:|---|---:|---:|---:|---:|"]
    final = "0.05→0.2→0.5→1"
    for r in rows:
        lines.append(f"| {r['instance']} | {r['qubits']} | {r['feasible']} | {r['qaoa_chosen']} | "
                     f"{r['qaoa'][r['qaoa_chosen']]:.3g} | {max(r['qaoa'].values()):.3g} | {r[('ry_product', final)]:.3g} | "
                     f"{r[('real_amplitudes reps 1', final)]:.3g} |")
    lines += ["", "## Against each other (median ideal post-selected lift over the instances)", "",
              "| lever | setting | median lift |", "|---|---|---|",
              f"| device search today (QAOA candidates) | the candidate it picks | {summary([r['qaoa'][r['qaoa_chosen']] for r in rows])} |"]
    for form in ("ry_product", "real_amplitudes reps 1"):
        for name in SCHEDULES:
            lines.append(f"| (a)+(c) {form}, CVaR | α {name} | {summary([r[(form, name)] for r in rows])} |")
    for epsilon in EPSILONS:
        for p in (1, 2):
            values = [r[("epsilon", epsilon, p)] for r in rows if ("epsilon", epsilon, p) in r]
            lines.append(f"| (b) warm start ε, X mixer | ε = {epsilon}, p = {p} | {summary(values)} |")
    out = Path(args.out)
    (out / f"hardware_levers_{args.suite}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
