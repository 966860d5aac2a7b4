"""`harmony operator` as a process against kmock, a real Prometheus and real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.operator.conftest import E2E_STEP, Kube, OperatorProcess, store_model
from tests.operator.helpers import HIGH, PEAK_STEPS, PERIOD, is_peak, pool_spec_document
from tests.prometheus import RunningPrometheus

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus, pytest.mark.slow]
NEEDED_AT_PEAK = int(HIGH / 10.0)


def e2e_spec(prometheus_url: str, **changes: Any) -> dict[str, Any]:
    spec = pool_spec_document(
        target={"apiVersion": "apps/v1", "kind": "Deployment", "name": "inference"},
        interval="2s",
        provisioningDelay="4s",
        indicators=[
            {"name": "demand", "query": 'harmony_e2e_demand{pool="p1"}', "level": 1, "demand": True}
        ],
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


async def wait_for(
    check: Callable[[], bool],
    seconds: float,
    what: str,
    operator: OperatorProcess | None = None,
    state: Callable[[], Any] | None = None,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    if operator is not None and operator.process.poll() is None:
        operator.process.send_signal(signal.SIGUSR1)  # thread stacks into the log
        await asyncio.sleep(1)
    log = operator.log()[-3000:] if operator is not None else ""
    seen = state() if state is not None else ""
    pytest.fail(f"timed out waiting for {what}; state {seen}\n{log}")


def scaled_before_and_after(
    samples: list[tuple[float, int]], step: float
) -> tuple[float, int] | None:
    """(start of a peak whose replicas were ready when it began, a later off-peak count
    below what the peak needed), or None while not seen yet."""
    for start in peak_starts(samples):
        at_start = [r for s, r in samples if start - step / 2 <= s <= start + 0.3]
        if not at_start or min(at_start) < NEEDED_AT_PEAK:
            continue
        for s, r in samples:
            if (
                s > start + (PEAK_STEPS + 1) * step
                and not is_peak(at(s), E2E_STEP)
                and not is_peak(at(s + 2 * step), E2E_STEP)
                and r < NEEDED_AT_PEAK
            ):
                return start, r
    return None


def at(stamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(stamp, tz=dt.UTC)


def peak_starts(samples: list[tuple[float, int]]) -> list[float]:
    return [
        s
        for s, _ in samples
        if is_peak(at(s), E2E_STEP) and not is_peak(at(s) - E2E_STEP, E2E_STEP)
    ]


async def test_enforce_recommend_invalid_and_prometheus_stopped(
    kube: Kube,
    demand_prometheus: RunningPrometheus,
    operator_db: str,
    tiny_model_artifact: bytes,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    store_model(operator_db, "p1", tiny_model_artifact)
    store_model(operator_db, "p2", tiny_model_artifact)
    kube.add_deployment("inference", 1)
    kube.add_deployment("shadow", 1)
    await kube.create_pool("p1", e2e_spec(demand_prometheus.url))
    await kube.create_pool(
        "p2",
        e2e_spec(
            demand_prometheus.url,
            mode="Recommend",
            target={"apiVersion": "apps/v1", "kind": "Deployment", "name": "shadow"},
        ),
    )
    broken = e2e_spec(demand_prometheus.url)
    broken["indicators"] = [
        *broken["indicators"],
        {"name": "again", "query": "vector(1)", "level": 2, "demand": True},
    ]
    await kube.create_pool("p3", broken)
    operator = start_operator(operator_db)
    await wait_for(
        lambda: condition(kube.pool("p1"), "ModelReady").get("status") == "True",
        60,
        "ModelReady=True",
        operator,
        lambda: [(r.method, r.url.path, r.data) for r in kube.mock if "p1" in r.url.path][-6:],
    )

    # Enforce: the replicas a peak needs are there when it begins, and go after it. On two
    # shared cores a cycle can miss its slot, so one covered peak followed by a scale-down
    # is the proof; the watch ends as soon as it is seen (or after 3.5 periods).
    step = E2E_STEP.total_seconds()
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + 3.5 * PERIOD * step
    proof: tuple[float, int] | None = None
    while proof is None and time.monotonic() < deadline:
        samples.append((time.time(), kube.replicas("inference")))
        proof = scaled_before_and_after(samples, step)
        await asyncio.sleep(0.25)
    assert proof is not None, samples
    pool = kube.pool("p1")
    assert condition(pool, "Ready")["status"] == "True"
    assert condition(pool, "MetricsAvailable")["status"] == "True"
    assert condition(pool, "Invalid")["status"] == "False"
    assert pool["status"]["mode"] == "Enforce"

    # Recommend: decisions reported, never a patch. Its first cycle may still be running on
    # a loaded machine, so wait for the status it writes before reading it.
    await wait_for(
        lambda: "recommendedReplicas" in kube.pool("p2").get("status", {}),
        60,
        "p2 status.recommendedReplicas",
        operator,
    )
    shadow = kube.pool("p2")
    assert shadow["status"]["recommendedReplicas"] >= 1
    assert kube.scale_patches("shadow") == []
    assert kube.replicas("shadow") == 1

    # Invalid: the condition names the field the schema could not check.
    invalid = condition(kube.pool("p3"), "Invalid")
    assert invalid["status"] == "True" and invalid["message"].startswith("spec.indicators:")
    assert "demand" in invalid["message"]

    health = f"http://127.0.0.1:{operator.health_port}"
    metrics = httpx.get(f"{health}/metrics").text
    assert 'harmony_cycles_total{namespace="fleet",pool="p1"}' in metrics
    assert 'harmony_recommended_replicas{namespace="fleet",pool="p2"}' in metrics
    assert httpx.get(f"{health}/readyz").status_code == 200
    assert httpx.get(f"{health}/healthz").status_code == 200

    # Prometheus stops: the replicas are held, and the condition says why.
    demand_prometheus.stop()
    held = kube.replicas("inference")
    patches = len(kube.scale_patches("inference"))
    await wait_for(
        lambda: condition(kube.pool("p1"), "MetricsAvailable").get("status") == "False",
        20,
        "MetricsAvailable=False",
        operator,
    )
    await asyncio.sleep(PERIOD * step / 2)
    assert kube.replicas("inference") == held
    assert len(kube.scale_patches("inference")) == patches
    assert "holding" in kube.pool("p1")["status"]["reason"]


def serving(operator: OperatorProcess) -> bool:
    try:
        url = f"http://127.0.0.1:{operator.health_port}/healthz"
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def lease_holder(kube: Kube) -> str:
    for (resource, _, name), lease in list(kube.mock.objects.items()):
        if "leases" in str(resource) and name == "harmony-operator" and not lease.deleted:
            return str(lease.raw.get("spec", {}).get("holderIdentity") or "")
    return ""


def action_rows(database_url: str) -> list[Any]:
    from sqlalchemy import select

    from controller.state.db import create_engine_for, make_session_factory
    from controller.state.models import Action

    engine = create_engine_for(database_url)
    with make_session_factory(engine)() as session:
        rows = list(session.scalars(select(Action).order_by(Action.id)).all())
    engine.dispose()
    return rows


async def test_crash_between_decide_and_act_then_the_standby_acts_once(
    kube: Kube,
    demand_prometheus: RunningPrometheus,
    operator_db: str,
    tiny_model_artifact: bytes,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    from controller.operator.records import PENDING_MESSAGE

    store_model(operator_db, "p1", tiny_model_artifact)
    kube.add_deployment("inference", 1)
    await kube.create_pool("p1", e2e_spec(demand_prometheus.url))
    crashing = start_operator(operator_db, "--crash-before-act")
    await wait_for(lambda: lease_holder(kube) == "operator-0", 30, "operator-0 leads", crashing)
    standby = start_operator(operator_db)
    # The leader records its first action's intent, then dies before patching.
    await wait_for(lambda: crashing.process.poll() is not None, 90, "the failpoint", crashing)
    assert crashing.process.returncode == 75, crashing.log()[-2000:]
    assert kube.scale_patches("inference") == []
    (intent,) = action_rows(operator_db)
    assert intent.message == PENDING_MESSAGE
    # The standby takes over once the lease expires, settles the intent and acts.
    await wait_for(lambda: lease_holder(kube) == "operator-1", 30, "the takeover", standby)
    await wait_for(lambda: len(kube.scale_patches("inference")) >= 2, 60, "scaling", standby)
    third = start_operator(operator_db)  # a second replica beside the new leader
    await wait_for(lambda: serving(third), 60, "the third operator's /healthz", third)
    await asyncio.sleep(4)
    rows = action_rows(operator_db)
    assert all(row.message != PENDING_MESSAGE for row in rows[:-1])
    assert rows[0].idempotency_key == intent.idempotency_key
    applied = [
        row
        for row in rows
        if row.result.value == "succeeded" and row.from_replicas != row.to_replicas
    ]
    # Every patch the API server saw is one recorded action: none twice, none unrecorded.
    patches = kube.scale_patches("inference")
    assert len(patches) in (len(applied), len(applied) + 1)  # the last may be mid-record
    assert len({row.idempotency_key for row in rows}) == len(rows)
    leader_metrics = httpx.get(f"http://127.0.0.1:{standby.health_port}/metrics").text
    third_metrics = httpx.get(f"http://127.0.0.1:{third.health_port}/metrics").text
    assert "harmony_leader 1.0" in leader_metrics
    assert 'harmony_cycles_total{namespace="fleet",pool="p1"}' in leader_metrics
    assert "harmony_leader 0.0" in third_metrics
    assert "harmony_cycles_total{" not in third_metrics
