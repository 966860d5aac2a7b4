"""`csv:PATH`: a user's own export, CSV (optionally .gz) or Parquet, wide or long.

Wide: one column per indicator, plus optionally a time column. Long: exactly a time
column, a name column (`name`, `indicator` or `metric`) and a `value` column; it is
pivoted to wide. The time column is `TraceOptions.time_column` or the first of
`timestamp`, `time`, `date`, `datetime`, `ds` present; its values are Unix seconds or
ISO 8601 text (UTC when no zone is given). Times must increase. Without `--step`, they must
lie on a regular grid (missing rows become gaps); with `--step`, rows are averaged into
bins of that step. Without a time column, rows are `--step` apart from 1970-01-01 UTC.

`--demand-column` names the demand (level 1); every other column is level 2, averaged
when rolled up. Empty cells are gaps; text in a value cell is an error naming the row.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from controller.errors import HarmonyError
from controller.series import Aggregation, Indicator, Series
from controller.traces.frames import (
    bin_on_grid,
    native_step_seconds,
    numeric_column,
    place_on_grid,
    read_table,
    require_increasing,
    time_column_seconds,
)
from controller.traces.options import TraceOptions
from controller.traces.registry import TraceKind, register

TIME_COLUMNS = ("timestamp", "time", "date", "datetime", "ds")
NAME_COLUMNS = ("name", "indicator", "metric")


def load_csv(argument: str, options: TraceOptions) -> Series:
    path = Path(argument).expanduser()
    frame = read_table(path)
    frame.columns = [str(column) for column in frame.columns]
    time_column = _time_column(frame, path, options)
    frame = _pivot_long(frame, path, time_column)
    names = [column for column in frame.columns if column != time_column]
    demand = options.demand_column
    if demand is None:
        raise HarmonyError(
            f"{path}: say which column is the demand with --demand-column "
            f"(one of {', '.join(names)})"
        )
    if demand not in names:
        raise HarmonyError(
            f"{path}: no column {demand!r} for --demand-column; it has {', '.join(names)}"
        )
    if not names:
        raise HarmonyError(f"{path}: no value columns besides the time; add indicator columns")
    values = np.column_stack([numeric_column(frame, name, path) for name in names])
    indicators = tuple(
        Indicator(name, level=1 if name == demand else 2, demand=name == demand) for name in names
    )
    notes = [f"{path.name}: {len(frame)} rows, {len(names)} indicators"]
    if time_column is None:
        if options.step is None:
            raise HarmonyError(
                f"{path}: no time column ({', '.join(TIME_COLUMNS)}); pass --step to give the "
                f"spacing of the rows, or --time-column to name the time column"
            )
        start, step = dt.datetime.fromtimestamp(0, tz=dt.UTC), options.step
        notes.append(f"no time column: rows {step} apart from 1970-01-01 UTC")
    else:
        seconds = time_column_seconds(frame, time_column, path)
        require_increasing(seconds, path, time_column)
        if options.step is not None:
            step = options.step
            start, values = bin_on_grid(
                seconds, values, step.total_seconds(), [Aggregation.mean] * len(names)
            )
            notes.append(f"rows averaged into {step} bins")
        elif len(seconds) < 2:
            raise HarmonyError(f"{path}: one row cannot show a step; pass --step")
        else:
            step = dt.timedelta(seconds=native_step_seconds(seconds))
            start, values = place_on_grid(seconds, values, step.total_seconds(), path, time_column)
    return Series(
        name=f"csv:{path.name}",
        indicators=indicators,
        start=start,
        step=step,
        values=values,
        notes=notes,
    )


def _time_column(frame: pd.DataFrame, path: Path, options: TraceOptions) -> str | None:
    if options.time_column is not None:
        if options.time_column not in frame.columns:
            raise HarmonyError(
                f"{path}: no column {options.time_column!r} for --time-column; "
                f"it has {', '.join(frame.columns)}"
            )
        return options.time_column
    lowered = {column.lower(): column for column in frame.columns}
    return next((lowered[name] for name in TIME_COLUMNS if name in lowered), None)


def _pivot_long(frame: pd.DataFrame, path: Path, time_column: str | None) -> pd.DataFrame:
    rest = [column for column in frame.columns if column != time_column]
    name_column = next((c for c in rest if c.lower() in NAME_COLUMNS), None)
    value_column = next((c for c in rest if c.lower() == "value"), None)
    if len(rest) != 2 or name_column is None or value_column is None:
        return frame
    if time_column is None:
        raise HarmonyError(
            f"{path}: a long table ({name_column}, {value_column}) needs a time column; "
            f"add one or name it with --time-column"
        )
    duplicated = frame.duplicated([time_column, name_column])
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
        raise HarmonyError(
            f"{path}: data row {row}: a second value for {frame[name_column].iloc[row - 1]!r} "
            f"at the same time; keep one value per indicator and time"
        )
    wide = frame.pivot(index=time_column, columns=name_column, values=value_column)
    wide.columns = [str(column) for column in wide.columns]
    return wide.reset_index()


register(
    TraceKind(
        prefix="csv",
        usage="csv:PATH (CSV or Parquet, with --demand-column)",
        summary="your own export: wide or long table, with or without a time column",
        loader=load_csv,
        bins_at_step=True,
    )
)
