"""The classical forecasters of the predictive baselines: each system's own rule, from the
past only, linear in the demand."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from forecaster.classical import (
    FORECAST_SOURCES,
    crane_find_period,
    crane_model,
    fit_holt_winters_params,
    holt_winters_block_start,
    holt_winters_window_start,
    point_forecasts,
)

STEP = 1800.0  # 30-minute steps: a day is 48 steps, an hour 2
DAY = 48


def daily(rows: int, noise: float = 1.0, seed: int = 0) -> np.ndarray:
    """A daily cycle with a harmonic, plus Gaussian noise."""
    t = np.arange(rows)
    shape = 20 + 8 * np.sin(2 * np.pi * t / DAY) + 3 * np.cos(6 * np.pi * t / DAY)
    values: np.ndarray = shape + np.random.default_rng(seed).normal(0, noise, rows)
    return values


def test_holt_winters_equals_statsmodels_called_as_phpa_calls_it() -> None:
    demand = daily(7 * DAY)
    forecasts = point_forecasts("holt-winters", demand[:, None], 2 * DAY, 5, STEP)
    for t in (2 * DAY + 7, 5 * DAY + 30, 7 * DAY - 1):
        start = holt_winters_window_start(t, 0, DAY)
        assert start == max(0, t // DAY - 4) * DAY  # storedSeasons = 4, whole seasons pruned
        fitted_on = demand[start : holt_winters_block_start(t, 0, DAY)]
        alpha, beta, gamma = fit_holt_winters_params(fitted_on, DAY)
        model = ExponentialSmoothing(
            demand[start:t], trend="add", seasonal="add", seasonal_periods=DAY
        )
        fit = model.fit(
            smoothing_level=alpha, smoothing_trend=beta, smoothing_seasonal=gamma, optimized=False
        )
        expected = fit.forecast(5)
        np.testing.assert_allclose(forecasts[t - 2 * DAY, :, 0], expected, rtol=2e-6, atol=1e-5)


def test_holt_winters_parameters_are_refitted_once_a_day() -> None:
    assert holt_winters_block_start(2 * DAY + 5, 0, DAY) == 2 * DAY
    assert holt_winters_block_start(3 * DAY - 1, 0, DAY) == 2 * DAY
    assert holt_winters_block_start(3 * DAY, 0, DAY) == 3 * DAY


def test_crane_finds_the_daily_period_and_replays_the_next_cycle() -> None:
    rows = 3 * DAY
    t = np.arange(rows + DAY)
    clean = 50 + 20 * np.sin(2 * np.pi * t / DAY)
    noisy = clean + np.random.default_rng(3).normal(0, 0.5, t.shape[0])
    rng = np.random.default_rng(0)
    assert crane_find_period(noisy[:rows], STEP, rng) == DAY
    model = crane_model(noisy[:rows], STEP)
    assert model is not None
    estimate, end, periods = model
    assert (estimate.shape[0], end, periods) == (DAY, rows, 3)
    forecasts = point_forecasts("crane-dsp", noisy[:rows, None], rows - 1, DAY, STEP)
    # The model of the update at 2.5 days replays its last cycle from the end of its data.
    error = np.abs(forecasts[0, :, 0] - clean[rows - 1 : rows - 1 + DAY])
    assert error.mean() < 0.6 and error.max() < 2.0  # noise sd 0.5 on a swing of +-20


def test_crane_finds_no_period_in_noise_and_forecasts_nothing() -> None:
    noise = 30 + np.random.default_rng(5).normal(0, 3, 3 * DAY)
    assert crane_model(noise, STEP) is None
    assert np.isnan(point_forecasts("crane-dsp", noise[:, None], 2 * DAY, 3, STEP)).all()


def test_aws_hourly_forecast_reproduces_a_daily_pattern() -> None:
    hourly = 10 + (np.arange(24) % 24) ** 1.5  # a distinct level for each hour of the day
    demand = np.tile(np.repeat(hourly, 2), 4)  # 4 days of 30-minute steps
    demand[5] = np.nan  # a gap changes nothing: hourly means of what was seen
    forecasts = point_forecasts("aws-seasonal", demand[:, None], DAY, DAY, STEP)
    for row in (0, 13, 40, 70):
        t = DAY + row
        np.testing.assert_allclose(forecasts[row, :, 0], demand[t : t + DAY], rtol=1e-6)


@pytest.mark.parametrize(
    ("source", "first_forecast"),
    [("holt-winters", 2 * DAY), ("crane-dsp", 2 * DAY), ("aws-seasonal", DAY)],
)
def test_nan_until_the_minimum_history(source: str, first_forecast: int) -> None:
    demand = daily(3 * DAY)
    forecasts = point_forecasts(source, demand[:, None], 0, 4, STEP)
    assert forecasts.shape == (3 * DAY, 4, 1)
    assert np.isnan(forecasts[:first_forecast]).all()
    assert np.isfinite(forecasts[first_forecast:]).all()


@pytest.mark.parametrize("source", FORECAST_SOURCES)
def test_no_look_ahead_and_no_dependence_on_the_first_origin(source: str) -> None:
    demand = np.column_stack([daily(4 * DAY, seed=1), 3 * daily(4 * DAY, seed=2)])
    demand[70, 0] = np.nan
    t = 3 * DAY + 5
    changed = demand.copy()
    changed[t:] = np.random.default_rng(9).uniform(0, 100, changed[t:].shape)
    row = point_forecasts(source, demand, t, 6, STEP)[0]
    assert np.isfinite(row).all()
    np.testing.assert_array_equal(point_forecasts(source, changed, t, 6, STEP)[0], row)
    np.testing.assert_array_equal(point_forecasts(source, demand, t - 30, 6, STEP)[30], row)


@pytest.mark.parametrize("source", FORECAST_SOURCES)
def test_forecasts_scale_with_the_demand(source: str) -> None:
    demand = daily(4 * DAY)[:, None]
    base = point_forecasts(source, demand, 2 * DAY, 4, STEP)
    scaled = point_forecasts(source, 7.3 * demand, 2 * DAY, 4, STEP)
    assert base.dtype == np.float32 and np.isfinite(base).all()
    np.testing.assert_allclose(scaled, 7.3 * base, rtol=1e-5)


def test_bad_arguments_are_refused() -> None:
    demand = daily(10)[:, None]
    with pytest.raises(ValueError, match="unknown forecast source"):
        point_forecasts("prophet", demand, 0, 1, STEP)
    with pytest.raises(ValueError, match="first_origin"):
        point_forecasts("aws-seasonal", demand, 11, 1, STEP)
