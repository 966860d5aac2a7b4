"""Baselines share the sampling interface and do what their names say."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.base import ProbabilisticForecaster
from forecaster.baselines import (
    ETSBaseline,
    LastValueBaseline,
    SeasonalNaiveBaseline,
    forward_fill,
)


def _series(rows: int = 600) -> np.ndarray:
    rng = np.random.default_rng(0)
    season = np.sin(2 * np.pi * np.arange(rows) / 24.0)
    return np.column_stack([10 + 3 * season + rng.normal(0, 0.2, rows), rng.normal(0, 1, rows)])


def test_last_value_samples_are_the_last_value_plus_training_residual_paths() -> None:
    values = _series()
    baseline = LastValueBaseline(values[:400], 48, 4, sample_floor="none")
    assert isinstance(baseline, ProbabilisticForecaster)
    window = values[400:448].copy()
    window[-1, 1] = np.nan  # the last observed value is used for a gap
    samples = baseline.sample(window[None], [0.0], 300, seed=1)
    assert samples.shape == (1, 300, 4, 2)
    residuals = samples[0] - np.array([window[-1, 0], window[-2, 1]])
    known = {tuple(np.round(path.ravel(), 9)) for path in baseline.residuals}
    assert all(tuple(np.round(path.ravel(), 9)) in known for path in residuals)


def test_seasonal_naive_repeats_the_previous_season() -> None:
    values = _series()
    baseline = SeasonalNaiveBaseline(values[:400], 48, 6, season_steps=24)
    window = values[400:448]
    median = np.median(baseline.sample(window[None], [0.0], 400, seed=0)[0], axis=0)
    np.testing.assert_allclose(median[:, 0], window[24:30, 0], atol=0.2)
    with pytest.raises(ValueError, match="season"):
        SeasonalNaiveBaseline(values[:400], 12, 6, season_steps=24)


def test_ets_intervals_cover_a_random_walk() -> None:
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(0, 1, (700, 1)), axis=0)
    baseline = ETSBaseline(walk[:400], 60, 3)
    starts = np.arange(400, 620, 4)
    windows = np.stack([walk[start : start + 60] for start in starts])
    samples = baseline.sample(windows, np.zeros(len(starts)), 200, seed=0)
    assert samples.shape == (len(starts), 200, 3, 1)
    lower, upper = np.quantile(samples[:, :, 0, 0], [0.05, 0.95], axis=1)
    truth = walk[starts + 60, 0]
    assert 0.75 < np.mean((truth >= lower) & (truth <= upper)) <= 1.0


def test_forward_fill_uses_the_last_observation_and_backfills_leading_gaps() -> None:
    context = np.array([[[np.nan], [2.0], [np.nan], [5.0], [np.nan]]])
    np.testing.assert_array_equal(forward_fill(context)[0, :, 0], [2.0, 2.0, 2.0, 5.0, 5.0])
