"""The state store: typed ORM models, engine/session setup, migrations and retention."""

from controller.state.db import create_engine_for, make_session_factory, require_current_schema
from controller.state.models import (
    Action,
    ActionResult,
    BacktestResult,
    BacktestRun,
    Base,
    CalibrationPosterior,
    DecisionRecord,
    ForecastRecord,
    ModelVersion,
    Pool,
    RunStatus,
)

__all__ = [
    "Action",
    "ActionResult",
    "BacktestResult",
    "BacktestRun",
    "Base",
    "CalibrationPosterior",
    "DecisionRecord",
    "ForecastRecord",
    "ModelVersion",
    "Pool",
    "RunStatus",
    "create_engine_for",
    "make_session_factory",
    "require_current_schema",
]
