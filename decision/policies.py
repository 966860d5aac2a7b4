"""The policy interface every scaler implements, and the registry that builds them by name.

A policy is a small stateful object driven by the control loop (or the backtest) once per
step t, in this order:

    decision = policy.decide(observation_t, demand_samples_t)   # demand seen up to t-1
    ... the pool is scaled to decision.replicas (new replicas usable at t + d) ...
    policy.observe(realised_demand_t)                            # what step t really asked

Each policy has exactly one knob that trades cost for SLA (`knob_name`, `knob`), with a
default and a sweep range (`default_sweep(name)`) for cost-SLA curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from decision.errors import InvalidDecisionInput
from decision.types import Decision, FloatArray, PoolObservation, PoolSpec


@runtime_checkable
class Policy(Protocol):
    """A scaling policy for one pool.

    Contract of each member (like a cloud provider interface: callers rely on exactly this):
    """

    #: Registry name: "harmony", "static", "hpa", "reactive", "headroom" or "oracle".
    name: str
    #: Name of the one cost-vs-SLA knob ("sla_epsilon", "target_utilization", ...).
    knob_name: str
    #: The knob's value this policy was built with.
    knob: float
    #: The pool the policy scales; fixed for the policy's lifetime.
    spec: PoolSpec

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        """Return the replica count wanted for step t.

        `observation` holds what was seen up to and including step t-1 and the replicas now
        (usable and in flight). `demand_samples` is `[S, H]` or `[S, H, K]` on the demand's
        original scale, horizon index 0 being step t (K must match `spec.capacities`); the
        oracle gets the true future as `[1, H]`; policies that do not forecast accept None
        and ignore samples they are given except to report the shortfall probability of
        their choice. Never returns a count outside [min_replicas, max_replicas] except to
        keep replicas pinned by do-not-disrupt pods. Records what it needs for its
        stabilisation/timers: call it exactly once per step. Raises InvalidDecisionInput
        (one line naming the field) for arrays of the wrong shape or a policy that needs
        samples and got None.
        """
        ...

    def observe(self, realised_demand: FloatArray | float) -> None:
        """Report the demand realised at the step just decided (`[K]` or a scalar; NaN when
        it was not observed, which is skipped). Called once per step after `decide`; it is
        how the calibration posterior learns. A no-op for stateless policies."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-ready state (calibration posterior, stabilisation history, timers) that
        `load_state` restores; the controller persists it between cycles."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state()` returned (of a policy of the same name). Raises
        InvalidDecisionInput when the state is malformed or from another policy."""
        ...


@dataclass(frozen=True)
class KnobInfo:
    """One policy's cost-vs-SLA knob: its name, default and a sensible sweep."""

    name: str
    default: float
    sweep: tuple[float, ...]
    meaning: str
    #: The PoolSpec field the knob stands for, whose value is the default when set there.
    spec_field: str | None = None


KNOBS: dict[str, KnobInfo] = {
    "harmony": KnobInfo(
        "sla_epsilon",
        0.01,
        (0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
        "maximum probability of shortfall over the decision window",
        "sla_epsilon",
    ),
    "static": KnobInfo(
        "peak_fraction",
        1.0,
        (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2),
        "share of the peak demand provisioned for, at all times",
    ),
    "hpa": KnobInfo(
        "target_utilization",
        0.8,
        (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        "HPA target utilisation of the replicas (metric / target)",
    ),
    "reactive": KnobInfo(
        "scale_down_utilization",
        0.5,
        (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
        "utilisation under which a replica counts as unneeded (cluster-autoscaler's 0.5)",
    ),
    "headroom": KnobInfo(
        "headroom",
        0.1,
        (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75),
        "fraction added on top of the point forecast (sample mean)",
    ),
    "oracle": KnobInfo(
        "target_utilization",
        1.0,
        (1.0,),
        "utilisation the oracle plans to given the true future",
        "target_utilization",
    ),
}

POLICY_NAMES: tuple[str, ...] = tuple(KNOBS)


def default_sweep(name: str) -> tuple[float, ...]:
    """Knob values that trace policy `name`'s cost-SLA curve."""
    return _knob(name).sweep


def _knob(name: str) -> KnobInfo:
    try:
        return KNOBS[name]
    except KeyError:
        raise InvalidDecisionInput(
            f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}"
        ) from None


def make_policy(name: str, spec: PoolSpec, knob: float | None = None) -> Policy:
    """Build policy `name` for pool `spec`, its knob set to `knob`.

    `knob=None` means the default: the spec's own value where the knob is a PoolSpec field
    (harmony's `sla_epsilon`, the oracle's `target_utilization`), else `KNOBS[name].default`.
    """
    info = _knob(name)
    if knob is not None:
        value = float(knob)
    elif info.spec_field is not None:
        value = float(getattr(spec, info.spec_field))
    else:
        value = info.default
    from decision.baselines import HeadroomPolicy, OraclePolicy, StaticPeakPolicy
    from decision.harmony import HarmonyPolicy
    from decision.hpa import HpaPolicy
    from decision.reactive import ReactivePolicy

    builders: dict[str, type[Any]] = {
        "harmony": HarmonyPolicy,
        "static": StaticPeakPolicy,
        "hpa": HpaPolicy,
        "reactive": ReactivePolicy,
        "headroom": HeadroomPolicy,
        "oracle": OraclePolicy,
    }
    policy: Policy = builders[name](spec, value)
    return policy
