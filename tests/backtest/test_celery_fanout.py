"""The sweep's Celery fan-out on real Redis and a real worker gives the in-process results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from controller.tasks import SCENARIO_PREFIX, Case, run_cases
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
    scenario = synthetic_scenario(rows=500, decide_from=250)
    cases = [
        Case(scenario, "harmony", 0.01),
        Case(scenario, "harmony", 0.05),
        Case(scenario, "static", 0.9),
        Case(scenario, "hpa", None),
        Case(scenario, "reactive", 0.5),
        Case(scenario, "headroom", 0.2),
        Case(scenario, "oracle", None),
    ]
    finished: list[str] = []
    remote = run_cases(
        cases,
        redis_url=redis_url,
        queue=worker,
        timeout_seconds=240,
        on_done=lambda case, _result: finished.append(case.policy),
    )
    local = run_cases(cases, redis_url="")
    assert [result.to_dict() for result in remote] == [result.to_dict() for result in local]
    assert sorted(finished) == sorted(case.policy for case in cases)
    # It really went through Redis: the scenario and the task results are stored there.
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists(SCENARIO_PREFIX + scenario.digest())
        assert len(client.keys("celery-task-meta-*")) >= len(cases)
    finally:
        client.close()
