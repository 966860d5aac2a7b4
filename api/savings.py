"""Replica-hours a pool used against the static-peak and reactive baselines.

Each recorded decision stands for the step it decided: its weight is the time to the
next decision, at most one step (`inputs.step_seconds`), so a gap in the records counts
for none of the three figures. The demand of the step decided at t is what the next
decision observed (`inputs.demand`: the operator records the demand seen up to t-1).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from api.schemas.pools import Baseline, SavingsOut, StaticPeakBaseline

FloatArray = npt.NDArray[np.float64]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class RecordedDecision:
    at: dt.datetime
    replicas_now: int
    inputs: dict[str, Any]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _vector(value: Any) -> FloatArray:
    items = value if isinstance(value, list) else [value]
    return np.asarray([_number(item) for item in items], dtype=np.float64)


def duration_seconds(value: Any) -> float | None:
    """`600`, `"600s"`, `"10m"`, `"1h"` → seconds; None when absent or unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return None


def _spec_value(spec: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in spec:
            return spec[name]
    return None


def compute_savings(
    rows: Sequence[RecordedDecision],
    pool_spec: dict[str, Any],
    since: dt.datetime,
    until: dt.datetime,
) -> SavingsOut:
    notes: list[str] = []
    if not rows:
        empty = StaticPeakBaseline(
            replicas=None,
            peak_demand=None,
            replica_hours=None,
            saved_replica_hours=None,
            saved_fraction=None,
        )
        return SavingsOut(
            since=since,
            until=until,
            decisions=0,
            hours_covered=0.0,
            covered_from=None,
            covered_until=None,
            used_replica_hours=0.0,
            static_peak=empty,
            reactive=None,
            notes=["no decisions recorded in this range"],
        )
    step = _step_seconds(rows)
    times = np.asarray([row.at.timestamp() for row in rows])
    gaps = np.append(np.diff(times), step)
    weights_hours = np.clip(gaps, 0.0, step) / 3600.0
    used = float(np.dot([row.replicas_now for row in rows], weights_hours))
    hours = float(weights_hours.sum())

    capacity = _vector(rows[-1].inputs.get("capacity_per_replica"))
    demand = np.vstack([_demand_row(row, len(capacity)) for row in rows])
    static = _static_peak(demand, capacity, hours, used, notes)
    reactive = _reactive(rows, demand, capacity, step, weights_hours, pool_spec, used, notes)
    return SavingsOut(
        since=since,
        until=until,
        decisions=len(rows),
        hours_covered=hours,
        covered_from=rows[0].at,
        covered_until=rows[-1].at + dt.timedelta(seconds=step),
        used_replica_hours=used,
        static_peak=static,
        reactive=reactive,
        notes=notes,
    )


def _step_seconds(rows: Sequence[RecordedDecision]) -> float:
    recorded = _number(rows[-1].inputs.get("step_seconds"))
    if math.isfinite(recorded) and recorded > 0:
        return recorded
    if len(rows) > 1:
        gaps = np.diff([row.at.timestamp() for row in rows])
        positive = gaps[gaps > 0]
        if len(positive):
            return float(np.median(positive))
    return 60.0


def _demand_row(row: RecordedDecision, width: int) -> FloatArray:
    values = _vector(row.inputs.get("demand"))
    if len(values) != width:
        return np.full(width, np.nan)
    return values


def _saved(baseline_hours: float | None, used: float) -> tuple[float | None, float | None]:
    if baseline_hours is None:
        return None, None
    saved = baseline_hours - used
    return saved, (saved / baseline_hours if baseline_hours > 0 else None)


def _static_peak(
    demand: FloatArray, capacity: FloatArray, hours: float, used: float, notes: list[str]
) -> StaticPeakBaseline:
    usable = np.isfinite(capacity).all() and (capacity > 0).all()
    observed = np.isfinite(demand).all(axis=1)
    if not usable or not observed.any():
        notes.append(
            "static peak: the decisions record no demand or capacity_per_replica in inputs"
        )
        return StaticPeakBaseline(
            replicas=None,
            peak_demand=None,
            replica_hours=None,
            saved_replica_hours=None,
            saved_fraction=None,
        )
    peaks = demand[observed].max(axis=0)
    replicas = int(np.ceil(np.max(peaks / capacity) - 1e-9))
    replica_hours = replicas * hours
    saved, fraction = _saved(replica_hours, used)
    return StaticPeakBaseline(
        replicas=replicas,
        peak_demand=float(peaks.max()) if len(peaks) == 1 else float(np.max(peaks / capacity)),
        replica_hours=replica_hours,
        saved_replica_hours=saved,
        saved_fraction=fraction,
    )


def _reactive(
    rows: Sequence[RecordedDecision],
    demand: FloatArray,
    capacity: FloatArray,
    step: float,
    weights_hours: FloatArray,
    pool_spec: dict[str, Any],
    used: float,
    notes: list[str],
) -> Baseline | None:
    if not (np.isfinite(capacity).all() and (capacity > 0).all()) or not np.isfinite(demand).any():
        notes.append("reactive: the decisions record no demand or capacity_per_replica in inputs")
        return None
    try:
        billed = replay_reactive(rows, demand, capacity, step, pool_spec, notes)
    except ImportError as error:
        notes.append(f"reactive: the reactive policy is not available ({error})")
        return None
    replica_hours = float(np.dot(billed, weights_hours))
    saved, fraction = _saved(replica_hours, used)
    return Baseline(replica_hours=replica_hours, saved_replica_hours=saved, saved_fraction=fraction)


def replay_reactive(
    rows: Sequence[RecordedDecision],
    demand: FloatArray,
    capacity: FloatArray,
    step: float,
    pool_spec: dict[str, Any],
    notes: list[str],
) -> npt.NDArray[np.int64]:
    """Replicas billed at each recorded decision had the reactive policy run the pool."""
    from controller.backtest.replay import replay
    from controller.backtest.scenario import Scenario
    from decision.policies import make_policy
    from decision.types import PoolSpec

    start = rows[0].at
    grid = np.rint([(row.at - start).total_seconds() / step for row in rows]).astype(np.int64)
    # Row g of the scenario holds the demand the decision at grid step g observed (that of
    # step g-1); the scenario decides rows 1..n, row r standing for the decision at g = r-1.
    rows_demand = np.full((int(grid[-1]) + 2, len(capacity)), np.nan)
    rows_demand[grid] = demand
    delay = duration_seconds(
        _spec_value(pool_spec, "provisioningDelaySeconds", "provisioningDelay")
    )
    if delay is None:
        notes.append("reactive: the pool spec names no provisioningDelay; replayed with none")
        delay = 0.0
    min_spec = _spec_value(pool_spec, "minReplicas")
    min_replicas = min_spec if isinstance(min_spec, int) and min_spec >= 0 else 0
    peak_needed = int(np.ceil(np.nanmax(demand / capacity))) if np.isfinite(demand).any() else 1
    max_spec = _spec_value(pool_spec, "maxReplicas")
    max_replicas = (
        int(max_spec)
        if isinstance(max_spec, int) and max_spec >= max(min_replicas, 1)
        else max(2 * peak_needed, max(row.replicas_now for row in rows), min_replicas, 1)
    )
    target = _number(rows[-1].inputs.get("target_utilization"))
    spec = PoolSpec(
        capacity_per_replica=float(capacity[0]) if len(capacity) == 1 else tuple(capacity),
        target_utilization=target if 0 < target <= 1 else 1.0,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        provisioning_delay_steps=math.ceil(delay / step - 1e-9),
        step_seconds=step,
    )
    scenario = Scenario(
        name="savings",
        demand=rows_demand,
        start=start - dt.timedelta(seconds=step),
        step=dt.timedelta(seconds=step),
        decide_from=1,
        spec=spec,
        initial_replicas=max(rows[0].replicas_now, 0),
    )
    trace = replay(scenario, make_policy("reactive", spec))
    return trace.billed[grid]
