"""Scoring rules against closed forms and against properscoring on the same inputs."""

from __future__ import annotations

import numpy as np
import properscoring
import pytest

from forecaster.scoring import coverage, crps, crps_torch, energy_score, gaussian_crps, pinball


def test_crps_matches_properscoring_on_the_same_samples() -> None:
    rng = np.random.default_rng(1)
    samples = rng.gamma(2.0, size=(30, 57, 3))
    observations = rng.gamma(2.0, size=(30, 3))
    expected = properscoring.crps_ensemble(observations, np.moveaxis(samples, 1, -1))
    np.testing.assert_allclose(crps(samples, observations), expected, rtol=1e-10)


def test_crps_of_many_gaussian_samples_approaches_the_closed_form() -> None:
    rng = np.random.default_rng(2)
    mean, std = np.array([0.0, 3.0, -1.0]), np.array([1.0, 0.5, 2.0])
    observations = np.array([0.3, 2.0, 4.0])
    samples = mean + std * rng.standard_normal((1, 40_000, 3))
    estimate = crps(samples, observations[None])[0]
    np.testing.assert_allclose(estimate, gaussian_crps(mean, std, observations), rtol=0.02)
    closed = properscoring.crps_gaussian(observations, mean, std)
    np.testing.assert_allclose(gaussian_crps(mean, std, observations), closed, rtol=1e-10)


def test_torch_crps_equals_numpy_crps() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    samples = rng.normal(size=(4, 25, 2, 3))
    observations = rng.normal(size=(4, 2, 3))
    result = crps_torch(torch.as_tensor(samples), torch.as_tensor(observations)).numpy()
    np.testing.assert_allclose(result, crps(samples, observations), rtol=1e-10)


def test_pinball_of_a_point_mass_is_the_quantile_loss() -> None:
    samples = np.full((1, 10), 2.0)
    loss = pinball(samples, np.array([5.0]), [0.1, 0.9])
    np.testing.assert_allclose(loss[:, 0], [0.1 * 3.0, 0.9 * 3.0])
    below = pinball(samples, np.array([0.0]), [0.1, 0.9])
    np.testing.assert_allclose(below[:, 0], [0.9 * 2.0, 0.1 * 2.0])


def test_pinball_averaged_over_levels_approximates_crps() -> None:
    rng = np.random.default_rng(4)
    samples = rng.normal(size=(200, 400))
    observations = rng.normal(size=200)
    levels = np.linspace(0.005, 0.995, 199)
    approximate = 2 * pinball(samples, observations, levels).mean(axis=0)
    np.testing.assert_allclose(approximate.mean(), crps(samples, observations).mean(), rtol=0.03)


def test_coverage_of_calibrated_samples_is_nominal() -> None:
    rng = np.random.default_rng(5)
    samples = rng.standard_normal((4000, 500))
    observations = rng.standard_normal(4000)
    assert coverage(samples, observations, 0.9) == pytest.approx(0.9, abs=0.02)
    assert coverage(samples * 0.3, observations, 0.9) < 0.5


def test_coverage_from_100_samples_is_not_biased_low() -> None:
    # The interval between numpy's default quantiles of 100 calibrated samples covers about
    # 0.93 of a 95% interval; at Weibull plotting positions it covers 0.95.
    rng = np.random.default_rng(7)
    samples = rng.standard_normal((40_000, 100))
    observations = rng.standard_normal(40_000)
    lower, upper = np.quantile(samples, [0.025, 0.975], axis=1)
    assert ((observations >= lower) & (observations <= upper)).mean() < 0.94
    assert coverage(samples, observations, 0.95) == pytest.approx(0.95, abs=0.004)
    assert coverage(samples, observations, 0.8) == pytest.approx(0.8, abs=0.006)


def test_energy_score_in_one_dimension_is_crps() -> None:
    rng = np.random.default_rng(6)
    samples = rng.normal(size=(5, 40, 1))
    observations = rng.normal(size=(5, 1))
    np.testing.assert_allclose(
        energy_score(samples, observations), crps(samples, observations)[:, 0], rtol=1e-10
    )


def test_energy_score_prefers_the_right_correlation() -> None:
    rng = np.random.default_rng(7)
    covariance = np.array([[1.0, 0.9], [0.9, 1.0]])
    observations = rng.multivariate_normal([0, 0], covariance, size=400)
    right = rng.multivariate_normal([0, 0], covariance, size=(400, 200))
    wrong = rng.multivariate_normal([0, 0], [[1.0, -0.9], [-0.9, 1.0]], size=(400, 200))
    assert energy_score(right, observations).mean() < energy_score(wrong, observations).mean()


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        crps(np.zeros((3, 10)), np.zeros(4))
