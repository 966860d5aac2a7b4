"""`harmony demo`: the whole control loop on the embedded defaults, in accelerated time.

A simulated GPU pool (8-GPU nodes, usable 10 minutes after they are asked for) is driven
by a real trace replayed through the operator's own control cycle (observe → forecast →
decide → act → record) with a manual clock moving one interval per cycle; every forecast,
decision and action goes to the state store (SQLite by default), where `harmony api`'s
dashboard shows them.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from controller.backtest import defaults
from controller.cli.trace_options import with_trace_options
from controller.traces import TraceOptions

console = Console(highlight=False)
if not console.is_terminal:
    console = Console(highlight=False, width=160)
POOL_NAMESPACE = "demo"
POOL_NAME = "gpu-pool"
CONTEXT_STEPS = 48


def pool_document(indicators: list[dict[str, Any]], max_replicas: int) -> dict[str, Any]:
    """The PoolAutoscaler spec the demo runs, as a user would write it."""
    return {
        "target": {
            "apiVersion": "cluster.x-k8s.io/v1beta1",
            "kind": "MachineDeployment",
            "name": "gpu-nodes",
        },
        "capacityPerReplica": 1.0,
        "minReplicas": 0,
        "maxReplicas": max_replicas,
        "provisioningDelay": "10m",
        "interval": "5m",
        "mode": "Enforce",
        "sla": {"maxShortfallProbability": defaults.SLA, "targetUtilization": 1.0},
        "costs": {"pricePerReplicaHour": 1.0, "shortfallPenaltyPerUnitHour": 0.0},
        "indicators": indicators,
        "model": {"contextSteps": CONTEXT_STEPS, "horizonSteps": 3},
        "prometheus": {"url": "http://127.0.0.1:9"},
    }


class FixedModel:
    """The demo's forecaster provider: one model trained at start."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def forecaster_for(self, pool: Any) -> tuple[Any, int | None] | None:
        return self.model, None


def demo(
    trace: Annotated[
        str, typer.Argument(help="The trace that drives the pool (see `harmony trace list`).")
    ] = "gentd26:requests",
    trace_options: TraceOptions = TraceOptions(),  # filled in by with_trace_options
    cycles: Annotated[int, typer.Option("--cycles", min=1, help="Control cycles to run.")] = 288,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0.0, help="Cycles per second of wall time (0: no pause)."),
    ] = 4.0,
    train_seconds: Annotated[
        float, typer.Option("--train-seconds", min=5.0, help="Training budget of the model.")
    ] = 45.0,
) -> None:
    """Run the control loop on a simulated GPU pool driven by TRACE, in accelerated time."""
    from controller.actuators import SimulatedActuator, SimulatedPool
    from controller.backtest.forecasts import train_on_history
    from controller.backtest.runner import pool_factor, scale_demand
    from controller.clock import ManualClock
    from controller.cycle import CycleDeps, run_cycle
    from controller.operator.cycle_steps import PoolRuntime
    from controller.operator.spec import parse_spec
    from controller.settings import get_settings
    from controller.sources.replay import TraceReplaySource
    from controller.state.db import create_engine_for, make_session_factory, require_current_schema
    from controller.traces import load_trace
    from forecaster.config import ForecasterConfig

    settings = get_settings()
    engine = create_engine_for(settings.database_url)
    require_current_schema(engine)
    series = load_trace(trace, trace_options)
    if series.step != defaults.DECISION_STEP:
        series = series.resample(defaults.DECISION_STEP)
    factor = pool_factor(series, len(series), 1.0, defaults.PEAK_REPLICAS)
    series = scale_demand(
        series, factor, f"so that its 99.9th percentile needs {defaults.PEAK_REPLICAS} replicas"
    )
    indicators = [
        {
            "name": item.name,
            "query": f"replay:{item.name}",
            "level": item.level,
            "demand": item.demand,
        }
        for item in series.indicators
    ]
    document = pool_document(indicators, 2 * defaults.PEAK_REPLICAS)
    config = parse_spec(POOL_NAMESPACE, POOL_NAME, document, None)
    train_rows = len(series) // 2
    if train_rows + cycles > len(series):
        cycles = len(series) - train_rows
    with console.status(escape(f"training the forecaster on {train_rows} steps of {trace}")):
        model = train_on_history(
            series,
            train_rows,
            ForecasterConfig(
                context_length=CONTEXT_STEPS,
                horizon=config.horizon_steps,
                max_train_seconds=train_seconds,
            ),
        )
    start = series.start + series.step * train_rows
    clock = ManualClock(start)
    pool = SimulatedPool(
        config.key,
        clock,
        config.provisioning_delay,
        price_per_replica_hour=config.price_per_replica_hour,
        capacity_per_replica=config.capacity_per_replica,
        initial_replicas=int(max(series.demand()[train_rows - 1], 0)) + 1,
    )
    deps = CycleDeps(
        source_for=lambda _runtime: TraceReplaySource(series, clock),
        forecasters=FixedModel(model),
        actuator=SimulatedActuator([pool]),
        sessions=make_session_factory(engine),
        clock=clock,
        num_samples=defaults.SAMPLES,
    )
    runtime = PoolRuntime.create(config, document)
    demand = series.demand()
    short = 0
    headers = ("time (replayed)", "demand", "usable", "in flight", "wanted", "policy", "reason")
    table = Table(*headers)
    with Live(table, console=console, refresh_per_second=4, transient=False) as live:
        for cycle in range(cycles):
            (outcome,) = run_cycle([runtime], deps)
            row = train_rows + cycle
            usable = pool.current(config.key).usable
            short += int(demand[row] > usable * config.capacity_per_replica)
            table.add_row(
                f"{clock.now():%Y-%m-%d %H:%M}",
                f"{demand[row]:.1f}",
                str(usable),
                str(outcome.in_flight or 0),
                str(outcome.recommended),
                outcome.policy,
                (outcome.reason or "")[:70],
            )
            if len(table.rows) > 15:
                table = Table(*headers)
                live.update(table)
            clock.advance(config.interval)
            if speed > 0:
                time.sleep(1.0 / speed)
    hours = pool.account.billed_replica_hours
    console.print(
        f"\n{cycles} cycles ({cycles * config.interval / dt.timedelta(hours=1):.1f} h replayed): "
        f"{hours:.1f} node-hours, shortfall in {short} of {cycles} steps; decisions are in "
        f"{settings.database_url} (see them with `harmony api`)",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(with_trace_options(demo))
