"""``report.md``: the run's result in a page a person reads."""

from __future__ import annotations


def _number(value, digits: int = 6) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _allocation(allocation) -> str:
    """Holdings to 4 significant digits; a solver's round-off (|w| < 1e-6, e.g. 4.4e-09) shows as 0."""
    if not allocation:
        return "—"
    return ", ".join(f"{k} {_number(0 if isinstance(v, float) and abs(v) < 1e-6 else v, 4)}"
                     for k, v in allocation.items())


#: scipy's stopping messages in plain words (the optimizer stopping on its budget is not a failure: the run's
#: answer is judged by its samples, not by whether the optimizer converged).
_OPTIMIZER_MESSAGES = {
    "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT": "stopped at its evaluation budget",
    "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT": "stopped at its iteration budget",
    "Maximum number of function evaluations has been exceeded.": "stopped at its evaluation budget",
    "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH": "converged (the objective stopped improving)",
    "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL": "converged (the gradient vanished)",
    "Optimization terminated successfully.": "converged",
}


def _quantum_line(key: str, value) -> str:
    if key == "optimizer_message" and isinstance(value, str):
        plain = _OPTIMIZER_MESSAGES.get(value.strip())
        return f"- optimizer stop: {plain} (scipy: `{value}`)" if plain else f"- optimizer stop: `{value}`"
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return f"- {key}: [" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return f"- {key}: {_number(value) if not isinstance(value, (list, dict)) else value}"


def solutions_table(result: dict) -> str:
    rows = ["| method | allocation | objective | variance | expected return | cost | feasible |",
            "|---|---|---|---|---|---|---|"]
    for name, entry in (result.get("solutions") or {}).items():
        if entry is None:
            continue
        rows.append(f"| {name} | {_allocation(entry.get('allocation'))} | {_number(entry.get('objective'))} | "
                    f"{_number(entry.get('variance'))} | {_number(entry.get('expected_return'))} | "
                    f"{_number(entry.get('cost'))} | {_number(entry.get('feasible'))} |")
    return "\n".join(rows)


def write_report(result: dict) -> str:
    problem = result.get("problem", {})
    lines = [f"# {result.get('name')}", "", f"Status: **{result.get('status')}**", ""]
    lines += ["## Problem", "", f"- kind: `{problem.get('kind')}`", f"- assets: {', '.join(problem.get('assets', []))}",
              f"- objective: {problem.get('objective')}"]
    for key in ("budget", "min_return", "max_shares", "num_assets", "risk_aversion", "target_return"):
        if problem.get(key) is not None:
            lines.append(f"- {key}: {problem[key]}")
    data = result.get("data", {})
    if data:
        lines.append(f"- data: {data.get('first_date')} to {data.get('last_date')}, {data.get('periods')} "
                     f"{data.get('frequency')} periods, {data.get('covariance')} covariance")
    lines += ["", "## Answers", "", solutions_table(result), ""]
    if result.get("metrics"):
        m = result["metrics"]
        lines += ["## Quantum quality", "", f"- p_optimal: {_number(m['p_optimal'], 4)}",
                  f"- feasible_fraction: {_number(m['feasible_fraction'], 4)}",
                  f"- approximation_ratio: {_number(m['approximation_ratio'], 4)}",
                  f"- lift over uniform sampling of the {m.get('reachable_states')} reachable states: "
                  f"{_number(m.get('lift'), 4)} (uniform P(optimum) {_number(m.get('uniform_p_optimal'), 4)}; the "
                  "`random_sampling` row draws the same shots uniformly)", ""]
        ps = result.get("metrics_postselected")
        if ps:
            lines += [f"Post-selected (only the samples whose allocation meets every constraint: {_number(ps.get('shots_kept'))} "
                      f"of {_number(ps.get('shots'))} shots, {_number(ps.get('kept_fraction'), 4)} of the probability): "
                      f"p_optimal {_number(ps.get('p_optimal'), 4)}, approximation_ratio "
                      f"{_number(ps.get('approximation_ratio'), 4)}, lift {_number(ps.get('lift'), 4)} over uniform "
                      f"sampling of the {_number(ps.get('feasible_allocations'))} feasible allocations "
                      f"(metrics_postselected; the figures above are raw).", ""]
        if result.get("metrics_raw"):
            r = result["metrics_raw"]
            lines += [f"Before readout mitigation: p_optimal {_number(r['p_optimal'], 4)}, feasible_fraction "
                      f"{_number(r['feasible_fraction'], 4)}, approximation_ratio {_number(r['approximation_ratio'], 4)} "
                      "(samples_raw.csv).", ""]
    hardware = result.get("hardware")
    if hardware:
        lines += ["## Hardware", "", f"- device: {hardware.get('device')} ({hardware.get('device_qubits')} qubits), "
                  f"layout {hardware.get('layout')}",
                  f"- ISA depth {hardware.get('depth')}, two-qubit gates {hardware.get('two_qubit_gate_count')}, "
                  f"estimated success probability {_number(hardware.get('estimated_success_probability'), 3)}",
                  f"- estimated QPU seconds (whole run): {_number(hardware.get('estimated_qpu_seconds'), 4)}", ""]
    device = result.get("device_search")
    if device:
        lines += ["## Device search", "", device.get("rule", ""), "",
                  "| mixer | p | ISA 2q depth | ISA 2q gates | estimated fidelity | ideal P(optimum) | predicted P(optimum) "
                  "| predicted post-selected |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in device.get("candidates", []):
            mark = " (chosen)" if c == device.get("chosen") else ""
            lines.append(f"| {c['mixer']}{' warm' if c.get('warm_start') else ''}{mark} | {c['reps']} | {c['two_qubit_depth']} | {c['two_qubit_gates']} | "
                         f"{_number(c['estimated_fidelity'], 3)} | {_number(c['ideal_p_optimal'], 3)} | "
                         f"{_number(c['predicted_p_optimal'], 3)} | {_number(c['predicted_p_optimal_postselected'], 3)} |")
        lines.append("")
    encoding = result.get("encoding")
    if encoding:
        lines += ["## Encoding", "", f"- qubits: {encoding['qubits']} ({encoding['decision_qubits']} decision, "
                  f"{encoding['slack_qubits']} slack)", f"- constraint encoding: {encoding['constraint_encoding']}",
                  f"- integer encoding: {encoding['integer_encoding']}"]
        choice = encoding.get("choice")
        if choice and choice.get("qubits"):
            lines.append(f"- qubits saved against slack: {_number(choice.get('qubits_saved'))} (slack "
                         f"{_number(choice['qubits'].get('slack'))}, without slack {choice['qubits'].get('no_slack')}; "
                         f"{choice.get('reason')}; checked by {choice.get('checked_by')})")
        for c in encoding["constraints"]:
            linear = f", linear penalty {_number(c['linear_penalty'])}" if "linear_penalty" in c else ""
            lines.append(f"- constraint `{c['name']}` ({c['sense']}): {c['encoding']}, penalty {_number(c['penalty'])}"
                         f"{linear}, resolution {_number(c['resolution'])}, {c['slack_qubits']} slack qubits")
        check = encoding.get("verification")
        if check:
            lines.append(f"- ground-state check: {check['reason']}")
        lines.append("")
    quantum = result.get("quantum")
    if quantum:
        lines += ["## Quantum run", ""] + [_quantum_line(k, v) for k, v in quantum.items()] + [""]
    if result.get("figures"):
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in result["figures"]] + [""]
    timing = result.get("timing", {})
    lines += ["## Timing (seconds)", ""] + [f"- {k}: {v:.3f}" for k, v in timing.items()] + [""]
    prov = result.get("provenance", {})
    lines += ["## Provenance", "", f"- seed: {prov.get('seed')}", f"- config sha256: `{prov.get('config_sha256')}`",
              "- packages: " + ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items()), ""]
    if result.get("note"):
        lines += [f"> {result['note']}", ""]
    if result.get("error"):
        lines += [f"**Error:** {result['error']}", ""]
    return "\n".join(lines)
