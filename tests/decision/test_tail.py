"""The extrapolated upper tail used when S samples are too few to show ε."""

from __future__ import annotations

import numpy as np
from scipy import special

from decision import PoolSpec
from decision.policies import make_policy
from decision.tail import fit_tail
from tests.decision.pool_sim import run_closed_loop

LEVELS = np.array([1e-2, 1e-3, 1e-4])


def test_is_the_peaks_over_threshold_quantile_with_the_scale_at_its_credible_bound() -> None:
    values = np.linspace(1.0, 9.0, 20)
    tail = values[-5:] - values[-6]  # m = 5 of 20 (5% of S, at least 5)
    scale = tail.sum() / special.gammaincinv(5, 0.1)
    expected = values[-6] + scale * np.log(0.25 / LEVELS)
    np.testing.assert_allclose(fit_tail(values, 0.9).quantile(LEVELS), expected)


def test_grows_as_the_level_falls_and_as_the_samples_widen_never_below_the_largest() -> None:
    values = np.sort(np.random.default_rng(1).normal(50.0, 5.0, 200))
    quantiles = fit_tail(values, 0.9).quantile(LEVELS)
    assert np.all(np.diff(quantiles) > 0) and quantiles[0] >= values[-1]
    median = np.median(values)
    wider = fit_tail(median + 2 * (values - median), 0.9).quantile(LEVELS)
    assert np.all(wider > quantiles)


def test_samples_that_agree_exactly_give_their_value() -> None:
    np.testing.assert_allclose(fit_tail(np.full(50, 7.0), 0.9).quantile(LEVELS), 7.0)
    np.testing.assert_allclose(fit_tail(np.array([3.0]), 0.9).quantile(LEVELS), 3.0)


def test_covers_a_true_tail_quantile_about_as_often_as_its_credibility() -> None:
    covered = [
        fit_tail(np.sort(np.random.default_rng(seed).exponential(size=200)), 0.9)
        .quantile(np.array([1e-3]))[0] >= np.log(1000)
        for seed in range(200)
    ]  # fmt: skip
    assert 0.8 <= np.mean(covered) <= 0.97


def test_an_overconfident_forecaster_still_meets_a_small_epsilon() -> None:
    """S = 200 cannot show ε = 0.01 at 90% credibility. Samples half as wide as the truth
    used to be covered and no further (realised rate about 8%); with the tail extrapolated
    the calibration can ask for more than the largest sample."""
    spec = PoolSpec(
        capacity_per_replica=1.0, provisioning_delay_steps=2, stabilization_steps=1,
        sla_epsilon=0.01, max_replicas=400,
    )  # fmt: skip
    demand = 100 + 10 * np.random.default_rng(11).standard_normal(3005)
    shortfall, _ = run_closed_loop(
        make_policy("harmony", spec),
        demand,
        lambda t, rng: 100 + 5 * rng.standard_normal((200, 3)),
        3000,
        seed=3,
        start_replicas=100,
    )
    assert shortfall[1000:].mean() <= 1.5 * spec.sla_epsilon


def test_columns_get_one_tail_each() -> None:
    columns = np.sort(np.random.default_rng(4).gamma(2.0, 3.0, (100, 3)), axis=0)
    together = fit_tail(columns, 0.9).quantile(LEVELS)
    for index in range(3):
        alone = fit_tail(columns[:, index], 0.9).quantile(LEVELS)
        np.testing.assert_allclose(together[:, index], alone)
