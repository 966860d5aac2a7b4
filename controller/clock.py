"""The one source of time for the control plane, so tests can drive it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    """Tells the current time; everything that needs "now" takes one of these."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware in UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that moves only when told to: for tests, backtests and demos."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, by: dt.timedelta) -> None:
        if by < dt.timedelta(0):
            raise ValueError("a clock cannot move backwards")
        self._now += by

    def set(self, to: dt.datetime) -> None:
        if to < self._now:
            raise ValueError("a clock cannot move backwards")
        self._now = to


class ScaledClock:
    """Time that runs `speed` times faster than the wall clock: it shows `start` when the wall
    clock shows `since` (Unix seconds). Processes given the same three values agree on the
    time, so an operator and its standby share the interval slots of an accelerated run."""

    def __init__(self, start: dt.datetime, speed: float, since: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs a timezone-aware start time")
        if speed <= 0:
            raise ValueError("a clock's speed must be positive")
        self.start = start
        self.speed = speed
        self.since = time.time() if since is None else since

    def now(self) -> dt.datetime:
        return self.at(time.time())

    def at(self, wall: float) -> dt.datetime:
        """What this clock shows when the wall clock shows `wall` (Unix seconds)."""
        return self.start + dt.timedelta(seconds=(wall - self.since) * self.speed)

    def wall(self, at: dt.datetime) -> float:
        """The wall-clock time (Unix seconds) at which this clock shows `at`."""
        return self.since + (at - self.start).total_seconds() / self.speed
