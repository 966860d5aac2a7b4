"""Replay accounting on hand-made traces: exact replica-hours, shortfall, actions, utilisation."""

from __future__ import annotations

import numpy as np
import pytest

from controller.backtest.metrics import account
from controller.backtest.replay import initial_replicas, replay
from controller.backtest.scenario import Scenario
from decision.types import PoolSpec
from tests.backtest.helpers import STEP, T0, ScriptedPolicy

HOURS_PER_STEP = STEP.total_seconds() / 3600


def hand_made(demand: list[float], decide_from: int, delay_steps: int) -> Scenario:
    spec = PoolSpec(
        capacity_per_replica=2.0,
        max_replicas=20,
        provisioning_delay_steps=delay_steps,
        step_seconds=STEP.total_seconds(),
        price_per_replica_hour=3.0,
    )
    return Scenario("hand", np.asarray(demand), T0, STEP, decide_from, spec)


def test_provisioning_delay_shortfall_and_billing_are_exact() -> None:
    # History ends at demand 4 -> 2 replicas of capacity 2 to start with.
    # Decided steps: demand 4, 8, 8, 8, 2, 2; the policy asks 2, 4, 4, 4, 1, 1.
    # Delay 2 steps: the 2 extra replicas asked at step 1 are usable from step 3.
    scenario = hand_made([3, 4, 4, 8, 8, 8, 2, 2], decide_from=2, delay_steps=2)
    assert initial_replicas(scenario) == 2
    policy = ScriptedPolicy(scenario.spec, [2, 4, 4, 4, 1, 1])
    trace = replay(scenario, policy)
    assert trace.usable.tolist() == [2, 2, 2, 4, 1, 1]
    assert trace.billed.tolist() == [2, 4, 4, 4, 1, 1]
    metrics = account(
        scenario.decided_demand(),
        trace.usable,
        trace.billed,
        capacities=(2.0,),
        step_seconds=STEP.total_seconds(),
        price_per_replica_hour=3.0,
        initial_desired=2,
    )
    assert metrics.replica_hours == pytest.approx(16 * HOURS_PER_STEP)
    assert metrics.cost == pytest.approx(48 * HOURS_PER_STEP)
    # Steps 1 and 2: demand 8 against usable 4 -> 4 units short each.
    assert metrics.shortfall_steps == 2
    assert metrics.shortfall_rate == pytest.approx(2 / 6)
    assert metrics.shortfall_unit_hours == pytest.approx(8 * HOURS_PER_STEP)
    # Desired count changed at steps 1 (2->4) and 4 (4->1).
    assert metrics.actions_per_day == pytest.approx(2 / (6 * HOURS_PER_STEP / 24))
    served = 4 + 4 + 4 + 8 + 2 + 2
    offered = 4 + 4 + 4 + 8 + 2 + 2
    assert metrics.mean_utilization == pytest.approx(served / offered)


def test_policies_see_only_the_past_and_learn_the_present() -> None:
    scenario = hand_made([1, 2, 3, 4, 5, 6], decide_from=3, delay_steps=1)
    policy = ScriptedPolicy(scenario.spec, [3, 3, 3])
    replay(scenario, policy)
    last_seen = [float(obs.recent_demand[-1, 0]) for obs in policy.seen]
    assert last_seen == [3.0, 4.0, 5.0]
    assert policy.realised == [4.0, 5.0, 6.0]


def test_in_flight_replicas_are_reported_with_their_ready_step() -> None:
    scenario = hand_made([2, 2, 2, 2, 2, 2, 2], decide_from=2, delay_steps=3)
    policy = ScriptedPolicy(scenario.spec, [4, 4, 4, 4, 4])
    replay(scenario, policy)
    in_flight = [[(b.replicas, b.usable_in_steps) for b in obs.in_flight] for obs in policy.seen]
    assert in_flight == [[], [(3, 2)], [(3, 1)], [], []]
    assert [obs.replicas_usable for obs in policy.seen] == [1, 1, 1, 4, 4]


def test_gaps_count_neither_way_and_scale_down_is_immediate() -> None:
    scenario = hand_made([2, 6, float("nan"), 6, 6], decide_from=2, delay_steps=5)
    policy = ScriptedPolicy(scenario.spec, [3, 3, 1])
    trace = replay(scenario, policy)
    # Scale-up 3 -> 3 nothing; scale-down to 1 at the last step takes effect at once.
    assert trace.usable.tolist() == [3, 3, 1]
    metrics = account(
        scenario.decided_demand(),
        trace.usable,
        trace.billed,
        capacities=(2.0,),
        step_seconds=STEP.total_seconds(),
        price_per_replica_hour=1.0,
        initial_desired=3,
    )
    assert metrics.shortfall_steps == 1  # the NaN step is skipped, the last one falls short
    assert metrics.shortfall_rate == pytest.approx(1 / 2)
    assert metrics.shortfall_unit_hours == pytest.approx(4 * HOURS_PER_STEP)


def test_growing_pool_is_usable_exactly_delay_steps_later() -> None:
    rng = np.random.default_rng(3)
    scenario = hand_made(list(rng.uniform(0, 30, 200)), decide_from=50, delay_steps=3)
    start = initial_replicas(scenario)
    counts = [int(c) for c in np.maximum.accumulate(rng.integers(start, 20, 150))]
    trace = replay(scenario, ScriptedPolicy(scenario.spec, counts))
    expected_usable = [start] * 3 + counts[:-3]
    assert trace.usable.tolist() == expected_usable
    assert trace.billed.tolist() == counts
    shrinking = sorted(counts, reverse=True)
    trace = replay(scenario, ScriptedPolicy(scenario.spec, [max(counts), *shrinking[1:]]))
    assert trace.usable.tolist()[3:] == shrinking[3:]
