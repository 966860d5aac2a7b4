"""The queue SLA end to end: `harmony operator` against kmock, a real Prometheus and real
PostgreSQL. Two pools see the same bursts of demand (the square wave's peaks: 4 steps at
50, 5 times one replica's capacity of 10, then back to 10): the `shortfall` pool scales up
for each, the `queue` pool, whose work may wait 30 s, holds its 3 replicas and lets the
burst queue (80 units, drained in 4 steps of 2 s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.operator.conftest import E2E_STEP, Kube, OperatorProcess, store_model
from tests.operator.helpers import PEAK_STEPS, PERIOD, is_peak
from tests.operator.test_e2e import at, condition, e2e_spec, wait_for
from tests.prometheus import RunningPrometheus

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus, pytest.mark.slow]
QUEUE_SLA = {"maxShortfallProbability": 0.05, "kind": "queue", "maxDelay": "30s"}


def deployment(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


def peaks_seen_whole(samples: list[tuple[float, int, int]]) -> int:
    """Peaks whose every step fell within the samples."""
    stamps = [stamp for stamp, _, _ in samples]
    step = E2E_STEP.total_seconds()
    starts = [s for s in stamps if is_peak(at(s), E2E_STEP) and not is_peak(at(s - step), E2E_STEP)]
    return sum(1 for start in starts if stamps[-1] >= start + PEAK_STEPS * step)


async def test_a_queue_pool_holds_its_replicas_through_a_burst_a_shortfall_pool_scales_for(
    kube: Kube,
    demand_prometheus: RunningPrometheus,
    operator_db: str,
    tiny_model_artifact: bytes,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    store_model(operator_db, "queue", tiny_model_artifact)
    store_model(operator_db, "shortfall", tiny_model_artifact)
    kube.add_deployment("batch", 3)
    kube.add_deployment("serving", 3)
    url = demand_prometheus.url
    await kube.create_pool(
        "queue", e2e_spec(url, target=deployment("batch"), minReplicas=3, sla=QUEUE_SLA)
    )
    await kube.create_pool(
        "shortfall",
        e2e_spec(
            url,
            target=deployment("serving"),
            minReplicas=3,
            sla={"maxShortfallProbability": 0.05},
        ),
    )
    # What the schema refuses, when it is bypassed (kmock validates nothing): the parser.
    await kube.create_pool(
        "no-delay", e2e_spec(url, sla={"kind": "queue", "maxShortfallProbability": 0.05})
    )
    backlog_on_shortfall = e2e_spec(url)
    backlog_on_shortfall["indicators"].append(
        {"name": "queued", "query": "vector(0)", "backlog": True}
    )
    await kube.create_pool("backlog-on-shortfall", backlog_on_shortfall)
    operator = start_operator(operator_db)
    for name in ("queue", "shortfall"):
        await wait_for(
            lambda name=name: condition(kube.pool(name), "ModelReady").get("status") == "True",
            90,
            f"{name}: ModelReady=True",
            operator,
        )

    # Watch both targets through two whole bursts (or until 3.5 periods have passed).
    step = E2E_STEP.total_seconds()
    samples: list[tuple[float, int, int]] = []
    backlogs: list[float] = []
    deadline = time.monotonic() + 3.5 * PERIOD * step
    while peaks_seen_whole(samples) < 2 and time.monotonic() < deadline:
        samples.append((time.time(), kube.replicas("batch"), kube.replicas("serving")))
        backlogs.append(float(kube.pool("queue").get("status", {}).get("backlog", 0.0)))
        await asyncio.sleep(0.25)
    assert peaks_seen_whole(samples) >= 2, samples
    assert max(serving for _, _, serving in samples) >= 5, samples
    assert {batch for _, batch, _ in samples} == {3}, samples
    assert kube.scale_patches("batch") == []
    # The burst queued instead: the operator's own estimate, since no indicator reads it.
    assert max(backlogs) > 0, backlogs
    queue = kube.pool("queue")
    assert queue["status"]["backlogSource"] == "FluidEstimate"
    observed = condition(queue, "BacklogObserved")
    assert observed["status"] == "False" and observed["reason"] == "FluidEstimate"
    assert "backlog: true" in observed["message"]
    assert "backlog" not in kube.pool("shortfall").get("status", {})

    for name, field in (
        ("no-delay", "spec.sla.maxDelay:"),
        ("backlog-on-shortfall", "spec.indicators[1].backlog:"),
    ):
        invalid = condition(kube.pool(name), "Invalid")
        assert invalid["status"] == "True" and invalid["message"].startswith(field), invalid

    metrics = httpx.get(f"http://127.0.0.1:{operator.health_port}/metrics").text
    assert 'harmony_backlog{namespace="fleet",pool="queue"}' in metrics
    assert 'harmony_estimated_wait_seconds{namespace="fleet",pool="queue"}' in metrics
    assert 'harmony_backlog{namespace="fleet",pool="shortfall"}' not in metrics
