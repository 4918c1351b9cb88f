"""The basis states of Hamming weight K: the states a K-of-N selection can be in (what an XY mixer reaches)."""

from __future__ import annotations

from math import comb

import numpy as np
from numba import njit

from qportfolio.memory import SIMULATOR_ADVICE, require_memory


@njit(cache=True)
def _weight_k_states(n, k, out):
    """Gosper's hack from ``2^k − 1``: with ``c = z & −z`` and ``t = z + c``, the next larger integer with
    ``k`` set bits is ``(((t ⊕ z) >> 2) // c) | t``."""
    if k == 0:
        out[0] = 0
        return
    z = (np.int64(1) << k) - 1
    for r in range(out.size):
        out[r] = z
        c = z & -z
        t = z + c
        z = (((t ^ z) >> 2) // c) | t


def weight_k_states(n: int, k: int) -> np.ndarray:
    """The C(n, k) basis indices of weight k in increasing order (= combinatorial rank order), int64."""
    if not 0 <= k <= n <= 62:
        raise ValueError(f"need 0 <= k <= n <= 62, got n = {n}, k = {k}")
    require_memory(8.0 * comb(n, k), f"the C({n}, {k}) weight-{k} basis states", SIMULATOR_ADVICE)
    out = np.empty(comb(n, k), dtype=np.int64)
    _weight_k_states(n, k, out)
    return out
