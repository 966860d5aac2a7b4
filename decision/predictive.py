"""Three predictive autoscalers people run, behind the `Policy` interface.

Each gets its system's point forecast (forecaster/classical.py) as `demand_samples`
`[1, H]` or `[1, H, K]` (several rows are averaged) and applies that system's rule with
one knob. The forecast is read over the decision window: horizon indices from the
provisioning delay d to `window_stop` (just step t + d by default). A forecast that is
NaN there (too little history, no period found) makes the policy fall back to its
system's non-predictive behaviour, and the reason says so.

- PhpaPolicy (jthomperoo/predictive-horizontal-pod-autoscaler, Holt-Winters model,
  decisionType "maximum"): desired = max(the HPA's calculated replicas on the last metric,
  ceil(forecast / (capacity * target))) at the knob's target utilisation, then PHPA's
  default behavior (scale-down: 300 s stabilisation, -100% per 60 s; scale-up: no
  stabilisation, max(+100%, +4 pods) per 60 s) through the HPA machinery of decision.hpa.
  PHPA's syncPeriod is taken to be the step (one evaluation per step, as its Holt-Winters
  season is counted in evaluations). PHPA runs Holt-Winters on its replica history; here
  it runs on the demand and is divided by capacity * target, equivalent up to rounding.
  No metric: PHPA's calculation fails and nothing scales.
- CranePolicy (gocrane/crane EffectiveHorizontalPodAutoscaler with DSP prediction): the
  underlying HPA (Kubernetes defaults, 15 s syncs) takes the larger proposal of the
  prediction metric (forecast x (1 + marginFraction), the knob, over capacity * spec
  target) and the original metric (the HPA calculation on the last demand). No period
  found: no prediction metric, so the original metric alone (a plain HPA). Deviation: the
  prediction metric is the largest forecast over the decision window, not over
  predictionWindowSeconds.
- AwsPredictivePolicy (EC2 Auto Scaling predictive scaling in forecast-and-scale mode with
  a target tracking policy at the same target, the knob): replicas = max(capacity for the
  forecast at the lead, target tracking's ceil(last demand / (capacity * target))). The
  forecast only raises capacity; scale-in comes from target tracking alone (no forecast:
  target tracking alone; no metric: target tracking does nothing, the forecast can only
  add). Target tracking's cooldowns and gradual scale-in are not modelled.
"""

from __future__ import annotations

import math

import numpy as np

from decision.baselines import _StatelessPolicy, bounded, build_decision, needed_replicas
from decision.engine import window_stop
from decision.errors import InvalidDecisionInput
from decision.hpa import (
    HpaBehavior,
    HpaPolicy,
    HpaScalingPolicy,
    HpaScalingRules,
    metric_proposal,
)
from decision.types import BindingConstraint, Decision, FloatArray, PoolObservation, PoolSpec

#: PHPA's defaults (internal/controllers/controller.go): 60 s policy periods.
PHPA_BEHAVIOR = HpaBehavior(
    scale_up=HpaScalingRules(
        0, (HpaScalingPolicy("Percent", 100, 60), HpaScalingPolicy("Pods", 4, 60)), "Max"
    ),
    scale_down=HpaScalingRules(300, (HpaScalingPolicy("Percent", 100, 60),), "Max"),
)


def forecast_window(samples: FloatArray | None, spec: PoolSpec) -> FloatArray | None:
    """`[W, K]` point forecast over the decision window; None when absent or not finite."""
    if samples is None:
        return None
    # Not engine.as_sample_cube: a point forecast may be NaN (no prediction yet).
    cube = np.asarray(samples, dtype=np.float64)
    if cube.ndim == 2 and spec.indicator_count == 1:
        cube = cube[:, :, None]
    if cube.ndim != 3 or cube.shape[2] != spec.indicator_count or cube.shape[0] < 1:
        raise InvalidDecisionInput(
            f"demand_samples must be [1, H] or [1, H, {spec.indicator_count}] (a point "
            f"forecast per demand indicator), got shape {np.shape(samples)}"
        )
    stop = window_stop(spec, cube.shape[1])
    window = cube.mean(axis=0)[spec.provisioning_delay_steps : stop]
    return window if bool(np.all(np.isfinite(window))) else None


def _decision(
    name: str, observation: PoolObservation, spec: PoolSpec, samples: FloatArray | None,
    replicas: int, wanted: int, binding: BindingConstraint | None, why: str,
    stabilized: int | None = None,
) -> Decision:  # fmt: skip
    """The Decision; the reason always carries the system's rule (`why`)."""
    current = observation.replicas_total
    if binding is None:
        binding = BindingConstraint.policy if replicas != current else BindingConstraint.hold
    elif replicas != wanted:
        why = f"{why}; {binding.value.replace('_', ' ')} gives {replicas}"
    usable = samples if samples is not None and bool(np.all(np.isfinite(samples))) else None
    return build_decision(
        name, observation, spec, usable, replicas, wanted, binding, why, stabilized=stabilized
    )


class _PredictiveHpa(HpaPolicy):
    """An HpaPolicy whose desired replicas a predictive rule sets (`_desired`); stabilisation,
    rate limits, state and observe are the HPA's."""

    forecast_source = ""

    def __init__(
        self, spec: PoolSpec, knob: float, target: float, behavior: HpaBehavior, name: str
    ) -> None:
        super().__init__(spec, target, behavior, name=name)
        self.knob = knob
        self.target = target

    def _desired(
        self, observation: PoolObservation, window: FloatArray | None, hpa: int | None
    ) -> tuple[int | None, str]:
        raise NotImplementedError

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec, current = self.spec, observation.replicas_total
        start = self._step_start(current)
        window = forecast_window(demand_samples, spec)
        demand = observation.last_demand_for(spec, self.name)
        hpa: int | None = None
        if np.all(np.isfinite(demand)):
            up, down = self.behavior.scale_up.tolerance, self.behavior.scale_down.tolerance
            ready = observation.replicas_usable
            hpa = max(
                metric_proposal(float(d), c, self.target, ready, current, up, down)[0]
                for d, c in zip(demand, spec.capacities, strict=True)
            )
        desired, why = self._desired(observation, window, hpa)
        if desired is None:
            replicas, bound = bounded(current, observation, spec)
            binding = bound or BindingConstraint.incomplete_observation
            return _decision(
                self.name, observation, spec, demand_samples, replicas, current, binding, why
            )
        replicas, stabilized, binding = self._converge(start, current, desired, observation)
        if binding is None and replicas != stabilized:
            up = stabilized > replicas
            binding = BindingConstraint.max_step_up if up else BindingConstraint.max_step_down
        elif binding is None and stabilized != desired:
            binding = BindingConstraint.stabilization
        return _decision(
            self.name, observation, spec, demand_samples, replicas, desired, binding, why,
            stabilized,
        )  # fmt: skip


class PhpaPolicy(_PredictiveHpa):
    """Predictive HPA with Holt-Winters: max(HPA, prediction) at the target utilisation."""

    name = "phpa"
    knob_name = "target_utilization"
    forecast_source = "holt-winters"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        super().__init__(spec, knob, knob, PHPA_BEHAVIOR, self.name)
        self._syncs = 1  # syncPeriod = the step

    def _desired(
        self, observation: PoolObservation, window: FloatArray | None, hpa: int | None
    ) -> tuple[int | None, str]:
        if hpa is None:
            return None, "PHPA cannot calculate replicas without metrics, so nothing scales"
        target = f"the {self.knob:.0%} target"
        if window is None:
            return hpa, (
                f"no Holt-Winters prediction yet (under two seasons of history), so the "
                f"HPA's calculation alone: {hpa} at {target}"
            )
        capacity = np.asarray(self.spec.capacities) * self.knob
        predicted = needed_replicas(window.max(axis=0), capacity)
        return max(hpa, predicted), (
            f"maximum of the HPA's {hpa} and the Holt-Winters prediction's {predicted} at {target}"
        )


class CranePolicy(_PredictiveHpa):
    """Crane's EffectiveHPA with DSP prediction; the knob is the estimator's marginFraction."""

    name = "crane"
    knob_name = "margin_fraction"
    forecast_source = "crane-dsp"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (knob > -1 and math.isfinite(knob)):
            raise InvalidDecisionInput(f"crane policy: margin_fraction must be > -1, got {knob!r}")
        super().__init__(spec, knob, spec.target_utilization, HpaBehavior(), self.name)

    def _desired(
        self, observation: PoolObservation, window: FloatArray | None, hpa: int | None
    ) -> tuple[int | None, str]:
        if window is None:
            if hpa is None:
                return None, "no DSP prediction and no metric, so the HPA keeps the replicas"
            return hpa, (
                f"DSP found no daily or weekly period (or has under two days of history), "
                f"so the HPA on the original metric alone: {hpa}"
            )
        peak = window.max(axis=0) * (1 + self.knob)
        predicted = needed_replicas(peak, self.spec.planning_capacity)
        margin = f"x (1 + {self.knob:.3g})"
        if hpa is None:
            # The HPA scales up on the metrics it can read, never down with one missing.
            current = observation.replicas_total
            return max(predicted, current), (
                f"the predicted metric {margin} wants {predicted}; the original metric is missing"
            )
        return max(hpa, predicted), (
            f"the larger of the predicted metric {margin} ({predicted}) and the original "
            f"metric ({hpa})"
        )


class AwsPredictivePolicy(_StatelessPolicy):
    """AWS predictive scaling (forecast and scale) plus target tracking at the knob's target."""

    name = "aws-predictive"
    knob_name = "target_utilization"
    forecast_source = "aws-seasonal"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        if not (knob > 0 and math.isfinite(knob)):
            raise InvalidDecisionInput(
                f"aws-predictive policy: target_utilization must be > 0, got {knob!r}"
            )
        self.spec = spec
        self.knob = knob

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec, current = self.spec, observation.replicas_total
        capacity = np.asarray(spec.capacities) * self.knob
        window = forecast_window(demand_samples, spec)
        demand = observation.last_demand_for(spec, self.name)
        tracking = needed_replicas(demand, capacity) if np.all(np.isfinite(demand)) else None
        forecast = None if window is None else needed_replicas(window.max(axis=0), capacity)
        rule = None
        if forecast is None and tracking is None:
            wanted, rule = current, BindingConstraint.incomplete_observation
            why = "no forecast (under 24 h of data) and no metric, so nothing scales"
        elif forecast is None:
            wanted = tracking if tracking is not None else current
            why = f"no forecast yet (under 24 h of data), so target tracking alone: {wanted}"
        elif tracking is None:
            wanted = max(current, forecast)
            why = f"the forecast wants {forecast} and only scales out; no metric for tracking"
        else:
            wanted = max(tracking, forecast)
            why = (
                f"the larger of the forecast capacity ({forecast}, scale-out only) and target "
                f"tracking at {self.knob:.0%} ({tracking})"
            )
        replicas, bound = bounded(wanted, observation, spec)
        return _decision(
            self.name, observation, spec, demand_samples, replicas, wanted, bound or rule, why
        )
