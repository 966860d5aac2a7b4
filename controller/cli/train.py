"""`harmony train TRACE` and `harmony evaluate TRACE --model DIR --baselines ...`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from controller.cli.trace_options import TraceArgument, with_trace_options
from controller.errors import BadUsage, HarmonyError
from controller.traces import TraceOptions, load_trace

console = Console(highlight=False)
BASELINES = ("last-value", "seasonal-naive", "ets", "gaussian")


def _config(context: int, horizon: int, head: str, max_seconds: float, seed: int) -> Any:
    from forecaster import ForecasterConfig

    try:
        return ForecasterConfig(
            context_length=context,
            horizon=horizon,
            head=head,  # type: ignore[arg-type]
            max_train_seconds=max_seconds,
            seed=seed,
        )
    except ValueError as error:
        raise BadUsage(str(error)) from None


def _train(series: Any, rows: int, config: Any) -> Any:
    from forecaster import train_forecaster

    part = series.slice(0, rows)
    try:
        return train_forecaster(
            part.values, part.timestamps(), part.levels, config, names=part.names, progress=True
        )
    except ValueError as error:
        raise HarmonyError(f"trace {series.name!r}: cannot train: {error}") from None


@with_trace_options
def train(
    trace: TraceArgument,
    trace_options: TraceOptions,
    context: Annotated[int, typer.Option(min=2, help="Context length L in steps.")] = 144,
    horizon: Annotated[int, typer.Option(min=1, help="Forecast horizon H in steps.")] = 12,
    head: Annotated[str, typer.Option(help="flow, or gaussian (the ablation).")] = "flow",
    max_seconds: Annotated[float, typer.Option(help="Training time limit.")] = 85.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    name: Annotated[str | None, typer.Option(help="Model name (default: the trace).")] = None,
    out: Annotated[Path | None, typer.Option(help="Model folder (default: model dir).")] = None,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Record it in the state store.")
    ] = True,
) -> None:
    """Train the forecaster on a trace, save it, and register it in the state store."""
    from controller.settings import get_settings

    series = load_trace(trace, trace_options)
    config = _config(context, horizon, head, max_seconds, seed)
    model_name = name or series.name.replace(":", "-")
    settings = get_settings()
    folder = out or settings.model_dir / model_name
    console.print(
        f"training {model_name} on {series.name}: {len(series)} rows x {len(series.names)} "
        f"indicators, L={context}, H={horizon}, head={head}"
    )
    forecaster = _train(series, len(series), config)
    forecaster.save(folder)
    meta = forecaster.metadata
    score = meta.get("val_crps", meta.get("val_nll"))
    console.print(
        f"trained in {meta['train_seconds']:.0f} s, {meta['epochs']} epochs, "
        f"{forecaster.parameter_count} parameters, validation score {score:.4f}; saved to {folder}"
    )
    if register:
        version_id = _register(forecaster, model_name, folder)
        console.print(f"registered as model version {version_id}")


def _register(forecaster: Any, name: str, folder: Path) -> int:
    from controller.clock import SystemClock
    from controller.model_registry import register_model
    from controller.settings import get_settings
    from controller.state.db import create_engine_for, make_session_factory, require_current_schema

    engine = create_engine_for(get_settings().database_url)
    require_current_schema(engine)
    with make_session_factory(engine).begin() as session:
        version = register_model(
            session, forecaster, name=name, clock=SystemClock(), artifact_uri=str(folder)
        )
        return int(version.id)


@with_trace_options
def evaluate(
    trace: TraceArgument,
    trace_options: TraceOptions,
    model: Annotated[Path, typer.Option(help="Folder of a model saved by `harmony train`.")],
    baselines: Annotated[
        str, typer.Option(help=f"Comma-separated, from {', '.join(BASELINES)}; or none.")
    ] = "last-value,seasonal-naive,ets",
    test_fraction: Annotated[float, typer.Option(help="Share of rows scored at the end.")] = 0.2,
    samples: Annotated[int, typer.Option(min=2, help="Samples per forecast.")] = 100,
    stride: Annotated[int, typer.Option(min=1, help="Steps between forecast origins.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Score a trained model and baselines on the last part of a trace (CRPS, MSE, coverage)."""
    from forecaster import Forecaster, IncompatibleModelError

    chosen = [item.strip() for item in baselines.split(",") if item.strip() and item != "none"]
    unknown = [item for item in chosen if item not in BASELINES]
    if unknown:
        raise BadUsage(f"--baselines: unknown {unknown}; choose from {', '.join(BASELINES)}")
    if not 0.0 < test_fraction < 0.9:
        raise BadUsage("--test-fraction must be in (0, 0.9)")
    series = load_trace(trace, trace_options)
    try:
        forecaster = Forecaster.load(model)
        forecaster.check_indicators(series.names)
    except IncompatibleModelError as error:
        raise HarmonyError(f"--model {model}: {error}") from None
    border = int(len(series) * (1.0 - test_fraction))
    models: dict[str, Any] = {"harmony": forecaster}
    models.update(_baselines(chosen, series, border, forecaster))
    table = Table(title=f"{series.name}: rows {border}..{len(series)}, S={samples}")
    for column in ("model", "CRPS", "MSE", "coverage80", "coverage90", "energy"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for label, candidate in models.items():
        scores = _score(candidate, series, border, forecaster, samples, stride, seed)
        table.add_row(label, *(f"{value:.4f}" for value in scores))
    console.print(table)


def _baselines(chosen: list[str], series: Any, border: int, forecaster: Any) -> dict[str, Any]:
    from forecaster.baselines import ETSBaseline, LastValueBaseline, SeasonalNaiveBaseline

    length, horizon = forecaster.context_length, forecaster.horizon
    history = series.values[:border]
    built: dict[str, Any] = {}
    for item in chosen:
        if item == "last-value":
            built[item] = LastValueBaseline(history, length, horizon)
        elif item == "seasonal-naive":
            season = round(dt.timedelta(days=1) / series.step)
            if not horizon <= season <= length:
                console.print(f"seasonal-naive skipped: a day is {season} steps, L={length}")
                continue
            built[item] = SeasonalNaiveBaseline(history, length, horizon, season)
        elif item == "ets":
            built[item] = ETSBaseline(history, length, horizon)
        else:
            built[item] = _train(series, border, forecaster.config.replace(head="gaussian"))
    return built


def _score(
    candidate: Any, series: Any, border: int, forecaster: Any, samples: int, stride: int, seed: int
) -> list[float]:
    from forecaster.scoring import coverage, crps, energy_score

    length, horizon = forecaster.context_length, forecaster.horizon
    origins = np.arange(max(border, length), len(series) - horizon + 1, stride)
    if len(origins) == 0:
        raise HarmonyError("the test part holds no complete forecast window")
    times = series.timestamps()
    windows = np.stack([series.values[o - length : o] for o in origins])
    targets = np.stack([series.values[o : o + horizon] for o in origins])
    keep = np.isfinite(targets).all(axis=(1, 2))
    windows, targets, origins = windows[keep], targets[keep], origins[keep]
    # Scores on the trace's own units, each indicator divided by its spread over the training
    # part so that indicators of different units weigh alike.
    spread = np.nanstd(series.values[:border], axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    draws = candidate.sample(windows, times[origins - 1], samples, seed=seed) / spread
    scaled = targets / spread
    return [
        float(crps(draws, scaled).mean()),
        float(((draws.mean(axis=1) - scaled) ** 2).mean()),
        coverage(draws, scaled, 0.8),
        coverage(draws, scaled, 0.9),
        float(energy_score(draws, scaled).mean()),
    ]


def register(app: typer.Typer) -> None:
    app.command(name="train")(train)
    app.command(name="evaluate")(evaluate)
