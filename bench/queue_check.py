"""Issue 18: the fluid FIFO queue (`decision.queue`) against GenTD26's recorded gateway queue.

GenTD26 records the gateway's backlog (`service.queue_size`, tasks) and the requests'
queueing time (`service.queue_time`, ms) beside the service's QPS and the GPU pods that
served. This replays the QPS through `fluid_backlog` at the capacity the pods had and
compares the simulated backlog and waits with the recorded ones.

Grid: `gentd26:pods` on its own 57 s step. Every file is scraped every 57 s (the modal
spacing of the queue size, of the duty cycle and of each container's QPS); a container's
QPS rows are often 114 s or more apart only because the export omits zero rates, so a
coarser step would only average away the short queues this checks.

Capacity: the GPU pods reporting a duty cycle at each step times one per-pod service rate
μ (requests per second of a pod at full duty). μ is not in the data; it is fitted once on
the first half of the trace and the comparison is scored on the second half only:
- `saturation` (the capacity the pods had): μ = requests / GPU-busy pod-seconds (the
  duty cycle's busy time) over the first half: what a pod served per second of being busy.
- `backlog fit`: the μ on a log grid whose fluid backlog has the least mean absolute error
  against the recorded backlog over the first half; the smallest such μ when several tie.
- `frequency match`: the μ on that grid whose fluid queue is non-empty on as many first-half
  steps as the recorded one: the fluid model's best chance to time the recorded queues.
Arrivals are `service.qps` x step: the generative requests of the pods plus the gateway's
API requests, as the project reads the service's demand. The trace's values are scaled
(its README), so QPS x step is requests only up to an unknown factor; the backlog's
correlation and the non-empty agreement do not depend on it, its size does.

    python -m bench.queue_check [--plot reports/queue_check.png]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.options import RunSize, add_smoke_option, parse_with_smoke
from controller.errors import HarmonyError
from controller.traces import TraceOptions, load_trace
from decision.queue import account_queue, fluid_backlog
from decision.types import FloatArray
from forecaster.fill import forward_fill

TRACE = "gentd26:pods"
DEFAULT_PLOT = Path("reports/queue_check.png")
# The fits' grid of per-pod rates: the saturation rate times 10^-3 .. 10^1, 40 per decade.
FIT_DECADES = (-3.0, 1.0)
FIT_RATES_PER_DECADE = 40
# `--smoke`: six hours of the busy morning, enough for both halves to see requests.
SMOKE_STEPS = 380


@dataclass(frozen=True)
class QueueGrid:
    """The trace's indicators the check needs, `[T]` each on one step grid."""

    hours: FloatArray  # since the first step
    arrivals: FloatArray  # requests per step (QPS x step)
    pods: FloatArray  # GPU pods serving (gaps carry the last count)
    busy_pod_seconds: FloatArray  # duty cycle x pods x step
    recorded_backlog: FloatArray  # tasks, NaN = gap
    recorded_wait_seconds: FloatArray  # mean queueing time of the step's requests, NaN = none
    step_seconds: float


@dataclass(frozen=True)
class Agreement:
    """Simulated against recorded backlog and waits over the scored steps."""

    backlog_corr: float
    backlog_mae_rel: float
    nonempty_agreement: float
    nonempty_sim: float
    nonempty_rec: float
    nonempty_recall: float  # recorded non-empty steps the simulation has non-empty too
    utilisation_max: float
    wait_p50_sim_s: float
    wait_p95_sim_s: float
    little_wait_sim_s: float


def queue_grid(run_size: RunSize) -> QueueGrid:
    series = load_trace(TRACE, TraceOptions())
    if run_size.smoke:
        series = series.slice(0, SMOKE_STEPS)
    step = series.step_seconds
    pods = forward_fill(series.column("gpu.pods"))
    if np.isnan(pods).any():
        # Only leading steps stay NaN after the forward fill.
        unknown = int(np.isnan(pods).sum())
        raise HarmonyError(
            f"{TRACE}: no GPU pod reports a duty cycle in the first {unknown} steps, so their "
            f"capacity is unknown; check pod_gpu_duty_cycle_anon.csv.gz"
        )
    duty = np.nan_to_num(series.column("gpu.duty_cycle"), nan=0.0) / 100.0
    return QueueGrid(
        hours=np.arange(len(series), dtype=np.float64) * (step / 3600.0),
        arrivals=series.column("service.qps") * step,
        pods=pods,
        busy_pod_seconds=duty * pods * step,
        recorded_backlog=series.column("service.queue_size"),
        recorded_wait_seconds=series.column("service.queue_time") / 1000.0,
        step_seconds=step,
    )


def saturation_rate(grid: QueueGrid, fit: slice) -> float:
    """Requests per GPU-busy pod-second over the `fit` steps."""
    return float(grid.arrivals[fit].sum() / grid.busy_pod_seconds[fit].sum())


def capacity(grid: QueueGrid, rate: float) -> FloatArray:
    """Requests the serving pods can take per step at `rate` per pod-second."""
    result: FloatArray = grid.pods * rate * grid.step_seconds
    return result


def candidate_rates(around: float) -> FloatArray:
    """The per-pod rates the fits choose from: `around` x 10^-3 .. 10^1, log-spaced."""
    decades = FIT_DECADES[1] - FIT_DECADES[0]
    rates: FloatArray = around * np.logspace(*FIT_DECADES, int(decades * FIT_RATES_PER_DECADE) + 1)
    return rates


def backlog_fit_rate(grid: QueueGrid, fit: slice, around: float) -> float:
    """The per-pod rate whose fluid backlog is closest (MAE) to the recorded one on `fit`."""
    rates = candidate_rates(around)
    recorded = grid.recorded_backlog[fit]
    known = ~np.isnan(recorded)
    errors = [
        np.abs(
            fluid_backlog(grid.arrivals[fit], capacity(grid, rate)[fit])[known] - recorded[known]
        ).mean()
        for rate in rates
    ]
    return float(rates[int(np.argmin(errors))])


def frequency_match_rate(grid: QueueGrid, fit: slice, around: float) -> float:
    """The per-pod rate on the backlog fit's grid whose fluid queue is non-empty on `fit` in
    the share of steps closest to the recorded queue's (its best chance to time queues)."""
    rates = candidate_rates(around)
    recorded = grid.recorded_backlog[fit]
    known = ~np.isnan(recorded)
    target = (recorded[known] > 0).mean()
    shares = [
        (fluid_backlog(grid.arrivals[fit], capacity(grid, rate)[fit])[known] > 0).mean()
        for rate in rates
    ]
    return float(rates[int(np.argmin(np.abs(np.asarray(shares) - target)))])


def weighted_quantile(values: FloatArray, weights: FloatArray, level: float) -> float:
    """The `level` quantile of `values` with each counted `weights` times (NaN values skipped)."""
    keep = ~np.isnan(values) & (weights > 0)
    if not keep.any():
        return float("nan")
    order = np.argsort(values[keep])
    cumulative = np.cumsum(weights[keep][order])
    position = int(np.searchsorted(cumulative, level * cumulative[-1]))
    return float(values[keep][order][position])


def correlation(first: FloatArray, second: FloatArray) -> float:
    """Pearson correlation; NaN when either is constant (no variation to agree with)."""
    if np.std(first) == 0 or np.std(second) == 0:
        return float("nan")
    return float(np.corrcoef(first, second)[0, 1])


def agreement(grid: QueueGrid, rate: float, scored: slice) -> tuple[Agreement, FloatArray]:
    """Replay the whole trace at `rate`, score the `scored` steps; also the simulated backlog."""
    served = capacity(grid, rate)
    simulated = fluid_backlog(grid.arrivals, served)
    recorded = grid.recorded_backlog[scored]
    known = ~np.isnan(recorded)
    sim, rec = simulated[scored][known], recorded[known]
    sim_on, rec_on = sim > 0, rec > 0
    start = scored.start or 0
    waits = account_queue(
        grid.arrivals[scored],
        served[scored],
        max_delay_steps=1,
        step_seconds=grid.step_seconds,
        initial_backlog=float(simulated[start - 1]) if start > 0 else 0.0,
    )
    throughput = grid.arrivals[scored].sum() / (len(grid.arrivals[scored]) * grid.step_seconds)
    result = Agreement(
        backlog_corr=correlation(sim, rec),
        backlog_mae_rel=float(np.abs(sim - rec).mean() / rec.mean()) if rec.mean() > 0 else np.nan,
        nonempty_agreement=float((sim_on == rec_on).mean()),
        nonempty_sim=float(sim_on.mean()),
        nonempty_rec=float(rec_on.mean()),
        nonempty_recall=float((sim_on & rec_on).sum() / rec_on.sum()) if rec_on.any() else np.nan,
        utilisation_max=float(np.max(grid.arrivals[scored] / served[scored])),
        wait_p50_sim_s=waits.wait_p50_seconds,
        wait_p95_sim_s=waits.wait_p95_seconds,
        little_wait_sim_s=float(sim.mean() / throughput) if throughput > 0 else np.nan,
    )
    return result, simulated


def describe(label: str, rate: float, found: Agreement) -> str:
    return (
        f"{label}: per-pod rate {rate:.4g} requests/s, "
        f"utilisation max {found.utilisation_max:.3f}; "
        f"backlog corr {found.backlog_corr:.3f}, MAE/mean {found.backlog_mae_rel:.3f}; "
        f"non-empty steps sim {found.nonempty_sim:.3f} rec {found.nonempty_rec:.3f}, "
        f"agree {found.nonempty_agreement:.3f}, recorded non-empty also simulated "
        f"{found.nonempty_recall:.3f}; FIFO wait p50 {found.wait_p50_sim_s:.4g} s "
        f"p95 {found.wait_p95_sim_s:.4g} s; Little wait {found.little_wait_sim_s:.4g} s"
    )


def plot(
    grid: QueueGrid,
    simulated: dict[str, FloatArray],
    split_hours: float,
    path: Path,
) -> None:
    """Recorded against simulated backlog over time, and the recorded waits, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(12, 8), sharex=True)
    top.plot(grid.hours, grid.recorded_backlog, color="black", lw=1, label="recorded backlog")
    for label, backlog in simulated.items():
        top.plot(grid.hours, backlog, lw=1, label=f"fluid backlog, {label}")
    top.set_yscale("symlog", linthresh=1.0)
    top.set_ylabel("backlog (tasks)")
    top.legend(loc="upper right", fontsize=8)
    middle.plot(grid.hours, grid.arrivals / grid.step_seconds, lw=1, label="QPS (arrivals)")
    middle.plot(grid.hours, grid.busy_pod_seconds / grid.step_seconds, lw=1, label="busy pods")
    middle.plot(grid.hours, grid.pods, lw=1, label="pods serving")
    middle.set_yscale("symlog", linthresh=1.0)
    middle.set_ylabel("per second / pods")
    middle.legend(loc="upper right", fontsize=8)
    bottom.plot(grid.hours, grid.recorded_wait_seconds, ".", ms=2, label="recorded queueing time")
    bottom.set_ylabel("wait (s)")
    bottom.set_xlabel("hours since the trace's start")
    bottom.legend(loc="upper right", fontsize=8)
    for axis in (top, middle, bottom):
        axis.axvline(split_hours, color="grey", ls="--", lw=1)
    top.set_title("GenTD26 gateway queue: recorded vs fluid FIFO replay (fit left, scored right)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


@dataclass(frozen=True)
class Recorded:
    """The recorded queue over some steps: backlog, request-weighted waits, Little's law."""

    backlog_mean: float
    backlog_max: float
    nonempty: float
    wait_p50_s: float
    wait_p95_s: float
    wait_mean_s: float
    qps_mean: float
    # Little's law on the recorded data alone: backlog = throughput x wait with the
    # throughput in real requests/s; the trace's QPS is this many times that.
    little_qps_scale: float


def recorded(grid: QueueGrid, part: slice) -> Recorded:
    backlog, requests = grid.recorded_backlog[part], grid.arrivals[part]
    waits = grid.recorded_wait_seconds[part]
    timed = ~np.isnan(waits)
    wait_mean = float((waits[timed] * requests[timed]).sum() / requests[timed].sum())
    qps_mean = float(requests.mean() / grid.step_seconds)
    backlog_mean = float(np.nanmean(backlog))
    return Recorded(
        backlog_mean=backlog_mean,
        backlog_max=float(np.nanmax(backlog)),
        nonempty=float((backlog[~np.isnan(backlog)] > 0).mean()),
        wait_p50_s=weighted_quantile(waits, requests, 0.5),
        wait_p95_s=weighted_quantile(waits, requests, 0.95),
        wait_mean_s=wait_mean,
        qps_mean=qps_mean,
        little_qps_scale=qps_mean * wait_mean / backlog_mean if backlog_mean > 0 else np.nan,
    )


def describe_recorded(label: str, found: Recorded) -> str:
    return (
        f"recorded, {label}: backlog mean {found.backlog_mean:.4f} tasks, max "
        f"{found.backlog_max:.3g}, non-empty {found.nonempty:.3f} of steps; queueing time p50 "
        f"{found.wait_p50_s:.3f} s p95 {found.wait_p95_s:.3f} s mean {found.wait_mean_s:.3f} s "
        f"(step means weighted by requests); QPS mean {found.qps_mean:.3f}; Little's law: "
        f"QPS = {found.little_qps_scale:.2f} x the requests/s the recorded backlog and wait imply"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_check", description=__doc__)
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="PNG to write")
    add_smoke_option(parser)
    args, run_size = parse_with_smoke(parser, argv)
    grid = queue_grid(run_size)
    half = len(grid.arrivals) // 2
    fit, scored = slice(0, half), slice(half, None)
    print(
        f"queue check: {TRACE}{run_size.flag}, {len(grid.arrivals)} steps of "
        f"{grid.step_seconds:g} s ({grid.hours[-1]:.1f} h); per-pod rate fitted on steps "
        f"0..{half - 1}, scored on steps {half}..{len(grid.arrivals) - 1}",
        flush=True,
    )
    seen = {"fit half": recorded(grid, fit), "scored half": recorded(grid, scored)}
    for label, found in seen.items():
        print(describe_recorded(label, found), flush=True)
    mu = saturation_rate(grid, fit)
    rates = {
        "saturation": mu,
        "backlog fit": backlog_fit_rate(grid, fit, mu),
        "frequency match": frequency_match_rate(grid, fit, mu),
    }
    results: dict[str, Agreement] = {}
    simulated: dict[str, FloatArray] = {}
    for label, rate in rates.items():
        in_sample, _ = agreement(grid, rate, fit)
        results[label], simulated[label] = agreement(grid, rate, scored)
        print(describe(f"{label}, fit half (in sample)", rate, in_sample), flush=True)
        print(describe(f"{label}, scored half", rate, results[label]), flush=True)
    plot(
        grid,
        {f"{label} μ={rates[label]:.3g}": backlog for label, backlog in simulated.items()},
        float(grid.hours[half]),
        args.plot,
    )
    print(f"plot: {args.plot.resolve()}", flush=True)
    main_result, fitted, matched = (results[label] for label in rates)
    scored_recorded = seen["scored half"]
    print(
        f"queue_check step={grid.step_seconds:g} pods_rate={mu:.4g} "
        f"util_max={main_result.utilisation_max:.4f} "
        f"backlog_corr={main_result.backlog_corr:.4f} "
        f"backlog_mae_rel={main_result.backlog_mae_rel:.4f} "
        f"nonempty_agreement={main_result.nonempty_agreement:.4f} "
        f"nonempty_sim={main_result.nonempty_sim:.4f} nonempty_rec={main_result.nonempty_rec:.4f} "
        f"wait_p50_sim_s={main_result.wait_p50_sim_s:.4g} "
        f"wait_p95_sim_s={main_result.wait_p95_sim_s:.4g} "
        f"wait_p50_rec_s={scored_recorded.wait_p50_s:.4g} "
        f"wait_p95_rec_s={scored_recorded.wait_p95_s:.4g} "
        f"fit_rate={rates['backlog fit']:.4g} fit_backlog_corr={fitted.backlog_corr:.4f} "
        f"fit_nonempty_sim={fitted.nonempty_sim:.4f} "
        f"match_rate={rates['frequency match']:.4g} match_backlog_corr={matched.backlog_corr:.4f} "
        f"match_backlog_mae_rel={matched.backlog_mae_rel:.4f} "
        f"match_nonempty_recall={matched.nonempty_recall:.4f} "
        f"little_qps_scale={scored_recorded.little_qps_scale:.3f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
