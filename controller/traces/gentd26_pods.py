"""`gentd26:pods`: GenTD26's per-pod metrics rolled up to pools and the service on one grid.

Grouping rule (pods are not mapped to nodes in the trace, so the hierarchy is formed by
what each pod reports): a pod that reports GPU duty cycle or GPU memory is in the `gpu`
pool (the Stable-Diffusion inference pods, 144); a pod that reports only container memory
is in the `cpu` pool (63 pods with no GPU). The service is both pools plus the
gateway-level series that carry no pod (API-request QPS, queue size).

Indicators, per step (the trace samples every 57 s, which is the default step):
- `service.qps` (level 1, the demand): generative-request QPS summed over the GPU pods plus
  the gateway's API-request QPS. The export omits zero rates (its smallest value is 0.09),
  so a step with no QPS sample counts zero requests, inside the span of the metrics.
- `gpu.pods` (level 2): GPU pods reporting a duty cycle: the GPU pool's replicas.
- `gpu.duty_cycle` (level 2, percent, mean over GPU pods), `gpu.memory_used` (level 2,
  bytes, sum), `gpu.memory_util` (level 2, container memory, mean over GPU pods),
  `cpu.pods` and `cpu.memory_util` (level 2, the CPU pool).
- `service.queue_size` (level 3, gateway backlog in tasks) and `service.queue_time`
  (level 3, mean queueing time in ms of the requests sampled in the step; a step with no
  sample is a gap, as there is no latency to report).
Times are the trace's anonymised Unix seconds, read as UTC. With `TraceOptions.step` the
57-s rows are averaged into bins of that step.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from controller.series import Aggregation, Indicator, Series
from controller.traces.frames import (
    bin_on_grid,
    numeric_column,
    read_table,
    require_columns,
    time_column_seconds,
)
from controller.traces.options import TraceOptions
from controller.traces.paths import trace_file

NATIVE_STEP = dt.timedelta(seconds=57)
_SUM, _MEAN = Aggregation.sum, Aggregation.mean
INDICATORS = (
    Indicator("service.qps", "requests/s", level=1, demand=True, aggregation=_SUM),
    Indicator("gpu.pods", "pods", level=2, aggregation=_SUM),
    Indicator("gpu.duty_cycle", "percent", level=2, aggregation=_MEAN),
    Indicator("gpu.memory_used", "bytes", level=2, aggregation=_SUM),
    Indicator("gpu.memory_util", "fraction", level=2, aggregation=_MEAN),
    Indicator("cpu.pods", "pods", level=2, aggregation=_SUM),
    Indicator("cpu.memory_util", "fraction", level=2, aggregation=_MEAN),
    Indicator("service.queue_size", "tasks", level=3, aggregation=_SUM),
    Indicator("service.queue_time", "ms", level=3, aggregation=_MEAN),
)


def _metric(name: str) -> tuple[Path, pd.DataFrame]:
    path = trace_file(f"alibaba-gentd26/{name}")
    frame = read_table(path)
    require_columns(frame, ["timestamp_anon", "value", "container_ip"], path)
    frame = frame.assign(
        seconds=time_column_seconds(frame, "timestamp_anon", path),
        value=numeric_column(frame, "value", path),
    )
    return path, frame


def load_pods(options: TraceOptions) -> Series:
    _, duty = _metric("pod_gpu_duty_cycle_anon.csv.gz")
    _, gpu_memory = _metric("pod_gpu_memory_used_bytes_anon.csv.gz")
    _, memory = _metric("pod_memory_util_anon.csv.gz")
    qps_path, qps = _metric("qps.csv.gz")
    _, queue_size = _metric("queue_size_raw_anon.csv.gz")
    _, queue_time = _metric("queue_rt_raw_anon.csv.gz")

    gpu_pods = set(duty["container_ip"].dropna()) | set(gpu_memory["container_ip"].dropna())
    unattributed = int(memory["container_ip"].isna().sum())
    memory = memory.dropna(subset=["container_ip"])
    in_gpu_pool = memory["container_ip"].isin(gpu_pods)

    step_seconds = NATIVE_STEP.total_seconds()
    first = min(frame["seconds"].min() for frame in (duty, gpu_memory, memory))
    last = max(frame["seconds"].max() for frame in (duty, gpu_memory, memory))
    times = np.arange(first, last + step_seconds / 2, step_seconds)

    def per_time(frame: pd.DataFrame, how: str) -> np.ndarray:
        grouped = frame.groupby("seconds")["value"].agg(how)
        return grouped.reindex(times).to_numpy(dtype=np.float64)

    qps_total = np.nan_to_num(per_time(qps, "sum"), nan=0.0)
    columns = [
        qps_total,
        per_time(duty, "count"),
        per_time(duty, "mean"),
        per_time(gpu_memory, "sum"),
        per_time(memory[in_gpu_pool], "mean"),
        per_time(memory[~in_gpu_pool], "count"),
        per_time(memory[~in_gpu_pool], "mean"),
        per_time(queue_size, "sum"),
        per_time(queue_time, "mean"),
    ]
    # A pod count of 0 means no sample at that time, not an empty pool: a gap.
    for column in (1, 5):
        columns[column][columns[column] == 0] = np.nan
    values = np.column_stack(columns)
    step = options.step or NATIVE_STEP
    if step == NATIVE_STEP:
        start = dt.datetime.fromtimestamp(float(times[0]), tz=dt.UTC)
    else:
        start, values = bin_on_grid(
            times, values, step.total_seconds(), [Aggregation.mean] * len(INDICATORS)
        )
    return Series(
        name="gentd26:pods",
        indicators=INDICATORS,
        start=start,
        step=step,
        values=values,
        notes=[
            f"{len(gpu_pods)} GPU pods (report GPU metrics) and "
            f"{memory.loc[~in_gpu_pool, 'container_ip'].nunique()} CPU pods (memory only)",
            f"{qps_path.name}: steps without a QPS sample count zero requests "
            f"(the export omits zero rates)",
            f"{unattributed} memory-utilisation rows without a pod left out",
            "times are the trace's anonymised Unix seconds, read as UTC",
        ],
    )
