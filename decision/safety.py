"""Safety rules between a policy's wish and the replica count actually requested.

- Scale-up acts at once, by at most `max_step_up`.
- Scale-down goes only to the highest recommendation of the last `stabilization_steps`
  steps (this one included; missing history counts as the current size), so it happens
  only once the window has held a lower count throughout; by at most `max_step_down`;
  never when the observation was incomplete.
- Churn limits hold a scale-down (for every policy alike, through `churn_limit`): until
  the newest replica has run `min_node_lifetime_seconds` (whichever replica the target's
  controller removes, none is younger), and once `max_scale_downs_per_hour` scale-downs
  happened in the trailing hour. Scale-up is never held by them: the SLA comes first.
- The result always lies in [min_replicas, max_replicas] (the bounds win over step limits
  and stabilisation), and never below the replicas pinned by do-not-disrupt pods (those win
  over max_replicas: such replicas are never removed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from decision.types import BindingConstraint, PoolObservation, PoolSpec


@dataclass(frozen=True)
class SafetyOutcome:
    replicas: int
    #: The rule that changed the wish, or None when the wish stands.
    binding: BindingConstraint | None
    #: The wish clipped to the bounds: what the stabilisation window remembers.
    recommendation: int
    #: For the reason: the stabilised count, when stabilisation held replicas.
    stabilized: int | None = None


def clip_to_bounds(replicas: int, spec: PoolSpec) -> tuple[int, BindingConstraint | None]:
    if replicas < spec.min_replicas:
        return spec.min_replicas, BindingConstraint.min_replicas
    if replicas > spec.max_replicas:
        return spec.max_replicas, BindingConstraint.max_replicas
    return replicas, None


def churn_limit(
    target: int, observation: PoolObservation, spec: PoolSpec
) -> tuple[int, BindingConstraint | None]:
    """`target`, or the current count when a churn limit holds this scale-down."""
    current = observation.replicas_total
    if target >= current:
        return target, None
    age = observation.seconds_since_scale_up
    if age is not None and age < spec.min_node_lifetime_seconds:
        return current, BindingConstraint.min_node_lifetime
    limit = spec.max_scale_downs_per_hour
    if limit is not None and observation.scale_downs_last_hour >= limit:
        return current, BindingConstraint.max_scale_downs
    return target, None


def apply_safety_rules(
    wanted: int, observation: PoolObservation, spec: PoolSpec, history: Sequence[int]
) -> SafetyOutcome:
    """The replica count to request given the policy's wish and the recent recommendations
    (`history`, oldest first, excluding this step's)."""
    current = observation.replicas_total
    target, binding = clip_to_bounds(wanted, spec)
    recommendation = target
    stabilized: int | None = None
    if target > current:
        if spec.max_step_up is not None and target > current + spec.max_step_up:
            target, binding = current + spec.max_step_up, BindingConstraint.max_step_up
    elif target < current:
        if not observation.complete:
            target, binding = current, BindingConstraint.incomplete_observation
        else:
            remembered = list(history[-(spec.stabilization_steps - 1) :])
            if spec.stabilization_steps == 1:
                remembered = []
            padding = spec.stabilization_steps - 1 - len(remembered)
            highest = max([target, *remembered, *([current] * padding)])
            if highest > target:
                stabilized = highest
                target, binding = min(highest, current), BindingConstraint.stabilization
            if spec.max_step_down is not None and target < current - spec.max_step_down:
                target, binding = current - spec.max_step_down, BindingConstraint.max_step_down
            target, churn = churn_limit(target, observation, spec)
            binding = churn or binding
    bounded, bound_binding = clip_to_bounds(target, spec)
    if bounded != target:
        target, binding = bounded, bound_binding
    pinned = min(observation.pinned_replicas, current)
    if target < pinned:
        target, binding = pinned, BindingConstraint.pinned
    return SafetyOutcome(target, binding, recommendation, stabilized)
