"""B5: the REST API under load on PostgreSQL.

Seeds a database of its own with 100 pools x 30 days of 1-minute decisions (4.32M rows,
generated server-side by INSERT ... SELECT over generate_series, one statement per pool),
an action every 30 minutes and a forecast per pool; shows the query plans of the list and
detail queries; serves the API with `harmony api` in a subprocess; then drives list and
detail endpoints open-loop at a fixed rate on loopback (a request every 1/rate seconds,
whether or not earlier ones have answered) and prints the latency percentiles.

    nice -n 10 .venv/bin/python -m bench.api_load [--rate 100 --seconds 60 --reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from rich.progress import Progress
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from controller.state import migrate
from controller.state.db import create_engine_for

DATABASE = "harmony_bench_api"
POOLS = 100
DAYS = 30
STEPS = DAYS * 24 * 60
TOKEN = "bench-token"
SEED = 20240501
START = "2024-04-01T00:00:00Z"

DECISIONS_OF_POOL = f"""
INSERT INTO decisions (pool_id, cycle_at, policy, mode, replicas_now, replicas_wanted,
    shortfall_probability, shortfall_bound, expected_cost, expected_utilization,
    binding_constraint, reason, inputs)
SELECT :pool_id, TIMESTAMPTZ '{START}' + make_interval(mins => s.i), 'harmony', 'Enforce',
    r.now, r.now + (s.i % 3 = 0)::int, 0.004, 0.009, r.now * 0.0167, 0.8, 'sla',
    r.now || ' replicas keep P(shortfall) at 0.4% <= 1%',
    jsonb_build_object('demand', d.demand, 'capacity_per_replica', 8.0,
        'target_utilization', 1.0, 'replicas_usable', r.now, 'replicas_in_flight', 0,
        'step_seconds', 60, 'metrics_complete', true)
FROM generate_series(0, {STEPS - 1}) AS s(i)
CROSS JOIN LATERAL (SELECT 100 + 60 * sin(2 * pi() * s.i / 1440.0 + :phase) AS demand) d
CROSS JOIN LATERAL (SELECT ceil(d.demand * 1.1 / 8.0)::int AS now) r
"""
ACTIONS_OF_POOL = f"""
INSERT INTO actions (pool_id, idempotency_key, created_at, from_replicas, to_replicas,
    result, message)
SELECT :pool_id, :key_prefix || s.i, TIMESTAMPTZ '{START}' + make_interval(mins => s.i),
    10, 11, 'succeeded', 'scaled'
FROM generate_series(0, {STEPS - 1}, 30) AS s(i)
"""


def _admin_url() -> str:
    return os.environ.get(
        "HARMONY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )


def _database_url() -> str:
    return make_url(_admin_url()).set(database=DATABASE).render_as_string(hide_password=False)


def seed() -> None:
    admin = create_engine(make_url(_admin_url()), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    engine = create_engine_for(_database_url())
    migrate.upgrade(engine)
    rng = random.Random(SEED)
    started = time.monotonic()
    with Progress() as progress:
        task = progress.add_task(f"seeding {POOLS} pools x {STEPS} decisions", total=POOLS)
        for index in range(POOLS):
            namespace, name = f"team-{index % 10}", f"pool-{index:03d}"
            with engine.begin() as connection:
                pool_id = connection.execute(
                    text(
                        "INSERT INTO pools (namespace, name, target_api_version, target_kind,"
                        " target_name, spec, status, created_at, updated_at) VALUES (:ns, :n,"
                        " 'cluster.x-k8s.io/v1beta1', 'MachineDeployment', :n,"
                        " CAST(:spec AS jsonb), CAST(:status AS jsonb), now(), now())"
                        " RETURNING id"
                    ),
                    {
                        "ns": namespace,
                        "n": name,
                        "spec": '{"minReplicas": 1, "maxReplicas": 40, "mode": "Enforce"}',
                        "status": '{"replicas": 14, "recommendedReplicas": 15, "mode": '
                        '"Enforce", "conditions": [{"type": "Ready", "status": "True"}]}',
                    },
                ).scalar_one()
                connection.execute(
                    text(DECISIONS_OF_POOL), {"pool_id": pool_id, "phase": rng.random() * 6.28}
                )
                connection.execute(
                    text(ACTIONS_OF_POOL),
                    {"pool_id": pool_id, "key_prefix": f"{namespace}/{name}@"},
                )
                connection.execute(
                    text(
                        "INSERT INTO forecasts (pool_id, cycle_at, step_seconds, indicator,"
                        " quantiles) VALUES (:pool_id, CAST(:at AS timestamptz), 60, 'gpu_demand',"
                        " CAST(:q AS jsonb))"
                    ),
                    {
                        "pool_id": pool_id,
                        "at": "2024-05-01T00:00:00Z",
                        "q": '{"levels": [0.05, 0.5, 0.95], "values": '
                        + str([[90.0, 100.0, 110.0]] * 12)
                        + "}",
                    },
                )
            progress.advance(task)
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        count = connection.execute(text("SELECT count(*) FROM decisions")).scalar_one()
    print(f"seeded {count} decisions in {time.monotonic() - started:.0f} s")
    engine.dispose()


def explain() -> None:
    """The plans of the queries behind the list and detail endpoints."""
    engine = create_engine_for(_database_url())
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


def _paths(rng: random.Random) -> str:
    pool = f"team-{(i := rng.randrange(POOLS)) % 10}/pool-{i:03d}"
    kind = rng.randrange(4)
    if kind == 0:
        return "/api/v1/pools?limit=50"
    if kind == 1:
        return f"/api/v1/pools/{pool}"
    if kind == 2:
        return f"/api/v1/pools/{pool}/decisions?limit=50"
    return f"/api/v1/pools/{pool}/actions?limit=50"


async def drive(base: str, rate: float, seconds: float) -> tuple[list[float], int]:
    rng = random.Random(SEED)
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) as http:

        async def one(path: str, record: bool) -> None:
            nonlocal errors
            began = time.perf_counter()
            try:
                response = await http.get(path)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if record:
                latencies.append((time.perf_counter() - began) * 1000)
                errors += 0 if ok else 1

        for _ in range(50):  # warm-up: connections and caches, not counted
            await one(_paths(rng), record=False)
        total = int(rate * seconds)
        started = time.perf_counter()
        tasks = []
        for index in range(total):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(_paths(rng), record=True)))
        await asyncio.gather(*tasks)
    return latencies, errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to drive")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--workers", type=int, default=2, help="`harmony api --workers`")
    args = parser.parse_args(argv)
    print(
        f"B5 api_load: PostgreSQL database {DATABASE}, {POOLS} pools x {DAYS} days of 1-minute "
        f"decisions, seed {SEED}; GET /api/v1/pools, /pools/{{ns}}/{{name}}, .../decisions, "
        f".../actions in equal shares, open loop at {args.rate:g} req/s for {args.seconds:g} s "
        f"on loopback, `harmony api --workers {args.workers}`; command: python -m bench.api_load"
    )
    if not args.reuse:
        seed()
    explain()
    port = _free_port()
    environment = {
        **os.environ,
        "HARMONY_DATABASE_URL": _database_url(),
        "HARMONY_API_TOKENS": TOKEN,
        "HARMONY_LOG_LEVEL": "WARNING",
    }
    harmony = str(Path(sys.executable).with_name("harmony"))
    server = subprocess.Popen(
        [
            harmony,
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env=environment,
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
        latencies, errors = asyncio.run(drive(base, args.rate, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=20)
    p50, p99 = np.percentile(latencies, [50, 99])
    print(f"requests={len(latencies)} max_ms={max(latencies):.1f}")
    print(f"api rps={args.rate:g} p50_ms={p50:.1f} p99_ms={p99:.1f} errors={errors}")


if __name__ == "__main__":
    main()
