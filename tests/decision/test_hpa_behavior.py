"""The HPA's `behavior` block against the worked examples of the Kubernetes documentation
(tasks/run-application/horizontal-pod-autoscale, "Configurable scaling behavior").

Demand is in CPUs, one replica requests one CPU and the target is 100%, so the replica
calculator wants ceil(demand) replicas whenever the ratio is outside the tolerance.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from decision import BindingConstraint, InvalidDecisionInput, PoolObservation, PoolSpec
from decision.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    HpaBehavior,
    HpaPolicy,
    HpaScalingPolicy,
    HpaScalingRules,
    SelectPolicy,
    long_window_hpa,
)

CPU = PoolSpec(capacity_per_replica=1.0, min_replicas=1, max_replicas=1000, step_seconds=60)


def hpa(behavior: HpaBehavior | None = None, step_seconds: float = 60) -> HpaPolicy:
    return HpaPolicy(replace(CPU, step_seconds=step_seconds), 1.0, behavior)


def scale_down(
    window: int, *policies: HpaScalingPolicy, select: SelectPolicy = "Max"
) -> HpaBehavior:
    """Scale-down rules as in a documented example; scale-up keeps the defaults."""
    rules = HpaScalingRules(window, policies or DEFAULT_SCALE_DOWN.policies, select)
    return HpaBehavior(scale_down=rules)


def run(policy: HpaPolicy, demand: list[float], replicas: int) -> list[int]:
    """Closed loop with instant provisioning: each step's replicas are the last decision's."""
    decided = []
    for value in demand:
        observation = PoolObservation(replicas, recent_demand=np.array([value]))
        replicas = policy.decide(observation, None).replicas
        policy.observe(value)
        decided.append(replicas)
    return decided


def test_defaults_are_the_documented_default_behavior() -> None:
    # "Default Behavior": scale-down 300 s window, Percent 100 per 15 s; scale-up no window,
    # Percent 100 and Pods 4 per 15 s, selectPolicy Max; the tolerance is 10%.
    behavior = HpaBehavior()
    assert behavior.scale_down == HpaScalingRules(300, (HpaScalingPolicy("Percent", 100, 15),))
    assert behavior.scale_up.stabilization_window_seconds == 0
    assert set(behavior.scale_up.policies) == {
        HpaScalingPolicy("Percent", 100, 15),
        HpaScalingPolicy("Pods", 4, 15),
    }
    assert behavior.scale_up.select_policy == "Max" == behavior.scale_down.select_policy
    assert behavior.scale_up.tolerance == 0.1 == behavior.scale_down.tolerance
    assert (behavior.scale_up, behavior.scale_down) == (DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN)


def test_default_scale_up_adds_four_pods_or_100_percent_every_15_seconds() -> None:
    # "4 pods or a 100% of the currently running replicas will be added every 15 seconds
    # till the HPA reaches its steady state" (one decision per 15 s here).
    assert run(hpa(step_seconds=15), [40.0] * 5, replicas=1) == [5, 10, 20, 40, 40]
    # The same in 60 s steps: four 15 s periods compound within one step.
    assert run(hpa(step_seconds=60), [40.0] * 2, replicas=1) == [40, 40]
    assert run(hpa(step_seconds=60), [400.0], replicas=1) == [40]


def test_default_scale_down_removes_everything_once_the_300_s_window_has_passed() -> None:
    # Default scale-down: the highest recommendation of the last 300 s (the list starts
    # with the current replicas), then 100% may go in one period: 40 -> 4 at once.
    assert run(hpa(step_seconds=60), [4.0] * 6, replicas=40) == [40] * 5 + [4]


def test_scaling_policies_example_percent_above_40_replicas_pods_below() -> None:
    # "Scaling policies": Pods 4 and Percent 10 per 60 s, the default selectPolicy (Max)
    # takes the larger change: from 80 towards 10, 8 go first, then 8 of 72 (7.2 rounded
    # up), ...; at 40 replicas or fewer the Pods policy removes 4 at a time. The window is
    # set to 0 to show the policies alone.
    behavior = scale_down(0, HpaScalingPolicy("Pods", 4, 60), HpaScalingPolicy("Percent", 10, 60))
    expected = [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10, 10]
    assert run(hpa(behavior), [10.0] * 15, replicas=80) == expected
    # The change is allowed per 60 s period whatever the step: 15 s steps wait for it...
    assert run(hpa(behavior, step_seconds=15), [10.0] * 5, replicas=80) == [72] * 4 + [64]
    # ...and the five periods of a 300 s step compound.
    assert run(hpa(behavior, step_seconds=300), [10.0], replicas=80) == [45]


def test_limit_scale_down_rate_to_10_percent_per_minute() -> None:
    # "Example: limit scale down rate": Percent 10 per 60 s.
    behavior = scale_down(300, HpaScalingPolicy("Percent", 10, 60))
    decided = run(hpa(behavior), [10.0] * 9, replicas=100)
    # The 300 s window holds 100 first (steps 0-4), then 10% per minute: 90, 81, 72 (72.9).
    assert decided == [100] * 5 + [90, 81, 72, 64]


def test_select_policy_min_removes_no_more_than_5_pods_per_minute() -> None:
    # Percent 10 and Pods 5 per 60 s with selectPolicy Min: the smaller change, so at most
    # 5 per minute above 50 replicas and 10% below; with Max the larger one.
    policies = (HpaScalingPolicy("Percent", 10, 60), HpaScalingPolicy("Pods", 5, 60))
    smallest = run(hpa(scale_down(0, *policies, select="Min")), [10.0] * 14, replicas=100)
    assert smallest == [95, 90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40, 36, 32]
    largest = run(hpa(scale_down(0, *policies, select="Max")), [10.0] * 3, replicas=100)
    assert largest == [90, 81, 72]


def test_disable_scale_down() -> None:
    # "Example: disable scale down": selectPolicy Disabled turns scaling down off; scaling
    # up still works.
    behavior = HpaBehavior(scale_down=replace(DEFAULT_SCALE_DOWN, select_policy="Disabled"))
    policy = hpa(behavior)
    assert run(policy, [2.0] * 12, replicas=20) == [20] * 12
    decision = policy.decide(PoolObservation(20, recent_demand=np.array([2.0])), None)
    assert (decision.replicas, decision.binding) == (20, BindingConstraint.max_step_down)
    assert "disabled" in decision.reason
    policy.observe(2.0)
    assert run(policy, [30.0], replicas=20) == [30]


def test_stabilization_window_uses_the_highest_recommendation_of_the_last_5_minutes() -> None:
    # "Stabilization window": on scale-down the highest desired state of the past 300 s.
    # Desired per minute: 6, 8, 3, 3, ... from 10 replicas (the list starts with 10).
    decided = run(hpa(scale_down(300)), [6.0, 8.0] + [3.0] * 6, replicas=10)
    # 10 leaves the window at 300 s, 6 (recorded at 45 s) at 345 s, 8 (recorded at 105 s)
    # at 405 s, during the step starting at 360 s.
    assert decided == [10, 10, 10, 10, 10, 8, 3, 3]


def test_window_holds_the_desired_state_of_every_sync_of_a_step() -> None:
    # "All desired states from the past 5 minutes": the HPA records one every 15 s, so
    # the 80 wanted during the first minute (last recorded at 45 s) holds until 345 s,
    # leaving one 15 s period of the step starting at 300 s to halve (Percent 50 per 15 s).
    behavior = scale_down(300, HpaScalingPolicy("Percent", 50, 15))
    assert run(hpa(behavior), [80.0] + [10.0] * 6, 80) == [80] * 5 + [40, 10]


def test_change_downscale_stabilization_window_to_one_minute() -> None:
    # "Example: change downscale stabilization window" to 60 s: the first lower
    # recommendation takes effect one minute later.
    assert run(hpa(scale_down(60), step_seconds=15), [3.0] * 5, replicas=10) == [10] * 4 + [3]
    assert run(hpa(scale_down(60), step_seconds=60), [3.0] * 2, replicas=10) == [10, 3]


def test_scale_up_window_takes_the_lowest_recommendation() -> None:
    # stabilizationWindowSeconds on scaleUp: the lowest recommendation of the window, so
    # short spikes are ignored; once 60 s all want 30, the default rate (10 -> 20 -> 30).
    rules = replace(DEFAULT_SCALE_UP, stabilization_window_seconds=60)
    policy = hpa(HpaBehavior(scale_up=rules), step_seconds=15)
    demand = [10.0, 10.0, 30.0, 10.0] + [30.0] * 5
    assert run(policy, demand, 10) == [10] * 7 + [20, 30]


def test_scale_events_of_earlier_steps_count_within_a_longer_period() -> None:
    # Pods 5 per 600 s with 300 s steps: the removal at 0 s still counts at 300 s.
    behavior = scale_down(0, HpaScalingPolicy("Pods", 5, 600))
    assert run(hpa(behavior, step_seconds=300), [10.0] * 5, 100) == [95, 95, 90, 90, 85]


def test_tolerance_per_direction() -> None:
    # Configurable tolerance (autoscaling/v2 HPAScalingRules.tolerance): 5% down, 0% up.
    behavior = HpaBehavior(
        scale_up=replace(DEFAULT_SCALE_UP, tolerance=0.0),
        scale_down=replace(DEFAULT_SCALE_DOWN, stabilization_window_seconds=0, tolerance=0.05),
    )
    assert run(hpa(behavior), [10.5], 10) == [11]  # 1.05 > 1 + 0
    assert run(hpa(behavior), [9.6], 10) == [10]  # 0.96 >= 1 - 0.05
    assert run(hpa(behavior), [18.0], 20) == [18]  # 0.9 < 1 - 0.05
    # The default 10% both ways keeps both.
    default_tolerance = scale_down(0)
    assert run(hpa(default_tolerance), [10.5], 10) == [10]
    assert run(hpa(default_tolerance), [18.0], 20) == [20]


def test_long_window_variant_and_state_round_trip() -> None:
    policy = long_window_hpa(replace(CPU, step_seconds=300), 1.0)
    assert policy.name == "hpa-long"
    assert policy.behavior.scale_down.stabilization_window_seconds == 3600
    # A one-hour window maximum: the peak of 50 is held for 12 steps of 300 s.
    decided = run(policy, [50.0] + [5.0] * 12, replicas=5)
    assert decided == [50] * 12 + [5]
    # Rate-limit history survives state()/load_state(): without it the policy differs.
    behavior = scale_down(0, HpaScalingPolicy("Pods", 5, 600))
    first = hpa(behavior, step_seconds=300)
    assert run(first, [10.0], 100) == [95]
    restored, fresh = hpa(behavior, step_seconds=300), hpa(behavior, step_seconds=300)
    restored.load_state(json.loads(json.dumps(first.state())))
    fresh.observe(10.0)
    assert run(restored, [10.0], 95) == run(first, [10.0], 95) == [95]
    assert run(fresh, [10.0], 95) == [90]
    with pytest.raises(InvalidDecisionInput, match="cannot load state"):
        restored.load_state(policy.state())


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: HpaScalingPolicy("Pods", 0, 15), "HpaScalingPolicy.value"),
        (lambda: HpaScalingPolicy("Replicas", 1, 15), "HpaScalingPolicy.type"),  # type: ignore[arg-type]
        (lambda: HpaScalingPolicy("Pods", 1, 1801), "HpaScalingPolicy.period_seconds"),
        (lambda: HpaScalingRules(3601, DEFAULT_SCALE_UP.policies), "stabilization_window"),
        (lambda: HpaScalingRules(0, ()), "HpaScalingRules.policies"),
        (lambda: replace(DEFAULT_SCALE_UP, select_policy="Maximum"), "select_policy"),  # type: ignore[arg-type]
        (lambda: replace(DEFAULT_SCALE_UP, tolerance=-0.1), "HpaScalingRules.tolerance"),
    ],
)
def test_invalid_behavior_names_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidDecisionInput, match=field):
        build()  # type: ignore[operator]
