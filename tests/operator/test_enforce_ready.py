"""The cycle's `EnforceReady` condition: True only once the recorded recommendations,
replayed through the simulated pool with the pool's delay, held the SLA over
`spec.readiness.minDays` of observed demand; False when they would have missed it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from controller.operator.readiness_step import PER_CYCLE, due, refresh_every
from controller.state import migrate
from controller.state.db import create_engine_for
from tests.operator.helpers import SeasonalNaive
from tests.operator.test_cycle import Harness

MIN_DAYS = 1 / 24  # an hour of one-minute cycles


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'state.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def run(harness: Harness, cycles: int) -> list[tuple[str, str, str] | None]:
    return [harness.step().conditions.get("EnforceReady") for _ in range(cycles)]


def test_enforce_ready_turns_true_after_min_days_of_held_sla(engine: Engine) -> None:
    harness = Harness(
        engine, model=SeasonalNaive(horizon=4), mode="Recommend", readiness={"minDays": MIN_DAYS}
    )
    seen = [entry for entry in run(harness, 75) if entry is not None]
    assert seen, "the condition was never assessed"
    early, last = seen[0], seen[-1]
    assert early[:2] == ("False", "CollectingEvidence"), early
    assert last[:2] == ("True", "EvidenceSufficient"), last
    assert "replica-hours" in last[2] and "SLA 5.00%" in last[2]
    # The pool ran one replica throughout (Recommend never scales): it fell short at peaks.
    assert harness.pool.account.actions == 0
    first_true = next(i for i, entry in enumerate(seen) if entry[0] == "True")
    assert first_true > 0


def test_enforce_ready_is_false_when_the_sla_would_have_been_missed(engine: Engine) -> None:
    # Two replicas of 10 cannot serve the peaks of 50: every recommendation falls short.
    harness = Harness(
        engine,
        model=SeasonalNaive(horizon=4),
        mode="Recommend",
        maxReplicas=2,
        readiness={"minDays": MIN_DAYS},
    )
    seen = [entry for entry in run(harness, 75) if entry is not None]
    assert seen and all(entry[0] == "False" for entry in seen)
    assert seen[-1][1] == "SLAMissed" and "would have been missed" in seen[-1][2]


def test_only_a_few_pools_are_assessed_per_cycle(engine: Engine) -> None:
    harness = Harness(engine, readiness={"minDays": 7})
    assert refresh_every(harness.runtime) == dt.timedelta(hours=1)
    harness.step()
    assert harness.runtime.readiness_at is not None
    from controller.operator.cycle_steps import Observed

    now = harness.clock.now()
    pending = [Observed(runtime=harness.runtime, cycle_at=now, pool_id=1) for _ in range(20)]
    for item in pending:
        item.runtime = type(harness.runtime).create(harness.config, harness.document)
    assert len(due(pending, now)) == PER_CYCLE
    harness.runtime.readiness_at = now - dt.timedelta(minutes=59)
    assert due([Observed(runtime=harness.runtime, cycle_at=now, pool_id=1)], now) == []


def test_recommend_mode_decides_against_the_shadow_pool_across_restarts(engine: Engine) -> None:
    from sqlalchemy import select

    from controller.operator.cycle_steps import PoolRuntime
    from controller.state.models import DecisionRecord
    from tests.operator.helpers import is_peak

    harness = Harness(engine, model=SeasonalNaive(horizon=4), mode="Recommend")
    run(harness, 24)
    while not is_peak(harness.clock.now()):
        run(harness, 1)
    actual = harness.pool.current(harness.config.key)
    assert harness.runtime.shadow is not None
    expected = harness.runtime.shadow.view(actual, harness.clock.now()).usable
    assert expected > actual.usable  # the recommendations' pool grew for the peak; the target not
    harness.runtime = PoolRuntime.create(harness.config, harness.document)  # a new process
    harness.step()
    with harness.sessions() as session:
        inputs = session.scalars(
            select(DecisionRecord.inputs).order_by(DecisionRecord.id.desc()).limit(1)
        ).one()
    assert inputs["policy_replicas_usable"] == expected
    assert inputs["replicas_usable"] == actual.usable


def test_waiting_for_evidence_is_neither_an_error_nor_a_warning() -> None:
    from prometheus_client import CollectorRegistry

    from controller.cycle import PoolOutcome
    from controller.operator.metrics import OperatorMetrics
    from controller.operator.runtime import event_type

    assert (
        event_type({"type": "EnforceReady", "status": "False", "reason": "CollectingEvidence"})
        == "Normal"
    )
    assert event_type({"type": "EnforceReady", "status": "False", "reason": "SLAMissed"}) == (
        "Warning"
    )
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    outcome = PoolOutcome(key="fleet/pool", cycle_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    outcome.conditions["EnforceReady"] = ("False", "CollectingEvidence", "not yet")
    outcome.conditions["MetricsAvailable"] = ("False", "MetricsUnavailable", "down")
    metrics.observe("fleet", "pool", outcome, 0.1)
    errors = {
        sample.labels["reason"]
        for family in registry.collect()
        if family.name == "harmony_errors"
        for sample in family.samples
        if sample.name == "harmony_errors_total"
    }
    assert errors == {"MetricsUnavailable"}
