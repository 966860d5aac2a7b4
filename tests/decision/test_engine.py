"""The decision engine: shortfall arithmetic, the chance constraint, safety rules, reasons."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from decision import (
    BindingConstraint,
    InFlight,
    InvalidDecisionInput,
    PoolObservation,
    PoolSpec,
    make_policy,
)
from decision.engine import DemandAnalysis, plan_replicas
from decision.shortfall import (
    StepShortfall,
    ready_replicas_by_step,
    required_replicas,
    shortfall_upper_bound,
    usable_replicas,
)

FAST = settings(max_examples=60, deadline=None)


def observation(usable: int = 10, **kwargs: object) -> PoolObservation:
    return PoolObservation(replicas_usable=usable, recent_demand=np.array([5.0]), **kwargs)  # type: ignore[arg-type]


def test_usable_replicas_follow_delay_in_flight_and_removal() -> None:
    ready = ready_replicas_by_step(4, (InFlight(2, 1),), 4)
    assert ready.tolist() == [4, 6, 6, 6]
    usable = usable_replicas(np.array([3, 5, 6, 9]), ready, total=6, delay_steps=2)
    # Removing: in-flight cancelled first, then usable ones at once; adding: from h = d.
    assert usable.tolist() == [[3, 3, 3, 3], [4, 5, 5, 5], [4, 6, 6, 6], [4, 6, 9, 9]]


def test_required_replicas_count_in_flight_that_is_not_ready_in_time() -> None:
    # 10 usable, 5 in flight ready only at h = 3, window at h = 2 (delay 2): a sample
    # needing 12 must request 12 - 10 beyond the 15 requested = 17.
    ready = ready_replicas_by_step(10, (InFlight(5, 3),), 4)[2:3]
    demand = np.array([[12.0], [9.5], [10.0]])
    assert required_replicas(demand, ready, total=15).tolist() == [17, 10, 10]


def test_credible_bound_is_the_jeffreys_beta_quantile() -> None:
    bound = shortfall_upper_bound(np.array([0, 3, 50]), 200, 0.9)
    expected = [stats.beta.ppf(0.9, k + 0.5, 200 - k + 0.5) for k in (0, 3, 50)]
    np.testing.assert_allclose(bound, expected, rtol=1e-9)


def test_expected_shortfall_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    demand = rng.gamma(4.0, 2.5, size=(300, 3, 2))
    capacities = np.array([1.5, 0.7])
    usable = np.array([[0, 3, 7], [5, 5, 12], [20, 1, 9]])
    got = StepShortfall(demand, capacities, 25).expected_shortfall(usable)
    capacity = usable[:, None, :, None] * capacities
    brute = np.maximum(demand[None] - capacity, 0).mean(axis=1).reshape(3, -1)
    np.testing.assert_allclose(got, brute, rtol=1e-9, atol=1e-12)


def test_cheapest_count_within_epsilon_and_its_figures() -> None:
    spec = PoolSpec(capacity_per_replica=2.0, sla_epsilon=0.05, provisioning_delay_steps=1)
    samples = np.tile(np.arange(1.0, 201.0)[:, None], (1, 3))  # demand 1..200 at each step
    analysis = DemandAnalysis(samples, observation(50), spec)
    plan = plan_replicas(analysis, 0.05)
    probability, upper = analysis.shortfall_probability(plan.replicas)
    assert upper <= 0.05 < analysis.shortfall_probability(plan.replicas - 1)[1]
    assert probability == pytest.approx(np.mean(samples[:, 1] > plan.replicas * 2.0))
    assert plan.binding is BindingConstraint.sla


def test_no_feasible_count_gives_the_maximum_and_says_so() -> None:
    spec = PoolSpec(capacity_per_replica=1.0, max_replicas=20, stabilization_steps=1)
    decision = make_policy("harmony", spec).decide(observation(10), np.full((500, 2), 30.0))
    assert decision.replicas == 20
    assert decision.binding is BindingConstraint.infeasible
    assert "30 would be needed" in decision.reason


def test_too_few_samples_extrapolate_the_tail() -> None:
    spec = PoolSpec(capacity_per_replica=1.0, sla_epsilon=0.001)
    samples = np.linspace(1.0, 9.0, 20)[:, None]
    decision = make_policy("harmony", spec).decide(observation(9), samples)
    # Beyond the largest sample (9): decision.tail's quantile at 0.001, 21.3.
    assert decision.replicas == 22
    assert decision.binding is BindingConstraint.sample_size
    assert "extrapolated beyond its 20 samples" in decision.reason


def test_scale_down_beyond_the_samples_keeps_the_extrapolated_tail() -> None:
    spec = PoolSpec(capacity_per_replica=1.0, provisioning_delay_steps=1, sla_epsilon=0.001,
                    stabilization_steps=1)  # fmt: skip
    busy_now = np.linspace(10.0, 12.0, 20)
    samples = np.stack([busy_now, np.full(20, 2.0)], axis=1)  # quiet from t+1
    decision = make_policy("harmony", spec).decide(observation(30), samples)
    assert decision.binding is BindingConstraint.keep_until_ready
    assert decision.replicas > 12


def test_penalty_buys_replicas_beyond_the_sla_minimum() -> None:
    base = PoolSpec(capacity_per_replica=1.0, sla_epsilon=0.2, stabilization_steps=1)
    samples = np.random.default_rng(0).normal(50, 10, size=(1000, 1))
    cheap = make_policy("harmony", base).decide(observation(50), samples)
    costly = replace(base, shortfall_penalty_per_unit_hour=50.0)
    decision = make_policy("harmony", costly).decide(observation(50), samples)
    assert decision.replicas > cheap.replicas
    assert decision.binding is BindingConstraint.cost
    analysis = DemandAnalysis(samples, observation(50), costly)
    costs = analysis.expected_cost(np.arange(cheap.replicas, 101))
    assert decision.expected_cost == pytest.approx(costs.min())
    assert decision.replicas == cheap.replicas + int(np.argmin(costs))


def test_several_demand_indicators_take_the_tighter_one() -> None:
    spec = PoolSpec(capacity_per_replica=(8.0, 40.0), stabilization_steps=1)
    samples = np.zeros((400, 1, 2))
    samples[:, :, 0] = 70.0  # needs 9 replicas of 8
    samples[:, :, 1] = 390.0  # needs 10 replicas of 40
    assert make_policy("harmony", spec).decide(observation(5), samples).replicas == 10
    with pytest.raises(InvalidDecisionInput, match=r"\[S, H, 2\]"):
        make_policy("harmony", spec).decide(observation(5), np.zeros((400, 1)))


def test_bad_input_names_the_field() -> None:
    with pytest.raises(InvalidDecisionInput, match="sla_epsilon"):
        PoolSpec(capacity_per_replica=1.0, sla_epsilon=1.5)
    with pytest.raises(InvalidDecisionInput, match="capacity_per_replica"):
        PoolSpec(capacity_per_replica=0.0)
    spec = PoolSpec(capacity_per_replica=1.0, provisioning_delay_steps=3)
    with pytest.raises(InvalidDecisionInput, match="horizon H=2"):
        make_policy("harmony", spec).decide(observation(), np.ones((10, 2)))
    with pytest.raises(InvalidDecisionInput, match="NaN"):
        make_policy("harmony", replace(spec, provisioning_delay_steps=0)).decide(
            observation(), np.full((10, 2), np.nan)
        )
    with pytest.raises(InvalidDecisionInput, match="needs demand samples"):
        make_policy("harmony", spec).decide(observation(), None)


def test_safety_rules_in_the_reason() -> None:
    spec = PoolSpec(capacity_per_replica=1.0, stabilization_steps=3, max_step_up=2)
    policy = make_policy("harmony", spec)
    up = policy.decide(observation(10), np.full((300, 1), 20.0))
    assert (up.replicas, up.binding) == (12, BindingConstraint.max_step_up)
    assert up.reason.startswith("Scale up from 10 to 12 replicas") and "+2" in up.reason
    held = policy.decide(observation(12), np.full((300, 1), 3.0))
    assert (held.replicas, held.binding) == (12, BindingConstraint.stabilization)
    incomplete = PoolObservation(replicas_usable=12, recent_demand=np.array([3.0]), complete=False)
    blocked = make_policy("harmony", replace(spec, stabilization_steps=1)).decide(
        incomplete, np.full((300, 1), 3.0)
    )
    assert (blocked.replicas, blocked.binding) == (12, BindingConstraint.incomplete_observation)
    pinned = PoolObservation(replicas_usable=12, recent_demand=np.array([3.0]), pinned_replicas=7)
    kept = make_policy("harmony", replace(spec, stabilization_steps=1)).decide(
        pinned, np.full((300, 1), 3.0)
    )
    assert (kept.replicas, kept.binding) == (7, BindingConstraint.pinned)
    for decision in (up, held, blocked, kept):
        assert decision.reason.endswith(".") and decision.reason.count(". ") == 0


def test_scale_down_keeps_what_steps_before_the_delay_need() -> None:
    spec = PoolSpec(capacity_per_replica=1.0, provisioning_delay_steps=2, stabilization_steps=1)
    samples = np.tile(np.array([15.0, 14.0, 4.0]), (400, 1))  # busy now, quiet from t+2
    decision = make_policy("harmony", spec).decide(observation(20), samples)
    assert (decision.replicas, decision.binding) == (15, BindingConstraint.keep_until_ready)


# --- properties ---------------------------------------------------------------------------

specs = st.builds(
    PoolSpec,
    capacity_per_replica=st.floats(0.5, 8.0),
    min_replicas=st.integers(0, 5),
    max_replicas=st.integers(5, 80),
    max_step_up=st.one_of(st.none(), st.integers(1, 10)),
    max_step_down=st.one_of(st.none(), st.integers(1, 10)),
    provisioning_delay_steps=st.integers(0, 3),
    sla_epsilon=st.floats(0.005, 0.3),
    stabilization_steps=st.integers(1, 4),
    decision_window_steps=st.one_of(st.none(), st.integers(1, 3)),
    shortfall_penalty_per_unit_hour=st.sampled_from([0.0, 0.0, 3.0]),
)


def demand_samples(seed: int, steps: int, level: float, spread: float, count: int = 200):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return np.maximum(level + spread * rng.standard_normal((count, steps)), 0.0)


@FAST
@given(
    spec=specs,
    current=st.integers(0, 60),
    in_flight=st.integers(0, 6),
    seed=st.integers(0, 10_000),
    level=st.floats(0.0, 200.0),
    complete=st.booleans(),
    history=st.lists(st.integers(0, 80), max_size=4),
)
def test_bounds_and_step_limits_always_hold(
    spec: PoolSpec,
    current: int,
    in_flight: int,
    seed: int,
    level: float,
    complete: bool,
    history: list[int],
) -> None:
    batches = (InFlight(in_flight, 1),) if in_flight else ()
    obs = PoolObservation(
        replicas_usable=current, recent_demand=np.array([level]), in_flight=batches,
        complete=complete,
    )  # fmt: skip
    total = obs.replicas_total
    for name in ("harmony", "headroom"):
        policy = make_policy(name, spec)
        policy.load_state({**policy.state(), "history": history})
        decision = policy.decide(
            obs, demand_samples(seed, spec.provisioning_delay_steps + 3, level, 20.0)
        )
        assert spec.min_replicas <= decision.replicas <= spec.max_replicas
        inside = spec.min_replicas <= total <= spec.max_replicas
        if inside and spec.max_step_up is not None:
            assert decision.replicas - total <= spec.max_step_up
        if inside and spec.max_step_down is not None:
            assert total - decision.replicas <= spec.max_step_down
        if inside and not complete:
            assert decision.replicas >= total


@FAST
@given(
    spec=specs,
    current=st.integers(0, 60),
    seed=st.integers(0, 10_000),
    level=st.floats(0.0, 150.0),
    widen=st.floats(1.0, 4.0),
)
def test_more_uncertainty_never_yields_fewer_replicas(
    spec: PoolSpec, current: int, seed: int, level: float, widen: float
) -> None:
    # One-step window, no penalty: widening each step's samples about their median.
    spec = replace(spec, decision_window_steps=1, shortfall_penalty_per_unit_hour=0.0)
    samples = demand_samples(seed, spec.provisioning_delay_steps + 1, level, 15.0)
    median = np.median(samples, axis=0)
    wider = median + widen * (samples - median)
    obs = PoolObservation(replicas_usable=current, recent_demand=np.array([level]))
    narrow_replicas = make_policy("harmony", spec).decide(obs, samples).replicas
    assert make_policy("harmony", spec).decide(obs, wider).replicas >= narrow_replicas


@FAST
@given(spec=specs, current=st.integers(0, 60), seed=st.integers(0, 10_000),
       level=st.floats(0.0, 150.0), shrink=st.floats(0.05, 1.0))  # fmt: skip
def test_smaller_epsilon_never_yields_fewer_replicas(
    spec: PoolSpec, current: int, seed: int, level: float, shrink: float
) -> None:
    samples = demand_samples(seed, spec.provisioning_delay_steps + 3, level, 25.0)
    obs = PoolObservation(replicas_usable=current, recent_demand=np.array([level]))
    loose = make_policy("harmony", spec).decide(obs, samples).replicas
    strict = make_policy("harmony", spec, knob=spec.sla_epsilon * shrink).decide(obs, samples)
    assert strict.replicas >= loose


@FAST
@given(spec=specs, current=st.integers(0, 60), in_flight=st.integers(0, 6),
       seed=st.integers(0, 10_000), copies=st.sampled_from([1, 50, 400]))  # fmt: skip
def test_with_demand_known_exactly_the_engine_equals_the_oracle(
    spec: PoolSpec, current: int, in_flight: int, seed: int, copies: int
) -> None:
    spec = replace(spec, stabilization_steps=1, max_step_up=None, max_step_down=None)
    truth = demand_samples(seed, spec.provisioning_delay_steps + 3, 60.0, 40.0, count=1)
    batches = (InFlight(in_flight, 1),) if in_flight else ()
    obs = PoolObservation(replicas_usable=current, recent_demand=truth[0, :1], in_flight=batches)
    engine = make_policy("harmony", spec).decide(obs, np.repeat(truth, copies, axis=0))
    oracle = make_policy("oracle", spec).decide(obs, truth)
    assert engine.replicas == oracle.replicas
