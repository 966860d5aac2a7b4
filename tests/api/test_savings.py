"""Replica-hours used vs the static-peak and reactive baselines."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.savings import RecordedDecision, compute_savings, duration_seconds
from controller.clock import ManualClock
from controller.state.db import make_session_factory
from controller.state.models import DecisionRecord, Pool
from tests.api.conftest import READ, api_settings

START = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=1)


def _inputs(demand: float) -> dict[str, object]:
    return {"demand": demand, "capacity_per_replica": 10.0, "step_seconds": 60.0}


def test_used_and_static_peak_count_each_decision_for_at_most_one_step() -> None:
    rows = [
        RecordedDecision(START, 3, _inputs(25.0)),
        RecordedDecision(START + STEP, 2, _inputs(12.0)),
        # a 9-minute hole in the records counts for nothing
        RecordedDecision(START + 10 * STEP, 1, _inputs(5.0)),
    ]
    savings = compute_savings(rows, {"provisioningDelay": "1m"}, START, START + 11 * STEP)
    assert savings.hours_covered == pytest.approx(3 / 60)
    # The span the figures come from, not the range asked for.
    assert (savings.covered_from, savings.covered_until) == (START, START + 11 * STEP)
    assert savings.used_replica_hours == pytest.approx(6 / 60)
    assert savings.static_peak.replicas == 3
    assert savings.static_peak.replica_hours == pytest.approx(9 / 60)
    assert savings.static_peak.saved_replica_hours == pytest.approx(3 / 60)
    assert savings.static_peak.saved_fraction == pytest.approx(1 / 3)


def test_no_decisions_says_so() -> None:
    savings = compute_savings([], {}, START, START + STEP)
    assert savings.decisions == 0 and savings.reactive is None
    assert savings.covered_from is None and savings.covered_until is None
    assert savings.notes == ["no decisions recorded in this range"]


@pytest.mark.parametrize(
    ("value", "seconds"), [(600, 600.0), ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0), ("x", None)]
)
def test_durations_of_the_pool_spec(value: object, seconds: float | None) -> None:
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize("migrated_engine", ["sqlite", "postgresql"], indirect=True)
def test_savings_endpoint_against_both_baselines(migrated_engine: Engine) -> None:
    """An hour at demand 35 then an hour at 5 (capacity 10): the pool followed with 4 then 1
    replicas. Static peak holds 4 throughout; the reactive policy waits 10 minutes under 50%
    utilisation before it lets 3 go, so it uses more than the pool and less than static."""
    sessions = make_session_factory(migrated_engine)
    with sessions.begin() as db:
        pool = Pool(
            namespace="gpu",
            name="wave",
            spec={"minReplicas": 1, "maxReplicas": 10, "provisioningDelay": "2m"},
            status={},
            created_at=START,
            updated_at=START,
        )
        db.add(pool)
        db.flush()
        for index in range(120):
            high = index < 60
            db.add(
                DecisionRecord(
                    pool_id=pool.id,
                    cycle_at=START + index * STEP,
                    policy="harmony",
                    mode="Enforce",
                    replicas_now=4 if high else 1,
                    replicas_wanted=4 if high else 1,
                    inputs=_inputs(35.0 if high or index == 60 else 5.0),
                )
            )
    app = create_app(api_settings(migrated_engine), sessions, ManualClock(START + 120 * STEP))
    with TestClient(app) as client:
        response = client.get("/api/v1/pools/gpu/wave/savings", headers=READ)
    assert response.status_code == 200, response.text
    savings = response.json()
    assert savings["decisions"] == 120
    assert savings["hours_covered"] == pytest.approx(2.0)
    assert dt.datetime.fromisoformat(savings["covered_from"]) == START
    assert dt.datetime.fromisoformat(savings["covered_until"]) == START + 120 * STEP
    assert savings["used_replica_hours"] == pytest.approx(5.0)
    assert savings["static_peak"]["replicas"] == 4
    assert savings["static_peak"]["replica_hours"] == pytest.approx(8.0)
    assert savings["static_peak"]["saved_replica_hours"] == pytest.approx(3.0)
    reactive = savings["reactive"]
    assert reactive is not None, savings["notes"]
    # 3 extra replicas for the 10 unneeded minutes (plus at most a few steps of reaction)
    # (the sum of 120 step fractions lands a rounding error either side of the bound)
    assert 5.0 + 3 * 10 / 60 - 1e-9 <= reactive["replica_hours"] <= 5.0 + 3 * 15 / 60 + 1e-9
    assert reactive["saved_replica_hours"] == pytest.approx(reactive["replica_hours"] - 5.0)
