"""What one control cycle writes to the state store, and the action ledger behind idempotency.

Acting is two-phase: the intent (an `Action` row keyed `namespace/name@cycle_at`) is
committed before the target is patched, and its result after. A process killed in
between leaves the intent behind as `pending`; the next cycle of that pool
resolves it by looking at the target: already at the intended count → the patch was made
(succeeded); otherwise it was not, and the row says so. The unique key
`(pool_id, idempotency_key)` means a cycle retried at the same slot never patches twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from controller.operator.spec import PoolConfig
from controller.state.models import (
    Action,
    ActionResult,
    CalibrationPosterior,
    DecisionRecord,
    ForecastRecord,
    Pool,
)

QUANTILE_LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
# An intent whose outcome was never written: the process stopped between record and patch.
PENDING_MESSAGE = "pending: the operator stopped before confirming this patch"


def idempotency_key(pool: PoolConfig, cycle_at: dt.datetime) -> str:
    return f"{pool.namespace}/{pool.name}@{cycle_at.isoformat()}"


def upsert_pool(
    session: Session,
    pool: PoolConfig | None,
    namespace: str,
    name: str,
    spec: dict[str, Any],
    now: dt.datetime,
) -> Pool:
    """The pool's row, created on first sight; spec and target refreshed."""
    row = session.scalar(select(Pool).where(Pool.namespace == namespace, Pool.name == name))
    if row is None:
        row = Pool(
            namespace=namespace, name=name, created_at=now, updated_at=now, spec={}, status={}
        )
        session.add(row)
    row.spec = dict(spec)
    row.updated_at = now
    row.deleted_at = None
    if pool is not None:
        row.target_api_version = pool.target.api_version
        row.target_kind = pool.target.kind
        row.target_name = pool.target.name
    session.flush()
    return row


def mark_deleted(session: Session, namespace: str, name: str, now: dt.datetime) -> None:
    row = session.scalar(select(Pool).where(Pool.namespace == namespace, Pool.name == name))
    if row is not None:
        row.deleted_at = now
        row.updated_at = now


def save_status(session: Session, namespace: str, name: str, status: dict[str, Any]) -> None:
    row = session.scalar(select(Pool).where(Pool.namespace == namespace, Pool.name == name))
    if row is not None:
        row.status = dict(status)


@dataclass(frozen=True)
class ForecastSummary:
    """Demand quantiles `[H][len(QUANTILE_LEVELS)]` of one cycle's samples."""

    values: list[list[float]]
    model_version_id: int | None


def add_forecast(
    session: Session,
    pool_id: int,
    pool: PoolConfig,
    cycle_at: dt.datetime,
    summary: ForecastSummary,
) -> None:
    session.add(
        ForecastRecord(
            pool_id=pool_id,
            model_version_id=summary.model_version_id,
            cycle_at=cycle_at,
            step_seconds=pool.interval.total_seconds(),
            indicator=pool.demand_name,
            quantiles={"levels": list(QUANTILE_LEVELS), "values": summary.values},
        )
    )


def add_decision(
    session: Session, pool_id: int, cycle_at: dt.datetime, fields: dict[str, Any]
) -> DecisionRecord:
    record = DecisionRecord(pool_id=pool_id, cycle_at=cycle_at, **fields)
    session.add(record)
    session.flush()
    return record


def add_calibration(
    session: Session, pool_id: int, at: dt.datetime, posterior: dict[str, Any]
) -> None:
    session.add(CalibrationPosterior(pool_id=pool_id, updated_at=at, posterior=posterior))


def policy_states(session: Session, pools: Sequence[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """`namespace/name` → the policy states the pool's last cycle saved (by policy name)."""
    if not pools:
        return {}
    rows = session.execute(
        select(Pool.namespace, Pool.name, Pool.policy_state).where(
            tuple_(Pool.namespace, Pool.name).in_(list(pools))
        )
    ).all()
    return {f"{ns}/{name}": dict(state or {}) for ns, name, state in rows}


def save_policy_states(session: Session, states: dict[int, dict[str, Any]]) -> None:
    """Store each pool's (by id) policy states, replacing what its last cycle saved."""
    if states:
        session.execute(
            update(Pool),
            [{"id": pool_id, "policy_state": state} for pool_id, state in states.items()],
        )


def pending_actions(session: Session, pool_id: int) -> Sequence[Action]:
    return session.scalars(
        select(Action).where(Action.pool_id == pool_id, Action.result == ActionResult.pending)
    ).all()


def resolve_pending(action: Action, desired_now: int) -> None:
    """Settle an intent left by a stopped process, judging by the target's count now."""
    if desired_now == action.to_replicas and action.from_replicas != action.to_replicas:
        action.result = ActionResult.succeeded
        action.message = (
            f"confirmed after a restart: the target has {desired_now} replicas as intended"
        )
    else:
        action.result = ActionResult.failed
        action.message = (
            f"not applied: the operator stopped before patching (target has {desired_now})"
        )


def claim_action(
    session: Session,
    pool_id: int,
    key: str,
    decision_id: int,
    from_replicas: int,
    to_replicas: int,
    now: dt.datetime,
) -> Action | None:
    """Record the intent to act under `key`, or None when that key already acted."""
    existing = session.scalar(
        select(Action).where(Action.pool_id == pool_id, Action.idempotency_key == key)
    )
    if existing is not None:
        if existing.result in (ActionResult.succeeded, ActionResult.pending):
            return None
        # Resolved as not applied (or failed): this cycle takes it over, still once.
        existing.decision_id = decision_id
        existing.from_replicas = from_replicas
        existing.to_replicas = to_replicas
        existing.result = ActionResult.pending
        existing.message = PENDING_MESSAGE
        existing.created_at = now
        return existing
    action = Action(
        pool_id=pool_id,
        decision_id=decision_id,
        idempotency_key=key,
        created_at=now,
        from_replicas=from_replicas,
        to_replicas=to_replicas,
        result=ActionResult.pending,
        message=PENDING_MESSAGE,
    )
    session.add(action)
    session.flush()
    return action


def finish_action(
    session: Session, action_id: int, succeeded: bool, message: str, to_replicas: int | None = None
) -> None:
    action = session.get(Action, action_id)
    if action is None:
        return
    action.result = ActionResult.succeeded if succeeded else ActionResult.failed
    action.message = message or ("applied" if succeeded else "failed")
    if to_replicas is not None:
        action.to_replicas = to_replicas
