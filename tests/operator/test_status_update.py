"""What a cycle's outcome writes to the PoolAutoscaler's status, and the Events it posts."""

from __future__ import annotations

import datetime as dt

from controller.actuators.base import ScaleResult
from controller.cycle import PoolOutcome
from controller.operator.runtime import status_update

EARLIER = dt.datetime(2026, 1, 5, 0, 0, tzinfo=dt.UTC)
NOW = EARLIER + dt.timedelta(minutes=5)


def decided(**changes: object) -> PoolOutcome:
    outcome = PoolOutcome(key="fleet/p1", cycle_at=NOW, replicas=4, recommended=6)
    outcome.conditions = {
        "Ready": ("True", "Decided", "6 replicas keep the shortfall probability within 1%"),
        "MetricsAvailable": ("True", "MetricsComplete", "every indicator has every point"),
        "ModelReady": ("True", "ModelLoaded", "model version 3 forecasts the pool"),
    }
    for name, value in changes.items():
        setattr(outcome, name, value)
    return outcome


def test_a_first_cycle_sets_every_condition_and_announces_each() -> None:
    fields, events = status_update(decided(), {}, "Enforce", 2, NOW)
    assert [c["type"] for c in fields["conditions"]] == [
        "Ready",
        "MetricsAvailable",
        "ModelReady",
        "Invalid",
    ]
    assert fields["mode"] == "Enforce" and fields["observedGeneration"] == 2
    assert fields["recommendedReplicas"] == 6 and "lastScaleTime" not in fields
    assert [reason for _, reason, _ in events] == [
        "Decided",
        "MetricsComplete",
        "ModelLoaded",
        "SpecValid",
    ]
    assert all(kind == "Normal" for kind, _, _ in events)


def test_a_steady_cycle_posts_nothing_and_keeps_transition_times() -> None:
    first, _ = status_update(decided(), {}, "Enforce", 1, EARLIER)
    fields, events = status_update(decided(), first, "Enforce", 1, NOW)
    assert events == []
    assert {c["lastTransitionTime"] for c in fields["conditions"]} == {"2026-01-05T00:00:00Z"}


def test_a_scale_and_a_lost_metric_are_announced_as_such() -> None:
    first, _ = status_update(decided(), {}, "Enforce", 1, EARLIER)
    scaled = decided(
        action=ScaleResult("fleet/p1", "fleet/p1@t", 4, 6, applied=True, message="scaled 4 → 6"),
        replicas=6,
    )
    scaled.conditions["MetricsAvailable"] = ("False", "MetricsUnavailable", "Prometheus is down")
    fields, events = status_update(scaled, first, "Enforce", 1, NOW)
    assert fields["lastScaleTime"] == "2026-01-05T00:05:00Z"
    assert ("Normal", "Scaled", "scaled 4 → 6") in events
    assert ("Warning", "MetricsUnavailable", "Prometheus is down") in events
    metrics = next(c for c in fields["conditions"] if c["type"] == "MetricsAvailable")
    assert metrics["lastTransitionTime"] == "2026-01-05T00:05:00Z"


def test_replicas_changed_by_someone_else_are_announced() -> None:
    first, _ = status_update(decided(), {}, "Recommend", 1, EARLIER)
    fields, events = status_update(decided(replicas=5), first, "Recommend", 1, NOW)
    assert fields["replicas"] == 5
    assert events == [("Normal", "ReplicasChanged", "the target now has 5 replicas (was 4)")]
