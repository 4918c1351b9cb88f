"""Calibrate the cost model of noisy simulation (``aer_noisy:*``, ``ibm_fake:*``) on this machine.

Times noisy Aer jobs of QAOA circuits (random dense QUBOs, X mixer) transpiled for ``fake_fez``, by the
density matrix and by statevector trajectories, and fits ``seconds = overhead + per_op·work + per_amplitude·work·size`` per method (statevector
``work = circuits·shots·ops^β``, ``size = 2ⁿ``; density matrix ``work = circuits·ops``, ``size = 4ⁿ``; ``n``
active qubits, ``ops`` ISA operations) by nonnegative least squares on the relative error, β by a grid. Also times the worker process's
start and one ``ibm_fake`` job (the runtime's local testing mode, in the worker a first job started), whose excess over the model is the
per-job constant. The constants go into ``src/qportfolio/backends/ibm/noisy.py`` by hand.

    PYTHONPATH=src python benchmarks/noisy_cost.py --repeats 2   # about 5 minutes on 2 shared cores
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from qportfolio.backends.ibm import make_hardware_backend
from qportfolio.backends.ibm.noisy import (
    IBM_FAKE_JOB_SECONDS,
    NOISY_COST,
    _run_chunks,
    _Worker,
    compact_circuit,
    DEPTH_EXPONENT,
    estimate_job_seconds,
    isa_operations,
)
from qportfolio.circuits import qaoa_ansatz
from qportfolio.encoding import Qubo

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "noisy_cost.md"
#: (method, logical qubits, p, shots)
CASES = [("density_matrix", 4, 1, 256), ("density_matrix", 6, 1, 256), ("density_matrix", 8, 1, 256),
         ("density_matrix", 8, 2, 1024), ("density_matrix", 10, 1, 256),
         ("statevector", 6, 1, 256), ("statevector", 8, 1, 256), ("statevector", 10, 1, 128),
         ("statevector", 11, 1, 256), ("statevector", 12, 1, 64), ("statevector", 8, 4, 128),
         ("statevector", 12, 2, 32), ("statevector", 12, 4, 16), ("statevector", 14, 1, 16)]


def circuit(n: int, p: int):
    rng = np.random.default_rng(n)
    operator, _ = Qubo(np.triu(rng.normal(size=(n, n)), 1), rng.normal(size=n), 0.0).to_ising()
    ansatz = qaoa_ansatz(operator, p)
    return ansatz.circuit, rng.uniform(0, 1, ansatz.circuit.num_parameters)


def time_case(method: str, n: int, p: int, shots: int, repeats: int) -> dict:
    backend = make_hardware_backend("aer_noisy:fake_fez", shots, 1, aer_method=method)
    logical, theta = circuit(n, p)
    compiled = backend.compile(logical)
    active, ops = isa_operations(compiled.isa)
    simulator = backend._simulator(active)
    pubs = [(compact_circuit(compiled.isa, active), compiled.parameter_array(theta[None, :]))]
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        _run_chunks(simulator, pubs, [shots], 1)
        best = min(best, time.perf_counter() - started)
    return {"method": method, "n": len(active), "p": p, "ops": ops, "shots": shots, "seconds": best}


def units(row: dict, exponent: float) -> tuple[float, float]:
    if row["method"] == "density_matrix":
        return float(row["ops"]), 4.0 ** row["n"]
    return row["shots"] * row["ops"] ** exponent, 2.0 ** row["n"]


def fit(rows: list[dict]) -> tuple[float, ...]:
    """``(overhead, per_op, per_amplitude, β)`` ≥ 0 minimising Σ((model − t)/t)² (β = 1 for the density matrix)."""
    from scipy.optimize import nnls

    t = np.array([r["seconds"] for r in rows])
    best = None
    for exponent in ([1.0] if rows[0]["method"] == "density_matrix" else np.arange(1.0, 2.01, 0.05)):
        work, size = np.array([units(r, exponent) for r in rows]).T
        design = np.column_stack([np.ones_like(t), work, work * size]) / t[:, None]
        scale = design.max(axis=0)
        solution, residual = nnls(design / scale, np.ones_like(t))
        if best is None or residual < best[0]:
            best = (residual, (*(float(v) for v in solution / scale), float(exponent)))
    return best[1]


def model(constants, row) -> float:
    overhead, per_op, per_amplitude, exponent = constants
    work, size = units(row, exponent)
    return overhead + per_op * work + per_amplitude * work * size


def in_code(method: str) -> tuple[float, ...]:
    return (*NOISY_COST[method], DEPTH_EXPONENT if method == "statevector" else 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    load_start = os.getloadavg()
    rows = []
    for case in CASES:
        rows.append(time_case(*case, args.repeats))
        r = rows[-1]
        print(f"{r['method']:<15} n={r['n']:<3} p={r['p']} ops={r['ops']:<6} shots={r['shots']:<5} {r['seconds']:.2f} s",
              flush=True)
    fitted = {m: fit([r for r in rows if r["method"] == m]) for m in ("statevector", "density_matrix")}

    started = time.perf_counter()
    worker = _Worker()
    backend = make_hardware_backend("aer_noisy:fake_fez", 64, 1)
    logical, theta = circuit(4, 1)
    compiled = backend.compile(logical)
    active, ops = isa_operations(compiled.isa)
    pubs = [(compact_circuit(compiled.isa, active), compiled.parameter_array(theta[None, :]))]
    worker.run(_run_chunks, active, backend._simulator(active), (pubs, [64], 1), lambda done: None)
    worker_seconds = time.perf_counter() - started
    worker.kill()

    fake = make_hardware_backend("ibm_fake:fake_fez", 256, 1, mitigation="none")
    logical, theta = circuit(6, 1)
    fake.sample(logical, theta, 256)  # starts the worker process that ibm_fake jobs run in: time a second job
    started = time.perf_counter()
    fake.sample(logical, theta, 256)
    fake_seconds = time.perf_counter() - started
    active, ops = isa_operations(fake.compile(logical).isa)
    fake_model = estimate_job_seconds(len(active), ops, 256, 1, "density_matrix")  # Aer's automatic: 256 > 2⁶
    load_end = os.getloadavg()

    lines = [
        "# Noisy simulation cost (aer_noisy, ibm_fake)", "",
        f"`PYTHONPATH=src python benchmarks/noisy_cost.py --repeats {args.repeats}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} cores shared with other jobs: load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} "
        "at the end. QAOA (X mixer, random dense QUBO) transpiled for fake_fez (optimization level 2), the noise "
        "model restricted to the active qubits; each time is one job (best of the repeats) on a built simulator.", "",
        "Model: seconds = overhead + per_op·work + per_amplitude·work·size; statevector trajectories: work = "
        "shots·ops^β, size = 2ⁿ; density matrix: work = ops, size = 4ⁿ (n active qubits, ops ISA operations).", "",
        "| method | active qubits | p | ISA ops | shots | measured s | fitted model s | measured / fitted | "
        "model in code s | measured / code |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fitted_s, code_s = model(fitted[r["method"]], r), model(in_code(r["method"]), r)
        lines.append(f"| {r['method']} | {r['n']} | {r['p']} | {r['ops']} | {r['shots']} | {r['seconds']:.2f} | "
                     f"{fitted_s:.2f} | {r['seconds'] / fitted_s:.2f} | {code_s:.2f} | {r['seconds'] / code_s:.2f} |")
    lines += ["", "| method | fitted (overhead s, per_op s, per_amplitude s, β) | in code (NOISY_COST, DEPTH_EXPONENT) |",
              "|---|---|---|"]
    for method, constants in fitted.items():
        lines.append(f"| {method} | ({', '.join(f'{v:.3g}' for v in constants)}) | {in_code(method)} |")
    lines += ["", f"Worker process start and a first 64-shot job of 4 qubits: {worker_seconds:.2f} s.",
              f"One ibm_fake:fake_fez job (6 qubits, p = 1, 256 shots, local testing mode): {fake_seconds:.2f} s, of "
              f"which the model's simulation {fake_model:.2f} s: {fake_seconds - fake_model:.2f} s per job on top "
              f"(IBM_FAKE_JOB_SECONDS in code: {IBM_FAKE_JOB_SECONDS})."]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
