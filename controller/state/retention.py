"""Pruning of rows older than the retention setting, in bounded batches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from controller.clock import Clock
from controller.state.models import (
    Action,
    CalibrationPosterior,
    DecisionRecord,
    ForecastRecord,
    ModelVersion,
)


@dataclass
class PruneReport:
    cutoff: dt.datetime
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def prune_old_rows(
    sessions: sessionmaker[Session],
    clock: Clock,
    retention: dt.timedelta,
    batch_size: int = 5000,
) -> PruneReport:
    """Delete rows older than `retention`, at most `batch_size` per transaction.

    Forecasts, decisions and actions go entirely once old. The newest calibration
    posterior of each pool and the newest model version of each (pool, name) are kept
    whatever their age: the engine and the forecaster need them to go on. Backtest runs
    are user-initiated records and are not pruned.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = clock.now() - retention
    report = PruneReport(cutoff=cutoff)
    report.deleted["forecasts"] = _prune(
        sessions,
        select(ForecastRecord.id).where(ForecastRecord.cycle_at < cutoff),
        ForecastRecord.id,
        batch_size,
    )
    report.deleted["actions"] = _prune(
        sessions, select(Action.id).where(Action.created_at < cutoff), Action.id, batch_size
    )
    report.deleted["decisions"] = _prune(
        sessions,
        select(DecisionRecord.id).where(DecisionRecord.cycle_at < cutoff),
        DecisionRecord.id,
        batch_size,
    )
    newest_posterior = select(func.max(CalibrationPosterior.id)).group_by(
        CalibrationPosterior.pool_id
    )
    report.deleted["calibration_posteriors"] = _prune(
        sessions,
        select(CalibrationPosterior.id).where(
            CalibrationPosterior.updated_at < cutoff,
            CalibrationPosterior.id.not_in(newest_posterior),
        ),
        CalibrationPosterior.id,
        batch_size,
    )
    newest_model = select(func.max(ModelVersion.id)).group_by(
        ModelVersion.pool_id, ModelVersion.name
    )
    report.deleted["model_versions"] = _prune(
        sessions,
        select(ModelVersion.id).where(
            ModelVersion.created_at < cutoff, ModelVersion.id.not_in(newest_model)
        ),
        ModelVersion.id,
        batch_size,
    )
    return report


def _prune(
    sessions: sessionmaker[Session],
    old_ids: Select[tuple[int]],
    id_column: InstrumentedAttribute[int],
    batch_size: int,
) -> int:
    deleted = 0
    while True:
        with sessions.begin() as session:
            batch = list(session.scalars(old_ids.order_by(id_column).limit(batch_size)))
            if not batch:
                return deleted
            session.execute(
                delete(id_column.class_).where(id_column.in_(batch)),
                execution_options={"synchronize_session": False},
            )
            deleted += len(batch)
