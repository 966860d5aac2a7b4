"""The Bayesian decision engine: from demand samples to the cheapest replica count within ε.

For every candidate r in [min_replicas, max_replicas] the engine counts the samples that
fall short at some step of the decision window (horizon indices 0 .. d + W - 1; steps
before the delay d only through replicas removed now), treats that Monte-Carlo estimate as
uncertain with a Beta posterior (Jeffreys prior Beta(1/2, 1/2), k of S samples short:
Beta(k + 1/2, S - k + 1/2)) and keeps the r whose upper credible bound is within the
effective ε; an ε too small for S samples to show is met by the samples' upper tail,
extrapolated (decision.tail). Among those it takes the cheapest expected cost:
replica-hours times price plus expected shortfall unit-hours times penalty (with no
penalty: the fewest replicas).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from decision.errors import InvalidDecisionInput
from decision.queue import queue_requirements
from decision.shortfall import (
    StepShortfall,
    ceil_replicas,
    exceedance_counts,
    kept_replicas,
    max_allowed_exceedances,
    max_allowed_exceedances_at,
    ready_replicas_by_step,
    required_replicas,
    shortfall_upper_bound,
    smallest_count_allowing,
    usable_replicas,
)
from decision.tail import TailFit, fit_tail
from decision.types import (
    BindingConstraint,
    FloatArray,
    IntArray,
    PoolObservation,
    PoolSpec,
    SlaKind,
)


def as_sample_cube(samples: FloatArray, spec: PoolSpec, what: str = "demand_samples") -> FloatArray:
    """`[S, H]` or `[S, H, K]` -> `[S, H, K]` float64, checked against the pool's indicators."""
    cube = np.asarray(samples, dtype=np.float64)
    if cube.ndim == 2 and spec.indicator_count == 1:
        cube = cube[:, :, None]
    if cube.ndim != 3 or cube.shape[2] != spec.indicator_count or cube.shape[0] < 1:
        raise InvalidDecisionInput(
            f"{what} must be [S, H] or [S, H, {spec.indicator_count}] (one column per demand "
            f"indicator of capacity_per_replica), got shape {np.shape(samples)}"
        )
    if not np.all(np.isfinite(cube)):
        raise InvalidDecisionInput(f"{what} contain NaN or infinite values; fix the forecaster")
    return cube


def window_stop(spec: PoolSpec, horizon: int) -> int:
    """One past the last horizon index the chance constraint covers."""
    delay = spec.provisioning_delay_steps
    if horizon <= delay:
        raise InvalidDecisionInput(
            f"the forecast horizon H={horizon} must cover the provisioning delay "
            f"({delay} steps) plus at least one step; forecast at least {delay + 1} steps"
        )
    if spec.decision_window_steps is None:
        return horizon
    return min(horizon, delay + spec.decision_window_steps)


class DemandAnalysis:
    """Everything one decision needs from the samples, computed once (sorting included)."""

    def __init__(self, samples: FloatArray, observation: PoolObservation, spec: PoolSpec) -> None:
        cube = as_sample_cube(samples, spec)
        self.spec = spec
        self.stop = window_stop(spec, cube.shape[1])
        self.delay = spec.provisioning_delay_steps
        self.window = cube[:, : self.stop, :]
        self.sample_count = cube.shape[0]
        self.total = observation.replicas_total
        self.ready = ready_replicas_by_step(
            observation.replicas_usable, observation.in_flight, self.stop
        )
        in_replicas = (self.window / spec.planning_capacity).max(axis=2)
        after = in_replicas[:, self.delay :]
        self.sorted_requirements = np.sort(
            required_replicas(after, self.ready[self.delay :], self.total)
        )
        self.sorted_before = np.sort(in_replicas[:, : self.delay], axis=0)
        # Sorted as their input: kept_replicas is non-decreasing in demand.
        self.sorted_kept = kept_replicas(self.sorted_before, self.ready[: self.delay])
        # Demand-side requirement after the delay, free of in-flight effects: what the
        # calibration compares the realised demand with.
        self.sorted_planned_demand = np.sort(after.max(axis=1))
        self.sorted_after = np.sort(after, axis=0)
        self._step_shortfall: StepShortfall | None = None

    def covering_all(self) -> int:
        """Fewest replicas without shortfall in any sample (the oracle's count)."""
        kept_for_every_sample = int(self.sorted_kept[-1].max()) if self.delay else 0
        return max(int(self.sorted_requirements[-1]), kept_for_every_sample)

    def shortfall_counts(self, candidates: IntArray) -> IntArray:
        return exceedance_counts(self.sorted_requirements, candidates)

    def shortfall_probability(self, replicas: int) -> tuple[float, float]:
        """(Monte-Carlo estimate, upper credible bound) at `replicas`."""
        counts = self.shortfall_counts(np.asarray([replicas]))
        bound = shortfall_upper_bound(counts, self.sample_count, self.spec.credible_level)
        return float(counts[0]) / self.sample_count, float(bound[0])

    def expected_cost(self, candidates: IntArray) -> FloatArray:
        """`[R]` expected cost over the window per candidate total."""
        spec = self.spec
        replica_cost = spec.price_per_replica_hour * spec.step_hours * self.stop * candidates
        if spec.shortfall_penalty_per_unit_hour == 0:
            return np.asarray(replica_cost, dtype=np.float64)
        shortfall = self._expected_shortfall(candidates).sum(axis=1)
        penalty = spec.shortfall_penalty_per_unit_hour * spec.step_hours * shortfall
        return np.asarray(replica_cost + penalty, dtype=np.float64)

    def expected_utilization(self, replicas: int) -> float:
        """Expected served share of usable capacity over the window steps after the delay
        (for several indicators, the busiest one per step)."""
        usable = usable_replicas(np.asarray([replicas]), self.ready, self.total, self.delay)
        after = slice(self.delay, None)
        capacity = usable[0][after, None] * np.asarray(self.spec.capacities)[None, :]
        # Served demand is E[min(D, capacity)] = E[D] - E[(D - capacity)+]; for one count the
        # mean over the samples directly (StepShortfall's bins pay off over many counts).
        served = np.minimum(self.window[:, after], capacity).mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            utilization = np.where(capacity > 0, served / capacity, 1.0)
        return float(np.clip(utilization.max(axis=1), 0.0, 1.0).mean())

    def tail_demand(self, levels: FloatArray) -> FloatArray:
        """`[len(levels), W]` demand in replicas at each window step after the delay, its
        tail extrapolated at level / W per step (so that the union over the W steps stays
        within the level)."""
        per_step = np.asarray(levels, dtype=np.float64) / self.sorted_after.shape[1]
        return self._after_tail.quantile(per_step)

    def beyond_samples(self, levels: FloatArray) -> IntArray:
        """`[len(levels)]` fewest replicas covering the extrapolated tail at each level
        (for levels too small for S samples to show)."""
        return required_replicas(self.tail_demand(levels), self.ready[self.delay :], self.total)

    def planned_counts(self, levels: FloatArray) -> IntArray:
        """Replicas the engine would plan (demand side) at each calibration level: the
        fewest covering all but the allowed number of samples (the extrapolated tail when S
        is too small for the level)."""
        allowed = max_allowed_exceedances_at(self.sample_count, self.spec.credible_level, levels)
        position = np.clip(self.sample_count - allowed - 1, 0, self.sample_count - 1)
        planned = ceil_replicas(self.sorted_planned_demand[position])
        planned[allowed >= self.sample_count] = 0
        beyond = allowed < 0
        if beyond.any():
            planned[beyond] = ceil_replicas(self.tail_demand(levels[beyond]).max(axis=1))
        return planned

    def kept_counts(self, levels: FloatArray) -> IntArray:
        """`[len(levels)]` fewest replicas a scale-down at each level must keep for the
        steps before the delay (0 with no delay); a level too small for S samples to show
        keeps each step's extrapolated tail (capped at what is ready)."""
        kept = np.zeros(levels.size, dtype=np.int64)
        if self.delay == 0:
            return kept
        allowed = max_allowed_exceedances_at(self.sample_count, self.spec.credible_level, levels)
        shown = (allowed >= 0) & (allowed < self.sample_count)
        position = self.sample_count - allowed[shown] - 1
        kept[shown] = self.sorted_kept[position].max(axis=1)
        beyond = allowed < 0
        if beyond.any():
            tails = self._before_tail.quantile(levels[beyond])
            kept[beyond] = kept_replicas(tails, self.ready[: self.delay]).max(axis=1)
        return kept

    @functools.cached_property
    def _after_tail(self) -> TailFit:
        return fit_tail(self.sorted_after, self.spec.credible_level)

    @functools.cached_property
    def _before_tail(self) -> TailFit:
        return fit_tail(self.sorted_before, self.spec.credible_level)

    def _expected_shortfall(self, candidates: IntArray) -> FloatArray:
        if self._step_shortfall is None:
            largest = max(self.spec.max_replicas, self.total, int(candidates.max()))
            self._step_shortfall = StepShortfall(
                self.window, np.asarray(self.spec.capacities), largest
            )
        usable = usable_replicas(candidates, self.ready, self.total, self.delay)
        return self._step_shortfall.expected_shortfall(usable)


@dataclass(frozen=True)
class Plan:
    """The engine's wish before the safety rules."""

    replicas: int
    binding: BindingConstraint
    sla_replicas: int  # the fewest replicas meeting the chance constraint (or the fallback)
    kept_replicas: int  # the fewest a scale-down must keep for the steps before the delay


def plan_replicas(analysis: DemandAnalysis, epsilon: float) -> Plan:
    """Cheapest r up to max_replicas whose shortfall bound over the window is <= epsilon,
    keeping what the steps before the delay need at the same level. Without a penalty
    that is the fewest such r, which may be below min_replicas (the safety rules raise it
    and the reason says so)."""
    spec = analysis.spec
    requirements = analysis.sorted_requirements
    allowed = max_allowed_exceedances(analysis.sample_count, spec.credible_level, epsilon)
    binding = BindingConstraint.sla
    if allowed < 0:
        # S is too small to show a probability this low even with no sample short.
        beyond = int(analysis.beyond_samples(np.asarray([epsilon]))[0])
        sla_replicas = max(int(requirements[-1]), beyond)
        binding = BindingConstraint.sample_size
    else:
        sla_replicas = smallest_count_allowing(requirements, allowed)
    kept = int(analysis.kept_counts(np.asarray([epsilon]))[0])
    if sla_replicas > spec.max_replicas:
        return Plan(spec.max_replicas, BindingConstraint.infeasible, sla_replicas, kept)
    if kept > sla_replicas:
        binding = BindingConstraint.keep_until_ready
    wanted = max(sla_replicas, kept)
    # The wish may lie below min_replicas: the safety rules raise it and say so.
    lowest = min(max(wanted, spec.min_replicas), spec.max_replicas)
    if spec.shortfall_penalty_per_unit_hour == 0 or lowest == spec.max_replicas:
        return Plan(wanted, binding, sla_replicas, kept)
    candidates = np.arange(lowest, spec.max_replicas + 1, dtype=np.int64)
    cheapest = int(candidates[int(np.argmin(analysis.expected_cost(candidates)))])
    if cheapest == lowest:
        return Plan(wanted, binding, sla_replicas, kept)
    return Plan(cheapest, BindingConstraint.cost, sla_replicas, kept)


class QueueAnalysis(DemandAnalysis):
    """DemandAnalysis for the queue SLA: a sample falls short at r when some work arriving
    from now to the end of the decision window (horizon steps 0 .. stop - 1), or already
    queued, waits longer than the pool's max delay (decision.queue), beyond what no count
    could prevent. The steps before the delay count too: the next decision cannot add
    capacity for them, so this one must. Waits need the capacity of the
    steps after the arrivals, not their demand: the forecast horizon stays as for the
    shortfall SLA. A scale-down reaches the window's work through the backlog it leaves
    ahead of it, so nothing is kept apart for the steps before the delay."""

    def __init__(self, samples: FloatArray, observation: PoolObservation, spec: PoolSpec) -> None:
        super().__init__(samples, observation, spec)
        wait_steps = spec.max_delay_steps
        arrivals = self.window[:, :, 0] / spec.planning_capacity[0]
        backlog = observation.backlog / float(spec.planning_capacity[0])
        largest = max(spec.max_replicas, self.total)
        ready = ready_replicas_by_step(
            observation.replicas_usable, observation.in_flight, self.stop + wait_steps
        )
        recent = observation.recent_demand[-wait_steps:, 0] / spec.planning_capacity[0]
        self.sorted_requirements = np.sort(
            queue_requirements(
                arrivals,
                backlog,
                ready,
                self.total,
                self.delay,
                wait_steps,
                largest,
                0,
                recent if wait_steps else None,
            )
        )
        self.sorted_kept = np.zeros_like(self.sorted_kept)
        self._paths = (arrivals, backlog, largest, wait_steps)

    @functools.cached_property
    def sorted_planned(self) -> IntArray:
        """What the calibration compares with: the same paths with every replica usable
        from now on (no in-flight effects), as for the shortfall SLA. Only Harmony's
        calibration asks, so it is computed on demand."""
        arrivals, backlog, largest, wait_steps = self._paths
        everything = np.full(self.stop + wait_steps, largest, dtype=np.int64)
        planned: IntArray = np.sort(
            queue_requirements(arrivals, backlog, everything, largest, 0, wait_steps, largest)
        )
        return planned

    def beyond_samples(self, levels: FloatArray) -> IntArray:
        """The largest requirement plus the margin the extrapolated demand tail adds over
        the samples' largest window demand (for levels S samples cannot show)."""
        margin = super().beyond_samples(levels) - ceil_replicas(
            np.asarray([self.sorted_planned_demand[-1]])
        )
        beyond: IntArray = int(self.sorted_requirements[-1]) + np.maximum(margin, 0)
        return beyond

    def planned_counts(self, levels: FloatArray) -> IntArray:
        allowed = max_allowed_exceedances_at(self.sample_count, self.spec.credible_level, levels)
        position = np.clip(self.sample_count - allowed - 1, 0, self.sample_count - 1)
        planned: IntArray = self.sorted_planned[position].astype(np.int64)
        planned[allowed >= self.sample_count] = 0
        beyond = allowed < 0
        if beyond.any():
            margin = DemandAnalysis.planned_counts(self, levels[beyond]) - ceil_replicas(
                np.asarray([self.sorted_planned_demand[-1]])
            )
            planned[beyond] = int(self.sorted_planned[-1]) + np.maximum(margin, 0)
        return planned

    def kept_counts(self, levels: FloatArray) -> IntArray:
        return np.zeros(np.asarray(levels).size, dtype=np.int64)


def analyse(samples: FloatArray, observation: PoolObservation, spec: PoolSpec) -> DemandAnalysis:
    """The analysis the pool's SLA kind calls for."""
    if spec.sla_kind is SlaKind.queue:
        return QueueAnalysis(samples, observation, spec)
    return DemandAnalysis(samples, observation, spec)
