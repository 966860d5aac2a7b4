"""`harmony backtest TRACE`: what Harmony would have cost on a trace, beside the baselines."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from controller.backtest import defaults
from controller.cli.trace_options import TraceArgument, parse_duration, with_trace_options
from controller.errors import BadUsage
from controller.series import Series
from controller.traces import TraceOptions
from decision.policies import POLICY_NAMES
from decision.types import SlaKind

if TYPE_CHECKING:
    from controller.backtest.protocol import CaseOutcome

# No markup: the table's title and the notes hold the trace's and files' names.
console = Console(highlight=False, markup=False)
if not console.is_terminal:
    # Piped or captured output has no width to fit: keep the table's rows unwrapped.
    console = Console(highlight=False, markup=False, width=200)
status = Console(stderr=True, highlight=False)


class ProgressReporter:
    """Rich progress bars for the stages of a backtest."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._last: object | None = None

    def stage(self, description: str, total: int | None) -> Callable[[int], None]:
        if self._last is not None:
            task = self.progress.tasks[-1]
            self.progress.update(task.id, total=task.total or 1, completed=task.total or 1)
        task_id = self.progress.add_task(description, total=total)
        self._last = task_id
        return lambda count: self.progress.advance(task_id, count)

    def note(self, message: str) -> None:
        self.progress.console.print(f"[dim]{escape(message)}[/dim]")


def _decision_step(series: Series, options: TraceOptions) -> Series:
    """GPU nodes are decided every 5 minutes unless --step says otherwise."""
    if options.step is not None or series.step >= defaults.DECISION_STEP:
        return series
    if defaults.DECISION_STEP % series.step:
        return series
    return series.resample(defaults.DECISION_STEP)


def backtest(
    trace: TraceArgument,
    trace_options: TraceOptions,
    policy: Annotated[
        str, typer.Option("--policy", help="Comma-separated policies to compare.")
    ] = ",".join(POLICY_NAMES),
    capacity_per_replica: Annotated[
        float, typer.Option("--capacity-per-replica", help="Demand units one replica serves.")
    ] = 1.0,
    peak_replicas: Annotated[
        int,
        typer.Option(
            "--peak-replicas",
            min=0,
            help="Scale the demand so that the train part's 99.9th percentile needs this many "
            "replicas (0: keep its scale).",
        ),
    ] = defaults.PEAK_REPLICAS,
    provisioning_delay: Annotated[
        str, typer.Option("--provisioning-delay", help="Time from request to usable replica.")
    ] = "10min",
    sla: Annotated[
        float,
        typer.Option(
            "--sla",
            help="Largest acceptable shortfall rate (share of steps), or with --sla-kind queue "
            "the largest share of work waiting longer than --max-delay.",
        ),
    ] = defaults.SLA,
    sla_kind: Annotated[
        str,
        typer.Option(
            "--sla-kind",
            help="shortfall: demand above capacity is a violation; queue: work queues (FIFO) "
            "and only work waiting longer than --max-delay is.",
        ),
    ] = "shortfall",
    max_delay: Annotated[
        str | None,
        typer.Option("--max-delay", help="With --sla-kind queue: the longest a job may wait."),
    ] = None,
    train_fraction: Annotated[
        float,
        typer.Option(
            "--train-fraction",
            help="Leading share of the trace to train on; the rest splits into tune and test.",
        ),
    ] = defaults.TRAIN_FRACTION,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Also search every policy's knob on the test period itself (the hindsight "
            "frontier, gap capture) and plot the cost–SLA curves.",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Report folder (default: <data dir>/reports/<time>)."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="A saved forecaster to use instead of training.")
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", help="Forecast samples per step.")
    ] = defaults.SAMPLES,
    price: Annotated[float, typer.Option("--price", help="Price per replica-hour.")] = 1.0,
    max_replicas: Annotated[
        int | None,
        typer.Option("--max-replicas", help="Pool ceiling (default: twice the peak's need)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the forecast samples.")] = 0,
    min_node_lifetime: Annotated[
        str,
        typer.Option(
            "--min-node-lifetime",
            help="No replica is removed before it has run this long (billing granularity); "
            "0s: no limit.",
        ),
    ] = "0s",
    max_scale_downs_per_hour: Annotated[
        int | None,
        typer.Option(
            "--max-scale-downs-per-hour",
            help="Scale-downs wait once this many happened in the trailing hour.",
        ),
    ] = None,
) -> None:
    """Replay TRACE through Harmony and the baseline policies, each on a simulated pool.

    The forecaster trains on the first --train-fraction of the trace (or --model is used);
    the rest is decided step by step (every 5 minutes unless --step says otherwise), each
    policy seeing only the past. Prints a table and writes report.json and report.html.
    """
    # Imported here: torch and plotly would slow every other `harmony` command down.
    from controller.backtest.report import write_report
    from controller.backtest.runner import BacktestConfig, run_backtest
    from controller.backtest.store import RunRecorder
    from controller.clock import SystemClock
    from controller.settings import get_settings
    from controller.state.db import create_engine_for, make_session_factory, require_current_schema
    from controller.traces import load_trace

    config = BacktestConfig(
        policies=tuple(name.strip() for name in policy.split(",") if name.strip()),
        capacity_per_replica=capacity_per_replica,
        peak_replicas=peak_replicas or None,
        provisioning_delay=parse_duration(
            provisioning_delay, "--provisioning-delay", allow_zero=True
        ),
        sla=sla,
        sla_kind=_sla_kind(sla_kind),
        max_delay=None if max_delay is None else parse_duration(max_delay, "--max-delay"),
        train_fraction=train_fraction,
        sweep=sweep,
        num_samples=samples,
        seed=seed,
        price_per_replica_hour=price,
        max_replicas=max_replicas,
        model_path=model,
        min_node_lifetime=parse_duration(min_node_lifetime, "--min-node-lifetime", allow_zero=True),
        max_scale_downs_per_hour=max_scale_downs_per_hour,
    )
    if model is not None and not model.exists():
        raise BadUsage(f"--model {model}: no such file or folder")
    if report is not None and report.exists() and not report.is_dir():
        raise BadUsage(f"--report {report}: is a file; give a folder (made if missing)")
    settings = get_settings()
    engine = create_engine_for(settings.database_url)
    require_current_schema(engine)
    recorder = RunRecorder(make_session_factory(engine), SystemClock())
    series = _decision_step(load_trace(trace, trace_options), trace_options)
    folder = report or settings.data_dir / "reports" / dt.datetime.now(dt.UTC).strftime(
        "%Y%m%dT%H%M%SZ"
    )
    run_id = recorder.start(trace, {**config.to_dict(), "step_seconds": series.step_seconds})
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=status,
        ) as bars:
            outcome = run_backtest(series, config, ProgressReporter(bars))
        page = write_report(outcome, config, trace, folder)
    except BaseException as error:
        recorder.fail(run_id, str(error) or type(error).__name__)
        raise
    recorder.finish(run_id, outcome.case, str(folder))
    console.print(_table(outcome.case, trace, series))
    for note in outcome.notes:
        console.print(f"note: {note}", soft_wrap=True)
    console.print(f"report: {page}", soft_wrap=True)
    console.print(outcome.case.line(), soft_wrap=True)


def _sla_kind(value: str) -> SlaKind:
    try:
        return SlaKind(value)
    except ValueError:
        choices = ", ".join(kind.value for kind in SlaKind)
        raise BadUsage(f"--sla-kind {value!r}: choose one of {choices}") from None


def _table(case: CaseOutcome, trace: str, series: Series) -> Table:
    from controller.backtest.protocol import MET_FACTOR
    from controller.backtest.report.columns import columns_for

    held = f"shortfall <= {MET_FACTOR * case.sla:.2%} of steps"
    first = next(iter(case.policies.values()))
    kind = first.deployed.metrics.sla_kind
    columns = columns_for(kind)
    if kind == SlaKind.queue:
        held = f"late work <= {MET_FACTOR * case.sla:.2%} of the work"
    table = Table(
        title=f"{trace}: each policy deployed with its knob fit on the tune period, judged on "
        f"test (step {series.step}; held the SLA: {held})",
        title_justify="left",
    )
    tune_header = (
        "tune late work (% of work)" if kind == SlaKind.queue else "tune shortfall (% of steps)"
    )
    for column in ("policy", "role", "knob (fit on tune)", tune_header):
        table.add_column(column)
    for column in columns:
        table.add_column(f"{column.label} ({column.unit})", justify="right")
    table.add_column("SLA on test")
    if case.policies.get("harmony") and any(item.frontier for item in case.policies.values()):
        table.add_column("frontier knob (test)")
    for item in case.policies.values():
        run = item.deployed
        knob = "-" if run.knob_value is None else f"{item.knob_name}={run.knob_value:.4g}"
        if item.tuned is not None and not item.tuned.met:
            knob += " (closest; none met on tune)"
        tune = run.tune_metrics.sla_violation if run.tune_metrics else math.nan
        cells = [column.format(getattr(run.metrics, column.key)) for column in columns]
        met = item.met_on_test(case.sla)
        extra = []
        if len(table.columns) > 5 + len(columns):
            frontier = item.frontier
            extra = ["-"]
            if frontier is not None:
                extra = [f"{frontier.knob:.4g}" if frontier.met else "out of reach"]
        table.add_row(
            item.policy, item.role, knob, f"{tune:.2%}", *cells, "held" if met else "missed",
            *extra, style="" if met else "red",
        )  # fmt: skip
    ratio = case.deployable_vs_best()
    best = case.best_baseline()
    if best is not None and math.isfinite(ratio):
        table.caption = (
            f"Harmony uses {ratio:.2f}x the test replica-hours of the cheapest baseline that "
            f"held the SLA ({best.policy})"
        )
    return table


def register(app: typer.Typer) -> None:
    app.command("backtest")(with_trace_options(backtest))
