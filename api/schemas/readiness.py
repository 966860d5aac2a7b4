"""What `GET /api/v1/pools/{namespace}/{name}/readiness` returns."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class SideOut(BaseModel):
    """One side of the comparison over the window (or one day of it)."""

    replica_hours: float = Field(description="Replicas billed per step times its length.")
    shortfall_rate: float = Field(
        description="Share of the steps with observed demand whose demand exceeded the "
        "usable capacity."
    )
    shortfall_steps: int
    actions_per_day: float = Field(description="Steps in which the desired count changed, a day.")


class DayOut(BaseModel):
    day: dt.date
    observed_days: float
    recommended: SideOut
    actual: SideOut


class ReadinessOut(BaseModel):
    """Harmony's recorded recommendations, replayed through a simulated pool with the
    pool's provisioning delay, against what the pool actually ran, on the demand the
    cycles observed. `ready` is what the `EnforceReady` condition says: the
    recommendations held the SLA over at least `min_days` days of observed demand."""

    namespace: str
    name: str
    since: dt.datetime
    until: dt.datetime
    cycles: int = Field(description="Recorded cycles in the window.")
    observed_days: float = Field(description="Days of steps whose demand was observed.")
    min_days: float = Field(description="spec.readiness.minDays.")
    sla_epsilon: float = Field(description="spec.sla.maxShortfallProbability.")
    sla_held: bool
    ready: bool
    reason: str = Field(description="EvidenceSufficient, CollectingEvidence or SLAMissed.")
    message: str
    recommended: SideOut = Field(description="Harmony's recommendations, replayed.")
    actual: SideOut = Field(description="What the pool ran.")
    days: list[DayOut] = Field(description="The same figures per UTC day, oldest first.")
