"""Capacity buffers: what cluster-autoscaler and Karpenter users deploy ahead of demand.

- `buffer`: reactive capacity plus k spare replicas (the overprovisioning pattern and a
  CapacityBuffer with `spec.replicas: k`). The reactive part is the cluster-autoscaler's:
  replicas that cover the last observed demand are requested at once; replicas no longer
  needed are removed only once they stayed unneeded for 10 minutes
  (scale-down-unneeded-time), i.e. the pool shrinks to the highest target of that window.
- `buffer-percent`: the same with a CapacityBuffer `percentage`: the spare replicas are
  ceil(knob × the replicas the workload needs).
- `window-buffer`: the largest demand of the last 30 minutes plus k spare replicas,
  requested every step (scale-down at once: the window is the stabilisation).
- `self-tuning-buffer`: `window-buffer` whose k is refitted once a day, from the trailing
  7 days of demand, to the smallest k under which that week's shortfall rate would have
  been at most the knob (`refit_sla`). The refit replays the week the way an SRE's script
  would: the capacity usable at step s is the smallest of the requests made in steps
  s-d..s (a scale-up is usable d steps later, a scale-down is immediate).

No metrics (NaN) means no scale-down, as the autoscalers do; bounds and the
do-not-disrupt floor apply (`bounded`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from decision.baselines import bounded, build_decision, needed_replicas, percent_text
from decision.errors import InvalidDecisionInput, require_own_state
from decision.types import BindingConstraint, Decision, FloatArray, PoolObservation, PoolSpec

UNNEEDED_SECONDS = 600.0
WINDOW_SECONDS = 1800.0
REFIT_EVERY_SECONDS = 86_400.0
REFIT_HISTORY_SECONDS = 7 * 86_400.0


def _steps(seconds: float, spec: PoolSpec) -> int:
    return max(1, math.ceil(seconds / spec.step_seconds - 1e-9))


def _finite_rows(demand: FloatArray) -> FloatArray:
    rows: FloatArray = demand[np.isfinite(demand).all(axis=1)]
    return rows


class _TargetPolicy:
    """A target in replicas each step, then bounds; subclasses say how the target is made.

    `hold_steps` > 1 keeps the highest target of that many recent steps (this one
    included) when the target falls; 1 follows the target at once.
    """

    name = ""
    knob_name = ""
    hold_steps = 1

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (math.isfinite(knob) and knob >= 0):
            raise InvalidDecisionInput(
                f"{self.name} policy: {self.knob_name} must be >= 0, got {knob!r}"
            )
        self.spec = spec
        self.knob = float(knob)
        self._targets: list[int] = []

    def target(self, observation: PoolObservation) -> tuple[int, str] | None:
        """Replicas wanted and why, or None when the metrics needed are missing."""
        raise NotImplementedError

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        current = observation.replicas_total
        made = self.target(observation)
        if made is None:
            wanted = current
            replicas, binding = bounded(current, observation, spec)
            return build_decision(
                self.name, observation, spec, demand_samples, replicas, wanted,
                binding or BindingConstraint.incomplete_observation,
                "" if binding else "the demand was not observed; holding",
            )  # fmt: skip
        wanted, why = made
        self._targets = [*self._targets, wanted][-self.hold_steps :]
        held = max(self._targets)
        replicas, binding = bounded(held, observation, spec)
        if binding is None and held > wanted:
            binding = BindingConstraint.stabilization
            why = f"{why}; spare replicas are removed after 10 unneeded minutes"
        return build_decision(
            self.name, observation, spec, demand_samples, replicas, wanted,
            binding or BindingConstraint.policy, why, stabilized=held if held > wanted else None,
        )  # fmt: skip

    def observe(self, realised_demand: FloatArray | float) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {"policy": self.name, "targets": list(self._targets)}

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)
        try:
            self._targets = [int(v) for v in state.get("targets", [])]
        except (TypeError, ValueError) as error:
            raise InvalidDecisionInput(f"{self.name} policy state: malformed ({error})") from None


class BufferPolicy(_TargetPolicy):
    """Reactive capacity plus `spare_replicas` (a CapacityBuffer with spec.replicas)."""

    name = "buffer"
    knob_name = "spare_replicas"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        super().__init__(spec, knob)
        self.hold_steps = _steps(UNNEEDED_SECONDS, spec)

    def spare(self, needed: int) -> int:
        return round(self.knob)

    def target(self, observation: PoolObservation) -> tuple[int, str] | None:
        demand = observation.last_demand_for(self.spec, self.name)
        if not np.all(np.isfinite(demand)):
            return None
        needed = needed_replicas(demand, self.spec.planning_capacity)
        spare = self.spare(needed)
        return needed + spare, f"{needed} cover the last demand, plus {spare} spare"


class BufferPercentPolicy(BufferPolicy):
    """Reactive capacity plus ceil(`spare_fraction` × itself) (a CapacityBuffer percentage)."""

    name = "buffer-percent"
    knob_name = "spare_fraction"

    def spare(self, needed: int) -> int:
        return math.ceil(self.knob * needed - 1e-9)


class WindowBufferPolicy(_TargetPolicy):
    """The largest demand of the last 30 minutes plus `spare_replicas`."""

    name = "window-buffer"
    knob_name = "spare_replicas"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        super().__init__(spec, knob)
        self.window_steps = _steps(WINDOW_SECONDS, spec)

    def spare(self) -> int:
        return round(self.knob)

    def target(self, observation: PoolObservation) -> tuple[int, str] | None:
        observation.last_demand_for(self.spec, self.name)  # the column count, checked
        recent = _finite_rows(observation.recent_demand[-self.window_steps :])
        if len(recent) == 0:
            return None
        needed = needed_replicas(recent.max(axis=0), self.spec.planning_capacity)
        spare = self.spare()
        minutes = self.window_steps * self.spec.step_seconds / 60
        return (
            needed + spare,
            f"{needed} cover the last {minutes:.0f} minutes' peak, plus {spare} spare",
        )


def fitted_spare(demand: FloatArray, spec: PoolSpec, window_steps: int, rate: float) -> int | None:
    """Smallest k with which "window maximum + k" would have kept the shortfall rate of
    `demand` `[n, K]` at most `rate`; None when fewer than a day's steps were observed."""
    capacity = spec.planning_capacity
    in_replicas = np.max(demand / capacity, axis=1)
    n = len(in_replicas)
    if np.isfinite(in_replicas).sum() < _steps(REFIT_EVERY_SECONDS, spec):
        return None
    filled = np.where(np.isfinite(in_replicas), in_replicas, -np.inf)
    # requests[s] covers the window maximum before step s; usable[s] = min of requests[s-d..s].
    windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([np.full(window_steps, -np.inf), filled]), window_steps
    )[:n]
    requests = np.ceil(np.maximum(windows.max(axis=1), 0.0) * (1 - 1e-9))
    delay = spec.provisioning_delay_steps
    padded = np.concatenate([np.full(delay, np.inf), requests])
    usable = np.lib.stride_tricks.sliding_window_view(padded, delay + 1).min(axis=1)
    scored = np.isfinite(in_replicas) & np.isfinite(usable)
    scored[: window_steps + delay] = False
    if not scored.any():
        return None
    excess = np.maximum(np.ceil(in_replicas[scored] - usable[scored] - 1e-9), 0.0)
    allowed = math.floor(rate * len(excess) + 1e-9)
    ranked = np.sort(excess)[::-1]
    return int(ranked[allowed]) if allowed < len(ranked) else 0


class SelfTuningBufferPolicy(WindowBufferPolicy):
    """`window-buffer` whose spare replicas are refitted daily on the trailing week to the
    smallest value that held shortfall rate <= `refit_sla` there."""

    name = "self-tuning-buffer"
    knob_name = "refit_sla"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (math.isfinite(knob) and 0 < knob < 1):
            raise InvalidDecisionInput(
                f"self-tuning-buffer policy: refit_sla must be in (0, 1), got {knob!r}"
            )
        super().__init__(spec, knob)
        self.refit_steps = _steps(REFIT_EVERY_SECONDS, spec)
        self.history_steps = _steps(REFIT_HISTORY_SECONDS, spec)
        self._spare: int | None = None
        self._since_refit = 0

    def spare(self) -> int:
        return self._spare or 0

    def target(self, observation: PoolObservation) -> tuple[int, str] | None:
        if self._spare is None or self._since_refit >= self.refit_steps:
            fitted = fitted_spare(
                observation.recent_demand[-self.history_steps :], self.spec,
                self.window_steps, self.knob,
            )  # fmt: skip
            if fitted is not None:
                self._spare, self._since_refit = fitted, 0
        self._since_refit += 1
        made = super().target(observation)
        if made is None:
            return None
        wanted, why = made
        if self._spare is None:
            return wanted, f"{why} (under a day of history: no spare fitted yet)"
        return wanted, f"{why}, refitted daily to {percent_text(self.knob)} on the last week"

    def state(self) -> dict[str, Any]:
        return {**super().state(), "spare": self._spare, "since_refit": self._since_refit}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        spare = state.get("spare")
        self._spare = None if spare is None else int(spare)
        self._since_refit = int(state.get("since_refit", 0))
