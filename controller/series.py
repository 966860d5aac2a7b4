"""The one data model every consumer shares: a multi-indicator series on a regular grid.

Values live in a `[T, N]` float array (time by indicator); NaN marks a gap and is
never filled silently. Indicators carry a hierarchy level (1 = demand/load, 2 = compute
and memory, 3 = I/O and network) and a `demand` flag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from controller.errors import HarmonyError


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
        offsets = np.arange(len(self), dtype=np.float64) * self.step_seconds
        return offsets + self.start.timestamp()

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

    def with_values(
        self,
        values: npt.NDArray[np.float64],
        *,
        indicators: tuple[Indicator, ...] | None = None,
        start: dt.datetime | None = None,
        step: dt.timedelta | None = None,
        note: str | None = None,
    ) -> Series:
        """A copy with new values (and optionally indicators, start, step), plus a note."""
        return Series(
            name=self.name,
            indicators=self.indicators if indicators is None else indicators,
            start=self.start if start is None else start,
            step=self.step if step is None else step,
            values=values,
            notes=[*self.notes, note] if note else list(self.notes),
        )

    def gaps(self) -> list[Gap]:
        """Every run of NaN, per indicator, in time order."""
        return _nan_runs(self)

    def resample(self, step: dt.timedelta) -> Series:
        """The series on a coarser grid of bins `[k * step, (k + 1) * step)` since the epoch.

        `step` must be a whole multiple of the current step. Per indicator, by its
        `time_aggregation`: `mean` averages the rows present and is a gap when fewer than
        half the bin's rows are present; `sum` adds them and is a gap when any is missing
        (a partial sum would understate the amount). Rows outside the series count as missing.
        """
        ratio = step / self.step
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise HarmonyError(
                f"series {self.name!r}: cannot resample from a {_span(self.step)} step to "
                f"{_span(step)}; choose a whole multiple of {_span(self.step)}"
            )
        new_seconds = step.total_seconds()
        origin = np.floor(self.start.timestamp() / new_seconds) * new_seconds
        bins = np.floor((self.timestamps() - origin) / new_seconds + 1e-9).astype(np.int64)
        size = int(bins[-1]) + 1 if len(self) else 0
        rows_per_bin = round(ratio)
        out = np.full((size, len(self.indicators)), np.nan)
        for column, indicator in enumerate(self.indicators):
            present = ~np.isnan(self.values[:, column])
            counts = np.bincount(bins[present], minlength=size)
            totals = np.bincount(
                bins[present], weights=self.values[present, column], minlength=size
            )
            if indicator.time_aggregation is Aggregation.sum:
                full = counts == rows_per_bin
                out[full, column] = totals[full]
            else:
                enough = counts * 2 >= rows_per_bin
                enough &= counts > 0
                out[enough, column] = totals[enough] / counts[enough]
        return self.with_values(
            out,
            start=dt.datetime.fromtimestamp(origin, tz=dt.UTC),
            step=step,
            note=f"resampled from {_span(self.step)} to {_span(step)}",
        )

    def fill_gaps(self, max_steps: int) -> GapFill:
        """Linearly interpolate interior gaps of at most `max_steps` rows; leave the rest.

        Gaps at the start or end are never filled (nothing to interpolate from). The result
        says which gaps were filled and which remain; the series' notes state the limit.
        """
        if max_steps < 0:
            raise ValueError("max_steps must be >= 0")
        values = self.values.copy()
        filled: list[Gap] = []
        remaining: list[Gap] = []
        for gap in self.gaps():
            interior = gap.start > 0 and gap.start + gap.length < len(self)
            if not (interior and gap.length <= max_steps):
                remaining.append(gap)
                continue
            column = self.names.index(gap.indicator)
            before = values[gap.start - 1, column]
            after = values[gap.start + gap.length, column]
            weights = np.arange(1, gap.length + 1) / (gap.length + 1)
            values[gap.start : gap.start + gap.length, column] = before + (after - before) * weights
            filled.append(gap)
        note = (
            f"linear interpolation over {len(filled)} gap(s) of at most {max_steps} step(s) "
            f"({_span(self.step * max_steps)}); {len(remaining)} longer or edge gap(s) left as NaN"
        )
        return GapFill(self.with_values(values, note=note), filled, remaining)


@dataclass(frozen=True)
class Gap:
    """A run of missing rows of one indicator: rows [start, start + length)."""

    indicator: str
    start: int
    length: int
    start_time: dt.datetime


@dataclass(frozen=True)
class GapFill:
    series: Series
    filled: list[Gap]
    remaining: list[Gap]


def _nan_runs(series: Series) -> list[Gap]:
    runs: list[Gap] = []
    for column, name in enumerate(series.names):
        missing = np.isnan(series.values[:, column]).astype(np.int8)
        edges = np.diff(np.concatenate(([0], missing, [0])))
        starts = np.flatnonzero(edges == 1)
        stops = np.flatnonzero(edges == -1)
        runs.extend(
            Gap(name, int(begin), int(stop - begin), series.start + series.step * int(begin))
            for begin, stop in zip(starts, stops, strict=True)
        )
    runs.sort(key=lambda gap: (gap.start, gap.indicator))
    return runs


def align(
    members: Sequence[Series],
    *,
    name: str,
    step: dt.timedelta | None = None,
    span: str = "intersection",
) -> Series:
    """Several series as one: indicators side by side on one epoch-aligned grid.

    Each member is resampled to `step` (default: the coarsest member step; each member's
    step must divide it). `span` is `intersection` (rows every member covers) or `union`
    (all rows; where a member has no data its indicators are gaps). Indicator names must
    be distinct across members.
    """
    if not members:
        raise ValueError("align needs at least one series")
    if span not in {"intersection", "union"}:
        raise ValueError("span must be 'intersection' or 'union'")
    target = step if step is not None else max(member.step for member in members)
    step_seconds = target.total_seconds()
    placed: list[tuple[int, Series]] = []
    for member in members:
        on_grid = member.resample(target)
        placed.append((round(on_grid.start.timestamp() / step_seconds), on_grid))
    firsts = [first for first, _ in placed]
    lasts = [first + len(member) for first, member in placed]
    if span == "intersection":
        begin, end = max(firsts), min(lasts)
        if end <= begin:
            raise HarmonyError(
                f"{name}: the series {', '.join(m.name for m in members)} do not overlap in "
                f"time; align them with span='union' or pick overlapping sources"
            )
    else:
        begin, end = min(firsts), max(lasts)
    indicators = tuple(indicator for _, member in placed for indicator in member.indicators)
    names = [indicator.name for indicator in indicators]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise HarmonyError(f"{name}: indicator names repeat across sources: {repeated}; rename")
    out = np.full((end - begin, len(indicators)), np.nan)
    column = 0
    for first, member in placed:
        width = len(member.indicators)
        lo, hi = max(first, begin), min(first + len(member), end)
        if hi > lo:
            out[lo - begin : hi - begin, column : column + width] = member.values[
                lo - first : hi - first
            ]
        column += width
    notes = [f"{member.name}: {note}" for _, member in placed for note in member.notes]
    notes.append(f"aligned {len(members)} source(s) on a {_span(target)} grid ({span})")
    return Series(
        name=name,
        indicators=indicators,
        start=dt.datetime.fromtimestamp(begin * step_seconds, tz=dt.UTC),
        step=target,
        values=out,
        notes=notes,
    )


def _span(step: dt.timedelta) -> str:
    seconds = step.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
