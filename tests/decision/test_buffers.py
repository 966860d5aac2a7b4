"""Capacity buffers: the CapacityBuffer/overprovisioning pattern, its window-maximum
variant and the buffer an SRE refits daily on the trailing week."""

from __future__ import annotations

import json

import numpy as np
import pytest

from decision import InvalidDecisionInput, PoolObservation, PoolSpec, make_policy
from decision.buffers import fitted_spare

SPEC = PoolSpec(capacity_per_replica=2.0, max_replicas=100, step_seconds=300.0,
                provisioning_delay_steps=2)  # fmt: skip


def seen(demand: list[float], usable: int = 0) -> PoolObservation:
    return PoolObservation(usable, recent_demand=np.asarray(demand, dtype=float))


def test_buffer_adds_spare_replicas_and_keeps_them_ten_unneeded_minutes() -> None:
    buffer = make_policy("buffer", SPEC, knob=3)
    # 9 units need 5 replicas of 2; plus 3 spare.
    assert buffer.decide(seen([9.0]), None).replicas == 8
    # Demand falls: the pool holds 8 for the 10 unneeded minutes (2 steps), then shrinks.
    assert [buffer.decide(seen([1.0], 8), None).replicas for _ in range(3)] == [8, 4, 4]


def test_buffer_percent_spares_a_share_of_the_reactive_capacity() -> None:
    buffer = make_policy("buffer-percent", SPEC, knob=0.25)
    assert buffer.decide(seen([19.0]), None).replicas == 10 + 3  # ceil(0.25 x 10)


def test_window_buffer_covers_the_largest_demand_of_the_last_30_minutes() -> None:
    window = make_policy("window-buffer", SPEC, knob=1)
    demand = [30.0, 0, 0, 0, 0, 0, 4.0]  # the 30 is 7 steps back: outside the 6-step window
    assert window.decide(seen(demand), None).replicas == 2 + 1
    assert window.decide(seen([*demand[1:], 12.0]), None).replicas == 6 + 1


def test_missing_metrics_never_scale_a_buffer_down() -> None:
    window = make_policy("window-buffer", SPEC, knob=0)
    decision = window.decide(seen([float("nan")] * 6, usable=7), None)
    assert decision.replicas == 7


def test_the_refit_finds_the_smallest_spare_that_held_the_rate_on_the_week() -> None:
    day = 288
    demand = np.full(7 * day, 20.0)  # 10 replicas of 2
    jumps = np.arange(100, len(demand), 200)
    demand[jumps] = 30.0  # a jump of 5 replicas, unseen by the window before it
    rate = len(jumps) / (len(demand) - 8)
    assert fitted_spare(demand[:, None], SPEC, 6, rate * 1.01) == 0
    assert fitted_spare(demand[:, None], SPEC, 6, rate * 0.99) == 5
    assert fitted_spare(demand[: day // 2, None], SPEC, 6, 0.01) is None  # under a day


def test_self_tuning_buffer_refits_daily_and_round_trips_its_state() -> None:
    day = 288
    demand = np.full(2 * day - 10, 20.0)  # the last jump is 36 steps back
    demand[np.arange(50, len(demand), 40)] = 30.0  # 2.5% of steps jump by 5 replicas
    policy = make_policy("self-tuning-buffer", SPEC, knob=0.01)
    decision = policy.decide(seen(list(demand)), None)
    assert decision.replicas == 10 + 5
    restored = make_policy("self-tuning-buffer", SPEC, knob=0.01)
    restored.load_state(json.loads(json.dumps(policy.state())))
    assert restored.state() == policy.state()
    lenient = make_policy("self-tuning-buffer", SPEC, knob=0.05)
    assert lenient.decide(seen(list(demand)), None).replicas == 10


@pytest.mark.parametrize("name,knob", [("buffer", -1.0), ("self-tuning-buffer", 0.0)])
def test_bad_knobs_are_refused_with_the_field_named(name: str, knob: float) -> None:
    with pytest.raises(InvalidDecisionInput, match=r"policy: .* must be"):
        make_policy(name, SPEC, knob=knob)
