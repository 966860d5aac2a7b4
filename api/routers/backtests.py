"""`/api/v1/backtests`: replay a trace through the policies, off the request path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.deps import Context, DbSession, require_admin, require_read
from api.errors import ApiError
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from api.schemas.backtests import BacktestCaseOut, BacktestRunOut, BacktestSpec, Progress
from api.schemas.common import Page, error_responses
from api.schemas.inputs import PlainText
from controller.state.models import BacktestRun, RunStatus

router = APIRouter(
    prefix="/api/v1/backtests",
    tags=["backtests"],
    responses=error_responses(401, 403, 422),
)

RunId = Annotated[int, Path(ge=1, le=2**62, description="The run's id.")]


def run_out(run: BacktestRun) -> BacktestRunOut:
    summary = dict(run.summary or {})
    progress = summary.pop("progress", None)
    finished = run.status == RunStatus.succeeded
    return BacktestRunOut(
        id=run.id,
        state=run.status.value,
        trace=run.trace,
        created_at=run.created_at,
        finished_at=run.finished_at,
        parameters=run.parameters,
        progress=Progress(**progress) if isinstance(progress, dict) else None,
        summary=summary if finished else None,
        results=[
            BacktestCaseOut(
                policy=result.policy,
                knob_name=result.knob_name,
                knob_value=result.knob_value,
                replica_hours=result.replica_hours,
                cost=result.cost,
                shortfall_rate=result.shortfall_rate,
                shortfall_unit_hours=result.shortfall_unit_hours,
                actions_per_day=result.actions_per_day,
                mean_utilization=result.mean_utilization,
                role=details.get("role"),
                deployed=bool(details.get("deployed")),
                frontier=bool(details.get("frontier")),
                tune_shortfall_rate=(details.get("tune") or {}).get("shortfall_rate"),
            )
            for result in run.results
            for details in [result.details or {}]
        ],
        error=run.error or None,
    )


def _check_trace(trace: str) -> None:
    from controller.traces import trace_kinds

    prefix = trace.partition(":")[0]
    allowed = [kind for kind in trace_kinds() if kind.prefix != "csv"]
    if prefix not in {kind.prefix for kind in allowed}:
        usage = ", ".join(kind.usage for kind in allowed)
        raise ApiError(422, f"unknown trace kind {prefix!r}; name one of: {usage}", "body.trace")


@router.post(
    "",
    response_model=BacktestRunOut,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(require_admin)],
    responses=error_responses(413),
)
def create_backtest(
    ctx: Context, db: DbSession, spec: BacktestSpec, response: Response
) -> BacktestRunOut:
    """Record a backtest run (pending) and start it; poll `GET /api/v1/backtests/{id}`."""
    _check_trace(spec.trace)
    run = BacktestRun(
        created_at=ctx.clock.now(),
        trace=spec.trace,
        status=RunStatus.pending,
        parameters=spec.model_dump(mode="json"),
        summary={"progress": {"stage": "queued", "done": 0, "total": None}},
    )
    db.add(run)
    db.commit()
    ctx.backtests.submit_backtest(run.id)
    response.headers["Location"] = f"/api/v1/backtests/{run.id}"
    return run_out(run)


@router.get("", response_model=Page[BacktestRunOut], dependencies=[Depends(require_read)])
def list_backtests(
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[PlainText | None, Query(max_length=512)] = None,
) -> Page[BacktestRunOut]:
    """Backtest runs, newest first."""
    query = select(BacktestRun).options(selectinload(BacktestRun.results))
    if cursor is not None:
        (last_id,) = decode_cursor(cursor, (int,))
        query = query.where(BacktestRun.id < int(last_id))
    runs = list(db.scalars(query.order_by(BacktestRun.id.desc()).limit(limit + 1)))
    more = len(runs) > limit
    runs = runs[:limit]
    return Page[BacktestRunOut](
        items=[run_out(run) for run in runs],
        next_cursor=encode_cursor(runs[-1].id) if more else None,
    )


@router.get(
    "/{run_id}",
    response_model=BacktestRunOut,
    dependencies=[Depends(require_read)],
    responses=error_responses(404),
)
def get_backtest(db: DbSession, run_id: RunId) -> BacktestRunOut:
    """A run's state, progress and, once it succeeded, its results and summary."""
    run = db.scalars(
        select(BacktestRun)
        .options(selectinload(BacktestRun.results))
        .where(BacktestRun.id == run_id)
    ).first()
    if run is None:
        raise ApiError(404, f"no backtest run {run_id}", "path.run_id")
    return run_out(run)
