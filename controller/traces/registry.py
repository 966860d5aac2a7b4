"""Trace loaders selected by name: `PREFIX:ARGUMENT`, e.g. `fisher:container1`."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass

from controller.errors import HarmonyError
from controller.series import Series
from controller.traces.options import TraceOptions

Loader = Callable[[str, TraceOptions], Series]


@dataclass(frozen=True)
class TraceKind:
    """One family of traces.

    prefix: the part before the colon. usage: how to name one (`fisher:containerN`).
    loader: reads one trace given the part after the colon.
    bins_at_step: the loader builds its grid at `options.step` itself (event traces, CSVs);
        otherwise the registry resamples the loaded series to `options.step`.
    """

    prefix: str
    usage: str
    summary: str
    loader: Loader
    bins_at_step: bool = False


_KINDS: dict[str, TraceKind] = {}


def register(kind: TraceKind) -> None:
    _KINDS[kind.prefix] = kind


def trace_kinds() -> list[TraceKind]:
    """Every known trace family, in registration order."""
    _load_builtin()
    return list(_KINDS.values())


def load_trace(spec: str, options: TraceOptions | None = None) -> Series:
    """The trace named by `spec` as a Series, after the options' demand, scale, step and gaps.

    Raises HarmonyError (one line, naming the trace or file and the fix) on bad input.
    """
    options = options or TraceOptions()
    prefix, _, argument = spec.partition(":")
    kinds = {kind.prefix: kind for kind in trace_kinds()}
    kind = kinds.get(prefix)
    if kind is None or not argument:
        known = ", ".join(k.usage for k in kinds.values())
        close = difflib.get_close_matches(prefix, list(kinds), n=1)
        hint = f" (did you mean {kinds[close[0]].usage}?)" if close and kind is None else ""
        raise HarmonyError(f"unknown trace {spec!r}{hint}; name one of: {known}")
    series = kind.loader(argument, options)
    if options.demand_column is not None and prefix != "csv":
        series = _mark_demand(series, options.demand_column)
    if options.scale != 1.0:
        series = _scale_demand(series, options.scale)
    if options.step is not None and not kind.bins_at_step and options.step != series.step:
        series = series.resample(options.step)
    if options.max_fill_steps:
        series = series.fill_gaps(options.max_fill_steps).series
    return series


def _mark_demand(series: Series, name: str) -> Series:
    if name not in series.names:
        raise HarmonyError(
            f"trace {series.name!r} has no indicator {name!r} for --demand-column; "
            f"choose one of {', '.join(series.names)}"
        )
    indicators = tuple(
        dataclasses.replace(indicator, demand=indicator.name == name)
        for indicator in series.indicators
    )
    return series.with_values(
        series.values, indicators=indicators, note=f"demand indicator set to {name!r}"
    )


def _scale_demand(series: Series, factor: float) -> Series:
    values = series.values.copy()
    index = series.demand_index
    if not index:
        raise HarmonyError(
            f"trace {series.name!r} has no demand indicator to scale; name one with --demand-column"
        )
    values[:, index] *= factor
    names = ", ".join(series.names[i] for i in index)
    return series.with_values(values, note=f"demand ({names}) multiplied by {factor:g}")


def _load_builtin() -> None:
    # Importing the loader modules registers them; done lazily so that importing the
    # registry stays cheap and free of import cycles.
    from controller.traces import (  # noqa: F401
        alibaba2018,
        csv_file,
        fisher,
        gentd26_requests,
    )


__all__ = ["Loader", "TraceKind", "load_trace", "register", "trace_kinds"]
