"""Churn limits: a minimum node lifetime and a scale-down rate, for every policy alike."""

from __future__ import annotations

import numpy as np
import pytest

from decision import POLICY_NAMES, BindingConstraint, PoolObservation, PoolSpec, make_policy
from decision.safety import apply_safety_rules

SPEC = PoolSpec(
    capacity_per_replica=2.0,
    min_replicas=1,
    max_replicas=40,
    peak_demand=30.0,
    step_seconds=300.0,
    stabilization_steps=1,
    min_node_lifetime_seconds=3600.0,
    max_scale_downs_per_hour=2,
)


def seen(
    replicas: int, demand: float, *, age: float | None = None, downs: int = 0
) -> PoolObservation:
    return PoolObservation(
        replicas,
        recent_demand=np.full(12, demand),
        seconds_since_scale_up=age,
        scale_downs_last_hour=downs,
    )


def test_scale_down_waits_until_the_newest_replica_has_run_its_lifetime() -> None:
    held = apply_safety_rules(3, seen(10, 4.0, age=3599.0), SPEC, [])
    assert (held.replicas, held.binding) == (10, BindingConstraint.min_node_lifetime)
    released = apply_safety_rules(3, seen(10, 4.0, age=3600.0), SPEC, [])
    assert (released.replicas, released.binding) == (3, None)


def test_scale_down_waits_once_the_hours_scale_downs_are_used() -> None:
    held = apply_safety_rules(3, seen(10, 4.0, downs=2), SPEC, [])
    assert (held.replicas, held.binding) == (10, BindingConstraint.max_scale_downs)
    assert apply_safety_rules(3, seen(10, 4.0, downs=1), SPEC, []).replicas == 3


def test_churn_limits_never_hold_a_scale_up() -> None:
    outcome = apply_safety_rules(15, seen(10, 30.0, age=0.0, downs=5), SPEC, [])
    assert (outcome.replicas, outcome.binding) == (15, None)


def test_the_bounds_still_win_over_a_held_scale_down() -> None:
    outcome = apply_safety_rules(3, seen(50, 4.0, age=0.0), SPEC, [])
    assert (outcome.replicas, outcome.binding) == (40, BindingConstraint.max_replicas)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_policy_keeps_a_young_node_it_would_release(name: str) -> None:
    rng = np.random.default_rng(0)
    free, limited = make_policy(name, SPEC), make_policy(name, SPEC)
    free_lowest, limited_lowest = 20, 20
    for _ in range(40):
        samples = rng.gamma(2.0, 0.5, size=(1 if name == "oracle" else 200, 4))
        free_lowest = min(free_lowest, free.decide(seen(20, 1.0), samples).replicas)
        decision = limited.decide(seen(20, 1.0, age=60.0), samples)
        limited_lowest = min(limited_lowest, decision.replicas)
        if decision.replicas == 20 and decision.binding is BindingConstraint.min_node_lifetime:
            assert "before it has run 60 minutes" in decision.reason
        free.observe(1.0)
        limited.observe(1.0)
    assert limited_lowest == 20
    if name != "static":  # static provisions its peak whatever the demand
        assert free_lowest < 20, "without the limit the policy must release nodes here"


def test_spec_rejects_a_negative_lifetime_and_a_zero_rate() -> None:
    from decision import InvalidDecisionInput

    with pytest.raises(InvalidDecisionInput, match="min_node_lifetime_seconds"):
        PoolSpec(capacity_per_replica=1.0, min_node_lifetime_seconds=-1.0)
    with pytest.raises(InvalidDecisionInput, match="max_scale_downs_per_hour"):
        PoolSpec(capacity_per_replica=1.0, max_scale_downs_per_hour=0)
