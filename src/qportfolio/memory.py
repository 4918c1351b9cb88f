"""The memory guard: check a large allocation against the memory available before making it.

A statevector of n qubits takes 16·2ⁿ bytes (complex128), an energy table 8·2ⁿ (:func:`simulation_bytes`).
A request above ``HEADROOM`` of what is available now stops with a :class:`ResourceError` that names both numbers and
what to do instead.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

import psutil

from qportfolio.errors import ResourceError

#: Fraction of the available memory one request may take (the rest is for everything else running).
HEADROOM = 0.8
GIB = float(1 << 30)

SIMULATOR_ADVICE = ("use backend.precision: complex64 (half the state memory), an XY mixer for selection "
                    "(the K-of-N feasible subspace), or fewer qubits")
FEWER_QUBITS = "use fewer assets or a smaller problem.max_shares / max_qubits, or `qportfolio baseline` for classical answers only"


def require_memory(num_bytes: float, what: str, advice: str = FEWER_QUBITS) -> None:
    """Raise :class:`ResourceError` if ``num_bytes`` exceed ``HEADROOM`` of the memory available now."""
    available = psutil.virtual_memory().available
    if num_bytes > HEADROOM * available:
        raise ResourceError(f"{what} needs {num_bytes / GIB:.2f} GiB but only {available / GIB:.2f} GiB of memory is "
                            f"available: {advice}")


def simulation_bytes(qubits: int, precision: str = "complex128") -> float:
    """Bytes of an n-qubit exact simulation: the statevector (16·2ⁿ for complex128, 8·2ⁿ for complex64)
    and the energy table (8·2ⁿ)."""
    amplitude = 8 if precision == "complex64" else 16
    return float((amplitude + 8) * 2**qubits)


@contextmanager
def collector_paused():
    """The cyclic garbage collector off for the block, then as it was: for the imports, which build about a
    million objects and no cyclic garbage, and which it would otherwise rescan several times over as the heap
    grows (0.3–0.6 s of the ``qportfolio`` command)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
