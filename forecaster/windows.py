"""Windows of a series: scaling, calendar features, chronological splits.

A window is `context_length` rows of context followed by `horizon` rows to predict.
Windows are kept as start indices into one array rather than as copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
# 1970-01-01 was a Thursday; shifting by 3 days puts Monday 00:00 at phase 0.
_WEEK_OFFSET = 3 * SECONDS_PER_DAY
CALENDAR_FEATURES = 4


@dataclass(frozen=True)
class Scaler:
    """Per-indicator standardisation fitted on training rows only (NaN ignored)."""

    mean: FloatArray
    scale: FloatArray

    @classmethod
    def fit(cls, values: FloatArray) -> Scaler:
        observed = np.isfinite(values)
        counts = observed.sum(axis=0)
        if np.any(counts == 0):
            empty = np.flatnonzero(counts == 0).tolist()
            raise ValueError(f"indicator column(s) {empty} have no observed value in training")
        filled = np.where(observed, values, 0.0)
        mean = filled.sum(axis=0) / counts
        variance = (np.where(observed, values - mean, 0.0) ** 2).sum(axis=0) / counts
        std = np.sqrt(variance)
        # A constant indicator keeps unit scale so that it stays constant after scaling.
        floor = 1e-6 * np.maximum(np.abs(mean), 1.0)
        scale = np.where(std > floor, std, np.maximum(np.abs(mean), 1.0))
        return cls(mean=mean.astype(np.float64), scale=scale.astype(np.float64))

    def transform(self, values: FloatArray) -> FloatArray:
        return (values - self.mean) / self.scale

    def inverse(self, values: FloatArray) -> FloatArray:
        return values * self.scale + self.mean


def calendar_features(timestamps: FloatArray) -> FloatArray:
    """`[..., 4]`: sin/cos of the hour of day and of the day of week (UTC)."""
    day_phase = 2 * np.pi * (np.mod(timestamps, SECONDS_PER_DAY) / SECONDS_PER_DAY)
    week_phase = (
        2 * np.pi * (np.mod(timestamps - _WEEK_OFFSET, SECONDS_PER_WEEK) / SECONDS_PER_WEEK)
    )
    return np.stack(
        [np.sin(day_phase), np.cos(day_phase), np.sin(week_phase), np.cos(week_phase)], axis=-1
    )


def window_timestamps(
    context_end_timestamps: FloatArray, context_length: int, horizon: int, step_seconds: float
) -> FloatArray:
    """`[B, L + H]` unix seconds of every context and horizon row of each window."""
    offsets = np.arange(-context_length + 1, horizon + 1, dtype=np.float64) * step_seconds
    return np.asarray(context_end_timestamps, dtype=np.float64)[:, None] + offsets[None, :]


def infer_step_seconds(timestamps: FloatArray) -> float:
    """The grid step, which must be regular (a gap in time is a NaN row, not a jump)."""
    if timestamps.shape[0] < 2:
        raise ValueError("need at least two timestamps to know the step")
    steps = np.diff(timestamps)
    step = float(np.median(steps))
    if step <= 0 or not np.allclose(steps, step, rtol=1e-6, atol=1e-3):
        bad = int(np.flatnonzero(~np.isclose(steps, step, rtol=1e-6, atol=1e-3))[0])
        raise ValueError(
            f"timestamps are not on a regular grid: row {bad + 1} is {steps[bad]:.0f} s after "
            f"row {bad}, the step is {step:.0f} s; resample the series first"
        )
    return step


@dataclass(frozen=True)
class WindowSplit:
    """Start indices of training and validation windows (targets fully observed)."""

    train_starts: IntArray
    validation_starts: IntArray
    train_rows: int


def split_windows(
    values: FloatArray, context_length: int, horizon: int, validation_fraction: float
) -> WindowSplit:
    """Chronological split; validation windows start `context_length` rows before the border.

    A window starting at s uses rows [s, s + L) as context and [s + L, s + L + H) as
    target. Windows whose target has a gap are left out (the context may have gaps).
    """
    rows = values.shape[0]
    train_rows = round(rows * (1.0 - validation_fraction))
    window = context_length + horizon
    if train_rows < window + 1 or rows - train_rows < horizon:
        raise ValueError(
            f"series of {rows} rows is too short for context {context_length} + horizon "
            f"{horizon} with a {validation_fraction:.0%} validation part; "
            f"need at least {int((window + 1) / (1 - validation_fraction)) + horizon} rows"
        )
    target_ok = np.isfinite(values).all(axis=1)
    # ok_run[i]: rows i..i+H-1 all observed.
    cumulative = np.concatenate([[0], np.cumsum(~target_ok)])
    starts = np.arange(0, rows - window + 1)
    target_begin = starts + context_length
    complete = (cumulative[target_begin + horizon] - cumulative[target_begin]) == 0
    in_train = target_begin + horizon <= train_rows
    in_validation = target_begin >= train_rows
    return WindowSplit(
        train_starts=starts[complete & in_train].astype(np.int64),
        validation_starts=starts[complete & in_validation].astype(np.int64),
        train_rows=train_rows,
    )
