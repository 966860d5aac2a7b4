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
from typing import Any, Literal, Protocol, runtime_checkable

from decision.errors import InvalidDecisionInput
from decision.types import Decision, FloatArray, PoolObservation, PoolSpec


@runtime_checkable
class Policy(Protocol):
    """A scaling policy for one pool.

    Contract of each member (like a cloud provider interface: callers rely on exactly this):
    """

    #: Registry name: one of POLICY_NAMES.
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
    """One policy's cost-vs-SLA knob: its name, default, sweep and how to search it.

    `low`/`high` are the knob's hard limits; `more_capacity` says which way buys capacity
    ("up": a larger value provisions more, "down": a smaller one does); `integer` knobs
    take whole values; `log` knobs are searched on a log scale (ratios, probabilities).
    """

    name: str
    default: float
    sweep: tuple[float, ...]
    meaning: str
    #: The PoolSpec field the knob stands for, whose value is the default when set there.
    spec_field: str | None = None
    low: float = 0.0
    high: float = 1.0
    more_capacity: Literal["up", "down"] = "down"
    integer: bool = False
    log: bool = True


_EPSILON: dict[str, Any] = {"low": 1e-4, "high": 0.5, "more_capacity": "down"}
_UTILIZATION: dict[str, Any] = {"low": 0.02, "high": 1.0, "more_capacity": "down"}
_SPARE: dict[str, Any] = {
    "low": 0,
    "high": 4096,
    "more_capacity": "up",
    "integer": True,
    "log": False,
}
_FRACTION: dict[str, Any] = {"low": 0.0, "high": 8.0, "more_capacity": "up", "log": False}

KNOBS: dict[str, KnobInfo] = {
    "harmony": KnobInfo(
        "sla_epsilon",
        0.01,
        (0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
        "maximum probability of shortfall over the decision window",
        "sla_epsilon",
        **_EPSILON,
    ),
    "static": KnobInfo(
        "peak_fraction",
        1.0,
        (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2),
        "share of the training part's peak demand provisioned for, at all times",
        low=0.05,
        high=8.0,
        more_capacity="up",
    ),
    "hpa": KnobInfo(
        "target_utilization",
        0.8,
        (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        "HPA target utilisation (metric / target), default behavior (300 s scale-down window)",
        **_UTILIZATION,
    ),
    "hpa-long": KnobInfo(
        "target_utilization",
        0.8,
        (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        "HPA target utilisation, with a 1-hour scale-down stabilisation window",
        **_UTILIZATION,
    ),
    "reactive": KnobInfo(
        "scale_down_utilization",
        0.5,
        (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
        "utilisation under which a replica counts as unneeded (cluster-autoscaler's 0.5)",
        low=0.01,
        high=1.0,
        more_capacity="down",
    ),
    "buffer": KnobInfo(
        "spare_replicas",
        2.0,
        (0, 1, 2, 4, 8, 16),
        "spare replicas on top of reactive capacity (CapacityBuffer spec.replicas)",
        **_SPARE,
    ),
    "buffer-percent": KnobInfo(
        "spare_fraction",
        0.2,
        (0.0, 0.1, 0.2, 0.5, 1.0),
        "spare replicas as a share of the reactive capacity (CapacityBuffer percentage)",
        **_FRACTION,
    ),
    "window-buffer": KnobInfo(
        "spare_replicas",
        2.0,
        (0, 1, 2, 4, 8, 16),
        "spare replicas on top of the largest demand of the last 30 minutes",
        **_SPARE,
    ),
    "self-tuning-buffer": KnobInfo(
        "refit_sla",
        0.01,
        (0.002, 0.005, 0.01, 0.02, 0.05),
        "shortfall rate the daily refit of window-buffer's spares aims at on the last week",
        **_EPSILON,
    ),
    "phpa": KnobInfo(
        "target_utilization",
        0.8,
        (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        "target utilisation of the predictive HPA (Holt-Winters prediction and HPA, maximum)",
        **_UTILIZATION,
    ),
    "crane": KnobInfo(
        "margin_fraction",
        0.15,
        (0.0, 0.1, 0.2, 0.5, 1.0),
        "margin added to Crane's DSP forecast",
        **_FRACTION,
    ),
    "aws-predictive": KnobInfo(
        "target_utilization",
        0.8,
        (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        "target utilisation of AWS-style predictive scale-out (scale-in reactive only)",
        **_UTILIZATION,
    ),
    "keda-queue": KnobInfo(
        "target_work_per_replica",
        1.0,
        (0.25, 0.5, 1.0, 2.0, 4.0),
        "KEDA queue scaler target: pending work per replica, in steps of its capacity",
        low=0.01,
        high=100.0,
        more_capacity="down",
    ),
    "headroom": KnobInfo(
        "headroom",
        0.1,
        (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75),
        "fraction added on top of Harmony's point forecast (sample mean)",
        **_FRACTION,
    ),
    "harmony-gaussian": KnobInfo(
        "sla_epsilon",
        0.01,
        (0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
        "Harmony's ε with the flow switched off (its Gaussian head)",
        "sla_epsilon",
        **_EPSILON,
    ),
    "harmony-fallback": KnobInfo(
        "sla_epsilon",
        0.01,
        (0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
        "ε of Harmony's fallback while a pool has no model (30-minute peak plus a buffer "
        "calibrated online)",
        "sla_epsilon",
        **_EPSILON,
    ),
    "oracle": KnobInfo(
        "target_utilization",
        1.0,
        (1.0,),
        "utilisation the oracle plans to given the true future",
        "target_utilization",
        low=0.02,
        high=1.0,
        more_capacity="down",
    ),
}

POLICY_NAMES: tuple[str, ...] = tuple(KNOBS)
#: The systems users run today: the candidates for "the best baseline".
BASELINE_NAMES: tuple[str, ...] = (
    "static",
    "hpa",
    "hpa-long",
    "reactive",
    "buffer",
    "buffer-percent",
    "window-buffer",
    "self-tuning-buffer",
    "phpa",
    "crane",
    "aws-predictive",
    "keda-queue",
)
#: Parts of Harmony reported apart, never counted as a baseline.
ABLATION_NAMES: tuple[str, ...] = ("headroom", "harmony-gaussian", "harmony-fallback")


def default_sweep(name: str) -> tuple[float, ...]:
    """Knob values that trace policy `name`'s cost-SLA curve."""
    return knob_info(name).sweep


def knob_info(name: str) -> KnobInfo:
    """The knob of policy `name`; InvalidDecisionInput naming the choices if unknown."""
    try:
        return KNOBS[name]
    except KeyError:
        raise InvalidDecisionInput(
            f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}"
        ) from None


def forecast_source(name: str) -> str | None:
    """What policy `name` decides from besides its observations: "harmony" or
    "harmony-gaussian" (the forecaster's samples), "truth" (the oracle), a classical
    forecaster of forecaster.classical ("holt-winters", "crane-dsp", "aws-seasonal"), or
    None."""
    source: str | None = getattr(_builder(name), "forecast_source", None)
    return source


def _builder(name: str) -> Any:
    from decision.baselines import HeadroomPolicy, OraclePolicy, StaticPeakPolicy
    from decision.buffers import (
        BufferPercentPolicy,
        BufferPolicy,
        SelfTuningBufferPolicy,
        WindowBufferPolicy,
    )
    from decision.fallback import FallbackPolicy
    from decision.harmony import HarmonyGaussianPolicy, HarmonyPolicy
    from decision.hpa import HpaPolicy, long_window_hpa
    from decision.keda import KedaQueuePolicy
    from decision.predictive import AwsPredictivePolicy, CranePolicy, PhpaPolicy
    from decision.reactive import ReactivePolicy

    builders: dict[str, Any] = {
        "harmony": HarmonyPolicy,
        "static": StaticPeakPolicy,
        "hpa": HpaPolicy,
        "hpa-long": long_window_hpa,
        "keda-queue": KedaQueuePolicy,
        "reactive": ReactivePolicy,
        "buffer": BufferPolicy,
        "buffer-percent": BufferPercentPolicy,
        "window-buffer": WindowBufferPolicy,
        "self-tuning-buffer": SelfTuningBufferPolicy,
        "phpa": PhpaPolicy,
        "crane": CranePolicy,
        "aws-predictive": AwsPredictivePolicy,
        "headroom": HeadroomPolicy,
        "harmony-gaussian": HarmonyGaussianPolicy,
        "harmony-fallback": FallbackPolicy,
        "oracle": OraclePolicy,
    }
    knob_info(name)
    return builders[name]


def make_policy(name: str, spec: PoolSpec, knob: float | None = None) -> Policy:
    """Build policy `name` for pool `spec`, its knob set to `knob`.

    `knob=None` means the default: the spec's own value where the knob is a PoolSpec field
    (harmony's `sla_epsilon`, the oracle's `target_utilization`), else `KNOBS[name].default`.
    """
    info = knob_info(name)
    if knob is not None:
        value = float(knob)
    elif info.spec_field is not None:
        value = float(getattr(spec, info.spec_field))
    else:
        value = info.default
    policy: Policy = _builder(name)(spec, value)
    return policy
