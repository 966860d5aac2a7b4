"""The one source of time for the control plane, so tests can drive it."""

from __future__ import annotations

import datetime as dt
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
