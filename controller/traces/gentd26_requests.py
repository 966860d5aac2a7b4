"""`gentd26:requests`: GenTD26's user request trace as GPU-seconds of demand per step.

Each request starts at `gmt_create` (read as UTC; the trace's times are shifted) and keeps
a GPU busy for `exec_time_seconds`; queueing before execution is not in the trace and is
ignored. A request contributes to every step it runs in, in proportion to its overlap with
the step, so `gpu_seconds` of a step is the GPU time the service needed in it, and
`gpu_seconds / step` the GPUs busy on average. Requests of every status count: a FAILED
request held its GPU for its `exec_time_seconds` too.

Indicators: `gpu_seconds` (level 1, the demand, summed over time) and `requests`, the
arrivals per step (level 2). Quiet steps are true zeros, not gaps. The default step is one
minute; `TraceOptions.step` bins at any other step. `TraceOptions.scale` multiplies both
indicators (more users of the same kind), to reach a pool of a realistic size.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from controller.errors import HarmonyError
from controller.series import Aggregation, Indicator, Series
from controller.traces.frames import (
    check_grid_size,
    numeric_column,
    read_table,
    require_columns,
    seconds_to_datetime,
    time_column_seconds,
)
from controller.traces.options import TraceOptions
from controller.traces.paths import trace_file
from controller.traces.registry import TraceKind, register

DEFAULT_STEP = dt.timedelta(minutes=1)
FILE = "alibaba-gentd26/lora_request_trace.csv.gz"


def load_gentd26(argument: str, options: TraceOptions) -> Series:
    if argument == "requests":
        return load_requests(options)
    if argument == "pods":
        from controller.traces.gentd26_pods import load_pods

        return load_pods(options)
    raise HarmonyError(f"unknown trace 'gentd26:{argument}'; name gentd26:requests or gentd26:pods")


def load_requests(options: TraceOptions) -> Series:
    path = trace_file(FILE)
    frame = read_table(path, usecols=["gmt_create", "exec_time_seconds"])
    require_columns(frame, ["gmt_create", "exec_time_seconds"], path)
    starts = time_column_seconds(frame, "gmt_create", path)
    durations = numeric_column(frame, "exec_time_seconds", path)
    bad = np.isnan(durations) | (durations < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise HarmonyError(
            f"{path}: column 'exec_time_seconds', data row {row}: needs a number >= 0; fix it"
        )
    step = options.step or DEFAULT_STEP
    gpu_seconds, arrivals, origin = busy_seconds_per_step(starts, durations, step.total_seconds())
    # The registry scales the demand (gpu_seconds); the arrivals scale with it here.
    values = np.column_stack([gpu_seconds, arrivals * options.scale])
    scale_note = f"; requests multiplied by {options.scale:g}" if options.scale != 1.0 else ""
    return Series(
        name="gentd26:requests",
        indicators=(
            Indicator(
                "gpu_seconds",
                unit="GPU-s",
                level=1,
                demand=True,
                aggregation=Aggregation.sum,
                time_aggregation=Aggregation.sum,
            ),
            Indicator(
                "requests",
                unit="requests",
                level=2,
                aggregation=Aggregation.sum,
                time_aggregation=Aggregation.sum,
            ),
        ),
        start=seconds_to_datetime(origin),
        step=step,
        values=values,
        notes=[
            f"{path.name}: {len(starts)} requests of every status, each busy for "
            f"exec_time_seconds from gmt_create (UTC), spread over the steps by overlap"
            + scale_note
        ],
    )


def busy_seconds_per_step(
    starts: npt.NDArray[np.float64], durations: npt.NDArray[np.float64], step_seconds: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    """Busy seconds and arrivals per epoch-aligned step, and the first step's start.

    With B(t) = Σ_i clamp(t - start_i, 0, duration_i), the busy time up to t, a step's busy
    seconds are B(end) - B(begin); B at all step edges comes from sorted starts and ends
    with prefix sums, so this is O(n log n) however long the requests run.
    """
    ends = starts + durations
    origin = float(np.floor(starts.min() / step_seconds) * step_seconds)
    check_grid_size(ends.max() - origin, step_seconds)
    size = int(np.ceil((ends.max() - origin) / step_seconds)) or 1
    edges = origin + step_seconds * np.arange(size + 1, dtype=np.float64)
    busy_until: npt.NDArray[np.float64] = _accumulated(np.sort(starts), edges)
    busy_until -= _accumulated(np.sort(ends), edges)
    arrivals = np.bincount(
        np.floor((starts - origin) / step_seconds).astype(np.int64), minlength=size
    )[:size]
    return np.diff(busy_until), arrivals.astype(np.float64), origin


def _accumulated(
    sorted_times: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Σ_i max(edge - time_i, 0) for every edge."""
    before = np.searchsorted(sorted_times, edges, side="left")
    prefix = np.concatenate(([0.0], np.cumsum(sorted_times - sorted_times[0])))
    # Shift by the first time to keep the sums small and exact in float64.
    accumulated: npt.NDArray[np.float64] = before * (edges - sorted_times[0]) - prefix[before]
    return accumulated


register(
    TraceKind(
        prefix="gentd26",
        usage="gentd26:requests | gentd26:pods",
        summary="Alibaba GenTD26 GPU inference service: request demand or per-pod metrics",
        loader=load_gentd26,
        bins_at_step=True,
    )
)
