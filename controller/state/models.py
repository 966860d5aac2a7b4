"""ORM models of the state store (SQLAlchemy 2, typed).

Every table is created by an Alembic revision in `migrations/versions`, never by
`create_all` outside tests of the models themselves. Time-series tables carry a
`(pool_id, <time> DESC)` index because the API lists them per pool, newest first.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from controller.state.types import JSONDocument, UTCDateTime

# Stable constraint names keep migrations reversible on PostgreSQL and SQLite alike.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
    }


class ActionResult(enum.StrEnum):
    # Recorded before the patch is sent, so a crash in between is settled, never repeated.
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"


class RunStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


def _enum(kind: type[enum.Enum], name: str) -> Enum:
    # Stored as strings with a CHECK, so adding a value is a plain migration on both dialects.
    return Enum(kind, name=name, native_enum=False, length=16, validate_strings=True)


class Pool(Base):
    """One autoscaled pool: a PoolAutoscaler's identity and the spec it was last seen with."""

    __tablename__ = "pools"
    __table_args__ = (UniqueConstraint("namespace", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(253))
    target_api_version: Mapped[str] = mapped_column(String(253), default="")
    target_kind: Mapped[str] = mapped_column(String(253), default="")
    target_name: Mapped[str] = mapped_column(String(253), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The last status the operator wrote to the custom resource: replicas, conditions.
    status: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Each policy's `state()` after the last cycle (stabilisation history, calibration),
    # restored by an operator that starts or takes over the lease.
    policy_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    deleted_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    decisions: Mapped[list[DecisionRecord]] = relationship(
        back_populates="pool", cascade="all, delete-orphan", passive_deletes=True
    )


class ModelVersion(Base):
    """A trained forecaster: its metrics, the data it saw, and the artifact itself.

    The artifact bytes live here so that the pod that trains and the pod that forecasts
    share them without a shared volume; `artifact_uri` names the local cache copy.
    """

    __tablename__ = "model_versions"
    __table_args__ = (Index(None, "pool_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pool_id: Mapped[int | None] = mapped_column(
        ForeignKey("pools.id", ondelete="CASCADE"), default=None
    )
    name: Mapped[str] = mapped_column(String(253))
    kind: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    indicators: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_start: Mapped[dt.datetime | None] = mapped_column(default=None)
    data_end: Mapped[dt.datetime | None] = mapped_column(default=None)
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    artifact_sha256: Mapped[str] = mapped_column(String(64), default="")
    artifact_uri: Mapped[str] = mapped_column(Text, default="")


class ForecastRecord(Base):
    """The demand forecast of one cycle: quantiles per horizon step."""

    __tablename__ = "forecasts"
    __table_args__ = (Index(None, "pool_id", "cycle_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None
    )
    cycle_at: Mapped[dt.datetime]
    step_seconds: Mapped[float] = mapped_column(Float)
    indicator: Mapped[str] = mapped_column(String(253))
    # {"levels": [0.05, ...], "values": [[q per level] per step]}; one document per cycle
    # keeps a 24-step x 9-quantile forecast to one row instead of 216.
    quantiles: Mapped[dict[str, Any]] = mapped_column()


class DecisionRecord(Base):
    """What the engine (or a fallback policy) decided in one cycle, and why."""

    __tablename__ = "decisions"
    __table_args__ = (Index(None, "pool_id", "cycle_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    cycle_at: Mapped[dt.datetime]
    policy: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    replicas_now: Mapped[int] = mapped_column(Integer)
    replicas_wanted: Mapped[int] = mapped_column(Integer)
    shortfall_probability: Mapped[float | None] = mapped_column(Float, default=None)
    shortfall_bound: Mapped[float | None] = mapped_column(Float, default=None)
    expected_cost: Mapped[float | None] = mapped_column(Float, default=None)
    expected_utilization: Mapped[float | None] = mapped_column(Float, default=None)
    binding_constraint: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)

    pool: Mapped[Pool] = relationship(back_populates="decisions")


class Action(Base):
    """A change made (or attempted) to a target's replicas.

    `(pool_id, idempotency_key)` is unique: the database, not the caller's luck,
    guarantees at most one action per pool per cycle.
    """

    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("pool_id", "idempotency_key"),
        Index(None, "pool_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("decisions.id", ondelete="SET NULL"), default=None
    )
    idempotency_key: Mapped[str] = mapped_column(String(253))
    created_at: Mapped[dt.datetime]
    from_replicas: Mapped[int] = mapped_column(Integer)
    to_replicas: Mapped[int] = mapped_column(Integer)
    result: Mapped[ActionResult] = mapped_column(_enum(ActionResult, "action_result"))
    message: Mapped[str] = mapped_column(Text, default="")


class CalibrationPosterior(Base):
    """The decision engine's calibration posterior after one cycle's update (a history)."""

    __tablename__ = "calibration_posteriors"
    __table_args__ = (Index(None, "pool_id", "updated_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    updated_at: Mapped[dt.datetime]
    posterior: Mapped[dict[str, Any]] = mapped_column()


class BacktestRun(Base):
    """One `harmony backtest` invocation: its parameters, state and where the report is."""

    __tablename__ = "backtest_runs"
    __table_args__ = (Index(None, "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    trace: Mapped[str] = mapped_column(Text)
    status: Mapped[RunStatus] = mapped_column(
        _enum(RunStatus, "run_status"), default=RunStatus.pending
    )
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report_path: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")

    results: Mapped[list[BacktestResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class BacktestResult(Base):
    """One policy at one knob value within a backtest run."""

    __tablename__ = "backtest_results"
    __table_args__ = (Index(None, "run_id", "policy"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("backtest_runs.id", ondelete="CASCADE"))
    policy: Mapped[str] = mapped_column(String(64))
    knob_name: Mapped[str] = mapped_column(String(64), default="")
    knob_value: Mapped[float | None] = mapped_column(Float, default=None)
    replica_hours: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)
    shortfall_rate: Mapped[float] = mapped_column(Float)
    shortfall_unit_hours: Mapped[float] = mapped_column(Float)
    actions_per_day: Mapped[float] = mapped_column(Float)
    mean_utilization: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    run: Mapped[BacktestRun] = relationship(back_populates="results")
