"""B4 (operator part): one control cycle for 500 PoolAutoscalers against kmock.

Each pool targets its own Deployment served by kmock (a separate process on loopback, its
handler answering `/scale`, status and Events from a dict; see `serve_kmock`): the
cycle reads every `/scale` with the official client, replays 144 steps of a real trace
(fisher containers, `load` as demand) as its metrics, forecasts all pools that share a
model in one forward pass (S=200, H=12; the model is the default architecture, freshly
initialised: a forward pass costs the same whatever the weights), decides with the
harmony policy, patches the `/scale` of every pool whose count changes (Enforce) and
records forecasts, decisions and actions in the state store (PostgreSQL when reachable,
else SQLite), then, as each pool's timer handler does, writes every pool's status
subresource and Events and saves the status in the state store, on as many threads as
asyncio's default executor has. The cycle time is all of that. Prometheus is not in the
loop: its query time is the source's, not the operator's.

    python -m bench.speed --operator
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.options import add_smoke_option, parse_with_smoke

POOLS = 500
CYCLES = 3
SAMPLES = 200
STEP = dt.timedelta(minutes=10)  # the fisher traces' step
SEED = 0
POSTGRES = os.environ.get(
    "HARMONY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def serve_kmock(port_file: str, pools: int) -> None:
    """Child process: kmock serving `pools` Deployments' `/scale` from a dict.

    kmock's DSL reactions test each request against every earlier one they saw, so their
    cost grows with the request history (measured: 500 GETs took 1.9 s at first and 5.5 s
    after 1,000 requests), and its emulator scans every stored object on each write; either
    would time the mock, not the operator. This handler answers `/scale` GETs and PATCHes
    in its own `_handle`, in O(1), over kmock's HTTP server and request parsing.
    """
    import re

    import kmock
    from aiohttp import web

    replicas = {f"pool-{number}": 4 for number in range(pools)}
    scale_path = re.compile(r"/apis/apps/v1/namespaces/bench/deployments/([^/]+)/scale")

    def scale_of(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {"replicas": replicas[name]},
            "status": {"replicas": replicas[name]},
        }

    status_path = re.compile(
        r"/apis/autoscaling.harmony.dev/v1alpha1/namespaces/bench/poolautoscalers/([^/]+)/status"
    )

    class ScaleSubresources(kmock.KubernetesScaffold):  # type: ignore[misc]
        async def _handle(self, request: Any) -> web.StreamResponse:
            path = request.url.path
            if request.method == kmock.method.POST and path == "/api/v1/namespaces/bench/events":
                return web.json_response(request.data, status=201)
            status = status_path.fullmatch(path)
            if status is not None and request.method == kmock.method.PATCH:
                metadata = {"name": status.group(1), "namespace": "bench"}
                return web.json_response({"metadata": metadata, **request.data})
            match = scale_path.fullmatch(path)
            if match is None or match.group(1) not in replicas:
                return web.json_response({"kind": "Status", "code": 404}, status=404)
            name = match.group(1)
            if request.method == kmock.method.PATCH:
                replicas[name] = int(request.data["spec"]["replicas"])
            return web.json_response(scale_of(name))

    async def run() -> None:
        async with ScaleSubresources() as mock, kmock.Server(mock) as server:
            Path(port_file).write_text(str(server.url).rstrip("/"))
            await asyncio.Event().wait()

    asyncio.run(run())


def _database() -> tuple[str, Any]:
    from sqlalchemy import create_engine, text

    from controller.state import migrate
    from controller.state.db import create_engine_for

    name = f"harmony_bench_{os.getpid()}"
    try:
        admin = create_engine(
            POSTGRES, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
        label = "PostgreSQL"

        def drop() -> None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        label = "SQLite"

        def drop() -> None:
            pass

    engine = create_engine_for(url)
    migrate.upgrade(engine)
    return f"{label}", (engine, drop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.speed_operator", description=__doc__)
    add_smoke_option(parser)
    _, size = parse_with_smoke(parser, argv)
    pools, cycles = size.pick(full=POOLS, smoke=4), size.pick(full=CYCLES, smoke=2)

    import torch
    from kubernetes import client as k8s

    from controller.actuators.kubernetes import KubernetesScaleActuator, ScaleBinding
    from controller.clock import ManualClock
    from controller.cycle import CycleDeps, run_cycle
    from controller.operator import records
    from controller.operator.cycle_steps import PoolRuntime
    from controller.operator.runtime import status_update
    from controller.operator.spec import parse_spec
    from controller.operator.status import StatusWriter
    from controller.series import Indicator, Series
    from controller.sources.replay import TraceReplaySource
    from controller.state.db import make_session_factory
    from controller.traces import TraceOptions, load_trace
    from forecaster import Forecaster, ForecasterConfig
    from forecaster.windows import Scaler

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    port_file = Path(tempfile.mkdtemp()) / "kmock-url"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bench.speed_operator import serve_kmock; "
            f"serve_kmock({str(port_file)!r}, {pools})",
        ],
    )
    try:
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None:
                raise SystemExit("kmock did not start")
            time.sleep(0.1)
        url = port_file.read_text()
        store, (engine, drop) = _database()
        containers = range(1, min(pools, 10) + 1)
        traces = [load_trace(f"fisher:container{n}", TraceOptions()) for n in containers]
        start = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # replayed time of each trace's first row
        clock = ManualClock(start + STEP * 200)
        config = size.forecaster(ForecasterConfig(context_length=144, horizon=12))
        model = Forecaster(
            config,
            [1],
            Scaler(mean=np.array([50.0]), scale=np.array([20.0])),
            step_seconds=STEP.total_seconds(),
        )
        configuration = k8s.Configuration(host=url)
        configuration.connection_pool_maxsize = 32
        actuator = KubernetesScaleActuator(k8s.ApiClient(configuration), clock)
        runtimes: list[PoolRuntime] = []
        sources: dict[str, TraceReplaySource] = {}
        for number in range(pools):
            spec = {
                "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"pool-{number}"},
                "capacityPerReplica": 10.0,
                "minReplicas": 1,
                "maxReplicas": 64,
                "provisioningDelay": "20m",
                "interval": "10m",
                "mode": "Enforce",
                "indicators": [{"name": "load", "query": "load", "demand": True}],
                "prometheus": {"url": "http://unused"},
                "model": {"contextSteps": config.context_length, "horizonSteps": 12},
            }
            pool = parse_spec("bench", f"pool-{number}", spec, None)
            runtimes.append(PoolRuntime.create(pool, spec))
            actuator.register(pool.key, ScaleBinding(pool.target, pool.provisioning_delay))
            trace = traces[number % len(traces)]
            series = Series(
                name=trace.name,
                indicators=(Indicator("load", demand=True),),
                start=trace.start,
                step=trace.step,
                values=trace.column("load")[:, None],
            )
            sources[pool.key] = TraceReplaySource(series, clock, anchor=start)

        class SharedModel:
            def forecaster_for(self, pool: PoolRuntime) -> tuple[Any, int | None]:
                return model, None

        deps = CycleDeps(
            source_for=lambda runtime: sources[runtime.config.key],
            forecasters=SharedModel(),
            actuator=actuator,
            sessions=make_session_factory(engine),
            clock=clock,
            num_samples=SAMPLES,
        )
        print(
            f"B4 operator speed: {pools} PoolAutoscalers (Deployments on kmock over loopback), "
            f"S={SAMPLES}, L={config.context_length}, H=12, fisher containers "
            f"1-{len(traces)} replayed as demand, "
            f"state store {store}, torch threads 1, seed {SEED}"
        )
        writer = StatusWriter(k8s.ApiClient(configuration))
        statuses: dict[str, dict[str, Any]] = {runtime.config.key: {} for runtime in runtimes}

        def publish(outcome: Any) -> None:
            namespace, name = outcome.key.split("/", 1)
            body = {"metadata": {"name": name, "namespace": namespace, "uid": outcome.key}}
            fields, events = status_update(
                outcome, statuses[outcome.key], "Enforce", 1, clock.now()
            )
            writer.write(namespace, name, body, fields, events)
            with deps.sessions.begin() as session:
                records.save_status(session, namespace, name, fields)
            statuses[outcome.key] = fields

        handler_threads = min(32, (os.cpu_count() or 1) + 4)  # asyncio.to_thread's pool
        durations: list[float] = []
        with ThreadPoolExecutor(max_workers=handler_threads) as handlers:
            for cycle in range(cycles):
                began = time.perf_counter()
                outcomes = run_cycle(runtimes, deps)
                decided = time.perf_counter()
                list(handlers.map(publish, outcomes))
                durations.append(time.perf_counter() - began)
                actions = sum(1 for o in outcomes if o.action is not None and o.action.applied)
                status_seconds = durations[-1] - (decided - began)
                print(
                    f"  cycle {cycle + 1}: {durations[-1]:.2f} s (control cycle "
                    f"{decided - began:.2f} s, status and events {status_seconds:.2f} s), "
                    f"{actions} scale patches"
                )
                clock.advance(STEP)
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  command: python -m bench.speed --operator{size.flag}")
        print(
            f"operator pools={pools} cycle_s={statistics.median(durations):.2f} "
            f"rss_mib={rss_mib:.0f}"
        )
        engine.dispose()
        drop()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
