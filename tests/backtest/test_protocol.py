"""The deployable protocol: knobs fit on tune, judged on test, the pool sized from train
alone, and nothing of the test period leaking into what was decided before it."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from controller.backtest.protocol import Split
from controller.backtest.runner import BacktestConfig, case_scenario, prepare_trace, run_backtest
from controller.series import Indicator, Series

POLICIES = (
    "window-buffer",
    "self-tuning-buffer",
    "static",
    "phpa",
    "crane",
    "aws-predictive",
    "oracle",
)
DAY = 144  # 10-minute steps


def daily_series(days: int = 12, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    demand = 50 + 30 * np.sin(2 * np.pi * t / DAY) + rng.gamma(2.0, 4.0, len(t))
    demand[rng.random(len(t)) < 0.02] += 40  # bursts
    return Series(
        name="synthetic",
        indicators=(Indicator("load", demand=True),),
        start=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        step=dt.timedelta(minutes=10),
        values=demand[:, None],
    )


CONFIG = BacktestConfig(policies=POLICIES, peak_replicas=16, sla=0.02, redis_url="")


def test_the_split_is_train_half_then_tune_and_test_quarters() -> None:
    split = Split.of(1000)
    assert (split.train_end, split.tune_end) == (500, 750)


def test_changing_the_test_period_changes_nothing_decided_before_it() -> None:
    series = daily_series()
    split = Split.of(len(series))
    changed_values = series.values.copy()
    changed_values[split.tune_end :] *= 3.0  # a very different future
    changed = series.with_values(changed_values, note="test period tripled")
    first = run_backtest(series, CONFIG)
    second = run_backtest(changed, CONFIG)
    assert first.demand_scale == second.demand_scale  # the pool is sized from train alone
    assert first.scenario.spec == second.scenario.spec
    border = split.tune_end - split.train_end
    for name, item in first.case.policies.items():
        other = second.case.policies[name]
        if name == "oracle":  # it sees the true future by design
            continue
        assert item.deployed.knob_value == other.deployed.knob_value, name
        assert item.deployed.requested[:border] == other.deployed.requested[:border], name
        assert item.deployed.tune_metrics == other.deployed.tune_metrics, name
    assert first.case.policies["window-buffer"].deployed.metrics != (
        second.case.policies["window-buffer"].deployed.metrics
    )


def test_forecasts_scale_with_the_pool_and_are_made_once_per_trace() -> None:
    series = daily_series()
    prepared = prepare_trace(series, CONFIG)
    small, small_factor = case_scenario(prepared, CONFIG, 8)
    large, large_factor = case_scenario(prepared, CONFIG, 128)
    assert large_factor == pytest.approx(16 * small_factor)
    for source in ("holt-winters", "crane-dsp", "aws-seasonal"):
        np.testing.assert_allclose(
            large.forecasts[source], 16 * small.forecasts[source], rtol=1e-5, equal_nan=True
        )
    train = series.values[: prepared.split.train_end, 0] * small_factor
    assert np.percentile(train, 99.9) == pytest.approx(8.0)


def test_each_baseline_is_deployed_at_its_cheapest_knob_on_tune() -> None:
    series = daily_series()
    config = dataclasses.replace(CONFIG, sweep=True)
    case = run_backtest(series, config).case
    sla = config.sla
    for item in case.policies.values():
        if item.tuned is None:
            continue
        tuned = item.tuned
        assert item.deployed.knob_value == tuned.knob
        if tuned.met:
            assert item.deployed.tune_metrics is not None
            assert item.deployed.tune_metrics.shortfall_rate <= sla
            cheaper_met = [
                knob for knob, score in tuned.evaluations.items()
                if score.violation <= sla
                and score.replica_hours < tuned.score.replica_hours
            ]  # fmt: skip
            assert not cheaper_met, item.policy
        assert item.frontier is not None
    oracle = case.policies["oracle"].deployed.metrics
    assert oracle.shortfall_rate == 0.0
    best = case.best_baseline()
    if best is not None:
        assert best.met_on_test(sla) and best.role == "baseline"
        assert oracle.replica_hours <= best.deployed.metrics.replica_hours
    assert case.line().startswith(f"deployable sla={sla:g} harmony_met=no harmony_rh=nan")
