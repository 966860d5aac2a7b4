"""Baseline policies: the documented HPA behaviour, the reactive rules, static, headroom,
oracle, and the shared policy interface."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from decision import (
    KNOBS,
    POLICY_NAMES,
    BindingConstraint,
    InFlight,
    InvalidDecisionInput,
    Policy,
    PoolObservation,
    PoolSpec,
    default_sweep,
    make_policy,
)
from tests.decision.pool_sim import run_closed_loop

# One replica requests one CPU: demand in CPUs, capacity_per_replica = 1.
CPU = PoolSpec(capacity_per_replica=1.0, min_replicas=1, max_replicas=100, step_seconds=15)


def seen(usable: int, demand: float, in_flight: int = 0) -> PoolObservation:
    batches = (InFlight(in_flight, 1),) if in_flight else ()
    return PoolObservation(usable, recent_demand=np.array([demand]), in_flight=batches)


def hpa_replicas(current: int, demand: float, target: float, spec: PoolSpec = CPU) -> int:
    return make_policy("hpa", spec, knob=target).decide(seen(current, demand), None).replicas


def test_hpa_doubles_when_the_metric_is_twice_the_target() -> None:
    # Kubernetes docs: current 200m, desired 100m -> the replicas are doubled.
    assert hpa_replicas(3, demand=3 * 0.2, target=0.1) == 6


def test_hpa_halves_after_the_five_minute_stabilisation_window() -> None:
    # Docs: current 50m, desired 100m -> halve; scale-down waits for the 300 s window.
    spec = replace(CPU, step_seconds=60)
    hpa = make_policy("hpa", spec, knob=0.1)
    replicas = []
    for _ in range(6):
        replicas.append(hpa.decide(seen(4, demand=4 * 0.05), None).replicas)
        hpa.observe(0.2)
    assert replicas == [4, 4, 4, 4, 4, 2]


def test_hpa_skips_ratios_within_the_tolerance() -> None:
    assert hpa_replicas(10, demand=10 * 0.5 * 1.09, target=0.5) == 10
    assert hpa_replicas(10, demand=10 * 0.5 * 0.91, target=0.5) == 10
    assert hpa_replicas(10, demand=10 * 0.5 * 1.11, target=0.5) == 12


def test_hpa_walkthrough_305_percent_becomes_seven_replicas() -> None:
    # php-apache walkthrough: 1 replica at 305% of its request, target 50% -> 7 replicas.
    assert hpa_replicas(1, demand=3.05, target=0.5, spec=replace(CPU, step_seconds=60)) == 7
    # Within one 15 s period the default policy allows max(+100%, +4): 1 -> 5.
    assert hpa_replicas(1, demand=3.05, target=0.5) == 5


def test_hpa_default_scale_up_policy_is_the_larger_of_double_and_four() -> None:
    assert hpa_replicas(10, demand=100.0, target=1.0) == 20
    assert hpa_replicas(2, demand=100.0, target=1.0) == 6


def test_hpa_counts_unready_replicas_as_idle_when_scaling_up() -> None:
    hpa = make_policy("hpa", CPU, knob=0.5)
    # 2 ready at 150% of target, 2 starting: counted at 0% the ratio is 0.75, a reversal.
    assert hpa.decide(seen(2, demand=1.5, in_flight=2), None).replicas == 4
    # 2 ready at 300% of target: with the starting ones at 0% the ratio is 1.5 -> 6.
    assert make_policy("hpa", CPU, knob=0.5).decide(seen(2, 3.0, 2), None).replicas == 6


def test_hpa_does_not_act_without_metrics() -> None:
    decision = make_policy("hpa", CPU).decide(seen(5, float("nan")), None)
    assert (decision.replicas, decision.binding) == (5, BindingConstraint.incomplete_observation)


def test_reactive_scales_up_on_shortfall_only_beyond_what_is_coming() -> None:
    spec = replace(CPU, step_seconds=60)
    assert make_policy("reactive", spec).decide(seen(5, 7.5), None).replicas == 8
    assert make_policy("reactive", spec).decide(seen(5, 7.5, in_flight=3), None).replicas == 8
    assert make_policy("reactive", spec).decide(seen(5, 4.0), None).replicas == 5


def test_reactive_scales_down_after_ten_minutes_under_the_threshold() -> None:
    spec = replace(CPU, step_seconds=60)
    reactive = make_policy("reactive", spec)
    replicas = []
    for _ in range(10):
        replicas.append(reactive.decide(seen(20, 6.0), None).replicas)  # 30% utilised
        reactive.observe(6.0)
    # After 10 one-minute steps under 50%: drain while the rest stay under 50%: 12 left.
    assert replicas == [20] * 9 + [12]


def test_static_provisions_the_configured_or_the_seen_peak() -> None:
    spec = replace(CPU, capacity_per_replica=8.0, peak_demand=50.0)
    assert make_policy("static", spec).decide(seen(2, 1.0), None).replicas == 7
    assert make_policy("static", spec, knob=0.5).decide(seen(2, 1.0), None).replicas == 4
    learning = make_policy("static", replace(spec, peak_demand=None))
    obs = PoolObservation(2, recent_demand=np.array([10.0, 30.0, 20.0]))
    assert learning.decide(obs, None).replicas == 4
    learning.observe(41.0)
    assert learning.decide(obs, None).replicas == 6


def test_headroom_adds_its_share_to_the_mean_forecast() -> None:
    spec = replace(CPU, stabilization_steps=1)
    samples = np.random.default_rng(1).normal(40.0, 5.0, size=(4000, 1))
    samples += 40.0 - samples.mean()
    decision = make_policy("headroom", spec, knob=0.25).decide(seen(10, 30.0), samples)
    assert decision.replicas == 50
    assert 0.0 < decision.shortfall_probability < 0.5  # figures of the choice, from samples


def test_oracle_never_falls_short_under_the_provisioning_delay() -> None:
    rng = np.random.default_rng(8)
    demand = 30 + 10 * np.sin(np.arange(305) / 9.0) + 3 * rng.standard_normal(305)
    spec = PoolSpec(capacity_per_replica=1.0, provisioning_delay_steps=2, max_replicas=100)

    def future(t: int, _rng: np.random.Generator) -> np.ndarray:
        return demand[None, t : t + 3]

    oracle = make_policy("oracle", spec)
    shortfall, usable = run_closed_loop(oracle, demand, future, 300, start_replicas=45)
    assert not shortfall[2:].any()
    static = make_policy("static", replace(spec, peak_demand=float(demand.max())))
    _, static_usable = run_closed_loop(static, demand, None, 300, start_replicas=45)
    assert usable[10:].sum() < static_usable[10:].sum()


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_policy_honours_the_interface(name: str) -> None:
    spec = PoolSpec(capacity_per_replica=2.0, min_replicas=1, max_replicas=40, peak_demand=30.0)
    policy = make_policy(name, spec)
    assert isinstance(policy, Policy)
    assert policy.name == name and policy.knob_name == KNOBS[name].name
    assert len(default_sweep(name)) >= 1
    samples = np.random.default_rng(0).gamma(5.0, 4.0, size=(1 if name == "oracle" else 200, 4))
    for step in range(3):
        decision = policy.decide(seen(10, 20.0 + step), samples)
        assert spec.min_replicas <= decision.replicas <= spec.max_replicas
        assert decision.policy == name and decision.reason.endswith(".")
        json.dumps(decision.to_dict())
        policy.observe(21.0)
    restored = make_policy(name, spec)
    restored.load_state(json.loads(json.dumps(policy.state())))
    assert restored.decide(seen(10, 23.0), samples) == policy.decide(seen(10, 23.0), samples)
    with pytest.raises(InvalidDecisionInput, match="cannot load state"):
        restored.load_state({"policy": "someone-else"})


def test_unknown_policy_names_the_choices() -> None:
    with pytest.raises(InvalidDecisionInput, match="harmony, static, hpa"):
        make_policy("magic", CPU)
