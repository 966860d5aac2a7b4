"""The Harmony policy: the Bayesian engine, the calibration posterior and the safety rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from decision.calibration import CalibrationPosterior
from decision.engine import DemandAnalysis, plan_replicas
from decision.errors import InvalidDecisionInput, require_own_state
from decision.reasons import ReasonContext, reason
from decision.safety import apply_safety_rules
from decision.types import Decision, FloatArray, PoolObservation, PoolSpec


def window_phrase(delay: int, stop: int) -> str:
    if stop == delay + 1:
        return f"step t+{delay}"
    return f"steps t+{delay}..t+{stop - 1}"


def realised_in_replicas(realised_demand: FloatArray | float, spec: PoolSpec) -> float | None:
    """Realised demand in planning-capacity replicas (busiest indicator); None if unobserved."""
    demand = np.atleast_1d(np.asarray(realised_demand, dtype=np.float64))
    if demand.shape != (spec.indicator_count,):
        raise InvalidDecisionInput(
            f"observe() needs the realised demand of {spec.indicator_count} indicator(s), "
            f"got shape {demand.shape}"
        )
    if not np.all(np.isfinite(demand)):
        return None
    return float((demand / spec.planning_capacity).max())


class HarmonyPolicy:
    """Forecast samples in, the fewest replicas keeping P(shortfall) within the corrected ε.

    The knob is the SLA ε (`sla_epsilon`). The calibration posterior learns, from each
    realised step, how often the plan made `provisioning_delay_steps` earlier would have
    been exceeded at each planning level, and corrects ε accordingly (decision.calibration).
    """

    name = "harmony"
    knob_name = "sla_epsilon"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        self.spec = replace(spec, sla_epsilon=knob)
        self.knob = knob
        self.calibration = CalibrationPosterior()
        self._history: list[int] = []
        self._pending: dict[int, list[int]] = {}
        self._step = 0

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        if demand_samples is None:
            raise InvalidDecisionInput(
                "the harmony policy needs demand samples from a forecaster; without a "
                "model use the reactive policy"
            )
        analysis = DemandAnalysis(demand_samples, observation, spec)
        epsilon = self.calibration.effective_epsilon(spec.sla_epsilon)
        plan = plan_replicas(analysis, epsilon)
        safety = apply_safety_rules(plan.replicas, observation, spec, self._history)
        self._remember(safety.recommendation)
        self._pending[self._step + spec.provisioning_delay_steps] = analysis.planned_counts(
            self.calibration.level_array
        ).tolist()
        replicas = safety.replicas
        probability, upper = analysis.shortfall_probability(replicas)
        binding = safety.binding or plan.binding
        context = ReasonContext(
            current=observation.replicas_total,
            replicas=replicas,
            wanted=plan.replicas,
            spec=spec,
            epsilon=epsilon,
            shortfall_probability=probability,
            shortfall_upper=upper,
            sla_replicas=plan.sla_replicas,
            sample_count=analysis.sample_count,
            window=window_phrase(analysis.delay, analysis.stop),
            stabilized=safety.stabilized,
        )
        return Decision(
            policy=self.name,
            replicas=replicas,
            recommended_replicas=plan.replicas,
            binding=binding,
            reason=reason(binding, context),
            shortfall_probability=probability,
            shortfall_probability_upper=upper,
            expected_cost=float(analysis.expected_cost(np.asarray([replicas]))[0]),
            expected_utilization=analysis.expected_utilization(replicas),
            effective_epsilon=epsilon,
            details={
                "sla_replicas": float(plan.sla_replicas),
                "calibration_updates": float(self.calibration.updates),
                "calibration_at_limit": float(self.calibration.at_limit(spec.sla_epsilon)),
            },
        )

    def observe(self, realised_demand: FloatArray | float) -> None:
        realised = realised_in_replicas(realised_demand, self.spec)
        planned = self._pending.pop(self._step, None)
        self._pending = {step: c for step, c in self._pending.items() if step > self._step}
        if planned is not None and realised is not None:
            planned_counts = np.asarray(planned, dtype=np.float64)
            self.calibration.update(realised > planned_counts * (1.0 + 1e-9))
        self._step += 1

    def state(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "step": self._step,
            "history": list(self._history),
            "pending": {str(step): counts for step, counts in self._pending.items()},
            "calibration": self.calibration.to_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)
        try:
            self._step = int(state["step"])
            self._history = [int(v) for v in state["history"]]
            self._pending = {int(k): [int(c) for c in v] for k, v in state["pending"].items()}
            self.calibration = CalibrationPosterior.from_dict(state["calibration"])
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            if isinstance(error, InvalidDecisionInput):
                raise
            raise InvalidDecisionInput(
                f"harmony policy state: field missing or malformed ({error})"
            ) from error

    def _remember(self, recommendation: int) -> None:
        self._history.append(recommendation)
        keep = max(self.spec.stabilization_steps - 1, 0)
        self._history = self._history[-keep:] if keep else []
