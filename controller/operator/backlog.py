"""The backlog of a queue-SLA pool: read from its backlog indicator, or estimated.

Demand is work arriving per step; each usable replica serves `capacityPerReplica` work per
step; work not served waits in a FIFO queue. The decision engine plans from the work
queued after step t-1 (`PoolObservation.backlog`). A pool with an indicator marked
`backlog: true` reads it there (its value at step t-1). Without one the operator keeps a
fluid estimate, as the backtest's replay does:

    Q = max(0, Q + arrivals - usable replicas x capacityPerReplica)     (per step)

where a gap in the demand brings no work (steps after the last observed one wait until
they are observed: a scrape may be late) and each step is served by the fewer of the
replicas usable at the cycle before it and at the cycle after it (a scale-down counts at
once, a scale-up only once seen: the estimate errs towards more backlog). The estimate is
advanced even while the indicator answers, so that a gap in it costs nothing, and it is
saved with the policies' state so that a restart or a new leader keeps it.

The estimated wait is how long work arriving now waits behind the backlog at the capacity
usable now: backlog / (usable x capacityPerReplica) x interval; unbounded (None in the
status, +Inf in /metrics) while work is queued and no replica is usable.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.operator.spec import PoolConfig

FloatArray = npt.NDArray[np.float64]
# Key of the fluid estimate among the pool's saved policy states.
STATE_KEY = "fluid-backlog"
INDICATOR, FLUID_ESTIMATE = "Indicator", "FluidEstimate"
# What the queue SLA adds to the status (written as null, i.e. removed, for other pools).
STATUS_FIELDS = ("backlog", "backlogSource", "estimatedWaitSeconds")
CONDITION = "BacklogObserved"


@dataclass
class FluidBacklog:
    """The operator's own estimate of a pool's queued work (demand units)."""

    backlog: float = 0.0
    # Start of the last step accounted for (epoch seconds); None before the first.
    through: float | None = None
    # Replicas usable at the last cycle: the capacity of the steps after it.
    usable: int | None = None
    since: float | None = None

    def advance(
        self,
        demand: FloatArray,
        last_step_at: dt.datetime,
        step: dt.timedelta,
        usable_now: int,
        capacity_per_replica: float,
    ) -> None:
        """Serve the window's steps not yet accounted for; `demand[-1]` is the step starting
        at `last_step_at`. Steps after the last observed one wait (Prometheus may not have
        scraped them yet); gaps before it bring no work. At its first call only the last
        observed step counts (the queue before it is unknown: assumed empty)."""
        observed = np.flatnonzero(np.isfinite(demand))
        if not observed.size:
            return
        seconds = step.total_seconds()
        end = int(observed[-1]) + 1  # one past the last observed step
        last = last_step_at.timestamp() - (len(demand) - end) * seconds
        if self.through is None:
            self.since = last
            first = end - 1
        else:
            first = max(0, end - round((last - self.through) / seconds))
        capacity = min(usable_now, usable_now if self.usable is None else self.usable)
        served = capacity * capacity_per_replica
        for arrived in demand[first:end].tolist():
            work = arrived if math.isfinite(arrived) else 0.0
            self.backlog = max(0.0, self.backlog + work - served)
        self.through = max(last, self.through if self.through is not None else last)
        self.usable = usable_now

    def to_dict(self) -> dict[str, Any]:
        return {
            "backlog": self.backlog,
            "through": self.through,
            "usable": self.usable,
            "since": self.since,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FluidBacklog:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        usable = data.get("usable")
        return cls(
            backlog=max(0.0, float(data.get("backlog") or 0.0)),
            through=number("through"),
            usable=None if usable is None else int(usable),
            since=number("since"),
        )


@dataclass(frozen=True)
class BacklogReading:
    """The backlog a cycle plans with, where it came from, and the wait it means."""

    backlog: float
    source: str  # INDICATOR or FLUID_ESTIMATE
    condition: tuple[str, str, str]
    estimated_wait_seconds: float  # math.inf: work queued, nothing usable


def estimated_wait_seconds(
    backlog: float, usable: int, capacity_per_replica: float, step_seconds: float
) -> float:
    """Seconds work arriving now waits behind `backlog` at the capacity usable now."""
    if backlog <= 0:
        return 0.0
    if usable <= 0:
        return math.inf
    return backlog / (usable * capacity_per_replica) * step_seconds


def read_backlog(
    config: PoolConfig,
    fluid: FluidBacklog,
    demand: FloatArray,
    backlog_series: FloatArray | None,
    last_step_at: dt.datetime,
    usable_now: int,
) -> BacklogReading:
    """Advance the fluid estimate by the window's new steps, then prefer the indicator."""
    fluid.advance(demand, last_step_at, config.interval, usable_now, config.capacity_per_replica)
    indicator = config.backlog_indicator
    latest = (
        float(backlog_series[-1])
        if backlog_series is not None and len(backlog_series)
        else math.nan
    )
    if indicator is not None and math.isfinite(latest) and latest >= 0:
        fluid.backlog = latest
        source, status = (
            INDICATOR,
            (
                "True",
                "BacklogIndicator",
                f"the backlog is read from indicator {indicator.indicator.name!r}",
            ),
        )
    elif indicator is not None:
        source, status = (
            FLUID_ESTIMATE,
            (
                "False",
                "BacklogIndicatorMissing",
                f"indicator {indicator.indicator.name!r} has no value >= 0 for the last step "
                f"(got {latest!r}); planning with the operator's fluid estimate meanwhile",
            ),
        )
    else:
        since = dt.datetime.fromtimestamp(fluid.since or last_step_at.timestamp(), tz=dt.UTC)
        source, status = (
            FLUID_ESTIMATE,
            (
                "False",
                FLUID_ESTIMATE,
                "no indicator is marked backlog: true, so the backlog is the operator's fluid "
                f"estimate from the arrivals of {config.demand_name!r} and the usable capacity "
                f"since {since:%Y-%m-%dT%H:%M:%SZ}; mark the PromQL of the queued work (in "
                "demand units) backlog: true to read it instead",
            ),
        )
    return BacklogReading(
        backlog=fluid.backlog,
        source=source,
        condition=status,
        estimated_wait_seconds=estimated_wait_seconds(
            fluid.backlog, usable_now, config.capacity_per_replica, config.interval.total_seconds()
        ),
    )
