"""One sentence a person can read, saying what a decision does and what bound it."""

from __future__ import annotations

from dataclasses import dataclass

from decision.types import BindingConstraint, PoolSpec, SlaKind


def action_phrase(current: int, replicas: int) -> str:
    if replicas > current:
        return f"Scale up from {current} to {replicas} replicas"
    if replicas < current:
        return f"Scale down from {current} to {replicas} replicas"
    return f"Keep {replicas} replicas"


def percent(value: float) -> str:
    return f"{value * 100:.3g}%"


@dataclass(frozen=True)
class ReasonContext:
    """The figures a reason may quote."""

    current: int
    replicas: int
    wanted: int
    spec: PoolSpec
    epsilon: float | None = None
    shortfall_probability: float | None = None
    shortfall_upper: float | None = None
    sla_replicas: int | None = None
    sample_count: int | None = None
    window: str = ""
    stabilized: int | None = None
    policy_why: str = ""


def safety_clause(binding: BindingConstraint, context: ReasonContext) -> str | None:
    """Why a safety rule changed the wish; None when the binding is not a safety rule."""
    spec = context.spec
    wanted = context.wanted
    clauses = {
        BindingConstraint.min_replicas: f"the minimum of {spec.min_replicas} (wanted {wanted})",
        BindingConstraint.max_replicas: f"the maximum of {spec.max_replicas} (wanted {wanted})",
        BindingConstraint.pinned: "replicas running do-not-disrupt pods are never removed "
        f"(wanted {wanted})",
        BindingConstraint.max_step_up: f"the step limit of +{spec.max_step_up} per step "
        f"(wanted {wanted})",
        BindingConstraint.max_step_down: f"the step limit of -{spec.max_step_down} per step "
        f"(wanted {wanted})",
        BindingConstraint.stabilization: f"scale-down waits for the stabilisation window: "
        f"the last {spec.stabilization_steps} steps recommended up to {context.stabilized} "
        f"(wanted {wanted})",
        BindingConstraint.incomplete_observation: "metrics were incomplete, so nothing is "
        f"removed (wanted {wanted})",
        BindingConstraint.min_node_lifetime: "no replica is removed before it has run "
        f"{spec.min_node_lifetime_seconds / 60:g} minutes (wanted {wanted})",
        BindingConstraint.max_scale_downs: f"the limit of {spec.max_scale_downs_per_hour} "
        f"scale-downs per hour is used up (wanted {wanted})",
    }
    return clauses.get(binding)


def miss_phrase(spec: PoolSpec) -> str:
    """What the chance constraint bounds, in words."""
    if spec.sla_kind is SlaKind.queue:
        return (
            f"probability that work waits longer than {(spec.max_delay_seconds or 0) / 60:g} "
            "minutes"
        )
    return "shortfall probability"


def engine_clause(binding: BindingConstraint, context: ReasonContext) -> str:
    """Why the engine wanted what it wanted."""
    miss = miss_phrase(context.spec)
    estimate = (
        f"estimate {percent(context.shortfall_probability or 0.0)}, "
        f"{percent(context.spec.credible_level)} upper bound "
        f"{percent(context.shortfall_upper or 0.0)}"
    )
    epsilon = percent(context.epsilon or 0.0)
    if binding is BindingConstraint.sla:
        return (
            f"the fewest whose {miss} over {context.window} stays within ε={epsilon} ({estimate})"
        )
    if binding is BindingConstraint.cost:
        return (
            f"the cheapest expected cost: the shortfall penalty pays for more than the "
            f"{context.sla_replicas} replicas ε={epsilon} needs ({estimate})"
        )
    if binding is BindingConstraint.keep_until_ready:
        return (
            f"the steps before new replicas could be ready still need them (within ε={epsilon}), "
            f"though {context.sla_replicas} would do from {context.window} on"
        )
    if binding is BindingConstraint.sample_size:
        return (
            f"they cover the forecast's upper tail over {context.window}, extrapolated beyond "
            f"its {context.sample_count} samples: too few samples to show a {miss} "
            f"within ε={epsilon} at {percent(context.spec.credible_level)} "
            "credibility"
        )
    if binding is BindingConstraint.infeasible:
        return (
            f"no count up to the maximum keeps the {miss} within ε={epsilon}: "
            f"{context.sla_replicas} would be needed ({estimate})"
        )
    return context.policy_why


_CHURN = (BindingConstraint.min_node_lifetime, BindingConstraint.max_scale_downs)


def reason(binding: BindingConstraint, context: ReasonContext) -> str:
    """`context.policy_why`, when given, explains a baseline's own rule and wins."""
    action = action_phrase(context.current, context.replicas)
    clause = context.policy_why or safety_clause(binding, context)
    if context.policy_why and binding in _CHURN:
        # A baseline's own rule says what it wanted; the churn limit is why it did not act.
        clause = f"{context.policy_why}; {safety_clause(binding, context)}"
    if clause is None:
        clause = engine_clause(binding, context)
    return f"{action}: {clause}."
