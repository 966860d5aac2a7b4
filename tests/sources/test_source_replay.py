from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np

from controller.clock import ManualClock
from controller.series import Series
from controller.sources import (
    IssueKind,
    TraceReplaySource,
    fetch_recent,
    grid_rows,
    grid_start,
)
from tests.traces.conftest import cached_trace  # noqa: F401  (fixture)

STEP = dt.timedelta(minutes=10)


def test_replay_shows_only_what_the_clock_has_reached(
    cached_trace: Callable[[str], Series],  # noqa: F811
) -> None:
    trace = cached_trace("fisher:container1")
    clock = ManualClock(trace.start + STEP * 10)
    replay = TraceReplaySource(trace, clock)
    result = replay.fetch(trace.start, trace.start + STEP * 19, STEP)
    assert len(result.series) == 20
    np.testing.assert_array_equal(result.series.values[:11], trace.values[:11])
    assert np.isnan(result.series.values[11:]).all()
    load_issues = {issue.kind for issue in result.issues_of("load")}
    assert load_issues == {IssueKind.short, IssueKind.stale}

    clock.advance(STEP * 9)
    caught_up = replay.fetch(trace.start, trace.start + STEP * 19, STEP)
    np.testing.assert_array_equal(caught_up.series.column("load"), trace.column("load")[:20])
    assert caught_up.issues_of("load") == []
    # The counter rate's first row is a gap in the trace itself, and is reported.
    assert {i.kind for i in caught_up.issues} == {IssueKind.short}


def test_anchor_moves_an_old_trace_to_the_clock_and_steps_resample(
    cached_trace: Callable[[str], Series],  # noqa: F811
) -> None:
    trace = cached_trace("gentd26:requests")
    anchor = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    clock = ManualClock(anchor + dt.timedelta(days=2))
    replay = TraceReplaySource(trace, clock, anchor=anchor)
    hour = dt.timedelta(hours=1)
    result = replay.fetch(anchor + dt.timedelta(days=1), clock.now(), hour)
    assert result.complete
    shift = anchor - trace.start
    assert replay.shift == shift
    # Bin [anchor + 1 day, + 1 h) in replayed time holds recorded minutes
    # [trace.start + 1 day, + 1 h): their sum, as gpu_seconds are amounts per step.
    first_minute = round(dt.timedelta(days=1) / trace.step)
    expected = trace.values[first_minute : first_minute + 60].sum(axis=0)
    np.testing.assert_allclose(result.series.values[0], expected)
    total = trace.values[first_minute : first_minute + 60 * len(result.series)].sum(axis=0)
    np.testing.assert_allclose(result.series.values.sum(axis=0), total)


def test_grid_start_rounds_up_to_the_step() -> None:
    moment = dt.datetime(2024, 1, 1, 12, 3, 10, tzinfo=dt.UTC)
    assert grid_start(moment, dt.timedelta(minutes=5)) == moment.replace(minute=5, second=0)
    exact = moment.replace(minute=0, second=0)
    assert grid_start(exact, dt.timedelta(hours=1)) == exact


def test_grid_rows_counts_both_ends_and_nothing_before_the_first_point() -> None:
    moment = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    minute = dt.timedelta(minutes=1)
    assert grid_rows(moment, moment + 10 * minute, minute) == 11
    assert (
        grid_rows(moment + dt.timedelta(seconds=10), moment + dt.timedelta(seconds=40), minute) == 0
    )


def test_fetch_recent_is_the_window_ending_at_the_clock(
    cached_trace: Callable[[str], Series],  # noqa: F811
) -> None:
    trace = cached_trace("fisher:container1")
    clock = ManualClock(trace.start + STEP * 50 + dt.timedelta(minutes=3))
    window = fetch_recent(TraceReplaySource(trace, clock), clock.now(), 12, STEP)
    assert window.series.end == trace.start + STEP * 50 and len(window.series) == 12
    np.testing.assert_array_equal(window.series.values, trace.values[39:51])
    assert window.complete
