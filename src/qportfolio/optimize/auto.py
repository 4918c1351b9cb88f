"""The solver's settings: their checks, what the ``auto`` ones choose per problem kind (the defaults measured on
the training suite, README "Defaults"), and the search's budgets."""

from __future__ import annotations

import dataclasses
import math

from qportfolio.backends import is_hardware
from qportfolio.choices import Algorithm, Mixer, Optimizer, Pretrain, Search, TrainingObjective, check_choice
from qportfolio.errors import ConfigError
from qportfolio.optimize.search import planned_evaluations as search_evaluations
from qportfolio.problems import DiscreteProblem, IntegerSharesProblem, SelectionProblem

#: Gibbs objective's η (units of the cost scale): chosen on the training suite (η = 4 and 8 within noise).
GIBBS_ETA = 8.0
#: The deepest circuit the adaptive search grows to, by mixer: P(optimum) on the training suite kept rising
#: to p = 16 with the complete XY mixer (subspace evaluations cost ~1 ms); with the X mixer on whole shares
#: encoded without slack (7–16 qubits) the training median rose from 0.27 (p ≤ 8) to 0.48 (16) and 0.60 (24);
#: past ~13 qubits the work budget cuts the depth first.
MAX_AUTO_REPS = {"xy_complete": 16, "xy_ring": 16, "x": 24}
#: The adaptive search's evaluation cap and its work budget (Σ over evaluations of (p + 1)·amplitudes: about
#: 14–24 ns each for the exact kernel's value and gradient at n = 20–22 on this project's 2-core machine, so
#: ≈ 15–25 s).
AUTO_EVALUATIONS = 6000
WORK_BUDGET = 1e9
#: The fixed search's defaults (the depth and evaluations of a run that sets ``search: fixed``).
FIXED_REPS, FIXED_MAXITER = 2, 100


def resolve(solver, problem: DiscreteProblem):
    """A copy of the :class:`~qportfolio.optimize.QuantumSolver` ``solver`` with every ``auto`` setting chosen
    for ``problem``: the complete XY mixer for selection, the X mixer otherwise; the adaptive search (depth
    grown up to :data:`MAX_AUTO_REPS`, trained angles, ramps, INTERP) unless a fixed-search option is set;
    L-BFGS-B on exact gradients where the training backend has them, else COBYLA; the Gibbs objective
    (η = 8); pretraining on the exact simulator for hardware targets that fit it, where (mixer, depth and warm
    start left to the tool) the device search (:mod:`qportfolio.optimize.device_search`) chooses the circuit
    when the run solves."""
    values = {}
    if solver.mixer == "auto":
        values["mixer"] = Mixer.XY_COMPLETE.value if (
            solver.algorithm == Algorithm.QAOA and isinstance(problem, SelectionProblem) and solver.warm_start is not True
        ) else Mixer.X.value
    mixer = values.get("mixer", solver.mixer)
    if solver.warm_start == "auto":
        # measured on the training suite: integer shares, median P(optimum) 0.053 warm vs 0.026 from |+⟩ⁿ
        values["warm_start"] = (solver.algorithm == Algorithm.QAOA and mixer == Mixer.X
                                and isinstance(problem, IntegerSharesProblem))
    search = solver.search
    if search == "auto":
        fixed = (solver.algorithm == Algorithm.VQE or solver.layerwise or solver.multistart > 1 or solver.grid
                 or solver.initial_parameters is not None)
        search = values["search"] = "fixed" if fixed else "adaptive"
    hardware = is_hardware(solver.backend_name)
    if solver.pretrain == "auto":
        values["pretrain"] = "exact" if hardware else "none"
    training_backend = "exact" if values.get("pretrain", solver.pretrain) == "exact" else solver.backend_name
    if solver.objective == "auto":
        values["objective"] = TrainingObjective.GIBBS.value
    objective = values.get("objective", solver.objective)
    if solver.optimizer == "auto":
        gradient = training_backend == "exact" and solver.algorithm == Algorithm.QAOA and objective != "cvar"
        values["optimizer"] = Optimizer.L_BFGS_B.value if gradient else Optimizer.COBYLA.value
    if solver.reps is None:
        values["reps"] = MAX_AUTO_REPS[mixer] if search == "adaptive" else FIXED_REPS
    if solver.maxiter is None:
        values["maxiter"] = AUTO_EVALUATIONS if search == "adaptive" else FIXED_MAXITER
    if not values:
        return solver
    resolved = dataclasses.replace(solver, **values)
    resolved._auto_budget = solver.maxiter is None  # the work budget applies only to a budget left to the tool
    # hardware targets: mixer and depth chosen by the P(optimum) predicted on the device (device_candidates)
    resolved._device_search = (hardware and solver.mixer == "auto" and solver.reps is None
                               and solver.warm_start == "auto" and search == "adaptive"
                               and solver.algorithm == Algorithm.QAOA and resolved.pretrain == "exact")
    return resolved


def work_per_evaluation(num_qubits: int, num_selected: int | None, warm: bool = False):
    """The cost of one evaluation at depth ``p`` in amplitude-layers: ``(p + 1)·2ⁿ`` on the full space (1.25
    times that for warm-start mixers: their value and gradient measured 1.0–1.7× the X mixer's at n = 20–22),
    and on the K-of-N subspace ``(p + 1)·C(n, K)`` times the pairs each state meets (the complete mixer's
    rotations)."""
    size = 2.0**num_qubits if num_selected is None else math.comb(num_qubits, num_selected) * (
        1 + num_selected * (num_qubits - num_selected) / max(num_qubits, 1))
    factor = 1.25 if warm else 1.0
    return lambda reps: factor * (reps + 1) * size


def check_settings(solver) -> None:
    """The solver's choices are known ones (enum values normalised in place); VQE takes no QAOA option."""
    solver.algorithm = check_choice(solver.algorithm, Algorithm, "solver.algorithm", ConfigError)
    if solver.mixer != "auto":
        solver.mixer = check_choice(solver.mixer, Mixer, "solver.mixer", ConfigError)
    if solver.optimizer != "auto":
        solver.optimizer = check_choice(solver.optimizer, Optimizer, "solver.optimizer", ConfigError)
    if solver.objective != "auto":
        solver.objective = check_choice(solver.objective, TrainingObjective, "solver.objective", ConfigError)
    solver.search = check_choice(solver.search, Search, "solver.search", ConfigError)
    solver.pretrain = check_choice(solver.pretrain, Pretrain, "solver.pretrain", ConfigError)
    if solver.warm_start not in (True, False, "auto"):
        raise ConfigError(f"solver.warm_start must be true, false or auto, got {solver.warm_start!r}")
    if solver.algorithm == Algorithm.VQE and (solver.mixer not in ("auto", Mixer.X) or solver.warm_start is True
                                              or solver.layerwise):
        raise ConfigError("solver.mixer, warm_start and layerwise are QAOA options: remove them for VQE")


def planned_evaluations(solver) -> int:
    """The objective evaluations the (resolved) solver's search will make at most on the configured backend (one
    circuit each): with pretraining, only the ``refine`` evaluations; the adaptive search's cap; or the fixed
    search's count (:func:`~qportfolio.optimize.search.planned_evaluations`)."""
    if solver.pretrain == "exact":  # COBYLA makes at least 2p + 2 evaluations
        return max(solver.refine, 2 * solver.reps + 2) if solver.refine else 0
    if solver.search == "adaptive":
        return solver.maxiter or AUTO_EVALUATIONS
    return search_evaluations(solver.algorithm, solver.reps or FIXED_REPS, solver.maxiter or FIXED_MAXITER,
                              solver.optimizer if solver.optimizer != "auto" else "cobyla", solver.layerwise,
                              solver.multistart, solver.grid)
