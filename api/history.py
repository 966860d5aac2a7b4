"""Demand and capacity over time from the recorded decisions, bucketed for a chart."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from api.schemas.pools import HistoryOut


def _scalar(value: Any) -> float:
    # Several demand indicators: the chart shows the first (the one capacity is sized by).
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _bucket_peaks(values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    return np.asarray(
        [
            np.nanmax(values[a : b + 1]) if np.isfinite(values[a : b + 1]).any() else np.nan
            for a, b in zip(first, last, strict=True)
        ]
    )


def build_history(
    rows: Sequence[tuple[dt.datetime, int, int, dict[str, Any]]],
    since: dt.datetime,
    until: dt.datetime,
    max_points: int,
) -> HistoryOut:
    """`rows` are (cycle_at, replicas_now, replicas_wanted, inputs), oldest first."""
    times = np.asarray([row[0].timestamp() for row in rows], dtype=np.float64)
    demand = np.asarray([_scalar(row[3].get("demand")) for row in rows])
    backlog = np.asarray([_scalar(row[3].get("backlog")) for row in rows])
    capacity = np.asarray([_scalar(row[3].get("capacity_per_replica")) for row in rows])
    usable_replicas = np.asarray(
        [
            row[3]["replicas_usable"] if isinstance(row[3].get("replicas_usable"), int) else row[1]
            for row in rows
        ],
        dtype=np.float64,
    )
    usable = usable_replicas * capacity
    now = np.asarray([row[1] for row in rows], dtype=np.int64)
    wanted = np.asarray([row[2] for row in rows], dtype=np.int64)
    bucket_seconds: float | None = None
    if len(rows) > max_points:
        bucket_seconds = (until - since).total_seconds() / max_points
        bucket = ((times - since.timestamp()) // bucket_seconds).astype(np.int64)
        # the last row of each bucket carries the replicas; the demand is the bucket's peak
        last = np.flatnonzero(np.append(np.diff(bucket) != 0, True))
        first = np.concatenate(([0], last[:-1] + 1))
        times, demand, backlog, usable, now, wanted = (
            times[last],
            _bucket_peaks(demand, first, last),
            _bucket_peaks(backlog, first, last),
            usable[last],
            now[last],
            wanted[last],
        )
    return HistoryOut(
        since=since,
        until=until,
        times=[dt.datetime.fromtimestamp(t, dt.UTC) for t in times],
        demand=[None if math.isnan(v) else float(v) for v in demand],
        backlog=[None if math.isnan(v) else float(v) for v in backlog]
        if np.isfinite(backlog).any()
        else None,
        usable_capacity=[None if math.isnan(v) else float(v) for v in usable],
        replicas_now=[int(v) for v in now],
        replicas_wanted=[int(v) for v in wanted],
        bucket_seconds=bucket_seconds,
    )
