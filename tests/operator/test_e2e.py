"""`harmony operator` as a process against kmock, a real Prometheus and real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.operator.conftest import (
    E2E_STEP,
    DemandPrometheus,
    Kube,
    OperatorProcess,
    store_model,
)
from tests.operator.helpers import HIGH, PEAK_STEPS, PERIOD, is_peak, pool_spec_document

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus, pytest.mark.slow]
NEEDED_AT_PEAK = int(HIGH / 10.0)


def e2e_spec(prometheus_url: str, **changes: Any) -> dict[str, Any]:
    spec = pool_spec_document(
        target={"apiVersion": "apps/v1", "kind": "Deployment", "name": "inference"},
        interval="2s",
        provisioningDelay="4s",
        indicators=[{"name": "demand", "query": 'harmony_e2e_demand{pool="p1"}', "level": 1,
                     "demand": True}],
        behavior={"scaleDown": {"stabilizationWindow": "2s"}},
        prometheus={"url": prometheus_url, "timeout": "2s"},
        model={"contextSteps": PERIOD, "horizonSteps": 4},
    )
    spec.update(changes)
    return spec


def condition(pool: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in pool.get("status", {}).get("conditions", []):
        if entry["type"] == kind:
            return dict(entry)
    return {}


async def wait_for(check: Callable[[], bool], seconds: float, what: str,
                   operator: OperatorProcess | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    log = operator.log()[-4000:] if operator is not None else ""
    pytest.fail(f"timed out waiting for {what}\n{log}")


async def watch_replicas(kube: Kube, name: str, seconds: float) -> list[tuple[float, int]]:
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append((time.time(), kube.replicas(name)))
        await asyncio.sleep(0.25)
    return samples


async def test_enforce_scales_up_before_the_peak_and_down_after(
    kube: Kube, demand_prometheus: DemandPrometheus, operator_db: str,
    tiny_model_artifact: bytes, start_operator: Callable[..., OperatorProcess],
) -> None:
    store_model(operator_db, "p1", tiny_model_artifact)
    kube.add_deployment("inference", 1)
    await kube.create_pool("p1", e2e_spec(demand_prometheus.url))
    operator = start_operator(operator_db)
    await wait_for(lambda: condition(kube.pool("p1"), "ModelReady").get("status") == "True",
                   60, "ModelReady=True", operator)
    samples = await watch_replicas(kube, "inference", 2.5 * PERIOD * E2E_STEP.total_seconds())
    step = E2E_STEP.total_seconds()
    from datetime import UTC, datetime, timedelta

    def at(stamp: float) -> datetime:
        return datetime.fromtimestamp(stamp, tz=UTC)

    peak_starts = [s for s, _ in samples if is_peak(at(s), E2E_STEP)
                   and not is_peak(at(s) - timedelta(seconds=step), E2E_STEP)]
    assert peak_starts, "no peak began while watching"
    for start in peak_starts:
        # The replicas needed at the peak were there when it began: asked for beforehand.
        ready = [r for s, r in samples if start - step / 2 <= s <= start + 0.3]
        assert ready and min(ready) >= NEEDED_AT_PEAK, (start, samples)
    lows = [r for s, r in samples if s > peak_starts[0] + (PEAK_STEPS + 3) * step
            and not is_peak(at(s), E2E_STEP)
            and not is_peak(at(s) + timedelta(seconds=2 * step), E2E_STEP)]
    assert lows and min(lows) < NEEDED_AT_PEAK, samples
    pool = kube.pool("p1")
    assert condition(pool, "Ready")["status"] == "True"
    assert condition(pool, "MetricsAvailable")["status"] == "True"
    assert pool["status"]["mode"] == "Enforce"
    metrics = httpx.get(f"http://127.0.0.1:{operator.health_port}/metrics").text
    assert 'harmony_cycles_total{namespace="fleet",pool="p1"}' in metrics
    assert httpx.get(f"http://127.0.0.1:{operator.health_port}/readyz").status_code == 200
