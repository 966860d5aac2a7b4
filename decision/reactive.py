"""A cluster-autoscaler-like reactive policy.

Modelled on the Kubernetes cluster-autoscaler with demand standing in for pod requests:
- Scale up on shortfall: when the last observed demand did not fit the usable replicas
  (pods pending) and the replicas already requested (usable plus provisioning, which the
  autoscaler counts as upcoming) do not cover it either, request exactly enough.
- Scale down: once utilisation (demand / usable capacity, busiest indicator) has stayed
  below the threshold (the knob, cluster-autoscaler's 0.5) for 10 minutes
  (scale-down-unneeded-time) and no scale-up happened in the last 10 minutes
  (scale-down-delay-after-add), remove replicas while the rest stay under the threshold,
  as the autoscaler drains unneeded nodes one after another until the remaining ones are
  busy enough: floor(demand / (capacity * threshold)) replicas, never fewer than cover it.
- No scale-down when the last observation is missing. The pool's step limits, bounds and
  do-not-disrupt floor apply; there is no stabilisation window beyond the 10 minutes.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from decision.baselines import build_decision, needed_replicas, percent_text
from decision.errors import InvalidDecisionInput, require_own_state
from decision.safety import apply_safety_rules
from decision.types import BindingConstraint, Decision, FloatArray, PoolObservation, PoolSpec

UNNEEDED_SECONDS = 600.0
DELAY_AFTER_ADD_SECONDS = 600.0


class ReactivePolicy:
    """Scale up on shortfall, down after 10 minutes under the utilisation threshold."""

    name = "reactive"
    knob_name = "scale_down_utilization"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (0 < knob <= 1):
            raise InvalidDecisionInput(
                f"reactive policy: scale_down_utilization must be in (0, 1], got {knob!r}"
            )
        self.spec = replace(spec, stabilization_steps=1)
        self.knob = knob
        self.unneeded_steps = max(1, math.ceil(UNNEEDED_SECONDS / spec.step_seconds))
        self.delay_after_add_steps = max(1, math.ceil(DELAY_AFTER_ADD_SECONDS / spec.step_seconds))
        self._steps_under = 0
        self._steps_since_add = self.delay_after_add_steps

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        current = observation.replicas_total
        demand = observation.last_demand_for(spec, "reactive")
        self._steps_since_add += 1
        wanted, why = current, "nothing is pending and utilisation is not low for long enough"
        if not np.all(np.isfinite(demand)):
            self._steps_under = 0
            why = "the last demand was not observed"
        else:
            capacity = spec.planning_capacity
            needed = needed_replicas(demand, capacity)
            usable = observation.replicas_usable
            utilization = float(np.max(demand / (usable * capacity))) if usable else math.inf
            self._steps_under = self._steps_under + 1 if utilization < self.knob else 0
            if needed > usable and needed > current:
                wanted = needed
                why = f"demand did not fit the {usable} usable replicas"
            elif (
                self._steps_under >= self.unneeded_steps
                and self._steps_since_add >= self.delay_after_add_steps
            ):
                keep = max(needed, int(np.max(np.floor(demand / (capacity * self.knob)))))
                if keep < current:
                    wanted = keep
                    why = (
                        f"utilisation stayed under {percent_text(self.knob)} for "
                        f"{self.unneeded_steps} steps"
                    )
        safety = apply_safety_rules(wanted, observation, spec, [])
        if safety.replicas > current:
            self._steps_since_add = 0
        if safety.replicas < current:
            self._steps_under = 0
        binding = safety.binding or (
            BindingConstraint.policy if wanted != current else BindingConstraint.hold
        )
        return build_decision(
            self.name, observation, spec, demand_samples, safety.replicas, wanted, binding,
            "" if safety.binding else why,
        )  # fmt: skip

    def observe(self, realised_demand: FloatArray | float) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "steps_under": self._steps_under,
            "steps_since_add": self._steps_since_add,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)
        self._steps_under = int(state.get("steps_under", 0))
        self._steps_since_add = int(state.get("steps_since_add", self.delay_after_add_steps))
