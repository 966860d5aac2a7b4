"""Reading trace tables and putting them on a regular grid, with one-line errors for bad input."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from controller.errors import BadUsage, HarmonyError
from controller.series import Aggregation

FloatArray = npt.NDArray[np.float64]
# The most rows a trace's grid may have: 11 days at 1 s, or 19 years at 10 min. A finer
# grid takes gigabytes (a --step of 1 ms over a month would be 2.7 billion rows).
MAX_GRID_STEPS = 1_000_000


def check_grid_size(span_seconds: float, step_seconds: float) -> None:
    """BadUsage when a grid over `span_seconds` at `step_seconds` has over MAX_GRID_STEPS rows."""
    steps = span_seconds / step_seconds
    if steps < MAX_GRID_STEPS:  # NaN or infinity fail too
        return
    finest = math.ceil(span_seconds / (MAX_GRID_STEPS - 1))
    raise BadUsage(
        f"a {step_seconds:g} s step makes {steps + 1:,.0f} grid steps over the trace's "
        f"{span_seconds / 86400:.1f} days, more than MAX_GRID_STEPS = {MAX_GRID_STEPS:,}; "
        f"pass a --step of {finest}s or more"
    )


def read_table(path: Path, **read_csv_args: object) -> pd.DataFrame:
    """A CSV (optionally gzip-compressed) or Parquet file as a DataFrame."""
    if not path.is_file():
        raise HarmonyError(f"{path}: no such file; check the path")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, **read_csv_args)  # type: ignore[call-overload]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise HarmonyError(
            f"{path}: not a readable CSV/Parquet table ({first_line}); fix the file"
        ) from None
    except (OSError, ValueError) as error:
        raise HarmonyError(f"{path}: cannot be read ({error}); fix the file") from None
    if frame.empty:
        raise HarmonyError(f"{path}: has no data rows; give a file with at least one row")
    return frame


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise HarmonyError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns))}"
        )


def numeric_column(frame: pd.DataFrame, column: str, path: Path) -> FloatArray:
    """The column as float64; empty cells become NaN (gaps), text is an error naming the row."""
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan)
    coerced = pd.to_numeric(raw, errors="coerce")
    bad = coerced.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise HarmonyError(
            f"{path}: column {column!r}, data row {position + 1}: value "
            f"{raw.iloc[position]!r} is not a number; fix the value or leave the cell empty "
            f"to mark a gap"
        )
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


def time_column_seconds(frame: pd.DataFrame, column: str, path: Path) -> FloatArray:
    """Unix seconds of a time column holding numbers (Unix seconds) or date-time text (UTC)."""
    raw = frame[column]
    if raw.isna().any():
        position = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise HarmonyError(
            f"{path}: column {column!r}, data row {position + 1}: empty time; "
            f"every row needs a time"
        )
    if pd.api.types.is_numeric_dtype(raw):
        return raw.to_numpy(dtype=np.float64)
    numbers = pd.to_numeric(raw, errors="coerce")
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True)
    elif numbers.notna().all():
        return numbers.to_numpy(dtype=np.float64)
    elif not np.isnan(numbers.iloc[0]):
        # Unix seconds written as text, or mixed with something that is not a time.
        position = int(np.flatnonzero(numbers.isna().to_numpy())[0])
        raise HarmonyError(
            f"{path}: column {column!r}, data row {position + 1}: {raw.iloc[position]!r} "
            f"is not a time; write Unix seconds like the first row, or ISO 8601 throughout"
        )
    else:
        parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
        if parsed.isna().any():
            position = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise HarmonyError(
                f"{path}: column {column!r}, data row {position + 1}: {raw.iloc[position]!r} "
                f"is not a time; use ISO 8601 (2024-01-31 12:00:00) or Unix seconds"
            )
    nanoseconds = parsed.astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    return nanoseconds.astype(np.float64) / 1e9


def require_increasing(seconds: FloatArray, path: Path, column: str) -> None:
    steps = np.diff(seconds)
    if (steps <= 0).any():
        position = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise HarmonyError(
            f"{path}: column {column!r}, data row {position + 1}: time goes backwards or "
            f"repeats; sort the rows by time and drop duplicates"
        )


def native_step_seconds(seconds: FloatArray) -> float:
    """The most common spacing of increasing times (the trace's own step)."""
    if seconds.size < 2:
        raise ValueError("a step needs at least two times")
    values, counts = np.unique(np.round(np.diff(seconds), 6), return_counts=True)
    return float(values[np.argmax(counts)])


def place_on_grid(
    seconds: FloatArray, values: FloatArray, step_seconds: float, path: Path, column: str
) -> tuple[dt.datetime, FloatArray]:
    """Rows of a regular time column on their grid; missing rows become NaN rows.

    The times must increase and lie on `first time + k * step`.
    """
    require_increasing(seconds, path, column)
    check_grid_size(seconds[-1] - seconds[0], step_seconds)
    offsets = (seconds - seconds[0]) / step_seconds
    index = np.round(offsets).astype(np.int64)
    off_grid = np.abs(offsets - index) > 1e-6
    if off_grid.any():
        position = int(np.flatnonzero(off_grid)[0])
        raise HarmonyError(
            f"{path}: column {column!r}, data row {position + 1}: time is off the "
            f"{step_seconds:g} s grid (irregular sampling); pass --step to resample "
            f"onto a regular grid"
        )
    grid = np.full((int(index[-1]) + 1, values.shape[1]), np.nan)
    grid[index] = values
    return seconds_to_datetime(seconds[0]), grid


def bin_on_grid(
    seconds: FloatArray,
    values: FloatArray,
    step_seconds: float,
    aggregations: Sequence[Aggregation],
) -> tuple[dt.datetime, FloatArray]:
    """Irregular samples into epoch-aligned bins `[k * step, (k + 1) * step)`.

    Per column: the mean (or sum) of the non-NaN samples in each bin; a bin with no sample
    of a column is NaN there (a gap, not a zero).
    """
    origin = np.floor(seconds.min() / step_seconds) * step_seconds
    check_grid_size(seconds.max() - origin, step_seconds)
    bins = np.floor((seconds - origin) / step_seconds).astype(np.int64)
    size = int(bins.max()) + 1
    grid = np.full((size, values.shape[1]), np.nan)
    for column, aggregation in enumerate(aggregations):
        present = ~np.isnan(values[:, column])
        counts = np.bincount(bins[present], minlength=size)
        totals = np.bincount(bins[present], weights=values[present, column], minlength=size)
        filled = counts > 0
        if aggregation is Aggregation.sum:
            grid[filled, column] = totals[filled]
        else:
            grid[filled, column] = totals[filled] / counts[filled]
    return seconds_to_datetime(origin), grid


def seconds_to_datetime(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(seconds), tz=dt.UTC)
