"""The predictive baselines (PHPA, Crane, AWS predictive scaling) on hand-made examples."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from decision import BindingConstraint, InvalidDecisionInput, Policy, PoolObservation, PoolSpec
from decision.hpa import HpaPolicy
from decision.predictive import AwsPredictivePolicy, CranePolicy, PhpaPolicy

# One replica serves one unit of demand; new replicas are usable two steps later.
SPEC = PoolSpec(
    capacity_per_replica=1.0, min_replicas=1, max_replicas=100, step_seconds=300,
    provisioning_delay_steps=2,
)  # fmt: skip
CLASSES: list[Any] = [PhpaPolicy, CranePolicy, AwsPredictivePolicy]


def seen(usable: int, demand: float) -> PoolObservation:
    return PoolObservation(usable, recent_demand=np.array([demand]))


def forecast(at_lead: float, now: float = 0.0) -> np.ndarray:
    """A [1, H] point forecast: `now` until the lead, `at_lead` at step t + d."""
    return np.array([[now, now, at_lead]])


def test_each_is_a_policy_with_its_forecast_source() -> None:
    for cls, source in zip(CLASSES, ("holt-winters", "crane-dsp", "aws-seasonal"), strict=True):
        policy = cls(SPEC, 0.5)
        assert isinstance(policy, Policy)
        assert cls.forecast_source == source and policy.knob == 0.5


def test_phpa_scales_out_ahead_of_a_forecast_peak() -> None:
    # Usage 8 / (10 x 0.8) = 1.0: the HPA keeps 10; Holt-Winters predicts 12 at the lead.
    hpa = HpaPolicy(SPEC, 0.8).decide(seen(10, 8.0), None)
    decision = PhpaPolicy(SPEC, 0.8).decide(seen(10, 8.0), forecast(12.0))
    assert hpa.replicas == 10
    assert decision.replicas == 15  # ceil(12 / 0.8)
    assert "Holt-Winters prediction's 15" in decision.reason
    assert np.isfinite(decision.shortfall_probability)


def test_phpa_takes_the_hpa_when_it_wants_more_and_limits_scale_up_per_minute() -> None:
    # The HPA wants ceil(8 / (4 x 0.5) x 4) = 16; PHPA's scale-up allows max(+100%, +4) = 8.
    decision = PhpaPolicy(SPEC, 0.5).decide(seen(4, 8.0), forecast(2.0))
    assert decision.recommended_replicas == 16
    assert decision.replicas == 8 and decision.binding is BindingConstraint.max_step_up


def test_phpa_falls_back_to_the_hpa_without_a_prediction() -> None:
    nan = forecast(np.nan, np.nan)
    decision = PhpaPolicy(SPEC, 0.8).decide(seen(10, 12.0), nan)
    assert decision.replicas == 15  # the HPA: ceil(12 / (10 x 0.8) x 10)
    assert "no Holt-Winters prediction yet" in decision.reason
    missing = PhpaPolicy(SPEC, 0.8).decide(seen(10, np.nan), forecast(40.0))
    assert missing.replicas == 10 and "without metrics" in missing.reason


def test_phpa_scale_down_waits_for_the_stabilisation_window() -> None:
    policy = PhpaPolicy(SPEC, 1.0)
    replicas = []
    for _ in range(3):
        replicas.append(policy.decide(seen(10, 2.0), forecast(2.0)).replicas)
        policy.observe(2.0)
    assert replicas == [10, 2, 2]  # 300 s window = one 300 s step


def test_crane_covers_the_forecast_plus_its_margin() -> None:
    decision = CranePolicy(SPEC, 0.2).decide(seen(5, 5.0), forecast(10.0))
    assert decision.replicas == 12  # 10 x 1.2, above the original metric's 5
    assert "predicted metric" in decision.reason
    assert CranePolicy(SPEC, 0.0).decide(seen(5, 5.0), forecast(10.0)).replicas == 10


def test_crane_falls_back_to_the_hpa_on_the_original_metric() -> None:
    decision = CranePolicy(SPEC, 0.2).decide(seen(5, 8.0), forecast(np.nan, np.nan))
    assert decision.replicas == 8
    assert "no daily or weekly period" in decision.reason


def test_aws_scales_out_ahead_of_the_forecast() -> None:
    decision = AwsPredictivePolicy(SPEC, 0.8).decide(seen(5, 4.0), forecast(20.0))
    assert decision.replicas == 25  # ceil(20 / 0.8); target tracking wants 5
    assert "forecast capacity (25" in decision.reason


def test_aws_never_scales_in_on_the_forecast() -> None:
    policy = AwsPredictivePolicy(SPEC, 0.8)
    # The forecast says 2 replicas, the last demand needs 20: target tracking keeps 20.
    assert policy.decide(seen(20, 16.0), forecast(1.6)).replicas == 20
    # Without a metric target tracking does nothing and the forecast only adds.
    assert policy.decide(seen(20, np.nan), forecast(1.6)).replicas == 20
    assert policy.decide(seen(20, np.nan), forecast(32.0)).replicas == 40
    # Scale-in is target tracking's, on the observed demand.
    assert policy.decide(seen(20, 4.0), forecast(1.6)).replicas == 5


def test_aws_falls_back_to_target_tracking() -> None:
    decision = AwsPredictivePolicy(SPEC, 0.8).decide(seen(5, 8.0), forecast(np.nan, np.nan))
    assert decision.replicas == 10
    assert "target tracking alone" in decision.reason
    assert np.isnan(decision.shortfall_probability)


@pytest.mark.parametrize("cls", CLASSES)
def test_bounds_are_never_exceeded(cls: Any) -> None:
    spec = replace(SPEC, min_replicas=3, max_replicas=30)
    high = cls(spec, 0.5).decide(seen(30, 30.0), forecast(1e6))
    assert high.replicas == 30 and high.binding is BindingConstraint.max_replicas
    low = cls(spec, 0.5).decide(seen(3, 0.0), forecast(0.0))
    assert low.replicas == 3


@pytest.mark.parametrize("cls", CLASSES)
def test_several_indicators_take_the_busiest(cls: Any) -> None:
    spec = replace(SPEC, capacity_per_replica=(1.0, 4.0))
    observation = PoolObservation(10, recent_demand=np.array([[1.0, 4.0]]))
    samples = np.zeros((1, 3, 2))
    samples[0, 2] = [5.0, 80.0]  # the second indicator needs 20 replicas at the lead
    knob = 0.0 if cls is CranePolicy else 1.0  # no margin, full target utilisation
    assert cls(spec, knob).decide(observation, samples).replicas == 20


@pytest.mark.parametrize("cls", CLASSES)
def test_state_round_trips_through_json(cls: Any) -> None:
    first, second = cls(SPEC, 0.8), cls(SPEC, 0.8)
    for demand in (10.0, 30.0, 5.0):
        first.decide(seen(10, demand), forecast(demand))
        first.observe(demand)
    second.load_state(json.loads(json.dumps(first.state())))
    after = [p.decide(seen(20, 3.0), forecast(3.0)).replicas for p in (first, second)]
    assert after[0] == after[1]
    with pytest.raises(InvalidDecisionInput):
        second.load_state({"policy": "hpa"})


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_forecasts_and_knobs_are_refused(cls: Any) -> None:
    with pytest.raises(InvalidDecisionInput, match="demand_samples"):
        cls(SPEC, 0.8).decide(seen(5, 5.0), np.zeros((1, 3, 2)))
    with pytest.raises(InvalidDecisionInput, match="forecast horizon"):
        cls(SPEC, 0.8).decide(seen(5, 5.0), np.zeros((1, 2)))
    with pytest.raises(InvalidDecisionInput):
        cls(SPEC, -2.0)
