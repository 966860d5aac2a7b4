"""Evidence for moving a pool from `Recommend` to `Enforce`, from what its cycles recorded.

Each recorded decision holds the replicas Harmony recommended, what the target had
(desired and usable) and the demand observed up to the cycle. The recommendations are
replayed, slot by slot on the pool's interval, through a `SimulatedPool` with the pool's
provisioning delay; the demand of the slot decided at t is what the next cycle observed
(`inputs.demand`). The same exact accounting as the backtest (`account`) then gives, for
the recommendations and for what the pool actually ran, the replica-hours, the shortfall
rate on the observed demand and the actions per day. `EnforceReady` holds when the
recommendations' shortfall rate stayed within the SLA's ε over at least `minDays` days of
observed demand.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.actuators.simulated import SimulatedPool
from controller.backtest.metrics import CaseMetrics, account
from controller.clock import ManualClock
from controller.operator.spec import PoolConfig
from controller.state.models import DecisionRecord

_POOL = "readiness"
#: The `policy` of a decision recorded while metrics were missing (controller.cycle).
HOLD_POLICY = "hold"
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class RecordedCycle:
    """One recorded decision, as readiness reads it."""

    at: dt.datetime
    recommended: int
    desired: int
    usable: int
    #: Demand observed for the slot before `at` (None: not observed).
    demand_before: float | None
    #: Metrics were missing and the cycle held the target's count: nothing recommended.
    held: bool = False
    #: Usable replicas of the pool the recommendations made, as the policy saw them
    #: (None: recorded before the shadow pool existed; the target's count stands in).
    recommended_usable: int | None = None


@dataclass(frozen=True)
class SideEvidence:
    """What one side (the recommendations, or what the pool ran) cost and fell short."""

    replica_hours: float
    shortfall_rate: float
    shortfall_steps: int
    actions_per_day: float

    @classmethod
    def of(cls, metrics: CaseMetrics) -> SideEvidence:
        return cls(
            replica_hours=metrics.replica_hours,
            shortfall_rate=metrics.shortfall_rate,
            shortfall_steps=metrics.shortfall_steps,
            actions_per_day=metrics.actions_per_day,
        )


@dataclass(frozen=True)
class DayEvidence:
    """One UTC day of the window."""

    day: dt.date
    observed_days: float
    recommended: SideEvidence
    actual: SideEvidence


@dataclass(frozen=True)
class ReadinessEvidence:
    """The recommendations against what the pool ran, over `since`..`until`."""

    since: dt.datetime
    until: dt.datetime
    cycles: int
    observed_days: float
    min_days: float
    sla_epsilon: float
    recommended: SideEvidence
    actual: SideEvidence
    days: tuple[DayEvidence, ...]

    @property
    def sla_held(self) -> bool:
        return self.recommended.shortfall_rate <= self.sla_epsilon

    @property
    def ready(self) -> bool:
        return self.sla_held and self.observed_days >= self.min_days - 1e-9

    @property
    def reason(self) -> str:
        if not self.sla_held:
            return "SLAMissed"
        return "EvidenceSufficient" if self.ready else "CollectingEvidence"

    def message(self) -> str:
        """The condition's message: the verdict and the figures behind it."""
        rec, act = self.recommended, self.actual
        figures = (
            f"over {self.observed_days:.2f} days of observed demand, the recommendations "
            f"would have used {rec.replica_hours:,.1f} replica-hours (the pool ran "
            f"{act.replica_hours:,.1f}) and fallen short in {rec.shortfall_rate:.2%} of steps "
            f"(SLA {self.sla_epsilon:.2%}; the pool ran short in {act.shortfall_rate:.2%}), "
            f"with {rec.actions_per_day:.1f} actions a day (the pool: {act.actions_per_day:.1f})"
        )
        if not self.sla_held:
            return f"Not ready: the SLA would have been missed: {figures}."
        if not self.ready:
            return (
                f"Not yet: {self.min_days:g} days of observed demand needed, "
                f"{self.observed_days:.2f} so far; {figures}."
            )
        return f"Ready for Enforce: {figures}."

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document.update(
            sla_held=self.sla_held, ready=self.ready, reason=self.reason, message=self.message()
        )
        return document


def load_cycles(
    session: Session, pool_id: int, since: dt.datetime, until: dt.datetime
) -> list[RecordedCycle]:
    """The pool's recorded decisions in [since, until), oldest first."""
    rows = session.execute(
        select(
            DecisionRecord.cycle_at,
            DecisionRecord.replicas_wanted,
            DecisionRecord.replicas_now,
            DecisionRecord.inputs,
            DecisionRecord.policy,
        )
        .where(
            DecisionRecord.pool_id == pool_id,
            DecisionRecord.cycle_at >= since,
            DecisionRecord.cycle_at < until,
        )
        .order_by(DecisionRecord.cycle_at, DecisionRecord.id)
    ).all()
    cycles = []
    for at, wanted, now, inputs, policy in rows:
        fields = inputs if isinstance(inputs, dict) else {}
        usable = fields.get("replicas_usable")
        seen = fields.get("policy_replicas_usable")
        demand = fields.get("demand")
        observed = (
            float(demand) if isinstance(demand, int | float) and math.isfinite(demand) else None
        )
        cycles.append(
            RecordedCycle(
                at=at if at.tzinfo else at.replace(tzinfo=dt.UTC),
                recommended=int(wanted),
                desired=int(now),
                usable=int(usable) if isinstance(usable, int) else int(now),
                demand_before=observed,
                held=policy == HOLD_POLICY,
                recommended_usable=int(seen) if isinstance(seen, int) else None,
            )
        )
    return cycles


def assess(
    cycles: Sequence[RecordedCycle],
    config: PoolConfig,
    since: dt.datetime,
    until: dt.datetime,
) -> ReadinessEvidence:
    """Replay the recommendations of `cycles` (oldest first) and weigh them against what
    the pool ran, on the demand the cycles observed."""
    step = config.interval
    slots = _slots(cycles, step)
    count = (max(slots) + 1) if slots else 0
    demand = np.full(count, np.nan)
    recommended_usable = np.zeros(count, dtype=np.int64)
    recommended_billed = np.zeros(count, dtype=np.int64)
    actual_usable = np.zeros(count, dtype=np.int64)
    actual_billed = np.zeros(count, dtype=np.int64)
    by_slot = dict(zip(slots, cycles, strict=True))
    for slot, cycle in by_slot.items():
        if slot > 0 and cycle.demand_before is not None:
            demand[slot - 1] = cycle.demand_before
    if cycles:
        first = cycles[0]
        clock = ManualClock(first.at)
        pool = SimulatedPool(
            _POOL,
            clock,
            config.provisioning_delay,
            capacity_per_replica=config.capacity_per_replica,
            initial_replicas=_replay_start(first),
        )
        ran = first
        for slot in range(count):
            clock.set(first.at + slot * step)
            recorded = by_slot.get(slot)
            if recorded is not None:
                ran = recorded
                # A slot without a cycle, or one that held for missing metrics, keeps what
                # the replayed pool had: nothing was recommended.
                if not recorded.held:
                    pool.scale(_POOL, recorded.recommended, str(slot))
            state = pool.current(_POOL)
            recommended_usable[slot], recommended_billed[slot] = state.usable, state.desired
            actual_usable[slot], actual_billed[slot] = ran.usable, ran.desired
    step_seconds = step.total_seconds()

    def side(span: slice, usable: np.ndarray, billed: np.ndarray, before: int) -> SideEvidence:
        return SideEvidence.of(
            account(
                demand[span],
                usable[span],
                billed[span],
                capacities=(config.capacity_per_replica,),
                step_seconds=step_seconds,
                price_per_replica_hour=config.price_per_replica_hour,
                initial_desired=before,
            )
        )

    start_desired = cycles[0].desired if cycles else 0
    replay_start = _replay_start(cycles[0]) if cycles else 0
    days: list[DayEvidence] = []
    if cycles:
        origin = cycles[0].at
        day_of = np.asarray(
            [(origin + slot * step).date().toordinal() for slot in range(count)], dtype=np.int64
        )
        for ordinal in np.unique(day_of):
            where = np.flatnonzero(day_of == ordinal)
            span = slice(int(where[0]), int(where[-1]) + 1)
            rec_before = int(recommended_billed[span.start - 1]) if span.start else replay_start
            act_before = int(actual_billed[span.start - 1]) if span.start else start_desired
            days.append(
                DayEvidence(
                    day=dt.date.fromordinal(int(ordinal)),
                    observed_days=_observed_days(demand[span], step),
                    recommended=side(span, recommended_usable, recommended_billed, rec_before),
                    actual=side(span, actual_usable, actual_billed, act_before),
                )
            )
    whole = slice(0, count)
    return ReadinessEvidence(
        since=since,
        until=until,
        cycles=len(cycles),
        observed_days=_observed_days(demand, step),
        min_days=config.readiness_min_days,
        sla_epsilon=config.max_shortfall_probability,
        recommended=side(whole, recommended_usable, recommended_billed, replay_start),
        actual=side(whole, actual_usable, actual_billed, start_desired),
        days=tuple(days),
    )


def _replay_start(first: RecordedCycle) -> int:
    """Replicas the replayed pool starts with: those the first cycle's policy saw."""
    return first.usable if first.recommended_usable is None else first.recommended_usable


def _slots(cycles: Sequence[RecordedCycle], step: dt.timedelta) -> list[int]:
    """Each cycle's slot on the interval grid from the first; a repeated slot (a cycle
    retried) keeps its last record."""
    if not cycles:
        return []
    origin = cycles[0].at
    slots = [round((cycle.at - origin) / step) for cycle in cycles]
    if any(later < earlier for earlier, later in itertools.pairwise(slots)):
        raise ValueError("recorded cycles must be given oldest first")
    return slots


def _observed_days(demand: np.ndarray, step: dt.timedelta) -> float:
    return float(np.isfinite(demand).sum()) * step / _DAY
