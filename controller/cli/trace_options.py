"""The trace options of the CLI, declared once and shared by every command that reads a trace.

    @app.command()
    @with_trace_options
    def inspect(trace: TraceArgument, trace_options: TraceOptions) -> None: ...

`with_trace_options` adds `--step`, `--demand-column`, `--scale`, `--time-column`,
`--raw-counters` and `--fill-gaps` to the command and hands the command one
`TraceOptions` built from them, as its `trace_options` parameter.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import math
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer

from controller.backtest.defaults import MAX_DURATION, MAX_SCALE
from controller.bounds import require_between
from controller.errors import BadUsage
from controller.traces import TraceOptions, trace_kinds
from controller.traces.frames import MAX_GRID_STEPS

Command = TypeVar("Command", bound=Callable[..., Any])


def _trace_help() -> str:
    return "The trace: " + "; ".join(kind.usage for kind in trace_kinds()) + "."


TraceArgument = Annotated[str, typer.Argument(help=_trace_help(), show_default=False)]

_OPTIONS: dict[str, tuple[Any, Any]] = {
    "step": (
        Annotated[
            str | None,
            typer.Option(
                "--step",
                help="Grid step (30s, 1min, 10min, 1h or seconds): traces are resampled to "
                "it; for a CSV without a time column it is the spacing of the rows.",
                show_default=False,
            ),
        ],
        None,
    ),
    "demand_column": (
        Annotated[
            str | None,
            typer.Option(
                "--demand-column",
                help="The indicator that is demand (required for csv: traces).",
                show_default=False,
            ),
        ],
        None,
    ),
    "scale": (
        Annotated[
            float,
            typer.Option("--scale", min=0.0, help="Multiply the demand by this factor."),
        ],
        1.0,
    ),
    "time_column": (
        Annotated[
            str | None,
            typer.Option("--time-column", help="Time column of a csv: trace.", show_default=False),
        ],
        None,
    ),
    "raw_counters": (
        Annotated[
            bool,
            typer.Option(
                "--raw-counters", help="Keep cumulative counters raw instead of as rates."
            ),
        ],
        False,
    ),
    "fill_gaps": (
        Annotated[
            int,
            typer.Option(
                "--fill-gaps",
                min=0,
                help="Interpolate interior gaps of at most this many steps (0: none).",
            ),
        ],
        0,
    ),
}


def parse_duration(text: str, option: str, *, allow_zero: bool = False) -> dt.timedelta:
    """`30s`, `1min`, `10min`, `1h`, `1d` or a number of seconds, at most `MAX_DURATION`;
    a BadUsage naming `option` otherwise."""
    seconds = _seconds(text, option)
    duration = None
    # checked as seconds first: a timedelta of 1e20 s or of infinity does not exist
    if (seconds >= 0 if allow_zero else seconds > 0) and seconds <= MAX_DURATION.total_seconds():
        duration = dt.timedelta(seconds=seconds)
    if duration is None or not (duration or allow_zero):  # 1e-300 s rounds to 0
        lowest = "from 0s" if allow_zero else "above 0s"
        raise BadUsage(
            f"{option} {text!r} is out of range; give a duration {lowest} to "
            f"{MAX_DURATION.days}d, e.g. 30s, 10min, 1h"
        )
    return duration


def _seconds(text: str, option: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = float(pd.Timedelta(text).total_seconds())
        except (ValueError, OverflowError):
            seconds = math.nan
    if math.isnan(seconds):  # `nan`, and `NaT` or an empty value to pandas
        raise BadUsage(f"{option} {text!r} is not a duration; write e.g. 30s, 1min, 10min, 1h")
    return seconds


def parse_step(text: str) -> dt.timedelta:
    """The value of `--step`."""
    return parse_duration(text, "--step")


def build_trace_options(
    *,
    step: str | None = None,
    demand_column: str | None = None,
    scale: float = 1.0,
    time_column: str | None = None,
    raw_counters: bool = False,
    fill_gaps: int = 0,
) -> TraceOptions:
    require_between("--scale", scale, 0, MAX_SCALE, above_low=True)
    require_between("--fill-gaps", fill_gaps, 0, MAX_GRID_STEPS)
    return TraceOptions(
        step=parse_step(step) if step is not None else None,
        demand_column=demand_column,
        scale=scale,
        time_column=time_column,
        raw_counters=raw_counters,
        max_fill_steps=fill_gaps,
    )


def with_trace_options(command: Command) -> Command:
    """Give a typer command the trace options; it receives them as `trace_options`."""
    signature = inspect.signature(command, eval_str=True)
    if "trace_options" not in signature.parameters:
        raise TypeError(f"{command.__name__} needs a `trace_options: TraceOptions` parameter")
    kept = [p for name, p in signature.parameters.items() if name != "trace_options"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        for name, (kind, default) in _OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _OPTIONS if name in kwargs}
        return command(*args, trace_options=build_trace_options(**given), **kwargs)

    parameters = [
        *[p for p in kept if p.kind is not inspect.Parameter.KEYWORD_ONLY],
        *added,
        *[p for p in kept if p.kind is inspect.Parameter.KEYWORD_ONLY],
    ]
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper  # type: ignore[return-value]
