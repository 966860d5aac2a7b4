"""Pools with decisions, forecasts and actions as the operator records them (see conventions)."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy.orm import Session

from controller.state.models import Action, ActionResult, DecisionRecord, ForecastRecord, Pool

LEVELS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
NOW = dt.datetime(2024, 5, 2, 12, 0, tzinfo=dt.UTC)


def demand_at(index: int, base: float = 40.0) -> float:
    """A daily-ish wave, in capacity units."""
    return base + 15.0 * math.sin(2 * math.pi * index / 240.0)


def seed_pool(
    db: Session,
    namespace: str,
    name: str,
    *,
    end: dt.datetime = NOW,
    steps: int = 120,
    step_seconds: float = 60.0,
    capacity_per_replica: float = 10.0,
    provisioning_delay: str = "2m",
    with_forecast: bool = True,
    deleted: bool = False,
    queue: bool = False,
) -> Pool:
    """`steps` decisions ending one step before `end`, an action whenever replicas change,
    and a 12-step forecast at the last cycle. With `queue`, a queue-SLA pool (maxDelay 30m)
    whose backlog, the operator's fluid estimate, grows and drains with the wave."""
    step = dt.timedelta(seconds=step_seconds)
    start = end - steps * step
    pool = Pool(
        namespace=namespace,
        name=name,
        target_api_version="cluster.x-k8s.io/v1beta1",
        target_kind="MachineDeployment",
        target_name=f"{name}-md",
        spec={
            "minReplicas": 1,
            "maxReplicas": 20,
            "provisioningDelay": provisioning_delay,
            "mode": "Enforce",
        },
        status={
            "replicas": 5,
            "recommendedReplicas": 6,
            "shortfallProbability": 0.004,
            "mode": "Enforce",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Scaling",
                    "message": "decided",
                    "lastTransitionTime": start.isoformat(),
                }
            ],
        },
        created_at=start,
        updated_at=end,
        deleted_at=end if deleted else None,
    )
    if queue:
        pool.spec = {**pool.spec, "sla": {"kind": "queue", "maxDelay": "30m"}}
    db.add(pool)
    db.flush()
    replicas = math.ceil(demand_at(0) / capacity_per_replica)
    queued = 0.0
    for index in range(steps):
        at = start + index * step
        observed = demand_at(index)
        wanted = math.ceil(demand_at(index + 2) * 1.1 / capacity_per_replica)
        queued = max(0.0, queued + observed - (replicas - 1) * capacity_per_replica)
        backlog = (
            {
                "backlog": queued,
                "estimated_wait_seconds": queued / replicas / capacity_per_replica * step_seconds,
            }
            if queue
            else {}
        )
        decision = DecisionRecord(
            pool_id=pool.id,
            cycle_at=at,
            policy="harmony",
            mode="Enforce",
            replicas_now=replicas,
            replicas_wanted=wanted,
            shortfall_probability=0.004,
            shortfall_bound=0.009,
            expected_cost=float(wanted),
            expected_utilization=0.8,
            binding_constraint="sla",
            reason=f"{wanted} replicas keep P(shortfall) at 0.4% <= 1%",
            inputs={
                "demand": observed,
                "capacity_per_replica": capacity_per_replica,
                "target_utilization": 1.0,
                "replicas_usable": replicas,
                "replicas_in_flight": 0,
                "step_seconds": step_seconds,
                "metrics_complete": True,
                **backlog,
            },
        )
        db.add(decision)
        if wanted != replicas:
            db.flush()
            db.add(
                Action(
                    pool_id=pool.id,
                    decision_id=decision.id,
                    idempotency_key=f"{namespace}/{name}@{at.isoformat()}",
                    created_at=at,
                    from_replicas=replicas,
                    to_replicas=wanted,
                    result=ActionResult.succeeded,
                    message="scaled",
                )
            )
            replicas = wanted
    if queue:  # the status of the last cycle
        pool.status = {
            **pool.status,
            "backlog": round(queued, 3),
            "backlogSource": "FluidEstimate",
            "estimatedWaitSeconds": round(
                queued / (replicas * capacity_per_replica) * step_seconds, 3
            ),
        }
    if with_forecast:
        cycle = start + steps * step
        values = []
        for h in range(12):
            median = demand_at(steps + h)
            values.append([median * (1 + 0.3 * (level - 0.5)) for level in LEVELS])
        db.add(
            ForecastRecord(
                pool_id=pool.id,
                cycle_at=cycle,
                step_seconds=step_seconds,
                indicator="gpu_demand",
                quantiles={"levels": LEVELS, "values": values},
            )
        )
    db.flush()
    return pool
