"""The backtest's Celery fan-out (one task per policy) on real Redis and a real worker gives
the in-process results."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from controller.tasks import SCENARIO_PREFIX, evaluate_policies
from tests.backtest.helpers import synthetic_scenario
from tests.celery_worker import celery_worker

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


@pytest.fixture
def worker(redis_url: str) -> Iterator[str]:
    """A Celery worker subprocess on its own queue; yields the queue name."""
    with celery_worker(redis_url) as queue:
        yield queue


def test_fan_out_equals_in_process(redis_url: str, worker: str) -> None:
    scenario = dataclasses.replace(synthetic_scenario(rows=500, decide_from=250), test_from=375)
    policies = ["harmony", "static", "hpa", "window-buffer", "headroom", "oracle"]
    finished: list[str] = []
    remote = evaluate_policies(
        scenario,
        policies,
        0.01,
        frontier=True,
        redis_url=redis_url,
        queue=worker,
        timeout_seconds=240,
        on_done=lambda outcome: finished.append(outcome.policy),
    )
    local = evaluate_policies(scenario, policies, 0.01, frontier=True, redis_url="")
    assert [item.to_transport() for item in remote] == [item.to_transport() for item in local]
    assert sorted(finished) == sorted(policies)
    assert remote[1].tuned is not None and len(remote[1].runs) >= 2
    # It really went through Redis: the scenario and the task results are stored there.
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists(SCENARIO_PREFIX + scenario.digest())
        assert len(client.keys("celery-task-meta-*")) >= len(policies)
    finally:
        client.close()
