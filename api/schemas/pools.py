"""What the API says about pools: summaries, details, forecasts, decisions, actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import OptionalFloat


class Target(BaseModel):
    api_version: str
    kind: str
    name: str


class Condition(BaseModel):
    """A condition of the PoolAutoscaler's status, as the operator last wrote it."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


class PoolSummary(BaseModel):
    namespace: str
    name: str
    target: Target
    mode: str | None = Field(default=None, description="`Recommend` or `Enforce`.")
    replicas: int | None = Field(default=None, description="Replicas the target has now.")
    recommended_replicas: int | None = None
    shortfall_probability: OptionalFloat = None
    ready: bool | None = Field(default=None, description="The `Ready` condition, if any.")
    updated_at: dt.datetime
    deleted_at: dt.datetime | None = None


class DecisionOut(BaseModel):
    id: int
    cycle_at: dt.datetime
    policy: str
    mode: str
    replicas_now: int
    replicas_wanted: int
    shortfall_probability: OptionalFloat = None
    shortfall_bound: OptionalFloat = None
    expected_cost: OptionalFloat = None
    expected_utilization: OptionalFloat = None
    binding_constraint: str
    reason: str
    inputs: dict[str, Any]


class ActionOut(BaseModel):
    id: int
    created_at: dt.datetime
    idempotency_key: str
    decision_id: int | None
    from_replicas: int
    to_replicas: int
    result: str
    message: str


class QueueOut(BaseModel):
    """The queue SLA of a pool (demand is work; work waits FIFO) and its latest backlog."""

    max_delay: str = Field(description="`spec.sla.maxDelay`: the longest work may wait.")
    backlog: OptionalFloat = Field(
        default=None, description="Work queued after the last step, in demand units."
    )
    backlog_source: str | None = Field(
        default=None,
        description="`Indicator` (read from the pool's backlog indicator) or `FluidEstimate` "
        "(the operator's own estimate from arrivals and usable capacity).",
    )
    estimated_wait_seconds: OptionalFloat = Field(
        default=None,
        description="backlog / (usable replicas × capacity per replica) × interval; null "
        "while work is queued and no replica is usable (unbounded), or before a cycle.",
    )


class PoolDetail(PoolSummary):
    created_at: dt.datetime
    spec: dict[str, Any] = Field(description="The PoolAutoscaler spec as last seen.")
    status: dict[str, Any] = Field(description="The status the operator last wrote.")
    conditions: list[Condition]
    latest_decision: DecisionOut | None
    latest_forecast_at: dt.datetime | None
    sla_kind: str = Field(default="shortfall", description="`shortfall` or `queue`.")
    queue: QueueOut | None = Field(default=None, description="Queue SLA pools only.")


class ForecastStep(BaseModel):
    at: dt.datetime = Field(description="The time of this horizon step.")
    values: list[OptionalFloat] = Field(description="One value per level of `levels`.")


class ForecastOut(BaseModel):
    cycle_at: dt.datetime
    step_seconds: float
    indicator: str
    model_version_id: int | None
    levels: list[float] = Field(description="Quantile levels, e.g. 0.05 … 0.95.")
    steps: list[ForecastStep]


class HistoryOut(BaseModel):
    """Demand and capacity per recorded decision, oldest first (bucketed to `max_points`).

    `demand` is the demand observed before each decision (the operator's `inputs.demand`);
    `usable_capacity` is usable replicas × capacity per replica; `backlog` (queue SLA
    pools only, else null) the work queued after each step, in demand units. In a bucket
    the demand and the backlog are their highest values and the replicas their last.
    """

    since: dt.datetime
    until: dt.datetime
    times: list[dt.datetime]
    demand: list[OptionalFloat]
    backlog: list[OptionalFloat] | None = None
    usable_capacity: list[OptionalFloat]
    replicas_now: list[int]
    replicas_wanted: list[int]
    bucket_seconds: float | None = Field(description="Width of a bucket; null: not bucketed.")


class Baseline(BaseModel):
    replica_hours: OptionalFloat
    saved_replica_hours: OptionalFloat = Field(description="Baseline minus used; > 0 saved.")
    saved_fraction: OptionalFloat = Field(description="Saved share of the baseline.")


class StaticPeakBaseline(Baseline):
    replicas: int | None = Field(description="ceil(peak demand / capacity per replica).")
    peak_demand: OptionalFloat


class SavingsOut(BaseModel):
    """Replica-hours the pool used against what two baselines would have used.

    Used: `replicas_now` of each decision over its step. Static peak: enough replicas for
    the highest recorded demand, all the time. Reactive: the cluster-autoscaler-like policy
    replayed over the recorded demand (same provisioning delay and bounds).
    """

    since: dt.datetime
    until: dt.datetime
    decisions: int
    hours_covered: float = Field(
        description="Hours the figures cover: each decision's step, gaps in the records "
        "excluded (often less than since..until)."
    )
    covered_from: dt.datetime | None = Field(description="The first decision in the range.")
    covered_until: dt.datetime | None = Field(
        description="The end of the last decision's step in the range."
    )
    used_replica_hours: float
    static_peak: StaticPeakBaseline
    reactive: Baseline | None
    notes: list[str]
