"""A real Prometheus over a backfilled TSDB, and a fault-injecting proxy in front of it.

Each pool's demand is a square wave on the accelerated clock's grid (high for a third of
each period, phase shifted per pool), so the pools scale up and down again and again.
The proxy forwards `query_range` and, while a fault is active, answers 503, answers
after the pools' query timeout, cuts the newest points off (stale) or drops points
inside the window (partial); while Prometheus is stopped it drops the connection, as
a closed port would. It logs every answer: which pool, which range end, which fault.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.soak.schedule import FaultKind

METRIC = "harmony_soak_demand"
PERIOD = 30  # steps of one demand cycle
LOW, HIGH = 15.0, 55.0
STALE_POINTS = 4  # cut from the end: older than the two steps the source tolerates
POOL_LABEL = re.compile(r'pool="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demand(pool: int, step_number: int) -> float:
    phase = (step_number + pool * 7) % PERIOD
    return HIGH if phase >= PERIOD - PERIOD // 3 else LOW


def openmetrics(pools: int, first: dt.datetime, steps: int, step: dt.timedelta) -> str:
    lines = [f"# TYPE {METRIC} gauge"]
    base = round(first.timestamp() / step.total_seconds())
    for pool in range(pools):
        for offset in range(steps):
            stamp = (base + offset) * step.total_seconds()
            value = demand(pool, base + offset)
            lines.append(f'{METRIC}{{pool="pool-{pool:02d}"}} {value} {stamp:.0f}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@dataclass
class PrometheusProcess:
    """Debian's Prometheus on a fixed loopback port, so that a restart keeps its address."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def backfill(self, text: str) -> None:
        promtool = shutil.which("promtool")
        if promtool is None or shutil.which("prometheus") is None:
            raise RuntimeError("Debian's prometheus package is not installed")
        source = self.folder / "demand.om"
        source.write_text(text)
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.tsdb)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        (self.folder / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")

    @property
    def tsdb(self) -> Path:
        return self.folder / "tsdb"

    def start(self) -> None:
        log = (self.folder / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(shutil.which("prometheus")),
                f"--config.file={self.folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.tsdb}",
                "--storage.tsdb.retention.time=100y",
                "--log.level=warn",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"prometheus exited: see {self.folder / 'prometheus.log'}")
                try:
                    probe = aiohttp.ClientTimeout(total=2)
                    async with client.get(f"{self.url}/-/ready", timeout=probe) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class QueryRecord:
    at: float  # wall time of the answer
    pool: str
    end: float  # the range's end (Unix seconds of the accelerated clock)
    fault: str  # "" when answered as Prometheus answered


@dataclass
class PrometheusProxy:
    upstream: str
    slow_seconds: float
    seed: int
    fault: FaultKind | None = None
    log: list[QueryRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._client: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/query_range", self.query_range)
        return app

    async def query_range(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        match = POOL_LABEL.search(str(form.get("query", "")))
        record = QueryRecord(
            at=0.0,
            pool=match.group(1) if match else "",
            end=float(str(form.get("end", "0"))),
            fault="" if self.fault is None else self.fault.value,
        )
        try:
            return await self._answer(request, dict(form), record)
        finally:
            record.at = time.time()
            self.log.append(record)

    async def _answer(
        self, request: web.Request, form: dict[str, Any], record: QueryRecord
    ) -> web.StreamResponse:
        fault = self.fault
        if fault == FaultKind.prometheus_5xx:
            return web.json_response(
                {"status": "error", "errorType": "unavailable", "error": "injected 503"},
                status=503,
            )
        if fault == FaultKind.prometheus_slow:
            await asyncio.sleep(self.slow_seconds)
        if self._client is None:
            self._client = aiohttp.ClientSession()
        try:
            async with self._client.post(
                f"{self.upstream}/api/v1/query_range", data=form
            ) as upstream:
                status, body = upstream.status, await upstream.read()
        except aiohttp.ClientError:
            record.fault = FaultKind.prometheus_stopped.value
            if request.transport is not None:
                request.transport.close()  # what a stopped server's closed port looks like
            return web.Response(status=502, text="Prometheus is not running")
        if status == 200 and fault in (FaultKind.prometheus_stale, FaultKind.prometheus_partial):
            body = self._damaged(body, fault)
        return web.Response(body=body, status=status, content_type="application/json")

    def _damaged(self, body: bytes, fault: FaultKind) -> bytes:
        answer = json.loads(body)
        for series in answer.get("data", {}).get("result", []):
            values = series["values"]
            if fault == FaultKind.prometheus_stale:
                series["values"] = values[:-STALE_POINTS]
            else:
                keep = [v for v in values[:-1] if self._rng.random() > 0.3]
                series["values"] = [*keep, *values[-1:]]
        return json.dumps(answer).encode()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
