"""Shots from a probability vector over 2ⁿ basis states, without a 2ⁿ-category multinomial or ``arange(2ⁿ)``.

Inverse-CDF sampling: with ``S_z = Σ_{y ≤ z} p_y`` (one running sum, in index order) and ``T = S_{last}``,
each shot draws ``u ~ U[0, 1)`` and lands on the ``z`` with ``S_{z−1} ≤ u·T < S_z``, so ``P(z) = p_z / T``:
the counts of ``shots`` independent draws are exactly ``Multinomial(shots, p / T)``. Sorting the
``shots`` uniforms first lets one pass over ``p`` place all of them (O(2ⁿ + shots·log shots), no 2ⁿ
temporaries); a state of zero probability is never drawn. Given a statevector instead, ``p_z = |ψ_z|²`` is
read off the amplitudes in the same pass, so not even the probability vector is made.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _weight(values, z, pairs):
    """``p_z``: ``values[z]``, or ``|ψ_z|²`` from the float view of a statevector (computed as the simulator's
    probabilities are, in the amplitudes' precision)."""
    if pairs:
        re, im = values[2 * z], values[2 * z + 1]
        return np.float64(re * re + im * im)
    return np.float64(values[z])


@njit(cache=True)
def _inverse_cdf_counts(values, pairs, uniforms, indices, counts) -> int:
    """Place the sorted ``uniforms`` (in [0, 1)) on the running sum of the weights ``p_z`` (:func:`_weight`); write
    the states hit (ascending) and their counts, return how many (−1: no positive weight). A uniform above the
    last partial sum (rounding) goes to the last state of nonzero weight."""
    size = values.size // 2 if pairs else values.size
    total = 0.0
    for z in range(size):
        p = _weight(values, z, pairs)
        if p > 0.0:
            total += p
    if not total > 0.0:
        return -1
    hits = 0
    j = 0
    running = 0.0
    last = -1
    for z in range(size):
        if j == uniforms.size:
            break
        p = _weight(values, z, pairs)
        if p <= 0.0:
            continue
        running += p
        last = z
        c = 0
        while j < uniforms.size and uniforms[j] * total < running:
            c += 1
            j += 1
        if c > 0:
            indices[hits] = z
            counts[hits] = c
            hits += 1
    if j < uniforms.size:  # u·T rounded up to T: the last state with mass
        for z in range(size - 1, -1, -1):
            if _weight(values, z, pairs) > 0.0:
                last = z
                break
        if hits > 0 and indices[hits - 1] == last:
            counts[hits - 1] += uniforms.size - j
        else:
            indices[hits] = last
            counts[hits] = uniforms.size - j
            hits += 1
    return hits


def sample_counts(weights: np.ndarray, shots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(states, counts)`` of ``shots`` draws from ``weights``: nonnegative real weights (normalised by their sum),
    or complex amplitudes, drawn by ``|ψ_z|²`` in place. The states hit come in ascending order, int64, with
    how often each was drawn. Reproducible from ``rng``."""
    weights = np.ascontiguousarray(weights).ravel()
    pairs = np.iscomplexobj(weights)
    values = weights.view(np.float64 if weights.dtype == np.complex128 else np.float32) if pairs \
        else weights.astype(np.float64, copy=False)
    if shots < 1:
        raise ValueError(f"need shots ≥ 1, got {shots}")
    uniforms = np.sort(rng.random(shots))
    size = min(shots, weights.size)
    indices, counts = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
    hits = _inverse_cdf_counts(values, pairs, uniforms, indices, counts)
    if hits < 0:
        raise ValueError("cannot sample: no basis state has a positive probability")
    return indices[:hits], counts[:hits]
