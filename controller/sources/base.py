"""What every metric source promises, and the result it hands back.

A source turns a time range into a `Series` of its indicators on a regular grid. What it
could not deliver is reported on the result as `DataIssue`s, never papered over: a missing
point stays NaN and the operator holds scaling while `SourceResult.complete` is false.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from controller.errors import HarmonyError
from controller.series import Indicator, Series


class SourceUnavailable(HarmonyError):
    """The source could not be reached, or kept failing after its retries."""


class IssueKind(StrEnum):
    missing = "missing"  # the query returned no series at all
    ambiguous = "ambiguous"  # the query returned several series where one was expected
    nan = "nan"  # the source returned NaN (or ±Inf) values
    short = "short"  # fewer points than asked: some grid points have no value
    stale = "stale"  # the newest value is older than the staleness limit


@dataclass(frozen=True)
class DataIssue:
    indicator: str
    kind: IssueKind
    detail: str

    def __str__(self) -> str:
        return f"{self.indicator}: {self.kind.value} ({self.detail})"


@dataclass
class SourceResult:
    """Values on the asked grid (NaN where absent) and every problem with them."""

    series: Series
    issues: list[DataIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every indicator has every point, none NaN and none stale."""
        return not self.issues

    def issues_of(self, indicator: str) -> list[DataIssue]:
        return [issue for issue in self.issues if issue.indicator == indicator]


class Source(Protocol):
    """A provider of indicator values over time (Prometheus, a replayed trace, ...).

    Implementations keep to these contracts so that the control loop can treat them alike.
    """

    @property
    def name(self) -> str:
        """A short human-readable name for logs and errors (e.g. the Prometheus URL)."""
        ...

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        """The indicators this source yields, in column order; fixed for its lifetime."""
        ...

    def fetch(self, start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> SourceResult:
        """Values of every indicator at `grid_start(start, step) + k * step` up to `end`.

        - `start` and `end` are timezone-aware, `start <= end`, `step > 0`; otherwise
          ValueError. The grid is aligned to multiples of `step` since the Unix epoch, so
          results of different sources and calls line up row for row.
        - The result has one row per grid point, one column per `indicators` entry, in
          that order, always: a point the source lacks is NaN and reported on the result
          as a `DataIssue` (missing, ambiguous, nan, short or stale). It is never zero.
        - Raises `SourceUnavailable` (a HarmonyError naming the source and the fix) when the
          source cannot answer at all after its retries, and HarmonyError when it rejects
          the request (a bad query, bad credentials): nothing partial is returned then.
        - Reads only: calling it twice for the same past range gives the same values,
          unless the source received late data in between.
        """
        ...

    def close(self) -> None:
        """Release connections; the source must not be used afterwards. Idempotent."""
        ...


def grid_start(start: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The first multiple of `step` since the epoch at or after `start`."""
    seconds = step.total_seconds()
    first = np.ceil(round(start.timestamp() / seconds, 9)) * seconds
    return dt.datetime.fromtimestamp(first, tz=dt.UTC)


def grid_rows(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> int:
    """How many grid points from `grid_start(start, step)` to `end`, both included."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if step <= dt.timedelta(0):
        raise ValueError("step must be positive")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    first = grid_start(start, step)
    return max(math.floor((end - first) / step + 1e-9) + 1, 0)


def assess(
    series: Series,
    stale_after: dt.timedelta,
    absent: frozenset[str] = frozenset(),
    ambiguous: frozenset[str] = frozenset(),
    nan_points: dict[str, int] | None = None,
) -> list[DataIssue]:
    """The issues of a fetched series: which indicators lack points, hold NaN, or went stale.

    `absent`: indicators with no series at all; `ambiguous`: with several; `nan_points`:
    how many points the source sent as NaN/Inf (they are NaN in `series` too).
    """
    issues: list[DataIssue] = []
    nan_points = nan_points or {}
    asked = len(series)
    for column, name in enumerate(series.names):
        if name in absent:
            issues.append(DataIssue(name, IssueKind.missing, "the query returned no series"))
            continue
        if name in ambiguous:
            issues.append(DataIssue(name, IssueKind.ambiguous, "the query returned several series"))
            continue
        values = series.values[:, column]
        present = np.flatnonzero(~np.isnan(values))
        if nan_points.get(name):
            issues.append(
                DataIssue(name, IssueKind.nan, f"{nan_points[name]} point(s) were NaN or Inf")
            )
        got = present.size + nan_points.get(name, 0)
        if got < asked:
            issues.append(DataIssue(name, IssueKind.short, f"{got} of {asked} points"))
        if asked and present.size:
            newest = series.start + series.step * int(present[-1])
            age = series.end - newest
            if age > stale_after:
                issues.append(
                    DataIssue(
                        name,
                        IssueKind.stale,
                        f"newest value at {newest:%Y-%m-%d %H:%M:%S} UTC, "
                        f"{age.total_seconds():g} s before the end",
                    )
                )
        elif asked:
            issues.append(DataIssue(name, IssueKind.stale, "no value in the range"))
    return issues


def fetch_recent(source: Source, now: dt.datetime, steps: int, step: dt.timedelta) -> SourceResult:
    """The last `steps` grid points at or before `now` (from a Clock): the control loop's window."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    seconds = step.total_seconds()
    last = dt.datetime.fromtimestamp(math.floor(now.timestamp() / seconds) * seconds, tz=dt.UTC)
    return source.fetch(last - step * (steps - 1), last, step)
