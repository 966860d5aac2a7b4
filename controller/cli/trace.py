"""`harmony trace …`: look at the workload traces before training or backtesting on them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from controller.cli.trace_options import TraceArgument, with_trace_options
from controller.errors import HarmonyError
from controller.series import Series
from controller.traces import TraceOptions, load_trace, trace_data_root, trace_kinds

app = typer.Typer(help="Inspect the workload traces.", no_args_is_help=True)
# No markup: trace names, file names and column names are the user's text (`[/x]` too).
console = Console(highlight=False, markup=False)
if not console.is_terminal:
    # Piped or captured output has no width to fit: keep the table's rows unwrapped.
    console = Console(highlight=False, markup=False, width=200)
status_console = Console(stderr=True, highlight=False, markup=False)


@app.command("list")
def list_traces() -> None:
    """The trace names the loaders understand, and where their files are looked for."""
    table = Table("trace", "what it is")
    for kind in trace_kinds():
        table.add_row(kind.usage, kind.summary)
    console.print(table)
    console.print(f"trace files are read from {trace_data_root()}")


@app.command()
@with_trace_options
def inspect(
    trace: TraceArgument,
    trace_options: TraceOptions,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Write an interactive plot to this HTML file.", show_default=False
        ),
    ] = None,
) -> None:
    """Print a trace's indicators, levels, span, step, gaps and statistics."""
    # a status line is always markup to rich, whatever the console says
    with status_console.status(escape(f"loading {trace}")):
        series = load_trace(trace, trace_options)
    console.print(summary_line(series))
    console.print(indicator_table(series))
    for note in series.notes:
        console.print(f"note: {note}")
    if plot is not None:
        with status_console.status(escape(f"plotting to {plot}")):
            write_plot(series, plot)
        console.print(f"plot written to {plot}")


def summary_line(series: Series) -> str:
    span = series.end - series.start + series.step
    days = span / dt.timedelta(days=1)
    cells = series.values.size
    missing = int(np.isnan(series.values).sum())
    return (
        f"{series.name}: {len(series)} rows × {len(series.indicators)} indicators, "
        f"step {_duration(series.step)}, {series.start:%Y-%m-%d %H:%M} → "
        f"{series.end:%Y-%m-%d %H:%M} UTC ({days:.1f} days); "
        f"{missing} of {cells} values missing ({100 * missing / max(cells, 1):.2f} %)"
    )


def indicator_table(series: Series) -> Table:
    table = Table("indicator", "unit", "level", "demand", "roll-up", "missing", "gaps")
    table.add_column("longest gap")
    for heading in ("min", "mean", "p50", "p95", "max"):
        table.add_column(heading, justify="right")
    gaps = series.gaps()
    for column, indicator in enumerate(series.indicators):
        values = series.values[:, column]
        present = values[~np.isnan(values)]
        own_gaps = [gap.length for gap in gaps if gap.indicator == indicator.name]
        longest = _duration(series.step * max(own_gaps)) if own_gaps else "-"
        stats = (
            [present.min(), present.mean(), *np.percentile(present, [50, 95]), present.max()]
            if present.size
            else []
        )
        table.add_row(
            indicator.name,
            indicator.unit,
            str(indicator.level),
            "yes" if indicator.demand else "",
            indicator.aggregation.value,
            f"{len(values) - present.size}",
            f"{len(own_gaps)}",
            longest,
            *([f"{value:.4g}" for value in stats] or ["-"] * 5),
        )
    return table


def write_plot(series: Series, path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = series.names
    figure = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.04, 0.5 / max(len(names), 1)),
        subplot_titles=[
            f"{i.name} ({i.unit or 'no unit'}, level {i.level}{', demand' if i.demand else ''})"
            for i in series.indicators
        ],
    )
    times = series.timestamps().astype("datetime64[s]")
    for row, name in enumerate(names, start=1):
        figure.add_trace(
            go.Scattergl(x=times, y=series.column(name), name=name, mode="lines"),
            row=row,
            col=1,
        )
    figure.update_layout(
        title=f"{series.name}: step {_duration(series.step)}, gaps shown as breaks",
        height=max(400, 180 * len(names)),
        showlegend=False,
    )
    try:
        figure.write_html(path, include_plotlyjs=True)
    except OSError as error:
        raise HarmonyError(f"cannot write the plot to {path}: {error.strerror}") from None


def _duration(step: dt.timedelta) -> str:
    seconds = step.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
