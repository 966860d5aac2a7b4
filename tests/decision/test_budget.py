"""The shortfall budget: its update rule, bounds, persistence, and what it buys in a loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from decision import InvalidDecisionInput, PoolObservation, PoolSpec
from decision.budget import DEFAULT_RATE, ShortfallBudget
from decision.harmony import HarmonyPolicy
from tests.decision.pool_sim import run_closed_loop

EPSILON = 0.05


def test_quiet_steps_raise_the_target_and_a_shortfall_lowers_it() -> None:
    budget = ShortfallBudget(0.01)
    for _ in range(100):  # 1 / ε quiet steps: the factor grows by e^rate
        budget.update(False)
    assert budget.target() == pytest.approx(0.01 * math.exp(DEFAULT_RATE))
    before = budget.log_factor
    budget.update(True)
    assert budget.log_factor == pytest.approx(before - DEFAULT_RATE * 0.99)
    assert (budget.steps, budget.shortfalls) == (101, 1)


def test_shortfalls_at_the_sla_rate_leave_the_target_where_it_is() -> None:
    budget = ShortfallBudget(0.1, log_factor=0.5)
    for step in range(1000):
        budget.update(step % 10 == 9)
    assert budget.log_factor == pytest.approx(0.5, abs=1e-9)


def test_the_factor_stays_between_one_and_its_maximum() -> None:
    budget = ShortfallBudget(0.01, rate=1.0, max_factor=3.0)
    for _ in range(10_000):
        budget.update(False)
    assert budget.target() == pytest.approx(0.03)
    for _ in range(10):
        budget.update(True)
    # Falling short too often is the calibration's to correct: never below ε.
    assert budget.target() == pytest.approx(0.01)
    assert ShortfallBudget(0.3, rate=1.0, max_factor=4.0, log_factor=math.log(4)).target() == 0.5


def test_round_trip_and_malformed_state() -> None:
    budget = ShortfallBudget(0.01)
    budget.update(False)
    budget.update(True)
    assert ShortfallBudget.from_dict(json.loads(json.dumps(budget.to_dict()))) == budget
    with pytest.raises(InvalidDecisionInput, match="drop the stored state"):
        ShortfallBudget.from_dict({"kind": "shortfall-budget/v1", "rate": 0.1})
    with pytest.raises(InvalidDecisionInput, match="unknown kind"):
        ShortfallBudget.from_dict({"kind": "other"})
    with pytest.raises(InvalidDecisionInput, match="sla_epsilon"):
        ShortfallBudget(0.0)
    with pytest.raises(InvalidDecisionInput, match="max_factor"):
        ShortfallBudget(0.01, max_factor=0.5)


def _held_capacity_loop(budget_rate: float) -> tuple[float, float]:
    """A pool that may remove only two replicas a step, under a demand cycle: on the way
    down it keeps more capacity than any plan the calibration judges, so without the
    budget it falls short far less often than ε allows."""
    spec = PoolSpec(
        capacity_per_replica=1.0,
        provisioning_delay_steps=2,
        stabilization_steps=1,
        sla_epsilon=EPSILON,
        max_replicas=400,
        max_step_down=2,
    )
    steps = 2000
    level = 100 + 40 * np.sin(np.arange(steps + 5) * 2 * np.pi / 40)
    demand = level + 10 * np.random.default_rng(11).standard_normal(steps + 5)

    def samples(t: int, draw: np.random.Generator) -> np.ndarray:
        return level[t : t + 3] + 10 * draw.standard_normal((300, 3))

    policy = HarmonyPolicy(spec, EPSILON)
    policy.budget = ShortfallBudget(EPSILON, rate=budget_rate)
    shortfall, usable = run_closed_loop(policy, demand, samples, steps, seed=3, start_replicas=100)
    return float(shortfall[400:].mean()), float(usable[400:].mean())


def test_the_budget_spends_what_held_capacity_leaves_unused() -> None:
    without_rate, without_replicas = _held_capacity_loop(budget_rate=0.0)
    with_rate, with_replicas = _held_capacity_loop(budget_rate=DEFAULT_RATE)
    assert without_rate < 0.6 * EPSILON  # 0.022 when measured
    assert EPSILON / 1.5 <= with_rate <= 1.5 * EPSILON  # 0.047
    assert with_replicas < 0.98 * without_replicas  # 128.4 against 133.4


def test_the_policy_state_keeps_the_budget_and_the_step_it_judges() -> None:
    spec = PoolSpec(capacity_per_replica=1.0, provisioning_delay_steps=1, sla_epsilon=EPSILON)
    policy = HarmonyPolicy(spec, EPSILON)
    observation = PoolObservation(replicas_usable=100, recent_demand=np.array([100.0]))
    samples = 100 + 5 * np.random.default_rng(1).standard_normal((200, 2))
    for _ in range(5):
        policy.decide(observation, samples)
        policy.observe(90.0)
    policy.decide(observation, samples)
    restored = HarmonyPolicy(spec, EPSILON)
    restored.load_state(json.loads(json.dumps(policy.state())))
    assert restored.budget == policy.budget
    restored.observe(500.0)  # the step decided before the save fell short
    assert restored.budget.shortfalls == 1
    older = policy.state()
    del older["budget"], older["usable_now"]
    fresh = HarmonyPolicy(spec, EPSILON)
    fresh.load_state(older)
    assert fresh.budget == ShortfallBudget(EPSILON)
