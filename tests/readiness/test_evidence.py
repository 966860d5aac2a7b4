"""Readiness evidence: recorded recommendations replayed through the simulated pool with
the pool's provisioning delay, weighed on the demand the cycles observed."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from controller.operator.spec import PoolConfig, parse_spec
from controller.readiness import RecordedCycle, assess
from tests.operator.helpers import pool_spec_document

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def config(**changes: object) -> PoolConfig:
    # capacity 10 per replica, 1-hour interval, 2-hour provisioning delay, ε = 5%
    document = pool_spec_document(interval="1h", provisioningDelay="2h", **changes)
    return parse_spec("fleet", "pool", document, None)


def record(
    demand: list[float], recommended: list[int], ran: int = 6, skip: frozenset[int] = frozenset()
) -> list[RecordedCycle]:
    """Cycle i recommends `recommended[i]` and observes the demand of slot i - 1."""
    return [
        RecordedCycle(
            at=T0 + i * HOUR,
            recommended=recommended[i],
            desired=ran,
            usable=ran,
            demand_before=None if i == 0 else demand[i - 1],
        )
        for i in range(len(recommended))
        if i not in skip
    ]


def test_replica_hours_and_shortfall_follow_the_replayed_pool() -> None:
    # Demand rises from 20 to 50 at slot 4; the recommendation rises at slot 3, so the
    # 2-hour delay leaves slots 3 and 4 short (usable 2 then 2 against 50 at slot 4: one
    # short step), and the pool that ran 6 replicas all along is never short.
    demand = [20.0] * 4 + [50.0] * 6
    recommended = [2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5]
    evidence = assess(record(demand, recommended), config(), T0, T0 + 11 * HOUR)
    assert evidence.observed_days == pytest.approx(10 / 24)
    assert evidence.recommended.shortfall_steps == 1  # slot 4: 2 usable replicas, demand 50
    assert evidence.actual.shortfall_steps == 0
    # Billed from the request: 2 replicas for slots 0-2, 5 from slot 3 on (11 slots).
    assert evidence.recommended.replica_hours == pytest.approx(3 * 2 + 8 * 5)
    assert evidence.actual.replica_hours == pytest.approx(11 * 6)
    assert not evidence.sla_held and evidence.reason == "SLAMissed"
    assert "would have been missed" in evidence.message()


def test_ready_only_after_min_days_of_observed_demand_within_the_sla() -> None:
    hours = 24 * 3
    demand = [30.0] * hours
    recommended = [4] * (hours + 1)
    short = assess(record(demand, recommended), config(readiness={"minDays": 3}), T0, T0)
    assert short.observed_days == pytest.approx(3.0)
    assert short.ready and short.reason == "EvidenceSufficient"
    assert short.recommended.replica_hours < short.actual.replica_hours
    assert "Ready for Enforce" in short.message()
    assert len(short.days) == 4 and short.days[0].observed_days == pytest.approx(1.0)
    gaps = record(demand, recommended, skip=frozenset({10, 11}))
    waiting = assess(gaps, config(readiness={"minDays": 3}), T0, T0)
    assert waiting.observed_days == pytest.approx(3.0 - 2 / 24)
    assert not waiting.ready and waiting.reason == "CollectingEvidence"
    assert "3 days of observed demand needed" in waiting.message()


def test_actions_per_day_are_counted_for_both_sides() -> None:
    demand = [30.0] * 24
    recommended = [4, 5] * 12 + [4]
    evidence = assess(record(demand, recommended), config(), T0, T0)
    assert evidence.recommended.actions_per_day == pytest.approx(
        24.0
    )  # 25 changes in 25 hourly slots
    assert evidence.actual.actions_per_day == 0.0


def test_a_cycle_that_held_for_missing_metrics_recommends_nothing() -> None:
    demand = [30.0] * 6
    cycles = record(demand, [4] * 7)
    cycles[3] = dataclasses.replace(cycles[3], recommended=6, held=True)
    evidence = assess(cycles, config(), T0, T0)
    # The replayed pool keeps its 4 replicas through the held cycle.
    assert evidence.recommended.replica_hours == pytest.approx(7 * 4)
    assert evidence.recommended.actions_per_day == pytest.approx(24 / 7)  # the first: 6 → 4
