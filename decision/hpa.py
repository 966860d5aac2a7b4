"""The Kubernetes HorizontalPodAutoscaler algorithm (autoscaling/v2) with its `behavior` block.

Replica calculator, per metric (a demand indicator; its request is the capacity per
replica): usage_ratio = demand / (ready * capacity) / target_utilization; within
[1 - scale_down.tolerance, 1 + scale_up.tolerance] the replicas stay, otherwise
ceil(usage_ratio * ready). On a scale-up, replicas still provisioning count as 0% used, and
the scale-up is dropped if that reverses it or brings it within tolerance. `desired` is the
largest proposal of the metrics. Then, at each sync of the controller:

- stabilisation: the current replicas brought within [lowest recommendation of the
  scale-up window, highest of the scale-down window], a window holding `desired` and what
  was recorded after now - stabilization_window_seconds (first the current replicas);
- rate limits: per policy, from x = the current replicas less the net change of the scale
  events recorded after now - period_seconds, up to x + value pods or ceil(x (1 + value /
  100)), down to x - value or floor(x (1 - value / 100)); selectPolicy Max takes the largest
  change, Min the smallest, Disabled none; then [min_replicas, max_replicas]. A change is
  recorded as a scale event.

Step t starts at t * step_seconds (observe() counts steps); the controller syncs every 15 s
(its default) from there, ceil(step_seconds / 15) times on the step's metrics, and the
decision is the replicas after the last sync: periods shorter than the step compound
(Percent 100 per 15 s doubles 20 times in 300 s), scale events of earlier steps count
within longer periods. A step's `desired` is recorded once, at its last sync (all its syncs
recommend the same); syncs at which nothing expires, so nothing can change, are skipped.

No metrics (NaN): no change, as when the HPA cannot read them. Replicas pinned by
do-not-disrupt pods are never removed. Deviation: the HPA never scales a target at zero
replicas; here a pool at 0 wants ceil(demand / (capacity * target)), rate-limited as any
scale-up, so that pools with min_replicas = 0 can start.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any, Literal

import numpy as np

from decision.baselines import bounded, build_decision
from decision.errors import InvalidDecisionInput, require_own_state
from decision.types import BindingConstraint, Decision, FloatArray, PoolObservation, PoolSpec

SYNC_PERIOD_SECONDS = 15
PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]


def _require(ok: bool, field: str, rule: str, value: object) -> None:
    if not ok:
        raise InvalidDecisionInput(f"{field} must be {rule}, got {value!r}")


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


@dataclass(frozen=True)
class HpaScalingPolicy:
    """At most `value` pods ("Pods") or `value` percent ("Percent") per `period_seconds`."""

    type: PolicyType
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        field = "HpaScalingPolicy."
        _require(self.type in ("Pods", "Percent"), field + "type", "Pods or Percent", self.type)
        _require(_is_int(self.value, 1, 2**31 - 1), field + "value", "an integer > 0", self.value)
        period = self.period_seconds
        _require(_is_int(period, 1, 1800), field + "period_seconds", "in [1, 1800]", period)


@dataclass(frozen=True)
class HpaScalingRules:
    """One direction of `behavior`: stabilisation window, rate-limit policies, tolerance."""

    stabilization_window_seconds: int
    policies: tuple[HpaScalingPolicy, ...]
    select_policy: SelectPolicy = "Max"
    tolerance: float = 0.1

    def __post_init__(self) -> None:
        field, window = "HpaScalingRules.", self.stabilization_window_seconds
        _require(_is_int(window, 0, 3600), field + "stabilization_window_seconds",
                 "an integer in [0, 3600]", window)  # fmt: skip
        valid = bool(self.policies) and all(isinstance(p, HpaScalingPolicy) for p in self.policies)
        _require(valid, field + "policies", "a non-empty tuple of HpaScalingPolicy", self.policies)
        _require(self.select_policy in ("Max", "Min", "Disabled"), field + "select_policy",
                 "Max, Min or Disabled", self.select_policy)  # fmt: skip
        _require(math.isfinite(self.tolerance) and self.tolerance >= 0, field + "tolerance",
                 "a finite number >= 0", self.tolerance)  # fmt: skip


DEFAULT_SCALE_UP = HpaScalingRules(
    0, (HpaScalingPolicy("Pods", 4, 15), HpaScalingPolicy("Percent", 100, 15)), "Max"
)
DEFAULT_SCALE_DOWN = HpaScalingRules(300, (HpaScalingPolicy("Percent", 100, 15),), "Max")


@dataclass(frozen=True)
class HpaBehavior:
    """`spec.behavior` of an autoscaling/v2 HPA; the defaults are Kubernetes' defaults."""

    scale_up: HpaScalingRules = DEFAULT_SCALE_UP
    scale_down: HpaScalingRules = DEFAULT_SCALE_DOWN


LONG_WINDOW_BEHAVIOR = HpaBehavior(
    scale_down=replace(DEFAULT_SCALE_DOWN, stabilization_window_seconds=3600)
)


def metric_proposal(
    demand: float, capacity: float, target: float, ready: int, current: int,
    up_tolerance: float = 0.1, down_tolerance: float = 0.1,
) -> tuple[int, float]:  # fmt: skip
    """(proposed replicas, usage ratio) for one Resource metric, per the replica calculator."""
    if ready == 0:
        if current == 0 and demand > 0:
            return math.ceil(demand / (capacity * target) * (1 - 1e-9)), math.inf
        return current, math.nan
    usage_ratio = demand / (ready * capacity) / target
    if current == ready or usage_ratio <= 1.0:
        if 1.0 - down_tolerance <= usage_ratio <= 1.0 + up_tolerance:
            return current, usage_ratio
        return math.ceil(usage_ratio * ready * (1 - 1e-12)), usage_ratio
    # Scale-up while replicas are still starting: those count as using nothing.
    new_ratio = demand / (current * capacity) / target
    if new_ratio <= 1.0 + up_tolerance:  # within tolerance, or the direction reverses
        return current, new_ratio
    return max(math.ceil(new_ratio * current * (1 - 1e-12)), current), new_ratio


def scale_limit(
    rules: HpaScalingRules, current: int, now: float, events: list[tuple[float, int]], up: bool
) -> int:
    """The HPA's calculateScale{Up,Down}Limit: the most (up) or fewest (down) replicas its
    policies allow at time `now`; `events` are (time, signed replica change)."""
    if rules.select_policy == "Disabled":
        return current
    allowed = []
    for policy in rules.policies:
        cutoff = now - policy.period_seconds
        start = current - sum(change for time, change in events if time > cutoff)
        if policy.type == "Pods":
            allowed.append(start + policy.value if up else start - policy.value)
        elif up:
            allowed.append(math.ceil(start * (1 + policy.value / 100)))
        else:
            allowed.append(int(start * (1 - policy.value / 100)))
    largest_change = rules.select_policy == "Max"
    return max(allowed) if largest_change == up else min(allowed)


class HpaPolicy:
    """The HPA with a configurable behavior; the knob is its target utilisation."""

    name = "hpa"
    knob_name = "target_utilization"

    def __init__(
        self, spec: PoolSpec, knob: float, behavior: HpaBehavior | None = None, name: str = "hpa"
    ) -> None:
        if not (knob > 0 and math.isfinite(knob)):
            raise InvalidDecisionInput(f"{name} policy: target_utilization must be > 0, got {knob}")
        self.spec = spec
        self.knob = knob
        self.behavior = behavior or HpaBehavior()
        self.name = name
        self._syncs = max(1, math.ceil(spec.step_seconds / SYNC_PERIOD_SECONDS - 1e-9))
        up, down = self.behavior.scale_up, self.behavior.scale_down
        self._up_window = up.stabilization_window_seconds
        self._down_window = down.stabilization_window_seconds
        self._periods = {p.period_seconds for p in up.policies + down.policies}
        self._recommendations: list[tuple[float, int]] = []  # (time, desired)
        self._events: list[tuple[float, int]] = []  # (time, signed replica change)
        self._step = 0

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        current = observation.replicas_total
        demand = observation.last_demand_for(spec, self.name)
        start = self._step_start(current)
        if not np.all(np.isfinite(demand)):
            replicas, binding = bounded(current, observation, spec)
            return build_decision(
                self.name, observation, spec, demand_samples, replicas, current,
                binding or BindingConstraint.incomplete_observation,
                "the HPA does not scale without metrics",
            )  # fmt: skip
        up, down = self.behavior.scale_up.tolerance, self.behavior.scale_down.tolerance
        proposals = [
            metric_proposal(float(d), c, self.knob, observation.replicas_usable, current, up, down)
            for d, c in zip(demand, spec.capacities, strict=True)
        ]
        desired = max(p for p, _ in proposals)
        ratio = max(r for _, r in proposals)
        replicas, stabilized, binding = self._converge(start, current, desired, observation)
        why = ""
        if binding is None:
            binding, why = self._explain(current, desired, stabilized, replicas, ratio)
        return build_decision(
            self.name, observation, spec, demand_samples, replicas, desired, binding, why,
            stabilized=stabilized, details={"usage_ratio": ratio},
        )  # fmt: skip

    def _step_start(self, current: int) -> float:
        """This step's time; the recommendations start with the current replicas, as the
        HPA's do."""
        start = self._step * self.spec.step_seconds
        if not self._recommendations:
            self._recommendations.append((start, current))
        return start

    def _converge(
        self, start: float, current: int, desired: int, observation: PoolObservation
    ) -> tuple[int, int, BindingConstraint | None]:
        """Run this step's syncs from `current` towards `desired` (stabilisation, rate
        limits, bounds), record `desired`; (replicas, stabilised count, bound hit)."""
        replicas, stabilized, binding, sync = current, current, None, 0
        while sync < self._syncs:
            now = start + sync * SYNC_PERIOD_SECONDS
            stabilized = self._stabilized(now, replicas, desired)
            new, binding = bounded(
                self._rate_limited(now, replicas, stabilized), observation, self.spec
            )
            sync += 1
            if new != replicas:
                self._events.append((now, new - replicas))
                replicas = new
            else:
                sync = max(sync, self._next_expiry_sync(start, now))
        self._record(start + (self._syncs - 1) * SYNC_PERIOD_SECONDS, desired)
        return replicas, stabilized, binding

    def _stabilized(self, now: float, replicas: int, desired: int) -> int:
        recommendations = self._recommendations
        up = recommendations[self._first_in_window(now, self._up_window) :]
        down = recommendations[self._first_in_window(now, self._down_window) :]
        lowest = min(desired, min(r for _, r in up)) if up else desired
        highest = max(desired, max(r for _, r in down)) if down else desired
        return min(max(replicas, lowest), highest)

    def _first_in_window(self, now: float, window: int) -> int:  # recorded after now - window
        return bisect_right(self._recommendations, now - window, key=itemgetter(0))

    def _rate_limited(self, now: float, replicas: int, wanted: int) -> int:
        if wanted > replicas:
            limit = scale_limit(self.behavior.scale_up, replicas, now, self._events, up=True)
            return min(wanted, max(limit, replicas))
        if wanted < replicas:
            limit = scale_limit(self.behavior.scale_down, replicas, now, self._events, up=False)
            return max(wanted, min(limit, replicas))
        return wanted

    def _next_expiry_sync(self, start: float, now: float) -> int:
        """The first sync at which a recommendation leaves a window or a scale event leaves a
        period: until then every sync decides the same."""
        recommendations, expiries = self._recommendations, []
        for window in (self._up_window, self._down_window):
            first = self._first_in_window(now, window)
            if first < len(recommendations):
                expiries.append(recommendations[first][0] + window)
        expiries += [t + p for t, _ in self._events for p in self._periods if t + p > now]
        if not expiries:
            return self._syncs
        return math.ceil((min(expiries) - start) / SYNC_PERIOD_SECONDS - 1e-9)

    def _record(self, now: float, desired: int) -> None:
        """Keep what a later sync can still see; record this step's `desired`."""
        kept = self._first_in_window(now, max(self._up_window, self._down_window))
        self._recommendations = [*self._recommendations[kept:], (now, desired)]
        self._events = [e for e in self._events if e[0] > now - max(self._periods)]

    def _explain(
        self, current: int, desired: int, stabilized: int, replicas: int, ratio: float
    ) -> tuple[BindingConstraint, str]:
        ratio_text = f"usage at {ratio:.2f} x the {self.knob:.0%} target"
        if replicas != stabilized or stabilized != desired:
            up = stabilized > replicas if replicas != stabilized else stabilized < desired
            rules = self.behavior.scale_up if up else self.behavior.scale_down
            direction = "up" if up else "down"
            if replicas != stabilized:
                limit = "is disabled" if rules.select_policy == "Disabled" else "policies allow"
                return BindingConstraint.max_step_up if up else BindingConstraint.max_step_down, (
                    f"the HPA scale-{direction} {limit} ({ratio_text}, wanted {stabilized})"
                )
            return BindingConstraint.stabilization, (
                f"the {rules.stabilization_window_seconds} s scale-{direction} stabilisation "
                f"window recommends {'at most' if up else 'up to'} {stabilized} ({ratio_text}, "
                f"wanted {desired})"
            )
        if desired == current:
            return BindingConstraint.hold, f"{ratio_text} is within the tolerance or unknown"
        return BindingConstraint.policy, f"ceil(replicas x usage ratio) with {ratio_text}"

    def observe(self, realised_demand: FloatArray | float) -> None:
        self._step += 1

    def state(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "step": self._step,
            "recommendations": [list(pair) for pair in self._recommendations],
            "scale_events": [list(pair) for pair in self._events],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)
        try:
            self._step = int(state["step"])
            self._recommendations = [(float(t), int(r)) for t, r in state["recommendations"]]
            self._events = [(float(t), int(c)) for t, c in state["scale_events"]]
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidDecisionInput(f"{self.name} policy state: malformed ({error})") from error


def long_window_hpa(spec: PoolSpec, knob: float) -> HpaPolicy:
    """ "hpa-long": the HPA with a 3600 s scale-down stabilisation window."""
    return HpaPolicy(spec, knob, LONG_WINDOW_BEHAVIOR, name="hpa-long")
