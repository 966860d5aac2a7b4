"""B5: the REST API under load on PostgreSQL.

Seeds a database of its own with 100 pools x 30 days of 1-minute decisions (4.32M rows),
an action every 30 minutes and a forecast per pool, through the state store's models so
that the seed follows the schema: pools and forecasts as ORM rows, decisions and actions
generated server-side by an INSERT ... SELECT over generate_series per pool whose columns
the models name. Shows the query plans of the list and detail queries; serves the API
with `harmony api` in a subprocess; then drives list and detail endpoints open-loop at a
fixed rate on loopback (a request every 1/rate seconds, whether or not earlier ones have
answered) and prints the latency percentiles.

    nice -n 10 .venv/bin/python -m bench.api_load [--rate 100 --seconds 60 --reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from rich.progress import Progress
from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Interval,
    String,
    Subquery,
    cast,
    column,
    create_engine,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from bench.options import add_smoke_option, parse_with_smoke
from controller.state import migrate
from controller.state.db import create_engine_for, make_session_factory
from controller.state.models import Action, ActionResult, Base, DecisionRecord, ForecastRecord, Pool
from controller.state.types import UTCDateTime

DATABASE = "harmony_bench_api"
POOLS = 100
DAYS = 30
TOKEN = "bench-token"
SEED = 20240501
START = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
ACTION_EVERY = 30  # minutes
CONNECTIONS = 200


@dataclass(frozen=True)
class Dataset:
    """The seeded database: its name, and how many pools with how many days of decisions."""

    database: str
    pools: int
    days: int

    @property
    def steps(self) -> int:
        return self.days * 24 * 60

    @property
    def url(self) -> str:
        return (
            make_url(_admin_url()).set(database=self.database).render_as_string(hide_password=False)
        )


def _admin_url() -> str:
    return os.environ.get(
        "HARMONY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )


def _on_server(statement: str) -> None:
    """One statement outside a transaction, as CREATE and DROP DATABASE need."""
    admin = create_engine(make_url(_admin_url()), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement))
    admin.dispose()


def _drop_database(name: str) -> None:
    _on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _minutes(step: ColumnElement[Any]) -> ColumnElement[dt.datetime]:
    """`START` plus `step` minutes, in SQL."""
    return literal(START, UTCDateTime()) + step * literal(MINUTE, Interval())


def _steps(steps: int, every: int = 1) -> ColumnElement[int]:
    """Minutes 0, every, 2 every, ... below `steps`: a column of `generate_series`."""
    series = func.generate_series(0, steps - 1, every).table_valued(column("i", Integer))
    return series.render_derived(name="s").c.i


def _wave(phase: float, steps: int) -> Subquery:
    """Per minute `i`: a daily wave of `demand` and the `replicas` that cover it with 10%
    headroom."""
    minute = _steps(steps)
    demand = 100.0 + 60.0 * func.sin(2.0 * func.pi() * cast(minute, Float) / 1440.0 + phase)
    demands = select(minute.label("i"), demand.label("demand")).subquery("d")
    replicas = cast(func.ceil(demands.c.demand * 1.1 / 8.0), Integer)
    return select(demands.c.i, demands.c.demand, replicas.label("replicas")).subquery("w")


def _insert_select(model: type[Base], row: dict[Any, Any]) -> Insert:
    """INSERT INTO the model's table SELECT `row`: a SQL expression or a constant (typed by
    its column) per column attribute. Columns left out get the model's defaults."""
    values = [
        value if isinstance(value, ColumnElement) else literal(value, attribute.type)
        for attribute, value in row.items()
    ]
    return insert(model).from_select(list(row), select(*values))


def _decisions(pool_id: int, phase: float, steps: int) -> Insert:
    """One decision a minute for `steps` minutes, made by the server (4.32M ORM rows would
    take an hour)."""
    wave = _wave(phase, steps)
    inputs = {
        "demand": wave.c.demand,
        "capacity_per_replica": 8.0,
        "target_utilization": 1.0,
        "replicas_usable": wave.c.replicas,
        "replicas_in_flight": 0,
        "step_seconds": 60,
        "metrics_complete": True,
    }
    return _insert_select(
        DecisionRecord,
        {
            DecisionRecord.pool_id: pool_id,
            DecisionRecord.cycle_at: _minutes(wave.c.i),
            DecisionRecord.policy: "harmony",
            DecisionRecord.mode: "Enforce",
            DecisionRecord.replicas_now: wave.c.replicas,
            DecisionRecord.replicas_wanted: wave.c.replicas + cast(wave.c.i % 3 == 0, Integer),
            DecisionRecord.shortfall_probability: 0.004,
            DecisionRecord.shortfall_bound: 0.009,
            DecisionRecord.expected_cost: wave.c.replicas * 0.0167,
            DecisionRecord.expected_utilization: 0.8,
            DecisionRecord.binding_constraint: "sla",
            DecisionRecord.reason: cast(wave.c.replicas, String)
            + " replicas keep P(shortfall) at 0.4% <= 1%",
            DecisionRecord.inputs: func.jsonb_build_object(*itertools.chain(*inputs.items())),
        },
    )


def _actions(pool_id: int, key_prefix: str, steps: int) -> Insert:
    """A scale-up every `ACTION_EVERY` minutes, made by the server like the decisions."""
    minute = _steps(steps, ACTION_EVERY)
    return _insert_select(
        Action,
        {
            Action.pool_id: pool_id,
            Action.idempotency_key: literal(key_prefix) + cast(minute, String),
            Action.created_at: _minutes(minute),
            Action.from_replicas: 10,
            Action.to_replicas: 11,
            Action.result: ActionResult.succeeded,
            Action.message: "scaled",
        },
    )


def _seed_pool(session: Session, index: int, phase: float, steps: int) -> None:
    namespace, name = f"team-{index % 10}", f"pool-{index:03d}"
    now = dt.datetime.now(dt.UTC)
    pool = Pool(
        namespace=namespace,
        name=name,
        target_api_version="cluster.x-k8s.io/v1beta1",
        target_kind="MachineDeployment",
        target_name=name,
        spec={"minReplicas": 1, "maxReplicas": 40, "mode": "Enforce"},
        status={
            "replicas": 14,
            "recommendedReplicas": 15,
            "mode": "Enforce",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
        created_at=now,
        updated_at=now,
    )
    session.add(pool)
    session.flush()
    session.execute(_decisions(pool.id, phase, steps))
    session.execute(_actions(pool.id, f"{namespace}/{name}@", steps))
    session.add(
        ForecastRecord(
            pool_id=pool.id,
            cycle_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
            step_seconds=60.0,
            indicator="gpu_demand",
            quantiles={"levels": [0.05, 0.5, 0.95], "values": [[90.0, 100.0, 110.0]] * 12},
        )
    )


def seed(dataset: Dataset) -> None:
    _drop_database(dataset.database)
    _on_server(f'CREATE DATABASE "{dataset.database}"')
    engine = create_engine_for(dataset.url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    rng = random.Random(SEED)
    started = time.monotonic()
    with Progress() as progress:
        task = progress.add_task(
            f"seeding {dataset.pools} pools x {dataset.steps} decisions", total=dataset.pools
        )
        for index in range(dataset.pools):
            with sessions.begin() as session:
                _seed_pool(session, index, rng.random() * 6.28, dataset.steps)
            progress.advance(task)
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        count = connection.execute(text("SELECT count(*) FROM decisions")).scalar_one()
    print(f"seeded {count} decisions in {time.monotonic() - started:.0f} s")
    engine.dispose()


def explain(dataset: Dataset) -> None:
    """The plans of the queries behind the list and detail endpoints."""
    engine = create_engine_for(dataset.url)
    queries = {
        "latest decision of a pool (detail)": (
            "SELECT * FROM decisions WHERE pool_id = 42 ORDER BY cycle_at DESC, id DESC LIMIT 1"
        ),
        "a page of decisions after a cursor": (
            "SELECT * FROM decisions WHERE pool_id = 42 AND cycle_at <= '2024-04-20T00:00Z' "
            "AND (cycle_at < '2024-04-20T00:00Z' OR (cycle_at = '2024-04-20T00:00Z' "
            "AND id < 99999999)) ORDER BY cycle_at DESC, id DESC LIMIT 51"
        ),
        "a page of actions": (
            "SELECT * FROM actions WHERE pool_id = 42 ORDER BY created_at DESC, id DESC LIMIT 51"
        ),
    }
    with engine.connect() as connection:
        for label, query in queries.items():
            plan = connection.execute(text(f"EXPLAIN {query}")).scalars().all()
            print(f"plan of {label}:")
            for line in plan:
                print(f"    {line}")
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _paths(rng: random.Random, pools: int) -> str:
    pool = f"team-{(i := rng.randrange(pools)) % 10}/pool-{i:03d}"
    kind = rng.randrange(4)
    if kind == 0:
        return "/api/v1/pools?limit=50"
    if kind == 1:
        return f"/api/v1/pools/{pool}"
    if kind == 2:
        return f"/api/v1/pools/{pool}/decisions?limit=50"
    return f"/api/v1/pools/{pool}/actions?limit=50"


async def drive(base: str, rate: float, seconds: float, pools: int) -> tuple[list[float], int]:
    rng = random.Random(SEED)
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    # Requests beyond the connections wait here, their wait counted in their latency, not
    # in httpx's pool: it scans every queued request against every connection at each
    # send and answer, so once the server falls behind the client spins and stops sending.
    free = asyncio.Semaphore(CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) as http:

        async def one(path: str, record: bool) -> None:
            nonlocal errors
            began = time.perf_counter()
            try:
                async with free:
                    response = await http.get(path)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if record:
                latencies.append((time.perf_counter() - began) * 1000)
                errors += 0 if ok else 1

        for _ in range(50):  # warm-up: connections and caches, not counted
            await one(_paths(rng, pools), record=False)
        total = int(rate * seconds)
        started = time.perf_counter()
        tasks = []
        for index in range(total):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(_paths(rng, pools), record=True)))
        await asyncio.gather(*tasks)
    return latencies, errors


@contextmanager
def serving(dataset: Dataset, workers: int) -> Iterator[str]:
    """`harmony api` over the dataset in a subprocess; its base URL once it is ready."""
    port = _free_port()
    environment = {
        **os.environ,
        "HARMONY_DATABASE_URL": dataset.url,
        "HARMONY_API_TOKENS": TOKEN,
        "HARMONY_LOG_LEVEL": "WARNING",
    }
    # This checkout's `harmony api` (the `harmony` script runs whichever checkout the
    # environment was installed from), started from `-c`: uvicorn's spawned workers
    # re-import a `__main__` module or script, here the whole CLI, and on a busy machine
    # that outlasts the 5 s they have to answer its first health check, so they are
    # killed and restarted forever.
    cli = "import sys; from controller.cli.main import main; sys.exit(main())"
    command = [sys.executable, "-c", cli, "api", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)], env=environment
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the API did not become ready within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to drive")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--workers", type=int, default=2, help="`harmony api --workers`")
    add_smoke_option(parser)
    args, size = parse_with_smoke(parser, argv, rate=20.0, seconds=2.0, workers=1)
    if args.reuse and size.smoke:
        parser.error("--smoke seeds a database of its own and drops it; --reuse cannot keep it")
    # A smoke run's database is named by process, so that test runs side by side never
    # share one, and dropped at the end.
    dataset = Dataset(
        DATABASE + (f"_smoke_{os.getpid()}" if size.smoke else ""),
        pools=size.pick(full=POOLS, smoke=3),
        days=size.pick(full=DAYS, smoke=1),
    )
    print(
        f"B5 api_load: PostgreSQL database {dataset.database}, {dataset.pools} pools x "
        f"{dataset.days} days of 1-minute decisions, seed {SEED}; GET /api/v1/pools, "
        f"/pools/{{ns}}/{{name}}, .../decisions, .../actions in equal shares, open loop at "
        f"{args.rate:g} req/s for {args.seconds:g} s on loopback, `harmony api --workers "
        f"{args.workers}`; command: python -m bench.api_load{size.flag}"
    )
    try:
        if not args.reuse:
            seed(dataset)
        explain(dataset)
        with serving(dataset, args.workers) as base:
            latencies, errors = asyncio.run(drive(base, args.rate, args.seconds, dataset.pools))
    finally:
        if size.smoke:
            _drop_database(dataset.database)
    p50, p99 = np.percentile(latencies, [50, 99])
    print(f"requests={len(latencies)} max_ms={max(latencies):.1f}")
    print(f"api rps={args.rate:g} p50_ms={p50:.1f} p99_ms={p99:.1f} errors={errors}")


if __name__ == "__main__":
    main()
