"""What the queue SLA's calibration and budget learn from: realised waits, per level and
for the pool itself.

For the shortfall SLA a step's outcome is known when its demand is: did it exceed the
capacity? For the queue SLA it is known `k` steps later (k = max delay in steps): did some
of that step's work wait longer? Two fluid queues run on the realised arrivals
(decision.queue.LateTracker): one lane per calibration level, at the capacity the pool
would have had had every decision been taken at that level (HarmonyPolicy
.stabilised_capacity), and one lane at the pool's own usable capacity, re-synchronised
with the backlog each observation reports. The first feeds the calibration posterior
("exceeded" = some work of the step waited too long), the second the budget, weighted by
work so that the long-run late share of work, the SLA, is what it steers.

Each step the level lanes start from the pool's own backlog, as the plans they replay
did: a lane left to run on its own would pile up the backlog of every earlier step of
too little capacity, and count that as the forecast missing again and again (with
`min_replicas` holding the pool above the low levels' plans, their lanes never drained,
and the posterior drove ε to the bottom of its grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from decision.queue import LateTracker
from decision.types import FloatArray

TYPICAL_MEMORY = 1000


@dataclass
class QueueFeedback:
    """The two fluid queues and the typical work per step (see module); JSON-ready."""

    wait_steps: int
    levels: int
    by_level: LateTracker = field(init=False)
    actual: LateTracker = field(init=False)
    typical_work: float = 0.0
    steps: int = 0

    def __post_init__(self) -> None:
        self.by_level = LateTracker(self.wait_steps, self.levels)
        self.actual = LateTracker(self.wait_steps, 1)

    def resync(self, backlog: float) -> None:
        """The pool's backlog as observed now (work units)."""
        self.actual.backlog = [float(backlog)]

    def level_outcomes(
        self, work: float, capacity: FloatArray | None, backlog: float
    ) -> list[npt.NDArray[np.bool_]]:
        """Serve `work` (planning replicas) at each level's `capacity` (None: no level
        reaches this step yet) from the pool's own `backlog` (planning replicas) before
        the step; returns per resolved step whether each level was late."""
        if capacity is None:
            return []
        self.by_level.backlog = [float(backlog)] * self.levels
        return [late > 0 for _, late in self.by_level.step(work, np.asarray(capacity))]

    def pool_outcomes(self, work: float, capacity: float) -> list[tuple[float, float]]:
        """Serve `work` (demand units) at the pool's usable `capacity`; returns per
        resolved step (late, work), both relative to the typical work per step."""
        self.steps += 1
        self.typical_work += (work - self.typical_work) / min(self.steps, TYPICAL_MEMORY)
        scale = self.typical_work if self.typical_work > 0 else 1.0
        return [
            (float(late[0]) / scale, arrived / scale)
            for arrived, late in self.actual.step(work, np.asarray([capacity]))
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "queue-feedback/v1",
            "wait_steps": self.wait_steps,
            "levels": self.levels,
            "by_level": self.by_level.to_dict(),
            "actual": self.actual.to_dict(),
            "typical_work": self.typical_work,
            "steps": self.steps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueueFeedback:
        feedback = cls(int(data["wait_steps"]), int(data["levels"]))
        feedback.by_level = LateTracker.from_dict(data["by_level"])
        feedback.actual = LateTracker.from_dict(data["actual"])
        feedback.typical_work = float(data["typical_work"])
        feedback.steps = int(data["steps"])
        return feedback
