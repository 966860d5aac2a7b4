"""B3: GPU-hours at a fixed SLA, Harmony against the baselines and the oracle.

    nice -n 10 .venv/bin/python -m bench.backtest [--samples 200] [--fisher 10] [--no-drift]
    nice -n 10 .venv/bin/python -m bench.backtest --speed   # B4: 30 days at 1-minute steps

Traces (from ../shared/data):
  (a) gentd26:requests: GPU-seconds of demand per 5-minute step from GenTD26's request
      trace, scaled so that its peak needs 32 replicas (8-GPU nodes);
  (b) fisher:container1..10: each container's `load` (all 11 indicators feed the
      forecaster), at its own 10-minute step, scaled so that its peak needs 20 replicas.
Every trace: the forecaster (default settings, trained to early stopping, seed 0) trains
on the first 50% of rows, the rest is decided; the
provisioning delay is 10 minutes (2 steps on (a), 1 on (b)); target utilisation 1.0; every
policy's knob is swept (decision.policies.default_sweep plus the midpoints of neighbouring
values); each policy's figure is its best
feasible knob (fewest replica-hours among runs with shortfall rate <= 1%). The final line
gives medians over the traces of Harmony's replica-hours over the best baseline's and over
the oracle's, and of Harmony's realised shortfall rate.

Speed (--speed, B4): gentd26:requests at its 1-minute step, followed by its own first days
again to make 30 days (43,200 decided steps) after 2,000 rows of history; the forecaster
(trained on those 2,000 rows, not timed) samples every origin, then each policy replays.

Drift: gentd26:requests with the demand multiplied by 1.5 from the trace's midpoint on
(a level shift at row T/2); the forecaster trains on the first half (before the shift),
Harmony decides the second half at ε = 0.01 and the line reports its shortfall rate there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import sys
import time

import numpy as np
import torch

from bench.options import add_flow_transform_option
from controller.backtest.runner import BacktestConfig, BacktestOutcome, run_backtest
from controller.series import Series
from controller.traces import TraceOptions, load_trace
from decision.policies import POLICY_NAMES, default_sweep
from forecaster.config import FlowTransformKind, ForecasterConfig

SLA = 0.01
SEED = 0
DELAY = dt.timedelta(minutes=10)


def level_shift(series: Series, factor: float) -> Series:
    """The series with its demand multiplied by `factor` from row T/2 on."""
    values = series.values.copy()
    half = len(series) // 2
    values[half:, series.demand_index] *= factor
    return series.with_values(values, note=f"demand x{factor:g} from row {half} on (drift case)")


def refined(knobs: tuple[float, ...]) -> tuple[float, ...]:
    """The policy's own sweep with the midpoint of each neighbouring pair added, so that
    the figure at the SLA depends less on where the sweep's points happen to fall."""
    middles = [(low + high) / 2 for low, high in itertools.pairwise(knobs)]
    return tuple(sorted({*knobs, *(round(value, 6) for value in middles)}))


def run(series: Series, peak_replicas: int, samples: int, sweep: bool = True) -> BacktestOutcome:
    config = BacktestConfig(
        peak_replicas=peak_replicas,
        provisioning_delay=DELAY,
        sla=SLA,
        train_fraction=0.5,
        sweep=sweep,
        num_samples=samples,
        seed=SEED,
        policies=("harmony", "static", "hpa", "reactive", "headroom", "oracle")
        if sweep
        else ("harmony",),
        redis_url="",
        sweeps={name: refined(default_sweep(name)) for name in POLICY_NAMES},
        # Trained to early stopping, not to a time budget: the figures do not depend on
        # how busy the machine was.
        forecaster=ForecasterConfig(max_train_seconds=None, seed=SEED),
    )
    return run_backtest(series, config)


def describe(name: str, outcome: BacktestOutcome, seconds: float) -> None:
    summary = outcome.summary
    parts = []
    for policy, item in summary.policies.items():
        if item.at_sla is None:
            parts.append(f"{policy}=miss")
        else:
            metrics = item.at_sla.metrics
            parts.append(
                f"{policy}={metrics.replica_hours:.0f}h@{metrics.shortfall_rate:.4f}"
                f"(knob {item.at_sla.knob_value:g})"
            )
    print(f"trace {name}: {' '.join(parts)}", flush=True)
    print(
        f"  {summary.headline()} best_baseline={summary.best_baseline} "
        f"harmony_shortfall={summary.harmony_shortfall} seconds={seconds:.0f}",
        flush=True,
    )
    if outcome.forecaster is not None:
        meta = outcome.forecaster.metadata
        shown = {
            key: value
            for key, value in meta.items()
            if key in ("epochs", "best_epoch", "train_seconds") or key.startswith("val")
        }
        print(f"  forecaster: {shown}", flush=True)


def median_or_nan(values: list[float | None]) -> float:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else float("nan")


def speed(samples: int, flow_transform: FlowTransformKind) -> None:
    """B4's backtest line: forecasting and replay times of 30 days at 1-minute steps."""
    from controller.backtest.forecasts import forecast_origins, train_on_history
    from controller.backtest.replay import run_case
    from controller.backtest.runner import delay_in_steps, pool_spec, scale_to_pool
    from controller.backtest.scenario import Scenario

    history, decided = 2000, 30 * 24 * 60
    trace = load_trace("gentd26:requests", TraceOptions())
    repeats = -(-(history + decided) // len(trace))
    series = trace.with_values(
        np.concatenate([trace.values] * repeats)[: history + decided],
        note="the trace repeated to make 30 days",
    )
    config = BacktestConfig(peak_replicas=32, provisioning_delay=DELAY, num_samples=samples)
    series, _ = scale_to_pool(series, 1.0, 32)
    delay_steps, _ = delay_in_steps(DELAY, series.step)
    model = train_on_history(
        series,
        history,
        ForecasterConfig(
            horizon=delay_steps + 1, max_train_seconds=30, flow_transform=flow_transform
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
        spec=pool_spec(config, series, delay_steps),
        samples=draws,
    )
    replay_seconds: dict[str, float] = {}
    for policy in ("harmony", "static", "hpa", "reactive", "headroom", "oracle"):
        started = time.perf_counter()
        run_case(scenario, policy, SLA if policy == "harmony" else None)
        replay_seconds[policy] = time.perf_counter() - started
    parts = " ".join(f"{name}={seconds:.1f}" for name, seconds in replay_seconds.items())
    print(f"  replay seconds per policy: {parts}", flush=True)
    print(
        f"backtest_speed days=30 step=60s samples={samples} steps={decided} "
        f"flow_transform={flow_transform} threads={torch.get_num_threads()} "
        f"forecast_s={forecast_seconds:.1f} harmony_replay_s={replay_seconds['harmony']:.1f} "
        f"harmony_total_s={forecast_seconds + replay_seconds['harmony']:.1f} "
        f"all_policies_total_s={forecast_seconds + sum(replay_seconds.values()):.1f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backtest", description=__doc__)
    parser.add_argument("--samples", type=int, default=200, help="forecast samples per step")
    parser.add_argument("--fisher", type=int, default=10, help="how many fisher containers")
    parser.add_argument("--no-gentd26", action="store_true")
    parser.add_argument("--no-drift", action="store_true")
    parser.add_argument("--speed", action="store_true", help="only B4's 30-day backtest timing")
    add_flow_transform_option(parser)
    args = parser.parse_args(argv)
    if args.speed:
        print(f"B4 backtest speed: seed={SEED} data=../shared/data command={' '.join(sys.argv)}")
        speed(args.samples, args.flow_transform)
        return
    print(
        f"B3 backtest: sla={SLA} delay={DELAY} train_fraction=0.5 samples={args.samples} "
        f"seed={SEED} data=../shared/data command={' '.join(sys.argv)}",
        flush=True,
    )
    traces: list[tuple[str, TraceOptions, int]] = []
    if not args.no_gentd26:
        traces.append(("gentd26:requests", TraceOptions(step=dt.timedelta(minutes=5)), 32))
    traces += [
        (f"fisher:container{number}", TraceOptions(), 20) for number in range(1, args.fisher + 1)
    ]
    vs_best: list[float | None] = []
    vs_oracle: list[float | None] = []
    shortfalls: list[float | None] = []
    for name, options, peak in traces:
        started = time.perf_counter()
        outcome = run(load_trace(name, options), peak, args.samples)
        describe(name, outcome, time.perf_counter() - started)
        vs_best.append(outcome.summary.harmony_vs_best_baseline)
        vs_oracle.append(outcome.summary.harmony_vs_oracle)
        shortfalls.append(outcome.summary.harmony_shortfall)
    print(
        f"backtest sla={SLA:g} harmony_vs_best_baseline={median_or_nan(vs_best):.2f} "
        f"harmony_vs_oracle={median_or_nan(vs_oracle):.2f} "
        f"shortfall={median_or_nan(shortfalls):.3f}",
        flush=True,
    )
    if not args.no_drift:
        series = level_shift(
            load_trace("gentd26:requests", TraceOptions(step=dt.timedelta(minutes=5))), 1.5
        )
        outcome = run(series, 32, args.samples, sweep=False)
        harmony = outcome.results[0]
        print(
            f"drift: gentd26:requests x1.5 from row {len(series) // 2} of {len(series)}; "
            f"harmony eps={SLA} replica_hours={harmony.metrics.replica_hours:.0f}",
            flush=True,
        )
        print(f"drift shortfall_second_half={harmony.metrics.shortfall_rate:.3f}", flush=True)


if __name__ == "__main__":
    main()
