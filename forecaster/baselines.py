"""Baseline forecasters with the same `sample` interface as `Forecaster`.

- `LastValueBaseline`: the last observed value plus residuals of the training data
  (empirical: whole joint residual paths resampled; or Gaussian per indicator and step).
- `SeasonalNaiveBaseline`: the value one season earlier plus empirical residuals.
- `ETSBaseline`: exponential smoothing (additive error, damped additive trend) per
  indicator, parameters fitted on the training data, state re-estimated from each
  context window, sample paths simulated from the model (statsmodels).
Like `Forecaster`, each clamps its samples at the floor its `sample_floor` names (zero
for data that never go below it, by default), so that baselines and model are compared
on the same footing.
The flow's ablation (same encoder, Gaussian head) is `train_forecaster` with
`ForecasterConfig(head="gaussian")`.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import numpy.typing as npt

from forecaster import fill
from forecaster.base import FloatArray, SampleSummaries, check_context, sample_floor_of
from forecaster.config import FloorKind

_MAX_RESIDUAL_PATHS = 20_000


def forward_fill(context: FloatArray) -> FloatArray:
    """`[B, L, N]` with each gap replaced by the last observed value before it (or after);
    a window with no observation of an indicator is zero there."""
    return np.nan_to_num(fill.forward_fill(context, axis=1))


def _residual_paths(values: FloatArray, lag: int, horizon: int) -> FloatArray:
    """Joint residuals `[M, H, N]`: y[t + h] - y[t + h - lag] style differences.

    For the last-value baseline `lag` is 1 and every step h uses the same anchor y[t - 1];
    for the seasonal one each step compares to the value one season before it.
    """
    rows = values.shape[0]
    paths = []
    for start in range(lag, rows - horizon + 1):
        target = values[start : start + horizon]
        if lag == 1:
            anchor = np.broadcast_to(values[start - 1], target.shape)
        else:
            anchor = values[start - lag : start - lag + horizon]
        paths.append(target - anchor)
    stacked = np.asarray(paths)
    complete = np.isfinite(stacked).all(axis=(1, 2))
    if not complete.any():
        raise ValueError("no complete training window to estimate residuals from")
    result: FloatArray = stacked[complete]
    return result


class _ResidualBaseline(SampleSummaries):
    name = "residual"

    def __init__(
        self,
        residuals: FloatArray,
        context_length: int,
        horizon: int,
        noise: Literal["empirical", "gaussian"],
        floor: FloatArray,
    ) -> None:
        if residuals.shape[0] > _MAX_RESIDUAL_PATHS:
            keep = np.linspace(0, residuals.shape[0] - 1, _MAX_RESIDUAL_PATHS).astype(int)
            residuals = residuals[keep]
        self.residuals = residuals
        self.context_length = context_length
        self.horizon = horizon
        self.noise = noise
        self.num_indicators = residuals.shape[2]
        self.floor = floor

    def anchor(self, filled: FloatArray) -> FloatArray:
        raise NotImplementedError

    def sample(
        self,
        context: npt.ArrayLike,
        context_end_timestamps: npt.ArrayLike,
        num_samples: int,
        seed: int | None = None,
    ) -> FloatArray:
        windows, _ = check_context(
            context, context_end_timestamps, self.context_length, self.num_indicators, num_samples
        )
        generator = np.random.default_rng(seed)
        point = self.anchor(forward_fill(windows))  # [B, H, N]
        batch = point.shape[0]
        if self.noise == "empirical":
            picks = generator.integers(0, self.residuals.shape[0], size=(batch, num_samples))
            noise = self.residuals[picks]
        else:
            std = self.residuals.std(axis=0)
            noise = generator.standard_normal((batch, num_samples, *std.shape)) * std
        result: FloatArray = np.maximum(point[:, None] + noise, self.floor)
        return result


class LastValueBaseline(_ResidualBaseline):
    """Last observed value + residuals of the training data's h-step changes."""

    def __init__(
        self,
        values: npt.ArrayLike,
        context_length: int,
        horizon: int,
        noise: Literal["empirical", "gaussian"] = "empirical",
        sample_floor: FloorKind = "zero_if_nonnegative",
    ) -> None:
        data = np.asarray(values, dtype=np.float64)
        super().__init__(
            _residual_paths(data, 1, horizon),
            context_length,
            horizon,
            noise,
            sample_floor_of(data, sample_floor),
        )
        self.name = "last-value" if noise == "empirical" else "last-value-gaussian"

    def anchor(self, filled: FloatArray) -> FloatArray:
        return np.repeat(filled[:, -1:, :], self.horizon, axis=1)


class SeasonalNaiveBaseline(_ResidualBaseline):
    """The value one season (e.g. one day) earlier + empirical seasonal residuals."""

    def __init__(
        self,
        values: npt.ArrayLike,
        context_length: int,
        horizon: int,
        season_steps: int,
        sample_floor: FloorKind = "zero_if_nonnegative",
    ) -> None:
        if season_steps < horizon or season_steps > context_length:
            raise ValueError(
                f"seasonal naive needs horizon {horizon} <= season {season_steps} <= "
                f"context {context_length}"
            )
        data = np.asarray(values, dtype=np.float64)
        super().__init__(
            _residual_paths(data, season_steps, horizon),
            context_length,
            horizon,
            "empirical",
            sample_floor_of(data, sample_floor),
        )
        self.season_steps = season_steps
        self.name = "seasonal-naive"

    def anchor(self, filled: FloatArray) -> FloatArray:
        begin = self.context_length - self.season_steps
        return filled[:, begin : begin + self.horizon, :]


class ETSBaseline(SampleSummaries):
    """Exponential smoothing with intervals (statsmodels ETSModel), one model per indicator."""

    name = "ets"

    def __init__(
        self,
        values: npt.ArrayLike,
        context_length: int,
        horizon: int,
        sample_floor: FloorKind = "zero_if_nonnegative",
    ) -> None:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        data = forward_fill(np.asarray(values, dtype=np.float64)[None])[0]
        self.floor = sample_floor_of(data, sample_floor)
        self.context_length = context_length
        self.horizon = horizon
        self.num_indicators = data.shape[1]
        self.params: list[FloatArray] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for column in range(self.num_indicators):
                model = ETSModel(
                    data[:, column],
                    error="add",
                    trend="add",
                    damped_trend=True,
                    initialization_method="heuristic",
                )
                fitted = model.fit(disp=False)
                self.params.append(np.asarray(fitted.params, dtype=np.float64))

    def sample(
        self,
        context: npt.ArrayLike,
        context_end_timestamps: npt.ArrayLike,
        num_samples: int,
        seed: int | None = None,
    ) -> FloatArray:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        windows, _ = check_context(
            context, context_end_timestamps, self.context_length, self.num_indicators, num_samples
        )
        filled = forward_fill(windows)
        generator = np.random.default_rng(seed)
        batch = filled.shape[0]
        result = np.empty((batch, num_samples, self.horizon, self.num_indicators))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for window in range(batch):
                for column in range(self.num_indicators):
                    model = ETSModel(
                        filled[window, :, column],
                        error="add",
                        trend="add",
                        damped_trend=True,
                        initialization_method="heuristic",
                    )
                    smoothed = model.smooth(self.params[column])
                    paths = smoothed.simulate(
                        self.horizon,
                        repetitions=num_samples,
                        anchor="end",
                        rng=generator,
                    )
                    result[window, :, :, column] = (
                        np.asarray(paths).reshape(self.horizon, num_samples).T
                    )
        clamped: FloatArray = np.maximum(result, self.floor)
        return clamped
