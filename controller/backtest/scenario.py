"""Everything one replay needs, computed once and shared by every (policy, knob) case.

A scenario holds the demand of the whole trace (already scaled to the pool), the index
where decisions start, the pool's spec, and, for the forecasting policies, the demand
samples of every decision origin, drawn up front in batches. Each origin's samples were
drawn from a context that ends the step before it, so holding them all at once lets no
policy see the future. A scenario travels to Celery workers as bytes (`to_bytes`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from decision.types import PoolSpec

FloatArray = npt.NDArray[np.float64]


@dataclass(eq=False)
class Scenario:
    """One trace, one pool: the input of every replay case.

    demand: `[T, K]` demand of the whole trace on the pool's scale (NaN = gap).
    start, step: time of row 0 and the grid step.
    decide_from: the first step decided (rows before it are history: training data).
    spec: the pool (capacity per replica, delay in steps, bounds, price, SLA ε).
    samples: `[T - decide_from, S, H, K]` demand samples of each decided step's origin
        (float32) from Harmony's forecaster, or None when no forecasting policy runs.
    forecasts: the other forecast sources by name (decision.policies.forecast_source):
        `[T - decide_from, S, H, K]` each, S = 1 for a point forecast.
    observation_window: how many past steps a policy's observation holds.
    initial_replicas: usable replicas of every pool when decisions start.
    test_from: the first step of the test period (a row index, > decide_from), or None
        when the whole decided span is one period. Steps before it are the tune period.
    """

    name: str
    demand: FloatArray
    start: dt.datetime
    step: dt.timedelta
    decide_from: int
    spec: PoolSpec
    samples: npt.NDArray[np.float32] | None = None
    observation_window: int = 288
    initial_replicas: int = 0
    forecasts: dict[str, npt.NDArray[np.float32]] = dataclasses.field(default_factory=dict)
    test_from: int | None = None

    def __post_init__(self) -> None:
        demand = np.asarray(self.demand, dtype=np.float64)
        if demand.ndim == 1:
            demand = demand[:, None]
        self.demand = demand
        if not 0 < self.decide_from < len(demand):
            raise ValueError(
                f"scenario {self.name!r}: decisions must start inside the trace "
                f"(decide_from={self.decide_from}, {len(demand)} rows)"
            )
        if demand.shape[1] != self.spec.indicator_count:
            raise ValueError(
                f"scenario {self.name!r}: {demand.shape[1]} demand columns but the pool "
                f"has {self.spec.indicator_count} capacities"
            )
        if self.samples is not None and self.samples.shape[0] != self.decided_steps:
            raise ValueError(
                f"scenario {self.name!r}: samples for {self.samples.shape[0]} origins, "
                f"{self.decided_steps} steps decided"
            )
        for source, array in self.forecasts.items():
            if array.ndim != 4 or array.shape[0] != self.decided_steps:
                raise ValueError(
                    f"scenario {self.name!r}: forecasts {source!r} must be "
                    f"[{self.decided_steps}, S, H, K], got {array.shape}"
                )
        if self.test_from is not None and not self.decide_from < self.test_from < len(demand):
            raise ValueError(
                f"scenario {self.name!r}: the test period must start after decisions do "
                f"(test_from={self.test_from}, decide_from={self.decide_from})"
            )

    @property
    def decided_steps(self) -> int:
        return int(self.demand.shape[0] - self.decide_from)

    @property
    def horizon(self) -> int:
        """Steps ahead each decision sees: the forecast's, else delay + 1."""
        if self.samples is not None:
            return int(self.samples.shape[2])
        horizons = [int(array.shape[2]) for array in self.forecasts.values()]
        return max([self.spec.provisioning_delay_steps + 1, *horizons])

    def periods(self) -> dict[str, slice]:
        """Decided-step index ranges by period: "tune" and "test" when the scenario has a
        test period, else "all"."""
        if self.test_from is None:
            return {"all": slice(0, self.decided_steps)}
        border = self.test_from - self.decide_from
        return {"tune": slice(0, border), "test": slice(border, self.decided_steps)}

    def decided_demand(self) -> FloatArray:
        """`[T - decide_from, K]` demand of the decided steps."""
        return self.demand[self.decide_from :]

    def timestamps(self) -> FloatArray:
        offsets = np.arange(len(self.demand), dtype=np.float64) * self.step.total_seconds()
        return offsets + self.start.timestamp()

    def history_peak(self) -> tuple[float, ...]:
        """Highest demand per indicator before decisions start (what static provisions for)."""
        history = self.demand[: self.decide_from]
        peaks = np.nanmax(np.where(np.isnan(history), -np.inf, history), axis=0)
        return tuple(float(max(peak, 0.0)) for peak in peaks)

    # --- transport ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        meta = {
            "name": self.name,
            "start": self.start.isoformat(),
            "step_seconds": self.step.total_seconds(),
            "decide_from": self.decide_from,
            "spec": _spec_to_dict(self.spec),
            "observation_window": self.observation_window,
            "initial_replicas": self.initial_replicas,
            "test_from": self.test_from,
            "forecasts": sorted(self.forecasts),
        }
        arrays: dict[str, Any] = {"demand": self.demand}
        if self.samples is not None:
            arrays["samples"] = self.samples
        for number, source in enumerate(meta["forecasts"]):
            arrays[f"forecast{number}"] = self.forecasts[source]
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes) -> Scenario:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            meta = json.loads(archive["meta"].tobytes().decode())
            demand = archive["demand"]
            samples = archive["samples"] if "samples" in archive.files else None
            forecasts = {
                source: archive[f"forecast{number}"]
                for number, source in enumerate(meta.get("forecasts", []))
            }
        return cls(
            name=meta["name"],
            demand=demand,
            start=dt.datetime.fromisoformat(meta["start"]),
            step=dt.timedelta(seconds=meta["step_seconds"]),
            decide_from=meta["decide_from"],
            spec=_spec_from_dict(meta["spec"]),
            samples=samples,
            observation_window=meta["observation_window"],
            initial_replicas=meta["initial_replicas"],
            forecasts=forecasts,
            test_from=meta.get("test_from"),
        )

    def digest(self) -> str:
        """A content hash: the key a scenario is stored under for workers."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


def _spec_to_dict(spec: PoolSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def _spec_from_dict(data: dict[str, Any]) -> PoolSpec:
    for key in ("capacity_per_replica", "peak_demand"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return PoolSpec(**data)
