"""Where the optimizer starts: parameter strategies for QAOA and VQE.

* linear ramp (annealing-like): ``γ_l = Δ·(l − ½)/p``, ``β_l = Δ·(1 − (l − ½)/p)``;
* INTERP (Zhou et al. 2020): grow the depth one layer at a time, starting depth ``p + 1`` from the
  linear interpolation of the optimum at depth ``p``:
  ``γ'_i = ((i − 1)/p)·γ_{i−1} + ((p − i + 1)/p)·γ_i`` for ``i = 1…p+1`` with ``γ_0 = γ_{p+1} = 0`` (same for β);
* multistart: the strategy's point plus seeded random points, sharing one evaluation budget;
* given angles: reuse of optimised angles from a similar instance (``solver.initial_parameters``);
* a zero layer appended (the same state one layer deeper), a scan of linear ramps, and a table of depth-p
  angles trained on a training suite (``tables/angles.json``): the starts of :func:`~qportfolio.optimize.search.adaptive_search`.

QAOA parameter vectors are ``(β_1…β_p, γ_1…γ_p)``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import numpy as np

from qportfolio.errors import ConfigError

#: Total angle Δ of the linear ramp, in the units of the scaled cost operator.
RAMP_DELTA = 0.75
#: Total angles Δ scanned by :func:`ramp_scan`.
RAMP_SCAN_DELTAS = tuple(np.linspace(0.2, 2.0, 10))


def linear_ramp(reps: int, delta: float = RAMP_DELTA) -> np.ndarray:
    fractions = (np.arange(reps) + 0.5) / reps
    return np.concatenate([delta * (1 - fractions), delta * fractions])


def angle_grid(points: int, beta_range: float = np.pi / 2, gamma_range: float = np.pi) -> np.ndarray:
    """``points²`` depth-1 parameter pairs ``(β, γ)`` on a grid over ``β ∈ (0, β_max)``, ``γ ∈ (0, γ_max)``
    (cell centres; the cost operator is normalised to unit spread, so γ up to π covers a full turn)."""
    centres = (np.arange(points) + 0.5) / points
    beta, gamma = np.meshgrid(centres * beta_range, centres * gamma_range, indexing="ij")
    return np.column_stack([beta.ravel(), gamma.ravel()])


def interp(theta: np.ndarray) -> np.ndarray:
    """The INTERP start for depth ``p + 1`` from the optimum ``θ = (β, γ)`` at depth ``p``."""
    theta = np.asarray(theta, dtype=float)
    p = len(theta) // 2

    def grow(angles):
        padded = np.concatenate([[0.0], angles, [0.0]])
        i = np.arange(1, p + 2)
        return (i - 1) / p * padded[i - 1] + (p - i + 1) / p * padded[i]

    return np.concatenate([grow(theta[:p]), grow(theta[p:])])


def starting_points(first: np.ndarray, count: int, rng: np.random.Generator, spread: float = 0.5) -> list[np.ndarray]:
    """``first`` and ``count − 1`` seeded random points around it (uniform, ±``spread`` radians)."""
    if count < 1:
        raise ConfigError(f"solver.multistart must be ≥ 1, got {count}")
    return [np.asarray(first, dtype=float)] + [first + rng.uniform(-spread, spread, len(first)) for _ in range(count - 1)]


def given(parameters, expected: int) -> np.ndarray:
    values = np.asarray(parameters, dtype=float)
    if values.shape != (expected,):
        raise ConfigError(f"solver.initial_parameters has {values.size} values; this ansatz takes {expected} "
                          "(QAOA: β_1…β_p then γ_1…γ_p)")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"solver.initial_parameters must be finite angles, got {list(parameters)}")
    return values


def append_zero_layer(theta: np.ndarray) -> np.ndarray:
    """Depth ``p`` → ``p + 1`` with an identity last layer (β = γ = 0): the same state, the same objective, so
    a deeper search started here never ends worse than the depth before."""
    theta = np.asarray(theta, dtype=float)
    p = len(theta) // 2
    return np.concatenate([theta[:p], [0.0], theta[p:], [0.0]])


def ramp_scan(reps: int, deltas=RAMP_SCAN_DELTAS, signs=(1.0, -1.0)) -> np.ndarray:
    """Linear ramps ``γ_l = Δ·l/(p+1)``, ``β_l = ±Δ·(1 − l/(p+1))`` over a scan of the total angle Δ and
    the sign of β (the anneal runs either way), one row per ramp, to be evaluated in one batch."""
    fractions = np.arange(1, reps + 1) / (reps + 1)
    return np.array([np.concatenate([sign * delta * (1 - fractions), delta * fractions])
                     for sign in signs for delta in deltas])


def trained_angles(mixer: str, reps: int) -> np.ndarray | None:
    """The depth-``reps`` angles of the table trained for ``mixer`` (``optimize/tables/angles.json``), or None."""
    table = _angle_tables().get(mixer, {}).get("angles", {})
    angles = table.get(str(reps))
    return None if angles is None else np.asarray(angles, dtype=float)


@functools.cache
def _angle_tables() -> dict:
    return json.loads(resources.files("qportfolio.optimize").joinpath("tables/angles.json").read_text())
