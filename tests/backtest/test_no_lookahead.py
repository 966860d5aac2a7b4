"""No look-ahead: changing the future leaves every past decision and forecast unchanged."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from controller.backtest.forecasts import forecast_origins
from controller.backtest.replay import run_case
from controller.backtest.scenario import Scenario
from controller.series import Indicator, Series
from forecaster.config import ForecasterConfig
from forecaster.training import train_forecaster
from tests.backtest.helpers import synthetic_scenario

TINY = ForecasterConfig(
    context_length=16,
    horizon=3,
    d_model=16,
    num_heads=2,
    feedforward=32,
    context_features=16,
    flow_layers=1,
    flow_hidden=16,
    max_epochs=1,
    windows_per_epoch=128,
    num_threads=1,
    accelerator="cpu",
)
CUT = 420  # decided steps before this row must not depend on rows from here on


def with_changed_future(scenario: Scenario) -> Scenario:
    demand = scenario.demand.copy()
    demand[CUT:] = demand[CUT:] * 3.0 + 5.0
    assert scenario.samples is not None
    samples = scenario.samples.copy()
    samples[CUT - scenario.decide_from :] *= 3.0  # origins from CUT on forecast the new level
    return dataclasses.replace(scenario, demand=demand, samples=samples)


@pytest.mark.parametrize(
    "policy", ["harmony", "static", "hpa", "reactive", "headroom", "harmony-fallback"]
)
def test_past_decisions_ignore_the_future(policy: str) -> None:
    scenario = synthetic_scenario()
    changed = with_changed_future(scenario)
    before = run_case(scenario, policy, None).requested
    after = run_case(changed, policy, None).requested
    decided_before_cut = CUT - scenario.decide_from
    assert before[:decided_before_cut] == after[:decided_before_cut]
    if policy != "static":  # static provisions for the history's peak, whatever comes
        assert before != after  # the change is big enough to matter once it is in the past


def test_the_oracle_does_see_the_future() -> None:
    # The same check catches look-ahead: the oracle, which is given the future, fails it.
    scenario = synthetic_scenario()
    changed = with_changed_future(scenario)
    decided_before_cut = CUT - scenario.decide_from
    before = run_case(scenario, "oracle", None).requested[:decided_before_cut]
    after = run_case(changed, "oracle", None).requested[:decided_before_cut]
    assert before != after


def test_forecasts_of_each_origin_use_only_its_past() -> None:
    rng = np.random.default_rng(1)
    rows = 400
    t = np.arange(rows)
    load = 10 + 5 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.5, rows)
    series = Series(
        "tiny",
        (Indicator("load", demand=True), Indicator("cpu", level=2)),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.timedelta(minutes=5),
        np.column_stack([load, load * 0.5 + rng.normal(0, 0.2, rows)]),
    )
    model = train_forecaster(series.values[:250], series.timestamps()[:250], series.levels, TINY)
    first, cut = 250, 330
    original = forecast_origins(
        model, series.values, series.timestamps(), first, [0], num_samples=16, seed=7
    )
    future_changed = series.values.copy()
    future_changed[cut:] *= 4.0
    changed = forecast_origins(
        model, future_changed, series.timestamps(), first, [0], num_samples=16, seed=7
    )
    assert original.shape == (rows - first, 16, 3, 1)
    # Origin t's context ends at row t-1: origins up to `cut` see none of the change.
    np.testing.assert_allclose(original[: cut - first + 1], changed[: cut - first + 1], rtol=1e-6)
    assert not np.allclose(original[cut - first + 1 :], changed[cut - first + 1 :])
