"""`fisher:containerN`: the HARMONY paper's released data, 10 containers, 10-minute rows.

All 11 indicators in the CSV's column order with the paper's hierarchy levels (`level.npy`):
`load` is level 1 and the demand; CPU and memory are level 2; block I/O, TCP and network
are level 3. Timestamps carry no zone and are read as UTC.

`container_cpu_usage_seconds_total` is a cumulative counter, so by default it is offered as
its rate, `container_cpu_usage_seconds_total:rate` (counter units per second between
consecutive rows, as Prometheus' `rate()` would give). A decrease of the counter (a reset or
a glitch in the export) makes that step a gap rather than a spike, and the first row is a gap
(no previous value). `TraceOptions.raw_counters` keeps the raw counter, as the paper did.
Missing rows of the 10-minute grid become gaps.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from controller.errors import HarmonyError
from controller.series import Aggregation, Indicator, Series
from controller.traces.frames import (
    numeric_column,
    place_on_grid,
    read_table,
    require_columns,
    time_column_seconds,
)
from controller.traces.options import TraceOptions
from controller.traces.paths import trace_file
from controller.traces.registry import TraceKind, register

CONTAINERS = range(1, 11)
STEP = dt.timedelta(minutes=10)
COUNTER = "container_cpu_usage_seconds_total"

_SUM, _MEAN = Aggregation.sum, Aggregation.mean
# name, unit, paper level, aggregation across containers; CSV column order.
COLUMNS: tuple[tuple[str, str, int, Aggregation], ...] = (
    ("load", "load", 1, _SUM),
    ("blkio.throttle.io_service_bytes_Async", "bytes", 3, _SUM),
    ("blkio.throttle.io_service_bytes_Read", "bytes", 3, _SUM),
    (COUNTER, "counter", 2, _SUM),
    ("container_memory_active_file", "bytes", 2, _SUM),
    ("container_memory_hierarchical_memory_limit", "bytes", 2, _SUM),
    ("container_memory_rss", "bytes", 2, _SUM),
    ("container_network_tcp_TimeWait", "connections", 3, _SUM),
    ("cpu.busy", "percent", 2, _MEAN),
    ("mem.memused", "percent", 2, _MEAN),
    ("net.if.in.bytes", "bytes", 3, _SUM),
)
PAPER_LEVELS = [level for _, _, level, _ in COLUMNS]


def load_fisher(argument: str, options: TraceOptions) -> Series:
    number = argument.removeprefix("container")
    if not number.isdigit() or int(number) not in CONTAINERS:
        raise HarmonyError(
            f"unknown fisher trace {argument!r}; name one of fisher:container1 .. "
            f"fisher:container10"
        )
    path = trace_file(f"fisher/container{int(number)}.csv.gz")
    frame = read_table(path)
    names = [name for name, _, _, _ in COLUMNS]
    require_columns(frame, ["date", *names], path)
    seconds = time_column_seconds(frame, "date", path)
    raw = np.column_stack([numeric_column(frame, name, path) for name in names])
    start, values = place_on_grid(seconds, raw, STEP.total_seconds(), path, "date")

    indicators = []
    notes = [f"{path.name}: HARMONY paper data (fisher), times read as UTC"]
    for column, (name, unit, level, aggregation) in enumerate(COLUMNS):
        if name == COUNTER and not options.raw_counters:
            values[:, column], resets = _counter_rate(values[:, column], STEP.total_seconds())
            name, unit = f"{COUNTER}:rate", "counter/s"
            notes.append(
                f"{COUNTER} (a cumulative counter) offered as its per-second rate; "
                f"{resets} decrease(s) of the counter left as gaps"
            )
        indicators.append(
            Indicator(
                name=name,
                unit=unit,
                level=level,
                demand=name == "load",
                aggregation=aggregation,
            )
        )
    return Series(
        name=f"fisher:container{int(number)}",
        indicators=tuple(indicators),
        start=start,
        step=STEP,
        values=values,
        notes=notes,
    )


def _counter_rate(counter: np.ndarray, step_seconds: float) -> tuple[np.ndarray, int]:
    increase = np.diff(counter, prepend=np.nan)
    decreasing = increase < 0
    increase[decreasing] = np.nan
    return increase / step_seconds, int(decreasing.sum())


register(
    TraceKind(
        prefix="fisher",
        usage="fisher:containerN (N = 1..10)",
        summary="HARMONY paper data: 11 indicators of one container, 10-minute steps, 30 days",
        loader=load_fisher,
    )
)
