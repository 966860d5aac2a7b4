"""The replay loop: one policy against its own simulated pool, step by step.

At decided step t the policy observes the pool (usable replicas, replicas in flight) and
the demand of steps before t only, plus, for forecasting policies, the samples drawn
from that same past; it decides; the pool acts; then the policy is told what demand at t
actually was. The oracle alone gets the true demand of steps t..t+H-1 (it is the
perfect-foresight lower bound, under the same provisioning delay). Each policy gets the
forecast its system makes (decision.policies.forecast_source): Harmony's samples, a
classical forecaster's point forecast, or none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.actuators.simulated import SimulatedPool
from controller.backtest.metrics import CaseMetrics, account
from controller.backtest.scenario import Scenario
from controller.churn import ChurnLedger
from controller.clock import ManualClock
from decision.types import InFlight, PoolObservation, SlaKind
from forecaster.fill import forward_fill

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HARMONY_SAMPLES = "harmony"
TRUTH = "truth"
_POOL = "backtest"
_FORGET_KEYS_EVERY = 4096

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ReplayTrace:
    """Per decided step: replicas the policy asked for, usable and billed after acting."""

    requested: IntArray
    usable: IntArray
    billed: IntArray
    #: Work queued after each decided step (zeros unless the pool has the queue SLA).
    backlog: FloatArray


@dataclass(frozen=True)
class CaseResult:
    """One (policy, knob) replay of a scenario: its metrics and its capacity over time.

    `metrics` cover the test period when the scenario has one (else every decided step);
    `tune_metrics` the tune period before it (None without a test period).
    """

    policy: str
    knob_name: str
    knob_value: float | None
    metrics: CaseMetrics
    usable: list[int]
    requested: list[int]
    tune_metrics: CaseMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["metrics"] = self.metrics.to_dict()
        document["tune_metrics"] = self.tune_metrics.to_dict() if self.tune_metrics else None
        return document

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        fields = dict(data)
        fields["metrics"] = CaseMetrics.from_dict(fields["metrics"])
        tune = fields.get("tune_metrics")
        fields["tune_metrics"] = CaseMetrics.from_dict(tune) if tune else None
        return cls(**fields)


def forecasts_needed(policies: Iterable[str]) -> set[str]:
    """The forecast sources the named policies decide from ("truth" excluded)."""
    from decision.policies import forecast_source

    return {source for name in policies if (source := forecast_source(name)) not in (None, TRUTH)}


def initial_replicas(scenario: Scenario) -> int:
    """Replicas that served the last observed demand before decisions start (every pool
    starts there, so no policy begins with an advantage)."""
    if scenario.initial_replicas:
        return scenario.initial_replicas
    history = scenario.demand[: scenario.decide_from]
    observed = history[~np.isnan(history).any(axis=1)]
    if len(observed) == 0:
        return scenario.spec.min_replicas
    needed = np.ceil(observed[-1] / np.asarray(scenario.spec.capacities)).max()
    return int(np.clip(needed, scenario.spec.min_replicas, scenario.spec.max_replicas))


def replay(
    scenario: Scenario,
    policy: Any,
    *,
    progress: Progress | None = None,
) -> ReplayTrace:
    """Run `policy` (a `decision.policies.Policy`) over the decided steps of `scenario`."""
    spec = scenario.spec
    step = scenario.step
    start_replicas = initial_replicas(scenario)
    clock = ManualClock(scenario.start + step * scenario.decide_from)
    pool = SimulatedPool(
        _POOL,
        clock,
        step * spec.provisioning_delay_steps,
        price_per_replica_hour=spec.price_per_replica_hour,
        capacity_per_replica=spec.capacities[0],
        initial_replicas=start_replicas,
    )
    demand = scenario.demand
    single = demand.shape[1] == 1
    future = _padded_future(demand, scenario.decide_from, scenario.horizon)
    source = getattr(policy, "forecast_source", None)
    forecasts: npt.NDArray[np.float32] | None = None
    if source == HARMONY_SAMPLES:
        forecasts = scenario.samples
    elif source is not None and source != TRUTH:
        forecasts = scenario.forecasts.get(source)
    if source not in (None, TRUTH) and forecasts is None:
        raise ValueError(
            f"policy {policy.name!r} needs {source!r} forecasts; the scenario has none"
        )
    is_oracle = source == TRUTH
    window = scenario.observation_window
    step_seconds = step.total_seconds()
    count = scenario.decided_steps
    requested = np.empty(count, dtype=np.int64)
    usable = np.empty(count, dtype=np.int64)
    billed = np.empty(count, dtype=np.int64)
    backlog = np.zeros(count, dtype=np.float64)
    queued = 0.0
    queue_sla = spec.sla_kind is SlaKind.queue
    churn = ChurnLedger()
    for index in range(count):
        t = scenario.decide_from + index
        if index:
            clock.advance(step)
        state = pool.current(_POOL)
        now = state.observed_at
        in_flight = tuple(
            InFlight(
                batch.count,
                max(1, round((batch.ready_at - now).total_seconds() / step_seconds)),
            )
            for batch in state.in_flight
        )
        recent = demand[max(0, t - window) : t]
        observation = PoolObservation(
            replicas_usable=state.usable,
            recent_demand=recent[:, 0] if single else recent,
            in_flight=in_flight,
            complete=not bool(np.isnan(recent[-1]).any()),
            pinned_replicas=state.pinned,
            backlog=queued,
            seconds_since_scale_up=churn.seconds_since_scale_up(now),
            scale_downs_last_hour=churn.scale_downs_last_hour(now),
        )
        samples: FloatArray | None = None
        if forecasts is not None:
            samples = forecasts[index].astype(np.float64)
        elif is_oracle:
            samples = future[index][None]
        if samples is not None and single:
            samples = samples[..., 0]
        decision = policy.decide(observation, samples)
        result = pool.scale(_POOL, int(decision.replicas), f"{index}")
        churn.record(now, result.from_replicas, result.to_replicas)
        after = pool.current(_POOL)
        requested[index] = decision.replicas
        usable[index] = after.usable
        billed[index] = after.desired
        if queue_sla:
            # A gap brings no work (as in the metrics); the work served is the usable
            # capacity of this step.
            arrived = float(np.nan_to_num(demand[t, 0]))
            queued = max(0.0, queued + arrived - after.usable * spec.capacities[0])
            backlog[index] = queued
        policy.observe(demand[t, 0] if single else demand[t])
        if index % _FORGET_KEYS_EVERY == _FORGET_KEYS_EVERY - 1:
            pool.forget_keys()
            if progress is not None:
                progress(_FORGET_KEYS_EVERY)
    if progress is not None:
        progress(count % _FORGET_KEYS_EVERY)
    return ReplayTrace(requested=requested, usable=usable, billed=billed, backlog=backlog)


def _padded_future(demand: FloatArray, decide_from: int, horizon: int) -> FloatArray:
    """`[n, H, K]`: the true demand of steps t..t+H-1 for each decided t; past the end of
    the trace the last row repeats, and gaps carry the last observed value forward (an
    indicator never observed is 0)."""
    filled = np.nan_to_num(forward_fill(demand, axis=0))
    padded = np.concatenate([filled, np.repeat(filled[-1:], horizon, axis=0)], axis=0)
    offsets = decide_from + np.arange(len(demand) - decide_from)[:, None] + np.arange(horizon)
    future: FloatArray = padded[offsets]
    return future


def run_case(
    scenario: Scenario,
    policy_name: str,
    knob: float | None,
    *,
    progress: Progress | None = None,
) -> CaseResult:
    """Build policy `policy_name` at `knob` (None: its default) and replay the scenario."""
    from decision.policies import make_policy

    spec = scenario.spec
    if policy_name == "static" and spec.peak_demand is None:
        spec = dataclasses.replace(spec, peak_demand=_peak_value(scenario.history_peak()))
    policy = make_policy(policy_name, spec, knob)
    trace = replay(scenario, policy, progress=progress)
    metrics = {
        period: period_metrics(scenario, trace, span) for period, span in scenario.periods().items()
    }
    return CaseResult(
        policy=policy_name,
        knob_name=str(getattr(policy, "knob_name", "")),
        knob_value=_knob_value(policy, knob),
        metrics=metrics.get("test") or metrics["all"],
        usable=trace.usable.tolist(),
        requested=trace.requested.tolist(),
        tune_metrics=metrics.get("tune"),
    )


def period_metrics(scenario: Scenario, trace: ReplayTrace, span: slice) -> CaseMetrics:
    """The metrics of the decided steps in `span` of one replay."""
    spec = scenario.spec
    before = trace.billed[span.start - 1] if span.start else initial_replicas(scenario)
    queue_sla = spec.sla_kind is SlaKind.queue
    return account(
        scenario.decided_demand()[span],
        trace.usable[span],
        trace.billed[span],
        capacities=spec.capacities,
        step_seconds=scenario.step.total_seconds(),
        price_per_replica_hour=spec.price_per_replica_hour,
        initial_desired=int(before),
        max_delay_steps=spec.max_delay_steps if queue_sla else None,
        initial_backlog=float(trace.backlog[span.start - 1]) if span.start else 0.0,
    )


def _peak_value(peaks: tuple[float, ...]) -> float | tuple[float, ...]:
    return peaks[0] if len(peaks) == 1 else peaks


def _knob_value(policy: Any, knob: float | None) -> float | None:
    if knob is not None:
        return float(knob)
    value = getattr(policy, "knob", None)
    return float(value) if isinstance(value, int | float) else None
