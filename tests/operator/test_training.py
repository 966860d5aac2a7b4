"""A pool's model is trained from its real Prometheus history and stored in PostgreSQL, in
the operator's process or by a real Celery worker on Redis."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from controller.clock import SystemClock
from controller.errors import HarmonyError
from controller.operator.cycle_steps import PoolRuntime
from controller.operator.models import record_pool, train_stored_pool
from controller.operator.spec import parse_spec
from controller.settings import Settings
from controller.state.db import create_engine_for, make_session_factory
from controller.state.models import ModelVersion
from controller.tasks import train_on_worker
from controller.wiring import pool_trainer
from forecaster import Forecaster
from tests.celery_worker import celery_worker
from tests.operator.conftest import NAMESPACE
from tests.operator.helpers import PERIOD, pool_spec_document
from tests.prometheus import RunningPrometheus

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus, pytest.mark.slow]


def trainable_pool(prometheus_url: str) -> PoolRuntime:
    spec = pool_spec_document(
        interval="2s",
        provisioningDelay="4s",
        indicators=[
            {"name": "demand", "query": 'harmony_e2e_demand{pool="p1"}', "level": 1, "demand": True}
        ],
        prometheus={"url": prometheus_url, "timeout": "5s"},
        model={"history": "20m", "contextSteps": PERIOD, "horizonSteps": 4, "maxTrainSeconds": 5},
    )
    return PoolRuntime.create(parse_spec(NAMESPACE, "p1", spec, None), spec)


def stored_model(database_url: str, version_id: int) -> tuple[Any, ModelVersion]:
    engine = create_engine_for(database_url)
    with make_session_factory(engine)() as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.id == version_id))
        assert row is not None
        model = Forecaster.from_bytes(row.artifact)  # deferred: loaded inside the session
        session.expunge(row)
    engine.dispose()
    return model, row


def test_a_pool_is_trained_in_process_from_its_prometheus_history(
    demand_prometheus: RunningPrometheus, operator_db: str
) -> None:
    sessions = make_session_factory(create_engine_for(operator_db))
    pool = trainable_pool(demand_prometheus.url)
    record_pool(pool, sessions, SystemClock())
    train = pool_trainer(
        Settings(database_url=operator_db, redis_url=None), sessions, SystemClock()
    )
    model, row = stored_model(operator_db, train(pool))
    assert row.indicators == {"names": ["demand"], "levels": [1]}
    assert 500 <= row.metrics["rows"] <= 700  # 20 minutes of 2-second steps
    assert row.data_end - row.data_start >= dt.timedelta(minutes=19)
    model.check_indicators(["demand"])
    assert model.horizon == 4


def test_a_celery_worker_trains_the_pool_the_state_store_holds(
    demand_prometheus: RunningPrometheus, operator_db: str, redis_url: str
) -> None:
    sessions = make_session_factory(create_engine_for(operator_db))
    pool = trainable_pool(demand_prometheus.url)
    with celery_worker(redis_url, HARMONY_DATABASE_URL=operator_db) as queue:
        with pytest.raises(HarmonyError, match="not in the state store"):
            train_on_worker(NAMESPACE, "p1", redis_url, queue=queue, timeout_seconds=60)
        record_pool(pool, sessions, SystemClock())  # what the operator does before sending
        version_id = train_on_worker(NAMESPACE, "p1", redis_url, queue=queue, timeout_seconds=120)
    model, row = stored_model(operator_db, version_id)
    assert row.name.startswith(f"{NAMESPACE}/p1-")
    model.check_indicators(["demand"])


def test_a_pool_unknown_to_the_state_store_is_refused_by_name(operator_db: str) -> None:
    sessions = make_session_factory(create_engine_for(operator_db))
    with pytest.raises(HarmonyError, match=r"pool fleet/ghost is not in the state store"):
        train_stored_pool(NAMESPACE, "ghost", sessions, SystemClock(), None)
