"""The pieces of the control cycle (`controller.cycle`): per-pool runtime state, the
observation the decision engine sees, batched forecasting and the decision record."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from controller.actuators.base import ReplicaState
from controller.churn import ChurnLedger
from controller.operator.backlog import CONDITION, BacklogReading, FluidBacklog, read_backlog
from controller.operator.records import QUANTILE_LEVELS, ForecastSummary
from controller.operator.shadow import ShadowPool
from controller.operator.spec import PoolConfig
from decision import Decision, InFlight, Policy, PoolObservation, PoolSpec, make_policy
from decision.types import SlaKind
from forecaster.fill import forward_fill

if TYPE_CHECKING:
    from controller.cycle import ForecasterProvider, PoolOutcome

FloatArray = npt.NDArray[np.float64]


def slot_start(now: dt.datetime, interval: dt.timedelta) -> dt.datetime:
    """The start of the interval slot `now` falls in (slots are multiples since the epoch),
    so a cycle retried within its slot keeps its time and its idempotency key."""
    seconds = interval.total_seconds()
    start = math.floor(round(now.timestamp() / seconds, 9)) * seconds
    return dt.datetime.fromtimestamp(start, tz=dt.UTC)


def condition(ok: bool, reason: str, message: str) -> tuple[str, str, str]:
    return ("True" if ok else "False", reason, message)


def pool_spec(config: PoolConfig) -> PoolSpec:
    """The decision engine's view of a pool."""
    return PoolSpec(
        capacity_per_replica=config.capacity_per_replica,
        target_utilization=config.target_utilization,
        min_replicas=config.min_replicas,
        max_replicas=config.max_replicas,
        max_step_up=config.max_step_up,
        max_step_down=config.max_step_down,
        provisioning_delay_steps=config.provisioning_delay_steps,
        step_seconds=config.interval.total_seconds(),
        price_per_replica_hour=config.price_per_replica_hour,
        shortfall_penalty_per_unit_hour=config.shortfall_penalty_per_unit_hour,
        sla_epsilon=config.max_shortfall_probability,
        stabilization_steps=config.stabilization_steps,
        sla_kind=SlaKind(config.sla_kind),
        max_delay_seconds=None if config.max_delay is None else config.max_delay.total_seconds(),
        min_node_lifetime_seconds=config.min_node_lifetime.total_seconds(),
        max_scale_downs_per_hour=config.max_scale_downs_per_hour,
    )


@dataclass
class PoolRuntime:
    """One pool as the operator holds it between cycles: its config, policies and counters."""

    config: PoolConfig
    raw_spec: dict[str, Any]
    harmony: Policy
    # What decides while the pool has no usable model (decision.fallback).
    fallback: Policy
    failed_cycles: int = 0
    decided_once: set[str] = field(default_factory=set)
    model_note: str = ""
    last_outcome: PoolOutcome | None = None
    # Whether the policies' saved state was looked up (once per runtime, at its first cycle).
    states_restored: bool = False
    # Queue SLA: the operator's own estimate of the queued work (controller.operator.backlog).
    fluid: FluidBacklog = field(default_factory=FluidBacklog)
    # The target's resizes by this operator: what the churn limits read.
    churn: ChurnLedger = field(default_factory=ChurnLedger)
    # When the EnforceReady evidence was last assessed (controller.operator.readiness_step).
    readiness_at: dt.datetime | None = None
    # In Recommend mode, the pool the recommendations would have made (operator.shadow).
    shadow: ShadowPool | None = None

    @property
    def policies(self) -> tuple[Policy, Policy]:
        """Every policy of the pool that keeps state between cycles."""
        return (self.harmony, self.fallback)

    @classmethod
    def create(cls, config: PoolConfig, raw_spec: dict[str, Any]) -> PoolRuntime:
        spec = pool_spec(config)
        return cls(
            config=config,
            raw_spec=dict(raw_spec),
            harmony=make_policy("harmony", spec, config.max_shortfall_probability),
            fallback=make_policy("harmony-fallback", spec, config.max_shortfall_probability),
        )


@dataclass
class Observed:
    """What one pool's observe step gathered."""

    runtime: PoolRuntime
    cycle_at: dt.datetime
    replicas: ReplicaState | None = None
    target_error: str = ""
    target_unscalable: bool = False  # the target can never be driven as it is: Invalid
    series: FloatArray | None = None
    complete: bool = False
    issues: list[str] = field(default_factory=list)
    metrics_error: str = ""
    context_end: float = 0.0
    decision: Decision | None = None
    pool_id: int | None = None
    # The backlog indicator's column of the window, when the pool has one.
    backlog_series: FloatArray | None = None
    backlog: BacklogReading | None = None
    policy_usable: int | None = None

    def demand_window(self) -> FloatArray:
        if self.series is None:
            return np.empty(0)
        return np.asarray(self.series[:, self.runtime.config.demand_column], dtype=np.float64)


def build_observation(item: Observed, state: ReplicaState) -> PoolObservation:
    step = item.runtime.config.interval
    in_flight = tuple(
        InFlight(
            replicas=entry.count,
            usable_in_steps=max(0, math.ceil((entry.ready_at - item.cycle_at) / step - 1e-9)),
        )
        for entry in state.in_flight
        if entry.count > 0
    )
    return PoolObservation(
        replicas_usable=state.usable,
        recent_demand=item.demand_window(),
        in_flight=in_flight,
        complete=item.complete,
        pinned_replicas=state.pinned,
        backlog=0.0 if item.backlog is None else item.backlog.backlog,
        seconds_since_scale_up=item.runtime.churn.seconds_since_scale_up(item.cycle_at),
        scale_downs_last_hour=item.runtime.churn.scale_downs_last_hour(item.cycle_at),
    )


def read_pool_backlog(item: Observed, state: ReplicaState, outcome: PoolOutcome) -> None:
    """Queue SLA: the backlog the decision plans with, into the item and the outcome."""
    runtime = item.runtime
    reading = read_backlog(
        runtime.config,
        runtime.fluid,
        item.demand_window(),
        item.backlog_series,
        item.cycle_at - runtime.config.interval,
        state.usable,
    )
    item.backlog = reading
    outcome.backlog = reading.backlog
    outcome.backlog_source = reading.source
    outcome.estimated_wait_seconds = reading.estimated_wait_seconds
    outcome.conditions[CONDITION] = reading.condition


@dataclass(frozen=True)
class PoolForecast:
    demand_samples: FloatArray  # [S, H]
    summary: ForecastSummary
    model_version_id: int | None


def _filled(window: FloatArray) -> FloatArray | None:
    """Gaps carried forward (then backward) per indicator; None when a column is all NaN."""
    filled = forward_fill(window, axis=0)
    if np.isnan(filled).all(axis=0).any():
        return None
    return filled


def forecast_batch(
    observed: list[Observed], provider: ForecasterProvider, num_samples: int
) -> dict[str, PoolForecast]:
    """Samples for every pool with metrics and a model; one `sample` call per shared model."""
    groups: dict[int, list[tuple[Observed, Any, int | None, FloatArray]]] = defaultdict(list)
    for item in observed:
        runtime = item.runtime
        if item.series is None or item.replicas is None:
            continue
        found = provider.forecaster_for(runtime)
        if found is None:
            continue
        model, version_id = found
        window = item.series[-model.context_length :]
        needed = runtime.config.provisioning_delay_steps + 1
        if window.shape[0] < model.context_length or window.shape[1] != len(
            runtime.config.indicators
        ):
            runtime.model_note = (
                f"model version {version_id} needs {model.context_length} steps of "
                f"{len(runtime.config.indicators)} indicators"
            )
            continue
        if model.horizon < needed:
            runtime.model_note = (
                f"model version {version_id} forecasts {model.horizon} steps, the pool needs "
                f"{needed} (provisioning delay + 1); retrain it"
            )
            continue
        filled = _filled(window)
        if filled is None:
            continue
        groups[id(model)].append((item, model, version_id, filled))
    forecasts: dict[str, PoolForecast] = {}
    for members in groups.values():
        model = members[0][1]
        context = np.stack([filled for _, _, _, filled in members])
        ends = np.asarray([item.context_end for item, _, _, _ in members])
        samples = model.sample(context, ends, num_samples)
        for position, (item, _, version_id, _) in enumerate(members):
            demand = samples[position, :, :, item.runtime.config.demand_column]
            quantiles = np.quantile(demand, QUANTILE_LEVELS, axis=0).T
            forecasts[item.runtime.config.key] = PoolForecast(
                demand_samples=demand,
                summary=ForecastSummary(
                    values=[[round(float(v), 6) for v in row] for row in quantiles],
                    model_version_id=version_id,
                ),
                model_version_id=version_id,
            )
    return forecasts


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def decision_fields(item: Observed, outcome: PoolOutcome) -> dict[str, Any]:
    """Columns of the `DecisionRecord` of this cycle (conventions_ops.md)."""
    config = item.runtime.config
    state = item.replicas
    assert state is not None
    demand = item.demand_window()
    finite = demand[np.isfinite(demand)]
    decision = item.decision
    return {
        "policy": outcome.policy,
        "mode": config.mode,
        "replicas_now": state.desired,
        "replicas_wanted": int(outcome.recommended or 0),
        "shortfall_probability": None
        if decision is None
        else _number(decision.shortfall_probability),
        "shortfall_bound": None
        if decision is None
        else _number(decision.shortfall_probability_upper),
        "expected_cost": None if decision is None else _number(decision.expected_cost),
        "expected_utilization": None
        if decision is None
        else _number(decision.expected_utilization),
        "binding_constraint": "" if decision is None else decision.binding.value,
        "reason": outcome.reason,
        "inputs": {
            "demand": float(finite[-1]) if finite.size else None,
            "capacity_per_replica": config.capacity_per_replica,
            "target_utilization": config.target_utilization,
            "replicas_usable": state.usable,
            "replicas_in_flight": state.in_flight_count,
            "step_seconds": config.interval.total_seconds(),
            "metrics_complete": bool(item.complete and item.series is not None),
            "recommended_replicas": None if decision is None else decision.recommended_replicas,
            **_backlog_inputs(item),
            # What the policy saw: the shadow pool in Recommend mode (operator.shadow).
            "policy_replicas_usable": item.policy_usable,
        },
    }


def _backlog_inputs(item: Observed) -> dict[str, Any]:
    reading = item.backlog
    if reading is None:
        return {}
    wait = reading.estimated_wait_seconds
    return {
        "backlog": reading.backlog,
        "backlog_source": reading.source,
        "estimated_wait_seconds": wait if math.isfinite(wait) else None,
    }
