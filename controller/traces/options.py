"""The knobs every trace loader understands; the CLI builds one from its trace options."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class TraceOptions:
    """How to read a trace.

    step: the grid step. Traces with timestamps are resampled to it (it must be a multiple
        of the trace's own step; event traces such as `gentd26:requests` are binned at it);
        for a CSV without a time column it is the spacing of the rows. None: the trace's own.
    demand_column: the indicator that is demand. Required for `csv:` files; for the built-in
        traces it overrides their demand indicator.
    scale: factor applied to the demand (and, for `gentd26:requests`, to the request count),
        to turn a trace into a pool of a realistic size.
    time_column: the time column of a `csv:` file (default: the first of `timestamp`,
        `time`, `date`, `datetime`, `ds` present; none: rows are `step` apart).
    raw_counters: keep cumulative counters (fisher's `container_cpu_usage_seconds_total`)
        as they are instead of turning them into rates, as the HARMONY paper's protocol does.
    max_fill_steps: interior gaps up to this many steps are linearly interpolated (0: none);
        longer gaps stay NaN. What was filled is written to the series' notes.
    """

    step: dt.timedelta | None = None
    demand_column: str | None = None
    scale: float = 1.0
    time_column: str | None = None
    raw_counters: bool = False
    max_fill_steps: int = 0

    def __post_init__(self) -> None:
        if self.step is not None and self.step <= dt.timedelta(0):
            raise ValueError("TraceOptions.step must be positive")
        if not self.scale > 0:
            raise ValueError("TraceOptions.scale must be positive")
        if self.max_fill_steps < 0:
            raise ValueError("TraceOptions.max_fill_steps must be >= 0")
