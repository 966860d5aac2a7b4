"""Baseline policies: what people run today, behind the same `Policy` interface.

Every baseline plans against `capacity_per_replica * target_utilization` of its spec (the
oracle's knob replaces the target utilisation), keeps within [min_replicas, max_replicas]
and never goes below replicas pinned by do-not-disrupt pods. When given samples they only
report the shortfall probability and expected cost of their choice.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from decision.engine import analyse, as_sample_cube
from decision.errors import InvalidDecisionInput, require_own_state
from decision.reasons import ReasonContext, reason
from decision.safety import apply_safety_rules, churn_limit, clip_to_bounds
from decision.types import BindingConstraint, Decision, FloatArray, PoolObservation, PoolSpec


def bounded(wanted: int, observation: PoolObservation, spec: PoolSpec) -> tuple[int, Any]:
    """Churn limits, bounds and the do-not-disrupt floor only: (replicas, binding or None)."""
    held, churn = churn_limit(wanted, observation, spec)
    replicas, binding = clip_to_bounds(held, spec)
    binding = binding or churn
    pinned = min(observation.pinned_replicas, observation.replicas_total)
    if replicas < pinned:
        return pinned, BindingConstraint.pinned
    return replicas, binding


def build_decision(
    policy: str,
    observation: PoolObservation,
    spec: PoolSpec,
    samples: FloatArray | None,
    replicas: int,
    wanted: int,
    binding: BindingConstraint,
    why: str,
    stabilized: int | None = None,
    details: dict[str, float] | None = None,
) -> Decision:
    """A baseline's Decision; with samples, the figures of its choice under the forecast."""
    figures: dict[str, float] = {}
    if samples is not None:
        analysis = analyse(samples, observation, spec)
        probability, upper = analysis.shortfall_probability(replicas)
        figures = {
            "shortfall_probability": probability,
            "shortfall_probability_upper": upper,
            "expected_cost": float(analysis.expected_cost(np.asarray([replicas]))[0]),
            "expected_utilization": analysis.expected_utilization(replicas),
        }
    context = ReasonContext(
        current=observation.replicas_total,
        replicas=replicas,
        wanted=wanted,
        spec=spec,
        stabilized=stabilized,
        policy_why=why,
    )
    return Decision(
        policy=policy,
        replicas=replicas,
        recommended_replicas=wanted,
        binding=binding,
        reason=reason(binding, context),
        details=details or {},
        **figures,
    )


def needed_replicas(demand: FloatArray, capacity: FloatArray) -> int:
    """Fewest replicas whose capacity covers `demand` `[K]` on every indicator."""
    ratio = np.max(np.asarray(demand) / capacity) * (1.0 - 1e-9)
    return max(math.ceil(ratio), 0)


class _StatelessPolicy:
    """observe/state/load_state of policies that keep nothing between steps."""

    name = ""

    def observe(self, realised_demand: FloatArray | float) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {"policy": self.name}

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)


class StaticPeakPolicy(_StatelessPolicy):
    """Provision for `peak_fraction` of the peak demand, always.

    The peak is `spec.peak_demand` (the backtest passes the training part's peak); when
    unset, the highest demand observed so far (recent windows and observe()).
    """

    name = "static"
    knob_name = "peak_fraction"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (knob > 0 and math.isfinite(knob)):
            raise InvalidDecisionInput(f"static policy: peak_fraction must be > 0, got {knob!r}")
        self.spec = spec
        self.knob = knob
        self._seen_peak = np.full(spec.indicator_count, np.nan)

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        if spec.peak_demand is not None:
            peak = np.atleast_1d(np.asarray(spec.peak_demand, dtype=np.float64))
            source = "the configured peak"
        else:
            self._remember(observation.recent_demand)
            peak = self._seen_peak
            source = "the highest demand seen so far"
        if not np.all(np.isfinite(peak)):
            replicas, binding = bounded(observation.replicas_total, observation, spec)
            why = "" if binding else "no peak is configured and no demand has been seen yet"
            return build_decision(
                self.name, observation, spec, demand_samples, replicas, replicas,
                binding or BindingConstraint.hold, why,
            )  # fmt: skip
        wanted = needed_replicas(peak * self.knob, spec.planning_capacity)
        replicas, binding = bounded(wanted, observation, spec)
        why = "" if binding else f"they cover {percent_text(self.knob)} of {source}"
        return build_decision(
            self.name, observation, spec, demand_samples, replicas, wanted,
            binding or BindingConstraint.policy, why,
        )  # fmt: skip

    def observe(self, realised_demand: FloatArray | float) -> None:
        self._remember(np.atleast_2d(np.asarray(realised_demand, dtype=np.float64)))

    def state(self) -> dict[str, Any]:
        peak = [None if math.isnan(v) else float(v) for v in self._seen_peak]
        return {"policy": self.name, "seen_peak": peak}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        peak = state.get("seen_peak", [None] * self.spec.indicator_count)
        self._seen_peak = np.asarray([np.nan if v is None else v for v in peak], dtype=float)

    def _remember(self, demand: FloatArray) -> None:
        if demand.size == 0 or np.all(np.isnan(demand)):
            return
        highest = np.nanmax(demand.reshape(-1, self.spec.indicator_count), axis=0)
        self._seen_peak = np.fmax(self._seen_peak, highest)


def percent_text(value: float) -> str:
    return f"{value * 100:.3g}%"


class HeadroomPolicy:
    """Point forecast plus headroom (predictive-HPA / Crane style).

    The point forecast is the mean of the samples; times (1 + headroom) it must fit the
    planning capacity over the same decision window as harmony, with harmony's safety rules
    (stabilisation, step limits, no scale-down on incomplete metrics).
    """

    name = "headroom"
    knob_name = "headroom"
    forecast_source = "harmony"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (knob >= 0 and math.isfinite(knob)):
            raise InvalidDecisionInput(f"headroom policy: headroom must be >= 0, got {knob!r}")
        self.spec = spec
        self.knob = knob
        self._history: list[int] = []

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        if demand_samples is None:
            raise InvalidDecisionInput("the headroom policy needs demand samples (a forecast)")
        point = as_sample_cube(demand_samples, spec).mean(axis=0, keepdims=True)
        analysis = analyse(point * (1.0 + self.knob), observation, spec)
        wanted = analysis.covering_all()
        safety = apply_safety_rules(wanted, observation, spec, self._history)
        keep = spec.stabilization_steps - 1
        self._history = [*self._history, safety.recommendation][-keep:] if keep else []
        why = "" if safety.binding else f"the mean forecast plus {percent_text(self.knob)} fits"
        return build_decision(
            self.name, observation, spec, demand_samples, safety.replicas, wanted,
            safety.binding or BindingConstraint.policy, why, stabilized=safety.stabilized,
        )  # fmt: skip

    def observe(self, realised_demand: FloatArray | float) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {"policy": self.name, "history": list(self._history)}

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)
        self._history = [int(v) for v in state.get("history", [])]


class OraclePolicy(_StatelessPolicy):
    """Perfect foresight under the same provisioning delay: the lower bound.

    Given the true future as `[1, H]` (or `[1, H, K]`) it requests exactly what covers it
    over the decision window at `target_utilization` (its knob), with bounds only.
    """

    name = "oracle"
    knob_name = "target_utilization"
    forecast_source = "truth"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        self.spec = replace(spec, target_utilization=knob)
        self.knob = knob

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        if demand_samples is None:
            raise InvalidDecisionInput("the oracle policy needs the true future demand [1, H]")
        analysis = analyse(demand_samples, observation, self.spec)
        wanted = analysis.covering_all()
        replicas, binding = bounded(wanted, observation, self.spec)
        why = "" if binding else "they exactly cover the true demand"
        return build_decision(
            self.name, observation, self.spec, demand_samples, replicas, wanted,
            binding or BindingConstraint.policy, why,
        )  # fmt: skip
