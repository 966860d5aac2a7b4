from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.series import Series


def test_pods_roll_up_to_pools_and_the_service(
    cached_trace: Callable[[str], Series], shared_data: Path
) -> None:
    series = cached_trace("gentd26:pods")
    folder = shared_data / "alibaba-gentd26"
    assert series.step == dt.timedelta(seconds=57)
    assert len(series) == 1441
    assert series.demand_index == [series.names.index("service.qps")]
    duty = pd.read_csv(folder / "pod_gpu_duty_cycle_anon.csv.gz")
    per_time = duty.groupby("timestamp_anon")["value"]
    row = 700
    moment = series.start.timestamp() + row * 57
    assert series.column("gpu.pods")[row] == per_time.count()[moment]
    assert series.column("gpu.duty_cycle")[row] == per_time.mean()[moment]
    qps = pd.read_csv(folder / "qps.csv.gz")
    assert series.column("service.qps").sum() == pytest.approx(qps["value"].sum())
    assert np.nanmax(series.column("cpu.pods")) == 39
    assert not np.isnan(series.column("service.qps")).any()
    # Queueing time exists only where requests were sampled: gaps, not zeros.
    assert np.isnan(series.column("service.queue_time")).sum() > 0
    assert any("GPU pods" in note for note in series.notes)
