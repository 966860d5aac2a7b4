"""B3: GPU-hours at a fixed SLA, Harmony against the autoscalers people run, as deployed.

    nice -n 10 .venv/bin/python -m bench.backtest [--cases gentd26,fisher1] [--workers 2]
    nice -n 10 .venv/bin/python -m bench.backtest --speed   # B4: 30 days at 1-minute steps

Protocol (controller.backtest.protocol): each trace split train 50% / tune 25% / test 25%;
the pool sized from the train part (its 99.9th percentile of demand needs P replicas),
P = 8, 32, 128; 10-minute provisioning delay; SLA 1%; target utilisation 1.0. Each
baseline's knob is the cheapest that met the SLA on tune (searched until found, or
proven out of reach at the knob's limit), then judged on test; Harmony runs at ε = SLA
with no tuning. Frontier (hindsight): every policy's cheapest knob meeting the SLA on test.
Traces (from ../shared/data): gentd26:requests at 5-minute steps; fisher:container1..10
`load` at 10-minute steps (all 11 indicators feed the forecaster); alibaba2018:machines
cpu at 5-minute steps. One forecaster per trace (default settings, trained to early
stopping, seed 0) serves every P: scaling the demand scales the samples.

Drift (--drift): gentd26:requests with the demand x1.5 from row T/2 on; Harmony at
ε = 0.01 deployed from the train part (before the shift); its shortfall on test.

Queue SLA (--sla-kind queue [--max-delay 600]): the same cases with the demand as work
arriving per step, queued FIFO; the SLA bounds the share of work waiting longer than the
max delay (decision.queue), and every baseline, the KEDA-style queue scaler among them, is
searched against that; deployable figures only (no hindsight frontier). Prints
`headline_queue ...`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.options import (
    SMOKE_SAMPLES,
    RunSize,
    add_flow_transform_option,
    add_smoke_option,
    parse_with_smoke,
)
from controller.backtest.protocol import CaseOutcome, format_ratio
from controller.backtest.runner import BacktestConfig, prepare_trace, run_backtest
from controller.series import Series
from controller.traces import TraceOptions, load_trace
from decision.policies import POLICY_NAMES
from decision.types import SlaKind
from forecaster.config import FlowTransformKind, ForecasterConfig

SLA = 0.01
SEED = 0
DELAY = dt.timedelta(minutes=10)
POOL_SIZES = (8, 32, 128)
DEFAULT_MAX_DELAY_SECONDS = 600.0
# --smoke: Harmony, two baselines with knobs and the oracle take every path of the protocol
# and the headline; each other policy's knob searches would add seconds.
SMOKE_POLICIES = ("harmony", "hpa", "buffer", "oracle")
SMOKE_QUEUE_POLICIES = ("harmony", "keda-queue", "buffer", "oracle")


@dataclass(frozen=True)
class Trace:
    key: str
    name: str
    step_minutes: int

    def load(self) -> Series:
        return load_trace(self.name, TraceOptions(step=dt.timedelta(minutes=self.step_minutes)))


TRACES = (
    Trace("gentd26", "gentd26:requests", 5),
    *(Trace(f"fisher{n}", f"fisher:container{n}", 10) for n in range(1, 11)),
    Trace("alibaba", "alibaba2018:machines", 5),
)


@dataclass(frozen=True)
class SlaChoice:
    """Which SLA the cases are judged by."""

    kind: SlaKind = SlaKind.shortfall
    max_delay_seconds: float | None = None

    @property
    def max_delay(self) -> dt.timedelta | None:
        if self.max_delay_seconds is None:
            return None
        return dt.timedelta(seconds=self.max_delay_seconds)


def config_for(
    samples: int,
    flow_transform: FlowTransformKind | None,
    run_size: RunSize,
    sweep: bool = True,
    sla: SlaChoice = SlaChoice(),
    policies: tuple[str, ...] | None = None,
) -> BacktestConfig:
    forecaster = run_size.forecaster(ForecasterConfig(max_train_seconds=None, seed=SEED))
    if flow_transform is not None:
        forecaster = forecaster.replace(flow_transform=flow_transform)
    return BacktestConfig(
        policies=(
            policies
            if policies
            else POLICY_NAMES
            if not run_size.smoke
            else SMOKE_QUEUE_POLICIES
            if sla.kind is SlaKind.queue
            else SMOKE_POLICIES
        ),
        provisioning_delay=DELAY,
        sla=SLA,
        sla_kind=sla.kind,
        max_delay=sla.max_delay,
        train_fraction=0.5,
        sweep=sweep and sla.kind is SlaKind.shortfall and not policies,
        num_samples=samples,
        seed=SEED,
        # None: each trace's policies go to Celery workers when HARMONY_REDIS_URL is set,
        # and run in this (trace's) process otherwise.
        redis_url=None,
        # Trained to early stopping, not to a time budget: the figures do not depend on
        # how busy the machine was.
        forecaster=forecaster,
    )


def run_trace(
    trace: Trace,
    sizes: Sequence[int],
    samples: int,
    flow_transform: FlowTransformKind | None,
    run_size: RunSize,
    sla: SlaChoice = SlaChoice(),
    models: Path | None = None,
    policies: tuple[str, ...] | None = None,
) -> list[tuple[dict, str]]:
    """Every pool size of one trace: (case document, printed lines). With `models`, the
    trace's forecaster is loaded from there when an earlier run saved it (training is
    deterministic for the seed), and saved there otherwise."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    config = config_for(samples, flow_transform, run_size, sla=sla, policies=policies)
    series = run_size.series(trace.load())
    cached = None
    if models is not None:
        cached = models / f"{trace.key}-{flow_transform or 'default'}{run_size.flag.strip()}"
        if (cached / "forecaster.pt").is_file():
            config = dataclasses.replace(config, model_path=cached)
    prepared = prepare_trace(series, config)
    if cached is not None and config.model_path is None and prepared.forecaster is not None:
        prepared.forecaster.save(cached)
    prepared_seconds = time.perf_counter() - started
    out = []
    for size in sizes:
        begun = time.perf_counter()
        outcome = run_backtest(
            series, dataclasses.replace(config, peak_replicas=size), prepared=prepared
        )
        lines = describe(f"{trace.key}:P{size}", outcome.case)
        lines.append(
            f"  seconds: prepare={prepared_seconds:.0f} case={time.perf_counter() - begun:.0f}"
        )
        if prepared.forecaster is not None and size == sizes[0]:
            meta = prepared.forecaster.metadata
            shown = {
                k: v
                for k, v in meta.items()
                if k in ("epochs", "best_epoch", "train_seconds") or k.startswith("val")
            }
            lines.append(f"  forecaster: {shown}")
        out.append((outcome.case.to_dict(), "\n".join(lines)))
    return out


def describe(name: str, case: CaseOutcome) -> list[str]:
    parts = []
    for item in case.policies.values():
        metrics = item.deployed.metrics
        knob = "" if item.deployed.knob_value is None else f"{item.deployed.knob_value:g}"
        verdict = "met" if item.met_on_test(case.sla) else "MISS"
        frontier = item.frontier_hours()
        waits = ""
        if metrics.late_work_share is not None:
            waits = (
                f" test_late_work={metrics.late_work_share:.4f} "
                f"wait_p99_s={metrics.wait_p99_seconds:.0f}"
            )
        front = (
            ""
            if item.frontier is None
            else f" frontier={'-' if frontier is None else f'{frontier:.0f}'}"
        )
        parts.append(
            f"  {item.policy:<18} {item.role:<8} knob={knob:<10} "
            f"test_rh={metrics.replica_hours:9.1f} "
            f"test_shortfall={metrics.shortfall_rate:.4f}{waits} {verdict}{front}"
        )
    return [f"case {name}: {case.line()}", *parts]


def median(values: list[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return statistics.median(finite) if finite else math.nan


def headline_queue(cases: list[dict], max_delay_seconds: float) -> str:
    """The queue SLA's line: deployable figures only."""
    deployable = [
        math.nan if case["deployable_vs_best"] is None else float(case["deployable_vs_best"])
        for case in cases
    ]
    finite = [value for value in deployable if math.isfinite(value)]
    harmony_met = sum(case["policies"]["harmony"]["met_on_test"] for case in cases)
    best_met = sum(case["best_baseline"] is not None for case in cases)
    return (
        f"headline_queue sla={SLA:g} max_delay={max_delay_seconds:g} cases={len(cases)} "
        f"harmony_met={harmony_met}/{len(cases)} best_baseline_met={best_met}/{len(cases)} "
        f"deployable_vs_best={format_ratio(median(deployable))} "
        f"deployable_worst={format_ratio(max(finite) if finite else math.nan)}"
    )


def headline(cases: list[dict]) -> str:
    def figure(case: dict, key: str) -> float:
        value = case[key]
        return math.nan if value is None else float(value)

    deployable = [figure(case, "deployable_vs_best") for case in cases]
    frontier = [figure(case, "frontier_vs_best") for case in cases]
    gaps = [figure(case, "gap_capture") for case in cases]
    harmony_met = sum(case["policies"]["harmony"]["met_on_test"] for case in cases)
    best_met = sum(case["best_baseline"] is not None for case in cases)
    finite_deployable = [value for value in deployable if math.isfinite(value)]
    finite_gaps = [value for value in gaps if math.isfinite(value)]
    worst = max(finite_deployable) if finite_deployable else math.nan
    lowest_gap = min(finite_gaps) if finite_gaps else math.nan
    return (
        f"headline sla={SLA:g} cases={len(cases)} harmony_met={harmony_met}/{len(cases)} "
        f"best_baseline_met={best_met}/{len(cases)} "
        f"deployable_vs_best={format_ratio(median(deployable))} "
        f"deployable_worst={format_ratio(worst)} "
        f"frontier_vs_best={format_ratio(median(frontier))} "
        f"gap_capture_median={format_ratio(median(gaps))} "
        f"gap_capture_min={format_ratio(lowest_gap)}"
    )


def drift(samples: int, run_size: RunSize) -> None:
    series = run_size.series(
        load_trace("gentd26:requests", TraceOptions(step=dt.timedelta(minutes=5)))
    )
    values = series.values.copy()
    half = len(series) // 2
    values[half:, series.demand_index] *= 1.5
    shifted = series.with_values(values, note=f"demand x1.5 from row {half} on (drift case)")
    config = config_for(samples, None, run_size, sweep=False)
    config = dataclasses.replace(config, policies=("harmony",), peak_replicas=32)
    outcome = run_backtest(shifted, config)
    harmony = outcome.case.policies["harmony"].deployed
    print(
        f"drift: gentd26:requests x1.5 from row {half} of {len(series)}; harmony eps={SLA} "
        f"test_replica_hours={harmony.metrics.replica_hours:.0f}",
        flush=True,
    )
    print(f"drift shortfall_test={harmony.metrics.shortfall_rate:.3f}", flush=True)


def speed(samples: int, flow_transform: FlowTransformKind, run_size: RunSize) -> None:
    """B4's backtest line: forecasting and replay times of 30 days at 1-minute steps."""
    from controller.backtest.forecasts import forecast_origins, train_on_history
    from controller.backtest.replay import run_case
    from controller.backtest.runner import delay_in_steps, pool_factor, pool_spec, scale_demand
    from controller.backtest.scenario import Scenario

    history, decided = 2000, run_size.pick(full=30 * 24 * 60, smoke=6 * 60)
    trace = load_trace("gentd26:requests", TraceOptions())
    repeats = -(-(history + decided) // len(trace))
    series = trace.with_values(
        np.concatenate([trace.values] * repeats)[: history + decided],
        note="the trace repeated to make 30 days",
    )
    config = BacktestConfig(peak_replicas=32, provisioning_delay=DELAY, num_samples=samples)
    series = scale_demand(series, pool_factor(series, history, 1.0, 32), "to a pool of 32")
    delay_steps, _ = delay_in_steps(DELAY, series.step)
    model = train_on_history(
        series,
        history,
        run_size.forecaster(
            ForecasterConfig(
                horizon=delay_steps + 1, max_train_seconds=30, flow_transform=flow_transform
            )
        ),
    )
    started = time.perf_counter()
    draws = forecast_origins(
        model,
        series.values,
        series.timestamps(),
        history,
        series.demand_index,
        num_samples=samples,
        seed=SEED,
    )
    forecast_seconds = time.perf_counter() - started
    scenario = Scenario(
        name=series.name,
        demand=series.values[:, series.demand_index],
        start=series.start,
        step=series.step,
        decide_from=history,
        spec=pool_spec(config, 32, series.step_seconds, delay_steps, len(series.demand_index)),
        samples=draws,
    )
    replay_seconds: dict[str, float] = {}
    for policy in ("harmony", "static", "hpa", "window-buffer", "headroom", "oracle"):
        started = time.perf_counter()
        run_case(scenario, policy, SLA if policy == "harmony" else None)
        replay_seconds[policy] = time.perf_counter() - started
    parts = " ".join(f"{name}={seconds:.1f}" for name, seconds in replay_seconds.items())
    print(f"  replay seconds per policy: {parts}", flush=True)
    print(
        f"backtest_speed days={decided / (24 * 60):g} step=60s samples={samples} steps={decided} "
        f"flow_transform={flow_transform} threads={torch.get_num_threads()} "
        f"forecast_s={forecast_seconds:.1f} harmony_replay_s={replay_seconds['harmony']:.1f} "
        f"harmony_total_s={forecast_seconds + replay_seconds['harmony']:.1f} "
        f"all_policies_total_s={forecast_seconds + sum(replay_seconds.values()):.1f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backtest", description=__doc__)
    parser.add_argument("--samples", type=int, default=200, help="forecast samples per step")
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated trace keys (gentd26, fisher1..fisher10, alibaba), optionally "
        "with :P (e.g. gentd26:32); default all traces at P = 8, 32, 128",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes running traces (each sends its policies to Celery workers when "
        "HARMONY_REDIS_URL is set)",
    )
    parser.add_argument("--drift", action="store_true", help="also the +50%% level-shift case")
    parser.add_argument("--speed", action="store_true", help="only B4's 30-day backtest timing")
    parser.add_argument(
        "--policies",
        default="",
        help="comma-separated policies to run instead of all (no hindsight frontier then), "
        "e.g. harmony,harmony-fallback,oracle to set Harmony beside its day-one fallback",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=None,
        help="folder caching each trace's trained forecaster, so that a rerun (or the "
        "other SLA kind) skips training",
    )
    parser.add_argument(
        "--sla-kind",
        choices=[kind.value for kind in SlaKind],
        default=SlaKind.shortfall.value,
        help="shortfall (the headline) or queue (the headline_queue line)",
    )
    parser.add_argument(
        "--max-delay",
        type=float,
        default=None,
        help="seconds a job may wait under --sla-kind queue (default 600)",
    )
    add_flow_transform_option(parser)
    add_smoke_option(parser)
    # --smoke on fisher3, where Harmony and a baseline meet the SLA in 3 days: the
    # headline's ratios are computed too, not left undefined.
    args, run_size = parse_with_smoke(parser, argv, cases="fisher3:8", samples=SMOKE_SAMPLES)
    chosen = tuple(name for name in (part.strip() for part in args.policies.split(",")) if name)
    unknown_policies = sorted(set(chosen) - set(POLICY_NAMES))
    if unknown_policies:
        parser.error(f"--policies: unknown {', '.join(unknown_policies)}")
    kind = SlaKind(args.sla_kind)
    if args.max_delay is not None and kind is SlaKind.shortfall:
        parser.error("--max-delay applies to --sla-kind queue only")
    if args.max_delay is not None and not 0 < args.max_delay <= 86_400:
        parser.error(f"--max-delay {args.max_delay:g}: give seconds above 0, at most 86400")
    sla = SlaChoice(
        kind, (args.max_delay or DEFAULT_MAX_DELAY_SECONDS) if kind is SlaKind.queue else None
    )
    if args.speed:
        print(f"B4 backtest speed: seed={SEED} data=../shared/data command={' '.join(sys.argv)}")
        speed(args.samples, args.flow_transform, run_size)
        return
    wanted: dict[str, list[int]] = {}
    for item in filter(None, (part.strip() for part in args.cases.split(","))):
        key, _, size = item.partition(":")
        wanted.setdefault(key, []).extend([int(size)] if size else POOL_SIZES)
    known = {trace.key: trace for trace in TRACES}
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        parser.error(f"--cases: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    plan = [(known[key], tuple(sizes)) for key, sizes in wanted.items()] or [
        (trace, POOL_SIZES) for trace in TRACES
    ]
    print(
        f"B3 backtest: sla={SLA} sla_kind={sla.kind} max_delay={sla.max_delay_seconds} "
        f"delay={DELAY} split=50/25/25 pool_sizes={POOL_SIZES} "
        f"samples={args.samples} seed={SEED} workers={args.workers} data=../shared/data "
        f"command={' '.join(sys.argv)}",
        flush=True,
    )
    started = time.perf_counter()
    cases: list[dict] = []
    if args.workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [
                pool.submit(
                    run_trace,
                    trace,
                    sizes,
                    args.samples,
                    args.flow_transform,
                    run_size,
                    sla,
                    args.models,
                    chosen,
                )
                for trace, sizes in plan
            ]
            for future in futures:
                for document, text in future.result():
                    print(text, flush=True)
                    cases.append(document)
    else:
        for trace, sizes in plan:
            for document, text in run_trace(
                trace, sizes, args.samples, args.flow_transform, run_size, sla, args.models, chosen
            ):
                print(text, flush=True)
                cases.append(document)
    print(f"seconds_total={time.perf_counter() - started:.0f}", flush=True)
    if args.drift:
        drift(args.samples, run_size)
    if sla.kind is SlaKind.queue:
        print(headline_queue(cases, sla.max_delay_seconds or 0.0), flush=True)
    else:
        print(headline(cases), flush=True)


if __name__ == "__main__":
    main()
