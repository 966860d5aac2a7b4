"""`/healthz` (the process answers) and `/readyz` (database reachable, schema current)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from api.deps import Context
from api.errors import ApiError
from api.schemas.common import error_responses
from api.schemas.health import Health, Readiness
from controller.errors import HarmonyError
from controller.state.db import require_current_schema
from controller.state.migrate import head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up (no dependency is checked)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=error_responses(503))
def readyz(ctx: Context) -> Readiness:
    """The database answers and its schema is the one this code needs."""
    engine = ctx.sessions.kw["bind"]
    try:
        require_current_schema(engine)
    except HarmonyError as error:
        raise ApiError(503, str(error)) from None
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ApiError(503, f"database error: {reason}") from None
    return Readiness(status="ready", schema_revision=head_revision())
