"""One soak run: the real services up, two operators, the schedule, then the checks."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
from aiohttp import web
from sqlalchemy import create_engine

from bench.soak.faults import FaultDriver, Window, lease_holder, nudge_pools, pool_name
from bench.soak.invariants import Evidence, Verdict, check
from bench.soak.kube import SoakEmulator, add_deployment, declare_resources, pool_body
from bench.soak.operators import OperatorLauncher, OperatorProcess
from bench.soak.postgres import PostgresCluster
from bench.soak.prometheus import (
    METRIC,
    PrometheusProcess,
    PrometheusProxy,
    free_port,
    openmetrics,
)
from bench.soak.schedule import FaultKind, Schedule, make_schedule
from controller.clock import ScaledClock
from controller.state import migrate

INTERVAL = dt.timedelta(minutes=1)  # the pools' interval, on the accelerated clock
CONTEXT_STEPS = 16
PROMETHEUS_TIMEOUT_SECONDS = 1.0
MIN_REPLICAS = 2
STARTUP_CYCLES = 150  # the most cycles the operators may take to start and settle
# Demand is backfilled for this much wall time: faults are held until the pools have seen
# them, so a loaded machine stretches a run well past its scheduled cycles. A run that
# outlives its data stops with an error rather than report every fault as uncleared.
DATA_WALL_SECONDS = 2 * 3600


@dataclass(frozen=True)
class SoakConfig:
    pools: int = 50
    cycles: int = 142
    seed: int = 0
    cycle_seconds: float = 2.0  # wall seconds per interval: the clock runs 60 s / this
    tick_seconds: float = 0.5
    # Longer than a tick, so that the pools due in one slot run as one batch (one
    # transaction, one thread pool) instead of a handful of overlapping small ones.
    gather_seconds: float = 0.6
    keep: Path | None = None  # keep logs here (else a temporary folder, removed)
    durations: dict[FaultKind, int] | None = None  # each kind's cycles (else the full ones)
    hold_cycles: int = 2  # cycles every hit pool must run under a fault before it ends
    data_wall_seconds: float = DATA_WALL_SECONDS
    # The whole run's limit: past it the run is cancelled (every process stopped) and
    # fails. pytest-timeout cannot stop it: its exception, raised inside one of asyncio's
    # callbacks, is logged and swallowed while the soak runs on.
    deadline_seconds: float | None = None


@dataclass
class SoakResult:
    config: SoakConfig
    schedule: Schedule
    windows: list[Window]
    verdict: Verdict
    seconds: float
    folder: Path
    operators: list[str] = field(default_factory=list)

    def line(self) -> str:
        v = self.verdict
        return (
            f"soak pools={self.config.pools} cycles={v.cycles} faults={len(self.windows)} "
            f"actions={v.actions} doubled={v.doubled} lost={v.lost} "
            f"unsafe_scale_downs={v.unsafe_scale_downs} split_brain={v.split_brain}"
        )


def pool_spec(number: int, proxy_url: str) -> dict[str, Any]:
    return {
        "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": pool_name(number)},
        "capacityPerReplica": 10.0,
        "minReplicas": MIN_REPLICAS,
        "maxReplicas": 20,
        "provisioningDelay": "2m",
        "interval": "1m",
        "mode": "Enforce",
        "sla": {"maxShortfallProbability": 0.05, "targetUtilization": 1.0},
        "indicators": [
            {
                "name": "demand",
                "query": f'{METRIC}{{pool="{pool_name(number)}"}}',
                "level": 1,
                "demand": True,
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindow": "3m"}},
        "prometheus": {"url": proxy_url, "timeout": f"{PROMETHEUS_TIMEOUT_SECONDS:g}s"},
        "model": {"contextSteps": CONTEXT_STEPS},
    }


def run_soak(config: SoakConfig) -> SoakResult:
    return asyncio.run(_run_within(config))


async def _run_within(config: SoakConfig) -> SoakResult:
    try:
        return await asyncio.wait_for(_run(config), config.deadline_seconds)
    except TimeoutError:
        raise RuntimeError(
            f"the soak ran past its deadline of {config.deadline_seconds:.0f} s "
            "and was stopped; the faults held so far are printed above"
        ) from None


async def _run(config: SoakConfig) -> SoakResult:
    began = time.monotonic()
    schedule = make_schedule(config.seed, config.cycles, config.pools, config.durations)
    print(schedule.describe(), flush=True)
    folder = config.keep or Path(tempfile.mkdtemp(prefix="harmony-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    speed = INTERVAL.total_seconds() / config.cycle_seconds
    since = time.time()
    # The accelerated time runs a day behind, so every point it asks for is history.
    start = dt.datetime.fromtimestamp(
        (since - 86400) // INTERVAL.total_seconds() * INTERVAL.total_seconds(), tz=dt.UTC
    )
    clock = ScaledClock(start, speed, since)
    postgres = PostgresCluster()
    prometheus = PrometheusProcess(folder / "prometheus")
    prometheus.folder.mkdir(exist_ok=True)
    stack = contextlib.AsyncExitStack()
    operators: list[OperatorProcess] = []
    try:
        steps = CONTEXT_STEPS * 2 + round(
            config.data_wall_seconds * speed / INTERVAL.total_seconds()
        )
        data_ends = clock.wall(start + INTERVAL * (steps - CONTEXT_STEPS * 2))

        def backfill() -> None:
            first = start - INTERVAL * CONTEXT_STEPS * 2
            prometheus.backfill(openmetrics(config.pools, first, steps, INTERVAL))

        # Neither needs the other: set both up at once.
        stack.callback(postgres.destroy)
        await asyncio.gather(
            asyncio.to_thread(_start_postgres, postgres), asyncio.to_thread(backfill)
        )
        prometheus.start()
        stack.callback(prometheus.stop)
        await prometheus.wait_ready()
        proxy = PrometheusProxy(prometheus.url, PROMETHEUS_TIMEOUT_SECONDS + 0.5, config.seed)
        proxy_url = await _serve(stack, proxy.app())
        stack.push_async_callback(proxy.close)
        mock = await stack.enter_async_context(SoakEmulator())
        server = await stack.enter_async_context(kmock.Server(mock))
        api_url = str(server.url).rstrip("/")
        declare_resources(mock)
        specs = {pool_name(n): pool_spec(n, proxy_url) for n in range(config.pools)}
        for name, spec in specs.items():
            add_deployment(mock, name, MIN_REPLICAS)
            mock.objects[("autoscaling.harmony.dev/v1alpha1/poolautoscalers", "fleet", name)] = (
                pool_body(name, spec)
            )
        launcher = OperatorLauncher(
            folder, api_url, postgres.url, clock, config.tick_seconds, config.gather_seconds
        )
        # Both at once: each takes tens of seconds to import and start on a loaded machine,
        # and which one wins the lease does not matter (the kill finds the holder).
        operators += [launcher.launch(), launcher.launch()]
        await _wait_for_leader(mock, operators)
        nudger = asyncio.create_task(nudge_pools(api_url, list(specs), 10.0))
        first = await _wait_for_status(mock, config.pools, clock, config.cycle_seconds)
        print(f"operators up after {time.monotonic() - began:.0f} s; faults begin", flush=True)

        def cycle_wall(number: int) -> float:
            return clock.wall(first + INTERVAL * number)

        driver = FaultDriver(
            schedule=schedule,
            cycle_wall=cycle_wall,
            mock=mock,
            api_url=api_url,
            proxy=proxy,
            prometheus=prometheus,
            postgres=postgres,
            launcher=launcher,
            operators=operators,
            specs=specs,
            cycle_seconds=config.cycle_seconds,
            clock_wall=lambda stamp: clock.wall(_parse(stamp)),
            hold_cycles=config.hold_cycles,
            data_ends=data_ends,
        )
        try:
            await driver.run()
        finally:
            nudger.cancel()
        for operator in operators:
            await asyncio.to_thread(operator.stop)
        evidence = Evidence(
            schedule=schedule,
            windows=driver.windows,
            api=list(mock.log),
            queries=list(proxy.log),
            database_url=postgres.url,
            clock=clock,
            first_cycle=first,
            interval=INTERVAL,
            min_replicas=MIN_REPLICAS,
            pools=list(specs),
        )
        verdict = await asyncio.to_thread(check, evidence)
    finally:
        for operator in operators:
            operator.kill()
        await stack.aclose()
    if config.keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return SoakResult(
        config=config,
        schedule=schedule,
        windows=driver.windows,
        verdict=verdict,
        seconds=time.monotonic() - began,
        folder=folder,
        operators=[operator.identity for operator in operators],
    )


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _start_postgres(postgres: PostgresCluster) -> None:
    postgres.init()
    postgres.start()
    postgres.wait_ready()
    engine = create_engine(postgres.url)
    migrate.upgrade(engine)
    engine.dispose()


async def _serve(stack: contextlib.AsyncExitStack, app: web.Application) -> str:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stack.push_async_callback(runner.cleanup)
    return f"http://127.0.0.1:{port}"


async def _wait_for_leader(mock: SoakEmulator, operators: list[OperatorProcess]) -> None:
    deadline = time.monotonic() + 120
    while not lease_holder(mock):
        if time.monotonic() > deadline or not any(op.alive() for op in operators):
            logs = ", ".join(str(op.log_path) for op in operators)
            raise RuntimeError(f"no operator took the lease: see {logs}")
        await asyncio.sleep(0.2)


async def _wait_for_status(
    mock: SoakEmulator, pools: int, clock: ScaledClock, cycle_seconds: float
) -> dt.datetime:
    """The first cycle after every pool has had one: where the schedule's cycle 0 lies."""
    deadline = time.monotonic() + STARTUP_CYCLES * cycle_seconds
    while time.monotonic() < deadline:
        written = {
            r.name
            for r in mock.log
            if r.resource == "poolautoscalers" and r.subresource == "status"
        }
        if len(written) >= pools:
            now = clock.now()
            seconds = INTERVAL.total_seconds()
            return dt.datetime.fromtimestamp((now.timestamp() // seconds + 2) * seconds, tz=dt.UTC)
        await asyncio.sleep(0.5)
    raise RuntimeError("the operators did not run every pool's first cycle in time")
