"""The Harmony policy: the Bayesian engine, the calibration posterior and the safety rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from decision.budget import ShortfallBudget
from decision.calibration import CalibrationPosterior, forgetting_for
from decision.engine import analyse, plan_replicas
from decision.errors import InvalidDecisionInput, require_own_state
from decision.queue_feedback import QueueFeedback
from decision.reasons import ReasonContext, reason
from decision.safety import apply_safety_rules
from decision.types import Decision, FloatArray, IntArray, PoolObservation, PoolSpec, SlaKind


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
    realised step, how often the capacity the pool would have had at each planning level
    was exceeded, and corrects ε accordingly (decision.calibration). That capacity follows
    the pool's own rules, as if it had run at the level throughout (`stabilised_capacity`;
    why: docs/decisions/0004). The shortfall budget (decision.budget) moves the rate the
    calibration is asked for by the pool's own realised shortfall. Under the queue SLA the
    same machinery plans against waits instead (decision.engine.QueueAnalysis) and learns
    from realised waits (decision.queue_feedback).
    """

    name = "harmony"
    knob_name = "sla_epsilon"
    forecast_source = "harmony"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        self.spec = replace(spec, sla_epsilon=knob)
        self.knob = knob
        self.calibration = CalibrationPosterior(forgetting=forgetting_for(knob))
        self.budget = ShortfallBudget(knob)
        # Replicas usable at the step just decided (those removed go at once, those added
        # come after the delay), to tell whether its realised demand fell short.
        self._usable_now: int | None = None
        self._history: list[int] = []
        # Per decision step: the replicas recommended at each calibration level.
        self._recommended: dict[int, IntArray] = {}
        self._step = 0
        self.queue = self._new_queue_feedback()

    def _new_queue_feedback(self) -> QueueFeedback | None:
        if self.spec.sla_kind is not SlaKind.queue:
            return None
        return QueueFeedback(self.spec.max_delay_steps, len(self.calibration.levels))

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        spec = self.spec
        if demand_samples is None:
            raise InvalidDecisionInput(
                "the harmony policy needs demand samples from a forecaster; without a "
                "model use the reactive policy"
            )
        analysis = analyse(demand_samples, observation, spec)
        if self.queue is not None:
            self.queue.resync(observation.backlog)
        epsilon = self.calibration.effective_epsilon(self.budget.target())
        plan = plan_replicas(analysis, epsilon)
        safety = apply_safety_rules(plan.replicas, observation, spec, self._history)
        self._remember(safety.recommendation)
        levels = self.calibration.level_array
        self._recommended[self._step] = np.maximum(
            analysis.planned_counts(levels), analysis.kept_counts(levels)
        )
        replicas = safety.replicas
        self._usable_now = min(observation.replicas_usable, replicas)
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
                "calibration_at_limit": float(self.calibration.at_limit(self.budget.target())),
                "budget_factor": self.budget.target() / spec.sla_epsilon,
            },
        )

    def observe(self, realised_demand: FloatArray | float) -> None:
        realised = realised_in_replicas(realised_demand, self.spec)
        capacity = self.stabilised_capacity(self._step)
        if self.queue is not None:
            self._observe_waits(realised, capacity)
        else:
            if capacity is not None and realised is not None:
                self.calibration.update(realised > capacity * (1.0 + 1e-9))
            if self._usable_now is not None and realised is not None:
                self.budget.update(realised > self._usable_now * (1.0 + 1e-9))
        self._usable_now = None
        oldest_needed = self._step + 1 - self._memory()
        self._recommended = {
            step: counts for step, counts in self._recommended.items() if step >= oldest_needed
        }
        self._step += 1

    def _observe_waits(self, realised: float | None, capacity: FloatArray | None) -> None:
        """The queue SLA's outcomes: an unobserved step brings no work."""
        assert self.queue is not None
        work = 0.0 if realised is None else realised
        planning = float(self.spec.planning_capacity[0])
        backlog = self.queue.actual.backlog[0] / planning
        for late in self.queue.level_outcomes(work, capacity, backlog):
            self.calibration.update(late)
        if self._usable_now is not None:
            per_replica = float(self.spec.capacities[0])
            for missed, weight in self.queue.pool_outcomes(
                work * planning, self._usable_now * per_replica
            ):
                self.budget.update_share(missed, weight)

    def stabilised_capacity(self, step: int) -> FloatArray | None:
        """Replicas usable at `step` per calibration level had every decision been taken at
        that level (None before the first decision that can reach it).

        A request at decision step o is the highest recommendation of o's stabilisation
        window (scale-up at once, scale-down held); what it adds is usable from o + d on,
        what it removes goes at once. So the usable count at t is the smallest request of
        the steps t - d .. t: the one at t - d, unless a later one removed replicas."""
        delay = self.spec.provisioning_delay_steps
        if step - delay not in self._recommended:
            return None
        window = self.spec.stabilization_steps
        first = step - delay - window + 1
        # Rows for origins first .. step; origins before the first decision hold nothing.
        nothing = np.full(len(self._recommended[step - delay]), -np.inf)
        rows = np.asarray([self._recommended.get(o, nothing) for o in range(first, step + 1)])
        # requests[i] = max(rows[i .. i + window - 1]): the running maximum over the window,
        # one shifted maximum per step of it (a sliding-window view cost twice as much).
        count = rows.shape[0] - window + 1
        requests = rows[:count]
        for shift in range(1, window):
            requests = np.maximum(requests, rows[shift : shift + count])
        capacity: FloatArray = requests.min(axis=0)
        return capacity

    def _memory(self) -> int:
        """How many decision steps of recommendations `stabilised_capacity` looks back."""
        return self.spec.provisioning_delay_steps + self.spec.stabilization_steps

    def state(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "step": self._step,
            "history": list(self._history),
            "recommended": {
                str(step): counts.tolist() for step, counts in self._recommended.items()
            },
            "calibration": self.calibration.to_dict(),
            "budget": self.budget.to_dict(),
            "usable_now": self._usable_now,
            "queue": None if self.queue is None else self.queue.to_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        require_own_state(state, self.name)
        try:
            self._step = int(state["step"])
            self._history = [int(v) for v in state["history"]]
            # A state saved before "recommended" existed ("pending" plans) starts it afresh.
            recommended = state.get("recommended", {})
            self._recommended = {
                int(k): np.asarray([int(c) for c in v], dtype=np.int64)
                for k, v in recommended.items()
            }
            # The memory follows this policy's ε, which may have changed since the save.
            self.calibration = replace(
                CalibrationPosterior.from_dict(state["calibration"]),
                forgetting=forgetting_for(self.knob),
            )
            usable_now = state.get("usable_now")
            self._usable_now = None if usable_now is None else int(usable_now)
            # A state saved before the budget existed starts it afresh; ε follows the knob.
            budget = state.get("budget")
            self.budget = (
                replace(ShortfallBudget.from_dict(budget), sla_epsilon=self.knob)
                if budget is not None
                else ShortfallBudget(self.knob)
            )
            # The queue's fluid state follows the SLA kind: a state saved under another
            # kind, or before it existed, starts it afresh.
            queue = state.get("queue")
            self.queue = self._new_queue_feedback()
            if self.queue is not None and queue is not None:
                restored = QueueFeedback.from_dict(queue)
                if (restored.wait_steps, restored.levels) == (
                    self.queue.wait_steps,
                    self.queue.levels,
                ):
                    self.queue = restored
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


class HarmonyGaussianPolicy(HarmonyPolicy):
    """Harmony fed the samples of its forecaster with the flow switched off (the Gaussian
    base alone): the ablation that shows what the flow adds to the decisions."""

    name = "harmony-gaussian"
    forecast_source = "harmony-gaussian"
