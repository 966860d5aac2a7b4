"""A Recommend-mode pool's recorded cycles, as the operator writes them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from controller.state.models import DecisionRecord, Pool
from tests.operator.helpers import pool_spec_document

HOUR = dt.timedelta(hours=1)


def seed_recommend_pool(
    db: Session, namespace: str, name: str, end: dt.datetime, cycles: int = 48
) -> Pool:
    """Capacity 10 per replica, hourly cycles, a 2-hour delay, ε 5%, minDays 1: Harmony
    recommended 4 replicas for a steady demand of 30 while the target ran 6."""
    start = end - cycles * HOUR
    spec = pool_spec_document(
        mode="Recommend", interval="1h", provisioningDelay="2h", readiness={"minDays": 1}
    )
    pool = Pool(
        namespace=namespace, name=name, spec=spec, status={}, created_at=start, updated_at=end
    )
    db.add(pool)
    db.flush()
    for index in range(cycles):
        db.add(
            DecisionRecord(
                pool_id=pool.id,
                cycle_at=start + index * HOUR,
                policy="harmony",
                mode="Recommend",
                replicas_now=6,
                replicas_wanted=4,
                inputs={
                    "demand": 30.0,
                    "capacity_per_replica": 10.0,
                    "replicas_usable": 6,
                    "policy_replicas_usable": 4,
                    "step_seconds": 3600.0,
                },
            )
        )
    return pool
