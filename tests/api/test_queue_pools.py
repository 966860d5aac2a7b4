"""A queue-SLA pool through the API and on the dashboard: its backlog and estimated wait."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from controller.clock import ManualClock
from controller.state.db import make_session_factory
from tests.api.conftest import READ, READ_TOKEN, api_settings, serve_api
from tests.api.seed import NOW, seed_pool
from tests.browser import chromium, run_chromium, screenshot


@pytest.fixture
def queue_engine(migrated_engine: Engine) -> Engine:
    with make_session_factory(migrated_engine).begin() as db:
        seed_pool(db, "batch", "l40s-queue", queue=True)
        seed_pool(db, "gpu", "h100-infer", steps=60)
    return migrated_engine


@pytest.fixture
def queue_client(queue_engine: Engine) -> Iterator[TestClient]:
    app = create_app(
        api_settings(queue_engine), make_session_factory(queue_engine), ManualClock(NOW)
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
def test_a_queue_pool_shows_its_backlog_and_wait(queue_client: TestClient) -> None:
    queue = queue_client.get("/api/v1/pools/batch/l40s-queue", headers=READ).json()
    assert queue["sla_kind"] == "queue"
    inputs = queue["latest_decision"]["inputs"]
    assert queue["queue"] == {
        "max_delay": "30m",
        "backlog": round(inputs["backlog"], 3),
        "backlog_source": "FluidEstimate",
        "estimated_wait_seconds": round(inputs["estimated_wait_seconds"], 3),
    }
    assert queue["queue"]["backlog"] > 0
    shortfall = queue_client.get("/api/v1/pools/gpu/h100-infer", headers=READ).json()
    assert shortfall["sla_kind"] == "shortfall" and shortfall["queue"] is None


@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
def test_history_carries_the_backlog_of_a_queue_pool_only(queue_client: TestClient) -> None:
    base = "/api/v1/pools/batch/l40s-queue/history"
    every = queue_client.get(base, headers=READ).json()
    assert every["bucket_seconds"] is None
    assert len(every["backlog"]) == len(every["times"]) == 120
    assert max(every["backlog"]) > 0 and min(every["backlog"]) == 0
    bucketed = queue_client.get(f"{base}?max_points=30", headers=READ).json()
    assert bucketed["bucket_seconds"] is not None
    assert len(bucketed["backlog"]) == len(bucketed["times"]) < 120
    assert max(bucketed["backlog"]) == max(every["backlog"])  # a bucket keeps its peak
    shortfall = queue_client.get("/api/v1/pools/gpu/h100-infer/history", headers=READ).json()
    assert shortfall["backlog"] is None


@pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
def test_the_dashboard_shows_backlog_and_estimated_wait_for_a_queue_pool(
    queue_engine: Engine, tmp_path: Path
) -> None:
    binary = chromium()
    with serve_api(queue_engine) as base:
        url = f"{base}#token={READ_TOKEN}&pool=batch/l40s-queue"
        dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
        assert 'data-state="ready"' in dom, dom[:3000]
        assert "queue: wait ≤ 30m" in dom
        assert "backlog (estimated)" in dom and "estimated wait" in dom and "104 s" in dom
        assert "P(late work)" in dom and "backlog (queued work)" in dom
        screenshot(binary, tmp_path / "profile-shot", url, "dashboard-queue.png")
        other = f"{base}#token={READ_TOKEN}&pool=gpu/h100-infer"
        dom = run_chromium(binary, tmp_path / "profile-other", "--dump-dom", other)
        assert 'data-state="ready"' in dom and "estimated wait" not in dom
        assert "P(late work)" not in dom
