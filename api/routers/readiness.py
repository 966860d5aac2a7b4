"""`/api/v1/pools/{namespace}/{name}/readiness`: the evidence for moving to `Enforce`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from api.deps import Context, DbSession, require_read
from api.errors import ApiError
from api.routers.pools import Name, Namespace
from api.schemas.common import error_responses
from api.schemas.readiness import ReadinessOut
from controller.operator.spec import InvalidSpec, parse_spec
from controller.readiness import assess, load_cycles
from controller.state.models import Pool

router = APIRouter(
    prefix="/api/v1/pools",
    tags=["pools"],
    dependencies=[Depends(require_read)],
    responses=error_responses(401, 403, 422),
)
MAX_DAYS = 62.0
# The stored spec is parsed for its pool settings only; its Prometheus is not contacted.
_ANY_PROMETHEUS = "http://prometheus.invalid"


@router.get(
    "/{namespace}/{name}/readiness",
    response_model=ReadinessOut,
    responses=error_responses(404, 409),
)
def get_readiness(
    ctx: Context,
    db: DbSession,
    namespace: Namespace,
    name: Name,
    days: Annotated[
        float | None,
        Query(
            gt=0,
            le=MAX_DAYS,
            description="Days back from now (default: twice spec.readiness.minDays, the "
            "window the EnforceReady condition weighs).",
        ),
    ] = None,
) -> ReadinessOut:
    """Recommendations against what the pool ran, over the last `days` days."""
    pool = db.scalars(select(Pool).where(Pool.namespace == namespace, Pool.name == name)).first()
    if pool is None:
        raise ApiError(404, f"no pool {namespace}/{name}", "path.name")
    spec = pool.spec if isinstance(pool.spec, dict) else {}
    try:
        config = parse_spec(pool.namespace, pool.name, spec, _ANY_PROMETHEUS)
    except InvalidSpec as error:
        raise ApiError(
            409, f"the pool's recorded spec cannot be assessed: {error}", error.field
        ) from None
    until = ctx.clock.now()
    window = days if days is not None else min(2 * config.readiness_min_days, MAX_DAYS)
    since = until - dt.timedelta(days=window)
    evidence = assess(load_cycles(db, pool.id, since, until), config, since, until)
    return ReadinessOut.model_validate(
        {"namespace": pool.namespace, "name": pool.name, **evidence.to_dict()}
    )
