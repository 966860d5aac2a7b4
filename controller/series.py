"""The one data model every consumer shares: a multi-indicator series on a regular grid.

Values live in a `[T, N]` float array (time by indicator); NaN marks a gap and is
never filled silently. Indicators carry a hierarchy level (1 = demand/load, 2 = compute
and memory, 3 = I/O and network) and a `demand` flag.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt


class Aggregation(StrEnum):
    """How values of one indicator combine when several series are rolled up."""

    sum = "sum"
    mean = "mean"


@dataclass(frozen=True)
class Indicator:
    name: str
    unit: str = ""
    level: int = 1
    demand: bool = False
    aggregation: Aggregation = Aggregation.mean
    # How rows combine when resampled to a coarser step: `sum` for amounts per step
    # (GPU-seconds, request counts), `mean` for levels, rates and utilisations.
    time_aggregation: Aggregation = Aggregation.mean

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an indicator needs a name")
        if self.level < 1:
            raise ValueError(f"indicator {self.name!r}: level must be >= 1, got {self.level}")


@dataclass
class Series:
    """A regular-grid multi-indicator series: row t is at `start + t * step`."""

    name: str
    indicators: tuple[Indicator, ...]
    start: dt.datetime
    step: dt.timedelta
    values: npt.NDArray[np.float64]
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim != 2 or self.values.shape[1] != len(self.indicators):
            raise ValueError(
                f"series {self.name!r}: values must be [time, {len(self.indicators)}], "
                f"got shape {self.values.shape}"
            )
        if self.start.tzinfo is None:
            raise ValueError(f"series {self.name!r}: start must be timezone-aware (UTC)")
        if self.step <= dt.timedelta(0):
            raise ValueError(f"series {self.name!r}: step must be positive")
        names = [indicator.name for indicator in self.indicators]
        if len(set(names)) != len(names):
            raise ValueError(f"series {self.name!r}: indicator names repeat: {names}")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def names(self) -> list[str]:
        return [indicator.name for indicator in self.indicators]

    @property
    def levels(self) -> list[int]:
        return [indicator.level for indicator in self.indicators]

    @property
    def demand_index(self) -> list[int]:
        return [i for i, indicator in enumerate(self.indicators) if indicator.demand]

    @property
    def step_seconds(self) -> float:
        return self.step.total_seconds()

    @property
    def end(self) -> dt.datetime:
        """Time of the last row."""
        return self.start + self.step * max(len(self) - 1, 0)

    def timestamps(self) -> npt.NDArray[np.float64]:
        """Unix seconds of every row."""
        return self.start.timestamp() + np.arange(len(self)) * self.step_seconds

    def column(self, name: str) -> npt.NDArray[np.float64]:
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise KeyError(
                f"series {self.name!r} has no indicator {name!r}; it has {self.names}"
            ) from None

    def demand(self) -> npt.NDArray[np.float64]:
        """The demand indicator(s), `[T]` for one or `[T, K]` for several."""
        index = self.demand_index
        if not index:
            raise ValueError(f"series {self.name!r} marks no indicator as demand")
        return self.values[:, index[0]] if len(index) == 1 else self.values[:, index]

    def slice(self, begin: int, end: int | None = None) -> Series:
        """Rows [begin, end) as a new series with the start moved accordingly."""
        stop = len(self) if end is None else end
        return Series(
            name=self.name,
            indicators=self.indicators,
            start=self.start + self.step * begin,
            step=self.step,
            values=self.values[begin:stop].copy(),
            notes=list(self.notes),
        )
