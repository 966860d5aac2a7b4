"""`/api/v1/pools`: what each pool is doing, will need, was decided, and saved."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from sqlalchemy import and_, or_, select

from api.deps import Context, DbSession, require_admin, require_read
from api.errors import ApiError
from api.history import build_history
from api.jobs import submit_retrain
from api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    check_range,
    decode_cursor,
    encode_cursor,
    newest_first_page,
)
from api.savings import RecordedDecision, compute_savings
from api.schemas.backtests import RetrainOut
from api.schemas.common import Page, error_responses
from api.schemas.inputs import ApiTime, PlainText
from api.schemas.pools import (
    ActionOut,
    DecisionOut,
    ForecastOut,
    HistoryOut,
    PoolDetail,
    PoolSummary,
    SavingsOut,
)
from api.views import action_out, decision_out, forecast_out, pool_detail, pool_summary
from controller.state.models import Action, DecisionRecord, ForecastRecord, Pool

router = APIRouter(
    prefix="/api/v1/pools",
    tags=["pools"],
    dependencies=[Depends(require_read)],
    responses=error_responses(401, 403, 422),
)

K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
Namespace = Annotated[PlainText, Path(max_length=253, pattern=K8S_NAME, description="Namespace.")]
Name = Annotated[PlainText, Path(max_length=253, pattern=K8S_NAME, description="Pool name.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[PlainText | None, Query(max_length=512, description="`next_cursor` of a page.")]
Since = Annotated[ApiTime | None, Query(description="From this time (inclusive, with zone).")]
Until = Annotated[ApiTime | None, Query(description="Until this time (exclusive, with zone).")]
DEFAULT_RANGE = dt.timedelta(hours=24)
MAX_RANGE = dt.timedelta(days=31)


def _pool(db: DbSession, namespace: str, name: str) -> Pool:
    pool = db.scalars(select(Pool).where(Pool.namespace == namespace, Pool.name == name)).first()
    if pool is None:
        raise ApiError(404, f"no pool {namespace}/{name}", "path.name")
    return pool


def _range(
    ctx: Context, since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    check_range(since, until)
    end = until or ctx.clock.now()
    start = since or min(end - DEFAULT_RANGE, end)
    if start > end:
        raise ApiError(422, "since must not be after until", "query.since")
    if end - start > MAX_RANGE:
        raise ApiError(422, f"the range may span at most {MAX_RANGE.days} days", "query.since")
    return start, end


@router.get("", response_model=Page[PoolSummary])
def list_pools(
    db: DbSession,
    namespace: Annotated[
        PlainText | None, Query(max_length=253, description="Only this one.")
    ] = None,
    include_deleted: bool = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PoolSummary]:
    """Pools ordered by namespace and name."""
    query = select(Pool).order_by(Pool.namespace, Pool.name).limit(limit + 1)
    if namespace is not None:
        query = query.where(Pool.namespace == namespace)
    if not include_deleted:
        query = query.where(Pool.deleted_at.is_(None))
    if cursor is not None:
        after_namespace, after_name = (str(part) for part in decode_cursor(cursor, (str, str)))
        query = query.where(
            or_(
                Pool.namespace > after_namespace,
                and_(Pool.namespace == after_namespace, Pool.name > after_name),
            )
        )
    pools = list(db.scalars(query))
    more = len(pools) > limit
    pools = pools[:limit]
    next_cursor = encode_cursor(pools[-1].namespace, pools[-1].name) if more else None
    return Page[PoolSummary](items=[pool_summary(p) for p in pools], next_cursor=next_cursor)


@router.get("/{namespace}/{name}", response_model=PoolDetail, responses=error_responses(404))
def get_pool(db: DbSession, namespace: Namespace, name: Name) -> PoolDetail:
    """Spec, status, conditions and the latest decision of one pool."""
    pool = _pool(db, namespace, name)
    latest = db.scalars(
        select(DecisionRecord)
        .where(DecisionRecord.pool_id == pool.id)
        .order_by(DecisionRecord.cycle_at.desc(), DecisionRecord.id.desc())
        .limit(1)
    ).first()
    forecast_at = db.scalars(
        select(ForecastRecord.cycle_at)
        .where(ForecastRecord.pool_id == pool.id)
        .order_by(ForecastRecord.cycle_at.desc())
        .limit(1)
    ).first()
    return pool_detail(pool, latest, forecast_at)


@router.get(
    "/{namespace}/{name}/forecast", response_model=ForecastOut, responses=error_responses(404)
)
def get_forecast(db: DbSession, namespace: Namespace, name: Name) -> ForecastOut:
    """The latest demand forecast: quantiles per horizon step, with their times."""
    pool = _pool(db, namespace, name)
    record = db.scalars(
        select(ForecastRecord)
        .where(ForecastRecord.pool_id == pool.id)
        .order_by(ForecastRecord.cycle_at.desc(), ForecastRecord.id.desc())
        .limit(1)
    ).first()
    if record is None:
        raise ApiError(404, f"pool {namespace}/{name} has no forecast yet", "path.name")
    return forecast_out(record)


@router.get(
    "/{namespace}/{name}/decisions",
    response_model=Page[DecisionOut],
    responses=error_responses(404),
)
def list_decisions(
    db: DbSession,
    namespace: Namespace,
    name: Name,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[DecisionOut]:
    """Decisions, newest first, with their reasons and inputs."""
    pool = _pool(db, namespace, name)
    rows, next_cursor = newest_first_page(
        db,
        select(DecisionRecord).where(DecisionRecord.pool_id == pool.id),
        DecisionRecord.cycle_at,
        DecisionRecord.id,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return Page[DecisionOut](items=[decision_out(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/{namespace}/{name}/actions", response_model=Page[ActionOut], responses=error_responses(404)
)
def list_actions(
    db: DbSession,
    namespace: Namespace,
    name: Name,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ActionOut]:
    """Scaling actions attempted (and their results), newest first."""
    pool = _pool(db, namespace, name)
    rows, next_cursor = newest_first_page(
        db,
        select(Action).where(Action.pool_id == pool.id),
        Action.created_at,
        Action.id,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return Page[ActionOut](items=[action_out(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/{namespace}/{name}/history", response_model=HistoryOut, responses=error_responses(404)
)
def get_history(
    ctx: Context,
    db: DbSession,
    namespace: Namespace,
    name: Name,
    since: Since = None,
    until: Until = None,
    max_points: Annotated[int, Query(ge=10, le=5000)] = 1000,
) -> HistoryOut:
    """Observed demand, usable capacity and replicas per decision (default: the last 24 h)."""
    start, end = _range(ctx, since, until)
    pool = _pool(db, namespace, name)
    rows = db.execute(
        select(
            DecisionRecord.cycle_at,
            DecisionRecord.replicas_now,
            DecisionRecord.replicas_wanted,
            DecisionRecord.inputs,
        )
        .where(
            DecisionRecord.pool_id == pool.id,
            DecisionRecord.cycle_at >= start,
            DecisionRecord.cycle_at < end,
        )
        .order_by(DecisionRecord.cycle_at, DecisionRecord.id)
    ).all()
    typed = [(r[0], r[1], r[2], r[3] if isinstance(r[3], dict) else {}) for r in rows]
    return build_history(typed, start, end, max_points)


@router.get(
    "/{namespace}/{name}/savings", response_model=SavingsOut, responses=error_responses(404)
)
def get_savings(
    ctx: Context,
    db: DbSession,
    namespace: Namespace,
    name: Name,
    since: Since = None,
    until: Until = None,
) -> SavingsOut:
    """Replica-hours used vs the static-peak and reactive baselines (default: the last 24 h)."""
    start, end = _range(ctx, since, until)
    pool = _pool(db, namespace, name)
    rows = db.execute(
        select(DecisionRecord.cycle_at, DecisionRecord.replicas_now, DecisionRecord.inputs)
        .where(
            DecisionRecord.pool_id == pool.id,
            DecisionRecord.cycle_at >= start,
            DecisionRecord.cycle_at < end,
        )
        .order_by(DecisionRecord.cycle_at, DecisionRecord.id)
    ).all()
    recorded = [RecordedDecision(r[0], r[1], r[2] if isinstance(r[2], dict) else {}) for r in rows]
    spec = pool.spec if isinstance(pool.spec, dict) else {}
    return compute_savings(recorded, spec, start, end)


@router.post(
    "/{namespace}/{name}/retrain",
    response_model=RetrainOut,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(require_admin)],
    responses=error_responses(404, 409),
)
def retrain(ctx: Context, db: DbSession, namespace: Namespace, name: Name) -> RetrainOut:
    """Queue training of the pool's forecaster from its Prometheus history (on a worker when
    a broker is configured); the new model version appears under the pool's models. 409
    when the pool's recorded spec cannot be trained from."""
    pool = _pool(db, namespace, name)
    spec = pool.spec if isinstance(pool.spec, dict) else {}
    task_id = submit_retrain(ctx, pool.namespace, pool.name, spec)
    return RetrainOut(namespace=pool.namespace, name=pool.name, queued=True, task_id=task_id)
