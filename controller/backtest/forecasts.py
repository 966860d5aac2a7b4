"""Harmony's forecaster in a backtest: trained on the first part, sampled for every origin.

All decision origins are forecast up front in batched `sample` calls: the context of the
origin at step t is rows t-L..t-1 only, so drawing them together is no look-ahead; it is
what makes a month of one-minute steps replay in well under a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from controller.errors import HarmonyError
from controller.series import Series
from forecaster.config import ForecasterConfig
from forecaster.model import Forecaster

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int], None]
ORIGINS_PER_BATCH = 256


def forecaster_config_for(
    delay_steps: int, base: ForecasterConfig | None = None
) -> ForecasterConfig:
    """The forecaster settings of a backtest: the horizon covers the delay plus one step."""
    config = base or ForecasterConfig()
    return config.replace(horizon=max(config.horizon, delay_steps + 1))


def train_on_history(
    series: Series, train_rows: int, config: ForecasterConfig, *, progress: bool = False
) -> Forecaster:
    """Train on rows [0, train_rows) of the series, every indicator with its level."""
    from forecaster.training import train_forecaster

    needed = config.context_length + config.horizon
    if train_rows < needed * 4:
        raise HarmonyError(
            f"trace {series.name!r}: the training part has {train_rows} rows, too few for "
            f"context {config.context_length} + horizon {config.horizon}; raise "
            "--train-fraction or use a longer trace"
        )
    history = series.slice(0, train_rows)
    try:
        return train_forecaster(
            history.values,
            history.timestamps(),
            history.levels,
            config,
            names=history.names,
            progress=progress,
        )
    except ValueError as error:
        raise HarmonyError(f"trace {series.name!r}: training failed: {error}") from None


def check_model(forecaster: Forecaster, series: Series, delay_steps: int) -> None:
    """Refuse a loaded model that does not fit the trace or cannot see past the delay."""
    try:
        forecaster.check_indicators(series.names)
    except ValueError as error:
        raise HarmonyError(f"--model: {error}") from None
    if abs(forecaster.step_seconds - series.step_seconds) > 1e-6:
        raise HarmonyError(
            f"--model was trained at a {forecaster.step_seconds:g} s step, the trace has "
            f"{series.step_seconds:g} s; pass --step {forecaster.step_seconds:g}s or retrain"
        )
    if forecaster.horizon < delay_steps + 1:
        raise HarmonyError(
            f"--model forecasts {forecaster.horizon} steps ahead; the provisioning delay of "
            f"{delay_steps} steps needs at least {delay_steps + 1}: retrain with a longer horizon"
        )


def forecast_origins(
    forecaster: Forecaster,
    values: FloatArray,
    timestamps: FloatArray,
    first_origin: int,
    demand_index: Sequence[int],
    *,
    num_samples: int,
    seed: int,
    progress: Progress | None = None,
) -> npt.NDArray[np.float32]:
    """`[T - first_origin, S, H, K]` demand samples for each origin t >= first_origin, each
    drawn from rows t-L..t-1 (the origin's own past) only."""
    length = forecaster.context_length
    if first_origin < length:
        raise HarmonyError(
            f"decisions start at row {first_origin} but the forecaster needs {length} rows "
            "of context: raise --train-fraction"
        )
    total = values.shape[0] - first_origin
    windows = np.lib.stride_tricks.sliding_window_view(values, length, axis=0)  # [T-L+1, N, L]
    out = np.empty((total, num_samples, forecaster.horizon, len(demand_index)), dtype=np.float32)
    for number, begin in enumerate(range(0, total, ORIGINS_PER_BATCH)):
        origins = np.arange(
            first_origin + begin, min(first_origin + begin + ORIGINS_PER_BATCH, values.shape[0])
        )
        context = np.swapaxes(windows[origins - length], 1, 2)  # [B, L, N]
        draws = forecaster.sample(context, timestamps[origins - 1], num_samples, seed=seed + number)
        out[begin : begin + len(origins)] = draws[..., list(demand_index)]
        if progress is not None:
            progress(len(origins))
    return out
