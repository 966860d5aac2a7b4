"""The control cycle: observe → forecast → decide → act → record, for a batch of pools.

A plain function of explicit dependencies (sources, forecasters, policies, actuator, state
sessions, clock), so it runs the same under the kopf operator, in a benchmark, or in a
unit test without any server. Pools due at the same time are handled as one batch:
their metrics and replicas are read concurrently, and pools sharing a model are
forecast in one `sample` call.

Safety, in this order: no metrics → hold (never scale down), and after
`fallbackAfterFailedCycles` such cycles go to `fallbackReplicas` if set; no model → the
SLA-aware fallback (decision.fallback), which learns every cycle so that it takes over
warm when a model fails; the state store cannot record the intent → no action; not the leader
→ no action.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller.actuators.base import Actuator, ReplicaState, ScaleResult, TargetNotScalable
from controller.churn import CHURN_STATE, ChurnLedger
from controller.clock import Clock
from controller.errors import HarmonyError
from controller.operator import records
from controller.operator.backlog import STATE_KEY, STATUS_FIELDS, FluidBacklog
from controller.operator.cycle_steps import (
    Observed,
    PoolRuntime,
    build_observation,
    condition,
    decision_fields,
    forecast_batch,
    read_pool_backlog,
    slot_start,
)
from controller.operator.readiness_step import refresh_readiness
from controller.operator.shadow import SHADOW_STATE, ShadowPool, policy_view
from controller.sources.base import Source
from decision.errors import InvalidDecisionInput

log = logging.getLogger(__name__)


class ForecasterProvider(Protocol):
    """The pool's trained model, or None while it has none (the cycle falls back)."""

    def forecaster_for(self, pool: PoolRuntime) -> tuple[Any, int | None] | None:
        """`(forecaster with .sample, model_version_id)` or None."""
        ...


@dataclass
class CycleDeps:
    """Everything a cycle touches, passed in (the composition root builds it)."""

    source_for: Callable[[PoolRuntime], Source]
    forecasters: ForecasterProvider
    actuator: Actuator
    sessions: sessionmaker[Session]
    clock: Clock
    may_act: Callable[[], bool] = lambda: True
    num_samples: int = 200
    io_threads: int = 16
    # Called after the intent is recorded, before the patch; a failpoint for crash tests.
    before_act: Callable[[str], None] | None = None


@dataclass
class PoolOutcome:
    """What one pool's cycle saw, decided and did: the status and events come from it."""

    key: str
    cycle_at: dt.datetime
    ran: bool = True
    replicas: int | None = None
    usable: int | None = None
    in_flight: int | None = None
    recommended: int | None = None
    shortfall_probability: float | None = None
    expected_utilization: float | None = None
    policy: str = ""
    reason: str = ""
    action: ScaleResult | None = None
    conditions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    failed_cycles: int = 0
    # Queue SLA only: queued work (demand units), its source, and the wait it means
    # (math.inf: work queued and no replica usable); None when not read this cycle.
    queue_sla: bool = False
    backlog: float | None = None
    backlog_source: str = ""
    estimated_wait_seconds: float | None = None

    def status_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "replicas": self.replicas,
            "usableReplicas": self.usable,
            "inFlightReplicas": self.in_flight,
            "recommendedReplicas": self.recommended,
            "shortfallProbability": self.shortfall_probability,
            "expectedUtilization": self.expected_utilization,
            "policy": self.policy or None,
            "reason": self.reason or None,
            "lastCycleTime": self.cycle_at.isoformat().replace("+00:00", "Z"),
            "failedCycles": self.failed_cycles,
            "backlog": None if self.backlog is None else round(self.backlog, 6),
            "backlogSource": self.backlog_source or None,
        }
        kept = {key: value for key, value in fields.items() if value is not None}
        wait = self.estimated_wait_seconds
        if not self.queue_sla:
            # Null removes what the pool wrote while it had a queue SLA (a merge patch).
            kept.update(dict.fromkeys(STATUS_FIELDS))
        elif wait is not None:
            # An unbounded wait is written as null, which also clears the last finite one.
            kept["estimatedWaitSeconds"] = round(wait, 3) if math.isfinite(wait) else None
        return kept


def run_cycle(pools: Sequence[PoolRuntime], deps: CycleDeps) -> list[PoolOutcome]:
    """One cycle for every pool given (all due now); one outcome per pool, same order."""
    now = deps.clock.now()
    marks = [time.perf_counter()]
    with ThreadPoolExecutor(max_workers=max(1, min(deps.io_threads, len(pools)))) as pool_io:
        observed = list(
            pool_io.map(lambda p: _observe(p, deps, slot_start(now, p.config.interval)), pools)
        )
        _restore_policy_states(pools, deps)
        marks.append(time.perf_counter())
        samples = forecast_batch(observed, deps.forecasters, deps.num_samples)
        marks.append(time.perf_counter())
        outcomes = [_decide(item, samples.get(item.runtime.config.key), deps) for item in observed]
        marks.append(time.perf_counter())
        intents = _record_decisions(observed, outcomes, samples, deps, now)
        marks.append(time.perf_counter())
        results = list(pool_io.map(lambda intent: _act(intent, deps), intents))
        marks.append(time.perf_counter())
    _record_results(observed, outcomes, intents, results, deps)
    marks.append(time.perf_counter())
    refresh_readiness(observed, [outcome.conditions for outcome in outcomes], deps.sessions, now)
    marks.append(time.perf_counter())
    phases = ("observe", "forecast", "decide", "record", "act", "record results", "readiness")
    log.debug(
        "cycle of %d pools: %s",
        len(pools),
        ", ".join(
            f"{name} {b - a:.3f}s" for name, a, b in zip(phases, marks, marks[1:], strict=False)
        ),
    )
    return outcomes


def _restore_policy_states(pools: Sequence[PoolRuntime], deps: CycleDeps) -> None:
    """At a pool's first cycle in this process, its policies continue from the state its
    last cycle saved (this operator before a restart, or the leader before a takeover):
    the stabilisation window and the calibration posterior survive both."""
    fresh = [pool for pool in pools if not pool.states_restored]
    if not fresh:
        return
    try:
        with deps.sessions() as session:
            saved = records.policy_states(
                session, [(pool.config.namespace, pool.config.name) for pool in fresh]
            )
    except SQLAlchemyError as error:
        log.warning("policy states not restored, trying at the next cycle: %s", error)
        return
    for pool in fresh:
        pool.states_restored = True
        fluid = saved.get(pool.config.key, {}).get(STATE_KEY)
        pool.fluid = FluidBacklog.from_dict(fluid) if isinstance(fluid, dict) else FluidBacklog()
        pool.churn = ChurnLedger.from_dict(saved.get(pool.config.key, {}).get(CHURN_STATE))
        if not pool.config.enforce:
            shadow = saved.get(pool.config.key, {}).get(SHADOW_STATE)
            pool.shadow = ShadowPool.from_dict(pool.config, shadow)
        for policy in pool.policies:
            state = saved.get(pool.config.key, {}).get(policy.name)
            if state is None:
                continue
            try:
                policy.load_state(state)
            except InvalidDecisionInput as error:
                log.warning(
                    "%s: the saved %s state is not usable (%s); starting afresh",
                    pool.config.key,
                    policy.name,
                    error,
                )
                continue
            pool.decided_once.add(policy.name)


def _observe(runtime: PoolRuntime, deps: CycleDeps, cycle_at: dt.datetime) -> Observed:
    config = runtime.config
    item = Observed(runtime=runtime, cycle_at=cycle_at)
    try:
        item.replicas = deps.actuator.current(config.key)
    except TargetNotScalable as error:
        item.target_error, item.target_unscalable = str(error), True
    except HarmonyError as error:
        item.target_error = str(error)
    step = config.interval
    start = cycle_at - step * config.context_steps
    try:
        result = deps.source_for(runtime).fetch(start, cycle_at - step, step)
    except HarmonyError as error:
        item.metrics_error = str(error)
        return item
    item.series = result.series.values
    columns = len(config.indicators)
    if config.backlog_indicator is not None and item.series.shape[1] > columns:
        item.backlog_series = item.series[:, columns]
        item.series = item.series[:, :columns]
    item.complete = result.complete
    item.issues = [str(issue) for issue in result.issues]
    item.context_end = (cycle_at - step).timestamp()
    return item


FALLBACK_NOTE = (
    "the SLA-aware fallback decides (the last 30 minutes' peak plus a buffer calibrated "
    "online to the SLA)"
)


def _decide(item: Observed, forecast: Any, deps: CycleDeps) -> PoolOutcome:
    runtime, config = item.runtime, item.runtime.config
    outcome = PoolOutcome(key=config.key, cycle_at=item.cycle_at, queue_sla=config.queue_sla)
    state: ReplicaState | None = item.replicas
    if state is None:
        reason = "Forbidden" if item.target_error.startswith("forbidden") else "TargetUnavailable"
        if item.target_unscalable:
            reason = "TargetNotScalable"
            outcome.conditions["Invalid"] = ("True", reason, f"spec.target: {item.target_error}")
        outcome.conditions["Ready"] = condition(False, reason, item.target_error)
        outcome.reason = item.target_error
        return outcome
    outcome.replicas, outcome.usable = state.desired, state.usable
    outcome.in_flight = state.in_flight_count
    metrics_ok = item.series is not None and np.isfinite(item.demand_window()).any()
    if not metrics_ok:
        runtime.failed_cycles += 1
        why = item.metrics_error or "; ".join(item.issues) or "no demand values in the window"
        outcome.conditions["MetricsAvailable"] = condition(False, "MetricsUnavailable", why)
        fallback = config.fallback_replicas
        if fallback is not None and runtime.failed_cycles >= config.fallback_after_failed_cycles:
            outcome.recommended = fallback
            outcome.policy = "fallback"
            outcome.reason = (
                f"metrics unavailable for {runtime.failed_cycles} cycles: fallback to "
                f"{fallback} replicas ({why})"
            )
        else:
            outcome.recommended = state.desired
            outcome.policy = "hold"
            outcome.reason = f"metrics unavailable, holding {state.desired} replicas ({why})"
        outcome.failed_cycles = runtime.failed_cycles
        outcome.conditions["Ready"] = condition(True, "Holding", outcome.reason)
        return outcome
    runtime.failed_cycles = 0
    outcome.conditions["MetricsAvailable"] = (
        condition(True, "MetricsComplete", "every indicator has every point")
        if item.complete
        else condition(True, "MetricsPartial", "; ".join(item.issues)[:1000])
    )
    if config.queue_sla:
        read_pool_backlog(item, state, outcome)
    runtime.shadow, seen = policy_view(runtime.shadow, config, state, item.cycle_at)
    item.policy_usable = seen.usable
    observation = build_observation(item, seen)
    demand_samples = None if forecast is None else forecast.demand_samples
    policy = runtime.harmony if demand_samples is not None else runtime.fallback
    if demand_samples is not None:
        outcome.conditions["ModelReady"] = condition(
            True, "ModelLoaded", f"model version {forecast.model_version_id} forecasts the pool"
        )
    else:
        why = runtime.model_note or "no trained model yet"
        outcome.conditions["ModelReady"] = condition(False, "NoModel", f"{why}; {FALLBACK_NOTE}")
    last = observation.last_demand
    realised = last if np.isfinite(last).all() else float("nan")
    if policy is not runtime.fallback and policy.name in runtime.decided_once:
        policy.observe(realised)
    # The fallback's outcomes need no decision of its own: it learns every cycle, so that it
    # takes over warm when a model fails.
    runtime.fallback.observe(realised)
    decision = policy.decide(observation, demand_samples)
    runtime.decided_once.add(policy.name)
    if runtime.shadow is not None:
        runtime.shadow.take(item.cycle_at, decision.replicas)
    item.decision = decision
    outcome.policy = decision.policy
    outcome.recommended = decision.replicas
    outcome.reason = decision.reason
    probability = decision.shortfall_probability
    outcome.shortfall_probability = None if math.isnan(probability) else round(probability, 6)
    utilization = decision.expected_utilization
    outcome.expected_utilization = None if math.isnan(utilization) else round(utilization, 6)
    outcome.conditions["Ready"] = condition(True, "Decided", decision.reason[:1000])
    return outcome


@dataclass
class Intent:
    index: int
    key: str
    action_id: int
    from_replicas: int
    to_replicas: int


def _record_decisions(
    observed: list[Observed],
    outcomes: list[PoolOutcome],
    samples: dict[str, Any],
    deps: CycleDeps,
    now: dt.datetime,
) -> list[Intent]:
    """Phase 1: forecast, decision and action intents in one transaction; intents to act on."""
    intents: list[Intent] = []
    try:
        with deps.sessions.begin() as session:
            for index, (item, outcome) in enumerate(zip(observed, outcomes, strict=True)):
                config = item.runtime.config
                row = records.upsert_pool(
                    session, config, config.namespace, config.name, item.runtime.raw_spec, now
                )
                item.pool_id = row.id
                state = item.replicas
                if state is None or outcome.recommended is None:
                    continue
                for pending in records.pending_actions(session, row.id):
                    records.resolve_pending(pending, state.desired)
                forecast = samples.get(config.key)
                if forecast is not None:
                    records.add_forecast(session, row.id, config, item.cycle_at, forecast.summary)
                decision = records.add_decision(
                    session, row.id, item.cycle_at, decision_fields(item, outcome)
                )
                wanted = outcome.recommended
                if not config.enforce or wanted == state.desired or not deps.may_act():
                    continue
                key = records.idempotency_key(config, item.cycle_at)
                claimed = records.claim_action(
                    session, row.id, key, decision.id, state.desired, wanted, now
                )
                if claimed is not None:
                    intents.append(Intent(index, key, claimed.id, state.desired, wanted))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        log.error("state store unavailable, no action taken this cycle: %s", reason)
        for outcome in outcomes:
            outcome.conditions["Ready"] = condition(
                False,
                "StateStoreUnavailable",
                f"cannot record the cycle ({reason}); no action taken",
            )
        return []
    return intents


def _act(intent: Intent, deps: CycleDeps) -> ScaleResult | HarmonyError:
    if deps.before_act is not None:
        deps.before_act(intent.key)
    if not deps.may_act():
        return HarmonyError("lost leadership before acting; the new leader decides")
    pool_key = intent.key.rsplit("@", 1)[0]
    try:
        return deps.actuator.scale(pool_key, intent.to_replicas, intent.key)
    except HarmonyError as error:
        return error


def _record_results(
    observed: list[Observed],
    outcomes: list[PoolOutcome],
    intents: list[Intent],
    results: list[ScaleResult | HarmonyError],
    deps: CycleDeps,
) -> None:
    """Phase 2: action outcomes, calibration posteriors and the status written."""
    for intent, result in zip(intents, results, strict=True):
        outcome = outcomes[intent.index]
        if isinstance(result, ScaleResult):
            outcome.action = result
            outcome.replicas = result.to_replicas
            item = observed[intent.index]
            item.runtime.churn.record(item.cycle_at, result.from_replicas, result.to_replicas)
        else:
            reason = "Forbidden" if str(result).startswith("forbidden") else "ScaleFailed"
            outcome.conditions["Ready"] = condition(False, reason, str(result))
    try:
        with deps.sessions.begin() as session:
            for intent, result in zip(intents, results, strict=True):
                if isinstance(result, ScaleResult):
                    records.finish_action(
                        session,
                        intent.action_id,
                        True,
                        result.message or "applied",
                        result.to_replicas,
                    )
                else:
                    records.finish_action(session, intent.action_id, False, str(result))
            states: dict[int, dict[str, Any]] = {}
            for item, outcome in zip(observed, outcomes, strict=True):
                if item.pool_id is None:
                    continue
                calibration = getattr(item.runtime.harmony, "calibration", None)
                if item.decision is not None and item.decision.policy == "harmony" and calibration:
                    records.add_calibration(
                        session, item.pool_id, item.cycle_at, calibration.to_dict()
                    )
                if item.decision is not None:
                    policies = item.runtime.policies
                    states[item.pool_id] = {policy.name: policy.state() for policy in policies}
                    if item.runtime.config.queue_sla:
                        states[item.pool_id][STATE_KEY] = item.runtime.fluid.to_dict()
                    states[item.pool_id][CHURN_STATE] = item.runtime.churn.to_dict()
                    if item.runtime.shadow is not None:
                        states[item.pool_id][SHADOW_STATE] = item.runtime.shadow.to_dict()
                item.runtime.last_outcome = outcome
            records.save_policy_states(session, states)
    except SQLAlchemyError as error:
        log.error("could not record the outcome of this cycle's actions: %s", error)
