"""Harmony's fallback: a window maximum plus a buffer whose size is calibrated online.

What a pool runs while it has no model (a new pool, or one whose model failed): no
forecaster, ε the only knob. At decision step t (demand known up to t-1) it asks for

    ceil(M_t + b*)    M_t = the largest demand of the last 30 minutes (in replicas)

plus bounds and the safety rules. The buffer b* is a number of replicas (an additive
buffer needed the least capacity for the SLA across the headline traces:
docs/decisions/0010). Each level a of the calibration grid (decision.calibration) labels
a buffer: none at the top level (0.5), then from a tenth of a replica up to
`max_replicas` at the lowest, geometrically, so the grid spans every buffer the pool can
hold at any scale. The posterior learns from every realised step how often the capacity
the pool would have had with each buffer was exceeded. That capacity follows the pool's
rules: the request at origin o is the highest of the stabilisation window's, what it
adds is usable d steps later, what it removes goes at once, so the usable count at s is
the smallest request of s-d..s; the buffer thus learns how far demand outgrows the peak
before new replicas arrive. The policy plans at the level a* whose credible exceedance
rate is ε (interpolating the buffer between grid levels). Unlike Harmony it does not
spend the SLA budget it leaves unused (decision.budget): on the headline traces that
feedback pushed two cases past 1.25 ε, and a safety net has to meet the SLA.

The outcomes depend only on the demand, never on the decisions taken, so the posterior
also learns from history: at its first decision the policy replays the demand its
observation holds (a backtest's 8 days, the operator's context window), and it can learn
while another policy decides (`observe` needs no `decide`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from decision.baselines import build_decision
from decision.buffers import WINDOW_SECONDS
from decision.calibration import CalibrationPosterior, forgetting_for
from decision.errors import InvalidDecisionInput, require_own_state
from decision.harmony import realised_in_replicas
from decision.safety import apply_safety_rules
from decision.types import BindingConstraint, Decision, FloatArray, PoolObservation, PoolSpec

# The smallest buffer above none: below a tenth of a replica, whole replicas decide.
SMALLEST_BUFFER = 0.1


def buffer_grid(levels: FloatArray, max_replicas: int) -> FloatArray:
    """The buffer, in replicas, each calibration level labels: none at the top level, then
    geometrically from `SMALLEST_BUFFER` up to `max_replicas` at the lowest."""
    spaced = np.geomspace(
        max(float(max_replicas), 2 * SMALLEST_BUFFER), SMALLEST_BUFFER, len(levels) - 1
    )
    return np.asarray([*spaced, 0.0], dtype=np.float64)


def window_maxima(demand: FloatArray, window: int) -> FloatArray:
    """`[n + 1]`: per origin o = 0..n, the largest finite value of the (up to) `window`
    values before it; NaN where there is none."""
    padded = np.concatenate([np.full(window, np.nan), demand])
    filled = np.where(np.isfinite(padded), padded, -np.inf)
    views = np.lib.stride_tricks.sliding_window_view(filled, window)
    maxima = views.max(axis=1)
    return np.where(np.isfinite(maxima), maxima, np.nan)


def usable_counts(requests: FloatArray, delay: int, hold: int) -> FloatArray:
    """Replicas usable per step from per-origin wishes `[n, J]`, under the pool's rules.

    The request at origin o is the highest wish of o's stabilisation window (`hold`
    steps, scale-up at once, scale-down held); it is usable from o + `delay` on, and a
    lower request removes replicas at once, so the usable count at s is the smallest
    request of s - delay .. s. Row i of the result is step i + delay + hold - 1."""
    count = requests.shape[0] - hold + 1
    if count <= delay:
        return np.empty((0, requests.shape[1]))
    held = requests[:count]
    for shift in range(1, hold):
        held = np.maximum(held, requests[shift : shift + count])
    usable = held[delay:]
    for shift in range(1, delay + 1):
        usable = np.minimum(usable, held[delay - shift : count - shift])
    return usable


class FallbackPolicy:
    """The largest demand of the last 30 minutes plus a buffer calibrated online to ε."""

    name = "harmony-fallback"
    knob_name = "sla_epsilon"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (math.isfinite(knob) and 0 < knob <= 0.5):
            raise InvalidDecisionInput(
                f"harmony-fallback policy: sla_epsilon must be in (0, 0.5], got {knob!r}"
            )
        self.spec = replace(spec, sla_epsilon=knob)
        self.knob = knob
        self.window_steps = max(1, math.ceil(WINDOW_SECONDS / spec.step_seconds - 1e-9))
        self.calibration = CalibrationPosterior(forgetting=forgetting_for(knob))
        self._buffers = buffer_grid(self.calibration.level_array, spec.max_replicas)
        # Demand in replicas before the step to be observed: what its counterfactual
        # capacities are made from.
        self._tail: list[float] = []
        self._history: list[int] = []

    @property
    def tail_length(self) -> int:
        """Demand values one step's counterfactual capacities need."""
        spec = self.spec
        return self.window_steps + spec.provisioning_delay_steps + spec.stabilization_steps - 1

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        observation.last_demand_for(spec, self.name)  # the column count, checked
        if self.calibration.updates == 0:
            history = self._in_replicas(observation.recent_demand)
            self._learn_from(history)
            self._keep_tail([*self._tail, *(float(v) for v in history)])
        self._merge_tail(self._in_replicas(observation.recent_demand[-self.tail_length :]))
        tail = np.asarray(self._tail, dtype=np.float64)
        peak = float(window_maxima(tail, self.window_steps)[-1])
        current = observation.replicas_total
        level = self.calibration.effective_epsilon(self.knob)
        levels = self.calibration.level_array
        buffer = float(np.interp(math.log(level), np.log(levels), self._buffers))
        if not math.isfinite(peak):
            wanted, why = current, "no demand observed in the last 30 minutes; holding"
        else:
            wanted = max(math.ceil((peak + buffer) * (1.0 - 1e-9)), 0)
            minutes = self.window_steps * spec.step_seconds / 60
            why = (
                f"no forecast yet: the last {minutes:.0f} minutes' peak needs "
                f"{peak:.1f} replicas, plus {buffer:.1f} spare learned online for "
                f"ε={self.knob:.2%} ({self.calibration.updates} steps seen)"
            )
        safety = apply_safety_rules(wanted, observation, spec, self._history)
        self._remember(safety.recommendation)
        replicas = safety.replicas
        binding = safety.binding or (
            BindingConstraint.policy if wanted != current else BindingConstraint.hold
        )
        return build_decision(
            self.name, observation, spec, demand_samples, replicas, wanted, binding,
            "" if safety.binding else why, stabilized=safety.stabilized,
            details={
                "effective_epsilon": level,
                "buffer_replicas": buffer,
                "calibration_updates": float(self.calibration.updates),
                "calibration_at_limit": float(self.calibration.at_limit(self.knob)),
            },
        )  # fmt: skip

    def observe(self, realised_demand: FloatArray | float) -> None:
        """Learn from the demand of the step just decided (or, with no decision, just
        seen): whether each level's capacity would have covered it."""
        realised = realised_in_replicas(realised_demand, self.spec)
        if realised is not None:
            capacity = self._capacities(np.asarray(self._tail, dtype=np.float64))
            if capacity is not None:
                self.calibration.update(realised > capacity[-1] * (1.0 + 1e-9))
        self._keep_tail([*self._tail, math.nan if realised is None else realised])

    def _keep_tail(self, values: list[float]) -> None:
        """The last `tail_length` of `values` as the tail."""
        self._tail = values[-self.tail_length :]

    def _capacities(self, demand: FloatArray) -> FloatArray | None:
        """`[m, J]` usable replicas per level at the steps after `demand` (the last row:
        the step right after it); None when a window maximum they need is missing."""
        spec = self.spec
        peaks = window_maxima(demand, self.window_steps)
        # Wishes of origins 0 .. len(demand): each sees the demand before it.
        wishes = peaks[:, None] + self._buffers[None, :]
        wishes = np.ceil(wishes * (1.0 - 1e-9))
        wishes = np.clip(wishes, spec.min_replicas, spec.max_replicas)
        usable = usable_counts(wishes, spec.provisioning_delay_steps, spec.stabilization_steps)
        if usable.shape[0] == 0 or not np.all(np.isfinite(usable[-1])):
            return None
        return usable

    def _learn_from(self, demand: FloatArray) -> None:
        """Replay the demand history through the calibration."""
        capacity = self._capacities(demand[:-1])
        if capacity is None:
            return
        first = len(demand) - capacity.shape[0]
        for row, realised in zip(capacity, demand[first:], strict=True):
            if math.isfinite(realised) and np.all(np.isfinite(row)):
                self.calibration.update(realised > row * (1.0 + 1e-9))

    def _in_replicas(self, recent: FloatArray) -> FloatArray:
        if len(recent) == 0:
            return np.empty(0)
        rows = np.asarray(recent, dtype=np.float64).reshape(len(recent), -1)
        with np.errstate(invalid="ignore"):
            in_replicas = rows / self.spec.planning_capacity
        bad = ~np.isfinite(in_replicas).all(axis=1)
        result = in_replicas.max(axis=1, initial=-np.inf)
        result[bad] = np.nan
        return np.asarray(result, dtype=np.float64)

    def _merge_tail(self, recent: FloatArray) -> None:
        """Take the observation's demand, after the older values this policy kept itself
        (`observe` appended each step's, so the kept tail ends where the observation
        does)."""
        older = self._tail[: max(0, len(self._tail) - len(recent))]
        self._keep_tail([*older, *(float(v) for v in recent)])

    def _remember(self, recommendation: int) -> None:
        self._history.append(recommendation)
        keep = max(self.spec.stabilization_steps - 1, 0)
        self._history = self._history[-keep:] if keep else []

    def state(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "tail": [None if math.isnan(v) else v for v in self._tail],
            "history": list(self._history),
            "calibration": self.calibration.to_dict(),
            "grid_max_replicas": self.spec.max_replicas,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)
        try:
            self._tail = [math.nan if v is None else float(v) for v in state["tail"]]
            self._history = [int(v) for v in state["history"]]
            # The memory follows this policy's ε, which may have changed since the save.
            calibration = replace(
                CalibrationPosterior.from_dict(state["calibration"]),
                forgetting=forgetting_for(self.knob),
            )
            # Outcomes learned on another grid of buffers (maxReplicas changed) mean
            # nothing on this one: the posterior starts afresh, from the next history.
            if int(state["grid_max_replicas"]) == self.spec.max_replicas:
                self.calibration = calibration
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            if isinstance(error, InvalidDecisionInput):
                raise
            raise InvalidDecisionInput(
                f"harmony-fallback policy state: field missing or malformed ({error})"
            ) from error
