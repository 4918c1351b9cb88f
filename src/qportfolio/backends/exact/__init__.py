"""The exact statevector simulator, one module per engine (numba kernels).

* :mod:`.x_mixer` — QAOA with the X mixer, Walsh–Hadamard tiles fused with the phases; adjoint gradient;
* :mod:`.phases` — the cost phases of a QUBO block by block from its structure (no sine per amplitude);
* :mod:`.warm_start` — warm-start QAOA, each mixer R·D(β)·Rᵀ, R fixed rotations (:mod:`.single_qubit`); adjoint gradient;
* :mod:`.xy_mixer` — XY mixers from a Dicke state, on the full space and on the K-of-N subspace;
* :mod:`.circuit` — any bound circuit (VQE): single-qubit layers, CX networks and diagonals in tiled passes;
* :mod:`.backend` — all of them behind the backend interface (``backend.name: exact``).

Conventions: qubit ``i`` is bit ``i`` of the basis index (little-endian); QAOA ``θ = (β_1…β_p, γ_1…γ_p)``.
"""

from qportfolio.backends.exact.backend import ExactBackend
from qportfolio.backends.exact.circuit import CircuitSimulator
from qportfolio.backends.exact.kernels import SIMULATOR_ADVICE, check_memory
from qportfolio.backends.exact.warm_start import WarmStartQAOASimulator
from qportfolio.backends.exact.x_mixer import QAOASimulator
from qportfolio.backends.exact.xy_mixer import SubspaceQAOASimulator, XYQAOASimulator, dicke_state, weight_k_states

__all__ = ["SIMULATOR_ADVICE", "CircuitSimulator", "ExactBackend", "QAOASimulator", "SubspaceQAOASimulator",
           "WarmStartQAOASimulator", "XYQAOASimulator", "check_memory", "dicke_state", "weight_k_states"]
