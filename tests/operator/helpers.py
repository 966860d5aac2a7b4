"""Shared pieces of the operator tests: spec documents, a seasonal forecaster, demand."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import numpy as np
import numpy.typing as npt

from controller.series import Indicator, Series

STEP = dt.timedelta(minutes=1)
PERIOD = 12  # steps per demand cycle
PEAK_STEPS = 4  # steps of high demand in each cycle
LOW, HIGH = 10.0, 50.0


def square_wave(start: dt.datetime, rows: int, step: dt.timedelta = STEP) -> Series:
    """Demand low for PERIOD - PEAK_STEPS steps, then high for PEAK_STEPS, repeating;
    rows are aligned to multiples of `step` since the epoch."""
    phase = (np.arange(rows) + round(start.timestamp() / step.total_seconds())) % PERIOD
    demand = np.where(phase >= PERIOD - PEAK_STEPS, HIGH, LOW)
    return Series(
        name="square-wave",
        indicators=(Indicator("demand", level=1, demand=True),),
        start=start,
        step=step,
        values=demand[:, None].astype(np.float64),
    )


def is_peak(at: dt.datetime, step: dt.timedelta = STEP) -> bool:
    return round(at.timestamp() / step.total_seconds()) % PERIOD >= PERIOD - PEAK_STEPS


class SeasonalNaive:
    """A real (simple) probabilistic forecaster: the value one period ago, with noise.

    Same `sample` interface as `forecaster.Forecaster`; it knows the demand repeats every
    `period` steps, which is what the operator tests need to see a peak coming.
    """

    name = "seasonal-naive"

    def __init__(self, period: int = PERIOD, horizon: int = 4, noise: float = 0.02) -> None:
        self.period = period
        self.context_length = period
        self.horizon = horizon
        self.noise = noise
        self.calls = 0

    def sample(
        self, context: Any, context_end_timestamps: Any, num_samples: int, seed: int | None = None
    ) -> npt.NDArray[np.float64]:
        self.calls += 1
        windows = np.asarray(context, dtype=np.float64)[:, -self.period :]
        rng = np.random.default_rng(seed)
        index = np.arange(self.horizon) % self.period
        paths = windows[:, index, :]  # [B, H, N]: the same phase one period earlier
        noise = 1.0 + self.noise * rng.standard_normal((windows.shape[0], num_samples, 1, 1))
        return paths[:, None, :, :] * noise


def pool_spec_document(**changes: Any) -> dict[str, Any]:
    """A valid PoolAutoscaler spec for a Deployment, as the API server would store it."""
    spec: dict[str, Any] = {
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "inference"},
        "capacityPerReplica": 10.0,
        "minReplicas": 1,
        "maxReplicas": 20,
        "provisioningDelay": "2m",
        "interval": "1m",
        "mode": "Enforce",
        "sla": {"maxShortfallProbability": 0.05, "targetUtilization": 1.0},
        "costs": {"pricePerReplicaHour": 1.0, "shortfallPenaltyPerUnitHour": 0.0},
        "indicators": [{"name": "demand", "query": "sum(demand)", "level": 1, "demand": True}],
        "behavior": {"scaleDown": {"stabilizationWindow": "1m"}},
        "prometheus": {"url": "http://127.0.0.1:9"},
        "model": {"contextSteps": PERIOD},
    }
    merged = copy.deepcopy(spec)
    merged.update(changes)
    return merged
