"""`alibaba2018:machines`: the 16-machine slice of Alibaba cluster-trace-v2018, resampled.

Grouping rule: machines are grouped by `failure_domain_2` from `machine_meta` (the coarser
of the two failure domains in this slice: 14 domains for 16 machines; `failure_domain_1`
is different for every machine). A name selects the level of the hierarchy:
`alibaba2018:machines` is the whole slice, `alibaba2018:domainK` the machines of
failure_domain_2 = K, `alibaba2018:m_1933` one machine.

Each machine's irregular samples (10 s to minutes apart) are averaged into bins of the step
(default 5 minutes). A bin with no sample holds the machine's previous value for up to
5 minutes, as Prometheus does for a gauge; after that the machine is absent there.
Indicators, rolled up over the machines present in each step:
- `cpu_cores_used` (level 1, the demand): Σ cpu_util_percent / 100 × cpu_num.
- `machines` (level 2): machines reporting. `cpu_util`, `mem_util` (level 2, percent, mean).
- `net_in`, `net_out` (level 3, the trace's normalised units, mean), `disk_io` (level 3,
  percent, mean). `mem_gps` and `mkpi` are empty in the slice and left out.
Times are the trace's seconds from its start, read as Unix seconds (so 1970-01-01 UTC).
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd

from controller.errors import HarmonyError
from controller.series import Aggregation, Indicator, Series
from controller.traces.frames import bin_on_grid, check_grid_size, numeric_column, read_table
from controller.traces.options import TraceOptions
from controller.traces.paths import trace_file
from controller.traces.registry import TraceKind, register

DEFAULT_STEP = dt.timedelta(minutes=5)
HOLD_SECONDS = 300.0
USAGE_COLUMNS = [
    "machine_id",
    "time_stamp",
    "cpu_util_percent",
    "mem_util_percent",
    "mem_gps",
    "mkpi",
    "net_in",
    "net_out",
    "disk_io_percent",
]
META_COLUMNS = [
    "machine_id",
    "time_stamp",
    "failure_domain_1",
    "failure_domain_2",
    "cpu_num",
    "mem_size",
    "status",
]
MACHINE_METRICS = ["cpu_util_percent", "mem_util_percent", "net_in", "net_out", "disk_io_percent"]
_SUM, _MEAN = Aggregation.sum, Aggregation.mean
INDICATORS = (
    Indicator("cpu_cores_used", "cores", level=1, demand=True, aggregation=_SUM),
    Indicator("machines", "machines", level=2, aggregation=_SUM),
    Indicator("cpu_util", "percent", level=2, aggregation=_MEAN),
    Indicator("mem_util", "percent", level=2, aggregation=_MEAN),
    Indicator("net_in", "normalised", level=3, aggregation=_MEAN),
    Indicator("net_out", "normalised", level=3, aggregation=_MEAN),
    Indicator("disk_io", "percent", level=3, aggregation=_MEAN),
)


def load_machines(argument: str, options: TraceOptions) -> Series:
    usage_path = trace_file("alibaba-2018/machine_usage.csv.gz")
    meta_path = trace_file("alibaba-2018/machine_meta.csv.gz")
    usage = read_table(usage_path, header=None, names=USAGE_COLUMNS)
    meta = read_table(meta_path, header=None, names=META_COLUMNS)
    meta = meta[meta["machine_id"].isin(usage["machine_id"].unique())]
    meta = meta.sort_values("time_stamp").drop_duplicates("machine_id", keep="last")
    chosen = _select(argument, meta)
    step_seconds = (options.step or DEFAULT_STEP).total_seconds()
    origin = float(np.floor(usage["time_stamp"].min() / step_seconds) * step_seconds)
    check_grid_size(usage["time_stamp"].max() - origin, step_seconds)
    size = int((usage["time_stamp"].max() - origin) // step_seconds) + 1

    cores = meta.set_index("machine_id")["cpu_num"]
    per_machine = []  # [machines, size, metrics + cores used]
    for machine in chosen:
        rows = usage[usage["machine_id"] == machine]
        seconds = numeric_column(rows, "time_stamp", usage_path)
        metrics = np.column_stack([numeric_column(rows, c, usage_path) for c in MACHINE_METRICS])
        metrics = np.column_stack([metrics, metrics[:, 0] / 100.0 * float(cores[machine])])
        order = np.argsort(seconds, kind="stable")
        per_machine.append(_hold(seconds[order], metrics[order], origin, size, step_seconds))
    stacked = np.stack(per_machine)
    present = ~np.isnan(stacked[:, :, 0])
    count = present.sum(axis=0).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps with no machine: NaN, a gap
        means = np.nanmean(stacked[:, :, :5], axis=0)
    cores_used = np.where(count > 0, np.nansum(stacked[:, :, 5], axis=0), np.nan)
    count[count == 0] = np.nan
    values = np.column_stack([cores_used, count, means])
    return Series(
        name=f"alibaba2018:{argument}",
        indicators=INDICATORS,
        start=dt.datetime.fromtimestamp(origin, tz=dt.UTC),
        step=dt.timedelta(seconds=step_seconds),
        values=values,
        notes=[
            f"machines {', '.join(chosen)} (grouped by failure_domain_2)",
            f"irregular samples averaged per {step_seconds:g} s bin, empty bins hold the "
            f"previous value up to {HOLD_SECONDS:g} s",
            "times are seconds from the trace's start, read as Unix seconds",
        ],
    )


def _select(argument: str, meta: pd.DataFrame) -> list[str]:
    machines = sorted(meta["machine_id"])
    if argument == "machines":
        return machines
    if argument in machines:
        return [argument]
    domains = meta.groupby("failure_domain_2")["machine_id"].apply(sorted)
    if argument.startswith("domain") and argument.removeprefix("domain").isdigit():
        domain = float(argument.removeprefix("domain"))
        if domain in domains.index:
            return list(domains[domain])
    known = ", ".join(f"domain{int(d)}" for d in domains.index)
    raise HarmonyError(
        f"unknown trace 'alibaba2018:{argument}'; name alibaba2018:machines, one machine "
        f"({machines[0]} .. {machines[-1]}) or a failure domain ({known})"
    )


def _hold(
    seconds: np.ndarray, metrics: np.ndarray, origin: float, size: int, step_seconds: float
) -> np.ndarray:
    """Bin means on the shared grid, empty bins holding the last sample for HOLD_SECONDS."""
    start, binned = bin_on_grid(seconds, metrics, step_seconds, [Aggregation.mean] * 6)
    offset = round((start.timestamp() - origin) / step_seconds)
    grid = np.full((size, metrics.shape[1]), np.nan)
    grid[offset : offset + len(binned)] = binned
    limit = int(HOLD_SECONDS // step_seconds)
    if not limit:
        return grid
    held: np.ndarray = pd.DataFrame(grid).ffill(limit=limit).to_numpy()
    return held


register(
    TraceKind(
        prefix="alibaba2018",
        usage="alibaba2018:machines | alibaba2018:domainK | alibaba2018:m_NNNN",
        summary="Alibaba cluster-trace-v2018: 16 machines' CPU, memory, network, disk, 8 days",
        loader=load_machines,
        bins_at_step=True,
    )
)
