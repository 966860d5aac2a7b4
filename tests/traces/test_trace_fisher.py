from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.errors import HarmonyError
from controller.series import Series
from controller.traces import TraceOptions, load_trace
from controller.traces.fisher import COUNTER, PAPER_LEVELS


def test_container1_has_the_papers_indicators_levels_and_values(
    cached_trace: Callable[[str], Series], shared_data: Path
) -> None:
    series = cached_trace("fisher:container1")
    raw = pd.read_csv(shared_data / "fisher" / "container1.csv.gz")
    assert len(series) == len(raw) == 4464
    assert series.start == dt.datetime(2018, 7, 24, tzinfo=dt.UTC)
    assert series.step == dt.timedelta(minutes=10)
    assert series.levels == list(np.load(shared_data / "fisher" / "level.npy")[:11])
    assert series.levels == PAPER_LEVELS
    assert [series.names[i] for i in series.demand_index] == ["load"]
    np.testing.assert_array_equal(series.column("load"), raw["load"].to_numpy())
    np.testing.assert_array_equal(series.column("cpu.busy"), raw["cpu.busy"].to_numpy())
    rate = series.column(f"{COUNTER}:rate")
    increase = np.diff(raw[COUNTER].to_numpy())
    expected = np.where(increase < 0, np.nan, increase / 600.0)
    np.testing.assert_allclose(rate[1:], expected)
    assert np.isnan(rate[0])
    assert any("rate" in note for note in series.notes)


def test_raw_counters_and_a_coarser_step(shared_data: Path) -> None:
    series = load_trace(
        "fisher:container3", TraceOptions(raw_counters=True, step=dt.timedelta(hours=1))
    )
    raw = pd.read_csv(shared_data / "fisher" / "container3.csv.gz", parse_dates=["date"])
    assert COUNTER in series.names
    assert series.step == dt.timedelta(hours=1)
    # container3 starts at 15:10, so the first hour holds 5 of 6 rows: still a mean.
    assert series.start == dt.datetime(2018, 7, 27, 15, tzinfo=dt.UTC)
    hourly = raw.set_index("date")["load"].resample("1h").mean()
    np.testing.assert_allclose(series.column("load"), hourly.to_numpy())


@pytest.mark.parametrize("spec", ["fisher:container11", "fisher:box1", "fisher:"])
def test_unknown_container_names_the_valid_ones(spec: str) -> None:
    with pytest.raises(HarmonyError, match="fisher:container"):
        load_trace(spec)
