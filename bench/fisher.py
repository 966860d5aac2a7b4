"""B1: the HARMONY paper's protocol on its own data (fisher, 10 containers).

Per container: all 11 raw indicators (the CPU counter kept raw, as the paper does), MinMax
scaler fitted on the first 70% of rows, split 70/10/20, context L, horizon 1; validation
and test windows start L rows before their border. Metrics on the scaled values averaged
over indicators and test windows; CRPS and intervals from 100 samples (the protocol), the
point forecast for MSE is the mean of 400 samples (the first 100 of them and 300 more), so
that Monte-Carlo noise adds little to the MSE. Interval ends are sample quantiles at
Weibull plotting positions (`forecaster.scoring.coverage`; numpy's default positions
make 100 calibrated samples cover 93% for 95%). Rows missing from the 10-minute grid are
gaps (NaN) in the context, and test windows whose target row is missing are skipped.
Samples are not floored at zero (zero is only where the scaler puts the training minimum).

    python -m bench.fisher --context 144
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench.options import (
    SMOKE_CONTEXT,
    SMOKE_SAMPLES,
    RunSize,
    add_flow_transform_option,
    add_smoke_option,
    parse_with_smoke,
)
from controller.traces import TraceOptions, load_trace
from forecaster import ForecasterConfig, train_forecaster
from forecaster.baselines import LastValueBaseline
from forecaster.scoring import coverage, crps


def minmax(values: np.ndarray, fit_rows: int) -> np.ndarray:
    low = np.nanmin(values[:fit_rows], axis=0)
    high = np.nanmax(values[:fit_rows], axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (values - low) / span


def run_container(
    number: int, context: int, samples: int, config: ForecasterConfig, size: RunSize
) -> dict:
    series = size.series(load_trace(f"fisher:container{number}", TraceOptions(raw_counters=True)))
    rows = len(series)
    scaled = minmax(series.values, int(rows * 0.7))
    times = series.timestamps()
    test_border = int(rows * 0.8)
    forecaster = train_forecaster(
        scaled[:test_border], times[:test_border], series.levels, config, names=series.names
    )
    starts = np.arange(test_border - context, rows - context)
    targets = scaled[starts + context]
    keep = np.isfinite(targets).all(axis=1)
    starts, targets = starts[keep], targets[keep]
    windows = np.stack([scaled[start : start + context] for start in starts])
    ends = times[starts + context - 1]
    began = time.perf_counter()
    all_draws = forecaster.sample(windows, ends, 4 * samples, seed=config.seed)[:, :, 0, :]
    draws = all_draws[:, :samples]
    sample_seconds = time.perf_counter() - began
    baseline = LastValueBaseline(
        scaled[: int(rows * 0.7)], context, 1, noise="gaussian", sample_floor="none"
    )
    base_draws = baseline.sample(windows, ends, samples, seed=config.seed)[:, :, 0, :]
    return {
        "mse": float(((all_draws.mean(axis=1) - targets) ** 2).mean()),
        "mse_mean100": float(((draws.mean(axis=1) - targets) ** 2).mean()),
        "crps": float(crps(draws, targets).mean()),
        "coverage80": coverage(draws, targets, 0.8),
        "coverage95": coverage(draws, targets, 0.95),
        "baseline_mse": float(((base_draws.mean(axis=1) - targets) ** 2).mean()),
        "baseline_crps": float(crps(base_draws, targets).mean()),
        "train_s": float(forecaster.metadata["train_seconds"]),
        "epochs": int(forecaster.metadata["epochs"]),
        "sample_s": sample_seconds,
        "params": forecaster.parameter_count,
        "windows": len(starts),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=int, default=144)
    parser.add_argument("--containers", type=str, default="1-10", help="e.g. 1-10 or 1,3,5")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head", choices=["flow", "gaussian"], default="flow")
    add_flow_transform_option(parser)
    add_smoke_option(parser)
    args, size = parse_with_smoke(
        parser, argv, context=SMOKE_CONTEXT, containers="1", samples=SMOKE_SAMPLES
    )
    if "-" in args.containers:
        first, last = (int(part) for part in args.containers.split("-"))
        numbers = list(range(first, last + 1))
    else:
        numbers = [int(part) for part in args.containers.split(",")]
    torch.set_num_threads(1)
    # MinMax-scaled values are zero at the training minimum by construction, not at a
    # physical bound, and go below it in the test part: no sample floor, for either model.
    config = size.forecaster(
        ForecasterConfig(
            context_length=args.context,
            horizon=1,
            head=args.head,
            flow_transform=args.flow_transform,
            seed=args.seed,
            sample_floor="none",
        )
    )
    print(
        f"B1 fisher: data ../shared/data/fisher containers {numbers}, raw 11 indicators, "
        f"MinMax on first 70%, split 70/10/20, L={args.context}, H=1, S={args.samples}, "
        f"point = mean of {4 * args.samples} samples, "
        f"seed={args.seed}, head={args.head}, flow_transform={args.flow_transform}; "
        f"command: python -m bench.fisher "
        f"--context {args.context}{size.flag}",
        flush=True,
    )
    results = []
    for number in numbers:
        result = run_container(number, args.context, args.samples, config, size)
        results.append(result)
        print(
            f"container{number}: mse={result['mse']:.4f} "
            f"(mean of 100: {result['mse_mean100']:.4f}) crps={result['crps']:.4f} "
            f"cov80={result['coverage80']:.2f} cov95={result['coverage95']:.2f} "
            f"train_s={result['train_s']:.0f} epochs={result['epochs']} "
            f"sample_s={result['sample_s']:.1f} windows={result['windows']} | last-value+"
            f"gaussian mse={result['baseline_mse']:.4f} crps={result['baseline_crps']:.4f}",
            flush=True,
        )

    def average(key: str) -> float:
        return float(np.mean([result[key] for result in results]))

    print(f"mse with the mean of the first 100 samples: {average('mse_mean100'):.4f}")
    print(
        f"baseline last-value+gaussian mse={average('baseline_mse'):.4f} "
        f"crps={average('baseline_crps'):.4f}"
    )
    print(
        f"fisher L={args.context} mse={average('mse'):.4f} crps={average('crps'):.4f} "
        f"params={results[0]['params']} "
        f"train_s_median={statistics.median(r['train_s'] for r in results):.0f} "
        f"coverage80={average('coverage80'):.2f} coverage95={average('coverage95'):.2f}"
    )


if __name__ == "__main__":
    main()
