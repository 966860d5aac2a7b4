"""`harmony operator` against kmock, a real Prometheus and real PostgreSQL: the
`EnforceReady` condition of Recommend-mode pools, and `minNodeLifetime` in Enforce mode.

`spec.readiness.minDays` is set to 24 seconds so that "days" of held SLA pass in the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.state.db import create_engine_for
from controller.state.models import Action, ActionResult, Pool
from tests.operator.conftest import E2E_STEP, Kube, OperatorProcess, store_model
from tests.operator.test_e2e import condition, e2e_spec, wait_for
from tests.prometheus import RunningPrometheus

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus, pytest.mark.slow]
MIN_SECONDS = 24.0
LIFETIME_SECONDS = 20.0


def target(name: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


async def test_enforce_ready_and_min_node_lifetime(
    kube: Kube,
    demand_prometheus: RunningPrometheus,
    operator_db: str,
    tiny_model_artifact: bytes,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    readiness = {"minDays": MIN_SECONDS / 86400}
    for name in ("held", "missed", "kept"):
        store_model(operator_db, name, tiny_model_artifact)
        kube.add_deployment(name, 1)
    # Five replicas of 10 cover the peaks of 50 at all times: the SLA holds whatever the
    # timing of the cycles on a loaded machine.
    await kube.create_pool(
        "held",
        e2e_spec(
            demand_prometheus.url,
            mode="Recommend",
            target=target("held"),
            minReplicas=5,
            readiness=readiness,
        ),
    )
    # Two replicas can never serve a peak: the recommendations would miss the SLA.
    await kube.create_pool(
        "missed",
        e2e_spec(
            demand_prometheus.url,
            mode="Recommend",
            target=target("missed"),
            maxReplicas=2,
            readiness=readiness,
        ),
    )
    await kube.create_pool(
        "kept",
        e2e_spec(
            demand_prometheus.url,
            target=target("kept"),
            behavior={
                "scaleDown": {
                    "stabilizationWindow": "2s",
                    "minNodeLifetime": f"{LIFETIME_SECONDS:g}s",
                }
            },
        ),
    )
    operator = start_operator(operator_db)
    started = time.monotonic()
    seen: dict[str, list[tuple[float, str, str]]] = {"held": [], "missed": []}
    replicas: list[tuple[float, int]] = []

    def watch() -> None:
        now = time.monotonic() - started
        for name, history in seen.items():
            found = condition(kube.pool(name), "EnforceReady")
            if found and (not history or history[-1][1:] != (found["status"], found["reason"])):
                history.append((now, found["status"], found["reason"]))
        replicas.append((now, kube.replicas("kept")))

    def ready() -> bool:
        watch()
        return bool(seen["held"]) and seen["held"][-1][1] == "True"

    await wait_for(ready, 180, "EnforceReady=True on the pool that held the SLA", operator)
    held = seen["held"]
    assert held[0][1:] == ("False", "CollectingEvidence"), held
    # True only once minDays of observed demand had been recorded after the first cycle.
    assert held[-1][0] - held[0][0] >= MIN_SECONDS - 2 * E2E_STEP.total_seconds(), held
    message = condition(kube.pool("held"), "EnforceReady")["message"]
    assert message.startswith("Ready for Enforce") and "replica-hours" in message
    assert kube.scale_patches("held") == []  # Recommend never scales the target

    missed = seen["missed"]
    assert missed and missed[-1][1:] == ("False", "SLAMissed"), missed
    assert all(status == "False" for _, status, _ in missed)
    assert "would have been missed" in condition(kube.pool("missed"), "EnforceReady")["message"]

    # minNodeLifetime: each scale-down of "kept" comes at least the lifetime after the
    # scale-up before it (one interval of slack for a cycle's slot), and one does come.
    # Timed by the operator's own action records: sampling the target from this process
    # sees a change only when the loaded machine lets it look.
    deadline = time.monotonic() + 3 * LIFETIME_SECONDS
    while time.monotonic() < deadline and not _down_after_up(operator_db, "kept"):
        await asyncio.sleep(0.5)
    delays = _down_after_up(operator_db, "kept")
    assert delays, replicas[-40:]
    assert min(delays) >= LIFETIME_SECONDS - E2E_STEP.total_seconds(), (delays, replicas[-80:])


def _down_after_up(database_url: str, pool: str) -> list[float]:
    """Seconds from each applied scale-up of `pool` to the next applied scale-down, by the
    times the operator recorded them."""
    engine = create_engine_for(database_url)
    try:
        with Session(engine) as session:
            actions = session.execute(
                select(Action.created_at, Action.from_replicas, Action.to_replicas)
                .join(Pool, Pool.id == Action.pool_id)
                .where(Pool.name == pool, Action.result == ActionResult.succeeded)
                .order_by(Action.created_at)
            ).all()
    finally:
        engine.dispose()
    delays, last_up = [], None
    for at, before, after in actions:
        if after > before:
            last_up = at
        elif after < before and last_up is not None:
            delays.append((at - last_up).total_seconds())
    return delays
