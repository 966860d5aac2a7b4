"""`csv:PATH` traces and the one-line errors for bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.errors import HarmonyError
from controller.traces import TraceOptions, load_trace

WIDE = "timestamp,gpu_seconds,memory\n0,1,10\n60,2,11\n180,4,13\n"


def write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_wide_csv_with_a_missing_row(tmp_path: Path) -> None:
    path = write(tmp_path, WIDE)
    series = load_trace(f"csv:{path}", TraceOptions(demand_column="gpu_seconds"))
    assert series.step == dt.timedelta(minutes=1)
    assert series.start == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    np.testing.assert_array_equal(series.column("gpu_seconds"), [1, 2, np.nan, 4])
    assert series.levels == [1, 2] and series.demand_index == [0]


def test_long_parquet_with_iso_times(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "time": ["2024-05-01 00:00:00", "2024-05-01 00:00:00", "2024-05-01 00:05:00"] * 1,
            "name": ["qps", "cpu", "qps"],
            "value": [3.0, 0.5, 4.0],
        }
    )
    path = tmp_path / "long.parquet"
    frame.to_parquet(path)
    series = load_trace(f"csv:{path}", TraceOptions(demand_column="qps"))
    assert series.start == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert series.step == dt.timedelta(minutes=5)
    np.testing.assert_array_equal(series.column("qps"), [3.0, 4.0])
    np.testing.assert_array_equal(series.column("cpu"), [0.5, np.nan])


def test_no_time_column_uses_step_and_irregular_times_resample(tmp_path: Path) -> None:
    plain = write(tmp_path, "load\n1\n2\n3\n", "plain.csv")
    series = load_trace(
        f"csv:{plain}", TraceOptions(demand_column="load", step=dt.timedelta(seconds=30))
    )
    assert len(series) == 3 and series.step == dt.timedelta(seconds=30)
    irregular = write(tmp_path, "time,load\n0,1\n20,3\n70,5\n", "irregular.csv")
    binned = load_trace(
        f"csv:{irregular}", TraceOptions(demand_column="load", step=dt.timedelta(minutes=1))
    )
    np.testing.assert_array_equal(binned.column("load"), [2.0, 5.0])


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        (WIDE, TraceOptions(), r"export\.csv: say which column is the demand with --demand-column"),
        (
            WIDE,
            TraceOptions(demand_column="qps"),
            r"export\.csv: no column 'qps' for --demand-column; it has gpu_seconds, memory",
        ),
        (
            "timestamp,load\n0,1\n60,lots\n",
            TraceOptions(demand_column="load"),
            r"export\.csv: column 'load', data row 2: value 'lots' is not a number",
        ),
        (
            "timestamp,load\n0,1\n120,2\n60,3\n",
            TraceOptions(demand_column="load"),
            r"column 'timestamp', data row 3: time goes backwards or repeats; sort the rows",
        ),
        (
            "timestamp,load\n0,1\n60,2\n130,3\n",
            TraceOptions(demand_column="load"),
            r"data row 3: time is off the 60 s grid .*pass --step",
        ),
        (
            "timestamp,load\n0,1\nyesterday,2\n",
            TraceOptions(demand_column="load"),
            r"column 'timestamp', data row 2: 'yesterday' is not a time",
        ),
        (
            "load\n1\n2\n",
            TraceOptions(demand_column="load"),
            r"no time column .*pass --step",
        ),
        ("", TraceOptions(demand_column="load"), r"export\.csv: not a readable CSV"),
    ],
)
def test_bad_input_gives_one_line_naming_the_place_and_fix(
    tmp_path: Path, text: str, options: TraceOptions, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HarmonyError, match=message) as caught:
        load_trace(f"csv:{path}", options)
    assert "\n" not in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(HarmonyError, match=r"nothing\.csv: no such file; check the path"):
        load_trace(f"csv:{tmp_path / 'nothing.csv'}", TraceOptions(demand_column="load"))
