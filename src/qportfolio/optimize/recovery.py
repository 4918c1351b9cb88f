"""Resuming on a job backend: the results of jobs an interrupted attempt submitted but never recorded."""

from __future__ import annotations

import numpy as np

from qportfolio.backends import Backend, Distribution, JobBackend
from qportfolio.errors import QPortfolioError
from qportfolio.objective import Objective
from qportfolio.optimize.history import OptimizerCall, Replay, parameter_key
from qportfolio.optimize.energy_table import EnergyTable, objective_value


def collect_unrecorded_jobs(jobs: list[dict], backend: Backend, history: list[OptimizerCall], replay: Replay,
                            energies: EnergyTable, objective: Objective) -> dict:
    """Jobs an interrupted attempt submitted but never recorded a result for: fetch their results instead of
    paying for them again. Evaluations join the replay; final samples are returned by parameter key.
    A job that cannot be fetched (local testing mode: it lived in the process that died) is run again."""
    if not isinstance(backend, JobBackend):
        return {}
    recorded = {}
    for evaluation in history:
        key = parameter_key(evaluation.parameters)
        recorded[key] = recorded.get(key, 0) + 1
    finals: dict[tuple, Distribution] = {}
    for job in jobs:
        if job.get("kind") not in ("evaluation", "final"):
            continue
        thetas = np.atleast_2d(np.asarray(job.get("parameters", []), dtype=float))
        keys = [parameter_key(theta) for theta in thetas]
        if job["kind"] == "evaluation" and all(recorded.get(k, 0) > 0 for k in keys):
            for k in keys:
                recorded[k] -= 1
            continue
        try:
            distributions = backend.collect(job["job_id"], job.get("measured_qubits"))
        except QPortfolioError:
            continue
        for key, theta, distribution in zip(keys, thetas, distributions):
            if job["kind"] == "final":
                finals[key] = distribution
            else:
                value = objective_value(distribution, energies, objective)
                replay.add(OptimizerCall(-1, [float(t) for t in theta], value, 0.0))
    return finals
