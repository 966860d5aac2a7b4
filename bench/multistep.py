"""B2: the forecast the decisions consume: the upper tail of the decision window's demand.

A node asked for at an origin is ready after the provisioning lead D (10 minutes) and then
serves a window W (30 minutes); the decision needs the 0.99 quantile of the largest demand
over that window. Series: fisher container1..N `load` (10-minute steps, L=144 = one day)
and GenTD26 GPU demand (`gentd26:requests` `gpu_seconds` binned at 5 minutes, L=288 = one
day), each univariate and scaled by its fit part's standard deviation. Split 70/10/20 of
rows: baselines fit on the first 70% and are conformally calibrated on the next 10%;
Harmony trains on the first 80% (its last 12.5%, the same 70-80%, is its validation part)
and is scored raw, as the engine consumes it (`harmony+conformal`, shown apart, is it with
the baselines' calibration). Every step of the last 20% is a test origin.
Score: pinball loss at 0.99 of the window maximum and coverage of that quantile, against
the best of ETS, Holt-Winters, seasonal naive, the last-value conditional quantile and
boosted quantile regression (`bench.tail_baselines`). Per series it also prints what the
flow adds: the validation log-likelihood per window with the flow on minus off (the same
weights, the Gaussian head) and the tail scores of that Gaussian head.

    python -m bench.multistep
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass

import numpy as np
import torch

from bench.options import (
    SMOKE_SAMPLES,
    RunSize,
    add_flow_transform_option,
    add_smoke_option,
    parse_with_smoke,
)
from bench.tail_baselines import TailTask, baseline_quantiles, calibration_shift
from controller.traces import TraceOptions, load_trace
from forecaster import ForecasterConfig, train_forecaster
from forecaster.config import FlowTransformKind
from forecaster.model import Forecaster
from forecaster.scoring import quantile_pinball

LEAD_SECONDS = 600.0
WINDOW_SECONDS = 1800.0
LEVEL = 0.99


@dataclass(frozen=True)
class Series:
    label: str
    values: np.ndarray  # [T]
    times: np.ndarray  # [T]
    context: int


@dataclass(frozen=True)
class TailScore:
    pinball: float
    coverage: float


def score(quantile: np.ndarray, observed: np.ndarray) -> TailScore:
    return TailScore(
        pinball=float(quantile_pinball(quantile, observed, LEVEL).mean()),
        coverage=float(np.mean(observed <= quantile)),
    )


def harmony_quantile(
    model: Forecaster, task: TailTask, origins: np.ndarray, samples: int, seed: int
) -> np.ndarray:
    """The level-quantile of the window maximum over the model's joint sample paths."""
    windows = np.stack([task.values[o - model.context_length : o] for o in origins])[..., None]
    draws = model.sample(windows, task.times[origins - 1], samples, seed=seed)[..., 0]
    window_max = draws[:, :, task.lead :].max(axis=2)  # [O, S]
    result: np.ndarray = np.quantile(window_max, LEVEL, axis=1)
    return result


def flow_log_likelihood_gain(model: Forecaster, task: TailTask) -> float:
    """Mean validation log-likelihood per window, flow on minus flow off (same weights)."""
    origins = task.calibration_origins()
    origins = origins[np.isfinite(task.values[origins[:, None] + np.arange(task.horizon)]).all(1)]
    windows = np.stack([task.values[o - model.context_length : o] for o in origins])[..., None]
    targets = np.stack([task.values[o : o + task.horizon] for o in origins])[..., None]
    ends = task.times[origins - 1]
    with_flow = model.log_likelihood(windows, ends, targets)
    model.network.use_flow(False)
    try:
        without = model.log_likelihood(windows, ends, targets)
    finally:
        model.network.use_flow(True)
    return float(np.mean(with_flow - without))


def evaluate_series(
    series: Series, samples: int, seed: int, flow_transform: FlowTransformKind, size: RunSize
) -> dict[str, TailScore]:
    rows = len(series.values)
    step = float(series.times[1] - series.times[0])
    fit_end, train_end = int(rows * 0.7), int(rows * 0.8)
    spread = float(np.nanstd(series.values[:fit_end]))
    task = TailTask(
        values=series.values / spread,
        times=series.times,
        lead=max(1, round(LEAD_SECONDS / step)),
        window=max(1, round(WINDOW_SECONDS / step)),
        season=round(86400.0 / step),
        fit_end=fit_end,
        train_end=train_end,
        level=LEVEL,
    )
    origins = task.test_origins()
    observed = task.window_max(origins)
    quantiles = baseline_quantiles(task, series.context, seed)
    # Trained to early stopping, not to a time budget: the figures do not depend on how
    # busy the machine was.
    config = size.forecaster(
        ForecasterConfig(
            context_length=series.context,
            horizon=task.horizon,
            seed=seed,
            flow_transform=flow_transform,
            max_train_seconds=None,
        )
    )
    model = train_forecaster(
        task.values[:train_end, None], series.times[:train_end], [1], config, names=["demand"]
    )
    quantiles["harmony"] = harmony_quantile(model, task, origins, samples, seed)
    # The raw test quantiles, shifted: sampling the test origins once serves both lines.
    quantiles["harmony+conformal"] = quantiles["harmony"] + calibration_shift(
        task, lambda at: harmony_quantile(model, task, at, samples, seed)
    )
    model.network.use_flow(False)
    quantiles["harmony-gaussian"] = harmony_quantile(model, task, origins, samples, seed)
    model.network.use_flow(True)
    gain = flow_log_likelihood_gain(model, task)
    print(
        f"  {series.label}: trained {model.metadata['train_seconds']:.0f} s, "
        f"{model.metadata['epochs']} epochs; flow log-likelihood gain on validation "
        f"{gain:+.3f} per window ({'identity' if abs(gain) < 1e-4 else 'non-identity'} flow)",
        flush=True,
    )
    results = {name: score(q, observed) for name, q in quantiles.items()}
    for name, result in results.items():
        print(
            f"  {series.label} {name}: pinball={result.pinball:.4f} "
            f"coverage={result.coverage:.3f} origins={len(origins)}",
            flush=True,
        )
    return results


def load_series(containers: int, size: RunSize) -> list[Series]:
    series = []
    for number in range(1, containers + 1):
        fisher = size.series(load_trace(f"fisher:container{number}", TraceOptions()))
        context = size.context(144)
        series.append(Series(fisher.name, fisher.column("load"), fisher.timestamps(), context))
    gentd = size.series(load_trace("gentd26:requests", TraceOptions(step=dt.timedelta(minutes=5))))
    context = size.context(288)
    series.append(Series(gentd.name, gentd.column("gpu_seconds"), gentd.timestamps(), context))
    return series


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10, help="fisher containers 1..N")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    add_flow_transform_option(parser)
    add_smoke_option(parser)
    args, size = parse_with_smoke(parser, argv, containers=1, samples=SMOKE_SAMPLES)
    torch.set_num_threads(1)
    lead, window = round(LEAD_SECONDS / 60), round(WINDOW_SECONDS / 60)
    print(
        f"B2 tail: {LEVEL} quantile of the largest demand from {lead} to {lead + window} "
        f"minutes ahead; fisher container1..{args.containers} load (10 min, L=144) and "
        f"gentd26:requests gpu_seconds (5 min, L=288); split 70/10/20, S={args.samples}, "
        f"seed={args.seed}, flow_transform={args.flow_transform}; "
        f"command: python -m bench.multistep{size.flag}",
        flush=True,
    )
    ratios, coverages = [], []
    for series in load_series(args.containers, size):
        results = evaluate_series(series, args.samples, args.seed, args.flow_transform, size)
        baselines = {k: v.pinball for k, v in results.items() if not k.startswith("harmony")}
        best = min(baselines, key=lambda key: baselines[key])
        ratio = results["harmony"].pinball / baselines[best]
        ratios.append(ratio)
        coverages.append(results["harmony"].coverage)
        print(f"{series.label}: pinball ratio vs best baseline ({best}) = {ratio:.3f}", flush=True)
    print(
        f"tail lead={lead}m window={window}m level={LEVEL} "
        f"pinball_ratio_vs_best={np.mean(ratios):.2f} coverage={np.mean(coverages):.3f}"
    )


if __name__ == "__main__":
    main()
