"""Searching a policy's knob for the cheapest value that meets the SLA.

The knob is searched, not listed: from a starting value the search brackets outward
(steps that double) towards less capacity while runs meet the SLA, or towards more while
they miss it, until it holds a value that meets the SLA next to one that misses it, or
reaches the knob's hard limit. It then bisects between the two until their replica-hours
differ by at most `hours_tolerance` (integer knobs: until they are adjacent; any knob:
until the two are `NARROWEST` apart in the search coordinate). A policy
that misses the SLA at the limit is reported as unable to meet it, with the value that
came closest (the lowest shortfall rate seen).

`more_capacity`/`log`/`integer`/`low`/`high` come from the knob's `KnobInfo`; the search
moves in a coordinate u in which a larger u always buys more capacity (log of the knob
for ratios and probabilities).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from decision.policies import KnobInfo

MAX_EVALUATIONS = 40
# Bisection also stops once the bracket is this narrow in the search coordinate (0.5% of a
# ratio knob, 0.005 of a fraction): replica-hours step with whole replicas, so two knob
# values a hair apart may still differ by more than the tolerance.
NARROWEST = 0.005


@dataclass(frozen=True)
class Score:
    """What one run at a knob value did on the period searched."""

    #: What the SLA bounds (shortfall rate, or late share of work under the queue SLA).
    violation: float
    replica_hours: float


@dataclass(frozen=True)
class SearchOutcome:
    """The cheapest knob meeting the SLA (`met`), else the closest one, and the path there."""

    knob: float
    met: bool
    at_limit: bool
    evaluations: dict[float, Score] = field(default_factory=dict)

    @property
    def score(self) -> Score:
        return self.evaluations[self.knob]

    def to_dict(self) -> dict[str, Any]:
        return {
            "knob": self.knob,
            "met": self.met,
            "at_limit": self.at_limit,
            "evaluations": [
                [knob, score.violation, score.replica_hours]
                for knob, score in self.evaluations.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchOutcome:
        evaluations = {float(k): Score(float(r), float(h)) for k, r, h in data["evaluations"]}
        return cls(float(data["knob"]), bool(data["met"]), bool(data["at_limit"]), evaluations)


class _Coordinates:
    def __init__(self, info: KnobInfo) -> None:
        self.info = info
        self.sign = 1.0 if info.more_capacity == "up" else -1.0
        ends = [self.to_u(info.low), self.to_u(info.high)]
        self.low_u, self.high_u = min(ends), max(ends)

    def to_u(self, knob: float) -> float:
        value = math.log(max(knob, 1e-300)) if self.info.log else knob
        return self.sign * value

    def to_knob(self, u: float) -> float:
        value = u * self.sign
        knob = math.exp(value) if self.info.log else value
        knob = min(max(knob, self.info.low), self.info.high)
        return float(round(knob)) if self.info.integer else knob

    def first_step(self) -> float:
        if self.info.log:
            return math.log(2.0)
        return 1.0 if self.info.integer else 0.1


def search_knob(
    info: KnobInfo,
    score: Callable[[float], Score],
    sla: float,
    *,
    start: float | None = None,
    hours_tolerance: float = 1.0,
) -> SearchOutcome:
    """The cheapest value of `info`'s knob whose run meets violation <= `sla`.

    `score(knob)` runs the policy at that knob; it is called at most once per value.
    """
    axis = _Coordinates(info)
    seen: dict[float, Score] = {}

    def meets(u: float) -> bool:
        knob = axis.to_knob(u)
        if knob not in seen:
            seen[knob] = score(knob)
        return seen[knob].violation <= sla

    u0 = min(max(axis.to_u(info.default if start is None else start), axis.low_u), axis.high_u)
    meets0 = meets(u0)
    step = axis.first_step()
    good: float | None = u0 if meets0 else None
    bad: float | None = None if meets0 else u0
    direction = -1.0 if meets0 else 1.0
    limit = axis.low_u if meets0 else axis.high_u
    u = u0
    while len(seen) < MAX_EVALUATIONS:
        if u == limit:
            break
        u = max(u + direction * step, limit) if direction < 0 else min(u + direction * step, limit)
        if meets(u):
            good = u
            if not meets0:
                break
        else:
            bad = u
            if meets0:
                break
        step *= 2
    if good is None:
        closest = min(seen, key=lambda k: (seen[k].violation, seen[k].replica_hours))
        return SearchOutcome(closest, met=False, at_limit=True, evaluations=seen)
    if bad is None:
        return SearchOutcome(axis.to_knob(good), met=True, at_limit=True, evaluations=seen)
    while len(seen) < MAX_EVALUATIONS:
        good_knob, bad_knob = axis.to_knob(good), axis.to_knob(bad)
        if seen[good_knob].replica_hours - seen[bad_knob].replica_hours <= hours_tolerance:
            break
        if abs(good - bad) < NARROWEST:
            break
        middle = (good + bad) / 2
        middle_knob = axis.to_knob(middle)
        if middle_knob in (good_knob, bad_knob):
            break
        if meets(middle):
            good = middle
        else:
            bad = middle
    cheapest = min(
        (k for k, s in seen.items() if s.violation <= sla),
        key=lambda k: (seen[k].replica_hours, k),
    )
    return SearchOutcome(cheapest, met=True, at_limit=False, evaluations=seen)
