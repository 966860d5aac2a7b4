"""A tiny model trained on a real fisher slice in seconds beats the last value's CRPS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster import ForecasterConfig, train_forecaster
from forecaster.baselines import LastValueBaseline
from forecaster.scoring import crps

COLUMNS = ["load", "blkio.throttle.io_service_bytes_Async", "cpu.busy"]


@pytest.fixture(scope="module")
def fisher_slice(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    path = shared_data / "fisher" / "container2.csv.gz"
    frame = pd.read_csv(path).iloc[:2000]
    times = pd.to_datetime(frame["date"], utc=True).map(pd.Timestamp.timestamp).to_numpy()
    values = frame[COLUMNS].to_numpy(dtype=np.float64)
    fitted = values[:1200]
    low, high = fitted.min(axis=0), fitted.max(axis=0)
    return (values - low) / (high - low), times


def test_tiny_model_beats_last_value_crps_on_real_data(fisher_slice) -> None:
    values, times = fisher_slice
    config = ForecasterConfig(
        context_length=36,
        horizon=1,
        d_model=16,
        num_heads=2,
        feedforward=32,
        flow_hidden=32,
        context_features=32,
        flow_layers=2,
        max_epochs=12,
        windows_per_epoch=1024,
        patience=4,
        validation_samples=16,
        seed=0,
    )
    border = 1600
    model = train_forecaster(values[:border], times[:border], [1, 3, 2], config, names=COLUMNS)
    assert model.parameter_count < 100_000
    assert model.metadata["train_seconds"] < 120
    starts = np.arange(border - 36, len(values) - 36)
    windows = np.stack([values[start : start + 36] for start in starts])
    ends = times[starts + 35]
    targets = values[starts + 36]
    samples = model.sample(windows, ends, 100, seed=0)[:, :, 0]
    baseline = LastValueBaseline(values[:1400], 36, 1).sample(windows, ends, 100, seed=0)[:, :, 0]
    model_crps = crps(samples, targets).mean()
    baseline_crps = crps(baseline, targets).mean()
    assert model_crps < 0.9 * baseline_crps, (model_crps, baseline_crps)
