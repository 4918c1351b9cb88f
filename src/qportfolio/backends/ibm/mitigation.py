"""Readout mitigation with mthree: calibration matrices applied to counts."""

from __future__ import annotations

import warnings

import numpy as np

from qportfolio.backends.base import Distribution
from qportfolio.backends.ibm.options import (
    HardwareOptions,
)


def _distribution(counts: dict[int, int]):
    return Distribution.from_counts(counts)


def _mitigate(counts: dict[int, int], matrices: list[np.ndarray], options: HardwareOptions):
    """mthree correction of ``counts``, projected onto the nearest probability distribution."""
    import mthree

    n = len(matrices)
    mitigator = mthree.M3Mitigation()
    mitigator.cals_from_matrices(matrices)
    labelled = {format(k, f"0{n}b"): int(v) for k, v in counts.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quasi = mitigator.apply_correction(labelled, list(range(n)))
    probabilities = quasi.nearest_probability_distribution()
    shots = int(sum(counts.values()))
    items = [(int(label, 2), float(p)) for label, p in probabilities.items() if p > 0]
    indices = np.array([k for k, _ in items], dtype=np.int64)
    values = np.array([p for _, p in items])
    return Distribution(indices, values / values.sum(), shots)


def _bit_array_counts(data) -> list[dict[int, int]]:
    bits = data.meas
    if bits.ndim == 0:
        return [bits.get_int_counts()]
    return [bits[k].get_int_counts() for k in range(bits.shape[0])]


