"""The state layer on SQLite and on real PostgreSQL alike."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from controller.clock import ManualClock
from controller.state import (
    Action,
    ActionResult,
    BacktestResult,
    BacktestRun,
    CalibrationPosterior,
    DecisionRecord,
    ForecastRecord,
    ModelVersion,
    Pool,
    RunStatus,
    make_session_factory,
)
from controller.state.retention import prune_old_rows

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def make_pool(session_factory, name: str = "gpu-a") -> int:  # type: ignore[no-untyped-def]
    with session_factory.begin() as session:
        pool = Pool(
            namespace="ml",
            name=name,
            target_api_version="cluster.x-k8s.io/v1beta1",
            target_kind="MachineDeployment",
            target_name=f"{name}-md",
            spec={"minReplicas": 1, "maxReplicas": 32},
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(pool)
        session.flush()
        return pool.id


def decision(pool_id: int, at: dt.datetime, wanted: int = 3) -> DecisionRecord:
    return DecisionRecord(
        pool_id=pool_id,
        cycle_at=at,
        policy="harmony",
        mode="Enforce",
        replicas_now=2,
        replicas_wanted=wanted,
        shortfall_probability=0.004,
        shortfall_bound=0.009,
        expected_cost=12.5,
        reason="3 replicas keep the shortfall bound 0.9% within the 1% SLA",
        inputs={"samples": 200},
    )


def test_round_trip_keeps_utc_and_json(migrated_engine: Engine) -> None:
    sessions = make_session_factory(migrated_engine)
    pool_id = make_pool(sessions)
    with sessions.begin() as session:
        session.add(decision(pool_id, NOW))
        session.add(
            ForecastRecord(
                pool_id=pool_id,
                cycle_at=NOW,
                step_seconds=300.0,
                indicator="gpu_seconds",
                quantiles={"levels": [0.1, 0.5, 0.9], "values": [[1.0, 2.0, 3.0]]},
            )
        )
    with sessions() as session:
        stored = session.scalars(select(DecisionRecord)).one()
        assert stored.cycle_at == NOW
        assert stored.cycle_at.tzinfo is not None
        assert stored.inputs == {"samples": 200}
        forecast = session.scalars(select(ForecastRecord)).one()
        assert forecast.quantiles["values"] == [[1.0, 2.0, 3.0]]
        pool = session.get(Pool, pool_id)
        assert pool is not None and pool.spec["maxReplicas"] == 32


def test_naive_datetimes_are_refused(migrated_engine: Engine) -> None:
    sessions = make_session_factory(migrated_engine)
    pool_id = make_pool(sessions)
    with pytest.raises(Exception, match="naive datetime"), sessions.begin() as session:
        session.add(decision(pool_id, dt.datetime(2026, 1, 1)))


def test_second_action_with_the_same_key_is_refused_by_the_database(
    migrated_engine: Engine,
) -> None:
    sessions = make_session_factory(migrated_engine)
    pool_id = make_pool(sessions)
    other_pool_id = make_pool(sessions, "gpu-b")

    def action(pool: int) -> Action:
        return Action(
            pool_id=pool,
            idempotency_key="cycle-2026-11-01T12:00Z",
            created_at=NOW,
            from_replicas=2,
            to_replicas=3,
            result=ActionResult.succeeded,
        )

    with sessions.begin() as session:
        session.add(action(pool_id))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(action(pool_id))
    # The same key on another pool is a different action.
    with sessions.begin() as session:
        session.add(action(other_pool_id))
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Action)) == 2


def test_unique_pool_identity(migrated_engine: Engine) -> None:
    sessions = make_session_factory(migrated_engine)
    make_pool(sessions)
    with pytest.raises(IntegrityError):
        make_pool(sessions)


def test_deleting_a_pool_cascades(migrated_engine: Engine) -> None:
    sessions = make_session_factory(migrated_engine)
    pool_id = make_pool(sessions)
    with sessions.begin() as session:
        session.add(decision(pool_id, NOW))
        session.add(CalibrationPosterior(pool_id=pool_id, updated_at=NOW, posterior={"a": 1}))
    with sessions.begin() as session:
        pool = session.get(Pool, pool_id)
        session.delete(pool)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(DecisionRecord)) == 0
        assert session.scalar(select(func.count()).select_from(CalibrationPosterior)) == 0


def test_backtest_run_with_results(migrated_engine: Engine) -> None:
    sessions = make_session_factory(migrated_engine)
    with sessions.begin() as session:
        run = BacktestRun(created_at=NOW, trace="gentd26:requests", parameters={"sla": 0.01})
        run.results.append(
            BacktestResult(
                policy="hpa",
                knob_name="target",
                knob_value=0.8,
                replica_hours=120.0,
                cost=360.0,
                shortfall_rate=0.004,
                shortfall_unit_hours=0.2,
                actions_per_day=12.0,
                mean_utilization=0.71,
            )
        )
        session.add(run)
    with sessions() as session:
        stored = session.scalars(select(BacktestRun)).one()
        assert stored.status is RunStatus.pending
        assert [result.policy for result in stored.results] == ["hpa"]


def test_retention_prunes_exactly_the_old_rows(migrated_engine: Engine) -> None:
    sessions = make_session_factory(migrated_engine)
    clock = ManualClock(NOW)
    retention = dt.timedelta(days=7)
    pool_id = make_pool(sessions)
    old = NOW - dt.timedelta(days=8)
    recent = NOW - dt.timedelta(days=6)
    with sessions.begin() as session:
        for minutes in range(5):
            session.add(decision(pool_id, old + dt.timedelta(minutes=minutes)))
        session.add(decision(pool_id, recent))
        for index, at in enumerate([old, old, recent]):
            session.add(
                Action(
                    pool_id=pool_id,
                    idempotency_key=f"k{index}",
                    created_at=at,
                    from_replicas=1,
                    to_replicas=2,
                    result=ActionResult.succeeded,
                )
            )
        # Two old posteriors: the newest of a pool survives whatever its age.
        session.add(CalibrationPosterior(pool_id=pool_id, updated_at=old, posterior={"n": 1}))
        session.add(
            CalibrationPosterior(
                pool_id=pool_id, updated_at=old + dt.timedelta(hours=1), posterior={"n": 2}
            )
        )
        for hours in range(3):
            session.add(
                ModelVersion(
                    pool_id=pool_id,
                    name="flow",
                    kind="flow",
                    created_at=old + dt.timedelta(hours=hours),
                )
            )

    report = prune_old_rows(sessions, clock, retention, batch_size=2)

    assert report.deleted == {
        "forecasts": 0,
        "actions": 2,
        "decisions": 5,
        "calibration_posteriors": 1,
        "model_versions": 2,
    }
    with sessions() as session:
        assert [d.cycle_at for d in session.scalars(select(DecisionRecord))] == [recent]
        assert [a.idempotency_key for a in session.scalars(select(Action))] == ["k2"]
        assert [p.posterior for p in session.scalars(select(CalibrationPosterior))] == [{"n": 2}]
        models = list(session.scalars(select(ModelVersion)))
        assert [m.created_at for m in models] == [old + dt.timedelta(hours=2)]
    # Nothing more to prune the second time.
    assert prune_old_rows(sessions, clock, retention).total == 0
