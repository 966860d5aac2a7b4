"""From ORM rows to the API's schemas (the status document is the operator's camelCase)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from api.schemas.pools import (
    ActionOut,
    Condition,
    DecisionOut,
    ForecastOut,
    ForecastStep,
    PoolDetail,
    PoolSummary,
    QueueOut,
    Target,
)
from controller.state.models import Action, DecisionRecord, ForecastRecord, Pool


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def conditions_of(status: dict[str, Any]) -> list[Condition]:
    found = []
    for item in status.get("conditions") or []:
        if not isinstance(item, dict) or not item.get("type"):
            continue
        found.append(
            Condition(
                type=str(item["type"]),
                status=str(item.get("status", "Unknown")),
                reason=str(item.get("reason") or ""),
                message=str(item.get("message") or ""),
                last_transition_time=(
                    str(item["lastTransitionTime"]) if item.get("lastTransitionTime") else None
                ),
            )
        )
    return found


def _ready(conditions: list[Condition]) -> bool | None:
    for condition in conditions:
        if condition.type == "Ready":
            return condition.status == "True"
    return None


def _summary_fields(pool: Pool) -> dict[str, Any]:
    status = pool.status if isinstance(pool.status, dict) else {}
    spec = pool.spec if isinstance(pool.spec, dict) else {}
    mode = status.get("mode") or spec.get("mode")
    return {
        "namespace": pool.namespace,
        "name": pool.name,
        "target": Target(
            api_version=pool.target_api_version, kind=pool.target_kind, name=pool.target_name
        ),
        "mode": str(mode) if mode else None,
        "replicas": _int_or_none(status.get("replicas")),
        "recommended_replicas": _int_or_none(status.get("recommendedReplicas")),
        "shortfall_probability": _float_or_none(status.get("shortfallProbability")),
        "ready": _ready(conditions_of(status)),
        "updated_at": pool.updated_at,
        "deleted_at": pool.deleted_at,
    }


def pool_summary(pool: Pool) -> PoolSummary:
    return PoolSummary(**_summary_fields(pool))


def pool_detail(
    pool: Pool, latest: DecisionRecord | None, latest_forecast_at: dt.datetime | None
) -> PoolDetail:
    status = pool.status if isinstance(pool.status, dict) else {}
    return PoolDetail(
        **_summary_fields(pool),
        created_at=pool.created_at,
        spec=pool.spec if isinstance(pool.spec, dict) else {},
        status=status,
        conditions=conditions_of(status),
        latest_decision=decision_out(latest) if latest is not None else None,
        latest_forecast_at=latest_forecast_at,
        **_sla_fields(pool.spec if isinstance(pool.spec, dict) else {}, status),
    )


def _sla_fields(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    found = spec.get("sla")
    sla: dict[str, Any] = found if isinstance(found, dict) else {}
    if sla.get("kind") != "queue":
        return {"sla_kind": "shortfall", "queue": None}
    source = status.get("backlogSource")
    return {
        "sla_kind": "queue",
        "queue": QueueOut(
            max_delay=str(sla.get("maxDelay") or ""),
            backlog=_float_or_none(status.get("backlog")),
            backlog_source=str(source) if source else None,
            estimated_wait_seconds=_float_or_none(status.get("estimatedWaitSeconds")),
        ),
    }


def decision_out(row: DecisionRecord) -> DecisionOut:
    return DecisionOut(
        id=row.id,
        cycle_at=row.cycle_at,
        policy=row.policy,
        mode=row.mode,
        replicas_now=row.replicas_now,
        replicas_wanted=row.replicas_wanted,
        shortfall_probability=row.shortfall_probability,
        shortfall_bound=row.shortfall_bound,
        expected_cost=row.expected_cost,
        expected_utilization=row.expected_utilization,
        binding_constraint=row.binding_constraint,
        reason=row.reason,
        inputs=row.inputs if isinstance(row.inputs, dict) else {},
    )


def action_out(row: Action) -> ActionOut:
    return ActionOut(
        id=row.id,
        created_at=row.created_at,
        idempotency_key=row.idempotency_key,
        decision_id=row.decision_id,
        from_replicas=row.from_replicas,
        to_replicas=row.to_replicas,
        result=str(row.result),
        message=row.message,
    )


def forecast_out(row: ForecastRecord) -> ForecastOut:
    """Quantiles per horizon step; step h is at `cycle_at + h * step_seconds`."""
    document = row.quantiles if isinstance(row.quantiles, dict) else {}
    levels = [
        float(level) for level in document.get("levels") or [] if _float_or_none(level) is not None
    ]
    steps = []
    for h, values in enumerate(document.get("values") or []):
        row_values = values if isinstance(values, list) else []
        steps.append(
            ForecastStep(
                at=row.cycle_at + dt.timedelta(seconds=h * row.step_seconds),
                values=[_float_or_none(value) for value in row_values[: len(levels)]],
            )
        )
    return ForecastOut(
        cycle_at=row.cycle_at,
        step_seconds=row.step_seconds,
        indicator=row.indicator,
        model_version_id=row.model_version_id,
        levels=levels,
        steps=steps,
    )
