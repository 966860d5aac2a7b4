"""`GET /api/v1/pools/{namespace}/{name}/readiness` over a real state store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from controller.clock import ManualClock
from controller.state.db import make_session_factory
from tests.api.conftest import READ, api_settings
from tests.api.seed import NOW, seed_pool
from tests.readiness.seed import seed_recommend_pool

CYCLES = 48


@pytest.fixture
def client(migrated_engine: Engine) -> Iterator[TestClient]:
    """A Recommend-mode pool (capacity 10, hourly cycles, 2-hour delay, ε 5%, minDays 1)
    whose recommendations of 4 replicas covered a steady demand of 30 for two days while
    the target ran 6; and a pool whose recorded spec lacks its target."""
    sessions = make_session_factory(migrated_engine)
    with sessions.begin() as db:
        seed_recommend_pool(db, "gpu", "l40s", NOW, CYCLES)
        seed_pool(db, "gpu", "partial", steps=5)
    app = create_app(
        api_settings(migrated_engine), make_session_factory(migrated_engine), ManualClock(NOW)
    )
    with TestClient(app) as test_client:
        yield test_client


def test_readiness_weighs_replayed_recommendations_against_what_ran(client: TestClient) -> None:
    response = client.get("/api/v1/pools/gpu/l40s/readiness", headers=READ)
    assert response.status_code == 200, response.text
    body = response.json()
    # The last cycle's step has no observed demand yet: 47 hourly steps of the 48.
    assert body["observed_days"] == pytest.approx(47 / 24)
    assert body["cycles"] == CYCLES and body["min_days"] == 1
    assert body["ready"] and body["reason"] == "EvidenceSufficient"
    assert body["recommended"]["replica_hours"] == pytest.approx(4 * CYCLES)
    assert body["actual"]["replica_hours"] == pytest.approx(6 * CYCLES)
    assert body["recommended"]["shortfall_rate"] == 0.0
    assert body["message"].startswith("Ready for Enforce")
    assert [day["day"] for day in body["days"]] == ["2024-04-30", "2024-05-01", "2024-05-02"]
    recent = client.get("/api/v1/pools/gpu/l40s/readiness?days=0.5", headers=READ).json()
    assert recent["cycles"] == 12 and not recent["ready"]
    assert recent["reason"] == "CollectingEvidence"


def test_readiness_errors_name_the_field(client: TestClient) -> None:
    missing = client.get("/api/v1/pools/gpu/none/readiness", headers=READ)
    assert missing.status_code == 404
    partial = client.get("/api/v1/pools/gpu/partial/readiness", headers=READ)
    assert partial.status_code == 409 and "spec.target" in partial.text
    assert client.get("/api/v1/pools/gpu/l40s/readiness?days=0", headers=READ).status_code == 422
    assert client.get("/api/v1/pools/gpu/l40s/readiness").status_code == 401
