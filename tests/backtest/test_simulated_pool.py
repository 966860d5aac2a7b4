"""The simulated pool: provisioning delay, immediate removal, idempotency, exact billing."""

from __future__ import annotations

import datetime as dt

import pytest

from controller.actuators import Actuator, SimulatedActuator, SimulatedPool
from controller.clock import ManualClock
from controller.errors import HarmonyError

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def make_pool(delay_minutes: int = 10, **kwargs: object) -> tuple[SimulatedPool, ManualClock]:
    clock = ManualClock(T0)
    pool = SimulatedPool("gpu", clock, delay_minutes * MINUTE, **kwargs)  # type: ignore[arg-type]
    return pool, clock


def test_scale_up_becomes_usable_after_the_delay() -> None:
    pool, clock = make_pool(initial_replicas=2)
    result = pool.scale("gpu", 5, "cycle-1")
    assert (result.from_replicas, result.to_replicas, result.applied) == (2, 5, True)
    state = pool.current("gpu")
    assert state.usable == 2
    assert state.in_flight_count == 3
    assert state.in_flight[0].ready_at == T0 + 10 * MINUTE
    clock.advance(9 * MINUTE)
    assert pool.current("gpu").usable == 2
    clock.advance(MINUTE)
    state = pool.current("gpu")
    assert (state.usable, state.in_flight_count, state.desired) == (5, 0, 5)


def test_scale_down_cancels_in_flight_first_then_removes_at_once() -> None:
    pool, clock = make_pool(initial_replicas=4)
    pool.scale("gpu", 6, "a")  # 2 ready at +10
    clock.advance(5 * MINUTE)
    pool.scale("gpu", 9, "b")  # 3 ready at +15
    pool.scale("gpu", 7, "c")  # cancels 2 of the latest batch
    state = pool.current("gpu")
    assert state.usable == 4
    assert [(b.count, b.ready_at) for b in state.in_flight] == [
        (2, T0 + 10 * MINUTE),
        (1, T0 + 15 * MINUTE),
    ]
    pool.scale("gpu", 1, "d")  # every in-flight replica cancelled, 3 usable removed now
    state = pool.current("gpu")
    assert (state.usable, state.in_flight_count) == (1, 0)


def test_pinned_replicas_are_never_removed() -> None:
    pool, _ = make_pool(initial_replicas=5, pinned=3)
    result = pool.scale("gpu", 0, "k")
    assert result.to_replicas == 3
    assert "pinned" in result.message
    assert pool.current("gpu").usable == 3


def test_idempotency_key_acts_once() -> None:
    pool, _ = make_pool(initial_replicas=1)
    first = pool.scale("gpu", 4, "cycle-7")
    again = pool.scale("gpu", 9, "cycle-7")
    assert again.duplicate and not again.applied
    assert (again.from_replicas, again.to_replicas) == (first.from_replicas, first.to_replicas)
    assert pool.current("gpu").desired == 4
    assert pool.account.actions == 1


def test_billing_is_exact_and_counts_provisioning_replicas() -> None:
    # 2 replicas for 30 min; at 30 min ask for 5 (3 provisioning for 10 min); at 60 min
    # drop to 1. Billed: 2*30 + 5*30 = 210 replica-minutes; usable: 2*40 + 5*20 = 180.
    pool, clock = make_pool(initial_replicas=2, price_per_replica_hour=3.0)
    clock.advance(30 * MINUTE)
    pool.scale("gpu", 5, "up")
    clock.advance(30 * MINUTE)
    pool.scale("gpu", 1, "down")
    assert pool.account.billed_replica_hours == pytest.approx(210 / 60)
    assert pool.account.usable_replica_hours == pytest.approx(180 / 60)
    assert pool.cost == pytest.approx(3.0 * 210 / 60)
    # Accounting does not depend on how often the pool is looked at.
    clock.advance(60 * MINUTE)
    assert pool.account.billed_replica_hours == pytest.approx(210 / 60)
    pool.current("gpu")
    assert pool.account.billed_replica_hours == pytest.approx(270 / 60)


def test_zero_delay_is_usable_at_once() -> None:
    pool, _ = make_pool(delay_minutes=0)
    pool.scale("gpu", 3, "x")
    assert pool.current("gpu").usable == 3
    assert pool.usable_capacity() == 3.0


def test_bad_requests_are_clear_errors() -> None:
    pool, _ = make_pool()
    with pytest.raises(HarmonyError, match="cannot scale to -1"):
        pool.scale("gpu", -1, "bad")
    with pytest.raises(HarmonyError, match="asked about pool 'cpu'"):
        pool.current("cpu")
    actuator: Actuator = SimulatedActuator([pool])
    with pytest.raises(HarmonyError, match="no simulated pool named 'cpu'"):
        actuator.current("cpu")
    assert actuator.scale("gpu", 2, "ok").to_replicas == 2
