"""Every call the optimizer makes to the objective, recorded, and replay of recorded calls for resuming."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class OptimizerCall:
    """One objective evaluation the optimizer asked for (a line of ``evaluations.jsonl``): its parameters,
    value (problem units) and time; with exact gradients, the gradient too, so a resumed gradient-based search
    replays it instead of computing it again. Not :class:`qportfolio.problems.Evaluation` (an allocation's
    objective, variance, return, cost and feasibility)."""

    index: int
    parameters: list[float]
    value: float
    seconds: float
    gradient: list[float] | None = None


def parameter_key(theta) -> tuple[str, ...]:
    """An exact, hashable key for a parameter vector (float.hex keeps every bit)."""
    return tuple(float(t).hex() for t in np.ravel(theta))


class Replay:
    """Recorded evaluations to answer from, consumed in order for each exact parameter vector."""

    def __init__(self, records: list[OptimizerCall] | None = None):
        self._queues: dict[tuple, deque] = {}
        for record in records or []:
            self._queues.setdefault(parameter_key(record.parameters), deque()).append(record)
        self.used = 0

    def add(self, record: OptimizerCall) -> None:
        self._queues.setdefault(parameter_key(record.parameters), deque()).append(record)

    def take(self, theta) -> OptimizerCall | None:
        queue = self._queues.get(parameter_key(theta))
        if not queue:
            return None
        self.used += 1
        return queue.popleft()
