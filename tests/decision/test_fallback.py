"""Harmony's fallback: a 30-minute peak plus a buffer calibrated online, no forecaster."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from decision import InvalidDecisionInput, PoolObservation, PoolSpec, make_policy
from decision.fallback import FallbackPolicy, usable_counts, window_maxima
from tests.decision.pool_sim import run_closed_loop

SPEC = PoolSpec(
    capacity_per_replica=1.0, provisioning_delay_steps=2, max_replicas=400, step_seconds=300
)
DAY = 288
HISTORY = 2 * DAY


def diurnal(steps: int, noise: float, seed: int) -> np.ndarray:
    """A daily wave with multiplicative noise, like request traffic."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    wave = 40 + 25 * np.sin(2 * np.pi * t / DAY)
    return np.asarray(np.maximum(wave * np.exp(noise * rng.standard_normal(steps)), 0.0))


def on_off(steps: int, seed: int) -> np.ndarray:
    """Idle half the day, then bursts of work: the jump the window maximum cannot see."""
    rng = np.random.default_rng(seed)
    busy = (np.arange(steps) % DAY) >= DAY // 2
    return np.asarray(np.where(busy, rng.gamma(4.0, 6.0, steps), 0.0))


def fallback() -> FallbackPolicy:
    policy = make_policy("harmony-fallback", SPEC, 0.01)
    assert isinstance(policy, FallbackPolicy)
    return policy


def test_usable_counts_follow_the_pool_rules() -> None:
    # Stabilisation over 2 origins holds the 9 one origin longer; a request is usable one
    # step later, and a lower one removes replicas at once.
    wishes = np.array([[5.0], [9.0], [4.0], [7.0], [7.0]])
    held = [9.0, 9.0, 7.0, 7.0]  # origins 1..4
    usable = usable_counts(wishes, delay=1, hold=2)
    assert usable[:, 0].tolist() == [min(held[0], held[1]), min(held[1], held[2]), 7.0]


def test_window_maxima_look_at_what_there_is() -> None:
    maxima = window_maxima(np.array([1.0, np.nan, 3.0, 2.0]), 2)
    assert np.array_equal(maxima, [np.nan, 1.0, 1.0, 3.0, 3.0], equal_nan=True)


@pytest.mark.parametrize(
    ("name", "demand"), [("diurnal", diurnal(3000, 0.1, 1)), ("on-off", on_off(3000, 2))]
)
def test_it_meets_the_sla_where_the_reactive_policy_misses(name: str, demand: np.ndarray) -> None:
    steps = len(demand)
    short, usable = run_closed_loop(
        fallback(), demand, None, steps, start_replicas=60, history=HISTORY
    )
    reactive_short, _ = run_closed_loop(
        make_policy("reactive", SPEC), demand, None, steps, start_replicas=60, history=HISTORY
    )
    assert short[HISTORY:].mean() <= 0.0125, name  # the protocol's 1.25 x SLA
    assert reactive_short[HISTORY:].mean() > 0.03, name
    assert usable[HISTORY:].mean() < np.ceil(demand.max()), name  # cheaper than the peak


def test_the_buffer_grows_with_the_noise_it_sees() -> None:
    def buffer_after(noise: float) -> float:
        policy = fallback()
        run_closed_loop(
            policy, diurnal(1500, noise, 3), None, 1500, start_replicas=60, history=HISTORY
        )
        observation = PoolObservation(60, recent_demand=diurnal(HISTORY, noise, 4))
        return policy.decide(observation, None).details["buffer_replicas"]

    assert buffer_after(0.3) > 1.5 * buffer_after(0.05)


def test_the_first_decision_learns_from_the_history_it_observes() -> None:
    policy = fallback()
    decision = policy.decide(PoolObservation(30, recent_demand=diurnal(HISTORY, 0.1, 5)), None)
    # Each step whose delay and stabilisation window the history covers is an outcome.
    assert decision.details["calibration_updates"] >= HISTORY - 1 - 2 - 3
    assert "spare learned online for ε=1.00%" in decision.reason
    fresh = fallback().decide(PoolObservation(60, recent_demand=np.array([50.0])), None)
    assert fresh.details["calibration_updates"] == 0  # the prior alone: nothing to learn from


def test_it_learns_from_demand_alone_and_resumes_from_its_state() -> None:
    policy = fallback()
    for value in diurnal(100, 0.1, 6):
        policy.observe(float(value))  # another policy decides meanwhile
    state = json.loads(json.dumps(policy.state()))
    assert state["calibration"]["updates"] > 90
    restored = fallback()
    restored.load_state(state)
    observation = PoolObservation(60, recent_demand=diurnal(20, 0.1, 7))
    assert restored.decide(observation, None) == policy.decide(observation, None)


def test_a_new_max_replicas_restarts_the_posterior() -> None:
    policy = fallback()
    policy.decide(PoolObservation(60, recent_demand=diurnal(HISTORY, 0.1, 8)), None)
    wider = make_policy("harmony-fallback", replace(SPEC, max_replicas=800), 0.01)
    wider.load_state(json.loads(json.dumps(policy.state())))
    assert wider.state()["calibration"]["updates"] == 0
    same = fallback()
    same.load_state(json.loads(json.dumps(policy.state())))
    assert same.state()["calibration"]["updates"] == policy.state()["calibration"]["updates"]


def test_no_demand_observed_holds_the_pool() -> None:
    decision = fallback().decide(PoolObservation(7, recent_demand=np.full(12, np.nan)), None)
    assert decision.replicas == 7 and "holding" in decision.reason


def test_bad_knob_and_bad_state_say_what_is_wrong() -> None:
    with pytest.raises(InvalidDecisionInput, match=r"sla_epsilon must be in \(0, 0.5\]"):
        make_policy("harmony-fallback", SPEC, 0.7)
    with pytest.raises(InvalidDecisionInput, match="field missing or malformed"):
        fallback().load_state({"policy": "harmony-fallback"})
