"""Per-qubit 2×2 unitaries applied directly to a cache tile, two qubits per sweep, and the adjoint's fused overlap.

A product ``⊗_q U_q`` acts on a tile ``x`` whose bits ``b0, b0+1, …`` carry the qubits of ``u[0], u[1], …``
(``u[i] = (u00, u01, u10, u11)``, row-major). For one qubit on tile bit ``b`` every pair
``(x_a, x_b)``, ``b = a | 2^b``, becomes ``(u00 x_a + u01 x_b, u10 x_a + u11 x_b)``. The sweeps take two
qubits at a time (four amplitudes held in registers, one read and one write of the tile per two qubits);
the factors commute, so their order is free.

The adjoint variant undoes ``⊗_q U_q`` on two states φ and λ at once (``u`` = the inverses) and returns
``Σ_q ⟨λ|G_q|φ⟩`` for per-qubit generators ``G_q`` (``g[i]``, row-major 2×2), evaluated on each pair as it
is loaded: when ``G_q`` commutes with the whole product (as a mixer's own generator does), that sum is the
same wherever it is taken.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def _mul(m, a, b):
    return m[0] * a + m[1] * b, m[2] * a + m[3] * b


@njit(cache=True)
def apply_unitaries(x, u, b0):
    """x ← (⊗_i u[i] on tile bit b0+i) x, for i < len(u)."""
    k = u.shape[0]
    i = 0
    while i + 1 < k:
        h = 1 << (b0 + i)
        p = u[i]
        q = u[i + 1]
        for start in range(0, x.size, 4 * h):
            for j in range(start, start + h):
                a0, a1 = _mul(p, x[j], x[j + h])
                a2, a3 = _mul(p, x[j + 2 * h], x[j + 3 * h])
                x[j], x[j + 2 * h] = _mul(q, a0, a2)
                x[j + h], x[j + 3 * h] = _mul(q, a1, a3)
        i += 2
    if i < k:
        h = 1 << (b0 + i)
        p = u[i]
        for start in range(0, x.size, 2 * h):
            for j in range(start, start + h):
                x[j], x[j + h] = _mul(p, x[j], x[j + h])


@njit(cache=True, inline="always")
def _overlap(g, la, lb, fa, fb):
    """⟨λ_pair| G |φ_pair⟩ for one pair."""
    return la.conjugate() * (g[0] * fa + g[1] * fb) + lb.conjugate() * (g[2] * fa + g[3] * fb)


@njit(cache=True)
def undo_unitaries_overlap(xf, xl, u, g, b0):
    """Apply ⊗_i u[i] (the inverse mixer) on tile bit b0+i to both tiles xf (φ) and xl (λ); return
    Σ_i ⟨λ|g[i]|φ⟩ (before the update, which leaves it unchanged when g[i] commutes with u[i])."""
    acc = 0.0j
    for i in range(u.shape[0]):
        h = 1 << (b0 + i)
        p = u[i]
        gi = g[i]
        for start in range(0, xf.size, 2 * h):
            for j in range(start, start + h):
                fa = xf[j]
                fb = xf[j + h]
                la = xl[j]
                lb = xl[j + h]
                acc += _overlap(gi, la, lb, fa, fb)
                xf[j], xf[j + h] = _mul(p, fa, fb)
                xl[j], xl[j + h] = _mul(p, la, lb)
    return acc
