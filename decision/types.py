"""The values the decision engine and the baseline policies exchange with their callers.

Time convention (shared with the forecaster and the backtest): the decision at step t is
made after observing demand up to and including step t-1. Horizon index h = 0..H-1 of the
demand samples refers to steps t..t+H-1. Replicas requested at t become usable at step
t + d (d = `PoolSpec.provisioning_delay_steps`); a scale-down takes effect at step t.
Shortfall at step s means demand[s] > usable_replicas[s] * capacity_per_replica; the
engine plans against the smaller capacity `capacity_per_replica * target_utilization`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from decision.calibration import CalibrationPosterior
from decision.errors import InvalidDecisionInput

__all__ = [
    "BindingConstraint",
    "CalibrationPosterior",
    "Decision",
    "FloatArray",
    "InFlight",
    "IntArray",
    "InvalidDecisionInput",
    "PoolObservation",
    "PoolSpec",
    "SlaKind",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise InvalidDecisionInput(f"PoolSpec.{name} must be a finite number > 0, got {value!r}")


class SlaKind(StrEnum):
    """What the SLA bounds: steps short of capacity, or work that waits too long."""

    shortfall = "shortfall"  # share of steps whose demand exceeds usable capacity <= ε
    queue = "queue"  # share of work (by amount) waiting longer than max_delay <= ε


@dataclass(frozen=True)
class PoolSpec:
    """What the operator configured for one pool: capacity, SLA, costs, bounds and behaviour.

    `capacity_per_replica` is one number per demand indicator (a bare float for a single
    indicator); demand arrays carry the indicators on their last axis in the same order.
    `max_step_up`/`max_step_down` of None mean "no limit". `stabilization_steps` is the
    number of recent recommendations (the current one included) whose highest value a
    scale-down may go to; 1 disables stabilisation. `decision_window_steps` is how many
    steps from t + d on the chance constraint covers (1: the step this decision controls;
    None: to the end of the forecast horizon). `peak_demand` (one per indicator) is what
    the static baseline provisions for; None lets it use the highest demand seen so far.
    `sla_kind` says what ε bounds: the share of steps short of capacity ("shortfall"), or
    the share of work waiting longer than `max_delay_seconds` in the pool's FIFO queue
    ("queue", one demand indicator: the work arriving per step; decision.queue).
    `min_node_lifetime_seconds` holds every scale-down until the newest replica has run
    that long (cloud GPU billing granularity; 0 disables it); `max_scale_downs_per_hour`
    holds scale-downs once that many happened in the trailing hour (None: no limit). Both
    read the pool's recent actions from `PoolObservation`.
    """

    capacity_per_replica: float | tuple[float, ...]
    target_utilization: float = 1.0
    min_replicas: int = 0
    max_replicas: int = 256
    max_step_up: int | None = None
    max_step_down: int | None = None
    provisioning_delay_steps: int = 0
    step_seconds: float = 60.0
    price_per_replica_hour: float = 1.0
    shortfall_penalty_per_unit_hour: float = 0.0
    sla_epsilon: float = 0.01
    credible_level: float = 0.9
    stabilization_steps: int = 3
    decision_window_steps: int | None = 1
    peak_demand: float | tuple[float, ...] | None = None
    sla_kind: SlaKind = SlaKind.shortfall
    max_delay_seconds: float | None = None
    min_node_lifetime_seconds: float = 0.0
    max_scale_downs_per_hour: int | None = None

    def __post_init__(self) -> None:
        self._check_sla_kind()
        for capacity in self.capacities:
            _positive("capacity_per_replica", capacity)
        if not (
            math.isfinite(self.min_node_lifetime_seconds) and self.min_node_lifetime_seconds >= 0
        ):
            raise InvalidDecisionInput(
                "PoolSpec.min_node_lifetime_seconds must be a finite number >= 0 (0 disables "
                f"it), got {self.min_node_lifetime_seconds!r}"
            )
        if self.max_scale_downs_per_hour is not None and self.max_scale_downs_per_hour < 1:
            raise InvalidDecisionInput(
                "PoolSpec.max_scale_downs_per_hour must be >= 1 or None (no limit), "
                f"got {self.max_scale_downs_per_hour!r}"
            )
        _positive("step_seconds", self.step_seconds)
        if not (0 < self.target_utilization <= 1.0):
            raise InvalidDecisionInput(
                f"PoolSpec.target_utilization must be in (0, 1], got {self.target_utilization!r}"
            )
        if not (0 < self.sla_epsilon < 1):
            raise InvalidDecisionInput(
                f"PoolSpec.sla_epsilon must be in (0, 1), e.g. 0.01, got {self.sla_epsilon!r}"
            )
        if not (0.5 <= self.credible_level < 1):
            raise InvalidDecisionInput(
                f"PoolSpec.credible_level must be in [0.5, 1), got {self.credible_level!r}"
            )
        if not (0 <= self.min_replicas <= self.max_replicas):
            raise InvalidDecisionInput(
                "PoolSpec needs 0 <= min_replicas <= max_replicas, got "
                f"min_replicas={self.min_replicas}, max_replicas={self.max_replicas}"
            )
        for name in ("max_step_up", "max_step_down"):
            limit = getattr(self, name)
            if limit is not None and limit < 1:
                raise InvalidDecisionInput(
                    f"PoolSpec.{name} must be >= 1 or None (no limit), got {limit!r}"
                )
        if self.provisioning_delay_steps < 0:
            raise InvalidDecisionInput(
                "PoolSpec.provisioning_delay_steps must be >= 0, "
                f"got {self.provisioning_delay_steps}"
            )
        if self.stabilization_steps < 1:
            raise InvalidDecisionInput(
                "PoolSpec.stabilization_steps must be >= 1 (1 disables stabilisation), "
                f"got {self.stabilization_steps}"
            )
        if self.decision_window_steps is not None and self.decision_window_steps < 1:
            raise InvalidDecisionInput(
                "PoolSpec.decision_window_steps must be >= 1 or None (whole horizon), "
                f"got {self.decision_window_steps}"
            )
        if self.price_per_replica_hour < 0 or self.shortfall_penalty_per_unit_hour < 0:
            raise InvalidDecisionInput(
                "PoolSpec.price_per_replica_hour and shortfall_penalty_per_unit_hour must be >= 0"
            )
        if self.peak_demand is not None:
            peaks = _as_tuple(self.peak_demand)
            if len(peaks) != len(self.capacities) or not all(
                math.isfinite(p) and p >= 0 for p in peaks
            ):
                raise InvalidDecisionInput(
                    f"PoolSpec.peak_demand must hold {len(self.capacities)} finite value(s) "
                    f">= 0 (one per demand indicator), got {self.peak_demand!r}"
                )

    def _check_sla_kind(self) -> None:
        try:
            object.__setattr__(self, "sla_kind", SlaKind(self.sla_kind))
        except ValueError:
            raise InvalidDecisionInput(
                f"PoolSpec.sla_kind must be 'shortfall' or 'queue', got {self.sla_kind!r}"
            ) from None
        if self.sla_kind is SlaKind.shortfall:
            if self.max_delay_seconds is not None:
                raise InvalidDecisionInput(
                    "PoolSpec.max_delay_seconds applies to the queue SLA only; set "
                    "sla_kind='queue' or drop it"
                )
            return
        delay = self.max_delay_seconds
        if delay is None or not (math.isfinite(delay) and delay > 0):
            raise InvalidDecisionInput(
                "PoolSpec.max_delay_seconds must be a number of seconds > 0 for the queue "
                f"SLA (the longest a job may wait, e.g. 600), got {delay!r}"
            )
        if len(self.capacities) != 1:
            raise InvalidDecisionInput(
                "PoolSpec: the queue SLA needs exactly one demand indicator (the work "
                f"arriving per step), got {len(self.capacities)}"
            )

    @property
    def max_delay_steps(self) -> int:
        """k: work waiting k steps is within max_delay_seconds, k + 1 steps is late."""
        if self.max_delay_seconds is None:
            raise InvalidDecisionInput("PoolSpec.max_delay_steps: the pool has no queue SLA")
        return math.floor(self.max_delay_seconds / self.step_seconds * (1 + 1e-9))

    @property
    def capacities(self) -> tuple[float, ...]:
        """Capacity per replica of each demand indicator."""
        return _as_tuple(self.capacity_per_replica)

    @property
    def indicator_count(self) -> int:
        return len(self.capacities)

    @property
    def planning_capacity(self) -> FloatArray:
        """`[K]` capacity per replica the engine plans with: capacity times target utilisation."""
        return np.asarray(self.capacities, dtype=np.float64) * self.target_utilization

    @property
    def step_hours(self) -> float:
        return self.step_seconds / 3600.0


def _as_tuple(value: float | tuple[float, ...]) -> tuple[float, ...]:
    if isinstance(value, tuple):
        if not value:
            raise InvalidDecisionInput("PoolSpec: a per-indicator tuple must not be empty")
        return tuple(float(v) for v in value)
    return (float(value),)


@dataclass(frozen=True)
class InFlight:
    """Replicas already requested and still provisioning: usable from horizon index
    `usable_in_steps` on (0 = usable at the step being decided)."""

    replicas: int
    usable_in_steps: int

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.usable_in_steps < 0:
            raise InvalidDecisionInput(
                "InFlight needs replicas >= 1 and usable_in_steps >= 0, got "
                f"replicas={self.replicas}, usable_in_steps={self.usable_in_steps}"
            )


@dataclass(frozen=True, eq=False)
class PoolObservation:
    """What the controller saw before deciding step t.

    `recent_demand` is `[L]` or `[L, K]` on the demand's original scale, row L-1 being step
    t-1 (NaN marks a gap). `complete` is False when any metric of the window was missing;
    the engine then never scales down. `pinned_replicas` counts replicas running pods
    marked do-not-disrupt: the pool never shrinks below them. `backlog` is the work queued
    after step t-1 (demand units; the queue SLA plans with it, the shortfall SLA ignores it).
    marked do-not-disrupt: the pool never shrinks below them. `seconds_since_scale_up` is
    the age of the pool's newest replica (None: no scale-up on record) and
    `scale_downs_last_hour` the scale-downs of the trailing hour: what the churn limits
    of `PoolSpec` read.
    """

    replicas_usable: int
    recent_demand: FloatArray
    in_flight: tuple[InFlight, ...] = ()
    complete: bool = True
    pinned_replicas: int = 0
    backlog: float = 0.0
    seconds_since_scale_up: float | None = None
    scale_downs_last_hour: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.backlog) and self.backlog >= 0):
            raise InvalidDecisionInput(
                "PoolObservation.backlog must be a finite amount of work >= 0, "
                f"got {self.backlog!r}"
            )
        if self.replicas_usable < 0 or self.pinned_replicas < 0:
            raise InvalidDecisionInput(
                "PoolObservation.replicas_usable and pinned_replicas must be >= 0, got "
                f"{self.replicas_usable} and {self.pinned_replicas}"
            )
        demand = np.asarray(self.recent_demand, dtype=np.float64)
        if demand.ndim == 1:
            demand = demand[:, None]
        if demand.ndim != 2:
            raise InvalidDecisionInput(
                f"PoolObservation.recent_demand must be [L] or [L, K], got shape {demand.shape}"
            )
        object.__setattr__(self, "recent_demand", demand)

    @property
    def replicas_total(self) -> int:
        """Replicas requested so far: usable plus still provisioning (the target's spec)."""
        return self.replicas_usable + sum(batch.replicas for batch in self.in_flight)

    @property
    def last_demand(self) -> FloatArray:
        """`[K]` demand of step t-1 (NaN when unobserved or the window is empty)."""
        if self.recent_demand.shape[0] == 0:
            return np.full(self.recent_demand.shape[1], np.nan)
        return np.asarray(self.recent_demand[-1], dtype=np.float64)

    def last_demand_for(self, spec: PoolSpec, policy_name: str) -> FloatArray:
        """`last_demand`, refused unless it has one column per demand indicator of `spec`."""
        demand = self.last_demand
        if demand.shape != (spec.indicator_count,):
            raise InvalidDecisionInput(
                f"{policy_name} policy: recent_demand needs {spec.indicator_count} column(s), "
                f"got {demand.shape[0]}"
            )
        return demand


class BindingConstraint(StrEnum):
    """What determined the replica count of a decision."""

    sla = "sla"  # the fewest replicas whose shortfall bound stays within the effective ε
    cost = "cost"  # more replicas than the SLA needs, because the shortfall penalty pays for them
    keep_until_ready = "keep_until_ready"  # replicas the steps before the delay still need
    sample_size = "sample_size"  # too few samples to show ε; the extrapolated tail instead
    infeasible = "infeasible"  # no count within bounds meets ε: the maximum
    policy = "policy"  # a baseline's own rule
    hold = "hold"  # nothing to change (within tolerance, or no reason to move)
    min_replicas = "min_replicas"
    max_replicas = "max_replicas"
    pinned = "pinned"  # do-not-disrupt pods keep replicas
    max_step_up = "max_step_up"
    max_step_down = "max_step_down"
    stabilization = "stabilization"
    incomplete_observation = "incomplete_observation"
    min_node_lifetime = "min_node_lifetime"  # the newest replica has not run long enough
    max_scale_downs = "max_scale_downs"  # the trailing hour's scale-downs used the limit


def _json_float(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class Decision:
    """The replica count a policy wants for its pool, and why.

    `shortfall_probability` is the Monte-Carlo estimate over the decision window at the
    chosen count, `shortfall_probability_upper` its upper credible bound (Beta posterior);
    both NaN when the policy had no samples. `expected_cost` is in price units over the
    decision window (replica-hours times price plus expected shortfall unit-hours times
    penalty); `expected_utilization` is the expected served share of usable capacity after
    the delay. `recommended_replicas` is the policy's wish before the safety rules.
    """

    policy: str
    replicas: int
    recommended_replicas: int
    binding: BindingConstraint
    reason: str
    shortfall_probability: float = math.nan
    shortfall_probability_upper: float = math.nan
    expected_cost: float = math.nan
    expected_utilization: float = math.nan
    effective_epsilon: float | None = None
    details: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes None)."""
        return {
            "policy": self.policy,
            "replicas": self.replicas,
            "recommended_replicas": self.recommended_replicas,
            "binding": self.binding.value,
            "reason": self.reason,
            "shortfall_probability": _json_float(self.shortfall_probability),
            "shortfall_probability_upper": _json_float(self.shortfall_probability_upper),
            "expected_cost": _json_float(self.expected_cost),
            "expected_utilization": _json_float(self.expected_utilization),
            "effective_epsilon": _json_float(self.effective_epsilon),
            "details": {key: _json_float(value) for key, value in self.details.items()},
        }
