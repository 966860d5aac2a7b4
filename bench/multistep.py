"""B2: multi-step (H=12) probabilistic forecasts of demand, against the baselines.

Series: fisher container1..N `load` (10-minute steps, L=144 = one day) and GenTD26 GPU
demand (`gentd26:requests` `gpu_seconds` binned at 5 minutes, L=288 = one day). Each is
univariate. Split 70/10/20 of rows: the models train on the first 80% (the last 12.5% of
it is the early-stopping validation part), and every step of the last 20% is a forecast
origin. Scores are in units of the training part's standard deviation; CRPS and the 90%
interval's coverage (sample quantiles at Weibull plotting positions) from 200 samples.
Baselines: last value + empirical residual paths, seasonal naive (one day), ETS (damped
trend, statsmodels) and the same encoder with a Gaussian head. Both series are never
negative, and every model's samples, the baselines' included, are clamped at zero (the
default `sample_floor`).

    python -m bench.multistep
"""

from __future__ import annotations

import argparse
import datetime as dt

import numpy as np
import torch

from bench.options import add_flow_transform_option
from controller.traces import TraceOptions, load_trace
from forecaster import ForecasterConfig, train_forecaster
from forecaster.base import ProbabilisticForecaster
from forecaster.baselines import ETSBaseline, LastValueBaseline, SeasonalNaiveBaseline
from forecaster.config import FlowTransformKind
from forecaster.scoring import coverage, crps

HORIZON = 12


def evaluate_series(
    label: str,
    values: np.ndarray,
    times: np.ndarray,
    context: int,
    samples: int,
    seed: int,
    flow_transform: FlowTransformKind,
) -> dict[str, dict[str, float]]:
    rows = len(values)
    border = int(rows * 0.8)
    spread = float(np.nanstd(values[: int(rows * 0.7)]))
    scaled = values / spread
    config = ForecasterConfig(
        context_length=context, horizon=HORIZON, seed=seed, flow_transform=flow_transform
    )
    models: dict[str, ProbabilisticForecaster] = {}
    for head in ("flow", "gaussian"):
        trained = train_forecaster(
            scaled[:border], times[:border], [1], config.replace(head=head), names=["demand"]
        )
        print(
            f"  {label} {head}: trained {trained.metadata['train_seconds']:.0f} s, "
            f"{trained.metadata['epochs']} epochs, {trained.parameter_count} parameters",
            flush=True,
        )
        models["harmony" if head == "flow" else "gaussian-head"] = trained
    history = scaled[: int(rows * 0.7)]
    season = context
    models["last-value"] = LastValueBaseline(history, context, HORIZON)
    models["seasonal-naive"] = SeasonalNaiveBaseline(history, context, HORIZON, season)
    models["ets"] = ETSBaseline(history, context, HORIZON)
    origins = np.arange(border, rows - HORIZON + 1)
    targets = np.stack([scaled[o : o + HORIZON] for o in origins])
    keep = np.isfinite(targets).all(axis=(1, 2))
    origins, targets = origins[keep], targets[keep]
    windows = np.stack([scaled[o - context : o] for o in origins])
    results: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        draws = model.sample(windows, times[origins - 1], samples, seed=seed)
        results[name] = {
            "crps": float(crps(draws, targets).mean()),
            "coverage90": coverage(draws, targets, 0.9),
        }
        print(
            f"  {label} {name}: crps={results[name]['crps']:.4f} "
            f"coverage90={results[name]['coverage90']:.3f} origins={len(origins)}",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=1, help="fisher containers 1..N")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    add_flow_transform_option(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(
        f"B2 multistep: H={HORIZON}, fisher container1..{args.containers} load (10 min, L=144) "
        f"and gentd26:requests gpu_seconds (5 min, L=288); split 70/10/20, S={args.samples}, "
        f"seed={args.seed}, flow_transform={args.flow_transform}; "
        f"samples of every model clamped at zero; "
        f"command: python -m bench.multistep",
        flush=True,
    )
    series_list = []
    for number in range(1, args.containers + 1):
        fisher = load_trace(f"fisher:container{number}", TraceOptions())
        series_list.append((fisher.name, fisher.column("load")[:, None], fisher.timestamps(), 144))
    gentd = load_trace("gentd26:requests", TraceOptions(step=dt.timedelta(minutes=5)))
    series_list.append((gentd.name, gentd.column("gpu_seconds")[:, None], gentd.timestamps(), 288))
    ratios, coverages = [], []
    for label, values, times, context in series_list:
        results = evaluate_series(
            label, values, times, context, args.samples, args.seed, args.flow_transform
        )
        baselines = {k: v["crps"] for k, v in results.items() if k != "harmony"}
        best = min(baselines, key=lambda key: baselines[key])
        ratio = results["harmony"]["crps"] / baselines[best]
        ratios.append(ratio)
        coverages.append(results["harmony"]["coverage90"])
        print(f"{label}: crps ratio vs best baseline ({best}) = {ratio:.3f}", flush=True)
    print(
        f"multistep H={HORIZON} crps_ratio_vs_best_baseline={np.mean(ratios):.2f} "
        f"coverage90={np.mean(coverages):.2f}"
    )


if __name__ == "__main__":
    main()
