"""Classical baselines for a discrete instance, each judged exactly like the quantum answer.

:func:`run_baselines` runs every method below on the same instance and returns one result entry per
method (the keys of ``result.json → solutions.<method>``): the contract keys ``allocation``,
``objective``, ``variance``, ``expected_return``, ``cost``, ``feasible`` (from ``problem.evaluate`` on
the *original* constrained problem), plus ``time_s``, ``status`` (``ok`` | ``timeout`` | ``failed`` |
``infeasible``), ``message`` when something is worth saying, ``gap_to_optimum`` (objective − proven
optimum, when an optimum is known) and each method's extras. A method that fails never stops the others.

Methods (lower objective is better everywhere):

* ``scip`` — the exact answer from a mixed-integer solver: the convex MIQP of the original problem
  (:func:`qportfolio.classical.scip_solve`). Extras: ``proven_optimal`` (SCIP status optimal and a zero
  gap), ``gap`` (SCIP's relative MIP gap), ``bound`` (its proven lower bound), ``scip_status``,
  ``nodes`` and, when enumeration also ran, ``matches_enumeration`` (the cross-check).
* ``relax_round`` — what a practitioner does without an integer solver. integer_shares: solve the
  continuous relaxation (real shares in ``[0, U]``, same budget and return floor; cvxpy + Clarabel), round
  every position *down* (that keeps the budget), then repair: while the return floor is missed, apply the
  move — add one share, or swap one share of one asset for one of another — that raises the expected
  return at the least objective cost per dollar of return, stays within budget and keeps the floor
  reachable; finally spend what is left one share at a time while that lowers the objective. selection: keep the ``K`` assets with the
  largest relaxed weights. Extras: ``relaxation_bound`` (the relaxation's optimum, a lower bound on the
  integer optimum up to solver tolerance), ``rounding``.
* ``greedy`` — constructive, on the original constraints (no QUBO, no penalties). integer_shares: from
  no shares, add one share at a time, the affordable one with the least objective increase per dollar of
  expected return until the return floor is met (if any; a share is only a candidate if the floor stays
  reachable with the budget left, by a fractional-knapsack look-ahead; when whole shares no longer fit,
  one-for-one swaps are allowed too); then keep adding the affordable share that lowers the objective
  most, while one does. selection: add the asset that raises ``q·xᵀΣx − μᵀx`` least
  until ``K`` are held.
* ``simulated_annealing`` and ``tabu`` — dwave-samplers on a QUBO of the problem *as posed*
  (:func:`sampler_encoding`): the QUBO the quantum side sees (same penalties, same slack registers) when
  it penalises every constraint; when the circuit keeps a constraint by construction and its penalty was
  dropped (selection's ``1ᵀx = K`` under an XY mixer), the problem re-encoded with every constraint
  penalised, calibrated so that the ground state is the feasible optimum. Every read is decoded with
  ``encoding.decode`` and judged on the original problem; the answer is the best *feasible* decoded
  read, as for the quantum answer. Extras: ``qubo`` (which QUBO), ``num_reads``, ``best_qubo_energy``
  (lowest energy over the reads), ``feasible_fraction`` of the reads and, when the exact answer is known,
  ``p_optimal`` and ``approximation_ratio`` computed by :func:`qportfolio.evaluation.quality_metrics` (the
  quantum metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from qportfolio.choices import ClassicalMethod, check_choice
from qportfolio.classical import (
    ClassicalSolution,
    greedy,
    optimum_tolerance,
    relax_and_round,
    scip_solve,
)
from qportfolio.classical.solution import method_entry
from qportfolio.encoding import Encoder, QuboEncoding, calibrate_penalties
from qportfolio.errors import (
    ProblemError,
)
from qportfolio.evaluation import SampleTable, quality_metrics
from qportfolio.problems import (
    DiscreteProblem,
    IntegerSharesProblem,
    SelectionProblem,
)

#: Every baseline, in the order :func:`run_baselines` runs them.
METHODS = ClassicalMethod.values()
#: Default reads per sampler (tabu restarts are the costly part, so it gets fewer).
SA_READS, SA_SWEEPS = 100, 1000
TABU_READS, TABU_RESTARTS = 50, 0


# --------------------------------------------------------------------------- the samplers' QUBO


def sampler_encoding(problem: DiscreteProblem, encoding: QuboEncoding | None = None,
                     optimum=None) -> tuple[QuboEncoding, str]:
    """The QUBO the classical samplers solve, every constraint penalised, and a line saying which it is.

    ``encoding`` (the quantum side's) is kept when every constraint it states carries a penalty. A
    constraint with penalty 0 (one the circuit keeps by construction, as the XY mixer keeps ``1ᵀx = K``) is
    penalised again: the problem is re-encoded with the same constraint and integer encodings and slack
    resolutions, its auto penalties calibrated (:func:`calibrate_penalties`: the smallest scale whose
    enumerated ground state is still the feasible optimum, times a margin). With no ``encoding``, the
    :class:`~qportfolio.encoding.Encoder`'s slack encoding of the problem alone: slack resolution the coarsest
    that keeps ``optimum`` (found by enumeration on small instances) feasible, calibrated penalties.
    """
    if encoding is not None:
        dropped = [c.name for c in encoding.constraints if c.penalty == 0 and c.encoding != "redundant"]
        if not dropped:
            return encoding, "the quantum QUBO"
        resolution = {c.name: c.resolution for c in encoding.constraints if c.resolution is not None} or "auto"
        penalised, calibration = calibrate_penalties(problem, encoding.constraint_encoding, resolution,
                                                     encoding.integer_encoding)
        return penalised, (f"the quantum QUBO with the {', '.join(dropped)} penalty restored "
                           f"({calibration.reason})")
    encoded = Encoder(constraint_encoding="slack", qubit_limit=None).encode(problem, optimum, for_circuit=False,
                                                                           check=False)
    return encoded.encoding, f"the problem's QUBO ({encoded.calibration.reason})"


# --------------------------------------------------------------------------- QUBO samplers


def _bqm(encoding: QuboEncoding):
    import dimod

    qubo = encoding.qubo
    return dimod.BinaryQuadraticModel(qubo.linear, qubo.quadratic, qubo.constant, dimod.BINARY)


def _judge_reads(problem: DiscreteProblem, encoding: QuboEncoding, sampleset, exact: ClassicalSolution | None,
                 seconds: float, num_reads: int, **extra) -> dict:
    """Decode every read, judge it on the original problem, keep the best feasible one."""
    variables = list(sampleset.variables)
    order = [variables.index(q) for q in range(encoding.num_qubits)]
    bits = np.asarray(sampleset.record.sample, dtype=np.int64)[:, order]
    counts = np.asarray(sampleset.record.num_occurrences, dtype=float)
    energies = encoding.qubo.energies(bits)
    allocations = encoding.decode(bits)
    evaluation = problem.evaluate(allocations)
    weights = counts / counts.sum()
    extra.update(num_reads=int(num_reads), best_qubo_energy=float(energies.min()),
                 feasible_fraction=min(1.0, float(weights[evaluation.feasible].sum())))
    if exact is not None and exact.worst_feasible_objective is not None:
        table = SampleTable(np.arange(len(bits)), weights, allocations, evaluation, energies, int(counts.sum()),
                            encoding.num_qubits)
        metrics = quality_metrics(table, exact.objective, exact.worst_feasible_objective).describe()
        extra.update({k: min(1.0, v) for k, v in metrics.items() if k != "feasible_fraction"})
    if not np.any(evaluation.feasible):
        return method_entry(problem, None, seconds, "infeasible",
                      f"none of the {int(counts.sum())} reads decodes to a feasible allocation: the penalty may be too "
                      "weak for this sampler", **extra)
    best = int(np.argmin(np.where(evaluation.feasible, evaluation.objective, np.inf)))
    return method_entry(problem, allocations[best], seconds, qubo_energy=float(energies[best]), **extra)


def simulated_annealing(problem: DiscreteProblem, encoding: QuboEncoding, seed: int,
                        exact: ClassicalSolution | None = None, num_reads: int = SA_READS,
                        num_sweeps: int = SA_SWEEPS) -> dict:
    """The ``simulated_annealing`` entry: dwave-samplers' SimulatedAnnealingSampler on the QUBO."""
    from dwave.samplers import SimulatedAnnealingSampler

    started = time.perf_counter()
    sampleset = SimulatedAnnealingSampler().sample(_bqm(encoding), num_reads=num_reads, num_sweeps=num_sweeps,
                                                   seed=int(seed) % 2**32)
    return _judge_reads(problem, encoding, sampleset, exact, time.perf_counter() - started, num_reads,
                        num_sweeps=num_sweeps)


def tabu(problem: DiscreteProblem, encoding: QuboEncoding, seed: int, exact: ClassicalSolution | None = None,
         num_reads: int = TABU_READS, num_restarts: int = TABU_RESTARTS, time_limit: float = 60.0) -> dict:
    """The ``tabu`` entry: dwave-samplers' TabuSampler (multistart tabu search) on the QUBO.

    Each read is one tabu search from its own random start with ``num_restarts`` restarts (reproducible
    with the seed) or its share of ``time_limit``, whichever comes first; a read cut short by the clock
    makes the status ``timeout``. The tenure is ``min(20, N/2)`` for ``N`` qubits (dwave's default is
    ``N/4``): on these penalty-dominated QUBOs, measured on the quickstart instance, that more than
    doubles the share of reads that reach the ground state, while extra restarts do not help at all, so
    the budget goes to independent reads instead.
    """
    from dwave.samplers import TabuSampler

    started = time.perf_counter()
    per_read_ms = max(1, int(1000 * time_limit / max(num_reads, 1)))
    tenure = min(20, encoding.num_qubits // 2)
    sampleset = TabuSampler().sample(_bqm(encoding), num_reads=num_reads, num_restarts=num_restarts,
                                     timeout=per_read_ms, seed=int(seed) % 2**32, tenure=tenure)
    entry = _judge_reads(problem, encoding, sampleset, exact, time.perf_counter() - started, num_reads,
                         num_restarts=num_restarts, tenure=tenure)
    if entry["status"] == "ok" and entry["time_s"] >= time_limit:
        entry["status"] = "timeout"
        entry["message"] = (f"tabu reads were cut at their {per_read_ms} ms share of the {time_limit:g} s time limit: "
                            "raise the time limit")
    return entry


# --------------------------------------------------------------------------- all together


def _scip_entry(problem: DiscreteProblem, exact: ClassicalSolution | None, seed: int, time_limit: float) -> dict:
    outcome = scip_solve(problem, time_limit, seed)
    extra = {"proven_optimal": outcome.proven_optimal, "gap": outcome.gap, "bound": outcome.dual,
             "scip_status": outcome.scip_status, "nodes": outcome.nodes}
    entry = method_entry(problem, outcome.allocation, outcome.seconds, outcome.status, outcome.message, **extra)
    if exact is not None and outcome.allocation is not None:
        agree = abs(entry["objective"] - exact.objective) <= 1e-7 * max(1.0, abs(exact.objective))
        entry["matches_enumeration"] = bool(agree) if outcome.proven_optimal else None
        if outcome.proven_optimal and not agree:
            entry["message"] = (f"cross-check failed: SCIP's proven optimum {entry['objective']:.10g} differs from "
                                f"enumeration's {exact.objective:.10g}")
    return entry


def run_baselines(problem: DiscreteProblem, encoding: QuboEncoding | None, exact: ClassicalSolution | None,
                  seed: int, time_limit: float = 60.0, methods: tuple[str, ...] = METHODS,
                  sa_reads: int = SA_READS, tabu_reads: int = TABU_READS) -> dict[str, dict]:
    """Every baseline in ``methods`` on ``problem``; keys are method names, values result entries.

    ``encoding`` is the QUBO the quantum side sees; the QUBO samplers run on :func:`sampler_encoding` of
    it (of the problem alone when None). ``exact`` the enumeration optimum, or None when the instance is
    too big, in which case SCIP's answer is the reference if SCIP proves it optimal. ``gap_to_optimum`` is
    ``objective − optimum`` for every entry with an allocation whenever a proven optimum is known.
    """
    if not isinstance(problem, (IntegerSharesProblem, SelectionProblem)):
        raise ProblemError(f"classical baselines are for discrete problems, not {problem.kind}: markowitz is solved "
                           "exactly by solve_markowitz")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ProblemError(f"unknown baseline method(s) {unknown}: choose from {', '.join(METHODS)}")
    sampler_qubo: list[tuple[QuboEncoding, str]] = []

    def on_qubo(sampler: Callable[[QuboEncoding], dict]) -> dict:
        if not sampler_qubo:  # built once, for both samplers
            optimum = None if exact is None else exact.vector
            sampler_qubo.append(sampler_encoding(problem, encoding, optimum))
        qubo, which = sampler_qubo[0]
        return {**sampler(qubo), "qubo": which}

    runners: dict[str, Callable[[], dict]] = {
        "scip": lambda: _scip_entry(problem, exact, seed, time_limit),
        "relax_round": lambda: relax_and_round(problem),
        "greedy": lambda: greedy(problem),
        "simulated_annealing": lambda: on_qubo(lambda q: simulated_annealing(problem, q, seed, exact, sa_reads)),
        "tabu": lambda: on_qubo(lambda q: tabu(problem, q, seed, exact, tabu_reads, time_limit=time_limit)),
    }
    results: dict[str, dict] = {}
    for name in methods:
        started = time.perf_counter()
        try:
            results[name] = runners[name]()
        except KeyboardInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 — one method's failure is recorded, never fatal to the others
            text = str(error) if isinstance(error, ProblemError) else f"{type(error).__name__}: {error}"
            results[name] = method_entry(problem, None, time.perf_counter() - started, "failed", text)
    optimum = None
    if exact is not None and exact.proven_optimal:
        optimum = exact.objective
    elif results.get("scip", {}).get("proven_optimal"):
        optimum = results["scip"]["objective"]
    for entry in results.values():
        if optimum is not None and entry.get("objective") is not None:
            gap = entry["objective"] - optimum
            entry["gap_to_optimum"] = 0.0 if abs(gap) <= optimum_tolerance(optimum) else float(gap)
        else:
            entry["gap_to_optimum"] = None
    return results


def solve_classical(problem: DiscreteProblem, method: str = "scip", encoding: QuboEncoding | None = None,
                    seed: int = 0, time_limit: float = 60.0) -> ClassicalSolution:
    """One classical method on ``problem`` (``scip``, ``relax_round``, ``greedy``, ``simulated_annealing``,
    ``tabu``), as a :class:`ClassicalSolution` (``allocation`` None when it found no feasible answer).

    The QUBO samplers run on :func:`sampler_encoding` of ``encoding`` (the problem's own when None).
    """
    method = check_choice(method, ClassicalMethod, "method", ProblemError)
    entry = run_baselines(problem, encoding, None, seed, time_limit, methods=(method,))[method]
    if entry.get("status") == "failed":
        raise ProblemError(f"{method} failed: {entry.get('message')}")
    allocation = None if entry["allocation"] is None else np.array(list(entry["allocation"].values()), dtype=np.int64)
    evaluation = problem.evaluate(allocation[None, :]) if allocation is not None else None
    return ClassicalSolution(method, allocation, evaluation, bool(entry.get("proven_optimal", False)), entry["time_s"],
                             status=entry.get("status", "ok"), gap=entry.get("gap"), bound=entry.get("bound"),
                             message=entry.get("message"), problem=problem)
