"""Resampling, gap filling and alignment of the series model (pure logic)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from controller.errors import HarmonyError
from controller.series import Aggregation, Indicator, Series, align

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
NAN = np.nan


def make(
    values: list[list[float]],
    start: dt.datetime = T0,
    step: dt.timedelta = MINUTE,
    names: tuple[str, str] = ("work", "util"),
) -> Series:
    return Series(
        name="test",
        indicators=(
            Indicator(names[0], level=1, demand=True, time_aggregation=Aggregation.sum),
            Indicator(names[1], level=2),
        ),
        start=start,
        step=step,
        values=np.array(values, dtype=float),
    )


def test_resample_sums_amounts_and_averages_levels_with_coverage_rules() -> None:
    series = make([[1, 10], [2, NAN], [3, 30], [4, 40], [NAN, NAN], [6, NAN]])
    coarse = series.resample(3 * MINUTE)
    assert coarse.step == 3 * MINUTE and coarse.start == T0
    # Bin 1: sum 6, mean of the two present. Bin 2: a missing amount makes the sum a gap;
    # one of three levels present is under half, so the mean is a gap too.
    np.testing.assert_array_equal(coarse.values, [[6, 20], [NAN, NAN]])
    assert coarse.notes[-1] == "resampled from 1 min to 3 min"


def test_resample_aligns_bins_to_the_epoch() -> None:
    series = make([[1, 1], [1, 2], [1, 3], [1, 4]], start=T0 + MINUTE)
    coarse = series.resample(2 * MINUTE)
    assert coarse.start == T0
    # Bins [0,2), [2,4), [4,6) minutes: the first and last hold one row of two.
    np.testing.assert_array_equal(coarse.values, [[NAN, 1], [2, 2.5], [NAN, 4]])


def test_resample_refuses_a_step_that_is_no_multiple() -> None:
    with pytest.raises(HarmonyError, match="whole multiple of 1 min"):
        make([[1, 1]]).resample(dt.timedelta(seconds=90))


def test_fill_gaps_interpolates_short_interior_gaps_only() -> None:
    series = make([[NAN, 0], [1, NAN], [NAN, NAN], [4, NAN], [5, NAN], [6, 50], [NAN, 60]])
    result = series.fill_gaps(2)
    np.testing.assert_array_equal(result.series.column("work"), [NAN, 1, 2.5, 4, 5, 6, NAN])
    np.testing.assert_array_equal(result.series.column("util"), [0, NAN, NAN, NAN, NAN, 50, 60])
    assert [(g.indicator, g.start, g.length) for g in result.filled] == [("work", 2, 1)]
    assert {(g.indicator, g.start, g.length) for g in result.remaining} == {
        ("work", 0, 1),
        ("util", 1, 4),
        ("work", 6, 1),
    }
    assert "at most 2 step(s) (2 min)" in result.series.notes[-1]
    assert np.isnan(series.values).sum() == 7  # the original is untouched


def test_gaps_report_runs_with_their_times() -> None:
    gaps = make([[1, NAN], [NAN, NAN], [NAN, 3]]).gaps()
    assert [(g.indicator, g.start, g.length, g.start_time) for g in gaps] == [
        ("util", 0, 2, T0),
        ("work", 1, 2, T0 + MINUTE),
    ]


def test_align_puts_sources_on_one_grid() -> None:
    fine = make([[1, 1]] * 6, names=("a", "b"))  # 00:00 .. 00:05 at 1 min
    coarse = make([[10, 20]] * 3, start=T0 + 2 * MINUTE, step=2 * MINUTE, names=("c", "d"))
    both = align([fine, coarse], name="pool")
    assert both.step == 2 * MINUTE and both.names == ["a", "b", "c", "d"]
    assert both.start == T0 + 2 * MINUTE and len(both) == 2
    np.testing.assert_array_equal(both.values, [[2, 1, 10, 20], [2, 1, 10, 20]])
    union = align([fine, coarse], name="pool", span="union")
    assert union.start == T0 and len(union) == 4
    np.testing.assert_array_equal(union.values[0], [2, 1, NAN, NAN])
    np.testing.assert_array_equal(union.values[3], [NAN, NAN, 10, 20])
    with pytest.raises(HarmonyError, match="repeat across sources"):
        align([fine, fine], name="pool")
    late = make([[1, 1]], start=T0 + dt.timedelta(days=1), names=("e", "f"))
    with pytest.raises(HarmonyError, match="do not overlap"):
        align([fine, late], name="pool")


def test_with_values_keeps_notes_and_slice_moves_start() -> None:
    series = make([[1, 2], [3, 4], [5, 6]])
    assert series.slice(1).start == T0 + MINUTE
    assert series.with_values(series.values * 2, note="doubled").notes == ["doubled"]
