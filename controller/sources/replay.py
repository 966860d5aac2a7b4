"""A `Source` that replays a recorded `Series` as if it were live, up to a Clock's now.

The demo and the operator tests drive it with a `ManualClock`: values appear as the clock
moves past them, and a range reaching beyond now, or beyond the recording, comes back with
those points missing and reported, exactly as a live Prometheus would.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from controller.clock import Clock
from controller.series import Indicator, Series
from controller.sources.base import SourceResult, assess, grid_rows, grid_start


class TraceReplaySource:
    """Replays `series`, its first row shown at `anchor` (default: the row's own time).

    With an anchor, recorded time is shifted by `anchor - series.start`, so a 2018 trace can
    drive a clock that starts now. `fetch`'s step must be a whole multiple of the series'
    step: the recording is resampled (by the indicators' time aggregation) onto the step's
    epoch-aligned grid in replayed time when the step or the alignment differ.
    """

    def __init__(
        self,
        series: Series,
        clock: Clock,
        *,
        anchor: dt.datetime | None = None,
        stale_after: dt.timedelta | None = None,
    ) -> None:
        if anchor is not None and anchor.tzinfo is None:
            raise ValueError("anchor must be timezone-aware")
        self._recording = series
        self._clock = clock
        self._shift = (anchor - series.start) if anchor is not None else dt.timedelta(0)
        self._stale_after = stale_after
        # The recording in replayed time, per asked step, on that step's epoch-aligned grid.
        self._on_grid: dict[dt.timedelta, Series] = {}

    @property
    def name(self) -> str:
        return f"replay of {self._recording.name}"

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        return self._recording.indicators

    @property
    def shift(self) -> dt.timedelta:
        """Replayed time minus recorded time."""
        return self._shift

    def fetch(self, start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> SourceResult:
        rows = grid_rows(start, end, step)
        first = grid_start(start, step)
        recording = self._replayed(step)
        values = np.full((rows, len(self.indicators)), np.nan)
        # A row is visible once the clock has reached its time.
        wanted = first.timestamp() + step.total_seconds() * np.arange(rows)
        visible = wanted <= self._clock.now().timestamp()
        offset = round((first - recording.start) / step)
        index = offset + np.arange(rows)
        usable = visible & (index >= 0) & (index < len(recording))
        values[usable] = recording.values[index[usable]]
        series = Series(
            name=self.name,
            indicators=self.indicators,
            start=first,
            step=step,
            values=values,
            notes=[f"replayed from {self._recording.name}, shifted by {self._shift}"],
        )
        return SourceResult(series=series, issues=assess(series, self._stale_after or 2 * step))

    def close(self) -> None:
        """Nothing to release."""

    def _replayed(self, step: dt.timedelta) -> Series:
        if step not in self._on_grid:
            shifted = self._recording.with_values(
                self._recording.values, start=self._recording.start + self._shift
            )
            aligned = grid_start(shifted.start, shifted.step) == shifted.start
            self._on_grid[step] = (
                shifted if step == shifted.step and aligned else shifted.resample(step)
            )
        return self._on_grid[step]
