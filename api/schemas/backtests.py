"""A backtest as the API takes it, and a run as the API shows it."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import OptionalFloat
from api.schemas.inputs import PlainText
from controller.backtest import defaults as limits
from decision.policies import POLICY_NAMES

# The registry's names (decision.policies), so the API accepts every policy the backtest runs.
PolicyName = Literal[POLICY_NAMES]  # type: ignore[valid-type]
# The bounds `harmony backtest` checks too (controller.backtest.defaults).
MAX_SECONDS = limits.MAX_DURATION.total_seconds()


class BacktestSpec(BaseModel):
    """What to replay: a built-in trace, the policies to compare and the simulated pool."""

    model_config = ConfigDict(extra="forbid")

    trace: PlainText = Field(
        min_length=3,
        max_length=200,
        pattern=r"^[a-z0-9_-]+:[A-Za-z0-9_.:-]+$",
        description="A built-in trace, e.g. `fisher:container1` or `gentd26:requests` "
        "(files on the server, `csv:`, are not accepted here).",
        examples=["fisher:container1"],
    )
    policies: list[PolicyName] = Field(
        default=["harmony", "static", "hpa", "reactive", "headroom", "oracle"],
        min_length=1,
        max_length=6,
    )
    sla: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="ε: the shortfall-rate target, or under the queue SLA the largest share of "
        "work waiting longer than max_delay_seconds.",
    )
    sla_kind: Literal["shortfall", "queue"] = Field(
        default="shortfall",
        description="shortfall: demand above capacity is a violation; queue: demand is work "
        "that waits in a FIFO queue, and only work waiting longer than max_delay_seconds is.",
    )
    max_delay_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SECONDS,
        description="The queue SLA's longest acceptable wait (needed with sla_kind queue).",
    )
    capacity_per_replica: float = Field(default=1.0, gt=0, le=limits.MAX_CAPACITY_PER_REPLICA)
    peak_replicas: int | None = Field(
        default=32,
        ge=1,
        le=limits.MAX_REPLICAS,
        description="Scale the demand so its peak needs this many.",
    )
    provisioning_delay_seconds: float = Field(default=600.0, ge=0, le=MAX_SECONDS)
    step_seconds: float | None = Field(
        default=None, gt=0, le=MAX_SECONDS, description="Resample the trace; null: its own step."
    )
    train_fraction: float = Field(default=0.5, gt=0, lt=1)
    sweep: bool = Field(
        default=False,
        description="Also search each policy's knob on the test period (hindsight frontier).",
    )
    num_samples: int = Field(default=100, ge=1, le=1000)
    seed: int = Field(default=0, ge=0, le=limits.MAX_SEED)
    price_per_replica_hour: float = Field(default=1.0, ge=0, le=limits.MAX_PRICE_PER_REPLICA_HOUR)
    min_replicas: int = Field(default=0, ge=0, le=limits.MAX_REPLICAS)
    max_replicas: int | None = Field(default=None, ge=1, le=limits.MAX_REPLICAS)
    demand_column: PlainText | None = Field(default=None, min_length=1, max_length=200)
    scale: float = Field(default=1.0, gt=0, le=limits.MAX_SCALE)

    @model_validator(mode="after")
    def _bounds(self) -> BacktestSpec:
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        if len(set(self.policies)) != len(self.policies):
            raise ValueError("policies must not repeat")
        if self.sla_kind == "queue" and self.max_delay_seconds is None:
            raise ValueError("sla_kind queue needs max_delay_seconds, e.g. 600")
        if self.sla_kind == "shortfall" and self.max_delay_seconds is not None:
            raise ValueError("max_delay_seconds applies to sla_kind queue only; drop it")
        return self


class Progress(BaseModel):
    stage: str
    done: int
    total: int | None


class BacktestCaseOut(BaseModel):
    policy: str
    knob_name: str
    knob_value: OptionalFloat
    replica_hours: OptionalFloat
    cost: OptionalFloat
    shortfall_rate: OptionalFloat
    shortfall_unit_hours: OptionalFloat
    actions_per_day: OptionalFloat
    mean_utilization: OptionalFloat
    role: str | None = Field(
        default=None, description="harmony, baseline, ablation (never a baseline) or oracle."
    )
    deployed: bool = Field(
        default=False, description="The knob the policy was deployed at (fit on tune)."
    )
    frontier: bool = Field(
        default=False, description="Its cheapest knob meeting the SLA on test (hindsight)."
    )
    tune_shortfall_rate: OptionalFloat = None


class BacktestRunOut(BaseModel):
    id: int
    state: Literal["pending", "running", "succeeded", "failed"]
    trace: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    parameters: dict[str, Any]
    progress: Progress | None
    summary: dict[str, Any] | None = Field(
        description="The deployable and frontier figures once succeeded (metrics are the "
        "test period's; each run's tune-period shortfall is in its result)."
    )
    results: list[BacktestCaseOut]
    error: str | None


class RetrainOut(BaseModel):
    namespace: str
    name: str
    queued: bool
    task_id: str | None
