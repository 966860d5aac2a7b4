"""The queue check's own estimates on a synthetic trace whose per-pod rate is known."""

from __future__ import annotations

import numpy as np
import pytest

from bench.queue_check import (
    QueueGrid,
    agreement,
    backlog_fit_rate,
    frequency_match_rate,
    recorded,
    saturation_rate,
    weighted_quantile,
)
from decision.queue import fluid_backlog

STEP = 60.0
TRUE_RATE = 0.05


def synthetic_grid(recorded_backlog: np.ndarray | None = None) -> QueueGrid:
    """400 steps of bursty arrivals on 10 pods; by default the recorded backlog is the fluid
    queue's own at TRUE_RATE, so a correct check recovers that rate and agrees exactly."""
    generator = np.random.default_rng(7)
    steps = 400
    arrivals = generator.gamma(0.5, 40.0, steps)  # mean 20 requests a step, bursts past 30
    pods = np.full(steps, 10.0)
    capacity = pods * TRUE_RATE * STEP
    busy = np.minimum(arrivals, capacity) / TRUE_RATE
    backlog = fluid_backlog(arrivals, capacity) if recorded_backlog is None else recorded_backlog
    return QueueGrid(
        hours=np.arange(steps, dtype=np.float64) * (STEP / 3600.0),
        arrivals=arrivals,
        pods=pods,
        busy_pod_seconds=busy,
        recorded_backlog=backlog,
        recorded_wait_seconds=np.full(steps, 0.5),
        step_seconds=STEP,
    )


def test_backlog_fit_recovers_the_rate_that_made_the_backlog() -> None:
    grid = synthetic_grid()
    fit, scored = slice(0, 200), slice(200, None)
    fitted = backlog_fit_rate(grid, fit, around=0.2)
    # The grid has 40 rates a decade: a step of 6%.
    assert fitted == pytest.approx(TRUE_RATE, rel=0.06)
    found, _ = agreement(grid, fitted, scored)
    assert found.backlog_corr > 0.99
    assert found.backlog_mae_rel < 0.2
    assert found.nonempty_agreement > 0.95


def test_saturation_rate_is_requests_per_busy_pod_second_of_the_fit_part() -> None:
    grid = synthetic_grid()
    fit = slice(0, 200)
    served = np.minimum(grid.arrivals[fit], 10 * TRUE_RATE * STEP)
    expected = grid.arrivals[fit].sum() / (served.sum() / TRUE_RATE)
    assert saturation_rate(grid, fit) == pytest.approx(expected)


def test_an_empty_recorded_queue_fits_the_smallest_rate_that_never_queues() -> None:
    grid = synthetic_grid(recorded_backlog=np.zeros(400))
    fit = slice(0, 200)
    fitted = backlog_fit_rate(grid, fit, around=0.2)
    peak_need = grid.arrivals[fit].max() / (10 * STEP)
    assert peak_need <= fitted < peak_need * 1.06
    found, simulated = agreement(grid, fitted, fit)
    assert not simulated[fit].any()
    assert np.isnan(found.backlog_corr)  # nothing varies, so no correlation to claim


def test_frequency_match_queues_about_as_often_as_the_record() -> None:
    grid = synthetic_grid()
    fit = slice(0, 200)
    wanted = (grid.recorded_backlog[fit] > 0).mean()
    rate = frequency_match_rate(grid, fit, around=0.2)
    found, _ = agreement(grid, rate, fit)
    assert found.nonempty_sim == pytest.approx(wanted, abs=0.03)


def test_weighted_quantile_counts_each_value_by_its_weight() -> None:
    values = np.array([1.0, 2.0, np.nan, 3.0])
    weights = np.array([1.0, 8.0, 5.0, 1.0])
    assert weighted_quantile(values, weights, 0.5) == 2.0
    assert weighted_quantile(values, weights, 0.95) == 3.0
    assert weighted_quantile(values, weights, 0.05) == 1.0


def test_littles_law_scale_of_a_consistent_record_is_one() -> None:
    # Backlog = requests/s x wait in every step: the record and its QPS agree.
    grid = synthetic_grid(recorded_backlog=np.zeros(400))
    backlog = grid.arrivals / STEP * grid.recorded_wait_seconds
    consistent = synthetic_grid(recorded_backlog=backlog)
    assert recorded(consistent, slice(None)).little_qps_scale == pytest.approx(1.0)
