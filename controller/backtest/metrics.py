"""What a replay cost and how often it fell short: exact accounting on the step grid.

- replica-hours: replicas billed in each step (usable plus still provisioning: a cloud
  bills a node from launch) times the step length, summed.
- cost: replica-hours times the price per replica-hour.
- shortfall rate: share of the decided steps with observed demand whose demand exceeds
  the usable capacity (usable replicas × capacity per replica) of that step, for any
  demand indicator. Steps whose demand is a gap count neither way.
- shortfall unit-hours: demand above usable capacity, summed over steps and indicators,
  times the step length in hours.
- actions per day: steps in which the pool's desired replica count changed, per day.
- mean utilisation: demand served (at most the usable capacity) over usable capacity,
  summed over observed steps.
- queue SLA (decision.queue, one demand indicator, the work arriving per step): the
  work-weighted share waiting longer than the max delay in the pool's FIFO queue, the
  work-weighted wait quantiles and the largest backlog, exact on the step grid.
The SLA figure a policy is judged by (`sla_violation`) is the shortfall rate, or the late
share of work under the queue SLA.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from decision.queue import account_queue
from decision.types import SlaKind

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CaseMetrics:
    replica_hours: float
    cost: float
    shortfall_rate: float
    shortfall_unit_hours: float
    actions_per_day: float
    mean_utilization: float
    steps: int
    shortfall_steps: int
    sla_kind: str = SlaKind.shortfall.value
    late_work_share: float | None = None
    wait_p50_seconds: float | None = None
    wait_p95_seconds: float | None = None
    wait_p99_seconds: float | None = None
    max_backlog: float | None = None

    @property
    def sla_violation(self) -> float:
        """What the SLA bounds: the shortfall rate, or the late share of work."""
        if self.sla_kind == SlaKind.queue and self.late_work_share is not None:
            return self.late_work_share
        return self.shortfall_rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseMetrics:
        return cls(**data)


def account(
    demand: FloatArray,
    usable: IntArray,
    billed: IntArray,
    *,
    capacities: tuple[float, ...],
    step_seconds: float,
    price_per_replica_hour: float,
    initial_desired: int,
    max_delay_steps: int | None = None,
    initial_backlog: float = 0.0,
) -> CaseMetrics:
    """Metrics of one replay from its per-step arrays.

    demand `[n, K]`; usable and billed `[n]` replica counts of each decided step after that
    step's action; `initial_desired` the pool's desired count before the first decision.
    With `max_delay_steps` (the queue SLA) the waits too, the queue holding
    `initial_backlog` before the first step.
    """
    demand = np.asarray(demand, dtype=np.float64)
    if demand.ndim == 1:
        demand = demand[:, None]
    steps = int(demand.shape[0])
    if usable.shape != (steps,) or billed.shape != (steps,):
        raise ValueError("usable and billed need one count per decided step")
    step_hours = step_seconds / 3600.0
    capacity = usable[:, None].astype(np.float64) * np.asarray(capacities, dtype=np.float64)
    observed: npt.NDArray[np.bool_] = np.asarray(~np.isnan(demand).any(axis=1))
    excess = np.where(observed[:, None], np.maximum(demand - capacity, 0.0), 0.0)
    short = (excess > 0).any(axis=1)
    observed_count = int(observed.sum())
    served = np.where(observed[:, None], np.minimum(demand, capacity), 0.0).sum()
    offered = np.where(observed[:, None], capacity, 0.0).sum()
    desired_before = np.concatenate([[initial_desired], billed[:-1]])
    actions = int((billed != desired_before).sum())
    days = steps * step_seconds / 86400.0
    replica_hours = float(billed.sum()) * step_hours
    queue: dict[str, Any] = {}
    if max_delay_steps is not None:
        waits = account_queue(
            demand[:, 0],
            capacity[:, 0],
            max_delay_steps=max_delay_steps,
            step_seconds=step_seconds,
            initial_backlog=initial_backlog,
        )
        queue = {"sla_kind": SlaKind.queue.value, **asdict(waits)}
    return CaseMetrics(
        replica_hours=replica_hours,
        cost=replica_hours * price_per_replica_hour,
        shortfall_rate=float(short.sum()) / observed_count if observed_count else 0.0,
        shortfall_unit_hours=float(excess.sum()) * step_hours,
        actions_per_day=actions / days if days > 0 else 0.0,
        mean_utilization=float(served / offered) if offered > 0 else 0.0,
        steps=steps,
        shortfall_steps=int(short.sum()),
        **queue,
    )
