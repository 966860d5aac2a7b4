"""Small scenarios and a scripted policy for the backtest tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from controller.backtest.scenario import Scenario
from decision.types import BindingConstraint, Decision, FloatArray, PoolObservation, PoolSpec

if TYPE_CHECKING:
    from controller.backtest.runner import BacktestConfig, BacktestOutcome

T0 = dt.datetime(2024, 11, 15, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)


class ScriptedPolicy:
    """Asks for a fixed replica count at each decided step; remembers what it was shown."""

    knob_name = "none"
    knob = 0.0

    def __init__(self, spec: PoolSpec, counts: list[int], name: str = "scripted") -> None:
        self.spec = spec
        self.name = name
        self.counts = counts
        self.seen: list[PoolObservation] = []
        self.realised: list[float] = []

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        replicas = self.counts[len(self.seen)]
        self.seen.append(observation)
        return Decision(self.name, replicas, replicas, BindingConstraint.policy, "scripted")

    def observe(self, realised_demand: FloatArray | float) -> None:
        self.realised.append(float(realised_demand))

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None


def synthetic_scenario(
    rows: int = 600,
    decide_from: int = 300,
    *,
    samples: int = 64,
    delay_steps: int = 2,
    seed: int = 0,
) -> Scenario:
    """A daily-periodic demand with noise and forecast samples from a noisy seasonal model
    (each origin's samples use only rows before it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    demand = 10 + 6 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, rows)
    horizon = delay_steps + 1
    origins = np.arange(decide_from, rows)
    last = demand[origins - 1]
    drift = 6 * (
        np.sin(2 * np.pi * (origins[:, None] + np.arange(horizon)) / 288)
        - np.sin(2 * np.pi * (origins[:, None] - 1) / 288)
    )
    centre = last[:, None] + drift
    draws = centre[:, None, :] + rng.normal(0, 1.5, (len(origins), samples, horizon))
    spec = PoolSpec(
        capacity_per_replica=1.0,
        max_replicas=64,
        provisioning_delay_steps=delay_steps,
        step_seconds=STEP.total_seconds(),
        sla_epsilon=0.01,
    )
    return Scenario(
        name="synthetic",
        demand=demand,
        start=T0,
        step=STEP,
        decide_from=decide_from,
        spec=spec,
        samples=draws[..., None].astype(np.float32),
    )


def small_outcome(
    policies: tuple[str, ...] = ("harmony", "static", "reactive", "window-buffer", "oracle"),
    *,
    sla: float = 0.01,
    frontier: bool = False,
    demand_scale: float = 1.0,
) -> tuple[BacktestOutcome, BacktestConfig]:
    """A backtest outcome and its config from the synthetic scenario (tune then test), in
    seconds: what the report needs without training a forecaster. `demand_scale` is only
    reported: the synthetic demand is already on the pool's scale."""
    from controller.backtest.protocol import CaseOutcome, evaluate_policy
    from controller.backtest.runner import BacktestConfig, BacktestOutcome
    from controller.series import Indicator, Series

    scenario = dataclasses.replace(synthetic_scenario(rows=900, decide_from=300), test_from=600)
    series = Series(
        name=scenario.name,
        indicators=(Indicator("load", "requests/s", demand=True),),
        start=scenario.start,
        step=scenario.step,
        values=scenario.demand,
    )
    outcomes = {name: evaluate_policy(scenario, name, sla, frontier=frontier) for name in policies}
    case = CaseOutcome(scenario.name, 16, sla, outcomes)
    config = BacktestConfig(policies=policies, peak_replicas=16, sla=sla, sweep=frontier)
    notes = [f"demand multiplied by {demand_scale:g} (synthetic)"]
    outcome = BacktestOutcome(series, scenario, case, demand_scale, None, notes)
    return outcome, config
