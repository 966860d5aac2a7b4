"""The Kubernetes HorizontalPodAutoscaler algorithm (autoscaling/v2, default behaviour).

Per metric (each demand indicator is a Resource metric whose request is the capacity per
replica), as in the HPA's replica calculator:

    usage_ratio = (demand / (ready * capacity)) / target_utilization
    |usage_ratio - 1| <= 0.1            -> keep the current replicas (tolerance)
    otherwise                           -> ceil(usage_ratio * ready)

Replicas still provisioning (not ready) count as 0% used when the ratio says scale up, and
the scale-up is dropped if that reverses it or brings it within tolerance. Several metrics:
the largest proposal. Then the default behaviour: scale-down stabilisation of 300 s (the
highest recommendation within the window), scale-up without stabilisation, limited per
15 s period to max(+100%, +4 replicas). Adapted to a step of `step_seconds`: the window
holds the recommendations of the last ceil(300 / step_seconds) steps (this one included,
as the HPA keeps those made after now - 300 s), and one step spans
max(1, floor(step_seconds / 15)) scale-up periods, each allowing max(2c, c + 4) from c.
The list of recommendations starts with the current replicas, as the HPA's does, so the
first scale-down also waits for the window. Steps are counted by observe(). No metrics
(NaN) means no change, as the HPA does when it cannot read them. Deviation: the
HPA never scales up from zero replicas; here a pool at 0 goes to ceil(demand / (capacity *
target)) so that pools with min_replicas = 0 can start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from decision.baselines import bounded, build_decision
from decision.errors import InvalidDecisionInput, require_own_state
from decision.types import BindingConstraint, Decision, FloatArray, PoolObservation, PoolSpec

TOLERANCE = 0.1
SCALE_DOWN_STABILIZATION_SECONDS = 300.0
SCALING_PERIOD_SECONDS = 15.0
SCALE_UP_PODS = 4
SCALE_UP_PERCENT = 100.0


def metric_proposal(
    demand: float, capacity: float, target: float, ready: int, current: int
) -> tuple[int, float]:
    """(proposed replicas, usage ratio) for one Resource metric, per the replica calculator."""
    if ready == 0:
        if current == 0 and demand > 0:
            return math.ceil(demand / (capacity * target) * (1 - 1e-9)), math.inf
        return current, math.nan
    usage_ratio = demand / (ready * capacity) / target
    unready = current - ready
    if unready == 0 or usage_ratio <= 1.0:
        if abs(1.0 - usage_ratio) <= TOLERANCE:
            return current, usage_ratio
        return math.ceil(usage_ratio * ready * (1 - 1e-12)), usage_ratio
    # Scale-up while replicas are still starting: those count as using nothing.
    new_ratio = demand / (current * capacity) / target
    if abs(1.0 - new_ratio) <= TOLERANCE or new_ratio < 1.0:
        return current, new_ratio
    return max(math.ceil(new_ratio * current * (1 - 1e-12)), current), new_ratio


def scale_up_limit(current: int, periods: int) -> int:
    """Most replicas the default scale-up policies allow after `periods` 15 s periods."""
    limit = current
    for _ in range(periods):
        by_percent = math.ceil(limit * (1 + SCALE_UP_PERCENT / 100))
        limit = max(by_percent, limit + SCALE_UP_PODS)
    return limit


class HpaPolicy:
    """The HPA with default behaviour; the knob is its target utilisation."""

    name = "hpa"
    knob_name = "target_utilization"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (knob > 0 and math.isfinite(knob)):
            raise InvalidDecisionInput(f"hpa policy: target_utilization must be > 0, got {knob!r}")
        self.spec = spec
        self.knob = knob
        self.window_steps = max(1, math.ceil(SCALE_DOWN_STABILIZATION_SECONDS / spec.step_seconds))
        self.periods_per_step = max(1, int(spec.step_seconds // SCALING_PERIOD_SECONDS))
        # (step, recommendation); the HPA seeds the list with the current replicas.
        self._recommendations: list[tuple[int, int]] = []
        self._step = 0

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        current = observation.replicas_total
        demand = observation.last_demand_for(spec, "hpa")
        if not np.all(np.isfinite(demand)):
            replicas, binding = bounded(current, observation, spec)
            return build_decision(
                self.name, observation, spec, demand_samples, replicas, current,
                binding or BindingConstraint.incomplete_observation,
                "the HPA does not scale without metrics",
            )  # fmt: skip
        proposals = [
            metric_proposal(float(d), c, self.knob, observation.replicas_usable, current)
            for d, c in zip(demand, spec.capacities, strict=True)
        ]
        desired = max(p for p, _ in proposals)
        ratio = max(r for _, r in proposals)
        if not self._recommendations:
            self._recommendations.append((self._step, current))
        self._recommendations.append((self._step, desired))
        oldest = self._step - self.window_steps + 1
        self._recommendations = [(s, r) for s, r in self._recommendations if s >= oldest]
        highest_recent = max(r for _, r in self._recommendations)
        recommendation = current
        if recommendation < desired:
            recommendation = desired
        if recommendation > highest_recent:
            recommendation = highest_recent
        limit = scale_up_limit(current, self.periods_per_step)
        limited = min(recommendation, limit)
        replicas, binding = bounded(limited, observation, spec)
        if binding is None:
            binding, why = self._explain(current, desired, recommendation, limited, ratio)
        else:
            why = ""
        return build_decision(
            self.name, observation, spec, demand_samples, replicas, desired, binding, why,
            stabilized=highest_recent, details={"usage_ratio": ratio},
        )  # fmt: skip

    def _explain(
        self, current: int, desired: int, recommendation: int, limited: int, ratio: float
    ) -> tuple[BindingConstraint, str]:
        ratio_text = f"usage at {ratio:.2f} x the {self.knob:.0%} target"
        if limited < recommendation:
            return (
                BindingConstraint.max_step_up,
                f"the HPA scale-up policy allows at most {limited} this step ({ratio_text}, "
                f"wanted {recommendation})",
            )
        if recommendation > desired and recommendation <= current:
            return (
                BindingConstraint.stabilization,
                f"the 5-minute scale-down stabilisation window recommends up to "
                f"{recommendation} ({ratio_text}, wanted {desired})",
            )
        if desired == current:
            return BindingConstraint.hold, f"{ratio_text} is within the 0.1 tolerance or unknown"
        return BindingConstraint.policy, f"ceil(replicas x usage ratio) with {ratio_text}"

    def observe(self, realised_demand: FloatArray | float) -> None:
        self._step += 1

    def state(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "step": self._step,
            "recommendations": [list(pair) for pair in self._recommendations],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)
        try:
            self._step = int(state["step"])
            self._recommendations = [(int(s), int(r)) for s, r in state["recommendations"]]
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidDecisionInput(f"hpa policy state: malformed ({error})") from error
