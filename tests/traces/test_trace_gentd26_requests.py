from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.series import Series
from controller.traces import TraceOptions, load_trace
from controller.traces.gentd26_requests import busy_seconds_per_step


def test_gpu_seconds_conserve_the_execution_time_of_every_request(
    cached_trace: Callable[[str], Series], shared_data: Path
) -> None:
    series = cached_trace("gentd26:requests")
    raw = pd.read_csv(shared_data / "alibaba-gentd26" / "lora_request_trace.csv.gz")
    assert series.step == dt.timedelta(minutes=1)
    assert series.start == dt.datetime(2024, 11, 15, 16, 57, tzinfo=dt.UTC)
    assert series.demand_index == [0]
    assert series.levels == [1, 2]
    assert series.column("gpu_seconds").sum() == pytest.approx(raw["exec_time_seconds"].sum())
    assert series.column("requests").sum() == len(raw) == 26823
    assert not np.isnan(series.values).any()
    # No step can hold more busy time than the requests running in it could give.
    assert (series.column("gpu_seconds") >= -1e-9).all()


def test_scale_and_step_options(cached_trace: Callable[[str], Series]) -> None:
    base = cached_trace("gentd26:requests")
    scaled = load_trace("gentd26:requests", TraceOptions(scale=4.0, step=dt.timedelta(minutes=5)))
    assert scaled.step == dt.timedelta(minutes=5)
    assert scaled.column("gpu_seconds").sum() == pytest.approx(4 * base.column("gpu_seconds").sum())
    assert scaled.column("requests").sum() == pytest.approx(4 * 26823)
    coarse = base.resample(dt.timedelta(minutes=5))
    np.testing.assert_allclose(
        scaled.values[1:-1], 4 * coarse.values[1 : len(scaled) - 1], rtol=1e-9, atol=1e-6
    )


def test_a_request_is_spread_over_the_steps_it_runs_in() -> None:
    # One request from 30 s to 150 s on a 60 s grid: 30 s, 60 s, 30 s.
    busy, arrivals, origin = busy_seconds_per_step(np.array([30.0]), np.array([120.0]), 60.0)
    assert origin == 0.0
    np.testing.assert_allclose(busy, [30.0, 60.0, 30.0])
    np.testing.assert_array_equal(arrivals, [1.0, 0.0, 0.0])
    # Two overlapping requests and a zero-length one.
    busy, arrivals, _ = busy_seconds_per_step(
        np.array([0.0, 10.0, 70.0]), np.array([100.0, 20.0, 0.0]), 60.0
    )
    np.testing.assert_allclose(busy, [80.0, 40.0])
    np.testing.assert_array_equal(arrivals, [2.0, 1.0])
